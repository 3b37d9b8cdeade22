"""A programme's history as FHIR R4 resources (docs/fhir.md, element by element).

`programme_resources` reads the events of one programme (as
`Programmes.history` gives them, up to the version asked for) and answers the
resources, as their JSON: the clinic's Organization, the programme's
EpisodeOfCare and Condition, one CarePlan per plan revision, a Procedure per
session (completed or missed), an Observation per pain report (and one for the
baseline), an AdverseEvent per adverse event, and a Provenance per correction.

Resources are built as JSON (dicts), not as fhir.resources models: a model
costs about 300 µs to build and dump, sixty times the JSON itself, which at a
million events is minutes of a Bulk export. Every kind of resource built here
is parsed by the fhir.resources R4B models in tests (tests/fhir/), and the
single-programme read parses its whole Bundle with them before sending it.

Every personal value goes through `terms.personal`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from service.fhir import terms
from service.fhir.terms import personal

Resource = dict[str, Any]

#: The programme's status as an EpisodeOfCare's.
EPISODE_STATUS = {"active": "active", "paused": "onhold", "discharged": "finished"}
#: The programme's status as the CarePlan in force's.
PLAN_STATUS = {"active": "active", "paused": "on-hold", "discharged": "completed"}


def instant(value: Any) -> str:
    """An RFC 3339 time as FHIR writes a dateTime or instant."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _after(start: Any, minutes: int) -> str:
    moment = start if isinstance(start, datetime) else datetime.fromisoformat(str(start))
    return (moment + timedelta(minutes=minutes)).isoformat()


def reference(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    found = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(*codings: Mapping[str, str], text: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"coding": [dict(c) for c in codings]}
    if text:
        found["text"] = text
    return found


def words(code: str) -> str:
    """A vocabulary word as a display: `mechanical_table` -> `mechanical table`."""
    return code.replace("_", " ")


def patient(clinic_id: str, patient_ref: Any) -> dict[str, Any]:
    """The patient, by the clinic's key only; once the key is erased, marked masked."""
    key = personal(patient_ref)
    if key is None:
        return {"extension": [{"url": terms.DATA_ABSENT_REASON, "valueCode": "masked"}]}
    return {"identifier": {"system": terms.patient_ids(clinic_id), "value": key}}


def event_identifier(event_id: str) -> list[dict[str, str]]:
    return [{"system": terms.EVENT_IDS, "value": str(event_id)}]


def recorder(clinic_id: str, recorded_by: str) -> dict[str, Any]:
    return {"identifier": {"system": terms.staff_ids(clinic_id), "value": recorded_by}}


def text_extension(url: str, value: Any) -> list[dict[str, Any]]:
    """An extension holding personal free text, or none once it is erased."""
    text = personal(value)
    return [] if text is None else [{"url": url, "valueString": text}]


def note(value: Any) -> list[dict[str, str]]:
    text = personal(value)
    return [] if text is None else [{"text": text}]


class ProgrammeMapping:
    """The resources of one programme, from its events in version order."""

    def __init__(self, clinic_id: str, clinic_name: str | None, programme_id: str,
                 events: Sequence[Mapping[str, Any]]) -> None:
        self.clinic_id = clinic_id
        self.clinic_name = clinic_name
        self.programme_id = str(programme_id)
        self.events = events
        # The data in force: a correction replaces the whole data of what it corrects.
        self.corrected: dict[str, Mapping[str, Any]] = {}
        self.corrections: dict[str, list[Mapping[str, Any]]] = {}
        for event in events:
            if event["type"] == "EntryCorrected" and not event.get("newer_release"):
                target = str(event["data"]["corrects"])
                self.corrected[target] = event["data"]["data"]
                self.corrections.setdefault(target, []).append(event)
        started = next(e for e in events if e["type"] == "ProgrammeStarted")
        self.started = started
        self.patient = patient(clinic_id, started["data"]["patient_ref"])
        self.episode = reference("EpisodeOfCare", self.programme_id)
        self.condition_id = f"condition-{self.programme_id}"
        self.status = "active"
        self.plan_revisions: list[Mapping[str, Any]] = []
        self.resource_types: dict[str, str] = {}

    # ---- the whole programme ---------------------------------------------------

    def resources(self) -> list[Resource]:
        body = list(self._event_resources())
        return [self.organization(), self.episode_of_care(), self.condition(),
                *self.care_plans(), *body]

    def _event_resources(self) -> Iterator[Resource]:
        for event in self.events:
            kind = event["type"]
            if event.get("newer_release"):
                continue  # a later release's event: this one cannot say what it means
            if kind == "ProgrammeStarted":
                self.plan_revisions.append(event)
                baseline = self.baseline_observation(event)
                self.resource_types[str(event["event_id"])] = "Observation"
                yield baseline
            elif kind == "PlanAdjusted":
                self.plan_revisions.append(event)
            elif kind == "SessionCompleted":
                yield self._noted(self.session_procedure(event))
            elif kind == "SessionMissed":
                yield self._noted(self.missed_procedure(event))
            elif kind == "PainReported":
                yield self._noted(self.pain_observation(event))
            elif kind == "AdverseEventReported":
                yield self._noted(self.adverse_event(event))
            elif kind == "ProgrammePaused":
                self.status = "paused"
            elif kind == "ProgrammeResumed":
                self.status = "active"
            elif kind == "ProgrammeDischarged":
                self.status = "discharged"
            elif kind == "EntryCorrected":
                yield self.provenance(event)

    def _noted(self, resource: Resource) -> Resource:
        self.resource_types[resource["id"]] = resource["resourceType"]
        return resource

    def data(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        """The event's data as in force (its last correction's, if corrected)."""
        return self.corrected.get(str(event["event_id"]), event["data"])

    def common(self, event: Mapping[str, Any]) -> dict[str, Any]:
        return {"id": str(event["event_id"]), "identifier": event_identifier(event["event_id"])}

    def in_programme(self) -> list[dict[str, Any]]:
        return [{"url": terms.EPISODE, "valueReference": {
            **self.episode,
            "identifier": {"system": terms.PROGRAMME_IDS, "value": self.programme_id}}}]

    # ---- the programme, the clinic, the condition, the plan -------------------

    def organization(self) -> Resource:
        found: Resource = {
            "resourceType": "Organization", "id": self.clinic_id,
            "identifier": [{"system": terms.CLINIC_IDS, "value": self.clinic_id}],
            "active": True,
        }
        if self.clinic_name:
            found["name"] = self.clinic_name
        return found

    def episode_of_care(self) -> Resource:
        history: list[dict[str, Any]] = []
        for event in self.events:
            status = {"ProgrammeStarted": "active", "ProgrammePaused": "onhold",
                      "ProgrammeResumed": "active", "ProgrammeDischarged": "finished"
                      }.get(event["type"])
            if status is None:
                continue
            if history:
                history[-1]["period"]["end"] = instant(event["occurred_at"])
            entry: dict[str, Any] = {"status": status,
                                     "period": {"start": instant(event["occurred_at"])}}
            if event["type"] == "ProgrammePaused":
                extension = text_extension(terms.STATUS_REASON, event["data"]["reason"])
                if extension:
                    entry["extension"] = extension
            history.append(entry)
        # The last entry's period is the current status's: it has no end but a finish.
        if history and history[-1]["status"] == "finished":
            history[-1]["period"]["end"] = history[-1]["period"]["start"]
        period = {"start": instant(self.started["occurred_at"])}
        extension = [{"url": terms.CARE_SETTING, "valueCoding": coding(
            terms.SETTING, self.started["data"]["setting"],
            words(self.started["data"]["setting"]))}]
        discharge = next((e for e in self.events if e["type"] == "ProgrammeDischarged"), None)
        if discharge is not None:
            period["end"] = instant(discharge["occurred_at"])
            outcome = discharge["data"]["outcome"]
            extension.append({"url": terms.DISCHARGE_OUTCOME,
                              "valueCoding": coding(terms.OUTCOME, outcome, words(outcome))})
            if discharge["data"].get("notes") is not None:
                extension += text_extension(terms.DISCHARGE_NOTES, discharge["data"]["notes"])
        return {
            "resourceType": "EpisodeOfCare", "id": self.programme_id,
            "extension": extension,
            "identifier": [{"system": terms.PROGRAMME_IDS, "value": self.programme_id}],
            "status": EPISODE_STATUS[self.status],
            "statusHistory": history,
            "type": [concept(terms.LUMBAR_TRACTION, text="Lumbar traction programme")],
            "diagnosis": [{"condition": reference("Condition", self.condition_id)}],
            "patient": self.patient,
            "managingOrganization": reference("Organization", self.clinic_id),
            "period": period,
        }

    def condition(self) -> Resource:
        code = self.started["data"]["condition"]
        return {
            "resourceType": "Condition", "id": self.condition_id,
            "code": concept(coding(terms.CONDITION, code, words(code)), text=words(code)),
            "subject": self.patient,
            "recordedDate": instant(self.started["recorded_at"]),
        }

    def care_plans(self) -> list[Resource]:
        """One CarePlan per revision of the plan: each replaces the one before; only
        the last is in force (the others revoked: replaced)."""
        plans: list[Resource] = []
        plan: dict[str, Any] = {}
        for index, event in enumerate(self.plan_revisions):
            if event["type"] == "ProgrammeStarted":
                plan = dict(event["data"]["plan"])
            else:
                changes = {k: v for k, v in event["data"].items() if k != "reason"}
                plan.update(changes)
                if plan.get("modality") != "mechanical_table":
                    plan.pop("force_percent_body_weight", None)
            last = index == len(self.plan_revisions) - 1
            resource: Resource = {
                "resourceType": "CarePlan", **self.common(event),
                "extension": self.in_programme(),
                "status": PLAN_STATUS[self.status] if last else "revoked",
                "intent": "plan",
                "title": "Lumbar traction plan",
                "subject": self.patient,
                "period": {"start": instant(event["occurred_at"])},
                "created": instant(event["recorded_at"]),
                "addresses": [reference("Condition", self.condition_id)],
                "activity": [{"detail": self.activity(plan, in_force=last)}],
            }
            if plans:
                resource["replaces"] = [reference("CarePlan", plans[-1]["id"])]
                plans[-1]["period"]["end"] = instant(event["occurred_at"])
            if event["type"] == "PlanAdjusted":
                resource["note"] = note(event["data"]["reason"])
                if not resource["note"]:
                    del resource["note"]
            plans.append(resource)
        return plans

    def activity(self, plan: Mapping[str, Any], *, in_force: bool) -> dict[str, Any]:
        extension = [{"url": terms.extension_url("modality"), "valueCoding": coding(
            terms.MODALITY, plan["modality"], words(plan["modality"]))}]
        if plan.get("force_percent_body_weight") is not None:
            extension.append(self.force(plan["force_percent_body_weight"]))
        return {
            "extension": extension,
            "kind": "ServiceRequest",
            "code": concept(terms.LUMBAR_TRACTION),
            # A replaced revision's activity stopped when the next one began.
            "status": "stopped" if not in_force else (
                "in-progress" if self.status == "active" else (
                    "on-hold" if self.status == "paused" else "completed")),
            "scheduledTiming": {"repeat": {
                "frequency": plan["sessions_per_week"], "period": 1, "periodUnit": "wk",
                "duration": plan["minutes_per_session"], "durationUnit": "min"}},
        }

    @staticmethod
    def force(percent: float) -> dict[str, Any]:
        return {"url": terms.FORCE, "valueQuantity": {
            "value": percent, "unit": "% of body weight", "system": terms.UCUM, "code": "%"}}

    # ---- sessions ----------------------------------------------------------------

    def session_procedure(self, event: Mapping[str, Any]) -> Resource:
        data = self.data(event)
        extension = [*self.in_programme(),
                     {"url": terms.SUPERVISED, "valueBoolean": data["supervised"]}]
        if data.get("force_percent_body_weight") is not None:
            extension.append(self.force(data["force_percent_body_weight"]))
        if data.get("discomfort_nrs") is not None:
            extension.append({"url": terms.DISCOMFORT, "valueInteger": data["discomfort_nrs"]})
        used = [concept(coding(terms.MODALITY, data["modality"], words(data["modality"])))]
        if data.get("device"):
            used.append({"text": data["device"]})
        return {
            "resourceType": "Procedure", **self.common(event), "extension": extension,
            "basedOn": [reference("CarePlan", self.plan_in_force_id())],
            "status": "completed",
            "category": concept(terms.THERAPEUTIC_PROCEDURE),
            "code": concept(terms.LUMBAR_TRACTION, text="Lumbar traction"),
            "subject": self.patient,
            "performedPeriod": {"start": instant(event["occurred_at"]),
                                "end": _after(event["occurred_at"], data["duration_minutes"])},
            "recorder": recorder(self.clinic_id, event["recorded_by"]),
            "usedCode": used,
        }

    def missed_procedure(self, event: Mapping[str, Any]) -> Resource:
        reason = event["data"]["reason"]
        return {
            "resourceType": "Procedure", **self.common(event),
            "extension": self.in_programme(),
            "basedOn": [reference("CarePlan", self.plan_in_force_id())],
            "status": "not-done",
            "statusReason": concept(coding(terms.MISSED_REASON, reason, words(reason))),
            "category": concept(terms.THERAPEUTIC_PROCEDURE),
            "code": concept(terms.LUMBAR_TRACTION, text="Lumbar traction"),
            "subject": self.patient,
            "performedDateTime": instant(event["occurred_at"]),
            "recorder": recorder(self.clinic_id, event["recorded_by"]),
        }

    def plan_in_force_id(self) -> str:
        return str(self.plan_revisions[-1]["event_id"])

    # ---- pain reports --------------------------------------------------------------

    def baseline_observation(self, event: Mapping[str, Any]) -> Resource:
        baseline = event["data"]["baseline"]
        return self.observation(event, baseline, terms.BASELINE_CONTEXT, "final")

    def pain_observation(self, event: Mapping[str, Any]) -> Resource:
        data = self.data(event)
        status = "amended" if str(event["event_id"]) in self.corrected else "final"
        return self.observation(event, data, data.get("context"), status)

    def observation(self, event: Mapping[str, Any], data: Mapping[str, Any],
                    context: str | None, status: str) -> Resource:
        extension = self.in_programme()
        if context is not None:
            extension.append({"url": terms.REPORT_CONTEXT,
                              "valueCoding": coding(terms.PAIN_CONTEXT, context, words(context))})
        components = []
        if data.get("odi_percent") is not None:
            components.append({"code": concept(terms.ODI_PERCENT), "valueQuantity": {
                "value": data["odi_percent"], "unit": "%", "system": terms.UCUM, "code": "%"}})
        if data.get("sleep_quality_nrs") is not None:
            components.append({"code": concept(terms.SLEEP_QUALITY_NRS),
                               "valueInteger": data["sleep_quality_nrs"]})
        resource: Resource = {
            "resourceType": "Observation", **self.common(event), "extension": extension,
            "status": status,
            "category": [concept(terms.SURVEY)],
            "code": concept(terms.PAIN_NRS),
            "subject": self.patient,
            "effectiveDateTime": instant(event["occurred_at"]),
            "issued": instant(event["recorded_at"]),
            "valueInteger": data["pain_nrs"],
        }
        if context == terms.BASELINE_CONTEXT:
            # One resource per event: the start's own id is its first CarePlan's.
            resource["id"] = f"{event['event_id']}-baseline"
            resource["identifier"] = [{"system": terms.EVENT_IDS,
                                       "value": f"{event['event_id']}#baseline"}]
        if components:
            resource["component"] = components
        return resource

    # ---- adverse events, corrections ---------------------------------------------

    def adverse_event(self, event: Mapping[str, Any]) -> Resource:
        severity = event["data"]["severity"]
        found: Resource = {
            "resourceType": "AdverseEvent", "id": str(event["event_id"]),
            "identifier": event_identifier(event["event_id"])[0],
            "extension": self.in_programme(),
            "actuality": "actual",
            "subject": self.patient,
            "date": instant(event["occurred_at"]),
            "recordedDate": instant(event["recorded_at"]),
            "recorder": recorder(self.clinic_id, event["recorded_by"]),
            "severity": concept(coding(terms.ADVERSE_EVENT_SEVERITY, severity,
                                       severity.capitalize())),
        }
        description = personal(event["data"]["description"])
        if description is not None:
            found["event"] = {"text": description}
        return found

    def provenance(self, event: Mapping[str, Any]) -> Resource:
        target_id = str(event["data"]["corrects"])
        target_type = self.resource_types.get(target_id, "Observation")
        found: Resource = {
            "resourceType": "Provenance", "id": str(event["event_id"]),
            "target": [reference(target_type, target_id)],
            "occurredDateTime": instant(event["occurred_at"]),
            "recorded": instant(event["recorded_at"]),
            "activity": concept(coding(terms.DATA_OPERATION, "UPDATE", "revise")),
            "agent": [{"type": concept(coding(terms.PROVENANCE_AGENT_TYPE, "author", "Author")),
                       "who": recorder(self.clinic_id, event["recorded_by"])}],
            "entity": [{"role": "revision", "what": {"identifier": {
                "system": terms.EVENT_IDS, "value": target_id}}}],
        }
        reason = personal(event["data"]["reason"])
        if reason is not None:
            found["reason"] = [{"text": reason}]
        return found


def programme_resources(clinic_id: str, clinic_name: str | None, programme_id: str,
                        events: Sequence[Mapping[str, Any]]) -> list[Resource]:
    """The resources of one programme, from its events in version order."""
    return ProgrammeMapping(clinic_id, clinic_name, programme_id, events).resources()


def full_url(base: str, resource: Resource) -> str:
    """The resource's absolute URL under the clinic's FHIR base: the relative
    references between resources resolve against it."""
    return f"{base}/{resource['resourceType']}/{resource['id']}"


def collection(base: str, resources: Sequence[Resource], timestamp: str) -> Resource:
    """A Bundle of type collection of `resources`."""
    return {
        "resourceType": "Bundle", "type": "collection", "timestamp": timestamp,
        "entry": [{"fullUrl": full_url(base, r), "resource": r} for r in resources],
    }
