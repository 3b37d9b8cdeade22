"""The Programme aggregate: one patient's course of lumbar traction at one clinic.

Each public command method checks the rules of docs/events.md and raises a named
`DomainRuleViolation` before anything is recorded; the private methods
decorated with `@event` are both the event (its name is the event type of the
API) and the code that applies it to the state, as in the eventsourcing
library's own examples (the commands record them through `_record`). Every
event carries the client's envelope: its `event_id` (the idempotency key),
`occurred_at` (clinical time), `recorded_by` and `data`; what each type's
data holds, and the shape rules the aggregate shares with the HTTP
validation, are in the catalogue (domain/events.py).
"""

from __future__ import annotations

import dataclasses
import inspect
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from eventsourcing.domain import (
    Aggregate,
    CanMutateAggregate,
    DecoratedFuncCaller,
    DomainEvent,
    event,
)
from eventsourcing.domain import decorated_funcs as _decorated_funcs

from domain import errors
from domain.events import (
    PLAN_FIELDS,
    check_correction,
    check_plan_force,
    check_some_plan_field_given,
)
from domain.personal import ERASED
from domain.uuid_texts import UuidTexts
from domain.vocabulary import DEFAULT_PAIN_SCALE, SEVERITIES

#: How far ahead of the server's clock an event's occurred_at may be (rule 4).
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)

#: Namespace for the ids of events the aggregate records by itself (the pause
#: after a severe adverse event), so that they are stable across replays.
DERIVED_EVENT_NAMESPACE = uuid.UUID("5b0c7a52-33a3-4c61-9a36-1f8f1d4f6a10")


def derived_event_id(cause_event_id: uuid.UUID, purpose: str) -> uuid.UUID:
    """The event_id of an event recorded by the aggregate as a consequence of another."""
    return uuid.uuid5(DERIVED_EVENT_NAMESPACE, f"{cause_event_id}:{purpose}")


#: Posted events' ids as text: each is written out twice, as its key in the
#: programme's entries and in its receipt (a bulk chunk needs a thousand or so).
#: Bulk ingest tells it the text a line gave, when canonical, so that neither is made.
EVENT_ID_TEXTS = UuidTexts(kept=10_000)
event_id_text = EVENT_ID_TEXTS.text


def with_scale(report: dict[str, Any]) -> dict[str, Any]:
    """A pain report's data with its scale (the default when it names none)."""
    if "scale" in report:
        return report
    return {**report, "scale": DEFAULT_PAIN_SCALE}


class Programme(Aggregate):
    """A patient's traction programme, identified by the clinic's programme_id."""

    @staticmethod
    def create_id(programme_id: uuid.UUID) -> uuid.UUID:
        # The clinic system chooses the id; it is unique across the service.
        return programme_id

    # ---- starting -------------------------------------------------------

    @classmethod
    def start(
        cls,
        *,
        programme_id: uuid.UUID,
        clinic_id: str,
        event_id: uuid.UUID,
        occurred_at: datetime,
        recorded_by: str,
        data: dict[str, Any],
        now: datetime,
    ) -> Programme:
        """Start a programme (its first event, rule 1)."""
        if occurred_at > now + CLOCK_SKEW_ALLOWANCE:
            raise errors.OccurredInFuture(
                "occurred_at is more than 5 minutes after the server's clock"
            )
        check_plan_force(data["plan"])
        return cls(
            programme_id=programme_id,
            clinic_id=clinic_id,
            event_id=event_id,
            occurred_at=occurred_at,
            recorded_by=recorded_by,
            data=data,
        )

    @event("ProgrammeStarted")
    def __init__(
        self,
        *,
        programme_id: uuid.UUID,
        clinic_id: str,
        event_id: uuid.UUID,
        occurred_at: datetime,
        recorded_by: str,
        data: dict[str, Any],
    ) -> None:
        self.clinic_id = clinic_id
        self.patient_ref: str = data["patient_ref"]
        self.condition: str = data["condition"]
        self.setting: str = data["setting"]
        self.plan: dict[str, Any] = dict(data["plan"])
        self.baseline: dict[str, Any] = dict(data["baseline"])
        self.started_at = occurred_at
        self.last_occurred_at = occurred_at
        self.status = "active"
        self.paused_reason: str | None = None
        self.discharged_at: datetime | None = None
        self.outcome: str | None = None
        self.sessions_missed = 0
        self.plan_adjustments = 0
        self.adverse_events = dict.fromkeys(SEVERITIES, 0)
        # Current data (after corrections) of each correctable event, by event_id.
        self.entries: dict[str, dict[str, Any]] = {}
        self.corrections = 0
        #: When the programme's personal data was erased (server time); None before.
        self.erased_at: datetime | None = None

    # ---- commands -------------------------------------------------------

    def complete_session(self, event_id: uuid.UUID, occurred_at: datetime,
                         recorded_by: str, data: dict[str, Any], now: datetime) -> None:
        self._check_accepting(occurred_at, now)
        self._check_not_paused("a session cannot be completed while the programme is paused")
        check_plan_force(data)
        self._record("SessionCompleted", event_id=event_id, occurred_at=occurred_at,
                     recorded_by=recorded_by, data=data)

    def miss_session(self, event_id: uuid.UUID, occurred_at: datetime,
                     recorded_by: str, data: dict[str, Any], now: datetime) -> None:
        self._check_accepting(occurred_at, now)
        self._check_not_paused("a session cannot be missed while the programme is paused")
        self._record("SessionMissed", event_id=event_id, occurred_at=occurred_at,
                     recorded_by=recorded_by, data=data)

    def report_pain(self, event_id: uuid.UUID, occurred_at: datetime,
                    recorded_by: str, data: dict[str, Any], now: datetime) -> None:
        self._check_accepting(occurred_at, now)
        self._record("PainReported", event_id=event_id, occurred_at=occurred_at,
                     recorded_by=recorded_by, data=with_scale(data))

    def adjust_plan(self, event_id: uuid.UUID, occurred_at: datetime,
                    recorded_by: str, data: dict[str, Any], now: datetime) -> None:
        self._check_accepting(occurred_at, now)
        check_some_plan_field_given(data)
        changes = {k: v for k, v in data.items() if k in PLAN_FIELDS}
        if not any(self.plan.get(k) != v for k, v in changes.items()):
            raise errors.PlanUnchanged("the adjustment does not change any value of the plan")
        if changes.get("modality", self.plan["modality"]) != "mechanical_table":
            if "force_percent_body_weight" in changes:
                raise errors.ForceNotAllowed(
                    "force_percent_body_weight is only allowed with mechanical_table"
                )
        check_plan_force(self._adjusted_plan(changes))
        self._record("PlanAdjusted", event_id=event_id, occurred_at=occurred_at,
                     recorded_by=recorded_by, data=data)

    def report_adverse_event(self, event_id: uuid.UUID, occurred_at: datetime,
                             recorded_by: str, data: dict[str, Any], now: datetime) -> None:
        self._check_accepting(occurred_at, now)
        self._record("AdverseEventReported", event_id=event_id, occurred_at=occurred_at,
                     recorded_by=recorded_by, data=data)
        # A severe adverse event pauses the programme in the same save.
        if data["severity"] == "severe" and self.status == "active":
            self._record(
                "ProgrammePaused",
                event_id=derived_event_id(event_id, "pause"),
                occurred_at=occurred_at,
                recorded_by=recorded_by,
                data={"reason": "severe_adverse_event"},
            )

    def pause(self, event_id: uuid.UUID, occurred_at: datetime,
              recorded_by: str, data: dict[str, Any], now: datetime) -> None:
        self._check_accepting(occurred_at, now)
        self._check_not_paused("the programme is already paused")
        self._record("ProgrammePaused", event_id=event_id, occurred_at=occurred_at,
                     recorded_by=recorded_by, data=data)

    def resume(self, event_id: uuid.UUID, occurred_at: datetime,
               recorded_by: str, data: dict[str, Any], now: datetime) -> None:
        self._check_accepting(occurred_at, now)
        if self.status != "paused":
            raise errors.ProgrammeNotPaused("the programme can only be resumed while paused")
        self._record("ProgrammeResumed", event_id=event_id, occurred_at=occurred_at,
                     recorded_by=recorded_by, data=data)

    def discharge(self, event_id: uuid.UUID, occurred_at: datetime,
                  recorded_by: str, data: dict[str, Any], now: datetime) -> None:
        self._check_accepting(occurred_at, now)
        self._record("ProgrammeDischarged", event_id=event_id, occurred_at=occurred_at,
                     recorded_by=recorded_by, data=data)

    def correct_entry(self, event_id: uuid.UUID, occurred_at: datetime,
                      recorded_by: str, data: dict[str, Any], now: datetime) -> None:
        # Corrections are accepted after discharge and while paused (rule 2).
        self._check_not_erased()
        self._check_time(occurred_at, now)
        target = self.entries.get(str(data["corrects"]))
        if target is None:
            raise errors.UnknownCorrectionTarget(
                "corrects must be the event_id of an earlier SessionCompleted "
                "or PainReported of this programme"
            )
        check_correction(target["type"], data["data"])
        if target["type"] == "PainReported":
            data = {**data, "data": with_scale(data["data"])}
        self._record("EntryCorrected", event_id=event_id, occurred_at=occurred_at,
                     recorded_by=recorded_by, data=data)

    def erase(self, event_id: uuid.UUID, occurred_at: datetime, recorded_by: str,
              reason: str) -> None:
        """Erase the patient's personal data (an administrator's request, recorded by
        the service; the store destroys the programme's data key afterwards)."""
        self._check_not_erased()
        self._record("ProgrammeErased", event_id=event_id, occurred_at=occurred_at,
                     recorded_by=recorded_by, data={"reason": reason})

    #: The command method for each event type a clinic system may post: every type
    #: of the catalogue (domain.events) but ProgrammeStarted, which `start` records
    #: (tests/domain/test_event_catalogue.py holds the two to each other).
    COMMANDS = {
        "SessionCompleted": "complete_session",
        "SessionMissed": "miss_session",
        "PainReported": "report_pain",
        "PlanAdjusted": "adjust_plan",
        "AdverseEventReported": "report_adverse_event",
        "ProgrammePaused": "pause",
        "ProgrammeResumed": "resume",
        "ProgrammeDischarged": "discharge",
        "EntryCorrected": "correct_entry",
    }

    def _record(self, event_type: str, *, event_id: uuid.UUID, occurred_at: datetime,
                recorded_by: str, data: dict[str, Any]) -> None:
        """Record an event of one of the `@event` methods below (by its event type):
        what the library's `trigger_event` does with the class it made for that
        method (what calling the method does), written out for these classes
        (`_RECORDABLE`, checked when it is made): the event made as the frozen
        dataclass's __init__ makes it, the method applied, the version and
        modified_on moved on. The library's generic way cost three times as much,
        in argument binding and per-field set-up (bulk ingest records one per line);
        tests/domain/test_programme_record.py holds the two to each other."""
        recordable = _RECORDABLE.get(event_type)
        if recordable is None:
            self.trigger_event(getattr(type(self), event_type), event_id=event_id,
                               occurred_at=occurred_at, recorded_by=recorded_by, data=data)
            return
        event_class, apply = recordable
        version = self._version + 1
        timestamp = event_class.create_timestamp()
        # The instance dict the dataclass's __init__ would fill, field by field, in
        # its field order (the stored JSON follows it). originator_id needs no
        # check (its __post_init__): this programme was made by an event that had it.
        new_event = object.__new__(event_class)
        object.__setattr__(new_event, "__dict__", {
            "originator_id": self._id, "originator_version": version, "timestamp": timestamp,
            "event_id": event_id, "occurred_at": occurred_at, "recorded_by": recorded_by,
            "data": data})
        # Applied before the version moves on, as the library's mutate does, so a
        # failing method leaves the programme's version and pending events as they were.
        apply(self, event_id, occurred_at, recorded_by, data)
        self._version = version
        self._modified_on = timestamp
        self._pending_events.append(new_event)

    # ---- rules shared by the commands -----------------------------------

    def _check_not_erased(self) -> None:
        if self.erased_at is not None:
            raise errors.ProgrammeErased(
                "the programme's personal data was erased; nothing more is recorded to it")

    def _check_accepting(self, occurred_at: datetime, now: datetime) -> None:
        self._check_not_erased()
        if self.status == "discharged":
            raise errors.AlreadyDischarged(
                "the programme is discharged; only EntryCorrected is accepted"
            )
        self._check_time(occurred_at, now)

    def _check_time(self, occurred_at: datetime, now: datetime) -> None:
        if occurred_at < self.started_at:
            raise errors.OccurredBeforeStart(
                f"occurred_at is before the programme's start ({self.started_at.isoformat()})"
            )
        if occurred_at > now + CLOCK_SKEW_ALLOWANCE:
            raise errors.OccurredInFuture(
                "occurred_at is more than 5 minutes after the server's clock"
            )

    def _check_not_paused(self, detail: str) -> None:
        if self.status == "paused":
            raise errors.ProgrammeIsPaused(detail)

    def _adjusted_plan(self, changes: dict[str, Any]) -> dict[str, Any]:
        plan = {**self.plan, **changes}
        if plan["modality"] != "mechanical_table":
            # Force means nothing off the table: it lapses with the modality.
            plan.pop("force_percent_body_weight", None)
        return plan

    # ---- events (each also applies itself to the state) ------------------

    def _note(self, occurred_at: datetime) -> None:
        self.last_occurred_at = max(self.last_occurred_at, occurred_at)

    @event("SessionCompleted")
    def _session_completed(self, event_id: uuid.UUID, occurred_at: datetime,
                           recorded_by: str, data: dict[str, Any]) -> None:
        self._note(occurred_at)
        self.entries[event_id_text(event_id)] = {"type": "SessionCompleted", "data": dict(data)}

    @event("SessionMissed")
    def _session_missed(self, event_id: uuid.UUID, occurred_at: datetime,
                        recorded_by: str, data: dict[str, Any]) -> None:
        self._note(occurred_at)
        self.sessions_missed += 1

    class PainReported(Aggregate.Event):
        """Version 2 records the scale of the scores (domain/events.py, "changes")."""

        class_version = 2
        event_id: uuid.UUID
        occurred_at: datetime
        recorded_by: str
        data: dict[str, Any]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Every report before version 2 was on the 0-10 numeric rating scale.
            state["data"] = with_scale(state["data"])

    @event(PainReported)
    def _pain_reported(self, event_id: uuid.UUID, occurred_at: datetime,
                       recorded_by: str, data: dict[str, Any]) -> None:
        self._note(occurred_at)
        self.entries[event_id_text(event_id)] = {"type": "PainReported", "data": dict(data)}

    @event("PlanAdjusted")
    def _plan_adjusted(self, event_id: uuid.UUID, occurred_at: datetime,
                       recorded_by: str, data: dict[str, Any]) -> None:
        self._note(occurred_at)
        self.plan = self._adjusted_plan({k: v for k, v in data.items() if k in PLAN_FIELDS})
        self.plan_adjustments += 1

    @event("AdverseEventReported")
    def _adverse_event_reported(self, event_id: uuid.UUID, occurred_at: datetime,
                                recorded_by: str, data: dict[str, Any]) -> None:
        self._note(occurred_at)
        self.adverse_events[data["severity"]] += 1

    @event("ProgrammePaused")
    def _paused(self, event_id: uuid.UUID, occurred_at: datetime,
                recorded_by: str, data: dict[str, Any]) -> None:
        self._note(occurred_at)
        self.status = "paused"
        self.paused_reason = data["reason"]

    @event("ProgrammeResumed")
    def _resumed(self, event_id: uuid.UUID, occurred_at: datetime,
                 recorded_by: str, data: dict[str, Any]) -> None:
        self._note(occurred_at)
        self.status = "active"
        self.paused_reason = None

    @event("ProgrammeDischarged")
    def _discharged(self, event_id: uuid.UUID, occurred_at: datetime,
                    recorded_by: str, data: dict[str, Any]) -> None:
        self._note(occurred_at)
        self.status = "discharged"
        self.paused_reason = None
        self.discharged_at = occurred_at
        self.outcome = data["outcome"]

    class EntryCorrected(Aggregate.Event):
        """Version 2: a pain report's corrected data records its scale, as a report does."""

        class_version = 2
        event_id: uuid.UUID
        occurred_at: datetime
        recorded_by: str
        data: dict[str, Any]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            correction = state["data"]
            # Which type it corrected shows in its data, as it did when it was posted.
            if "pain_nrs" in correction["data"]:
                state["data"] = {**correction, "data": with_scale(correction["data"])}

    @event(EntryCorrected)
    def _entry_corrected(self, event_id: uuid.UUID, occurred_at: datetime,
                         recorded_by: str, data: dict[str, Any]) -> None:
        self._note(occurred_at)
        self.entries[str(data["corrects"])]["data"] = dict(data["data"])
        self.corrections += 1

    @event("ProgrammeErased")
    def _erased(self, event_id: uuid.UUID, occurred_at: datetime,
                recorded_by: str, data: dict[str, Any]) -> None:
        # Not a clinical event: last_occurred_at stays the clinic's.
        self.erased_at = occurred_at
        self.conceal_personal()

    def conceal_personal(self) -> None:
        """Show every personal field as erased (also on a replay to a version before
        the erasure: the erasure reaches back over the whole history)."""
        self.patient_ref = ERASED
        if self.paused_reason is not None:
            self.paused_reason = ERASED

    # ---- reading ---------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The programme as a plain dictionary (current data, corrections applied)."""
        sessions = [e["data"] for e in self.entries.values() if e["type"] == "SessionCompleted"]
        reports = [e["data"] for e in self.entries.values() if e["type"] == "PainReported"]
        return {
            "programme_id": str(self.id),
            "clinic_id": self.clinic_id,
            "patient_ref": self.patient_ref,
            "condition": self.condition,
            "setting": self.setting,
            "status": self.status,
            "paused_reason": self.paused_reason,
            "plan": dict(self.plan),
            "baseline": dict(self.baseline),
            "started_at": self.started_at.isoformat(),
            "discharged_at": self.discharged_at.isoformat() if self.discharged_at else None,
            "outcome": self.outcome,
            "sessions_completed": len(sessions),
            "sessions_missed": self.sessions_missed,
            "minutes_completed": sum(s["duration_minutes"] for s in sessions),
            "pain_reports": len(reports),
            "adverse_events": dict(self.adverse_events),
            "plan_adjustments": self.plan_adjustments,
            "corrections": self.corrections,
            "last_occurred_at": self.last_occurred_at.isoformat(),
            "version": self.version,
        }


#: The event fields each `@event` method of Programme takes, in order: its event
#: class's own fields, after the library's three.
_EVENT_FIELDS = ("event_id", "occurred_at", "recorded_by", "data")
_LIBRARY_FIELDS = ("originator_id", "originator_version", "timestamp")


def _recordable(event_type: str) -> tuple[type, Callable[..., None]] | None:
    """(event class, the `@event` method's function) for `Programme._record`'s own
    way of recording, when that is exactly what the library's `trigger_event`
    does for this class: its fields the ones `_record` fills, in that order, its
    mutate and apply the library's (apply: call the decorated method with the
    fields it names; nothing else), no topic registry (Programme.TOPIC), the
    method taking all four fields. None otherwise (`_record` then triggers it)."""
    event_class = getattr(Programme, event_type, None)
    function = _decorated_funcs.get(event_class)  # type: ignore[arg-type]
    if event_class is None or function is None or getattr(Programme, "TOPIC", None):
        return None
    fields = tuple(f.name for f in dataclasses.fields(event_class))
    parameters = tuple(inspect.signature(function).parameters)
    after_apply = next(c for c in event_class.__mro__[event_class.__mro__.index(
        DecoratedFuncCaller) + 1:] if "apply" in vars(c))
    same = (fields == _LIBRARY_FIELDS + _EVENT_FIELDS
            and parameters == ("self", *_EVENT_FIELDS)
            and event_class.__dataclass_params__.frozen  # type: ignore[attr-defined]
            and event_class.mutate is CanMutateAggregate.mutate
            and event_class.apply is DecoratedFuncCaller.apply
            and after_apply is CanMutateAggregate
            # Its only check, that originator_id is a UUID (see _record).
            and event_class.__post_init__ is DomainEvent.__post_init__)
    return (event_class, function) if same else None


#: What `Programme._record` records its own way, by event type.
_RECORDABLE: dict[str, tuple[type, Callable[..., None]]] = {
    event_type: recordable
    for event_type in (*Programme.COMMANDS, "ProgrammeErased")
    if (recordable := _recordable(event_type)) is not None}
