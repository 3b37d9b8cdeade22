"""Histories recorded through the real Programme aggregate, projected in memory.

`Log` numbers every recorded event with its position, in record order, as
the store does; `project` runs the events through the metrics engine with a
dictionary standing in for the read-model tables (states and totals go
through JSON, as they do in the database).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.programme import Programme
from projections import dashboards
from projections.decoding import ProjectedEvent
from projections.engine import Changes, MetricsEngine, Recorded
from projections.store import canonical_json, to_json

#: A Monday, so that days 0-6 are ISO week 2026-W10.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=3650)
BY = "physio.test"


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class Log:
    """Events of several programmes, in record order, with their positions."""

    def __init__(self) -> None:
        self.records: list[Recorded] = []
        self.events: list[Any] = []  # the aggregate's event objects, as the records' source
        self.clinics: dict[int, str] = {}  # programme -> its clinic

    def programme(self, clinic_id: str = "clinic-a", *, start: float = 0, per_week: int = 7,
                  baseline: int = 7, modality: str = "inversion", setting: str = "at_home",
                  condition: str = "sciatica", programme_id: uuid.UUID | None = None,
                  event_id: uuid.UUID | None = None) -> Handle:
        plan: dict[str, Any] = {"modality": modality, "sessions_per_week": per_week,
                                "minutes_per_session": 30}
        if modality == "mechanical_table":
            plan["force_percent_body_weight"] = 30
        data = {"patient_ref": "pt-1", "condition": condition, "setting": setting,
                "plan": plan, "baseline": {"pain_nrs": baseline}}
        aggregate = Programme.start(
            programme_id=programme_id or uuid.uuid4(), clinic_id=clinic_id,
            event_id=event_id or uuid.uuid4(), occurred_at=day(start), recorded_by=BY,
            data=data, now=NOW,
        )
        self.clinics[aggregate.id.int] = clinic_id
        handle = Handle(self, aggregate)
        handle.collect()
        return handle

    def append(self, events: Sequence[Any]) -> None:
        for event in events:
            self.events.append(event)
            self.records.append(Recorded(
                position=len(self.records) + 1, programme=event.originator_id.int,
                type=type(event).__name__, event=ProjectedEvent.from_domain_event(event),
                first=event.originator_version == 1,
            ))


@dataclass
class Handle:
    """One programme: its commands record events into the log."""

    log: Log
    aggregate: Programme
    ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.aggregate.id)

    def collect(self) -> None:
        self.log.append(self.aggregate.collect_events())

    def _do(self, command: str, when: float, data: dict[str, Any],
            event_id: uuid.UUID | None = None) -> uuid.UUID:
        event_id = event_id or uuid.uuid4()
        getattr(self.aggregate, command)(event_id, day(when), BY, data, NOW)
        self.collect()
        return event_id

    def session(self, when: float, minutes: int = 30, **kw: Any) -> uuid.UUID:
        return self._do("complete_session", when, {
            "modality": self.aggregate.plan["modality"], "duration_minutes": minutes,
            "supervised": False, **self._force()}, **kw)

    def _force(self) -> dict[str, Any]:
        force = self.aggregate.plan.get("force_percent_body_weight")
        return {"force_percent_body_weight": force} if force is not None else {}

    def missed(self, when: float, **kw: Any) -> uuid.UUID:
        return self._do("miss_session", when, {"reason": "schedule"}, **kw)

    def pain(self, when: float, pain: int, event_id: uuid.UUID | None = None,
             **extra: Any) -> uuid.UUID:
        return self._do("report_pain", when, {"pain_nrs": pain, **extra}, event_id)

    def adjust(self, when: float, per_week: int, **kw: Any) -> uuid.UUID:
        return self._do("adjust_plan", when, {"sessions_per_week": per_week,
                                              "reason": "progressing"}, **kw)

    def pause(self, when: float, **kw: Any) -> uuid.UUID:
        return self._do("pause", when, {"reason": "travel"}, **kw)

    def resume(self, when: float, **kw: Any) -> uuid.UUID:
        return self._do("resume", when, {}, **kw)

    def adverse(self, when: float, severity: str = "mild", **kw: Any) -> uuid.UUID:
        return self._do("report_adverse_event", when,
                        {"severity": severity, "description": "soreness"}, **kw)

    def discharge(self, when: float, outcome: str = "improved", **kw: Any) -> uuid.UUID:
        return self._do("discharge", when, {"outcome": outcome}, **kw)

    def correct(self, target: uuid.UUID, when: float, event_id: uuid.UUID | None = None,
                **data: Any) -> uuid.UUID:
        current = dict(self.aggregate.entries[str(target)]["data"])
        return self._do("correct_entry", when, {"corrects": str(target),
                                                "data": {**current, **data},
                                                "reason": "typo"}, event_id)


class MemoryReadModels:
    """The read-model tables as dictionaries of JSON (what the database would hold)."""

    def __init__(self) -> None:
        self.states: dict[int, str] = {}
        self.summaries: dict[int, str] = {}
        self.clinics: dict[str, str] = {}
        self.rendered: dict[str, str] = {}  # the dashboards as the store keeps them
        self.network: str | None = None

    def load_states(self, keys: Sequence[int]) -> dict[int, Any]:
        return {key: json.loads(self.states[key]) for key in keys if key in self.states}

    def load_totals(self) -> tuple[dict[str, Any], Any]:
        network = json.loads(self.network) if self.network else dashboards.new_totals()
        return {c: json.loads(t) for c, t in self.clinics.items()}, network

    def write(self, changes: Changes) -> None:
        for key, row in changes.programmes.items():
            self.states[key] = canonical_json(row.state)
            self.summaries[key] = to_json(row.summary)
        for clinic_id, totals in changes.clinics.items():
            self.clinics[clinic_id] = canonical_json(totals)
            self.rendered[clinic_id] = to_json(changes.dashboards[clinic_id])
        if changes.network is not None:
            self.network = canonical_json(changes.network)
            self.rendered["*"] = to_json(changes.network_dashboard)

    def engine(self, **kwargs: Any) -> MetricsEngine:
        return MetricsEngine(self.load_states, self.load_totals, **kwargs)

    # ---- what the API would show ------------------------------------------

    def summary(self, programme_id: str) -> dict[str, Any]:
        return json.loads(self.summaries[uuid.UUID(programme_id).int])

    def state(self, programme_id: str) -> dict[str, Any]:
        return json.loads(self.states[uuid.UUID(programme_id).int])

    def dashboard(self, clinic_id: str) -> dict[str, Any]:
        """The clinic's dashboard as stored (and checked against a render from its totals)."""
        stored = json.loads(self.rendered[clinic_id])
        assert stored == dashboards.clinic_dashboard(clinic_id, json.loads(self.clinics[clinic_id]))
        return stored

    def totals(self) -> dict[str, Any]:
        """The network's dashboard as stored (and checked against a render from the totals)."""
        if self.network is None:
            return dashboards.network_dashboard(dashboards.new_totals(), {})
        stored = json.loads(self.rendered["*"])
        clinics = {c: json.loads(t) for c, t in self.clinics.items()}
        assert stored == dashboards.network_dashboard(json.loads(self.network), clinics)
        return stored

    def everything(self) -> tuple[Any, ...]:
        return (sorted(self.states.items()), sorted(self.summaries.items()),
                sorted(self.clinics.items()), self.network, sorted(self.rendered.items()))


def project(records: Sequence[Recorded], batch_sizes: Sequence[int] = (),
            restarts: bool = False) -> MemoryReadModels:
    """Follow the log in batches (of the given sizes, cycling; default one batch),
    with `restarts` as a new runner after every batch (everything reloaded)."""
    read_models = MemoryReadModels()
    engine = read_models.engine()
    sizes = list(batch_sizes) or [max(len(records), 1)]
    start = 0
    turn = 0
    while start < len(records):
        size = sizes[turn % len(sizes)]
        batch = records[start:start + size]
        read_models.write(engine.process(batch))
        if restarts:
            engine = read_models.engine()
        start += size
        turn += 1
    return read_models


def save(application: Any, log: Log, chunk: int = 250) -> int:
    """Store the log's events through the application (batched saves, with their ledger
    entries), in log order; returns the last position."""
    from domain.ledger import LedgerEntry

    clinics = log.clinics
    for start in range(0, len(log.events), chunk):
        events = log.events[start:start + chunk]
        application.save(*events, ledger=[
            LedgerEntry(e.event_id, clinics[e.originator_id.int], type(e).__name__, None)
            for e in events
        ])
    return application.recorder.max_notification_id() or 0


def busy_log(programmes: int = 12, events: int = 40, seed: int = 1) -> Log:
    """Programmes of two clinics whose events interleave: every kind of event."""
    import random

    rng = random.Random(seed)
    log = Log()
    handles = [log.programme(("clinic-a", "clinic-b")[n % 2], baseline=rng.randint(3, 9),
                             per_week=rng.randint(2, 10),
                             programme_id=uuid.UUID(int=rng.getrandbits(128), version=4))
               for n in range(programmes)]
    reports: dict[int, list[uuid.UUID]] = {id(h): [] for h in handles}
    for step in range(programmes * events):
        h = rng.choice(handles)
        when = step / 50 + rng.random()
        status = h.aggregate.status
        roll = rng.random()
        if status == "discharged":
            continue
        if status == "paused":
            h.resume(when)
        elif roll < 0.45:
            h.session(when, rng.randint(10, 60))
        elif roll < 0.7:
            reports[id(h)].append(h.pain(max(0.01, when - rng.random() * 3), rng.randint(0, 9)))
        elif roll < 0.75:
            h.missed(when)
        elif roll < 0.78:
            h.pause(when)
        elif roll < 0.8:
            h.adverse(when, rng.choice(("mild", "moderate", "severe")))
        elif roll < 0.83 and reports[id(h)]:
            h.correct(rng.choice(reports[id(h)]), when, pain_nrs=rng.randint(0, 9))
        elif roll < 0.86:
            value = rng.randint(1, 20)
            if value != h.aggregate.plan["sessions_per_week"]:
                h.adjust(when, value)
        elif roll < 0.865:
            h.discharge(when, "improved")
    return log
