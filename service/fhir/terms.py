"""The words of our FHIR face: canonical URLs, code systems, codes, identifier
systems, and the one function every personal value passes through.

Standard codes are used where one fits and we could cite it (docs/fhir.md says
where each comes from); everything else is a code of our own, in a CodeSystem
under CANONICAL, said so in docs/fhir.md. Changing a URL here changes it
everywhere: nothing else spells one.
"""

from __future__ import annotations

from typing import Any

from domain import personal as personal_fields

#: The root of every canonical URL we define (code systems, extensions,
#: identifier systems). An identifier namespace: FHIR requires absolute URIs,
#: not that they resolve.
CANONICAL = "https://traction-ledger.org/fhir"

# ---- standard systems ---------------------------------------------------------
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ADVERSE_EVENT_SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

#: LOINC 72514-3: the score of a pain report (the 0-10 numeric rating scale).
PAIN_NRS = {"system": LOINC, "code": "72514-3",
            "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported"}
#: SNOMED CT 277132007, the parent of therapeutic procedures: the category of a session.
THERAPEUTIC_PROCEDURE = {"system": SNOMED, "code": "277132007",
                         "display": "Therapeutic procedure"}
SURVEY = {"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}

# ---- our code systems -----------------------------------------------------------


def code_system(name: str) -> str:
    """The canonical URL of one of our CodeSystems."""
    return f"{CANONICAL}/CodeSystem/{name}"


def extension_url(name: str) -> str:
    """The canonical URL of one of our extensions."""
    return f"{CANONICAL}/StructureDefinition/{name}"


#: The procedure code of a session (no standard code for lumbar traction was
#: found that we could cite: docs/fhir.md).
LUMBAR_TRACTION = {"system": code_system("procedure"), "code": "lumbar-traction",
                   "display": "Lumbar traction session"}
#: The measures a pain report carries beside its pain score.
#: LOINC 97909-6: the Oswestry Disability Index score, reported as a percent.
ODI_PERCENT = {"system": LOINC, "code": "97909-6",
               "display": "Oswestry disability index score ODI"}
SLEEP_QUALITY_NRS = {"system": code_system("measure"), "code": "sleep-quality-nrs",
                     "display": "Sleep quality, 0-10 numeric rating"}
CONDITION = code_system("condition")
MODALITY = code_system("modality")
SETTING = code_system("setting")
OUTCOME = code_system("outcome")
MISSED_REASON = code_system("missed-reason")
PAIN_CONTEXT = code_system("pain-context")

#: Our extensions.
FORCE = extension_url("traction-force")
SUPERVISED = extension_url("supervised")
DISCOMFORT = extension_url("discomfort-nrs")
EPISODE = extension_url("episode-of-care")
REPORT_CONTEXT = extension_url("pain-context")
CARE_SETTING = extension_url("care-setting")
DISCHARGE_OUTCOME = extension_url("discharge-outcome")
DISCHARGE_NOTES = extension_url("discharge-notes")
STATUS_REASON = extension_url("status-reason")

#: The context of the Observation that carries a programme's baseline: recorded
#: with the programme's start, never posted on its own.
BASELINE_CONTEXT = "baseline"

# ---- identifier systems ---------------------------------------------------------

#: A programme's id: the identifier of its EpisodeOfCare, by which posts refer to it.
PROGRAMME_IDS = f"{CANONICAL}/programme"
#: An event's id: the identifier of the resource an event became (idempotency key).
EVENT_IDS = f"{CANONICAL}/event"
CLINIC_IDS = f"{CANONICAL}/clinic"


def patient_ids(clinic_id: str) -> str:
    """The system of a clinic's patient keys: each clinic has its own."""
    return f"{CANONICAL}/clinic/{clinic_id}/patient"


def staff_ids(clinic_id: str) -> str:
    """The system of who recorded an entry (`recorded_by`), per clinic."""
    return f"{CANONICAL}/clinic/{clinic_id}/staff"


# ---- personal values --------------------------------------------------------------


def personal(value: Any) -> Any:
    """A personal value (the patient key, free text) as it may leave the service:
    every one we emit passes here. An erased value, or one whose seal failed
    authentication, is left out (None means: omit the element; the patient
    reference then carries data-absent-reason `masked`)."""
    if value in (personal_fields.ERASED, personal_fields.UNREADABLE):
        return None
    return value
