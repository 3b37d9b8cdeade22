"""R4 for the projections: order and batching do not change the metrics.

1. The same events arriving in a different order — any order the rules allow:
   sessions, misses, pain reports, plan changes, adverse events and a pause
   (with its resume) shuffled; the discharge and the corrections after them —
   give the same summary, trajectory and dashboards.
2. Following the log in batches of any sizes, restarting (reloading
   everything from what was stored) after any of them, stores exactly (to the
   byte) what one batch over the whole log stores: the clinic totals kept by
   taking old contributions out and putting new ones in equal a recount from
   scratch.
3. The time to response (Kaplan-Meier) and the responder rates of every
   clinic and of the network equal a recount from the programmes' own
   measures, however the log was batched.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from domain import errors
from projections import survival
from projections.summaries import measure, trajectory
from tests.projections.history import Log, project

MINUTES_PER_DAY = 24 * 60
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def ids(n: int, seed: int) -> list[uuid.UUID]:
    return [uuid.UUID(int=(seed << 32) + i, version=4) for i in range(n)]


@st.composite
def scripts(draw: Any) -> dict[str, Any]:
    """One programme's events: the shuffleable ones, and what must come after them."""
    per_week = draw(st.integers(1, 14))
    kinds = draw(st.lists(st.sampled_from(("session", "missed", "pain", "adjust", "adverse")),
                          min_size=1, max_size=18))
    # Distinct times (no ties: with ties, record order decides, by design).
    times = draw(st.lists(st.integers(1, 40 * MINUTES_PER_DAY), min_size=len(kinds) + 2,
                          max_size=len(kinds) + 2, unique=True))
    plans = draw(st.lists(st.integers(1, 35).filter(lambda v: v != per_week),
                          min_size=kinds.count("adjust"), max_size=kinds.count("adjust"),
                          unique=True))
    items: list[tuple[Any, ...]] = []
    plan_values = iter(plans)
    for kind, minute in zip(kinds, times, strict=False):
        value: Any = None
        if kind == "session":
            value = draw(st.integers(5, 90))
        elif kind == "pain":
            value = draw(st.integers(0, 10))
        elif kind == "adjust":
            value = next(plan_values)
        elif kind == "adverse":
            value = draw(st.sampled_from(("mild", "moderate")))
        items.append((kind, minute, value))
    if draw(st.booleans()):
        # A pause and its resume are posted together; they happened apart.
        pause, resume = sorted(times[-2:])
        items.append(("pause-resume", pause, resume))
    corrections = []
    correctable = [i for i, item in enumerate(items) if item[0] in ("session", "pain")]
    for _ in range(draw(st.integers(0, 3)) if correctable else 0):
        target = draw(st.sampled_from(correctable))
        kind = items[target][0]
        corrections.append((target, draw(st.integers(5, 90) if kind == "session"
                                         else st.integers(0, 10))))
    return {
        "per_week": per_week,
        "baseline": draw(st.integers(1, 10)),
        "modality": draw(st.sampled_from(("mechanical_table", "inversion"))),
        "items": items,
        "order": draw(st.permutations(range(len(items)))),
        "discharge": draw(st.booleans()),
        "corrections": corrections,
    }


def record(script: dict[str, Any], order: list[int]) -> tuple[Log, str]:
    """Record the script's events, the shuffleable ones in `order`."""
    items = script["items"]
    event_ids = ids(len(items) + 2 + len(script["corrections"]), 7)
    log = Log()
    p = log.programme(per_week=script["per_week"], baseline=script["baseline"],
                      modality=script["modality"], programme_id=uuid.UUID(int=99, version=4),
                      event_id=event_ids[-1])
    last = 0.0
    for index in order:
        kind, minute, value = items[index]
        when = minute / MINUTES_PER_DAY
        last = max(last, when)
        eid = event_ids[index]
        if kind == "session":
            p.session(when, value, event_id=eid)
        elif kind == "missed":
            p.missed(when, event_id=eid)
        elif kind == "pain":
            p.pain(when, value, event_id=eid)
        elif kind == "adjust":
            p.adjust(when, value, event_id=eid)
        elif kind == "adverse":
            p.adverse(when, value, event_id=eid)
        else:
            p.pause(when, event_id=eid)
            p.resume(value / MINUTES_PER_DAY, event_id=uuid.UUID(int=eid.int ^ 1, version=4))
            last = max(last, value / MINUTES_PER_DAY)
    end = last + 1
    if script["discharge"]:
        p.discharge(end, event_id=event_ids[len(items)])
    for n, (target, value) in enumerate(script["corrections"]):
        field = "duration_minutes" if items[target][0] == "session" else "pain_nrs"
        p.correct(event_ids[target], end + 1 + n, event_id=event_ids[len(items) + 1 + n],
                  **{field: value})
    return log, p.id


@FAST
@given(scripts())
def test_the_same_events_in_another_order_give_the_same_metrics(script):
    try:
        in_order, programme_id = record(script, list(range(len(script["items"]))))
        shuffled, _ = record(script, list(script["order"]))
    except errors.DomainRuleViolation:  # pragma: no cover - the script keeps the rules
        assume(False)
    first, second = project(in_order.records), project(shuffled.records)
    assert first.summary(programme_id) == second.summary(programme_id)
    assert trajectory(first.state(programme_id)) == trajectory(second.state(programme_id))
    assert first.dashboard("clinic-a") == second.dashboard("clinic-a")
    assert first.totals() == second.totals()


@st.composite
def interleaved_logs(draw: Any) -> Log:
    """Several programmes in two clinics, their events interleaved in the log."""
    log = Log()
    handles = []
    for n in range(draw(st.integers(1, 4))):
        handles.append(log.programme(("clinic-a", "clinic-b")[n % 2],
                                     per_week=draw(st.integers(1, 14)),
                                     baseline=draw(st.integers(1, 10))))
    targets: list[tuple[Any, uuid.UUID]] = []
    plans = {id(h): h.aggregate.plan["sessions_per_week"] for h in handles}
    for _ in range(draw(st.integers(1, 40))):
        h = draw(st.sampled_from(handles))
        when = draw(st.integers(0, 60 * MINUTES_PER_DAY)) / MINUTES_PER_DAY
        action = draw(st.sampled_from(("session", "pain", "pain", "adjust", "pause",
                                       "adverse", "correct", "discharge")))
        status = h.aggregate.status
        if status == "discharged" and action != "correct":
            continue
        if action == "session" and status == "active":
            targets.append((h, h.session(when, draw(st.integers(5, 90)))))
        elif action == "pain":
            targets.append((h, h.pain(when, draw(st.integers(0, 10)))))
        elif action == "adjust":
            value = draw(st.integers(1, 35))
            if value != plans[id(h)]:
                plans[id(h)] = value
                h.adjust(when, value)
        elif action == "pause":
            if status == "paused":
                h.resume(when)
            else:
                h.pause(when)
        elif action == "adverse":
            h.adverse(when, draw(st.sampled_from(("mild", "moderate", "severe"))))
        elif action == "correct" and targets:
            owner, target = draw(st.sampled_from(targets))
            kind = owner.aggregate.entries[str(target)]["type"]
            if kind == "SessionCompleted":
                owner.correct(target, 61, duration_minutes=draw(st.integers(5, 90)))
            else:
                owner.correct(target, 61, pain_nrs=draw(st.integers(0, 10)))
        elif action == "discharge":
            h.discharge(60.5, draw(st.sampled_from(("improved", "goals_met", "worsened"))))
    return log


@FAST
@given(interleaved_logs(), st.lists(st.integers(1, 7), min_size=1, max_size=5), st.booleans())
def test_batching_and_restarts_never_change_what_is_stored(log, batch_sizes, restarts):
    whole = project(log.records)
    batched = project(log.records, batch_sizes, restarts=restarts)
    assert batched.everything() == whole.everything()


def recount(read_models: Any, clinic_id: str | None) -> dict[str, Any]:
    """Time to response and responder counts from each programme's own measures."""
    times: dict[str, tuple[list[int], list[int]]] = {
        "moderate": ([], []), "substantial": ([], [])}
    responders = reported = 0
    for key in read_models.states:
        state = read_models.load_states([key])[key]
        if clinic_id is not None and state["clinic_id"] != clinic_id:
            continue
        m = measure(state)
        censored = m.last_report_us or 0
        for kind, response in (("moderate", m.response_us), ("substantial", m.substantial_us)):
            events, censorings = times[kind]
            (events if response is not None else censorings).append(
                response if response is not None else censored)
        reported += 1 if state["reports"] else 0
        responders += m.responded
    return {
        "time_to_response": {kind: survival.time_to_response(sorted(e), sorted(c))
                             for kind, (e, c) in times.items()},
        "responders": responders, "programmes_with_reports": reported,
    }


@FAST
@given(interleaved_logs(), st.lists(st.integers(1, 7), min_size=1, max_size=5), st.booleans())
def test_survival_and_rates_equal_a_recount_from_the_programmes(log, batch_sizes, restarts):
    read_models = project(log.records, batch_sizes, restarts=restarts)
    for clinic_id in read_models.clinics:
        shown = read_models.dashboard(clinic_id)
        assert {key: shown[key] for key in ("time_to_response", "responders",
                                            "programmes_with_reports")} == recount(
            read_models, clinic_id)
    network = read_models.totals()
    assert {key: network[key] for key in ("time_to_response", "responders",
                                          "programmes_with_reports")} == recount(
        read_models, None)
