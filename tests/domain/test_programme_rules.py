"""The rules of docs/events.md, as the Programme aggregate enforces them (no database).

Every command is called directly on the aggregate with explicit `occurred_at`
and `now`, so nothing here depends on the wall clock. Every refusal is checked
for its exact error class and `rule`, and for leaving the programme untouched.
How the application runs posted envelopes as these commands is checked through
`Programmes` in memory, as a clinic system would post them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from domain import errors
from domain.application import Programmes, Receipt
from domain.programme import CLOCK_SKEW_ALLOWANCE, Programme, derived_event_id
from tests import builders as b
from tests.builders import (
    RECORDED_BY,
    START,
    correction_data,
    mat_plan_data,
    moment,
    pain_data,
    plan_data,
    session_data,
    start_data,
)

PROGRAMME_ID = uuid.UUID("0b6f2f64-2c1e-4d55-9a61-1c0a3c2b7e01")
CLINIC = "clinic-north"
BY = RECORDED_BY
T0 = START  # the programme's start; `moment(days)` is a moment after it
NOW = T0 + timedelta(days=120)  # the server's clock in these tests


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def start(
    plan: dict[str, Any] | None = None,
    occurred_at: datetime = T0,
    now: datetime = NOW,
    event_id: uuid.UUID | None = None,
    programme_id: uuid.UUID = PROGRAMME_ID,
) -> Programme:
    return Programme.start(
        programme_id=programme_id,
        clinic_id=CLINIC,
        event_id=event_id or new_id(),
        occurred_at=occurred_at,
        recorded_by=BY,
        data=start_data() if plan is None else start_data(plan=plan),
        now=now,
    )


def types_of(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def assert_refused(
    p: Programme, command: str, error: type[errors.DomainRuleViolation], rule: str,
    data: dict[str, Any], occurred_at: datetime, now: datetime = NOW,
) -> errors.DomainRuleViolation:
    """Call `command`, expect exactly `error` with `rule`, and check nothing changed."""
    before_state = p.state()
    before_version = p.version
    before_pending = [e.event_id for e in p.pending_events]
    with pytest.raises(errors.DomainRuleViolation) as caught:
        getattr(p, command)(new_id(), occurred_at, BY, data, now)
    assert type(caught.value) is error
    assert caught.value.rule == rule
    assert caught.value.detail == str(caught.value)
    assert caught.value.detail  # a clear reason, not an empty message
    assert p.state() == before_state
    assert p.version == before_version
    assert [e.event_id for e in p.pending_events] == before_pending
    return caught.value


# ---- the error classes ------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "rule"),
    [
        (errors.NotStarted, "first_event_must_be_programme_started"),
        (errors.AlreadyStarted, "programme_already_started"),
        (errors.AlreadyDischarged, "programme_discharged"),
        (errors.ProgrammeIsPaused, "programme_paused"),
        (errors.ProgrammeNotPaused, "programme_not_paused"),
        (errors.OccurredBeforeStart, "occurred_before_start"),
        (errors.OccurredInFuture, "occurred_in_future"),
        (errors.PlanUnchanged, "plan_unchanged"),
        (errors.ForceNotAllowed, "force_requires_mechanical_table"),
        (errors.UnknownCorrectionTarget, "correction_target_unknown"),
        (errors.CorrectionDoesNotFit, "correction_data_mismatch"),
    ],
)
def test_each_rule_has_its_own_error_class_and_rule_name(error, rule):
    assert issubclass(error, errors.DomainRuleViolation)
    assert error.rule == rule
    violation = error("why")
    assert violation.detail == "why"
    assert violation.event_index is None and violation.event_id is None


# ---- rule 1: the first event is ProgrammeStarted, once ----------------------


def test_start_records_programme_started_with_the_initial_state():
    started_id = new_id()
    p = start(event_id=started_id)

    assert p.id == PROGRAMME_ID
    assert p.version == 1
    assert types_of(p.pending_events) == ["ProgrammeStarted"]
    assert p.pending_events[0].event_id == started_id
    assert p.pending_events[0].occurred_at == T0
    assert p.pending_events[0].recorded_by == BY
    assert p.state() == {
        "programme_id": str(PROGRAMME_ID),
        "clinic_id": CLINIC,
        "patient_ref": "pt-0001",
        "condition": "sciatica",
        "setting": "in_office",
        "status": "active",
        "paused_reason": None,
        "plan": plan_data(),
        "baseline": {"pain_nrs": 7, "odi_percent": 42},
        "started_at": T0.isoformat(),
        "discharged_at": None,
        "outcome": None,
        "sessions_completed": 0,
        "sessions_missed": 0,
        "minutes_completed": 0,
        "pain_reports": 0,
        "adverse_events": {"mild": 0, "moderate": 0, "severe": 0},
        "plan_adjustments": 0,
        "corrections": 0,
        "last_occurred_at": T0.isoformat(),
        "version": 1,
    }


def test_start_copies_the_plan_so_the_callers_dict_cannot_change_it_later():
    plan = plan_data()
    p = start(plan=plan)
    plan["sessions_per_week"] = 5
    assert p.state()["plan"]["sessions_per_week"] == 3


# ---- rule 1 through the application: each posted envelope runs as a command ----


def application() -> Programmes:
    """The application in memory, with the server's clock at NOW."""
    return Programmes(clock=lambda: NOW)


def post(app: Programmes, *posted: dict[str, Any]) -> Receipt:
    """Record the posted envelopes (JSON, as the builders make them) as one post."""
    return app.record_events(CLINIC, PROGRAMME_ID, b.event_envelopes(*posted))


def test_application_starts_a_programme_from_a_programme_started_envelope():
    app = application()
    started = b.started()
    receipt = post(app, started)
    assert receipt == Receipt(
        programme_id=PROGRAMME_ID, clinic_id=CLINIC, version=1,
        recorded=[{"event_id": started["event_id"], "type": "ProgrammeStarted",
                   "version": 1, "position": 1}],
        replayed=False,
    )
    p = app.programme(CLINIC, PROGRAMME_ID)
    assert isinstance(p, Programme)
    assert p.id == PROGRAMME_ID
    assert p.clinic_id == CLINIC
    assert p.version == 1
    assert p.state() == start().state()
    [recorded] = app.history(CLINIC, PROGRAMME_ID)
    assert recorded["event_id"] == started["event_id"]
    assert recorded["type"] == "ProgrammeStarted"


def test_application_refuses_a_second_programme_started():
    app = application()
    post(app, b.started())
    before = app.programme(CLINIC, PROGRAMME_ID).state()
    again = b.started(days=1)
    with pytest.raises(errors.AlreadyStarted) as caught:
        post(app, again)
    assert caught.value.rule == "programme_already_started"
    assert (caught.value.event_index, caught.value.event_id) == (0, again["event_id"])
    assert app.programme(CLINIC, PROGRAMME_ID).state() == before
    assert len(app.history(CLINIC, PROGRAMME_ID)) == 1


def test_application_refuses_a_second_programme_started_even_after_discharge():
    app = application()
    post(app, b.started(), b.discharged(days=1))
    with pytest.raises(errors.AlreadyStarted):
        post(app, b.started(days=2))
    assert app.programme(CLINIC, PROGRAMME_ID).version == 2
    assert len(app.history(CLINIC, PROGRAMME_ID)) == 2


def test_application_refuses_a_programme_started_later_in_a_batch():
    app = application()
    post(app, b.started())
    batch = [b.session(days=1), b.started(days=2)]
    with pytest.raises(errors.AlreadyStarted) as caught:
        post(app, *batch)
    assert (caught.value.event_index, caught.value.event_id) == (1, batch[1]["event_id"])
    assert app.programme(CLINIC, PROGRAMME_ID).version == 1


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("SessionCompleted", session_data()),
        ("SessionMissed", {"reason": "schedule"}),
        ("PainReported", pain_data()),
        ("PlanAdjusted", {"sessions_per_week": 2, "reason": "progress"}),
        ("AdverseEventReported", {"severity": "mild", "description": "soreness"}),
        ("ProgrammePaused", {"reason": "holiday"}),
        ("ProgrammeResumed", {}),
        ("ProgrammeDischarged", {"outcome": "improved"}),
        ("EntryCorrected", correction_data(uuid.uuid4(), pain_data(3))),
    ],
)
def test_application_refuses_any_other_first_event(kind, data):
    # Without a ProgrammeStarted there is no programme to run the command on: the
    # application answers as for any unknown programme, and records nothing.
    app = application()
    for batch in ([b.envelope(kind, data)], [b.envelope(kind, data), b.started()]):
        with pytest.raises(errors.ProgrammeNotFound) as caught:
            post(app, *batch)
        assert "first event must be ProgrammeStarted" in caught.value.detail
    with pytest.raises(errors.ProgrammeNotFound):
        app.programme(CLINIC, PROGRAMME_ID)
    with pytest.raises(errors.ProgrammeNotFound):
        app.history(CLINIC, PROGRAMME_ID)
    post(app, b.started())  # the id is still free
    assert app.programme(CLINIC, PROGRAMME_ID).version == 1


def test_application_runs_later_envelopes_as_commands_on_the_same_programme():
    app = application()
    post(app, b.started())
    receipt = post(app, b.session(days=1))
    assert receipt.version == 2
    assert [(r["type"], r["version"]) for r in receipt.recorded] == [("SessionCompleted", 2)]
    p = app.programme(CLINIC, PROGRAMME_ID)
    assert p.id == PROGRAMME_ID
    assert p.version == 2
    expected = start()
    expected.complete_session(new_id(), moment(1), BY, session_data(), NOW)
    assert p.state() == expected.state()
    assert p.state()["sessions_completed"] == 1


def recorded_data(kind: str, posted: dict[str, Any]) -> dict[str, Any]:
    """What a command records: the data as posted, and a pain report's scale (nrs_11
    when none is posted), in a pain report and in a correction of one."""
    if kind == "PainReported":
        return {**posted, "scale": "nrs_11"}
    if kind == "EntryCorrected" and "pain_nrs" in posted["data"]:
        return {**posted, "data": {**posted["data"], "scale": "nrs_11"}}
    return posted


@pytest.mark.parametrize(
    ("kind", "method"),
    [
        ("SessionCompleted", "complete_session"),
        ("SessionMissed", "miss_session"),
        ("PainReported", "report_pain"),
        ("PlanAdjusted", "adjust_plan"),
        ("AdverseEventReported", "report_adverse_event"),
        ("ProgrammePaused", "pause"),
        ("ProgrammeResumed", "resume"),
        ("ProgrammeDischarged", "discharge"),
        ("EntryCorrected", "correct_entry"),
    ],
)
def test_every_posted_type_maps_to_the_command_that_records_it(kind, method):
    assert Programme.COMMANDS[kind] == method
    p, data = prepared(method)
    event_id = new_id()
    p.collect_events()
    getattr(p, method)(event_id, moment(10), BY, data, NOW)
    recorded = p.collect_events()
    assert types_of(recorded) == [kind]
    assert recorded[0].event_id == event_id
    assert recorded[0].occurred_at == moment(10)
    assert recorded[0].recorded_by == BY
    assert recorded[0].data == recorded_data(kind, data)


def test_commands_cover_every_posted_type_but_the_start():
    assert set(Programme.COMMANDS) == {
        "SessionCompleted", "SessionMissed", "PainReported", "PlanAdjusted",
        "AdverseEventReported", "ProgrammePaused", "ProgrammeResumed",
        "ProgrammeDischarged", "EntryCorrected",
    }


# ---- what each accepted command does to the state ---------------------------


def test_completed_sessions_count_and_add_their_minutes():
    p = start()
    p.complete_session(new_id(), moment(1), BY, session_data(duration_minutes=30), NOW)
    p.complete_session(new_id(), moment(25), BY, session_data(duration_minutes=20), NOW)
    state = p.state()
    assert state["sessions_completed"] == 2
    assert state["minutes_completed"] == 50
    assert state["version"] == 3


def test_missed_sessions_are_counted_apart_from_completed_ones():
    p = start()
    p.miss_session(new_id(), moment(1), BY, {"reason": "schedule"}, NOW)
    p.miss_session(new_id(), moment(2), BY, {"reason": "pain"}, NOW)
    state = p.state()
    assert state["sessions_missed"] == 2
    assert state["sessions_completed"] == 0
    assert state["minutes_completed"] == 0


def test_pain_reports_are_counted():
    p = start()
    p.report_pain(new_id(), moment(1), BY, pain_data(6, context="before_session"), NOW)
    p.report_pain(new_id(), moment(2), BY, pain_data(4, odi_percent=30, sleep_quality_nrs=6), NOW)
    assert p.state()["pain_reports"] == 2


def test_adverse_events_are_counted_by_severity():
    p = start()
    for severity in ("mild", "mild", "moderate"):
        p.report_adverse_event(new_id(), moment(1), BY,
                               {"severity": severity, "description": "soreness"}, NOW)
    assert p.state()["adverse_events"] == {"mild": 2, "moderate": 1, "severe": 0}


def test_last_occurred_at_is_the_greatest_even_when_events_arrive_out_of_order():
    p = start()
    p.report_pain(new_id(), moment(48), BY, pain_data(5), NOW)
    p.complete_session(new_id(), moment(24), BY, session_data(), NOW)  # a home device posting late
    assert p.state()["last_occurred_at"] == moment(48).isoformat()


SESSION_ID = uuid.UUID("7d1c64a4-8f0e-4c8f-a1b5-61b8a4b9c001")


@pytest.mark.parametrize(
    ("earlier", "command", "data"),
    [
        ([], "complete_session", session_data()),
        ([], "miss_session", {"reason": "schedule"}),
        ([], "report_pain", pain_data(4)),
        ([], "adjust_plan", {"sessions_per_week": 2, "reason": "slower"}),
        ([], "report_adverse_event", {"severity": "mild", "description": "ache"}),
        ([], "pause", {"reason": "holiday"}),
        ([("pause", {"reason": "holiday"})], "resume", {}),
        ([], "discharge", {"outcome": "improved"}),
        ([("complete_session", session_data())], "correct_entry",
         correction_data(SESSION_ID, session_data(duration_minutes=20))),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_every_event_moves_last_occurred_at_to_its_own_time(earlier, command, data):
    p = start()
    for earlier_command, earlier_data in earlier:  # on day 1
        getattr(p, earlier_command)(SESSION_ID, moment(1), BY, earlier_data, NOW)
    getattr(p, command)(new_id(), moment(3), BY, data, NOW)
    assert p.state()["last_occurred_at"] == moment(3).isoformat()


def test_discharge_records_outcome_and_time():
    p = start()
    p.discharge(new_id(), moment(100), BY, {"outcome": "goals_met", "notes": "back at work"}, NOW)
    state = p.state()
    assert state["status"] == "discharged"
    assert state["outcome"] == "goals_met"
    assert state["discharged_at"] == moment(100).isoformat()
    assert state["paused_reason"] is None


# ---- rule 2: after discharge only EntryCorrected ------------------------------


def discharged() -> tuple[Programme, uuid.UUID]:
    p = start()
    session_id = new_id()
    p.complete_session(session_id, moment(1), BY, session_data(), NOW)
    p.discharge(new_id(), moment(2), BY, {"outcome": "improved"}, NOW)
    return p, session_id


@pytest.mark.parametrize(
    ("command", "data"),
    [
        ("complete_session", session_data()),
        ("miss_session", {"reason": "schedule"}),
        ("report_pain", pain_data()),
        ("adjust_plan", {"sessions_per_week": 2, "reason": "progress"}),
        ("report_adverse_event", {"severity": "severe", "description": "numbness"}),
        ("pause", {"reason": "holiday"}),
        ("resume", {}),
        ("discharge", {"outcome": "worsened"}),
    ],
)
def test_after_discharge_everything_but_a_correction_is_refused(command, data):
    p, _ = discharged()
    assert_refused(p, command, errors.AlreadyDischarged, "programme_discharged", data, moment(3))
    assert p.state()["outcome"] == "improved"


def test_after_discharge_a_correction_is_accepted():
    p, session_id = discharged()
    p.correct_entry(new_id(), moment(3), BY,
                    correction_data(session_id, session_data(duration_minutes=45)), NOW)
    state = p.state()
    assert state["status"] == "discharged"
    assert state["minutes_completed"] == 45
    assert state["corrections"] == 1
    assert state["version"] == 4


def test_a_correction_after_discharge_still_obeys_the_time_rule():
    p, session_id = discharged()
    assert_refused(p, "correct_entry", errors.OccurredInFuture, "occurred_in_future",
                   correction_data(session_id, session_data(duration_minutes=45)),
                   NOW + CLOCK_SKEW_ALLOWANCE + timedelta(seconds=1))
    assert_refused(p, "correct_entry", errors.OccurredBeforeStart, "occurred_before_start",
                   correction_data(session_id, session_data(duration_minutes=45)),
                   T0 - timedelta(seconds=1))


# ---- rule 3: while paused -------------------------------------------------------


def paused(reason: str = "holiday") -> Programme:
    p = start()
    p.pause(new_id(), moment(1), BY, {"reason": reason}, NOW)
    return p


def test_pause_sets_status_and_reason():
    p = paused("holiday")
    state = p.state()
    assert state["status"] == "paused"
    assert state["paused_reason"] == "holiday"
    assert state["version"] == 2


@pytest.mark.parametrize(
    ("command", "data"),
    [
        ("complete_session", session_data()),
        ("miss_session", {"reason": "schedule"}),
        ("pause", {"reason": "again"}),
    ],
)
def test_while_paused_sessions_and_a_second_pause_are_refused(command, data):
    p = paused()
    assert_refused(p, command, errors.ProgrammeIsPaused, "programme_paused", data, moment(2))
    assert p.state()["paused_reason"] == "holiday"


@pytest.mark.parametrize(
    ("command", "data", "changed"),
    [
        ("report_pain", pain_data(4), ("pain_reports", 1)),
        ("adjust_plan", {"sessions_per_week": 2, "reason": "slower"}, ("plan_adjustments", 1)),
        ("report_adverse_event", {"severity": "moderate", "description": "ache"},
         ("adverse_events", {"mild": 0, "moderate": 1, "severe": 0})),
        ("discharge", {"outcome": "dropped_out"}, ("status", "discharged")),
    ],
)
def test_while_paused_reports_adjustments_and_discharge_are_accepted(command, data, changed):
    p = paused()
    getattr(p, command)(new_id(), moment(2), BY, data, NOW)
    key, value = changed
    assert p.state()[key] == value
    assert p.version == 3


def test_discharge_while_paused_clears_the_pause_reason():
    p = paused()
    p.discharge(new_id(), moment(2), BY, {"outcome": "dropped_out"}, NOW)
    assert p.state()["paused_reason"] is None


def test_resume_while_paused_makes_the_programme_active_again():
    p = paused()
    p.resume(new_id(), moment(2), BY, {}, NOW)
    state = p.state()
    assert state["status"] == "active"
    assert state["paused_reason"] is None
    assert state["version"] == 3
    p.complete_session(new_id(), moment(3), BY, session_data(), NOW)
    assert p.state()["sessions_completed"] == 1


def test_resume_while_active_is_refused():
    p = start()
    assert_refused(p, "resume", errors.ProgrammeNotPaused, "programme_not_paused", {}, moment(1))


def test_a_second_resume_is_refused():
    p = paused()
    p.resume(new_id(), moment(2), BY, {}, NOW)
    assert_refused(p, "resume", errors.ProgrammeNotPaused, "programme_not_paused", {}, moment(3))


def test_pause_again_after_resume_is_accepted():
    p = paused("holiday")
    p.resume(new_id(), moment(2), BY, {}, NOW)
    p.pause(new_id(), moment(3), BY, {"reason": "flu"}, NOW)
    assert p.state()["paused_reason"] == "flu"
    assert p.version == 4


# ---- rule 4: occurred_at between the start and the server's clock + 5 min ------

COMMANDS = [
    "complete_session", "miss_session", "report_pain", "adjust_plan",
    "report_adverse_event", "pause", "resume", "discharge", "correct_entry",
]


def prepared(command: str) -> tuple[Programme, dict[str, Any]]:
    """A programme in which `command` is accepted, and valid data for it."""
    p = start()
    if command == "resume":
        p.pause(new_id(), T0, BY, {"reason": "holiday"}, NOW)
        return p, {}
    if command == "correct_entry":
        target = new_id()
        p.report_pain(target, T0, BY, pain_data(6), NOW)
        return p, correction_data(target, pain_data(5))
    data = {
        "complete_session": session_data(),
        "miss_session": {"reason": "equipment"},
        "report_pain": pain_data(5),
        "adjust_plan": {"minutes_per_session": 20, "reason": "tolerance"},
        "report_adverse_event": {"severity": "mild", "description": "soreness"},
        "pause": {"reason": "holiday"},
        "discharge": {"outcome": "no_change"},
    }[command]
    return p, data


@pytest.mark.parametrize("command", COMMANDS)
def test_an_event_before_the_start_is_refused(command):
    p, data = prepared(command)
    assert_refused(p, command, errors.OccurredBeforeStart, "occurred_before_start", data,
                   T0 - timedelta(seconds=1))


@pytest.mark.parametrize("command", COMMANDS)
def test_an_event_at_the_very_moment_of_the_start_is_accepted(command):
    p, data = prepared(command)
    version = p.version
    getattr(p, command)(new_id(), T0, BY, data, NOW)
    assert p.version == version + 1


@pytest.mark.parametrize("command", COMMANDS)
def test_an_event_exactly_five_minutes_ahead_of_the_clock_is_accepted(command):
    p, data = prepared(command)
    version = p.version
    getattr(p, command)(new_id(), NOW + timedelta(minutes=5), BY, data, NOW)
    assert p.version == version + 1
    assert p.state()["last_occurred_at"] == (NOW + timedelta(minutes=5)).isoformat()


@pytest.mark.parametrize("command", COMMANDS)
def test_an_event_more_than_five_minutes_ahead_of_the_clock_is_refused(command):
    p, data = prepared(command)
    assert_refused(p, command, errors.OccurredInFuture, "occurred_in_future", data,
                   NOW + timedelta(minutes=5, seconds=1))


def test_the_clock_allowance_is_five_minutes():
    assert CLOCK_SKEW_ALLOWANCE == timedelta(minutes=5)


def test_times_compare_as_instants_whatever_their_offset():
    p = start()
    plus_two = timezone(timedelta(hours=2))
    # 11:05 at +02:00 is 09:05 UTC: five minutes ahead of a 09:00 UTC clock.
    p.report_pain(new_id(), (T0 + timedelta(minutes=5)).astimezone(plus_two), BY, pain_data(4), T0)
    assert p.version == 2
    assert_refused(p, "report_pain", errors.OccurredInFuture, "occurred_in_future", pain_data(4),
                   (T0 + timedelta(minutes=5, seconds=1)).astimezone(plus_two), now=T0)
    # 10:59:59 at +02:00 is one second before a 09:00 UTC start.
    assert_refused(p, "report_pain", errors.OccurredBeforeStart, "occurred_before_start",
                   pain_data(4), (T0 - timedelta(seconds=1)).astimezone(plus_two), now=T0)


def test_a_start_exactly_five_minutes_ahead_of_the_clock_is_accepted():
    p = start(occurred_at=NOW + timedelta(minutes=5), now=NOW)
    assert p.state()["started_at"] == (NOW + timedelta(minutes=5)).isoformat()


def test_a_start_more_than_five_minutes_ahead_of_the_clock_is_refused():
    with pytest.raises(errors.OccurredInFuture) as caught:
        start(occurred_at=NOW + timedelta(minutes=5, seconds=1), now=NOW)
    assert caught.value.rule == "occurred_in_future"
    assert "5 minutes" in caught.value.detail  # says why, as every other refusal does


def test_a_start_long_ago_is_accepted_and_later_events_are_measured_from_it():
    long_ago = T0 - timedelta(days=400)
    p = start(occurred_at=long_ago)
    p.report_pain(new_id(), long_ago, BY, pain_data(5), NOW)
    assert_refused(p, "report_pain", errors.OccurredBeforeStart, "occurred_before_start",
                   pain_data(5), long_ago - timedelta(microseconds=1))


# ---- rule 5: the plan ------------------------------------------------------------


@pytest.mark.parametrize(
    "plan",
    [
        plan_data(force_percent_body_weight=None),
        {k: v for k, v in plan_data().items() if k != "force_percent_body_weight"},
        {**mat_plan_data(), "force_percent_body_weight": 20.0},
        {"modality": "inversion", "sessions_per_week": 3, "minutes_per_session": 5,
         "force_percent_body_weight": 0.0},
    ],
)
def test_a_start_with_force_on_the_wrong_modality_is_refused(plan):
    with pytest.raises(errors.ForceNotAllowed) as caught:
        start(plan=plan)
    assert caught.value.rule == "force_requires_mechanical_table"


@pytest.mark.parametrize("modality", ["decompression_mat", "inversion", "stretching_exercises"])
def test_a_start_without_force_off_the_table_is_accepted(modality):
    p = start(plan={"modality": modality, "sessions_per_week": 7, "minutes_per_session": 10})
    assert "force_percent_body_weight" not in p.state()["plan"]


def test_a_start_with_zero_force_on_the_table_is_accepted():
    p = start(plan=plan_data(force_percent_body_weight=0.0))
    assert p.state()["plan"]["force_percent_body_weight"] == 0.0


def test_an_adjustment_changes_the_plan_and_keeps_the_rest():
    p = start()
    p.adjust_plan(new_id(), moment(1), BY, {"sessions_per_week": 2, "reason": "progress"}, NOW)
    state = p.state()
    assert state["plan"] == plan_data(sessions_per_week=2)
    assert state["plan_adjustments"] == 1
    assert state["version"] == 2


def test_an_adjustment_of_the_force_alone_is_accepted():
    p = start()
    p.adjust_plan(new_id(), moment(1), BY, {"force_percent_body_weight": 40.0, "reason": "ok"}, NOW)
    assert p.state()["plan"]["force_percent_body_weight"] == 40.0


@pytest.mark.parametrize(
    "data",
    [
        {"sessions_per_week": 3, "reason": "same"},
        {"modality": "mechanical_table", "force_percent_body_weight": 30.0, "reason": "same"},
        {**plan_data(), "reason": "the whole plan, unchanged"},
        {"force_percent_body_weight": 30.0, "reason": "30.0 is 30"},
        {"reason": "nothing but a reason"},
    ],
)
def test_an_adjustment_that_changes_nothing_is_refused(data):
    p = start()
    assert_refused(p, "adjust_plan", errors.PlanUnchanged, "plan_unchanged", data, moment(1))


def test_an_adjustment_back_to_an_earlier_value_is_a_change():
    p = start()
    p.adjust_plan(new_id(), moment(1), BY, {"sessions_per_week": 2, "reason": "slower"}, NOW)
    p.adjust_plan(new_id(), moment(2), BY, {"sessions_per_week": 3, "reason": "back"}, NOW)
    assert p.state()["plan"] == plan_data()
    assert p.state()["plan_adjustments"] == 2


def test_switching_from_the_table_to_the_mat_drops_the_force():
    p = start()
    p.adjust_plan(new_id(), moment(1), BY, {"modality": "decompression_mat", "reason": "home"}, NOW)
    assert p.state()["plan"] == {
        "modality": "decompression_mat",
        "sessions_per_week": 3,
        "minutes_per_session": 30,
    }


def test_switching_from_the_table_to_the_mat_with_a_force_is_refused():
    p = start()
    assert_refused(p, "adjust_plan", errors.ForceNotAllowed, "force_requires_mechanical_table",
                   {"modality": "decompression_mat", "force_percent_body_weight": 30.0,
                    "reason": "home"}, moment(1))


def test_giving_a_force_for_the_mat_is_refused():
    p = start(plan=mat_plan_data())
    assert_refused(p, "adjust_plan", errors.ForceNotAllowed, "force_requires_mechanical_table",
                   {"force_percent_body_weight": 20.0, "reason": "stronger"}, moment(1))


def test_switching_to_the_table_without_a_force_is_refused():
    p = start(plan=mat_plan_data())
    assert_refused(p, "adjust_plan", errors.ForceNotAllowed, "force_requires_mechanical_table",
                   {"modality": "mechanical_table", "reason": "in office"}, moment(1))


def test_switching_to_the_table_with_a_force_is_accepted():
    p = start(plan=mat_plan_data())
    p.adjust_plan(new_id(), moment(1), BY, {"modality": "mechanical_table",
                                       "force_percent_body_weight": 25.0,
                                       "reason": "in office"}, NOW)
    assert p.state()["plan"] == {
        "modality": "mechanical_table",
        "sessions_per_week": 21,
        "minutes_per_session": 15,
        "force_percent_body_weight": 25.0,
    }


def test_removing_the_force_from_a_table_plan_is_refused():
    p = start()
    assert_refused(p, "adjust_plan", errors.ForceNotAllowed, "force_requires_mechanical_table",
                   {"force_percent_body_weight": None, "reason": "none"}, moment(1))


def test_a_force_dropped_with_the_table_must_be_given_again_to_return_to_it():
    p = start()
    p.adjust_plan(new_id(), moment(1), BY, {"modality": "stretching_exercises", "reason": "a"}, NOW)
    assert_refused(p, "adjust_plan", errors.ForceNotAllowed, "force_requires_mechanical_table",
                   {"modality": "mechanical_table", "reason": "b"}, moment(2))
    p.adjust_plan(new_id(), moment(3), BY, {"modality": "mechanical_table",
                                       "force_percent_body_weight": 35.0, "reason": "c"}, NOW)
    assert p.state()["plan"] == plan_data(force_percent_body_weight=35.0)


def test_switching_between_two_modalities_off_the_table_is_accepted():
    p = start(plan=mat_plan_data())
    p.adjust_plan(new_id(), moment(1), BY, {"modality": "inversion", "minutes_per_session": 5,
                                       "reason": "try"}, NOW)
    assert p.state()["plan"] == {
        "modality": "inversion", "sessions_per_week": 21, "minutes_per_session": 5,
    }


# ---- rule 5 (and rule 3): a severe adverse event pauses the programme ---------


def test_a_severe_adverse_event_also_pauses_the_programme_in_the_same_batch():
    p = start()
    p.collect_events()
    event_id = new_id()
    p.report_adverse_event(event_id, moment(5), "device-7", {"severity": "severe",
                                                          "description": "numbness"}, NOW)
    batch = p.collect_events()
    assert types_of(batch) == ["AdverseEventReported", "ProgrammePaused"]
    reported, pause = batch
    assert reported.event_id == event_id
    assert pause.event_id == derived_event_id(event_id, "pause")
    assert pause.event_id != event_id
    assert pause.data == {"reason": "severe_adverse_event"}
    assert pause.occurred_at == moment(5)
    assert pause.recorded_by == "device-7"
    assert [e.originator_version for e in batch] == [2, 3]
    state = p.state()
    assert state["status"] == "paused"
    assert state["paused_reason"] == "severe_adverse_event"
    assert state["adverse_events"] == {"mild": 0, "moderate": 0, "severe": 1}
    assert state["version"] == 3


def test_the_pause_after_a_severe_adverse_event_has_a_deterministic_id():
    event_id = uuid.UUID("6a0d1c3e-2f5b-4a7c-9e8d-0b1a2c3d4e5f")
    ids = []
    for _ in range(2):
        p = start(programme_id=new_id())
        p.report_adverse_event(event_id, moment(1), BY,
                               {"severity": "severe", "description": "numbness"}, NOW)
        ids.append(p.pending_events[-1].event_id)
    assert ids[0] == ids[1] == derived_event_id(event_id, "pause")
    assert ids[0] == uuid.uuid5(uuid.UUID("5b0c7a52-33a3-4c61-9a36-1f8f1d4f6a10"),
                                f"{event_id}:pause")
    assert derived_event_id(new_id(), "pause") != ids[0]


@pytest.mark.parametrize("severity", ["mild", "moderate"])
def test_a_mild_or_moderate_adverse_event_does_not_pause(severity):
    p = start()
    p.collect_events()
    p.report_adverse_event(new_id(), moment(1), BY, {"severity": severity, "description": "x"}, NOW)
    assert types_of(p.collect_events()) == ["AdverseEventReported"]
    assert p.state()["status"] == "active"
    assert p.state()["adverse_events"][severity] == 1
    assert p.version == 2


def test_a_severe_adverse_event_while_paused_adds_no_second_pause():
    p = paused("holiday")
    p.collect_events()
    p.report_adverse_event(new_id(), moment(2), BY, {"severity": "severe", "description": "x"}, NOW)
    assert types_of(p.collect_events()) == ["AdverseEventReported"]
    state = p.state()
    assert state["status"] == "paused"
    assert state["paused_reason"] == "holiday"
    assert state["adverse_events"]["severe"] == 1
    assert state["version"] == 3


def test_after_the_automatic_pause_sessions_are_refused_until_resumed():
    p = start()
    p.report_adverse_event(new_id(), moment(1), BY, {"severity": "severe", "description": "x"}, NOW)
    assert_refused(p, "complete_session", errors.ProgrammeIsPaused, "programme_paused",
                   session_data(), moment(2))
    p.resume(new_id(), moment(3), BY, {}, NOW)
    p.complete_session(new_id(), moment(4), BY, session_data(), NOW)
    assert p.state()["sessions_completed"] == 1


# ---- corrections ------------------------------------------------------------------


def test_correcting_a_session_replaces_its_data_in_the_metrics():
    p = start()
    first, second = new_id(), new_id()
    p.complete_session(first, moment(1), BY, session_data(duration_minutes=30), NOW)
    p.complete_session(second, moment(2), BY, session_data(duration_minutes=20), NOW)
    p.correct_entry(new_id(), moment(3), BY,
                    correction_data(first, session_data(duration_minutes=45)), NOW)
    state = p.state()
    assert state["sessions_completed"] == 2
    assert state["minutes_completed"] == 65
    assert state["corrections"] == 1
    assert state["version"] == 4
    assert p.entries[str(first)] == {"type": "SessionCompleted",
                                     "data": session_data(duration_minutes=45)}


def test_a_second_correction_of_the_same_entry_wins():
    p = start()
    target = new_id()
    p.complete_session(target, moment(1), BY, session_data(duration_minutes=30), NOW)
    p.correct_entry(new_id(), moment(2), BY,
                    correction_data(target, session_data(duration_minutes=45)), NOW)
    p.correct_entry(new_id(), moment(3), BY,
                    correction_data(target, session_data(duration_minutes=10)), NOW)
    state = p.state()
    assert state["minutes_completed"] == 10
    assert state["sessions_completed"] == 1
    assert state["corrections"] == 2


def test_correcting_a_pain_report_replaces_its_data():
    p = start()
    target = new_id()
    p.report_pain(target, moment(1), BY, pain_data(8), NOW)
    p.correct_entry(new_id(), moment(2), BY,
                    correction_data(target, pain_data(3, context="follow_up")), NOW)
    assert p.entries[str(target)]["data"] == {"pain_nrs": 3, "context": "follow_up",
                                              "scale": "nrs_11"}
    assert p.state()["pain_reports"] == 1
    assert p.state()["corrections"] == 1


def test_a_correction_may_name_its_target_as_a_uuid():
    p = start()
    target = new_id()
    p.report_pain(target, moment(1), BY, pain_data(8), NOW)
    p.correct_entry(new_id(), moment(2), BY,
                    {"corrects": target, "data": pain_data(2), "reason": "typo"}, NOW)
    assert p.entries[str(target)]["data"] == {**pain_data(2), "scale": "nrs_11"}


def test_a_correction_is_accepted_while_paused():
    p = start()
    target = new_id()
    p.complete_session(target, moment(1), BY, session_data(duration_minutes=30), NOW)
    p.pause(new_id(), moment(2), BY, {"reason": "holiday"}, NOW)
    p.correct_entry(new_id(), moment(3), BY,
                    correction_data(target, session_data(duration_minutes=35)), NOW)
    state = p.state()
    assert state["status"] == "paused"
    assert state["minutes_completed"] == 35


def test_a_correction_keeps_the_original_event_in_the_history():
    p = start()
    target = new_id()
    p.complete_session(target, moment(1), BY, session_data(duration_minutes=30), NOW)
    p.correct_entry(new_id(), moment(2), BY,
                    correction_data(target, session_data(duration_minutes=35)), NOW)
    history = p.collect_events()
    assert types_of(history) == ["ProgrammeStarted", "SessionCompleted", "EntryCorrected"]
    assert history[1].data["duration_minutes"] == 30
    assert history[2].data["corrects"] == str(target)


def test_a_correction_of_an_unknown_event_is_refused():
    p = start()
    p.complete_session(new_id(), moment(1), BY, session_data(), NOW)
    assert_refused(p, "correct_entry", errors.UnknownCorrectionTarget,
                   "correction_target_unknown", correction_data(new_id(), session_data()),
                   moment(2))


@pytest.mark.parametrize(
    ("command", "data"),
    [
        ("miss_session", {"reason": "schedule"}),
        ("adjust_plan", {"sessions_per_week": 2, "reason": "slower"}),
        ("report_adverse_event", {"severity": "mild", "description": "x"}),
        ("pause", {"reason": "holiday"}),
        ("discharge", {"outcome": "improved"}),
    ],
)
def test_a_correction_of_an_event_that_is_not_a_session_or_pain_report_is_refused(
    command, data
):
    p = start()
    target = new_id()
    getattr(p, command)(target, moment(1), BY, data, NOW)
    assert_refused(p, "correct_entry", errors.UnknownCorrectionTarget,
                   "correction_target_unknown", correction_data(target, {"reason": "pain"}),
                   moment(2))
    assert_refused(p, "correct_entry", errors.UnknownCorrectionTarget,
                   "correction_target_unknown", correction_data(target, pain_data(2)), moment(2))


def test_a_correction_of_the_start_or_of_a_correction_is_refused():
    started = new_id()
    p = start(event_id=started)
    target, fix = new_id(), new_id()
    p.report_pain(target, moment(1), BY, pain_data(8), NOW)
    p.correct_entry(fix, moment(2), BY, correction_data(target, pain_data(3)), NOW)
    for other in (started, fix):
        assert_refused(p, "correct_entry", errors.UnknownCorrectionTarget,
                       "correction_target_unknown", correction_data(other, pain_data(1)), moment(3))


def test_a_correction_of_the_automatic_pause_is_refused():
    p = start()
    cause = new_id()
    p.report_adverse_event(cause, moment(1), BY, {"severity": "severe", "description": "x"}, NOW)
    assert_refused(p, "correct_entry", errors.UnknownCorrectionTarget,
                   "correction_target_unknown",
                   correction_data(derived_event_id(cause, "pause"), {"reason": "x"}), moment(2))


def test_a_correction_of_another_programmes_session_is_refused():
    other = start(programme_id=new_id())
    target = new_id()
    other.complete_session(target, moment(1), BY, session_data(), NOW)
    p = start()
    assert_refused(p, "correct_entry", errors.UnknownCorrectionTarget,
                   "correction_target_unknown", correction_data(target, session_data()), moment(2))


def test_a_session_corrected_with_pain_report_data_is_refused():
    p = start()
    target = new_id()
    p.complete_session(target, moment(1), BY, session_data(), NOW)
    assert_refused(p, "correct_entry", errors.CorrectionDoesNotFit, "correction_data_mismatch",
                   correction_data(target, pain_data(3)), moment(2))


def test_a_pain_report_corrected_with_session_data_is_refused():
    p = start()
    target = new_id()
    p.report_pain(target, moment(1), BY, pain_data(8), NOW)
    assert_refused(p, "correct_entry", errors.CorrectionDoesNotFit, "correction_data_mismatch",
                   correction_data(target, session_data()), moment(2))


@pytest.mark.parametrize(
    ("modality", "corrected"),
    [
        ("mechanical_table", {k: v for k, v in session_data().items()
                              if k != "force_percent_body_weight"}),
        ("decompression_mat", session_data("decompression_mat", force_percent_body_weight=20.0)),
    ],
    ids=["table-session-corrected-without-force", "mat-session-corrected-with-force"],
)
def test_a_session_corrected_to_break_rule_5_is_refused(modality, corrected):
    p = start(plan=plan_data(modality))
    target = new_id()
    p.complete_session(target, moment(1), BY, session_data(modality), NOW)
    assert_refused(p, "correct_entry", errors.ForceNotAllowed, "force_requires_mechanical_table",
                   correction_data(target, corrected), moment(2))


def test_a_session_corrected_to_another_modality_obeys_rule_5_for_that_modality():
    p = start()
    target = new_id()
    p.complete_session(target, moment(1), BY, session_data(), NOW)
    p.correct_entry(new_id(), moment(2), BY,
                    correction_data(target, session_data("inversion")), NOW)
    assert p.entries[str(target)]["data"] == session_data("inversion")


# ---- regressions: bugs these tests found ------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        session_data("decompression_mat", force_percent_body_weight=30.0),
        {k: v for k, v in session_data().items() if k != "force_percent_body_weight"},
    ],
    ids=["force-on-the-mat", "table-without-force"],
)
def test_a_session_with_force_on_the_wrong_modality_is_refused(data):
    p = start()
    assert_refused(p, "complete_session", errors.ForceNotAllowed,
                   "force_requires_mechanical_table", data, moment(1))


def test_a_correction_with_partial_session_data_is_refused():
    p = start()
    target = new_id()
    p.complete_session(target, moment(1), BY, session_data(), NOW)
    assert_refused(p, "correct_entry", errors.CorrectionDoesNotFit, "correction_data_mismatch",
                   correction_data(target, {"modality": "mechanical_table"}), moment(2))
