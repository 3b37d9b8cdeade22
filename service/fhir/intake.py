"""FHIR in: the entries of a posted transaction or batch Bundle as event envelopes.

An Observation (a pain report, LOINC 72514-3) becomes a PainReported; a
Procedure becomes a SessionCompleted (status completed) or a SessionMissed
(status not-done); each names its programme by the EpisodeOfCare identifier
(extension episode-of-care, docs/fhir.md). The envelope is the JSON a clinic
would post to the programme itself, so it is validated and recorded by the
normal path (service/http/fhir_intake.py).

A resource's identifier is its idempotency key: the event id is derived from
the clinic and the identifier (a UUID v5), so a re-sent resource names the
same event and is recorded once.

Each refusal is an `EntryRefused` naming the element (`expression`, FHIRPath).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from domain.vocabulary import MISSED_REASONS, MODALITIES, PAIN_CONTEXTS
from service.fhir import terms

#: The namespace of the event ids derived from resource identifiers.
EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, terms.EVENT_IDS)
#: The resource types a clinic may post.
ACCEPTED_TYPES = ("Observation", "Procedure")
#: Who recorded an entry when the resource does not say (recorded_by's pattern).
DEFAULT_RECORDER = "fhir-import"


class EntryRefused(Exception):
    """Why an entry (or the whole Bundle) cannot be recorded."""

    def __init__(self, status: int, slug: str, detail: str, expression: Sequence[str]) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.expression = list(expression)


@dataclass(frozen=True)
class Intake:
    """One entry of a Bundle as the event it becomes."""

    index: int
    resource_type: str
    programme_id: uuid.UUID
    #: The envelope as a clinic posts it (JSON): validated by the normal path.
    envelope: dict[str, Any]

    @property
    def event_id(self) -> str:
        return str(self.envelope["event_id"])


def at(index: int, *path: str) -> str:
    """The FHIRPath of an element of entry `index`'s resource."""
    return ".".join([f"Bundle.entry[{index}].resource", *path])


def _pydantic_path(prefix: str, loc: Sequence[Any]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def invalid(error: ValidationError, prefix: str) -> EntryRefused:
    """A refusal naming each element the R4B models refused."""
    problems = error.errors()
    return EntryRefused(
        400, "invalid-fhir",
        "Not valid FHIR R4: " + "; ".join(
            f"{_pydantic_path(prefix, p['loc'])}: {p['msg']}" for p in problems[:5]),
        [_pydantic_path(prefix, p["loc"]) for p in problems])


def read_bundle(body: Any, max_entries: int) -> tuple[str, list[Any]]:
    """The Bundle's type (transaction or batch) and its entries; refuses a body
    that is no such Bundle (400) or holds more than `max_entries` (413)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise EntryRefused(400, "invalid-fhir", "The body must be a FHIR Bundle.",
                           ["Bundle"])
    if body.get("type") not in ("transaction", "batch"):
        raise EntryRefused(422, "bundle-type", "Post a Bundle of type transaction or batch.",
                           ["Bundle.type"])
    entries = body.get("entry") or []
    if not isinstance(entries, list):
        raise EntryRefused(400, "invalid-fhir", "Bundle.entry must be a list.",
                           ["Bundle.entry"])
    if len(entries) > max_entries:
        raise EntryRefused(413, "too-many-entries",
                           f"A Bundle may hold at most {max_entries} entries; it holds "
                           f"{len(entries)}. Send fewer per Bundle.", ["Bundle.entry"])
    # The Bundle's own elements (its resources are checked one by one).
    shell = {**body, "entry": [{k: v for k, v in e.items() if k != "resource"}
                               if isinstance(e, dict) else e for e in entries]}
    try:
        Bundle.model_validate(shell)
    except ValidationError as error:
        raise invalid(error, "Bundle") from None
    return body["type"], entries


def read_entry(clinic_id: str, index: int, entry: Mapping[str, Any]) -> Intake:
    """The event entry `index` becomes, or why it cannot be recorded."""
    resource = entry.get("resource")
    if not isinstance(resource, dict):
        raise EntryRefused(400, "invalid-fhir", "The entry holds no resource.",
                           [f"Bundle.entry[{index}].resource"])
    kind = resource.get("resourceType")
    if kind not in ACCEPTED_TYPES:
        raise EntryRefused(422, "resource-type-not-accepted",
                           f"{kind or 'A resource without a type'} is not taken here: post "
                           "Observation (pain reports) and Procedure (sessions).",
                           [f"Bundle.entry[{index}].resource.resourceType"])
    method = (entry.get("request") or {}).get("method", "POST")
    if method != "POST":
        raise EntryRefused(422, "method-not-supported",
                           f"Entries are created with POST, not {method}.",
                           [f"Bundle.entry[{index}].request.method"])
    try:
        get_fhir_model_class(kind).model_validate(resource)
    except ValidationError as error:
        raise invalid(error, f"Bundle.entry[{index}].resource") from None
    programme_id = _programme(index, resource)
    envelope = {
        "event_id": str(_event_id(clinic_id, index, resource)),
        "recorded_by": _recorder(resource),
    }
    if kind == "Observation":
        envelope.update(_pain_report(index, resource))
    else:
        envelope.update(_session(index, resource))
    return Intake(index, kind, programme_id, envelope)


# ---- the common elements --------------------------------------------------------


def _event_id(clinic_id: str, index: int, resource: Mapping[str, Any]) -> uuid.UUID:
    identifiers = resource.get("identifier") or []
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    usable = [i for i in identifiers if i.get("value")]
    if not usable:
        raise EntryRefused(422, "identifier-required",
                           "The resource needs an identifier (system and value): it is what "
                           "makes a re-sent resource recorded once.",
                           [at(index, "identifier")])
    first = usable[0]
    return uuid.uuid5(EVENT_ID_NAMESPACE,
                      f"{clinic_id}|{first.get('system', '')}|{first['value']}")


def _programme(index: int, resource: Mapping[str, Any]) -> uuid.UUID:
    for position, extension in enumerate(resource.get("extension") or []):
        if extension.get("url") != terms.EPISODE:
            continue
        reference = extension.get("valueReference") or {}
        identifier = reference.get("identifier") or {}
        value = None
        if identifier.get("system") == terms.PROGRAMME_IDS:
            value = identifier.get("value")
        elif str(reference.get("reference", "")).startswith("EpisodeOfCare/"):
            value = reference["reference"].split("/", 1)[1]
        try:
            return uuid.UUID(str(value))
        except ValueError:
            raise EntryRefused(422, "programme-required",
                               "The episode-of-care reference must hold the programme's "
                               f"identifier (system {terms.PROGRAMME_IDS}, its UUID).",
                               [at(index, f"extension[{position}].valueReference")]) from None
    raise EntryRefused(422, "programme-required",
                       f"Name the programme: extension {terms.EPISODE} with a valueReference "
                       f"whose identifier is the EpisodeOfCare's ({terms.PROGRAMME_IDS}).",
                       [at(index, "extension")])


def _recorder(resource: Mapping[str, Any]) -> str:
    """Who recorded it: the recorder's (Procedure) or first performer's
    (Observation) identifier, if it has one."""
    found = resource.get("recorder") or next(iter(resource.get("performer") or []), {})
    value = (found.get("identifier") or {}).get("value")
    return str(value) if value else DEFAULT_RECORDER


def _extensions(resource: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {e.get("url"): e for e in resource.get("extension") or []}


def _code_in(concept: Any, system: str) -> str | None:
    for found in (concept or {}).get("coding") or []:
        if found.get("system") == system:
            return found.get("code")
    return None


def _time(index: int, value: Any, path: str) -> str:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise EntryRefused(422, "time-required",
                           "A date and time with its UTC offset is needed here.",
                           [at(index, path)])
    return str(value)


# ---- Observation -> PainReported --------------------------------------------------


def _pain_report(index: int, resource: Mapping[str, Any]) -> dict[str, Any]:
    codes = [(c.get("system"), c.get("code")) for c in
             (resource.get("code") or {}).get("coding") or []]
    if (terms.LOINC, terms.PAIN_NRS["code"]) not in codes:
        raise EntryRefused(422, "observation-code",
                           "Only pain reports are taken: code LOINC 72514-3 (the 0-10 "
                           "numeric rating scale).", [at(index, "code")])
    if resource.get("status") not in ("final", "amended", "corrected"):
        raise EntryRefused(422, "observation-status",
                           "A pain report is posted final (or amended, corrected).",
                           [at(index, "status")])
    pain = _integer_value(resource)
    if pain is None:
        raise EntryRefused(422, "value-required",
                           "The Observation has no value: give the pain score as "
                           "valueInteger (0-10).", [at(index, "value[x]")])
    if "effectiveDateTime" not in resource:
        raise EntryRefused(422, "time-required",
                           "Give when the patient reported it: effectiveDateTime.",
                           [at(index, "effective[x]")])
    data: dict[str, Any] = {"pain_nrs": pain, "scale": "nrs_11"}
    for position, component in enumerate(resource.get("component") or []):
        if _code_in(component.get("code"), terms.LOINC) == terms.ODI_PERCENT["code"]:
            data["odi_percent"] = _integer_value(component)
        elif (_code_in(component.get("code"), terms.code_system("measure"))
              == terms.SLEEP_QUALITY_NRS["code"]):
            data["sleep_quality_nrs"] = _integer_value(component)
        else:
            raise EntryRefused(422, "component-not-accepted",
                               "Components taken: LOINC 97909-6 (the ODI, %) and our "
                               "measure#sleep-quality-nrs.",
                               [at(index, f"component[{position}].code")])
    context = _extensions(resource).get(terms.REPORT_CONTEXT)
    if context is not None:
        word = (context.get("valueCoding") or {}).get("code")
        if word == terms.BASELINE_CONTEXT:
            raise EntryRefused(422, "baseline-not-accepted",
                               "A programme's baseline is recorded with its start, not "
                               "posted on its own.", [at(index, "extension")])
        if word not in PAIN_CONTEXTS:
            raise EntryRefused(422, "context-not-accepted",
                               f"The context must be one of {', '.join(PAIN_CONTEXTS)}.",
                               [at(index, "extension")])
        data["context"] = word
    return {"type": "PainReported", "data": {k: v for k, v in data.items() if v is not None},
            "occurred_at": _time(index, resource["effectiveDateTime"], "effectiveDateTime")}


def _integer_value(element: Mapping[str, Any]) -> int | None:
    if isinstance(element.get("valueInteger"), int):
        return int(element["valueInteger"])
    quantity = element.get("valueQuantity") or {}
    value = quantity.get("value")
    if isinstance(value, int | float) and float(value).is_integer():
        return int(value)
    return None


# ---- Procedure -> SessionCompleted / SessionMissed ---------------------------------


def _session(index: int, resource: Mapping[str, Any]) -> dict[str, Any]:
    if _code_in(resource.get("code"), terms.code_system("procedure")) != \
            terms.LUMBAR_TRACTION["code"]:
        raise EntryRefused(422, "procedure-code",
                           "Only lumbar traction sessions are taken: code "
                           f"{terms.code_system('procedure')}#lumbar-traction.",
                           [at(index, "code")])
    status = resource.get("status")
    if status == "not-done":
        reason = _code_in(resource.get("statusReason"), terms.MISSED_REASON)
        if reason not in MISSED_REASONS:
            raise EntryRefused(422, "missed-reason-required",
                               f"A not-done session needs a statusReason of "
                               f"{terms.MISSED_REASON} ({', '.join(MISSED_REASONS)}).",
                               [at(index, "statusReason")])
        when = resource.get("performedDateTime") or (
            resource.get("performedPeriod") or {}).get("start")
        return {"type": "SessionMissed", "data": {"reason": reason},
                "occurred_at": _time(index, when, "performed[x]")}
    if status != "completed":
        raise EntryRefused(422, "procedure-status",
                           "A session is posted completed (or not-done when it was missed).",
                           [at(index, "status")])
    period = resource.get("performedPeriod") or {}
    if not period.get("start") or not period.get("end"):
        raise EntryRefused(422, "period-required",
                           "Give the session's start and end: performedPeriod.",
                           [at(index, "performedPeriod")])
    start = _time(index, period["start"], "performedPeriod.start")
    end = _time(index, period["end"], "performedPeriod.end")
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    modality = next((_code_in(c, terms.MODALITY) for c in resource.get("usedCode") or []
                     if _code_in(c, terms.MODALITY)), None)
    if modality not in MODALITIES:
        raise EntryRefused(422, "modality-required",
                           f"Give the modality in usedCode ({terms.MODALITY}: "
                           f"{', '.join(MODALITIES)}).", [at(index, "usedCode")])
    extensions = _extensions(resource)
    supervised = (extensions.get(terms.SUPERVISED) or {}).get("valueBoolean")
    if not isinstance(supervised, bool):
        raise EntryRefused(422, "supervised-required",
                           f"Say whether it was supervised: extension {terms.SUPERVISED} "
                           "(valueBoolean).", [at(index, "extension")])
    data: dict[str, Any] = {"modality": modality, "duration_minutes": round(seconds / 60),
                            "supervised": supervised}
    force = (extensions.get(terms.FORCE) or {}).get("valueQuantity")
    if force is not None:
        data["force_percent_body_weight"] = force.get("value")
    discomfort = (extensions.get(terms.DISCOMFORT) or {}).get("valueInteger")
    if discomfort is not None:
        data["discomfort_nrs"] = discomfort
    device = next((c["text"] for c in resource.get("usedCode") or []
                   if c.get("text") and not c.get("coding")), None)
    if device is not None:
        data["device"] = device
    return {"type": "SessionCompleted", "data": data, "occurred_at": start}
