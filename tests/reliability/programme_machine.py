"""A hypothesis state machine of one programme, driven through the `Programmes`
application on a real SQLite file (R4), against a small model of the rules.

Each step posts 1-3 envelopes (valid or not by the rules: late, early, while
paused, after discharge, unchanged plans, corrections of unknown events),
retries an earlier post, or reuses an event id for other content; with no
expected_version, the right one, or a wrong one. After every step:

- an accepted post keeps every rule: the model predicted it, the state is the
  model's, and the history obeys docs/events.md's rules from start to end;
- a refused post changes nothing: same version, same state, same ledger,
  and the refusal names the rule the model expected;
- replaying the stored events (a second application, no cache) rebuilds the
  same state, now and at every earlier version.

`tests/domain/test_programme_replay.py` does the same on the aggregate alone,
in memory; this one goes through idempotency, expected_version, atomic
batches, the ledger and the store.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from marshmallow import ValidationError

from domain import errors
from domain.application import EventEnvelope
from domain.vocabulary import (
    CONDITIONS,
    MISSED_REASONS,
    MODALITIES,
    OUTCOMES,
    SETTINGS,
    SEVERITIES,
)
from service.bootstrap import open_programmes
from service.http.schemas.events import EventPostSchema
from tests.builders import START
from tests.stores import initialise, programmes_at, settings_for

CLINIC = "clinic-a"
NOW = START + timedelta(days=300)  # the application's clock: fixed, so "future" is exact
PLAN_FIELDS = ("modality", "sessions_per_week", "minutes_per_session", "force_percent_body_weight")
SESSION_FIELDS = ({"modality", "duration_minutes", "supervised"},
                  {"force_percent_body_weight", "discomfort_nrs"})
PAIN_FIELDS = ({"pain_nrs"}, {"odi_percent", "sleep_quality_nrs", "context"})
#: What a step may post, sessions and pain reports the most often (and, rarely,
#: a second ProgrammeStarted).
EVENT_KINDS = (
    "SessionCompleted", "SessionCompleted", "SessionCompleted",
    "SessionMissed", "SessionMissed", "PainReported", "PainReported", "PlanAdjusted",
    "AdverseEventReported", "AdverseEventReported", "ProgrammePaused", "ProgrammePaused",
    "ProgrammeResumed", "ProgrammeResumed", "ProgrammeDischarged", "EntryCorrected",
    "EntryCorrected",
)


class Refused(Exception):
    """The model's prediction: the post is refused, for this rule."""

    def __init__(self, rule: str) -> None:
        super().__init__(rule)
        self.rule = rule


@dataclass
class Model:
    """The programme as docs/events.md describes it, kept by the test itself."""

    started_at: datetime | None = None
    status: str = "none"
    paused_reason: str | None = None
    plan: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    patient_ref: str = ""
    condition: str = ""
    setting: str = ""
    version: int = 0
    last_occurred_at: datetime | None = None
    discharged_at: datetime | None = None
    outcome: str | None = None
    missed: int = 0
    adjustments: int = 0
    corrections: int = 0
    adverse: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    #: Current data of each session and pain report, by event id (corrections applied).
    entries: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def apply(self, envelope: EventEnvelope) -> int:
        """Apply one envelope as the rules say; the number of events it records."""
        kind, at, data = envelope.type, envelope.occurred_at, envelope.data
        if kind == "ProgrammeStarted":
            if self.status != "none":
                raise Refused("programme_already_started")
            if at > NOW + timedelta(minutes=5):
                raise Refused("occurred_in_future")
            self.started_at = self.last_occurred_at = at
            self.status = "active"
            self.plan, self.baseline = dict(data["plan"]), dict(data["baseline"])
            self.patient_ref, self.condition = data["patient_ref"], data["condition"]
            self.setting = data["setting"]
            return self._recorded(at, 1)
        if self.status == "none":
            raise Refused("not_found")
        if kind != "EntryCorrected" and self.status == "discharged":
            raise Refused("programme_discharged")
        assert self.started_at is not None
        if at < self.started_at:
            raise Refused("occurred_before_start")
        if at > NOW + timedelta(minutes=5):
            raise Refused("occurred_in_future")
        if kind in ("SessionCompleted", "SessionMissed", "ProgrammePaused"):
            if self.status == "paused":
                raise Refused("programme_paused")
        if kind in ("SessionCompleted", "PainReported"):
            self.entries[str(envelope.event_id)] = (kind, dict(data))
        elif kind == "SessionMissed":
            self.missed += 1
        elif kind == "PlanAdjusted":
            self._adjust(data)
        elif kind == "AdverseEventReported":
            self.adverse[data["severity"]] += 1
            if data["severity"] == "severe" and self.status == "active":
                self.status, self.paused_reason = "paused", "severe_adverse_event"
                return self._recorded(at, 2)
        elif kind == "ProgrammePaused":
            self.status, self.paused_reason = "paused", data["reason"]
        elif kind == "ProgrammeResumed":
            if self.status != "paused":
                raise Refused("programme_not_paused")
            self.status, self.paused_reason = "active", None
        elif kind == "ProgrammeDischarged":
            self.status, self.paused_reason = "discharged", None
            self.discharged_at, self.outcome = at, data["outcome"]
        elif kind == "EntryCorrected":
            self._correct(data)
        return self._recorded(at, 1)

    def _recorded(self, at: datetime, events: int) -> int:
        assert self.last_occurred_at is not None
        self.last_occurred_at = max(self.last_occurred_at, at)
        self.version += events
        return events

    def _adjust(self, data: dict[str, Any]) -> None:
        changes = {k: v for k, v in data.items() if k in PLAN_FIELDS}
        if all(self.plan.get(k) == v for k, v in changes.items()):
            raise Refused("plan_unchanged")
        modality = changes.get("modality", self.plan["modality"])
        if modality != "mechanical_table" and "force_percent_body_weight" in changes:
            raise Refused("force_requires_mechanical_table")
        plan = {**self.plan, **changes}
        if plan["modality"] != "mechanical_table":
            plan.pop("force_percent_body_weight", None)
        elif plan.get("force_percent_body_weight") is None:
            raise Refused("force_requires_mechanical_table")
        self.plan = plan
        self.adjustments += 1

    def _correct(self, data: dict[str, Any]) -> None:
        target = self.entries.get(str(data["corrects"]))
        if target is None:
            raise Refused("correction_target_unknown")
        required, optional = SESSION_FIELDS if target[0] == "SessionCompleted" else PAIN_FIELDS
        given = set(data["data"])
        if not required <= given or not given <= required | optional:
            raise Refused("correction_data_mismatch")
        self.entries[str(data["corrects"])] = (target[0], dict(data["data"]))
        self.corrections += 1

    def state(self, programme_id: uuid.UUID) -> dict[str, Any]:
        """What `Programme.state()` must answer."""
        assert self.started_at is not None and self.last_occurred_at is not None
        sessions = [d for kind, d in self.entries.values() if kind == "SessionCompleted"]
        return {
            "programme_id": str(programme_id), "clinic_id": CLINIC,
            "patient_ref": self.patient_ref, "condition": self.condition,
            "setting": self.setting, "status": self.status,
            "paused_reason": self.paused_reason, "plan": self.plan, "baseline": self.baseline,
            "started_at": self.started_at.isoformat(),
            "discharged_at": self.discharged_at.isoformat() if self.discharged_at else None,
            "outcome": self.outcome,
            "sessions_completed": len(sessions), "sessions_missed": self.missed,
            "minutes_completed": sum(s["duration_minutes"] for s in sessions),
            "pain_reports": sum(kind == "PainReported" for kind, _ in self.entries.values()),
            "adverse_events": self.adverse, "plan_adjustments": self.adjustments,
            "corrections": self.corrections,
            "last_occurred_at": self.last_occurred_at.isoformat(), "version": self.version,
        }


# ---- what clinic systems post ------------------------------------------------

#: Hours after the programme's start: mostly within its first 90 days, sometimes
#: before the start, sometimes hours past the application's clock.
FUTURE = int((NOW - START).total_seconds() // 3600) + 2
offset_weights = st.sampled_from(["usual"] * 16 + ["early", "future"])
force = st.integers(0, 60) | st.floats(0, 60, allow_nan=False).map(lambda f: round(f, 1))


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    modality = draw(st.sampled_from(MODALITIES))
    plan = {"modality": modality, "sessions_per_week": draw(st.integers(1, 35)),
            "minutes_per_session": draw(st.integers(1, 180))}
    if modality == "mechanical_table":
        plan["force_percent_body_weight"] = draw(force)
    return plan


@st.composite
def session_data(draw: st.DrawFn) -> dict[str, Any]:
    modality = draw(st.sampled_from(MODALITIES))
    data = {"modality": modality, "duration_minutes": draw(st.integers(1, 240)),
            "supervised": draw(st.booleans())}
    if modality == "mechanical_table":
        data["force_percent_body_weight"] = draw(force)
    if draw(st.booleans()):
        data["discomfort_nrs"] = draw(st.integers(0, 10))
    return data


@st.composite
def pain_data(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {"pain_nrs": draw(st.integers(0, 10))}
    if draw(st.booleans()):
        data["context"] = draw(st.sampled_from(["before_session", "after_session", "follow_up"]))
    return data


@st.composite
def adjustments(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {"reason": "review"}
    modality = draw(st.none() | st.sampled_from(MODALITIES))
    if modality is not None:
        data["modality"] = modality
    if modality == "mechanical_table" or (modality is None and draw(st.booleans())):
        data["force_percent_body_weight"] = draw(force)
    if draw(st.booleans()):
        data["sessions_per_week"] = draw(st.integers(1, 35))
    if len(data) == 1 or draw(st.booleans()):
        data["minutes_per_session"] = draw(st.integers(1, 180))
    return data


def raw_envelope(kind: str, hour: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": kind,
            "occurred_at": (START + timedelta(hours=hour)).isoformat(),
            "recorded_by": "physio.anna", "data": data}


def load(raw: list[dict[str, Any]]) -> list[EventEnvelope]:
    """Through the API's own schema, as a post would be (schema refusals are not
    the aggregate's business: such steps are skipped)."""
    try:
        loaded = EventPostSchema().load({"events": copy.deepcopy(raw)})
    except ValidationError:
        assume(False)
        raise
    return [EventEnvelope(**e) for e in loaded["events"]]


# ---- the machine ---------------------------------------------------------------


class ProgrammeMachine(RuleBasedStateMachine):
    #: The SQLite file, set by the test before the machine runs.
    database_url: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.app = programmes_at(self.database_url, clock=lambda: NOW)
        # A replayer with no cache: every read replays the stored events.
        self.replayer = open_programmes(settings_for(self.database_url, aggregate_cache_size=0),
                                        clock=lambda: NOW)
        self.programme_id = uuid.uuid4()
        self.model = Model()
        #: Accepted posts: (raw envelopes, receipt body).
        self.accepted: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
        #: The state after each version that ended an accepted post.
        self.snapshots: dict[int, dict[str, Any]] = {}

    def teardown(self) -> None:
        try:
            for version, state in self.snapshots.items():
                replayed = self.replayer.programme(CLINIC, self.programme_id, version=version)
                assert replayed.state() == state, f"version {version} replays differently"
        finally:
            self.app.close()
            self.replayer.close()

    # ---- steps --------------------------------------------------------------

    @rule(data=st.data(), size=st.integers(1, 3),
          expected=st.sampled_from(["none", "right", "wrong"]))
    def post(self, data: st.DataObject, size: int, expected: str) -> None:
        raw = [self._draw_event(data, first=i == 0) for i in range(size)]
        envelopes = load(raw)
        expected_version = {"none": None, "right": self.model.version,
                            "wrong": self.model.version + data.draw(st.integers(1, 3))}[expected]
        predicted = copy.deepcopy(self.model)
        try:
            if expected == "wrong":
                raise Refused("version_conflict")
            for envelope in envelopes:
                predicted.apply(envelope)
        except Refused as refused:
            self._expect_refusal(envelopes, expected_version, refused.rule)
            return
        receipt = self.app.record_events(CLINIC, self.programme_id, envelopes, expected_version)
        assert not receipt.replayed
        assert receipt.version == predicted.version
        posted = [e["event_id"] for e in raw]
        assert [r["event_id"] for r in receipt.recorded if r["event_id"] in posted] == posted
        self.model = predicted
        self.accepted.append((raw, receipt.body()))
        self.snapshots[self.model.version] = self.model.state(self.programme_id)

    @precondition(lambda self: self.accepted)
    @rule(data=st.data())
    def retry_an_earlier_post(self, data: st.DataObject) -> None:
        raw, original = data.draw(st.sampled_from(self.accepted))
        before = self._stored()
        receipt = self.app.record_events(CLINIC, self.programme_id, load(raw))
        assert receipt.replayed and receipt.body() == original
        assert self._stored() == before, "a retry recorded something"

    @precondition(lambda self: self.accepted)
    @rule(data=st.data())
    def reuse_an_event_id_for_other_content(self, data: st.DataObject) -> None:
        raw, _ = data.draw(st.sampled_from(self.accepted))
        changed = copy.deepcopy(raw)
        changed[0]["recorded_by"] = "someone.else"
        self._expect_refusal(load(changed), None, "event_id_conflict")

    # ---- after every step -------------------------------------------------------

    @invariant()
    def state_is_the_models_and_replays_the_same(self) -> None:
        if self.model.status == "none":
            return
        live = self.app.programme(CLINIC, self.programme_id).state()
        assert live == self.model.state(self.programme_id)
        assert self.replayer.programme(CLINIC, self.programme_id).state() == live

    @invariant()
    def history_obeys_the_rules(self) -> None:
        if self.model.status == "none":
            return
        check_history(self.app.history(CLINIC, self.programme_id))

    # ---- helpers --------------------------------------------------------------

    def _draw_event(self, data: st.DataObject, first: bool) -> dict[str, Any]:
        if self.model.status == "none" and first:
            kinds: tuple[str, ...] = ("ProgrammeStarted",) * 5 + ("PainReported",)
        else:
            kinds = EVENT_KINDS if data.draw(st.integers(0, 29)) else ("ProgrammeStarted",)
        kind = data.draw(st.sampled_from(kinds))
        when = data.draw(offset_weights)
        hour = data.draw({"usual": st.integers(0, 24 * 90), "early": st.integers(-48, -1),
                          "future": st.just(FUTURE)}[when])
        if self.model.started_at is not None and when != "future":
            hour += int((self.model.started_at - START).total_seconds() // 3600)
        if kind == "ProgrammeStarted":
            body: dict[str, Any] = {
                "patient_ref": "pt-0042", "condition": data.draw(st.sampled_from(CONDITIONS)),
                "setting": data.draw(st.sampled_from(SETTINGS)), "plan": data.draw(plans()),
                "baseline": {"pain_nrs": data.draw(st.integers(0, 10))}}
            if self.model.status == "none" and when == "usual":
                hour = hour % 48
            return raw_envelope(kind, hour, body)
        body = {
            "SessionCompleted": lambda: data.draw(session_data()),
            "SessionMissed": lambda: {"reason": data.draw(st.sampled_from(MISSED_REASONS))},
            "PainReported": lambda: data.draw(pain_data()),
            "PlanAdjusted": lambda: data.draw(adjustments()),
            "AdverseEventReported": lambda: {
                "severity": data.draw(st.sampled_from(SEVERITIES)), "description": "sore"},
            "ProgrammePaused": lambda: {"reason": "travel"},
            "ProgrammeResumed": dict,
            "ProgrammeDischarged": lambda: {"outcome": data.draw(st.sampled_from(OUTCOMES))},
            "EntryCorrected": lambda: {
                "corrects": data.draw(st.sampled_from([*self.model.entries, str(uuid.uuid4())])),
                "data": data.draw(session_data() | pain_data()), "reason": "typo"},
        }[kind]()
        return raw_envelope(kind, hour, body)

    def _stored(self) -> tuple[int, list[Any]]:
        entries = self.app.ledger.entries_of_programme(self.programme_id)
        return len(entries), entries

    def _expect_refusal(self, envelopes: list[EventEnvelope], expected_version: int | None,
                        rule_name: str) -> None:
        before = self._stored()
        state = (self.app.programme(CLINIC, self.programme_id).state()
                 if self.model.status != "none" else None)
        try:
            self.app.record_events(CLINIC, self.programme_id, envelopes, expected_version)
        except errors.DomainRuleViolation as violation:
            assert violation.rule == rule_name, (violation.rule, rule_name)
        except errors.ProgrammeNotFound:
            assert rule_name == "not_found"
        except errors.VersionConflict:
            assert rule_name == "version_conflict"
        except errors.EventIdConflict:
            assert rule_name == "event_id_conflict"
        else:
            raise AssertionError(f"accepted, but the model refuses it: {rule_name}")
        assert self._stored() == before, "a refused post recorded something"
        if state is not None:
            assert self.app.programme(CLINIC, self.programme_id).state() == state


def machine_on(database_url: str) -> type[ProgrammeMachine]:
    """The machine class, bound to a store whose tables are made here."""
    initialise(database_url)
    return type("ProgrammeMachineOnStore", (ProgrammeMachine,), {"database_url": database_url})


def check_history(history: list[dict[str, Any]]) -> None:
    """docs/events.md's rules, checked on a recorded history from start to end."""
    assert [e["version"] for e in history] == list(range(1, len(history) + 1))
    positions = [e["position"] for e in history]
    assert positions == sorted(set(positions)), "positions not increasing"
    assert history[0]["type"] == "ProgrammeStarted"
    assert all(e["type"] != "ProgrammeStarted" for e in history[1:]), "started twice"
    start = datetime.fromisoformat(history[0]["occurred_at"])
    status = "active"
    for event in history[1:]:
        kind = event["type"]
        assert datetime.fromisoformat(event["occurred_at"]) >= start, "before the start"
        assert datetime.fromisoformat(event["occurred_at"]) <= NOW + timedelta(minutes=5)
        if status == "discharged":
            assert kind == "EntryCorrected", f"{kind} after discharge"
        if status == "paused":
            assert kind not in ("SessionCompleted", "SessionMissed", "ProgrammePaused"), (
                f"{kind} while paused")
        if kind == "ProgrammeResumed":
            assert status == "paused", "resumed while not paused"
        status = {"ProgrammePaused": "paused", "ProgrammeResumed": "active",
                  "ProgrammeDischarged": "discharged"}.get(kind, status)
    ids = [e["event_id"] for e in history]
    assert len(ids) == len(set(ids)), "an event id recorded twice"
