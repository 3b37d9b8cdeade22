"""Replaying a programme's events rebuilds exactly the programme that recorded them.

A scripted history checks every prefix against hand-counted numbers; a
property test runs random command sequences against a small model of the
rules and checks that refusals change nothing, invariants hold after every
accepted command, and a replay from scratch equals the live aggregate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain import errors
from domain.programme import CLOCK_SKEW_ALLOWANCE, Programme, derived_event_id
from tests.builders import correction_data, session_data, start_data

PROGRAMME_ID = uuid.UUID("9d2b7c1a-5e44-4f0b-8a31-7c6d5e4f3a21")
CLINIC = "clinic-south"
BY = "physio.kim"
T0 = datetime(2025, 1, 6, 8, 30, tzinfo=UTC)
NOW = T0 + timedelta(days=365)
IDS = uuid.UUID("c3e1a0f2-7b6d-4e59-8a4c-2d1f0e9b8a77")


def event_id(name: str) -> uuid.UUID:
    """A stable event_id, so that two runs of one script record identical events."""
    return uuid.uuid5(IDS, name)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def replay(events: list[Any]) -> Programme | None:
    programme = None
    for e in events:
        programme = e.mutate(programme)
    return programme


#: The scripted programme's start: the shared builders' patient, in a hybrid setting.
START_DATA = start_data(setting="hybrid")


#: (command, event name, day, data) after the start; two names for one severe event.
SCRIPT: list[tuple[str, str, float, dict[str, Any]]] = [
    ("complete_session", "s1", 1, session_data(duration_minutes=30)),
    ("report_pain", "r1", 1.1, {"pain_nrs": 6, "context": "after_session"}),
    ("miss_session", "m1", 2, {"reason": "schedule"}),
    ("complete_session", "s2", 3, session_data(duration_minutes=25)),
    ("adjust_plan", "a1", 4, {"sessions_per_week": 2, "reason": "tolerating well"}),
    ("report_adverse_event", "ae1", 5, {"severity": "mild", "description": "soreness"}),
    ("report_adverse_event", "ae2", 6, {"severity": "severe", "description": "numbness"}),
    ("report_pain", "r2", 7, {"pain_nrs": 5}),
    ("resume", "res1", 8, {}),
    ("adjust_plan", "a2", 9, {"modality": "decompression_mat", "sessions_per_week": 21,
                              "minutes_per_session": 15, "reason": "continue at home"}),
    ("complete_session", "s3", 10, {"modality": "decompression_mat", "duration_minutes": 15,
                                    "supervised": False}),
    ("correct_entry", "c1", 11,
     correction_data(event_id("s1"), session_data(duration_minutes=40), reason="typo")),
    ("pause", "p1", 12, {"reason": "holiday"}),
    ("resume", "res2", 14, {}),
    ("report_pain", "r3", 15, {"pain_nrs": 3, "context": "follow_up"}),
    ("discharge", "d1", 16, {"outcome": "improved"}),
    ("correct_entry", "c2", 17, {"corrects": str(event_id("r2")), "data": {"pain_nrs": 4},
                                 "reason": "misread"}),
]

#: After each event (version N): type, status, completed, missed, minutes, reports,
#: adverse (mild, moderate, severe), modality, adjustments, corrections.
EXPECTED = [
    ("ProgrammeStarted", "active", 0, 0, 0, 0, (0, 0, 0), "mechanical_table", 0, 0),
    ("SessionCompleted", "active", 1, 0, 30, 0, (0, 0, 0), "mechanical_table", 0, 0),
    ("PainReported", "active", 1, 0, 30, 1, (0, 0, 0), "mechanical_table", 0, 0),
    ("SessionMissed", "active", 1, 1, 30, 1, (0, 0, 0), "mechanical_table", 0, 0),
    ("SessionCompleted", "active", 2, 1, 55, 1, (0, 0, 0), "mechanical_table", 0, 0),
    ("PlanAdjusted", "active", 2, 1, 55, 1, (0, 0, 0), "mechanical_table", 1, 0),
    ("AdverseEventReported", "active", 2, 1, 55, 1, (1, 0, 0), "mechanical_table", 1, 0),
    ("AdverseEventReported", "active", 2, 1, 55, 1, (1, 0, 1), "mechanical_table", 1, 0),
    ("ProgrammePaused", "paused", 2, 1, 55, 1, (1, 0, 1), "mechanical_table", 1, 0),
    ("PainReported", "paused", 2, 1, 55, 2, (1, 0, 1), "mechanical_table", 1, 0),
    ("ProgrammeResumed", "active", 2, 1, 55, 2, (1, 0, 1), "mechanical_table", 1, 0),
    ("PlanAdjusted", "active", 2, 1, 55, 2, (1, 0, 1), "decompression_mat", 2, 0),
    ("SessionCompleted", "active", 3, 1, 70, 2, (1, 0, 1), "decompression_mat", 2, 0),
    ("EntryCorrected", "active", 3, 1, 80, 2, (1, 0, 1), "decompression_mat", 2, 1),
    ("ProgrammePaused", "paused", 3, 1, 80, 2, (1, 0, 1), "decompression_mat", 2, 1),
    ("ProgrammeResumed", "active", 3, 1, 80, 2, (1, 0, 1), "decompression_mat", 2, 1),
    ("PainReported", "active", 3, 1, 80, 3, (1, 0, 1), "decompression_mat", 2, 1),
    ("ProgrammeDischarged", "discharged", 3, 1, 80, 3, (1, 0, 1), "decompression_mat", 2, 1),
    ("EntryCorrected", "discharged", 3, 1, 80, 3, (1, 0, 1), "decompression_mat", 2, 2),
]


def scripted(commands: int = len(SCRIPT)) -> Programme:
    """The scripted programme after its start and the first `commands` commands."""
    p = Programme.start(programme_id=PROGRAMME_ID, clinic_id=CLINIC,
                        event_id=event_id("start"), occurred_at=T0, recorded_by=BY,
                        data=START_DATA, now=NOW)
    for command, name, when, data in SCRIPT[:commands]:
        getattr(p, command)(event_id(name), day(when), BY, data, NOW)
    return p


@pytest.fixture(scope="module")
def history() -> list[Any]:
    return list(scripted().collect_events())


def test_the_script_records_the_expected_events(history):
    assert [type(e).__name__ for e in history] == [row[0] for row in EXPECTED]
    assert [e.originator_version for e in history] == list(range(1, len(EXPECTED) + 1))
    assert all(e.originator_id == PROGRAMME_ID for e in history)
    # The automatic pause follows its severe adverse event, with a derived id.
    assert history[8].event_id == derived_event_id(history[7].event_id, "pause")
    assert history[7].event_id == event_id("ae2")


@pytest.mark.parametrize("n", range(1, len(EXPECTED) + 1))
def test_replaying_each_prefix_gives_the_hand_counted_numbers(history, n):
    p = replay(history[:n])
    state = p.state()
    _, status, completed, missed, minutes, reports, adverse, modality, adjustments, fixes = (
        EXPECTED[n - 1]
    )
    assert state["version"] == n
    assert state["status"] == status
    assert state["sessions_completed"] == completed
    assert state["sessions_missed"] == missed
    assert state["minutes_completed"] == minutes
    assert state["pain_reports"] == reports
    assert state["adverse_events"] == dict(zip(("mild", "moderate", "severe"), adverse,
                                               strict=True))
    assert state["plan"]["modality"] == modality
    assert ("force_percent_body_weight" in state["plan"]) == (modality == "mechanical_table")
    assert state["plan_adjustments"] == adjustments
    assert state["corrections"] == fixes
    assert state["last_occurred_at"] == history[n - 1].occurred_at.isoformat()
    assert p.pending_events == []


@pytest.mark.parametrize("k", range(len(SCRIPT) + 1))
def test_replaying_the_events_of_k_commands_equals_issuing_only_those_commands(history, k):
    live = scripted(k)
    assert replay(history[: live.version]).state() == live.state()


def test_the_final_state_after_replay(history):
    state = replay(history).state()
    assert state["status"] == "discharged"
    assert state["outcome"] == "improved"
    assert state["discharged_at"] == day(16).isoformat()
    assert state["plan"] == {"modality": "decompression_mat", "sessions_per_week": 21,
                             "minutes_per_session": 15}
    assert state["paused_reason"] is None


def test_replayed_entries_carry_the_corrected_data(history):
    p = replay(history)
    assert p.entries[str(event_id("s1"))]["data"]["duration_minutes"] == 40
    # The scale is recorded with every report (nrs_11 when none is posted).
    assert p.entries[str(event_id("r2"))]["data"] == {"pain_nrs": 4, "scale": "nrs_11"}
    assert p.entries[str(event_id("r1"))]["data"]["pain_nrs"] == 6


def test_a_replayed_programme_takes_further_commands(history):
    p = replay(history)
    p.correct_entry(event_id("c3"), day(18), BY,
                    {"corrects": str(event_id("s3")),
                     "data": {"modality": "decompression_mat", "duration_minutes": 20,
                              "supervised": False},
                     "reason": "timer"}, NOW)
    assert p.version == len(history) + 1
    assert p.state()["minutes_completed"] == 85
    with pytest.raises(errors.AlreadyDischarged):
        p.report_pain(event_id("r4"), day(18), BY, {"pain_nrs": 2}, NOW)


def test_replaying_does_not_change_the_recorded_events(history):
    snapshot = [(e.event_id, dict(e.data)) for e in history]
    replay(history)
    replay(history)
    assert [(e.event_id, dict(e.data)) for e in history] == snapshot


# ---- property: random command sequences ---------------------------------------

MODALITIES = ["mechanical_table", "decompression_mat", "inversion", "stretching_exercises"]
FORCES = [0.0, 25.0, 30.0, 60.0]


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    modality = draw(st.sampled_from(MODALITIES))
    plan = {"modality": modality,
            "sessions_per_week": draw(st.sampled_from([1, 3, 21, 35])),
            "minutes_per_session": draw(st.sampled_from([5, 15, 30]))}
    if modality == "mechanical_table":
        plan["force_percent_body_weight"] = draw(st.sampled_from(FORCES))
    return plan


@st.composite
def sessions(draw: st.DrawFn) -> dict[str, Any]:
    modality = draw(st.sampled_from(MODALITIES))
    data = {"modality": modality, "duration_minutes": draw(st.integers(1, 240)),
            "supervised": draw(st.booleans())}
    if modality == "mechanical_table":
        data["force_percent_body_weight"] = draw(st.sampled_from(FORCES))
    if draw(st.booleans()):
        data["discomfort_nrs"] = draw(st.integers(0, 10))
    return data


pain_reports = st.fixed_dictionaries(
    {"pain_nrs": st.integers(0, 10)},
    optional={"odi_percent": st.integers(0, 100),
              "context": st.sampled_from(["before_session", "after_session", "follow_up"])},
)

# Small value sets, so that adjustments often change nothing or break the force rule.
adjustments = st.fixed_dictionaries(
    {"reason": st.just("review")},
    optional={"modality": st.sampled_from(MODALITIES),
              "sessions_per_week": st.sampled_from([2, 3, 21]),
              "minutes_per_session": st.sampled_from([15, 30]),
              "force_percent_body_weight": st.sampled_from([25.0, 30.0])},
)

DATA = {
    "SessionCompleted": sessions(),
    "SessionMissed": st.fixed_dictionaries(
        {"reason": st.sampled_from(["pain", "schedule", "equipment", "illness", "other"])}),
    "PainReported": pain_reports,
    "PlanAdjusted": adjustments,
    "AdverseEventReported": st.fixed_dictionaries(
        {"severity": st.sampled_from(["mild", "moderate", "severe"]),
         "description": st.just("reported by the patient")}),
    "ProgrammePaused": st.fixed_dictionaries({"reason": st.sampled_from(["holiday", "flu"])}),
    "ProgrammeResumed": st.just({}),
    "ProgrammeDischarged": st.fixed_dictionaries(
        {"outcome": st.sampled_from(["goals_met", "improved", "no_change", "worsened",
                                     "referred", "dropped_out"])}),
    # `corrects` is filled in when the step runs, from the ids seen so far.
    "EntryCorrected": st.fixed_dictionaries(
        {"data": st.one_of(sessions(), pain_reports), "reason": st.just("typo")}),
}

# Mostly in order; sometimes late (maybe before the start) or at the clock's edges.
TIMINGS = ["next"] * 12 + ["late", "late", "before_start", "edge", "future"]

# Weighted, so that sessions, reports and corrections are common and discharge rare.
KINDS = (["SessionCompleted"] * 4 + ["PainReported"] * 3 + ["EntryCorrected"] * 4
         + ["PlanAdjusted"] * 3 + ["AdverseEventReported"] * 2 + ["ProgrammeResumed"] * 2
         + ["ProgrammePaused"] * 2 + ["SessionMissed", "ProgrammeDischarged"])


assert set(KINDS) == set(Programme.COMMANDS)


@dataclass(frozen=True)
class Step:
    kind: str
    data: dict[str, Any]
    timing: str
    minutes: int
    pick: int


@st.composite
def steps(draw: st.DrawFn) -> Step:
    kind = draw(st.sampled_from(KINDS))
    return Step(kind=kind, data=draw(DATA[kind]), timing=draw(st.sampled_from(TIMINGS)),
                minutes=draw(st.integers(0, 4 * 24 * 60)), pick=draw(st.integers(0, 999)))


@dataclass
class Model:
    """What the rules of docs/events.md say the programme should be, kept independently."""

    plan: dict[str, Any]
    status: str = "active"
    paused_reason: str | None = None
    version: int = 1
    completed: int = 0
    missed: int = 0
    reports: int = 0
    adjustments: int = 0
    corrections: int = 0
    adverse: dict[str, int] = field(
        default_factory=lambda: {"mild": 0, "moderate": 0, "severe": 0})
    entries: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def minutes(self) -> int:
        return sum(d["duration_minutes"] for kind, d in self.entries.values()
                   if kind == "SessionCompleted")

    def plan_after(self, data: dict[str, Any]) -> dict[str, Any]:
        plan = {**self.plan, **{k: v for k, v in data.items() if k != "reason"}}
        if plan["modality"] != "mechanical_table":
            plan.pop("force_percent_body_weight", None)
        return plan

    def violations(self, kind: str, when: datetime, data: dict[str, Any]) -> set[type]:
        """Every rule the step would break (the aggregate names one of them)."""
        broken: set[type] = set()
        if kind != "EntryCorrected" and self.status == "discharged":
            broken.add(errors.AlreadyDischarged)
        if when < T0:
            broken.add(errors.OccurredBeforeStart)
        if when > NOW + CLOCK_SKEW_ALLOWANCE:
            broken.add(errors.OccurredInFuture)
        if (kind in ("SessionCompleted", "SessionMissed", "ProgrammePaused")
                and self.status == "paused"):
            broken.add(errors.ProgrammeIsPaused)
        if kind == "ProgrammeResumed" and self.status != "paused":
            broken.add(errors.ProgrammeNotPaused)
        if kind == "PlanAdjusted":
            changes = {k: v for k, v in data.items() if k != "reason"}
            if all(self.plan.get(k) == v for k, v in changes.items()):
                broken.add(errors.PlanUnchanged)
            on_table = changes.get("modality", self.plan["modality"]) == "mechanical_table"
            if not on_table and "force_percent_body_weight" in changes:
                broken.add(errors.ForceNotAllowed)
            if on_table and "force_percent_body_weight" not in self.plan_after(data):
                broken.add(errors.ForceNotAllowed)
        if kind == "EntryCorrected":
            target = self.entries.get(data["corrects"])
            if target is None:
                broken.add(errors.UnknownCorrectionTarget)
            elif ("modality" in data["data"]) != (target[0] == "SessionCompleted"):
                broken.add(errors.CorrectionDoesNotFit)
        return broken

    def accept(self, kind: str, name: str, data: dict[str, Any]) -> None:
        self.version += 1
        if kind == "SessionCompleted":
            self.completed += 1
            self.entries[name] = (kind, data)
        elif kind == "SessionMissed":
            self.missed += 1
        elif kind == "PainReported":
            self.reports += 1
            self.entries[name] = (kind, data)
        elif kind == "PlanAdjusted":
            self.plan = self.plan_after(data)
            self.adjustments += 1
        elif kind == "AdverseEventReported":
            self.adverse[data["severity"]] += 1
            if data["severity"] == "severe" and self.status == "active":
                self.version += 1
                self.status, self.paused_reason = "paused", "severe_adverse_event"
        elif kind == "ProgrammePaused":
            self.status, self.paused_reason = "paused", data["reason"]
        elif kind == "ProgrammeResumed":
            self.status, self.paused_reason = "active", None
        elif kind == "ProgrammeDischarged":
            self.status, self.paused_reason = "discharged", None
        elif kind == "EntryCorrected":
            self.corrections += 1
            self.entries[data["corrects"]] = (self.entries[data["corrects"]][0], data["data"])

    def expected_state(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "paused_reason": self.paused_reason,
            "plan": self.plan,
            "version": self.version,
            "sessions_completed": self.completed,
            "sessions_missed": self.missed,
            "minutes_completed": self.minutes(),
            "pain_reports": self.reports,
            "plan_adjustments": self.adjustments,
            "corrections": self.corrections,
            "adverse_events": self.adverse,
        }


def check_invariants(state: dict[str, Any], accepted_sessions: int) -> None:
    assert state["status"] in {"active", "paused", "discharged"}
    plan = state["plan"]
    has_force = plan.get("force_percent_body_weight") is not None
    assert has_force == (plan["modality"] == "mechanical_table")
    assert state["sessions_completed"] == accepted_sessions
    assert (state["paused_reason"] is not None) == (state["status"] == "paused")
    assert (state["outcome"] is not None) == (state["status"] == "discharged")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start_plan=plans(), script=st.lists(steps(), min_size=10, max_size=40))
def test_random_histories_obey_the_rules_and_replay_exactly(start_plan, script):
    p = Programme.start(programme_id=PROGRAMME_ID, clinic_id=CLINIC,
                        event_id=event_id("start"), occurred_at=T0, recorded_by=BY,
                        data={**START_DATA, "plan": start_plan}, now=NOW)
    model = Model(plan=dict(start_plan))
    seen = [str(event_id("start")), str(event_id("never recorded"))]
    clock = T0
    accepted_sessions = 0
    for index, step in enumerate(script):
        name = str(event_id(f"step-{index}"))
        if step.timing == "next":
            clock += timedelta(minutes=step.minutes)
            when = clock
        elif step.timing == "late":
            when = clock - timedelta(minutes=step.minutes)
        elif step.timing == "before_start":
            when = T0 - timedelta(seconds=1)
        elif step.timing == "edge":
            when = NOW + CLOCK_SKEW_ALLOWANCE
        else:
            when = NOW + CLOCK_SKEW_ALLOWANCE + timedelta(seconds=1)
        data = step.data
        if step.kind == "EntryCorrected":
            # Mostly a session or pain report recorded so far; sometimes any id seen.
            correctable = list(model.entries)
            candidates = correctable if correctable and step.pick % 4 else seen
            data = {**data, "corrects": candidates[step.pick % len(candidates)]}
        seen.append(name)
        if step.kind == "AdverseEventReported":
            seen.append(str(derived_event_id(uuid.UUID(name), "pause")))

        broken = model.violations(step.kind, when, data)
        before = p.state()
        pending = len(p.pending_events)
        command = getattr(p, Programme.COMMANDS[step.kind])
        try:
            command(uuid.UUID(name), when, BY, data, NOW)
        except errors.DomainRuleViolation as violation:
            # (a) a refused command changes nothing, and it broke a rule the model knows.
            assert type(violation) in broken, (step.kind, type(violation), broken)
            event(f"refused: {violation.rule}")
            assert p.state() == before
            assert len(p.pending_events) == pending
            continue
        assert not broken, (step.kind, broken)
        event(f"accepted: {step.kind}")
        model.accept(step.kind, name, data)
        if step.kind == "SessionCompleted":
            accepted_sessions += 1
        state = p.state()
        # (c) invariants after every accepted command, and the model's numbers.
        check_invariants(state, accepted_sessions)
        assert {k: state[k] for k in model.expected_state()} == model.expected_state()
        assert len(p.pending_events) == state["version"]

    # (b) a replay from scratch gives exactly the live state.
    live = p.state()
    events = list(p.collect_events())
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    assert replay(events).state() == live
