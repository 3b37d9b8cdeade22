"""Where each projection stands: `traction projections status` and `/readyz`.

Lag in events is the log's head minus the live version's position; lag in
seconds is how long ago the oldest event not yet processed was recorded (0
when nothing is waiting). Failures are the parked events (engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from projections.locks import ProjectionLock
from projections.store import PROJECTIONS, ReadModelStore
from service.storage.stores import Store


@dataclass
class ProjectionStatus:
    name: str
    live_version: int
    building_version: int | None
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    runner: str | None  # "running", "not running", or None when not checked
    #: Which runner is active, as its lock session names it ("HOST pid N"; PostgreSQL).
    runner_holder: str | None = None
    poison: list[dict[str, Any]] = field(default_factory=list)
    held: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "live_version": self.live_version,
            "building_version": self.building_version,
            "position": self.position,
            "head": self.head,
            "lag_events": self.lag_events,
            "lag_seconds": self.lag_seconds,
            "runner": self.runner,
            "runner_holder": self.runner_holder,
            "poison": self.poison,
            "held": self.held,
            "skipped": self.skipped,
        }


def projection_status(
    application: Any, read_models: ReadModelStore, name: str, store: Store | None = None
) -> ProjectionStatus:
    """One projection's status; pass `store` to also check whether a runner is active."""
    live, building = read_models.versions(name)
    position = read_models.position(name, live)
    head = application.recorder.max_notification_id() or 0
    lag = max(head - position, 0)
    lag_seconds = 0.0
    if lag:
        recorded = read_models.recorded_at(position + 1)
        if recorded is not None:
            lag_seconds = max((datetime.now(UTC) - recorded).total_seconds(), 0.0)
    parked = read_models.parked(name, live)
    runner = holder = None
    if store is not None:
        lock = ProjectionLock(store, f"runner:{name}")
        running = lock.held_elsewhere()
        runner = "running" if running else "not running"
        holder = lock.holder() if running else None
    return ProjectionStatus(
        name=name,
        live_version=live,
        building_version=building,
        position=position,
        head=head,
        lag_events=lag,
        lag_seconds=round(lag_seconds, 3),
        runner=runner,
        runner_holder=holder,
        poison=[
            {key: p[key] for key in ("position", "programme_id", "event_type", "error",
                                     "parked_at", "request")}
            for p in parked if p["kind"] == "poison"
        ],
        held=sum(1 for p in parked if p["kind"] == "held"),
        skipped=sum(1 for p in parked if p["kind"] == "skipped"),
    )


def all_statuses(application: Any, read_models: ReadModelStore,
                 store: Store | None = None) -> list[ProjectionStatus]:
    return [projection_status(application, read_models, name, store) for name in PROJECTIONS]
