"""Applying a batch of recorded events to the metrics read models, in memory.

The engine knows no SQL: it asks a loader for programme states and clinic
totals it does not have, and returns a `Changes` that the store writes, with
the tracking position, in one transaction (projections/store.py). After a
failed write the runner calls `forget`, which drops everything cached (the
cache may hold changes that were never written).

Poison events
-------------
An event the projection cannot apply (it cannot be decoded, its type is
unknown, a correction names an entry the projection never saw, a bug in a
metric) is **parked**, not allowed to stop the projection:

- the event is recorded (projection, version, position, programme, error)
  in the same transaction as the tracking position, and shown by
  `traction projections status` and `/readyz` (which answers 503 while one is
  parked);
- its programme is *held*: its later events are parked behind it, so the
  programme's summary stays exactly as it was before the poison event —
  stale, and marked `held_since_position`, but never computed from a gap;
- every other programme, clinic and the network go on live.

Stopping the whole projection instead would freeze every clinic's
dashboards because of one malformed event from one clinic. Parking is safe
here because the read models are per-programme states plus totals that are
exact sums of per-programme contributions and per-event increments
(dashboards.py): applying a held programme's events later, in their own
order, gives exactly what applying them in place would have. After a fix,
`traction projections retry NAME POSITION` applies the held events in order;
`traction projections skip NAME POSITION` gives up on that one event
(recorded as skipped) and applies the rest.

A batch is first applied quickly, mutating cached states in place. If any
event fails, everything cached is dropped and the batch is applied again
carefully: each event on a copy of its programme's state, so a failing one
leaves no trace. A rebuild applies the whole log quickly without writing
each batch (projections/rebuild.py); if an event fails there, the rebuild
starts again batch by batch, which parks it as above.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from projections import dashboards, summaries

#: How many programme states stay in memory between batches. Bounded, so a
#: rebuild of any size keeps a fixed working set (see bench/rebuild.py).
CACHE_SIZE = 2_000


@dataclass(slots=True)
class Recorded:
    """A recorded event, decoded, with its place in the log."""

    position: int
    programme: int  # the programme's UUID as an int (a cheap dictionary key)
    type: str
    event: Any | None  # None when it could not be decoded
    error: str | None = None  # why it could not be decoded
    first: bool = False  # the programme's first event (version 1): nothing stored yet


@dataclass(slots=True)
class Parked:
    position: int
    programme: int  # the programme's UUID as an int
    event_type: str
    kind: str  # "poison" (it failed) or "held" (behind a poison event of its programme)
    error: str | None


@dataclass
class ProgrammeRow:
    state: summaries.State
    summary: dict[str, Any]


@dataclass
class Changes:
    """What to write, with the tracking position, in one transaction."""

    position: int | None  # the last position processed (None: no tracking to record)
    programmes: dict[int, ProgrammeRow] = field(default_factory=dict)
    clinics: dict[str, dashboards.Totals] = field(default_factory=dict)
    network: dashboards.Totals | None = None
    #: The dashboards rendered from those totals: by clinic, and the network's.
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    network_dashboard: dict[str, Any] | None = None
    parked: list[Parked] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)  # parked positions now applied
    skipped: list[int] = field(default_factory=list)  # parked positions given up on


class EventFailed(Exception):
    """An event failed during a quick pass (nothing of that pass may be kept)."""


#: Loads stored states by programme id (missing ids are simply absent).
StateLoader = Callable[[Sequence[int]], dict[int, summaries.State]]
#: Loads every clinic's totals and the network's.
TotalsLoader = Callable[[], tuple[dict[str, dashboards.Totals], dashboards.Totals]]


class MetricsEngine:
    """Applies events to programme states, and clinic and network totals, in memory.

    Following the log, `process` applies one batch and returns everything it
    changed. A rebuild instead `absorb`s many batches, writes the states the
    bounded cache lets go (`take_evicted`), and `flush`es once at the end:
    each programme is rendered (summary, contribution) once per flush, not
    once per batch.
    """

    def __init__(
        self,
        load_states: StateLoader,
        load_totals: TotalsLoader,
        held: dict[int, int] | None = None,
        cache_size: int | None = None,
    ) -> None:
        self._load_states = load_states
        self._load_totals = load_totals
        #: Programmes held behind a poison event: programme -> its position.
        self.held: dict[int, int] = dict(held or {})
        self._cache_size = cache_size or CACHE_SIZE
        self._cache: OrderedDict[int, summaries.State] = OrderedDict()
        self._forget_pending()
        self._clinics: dict[str, dashboards.Totals] | None = None
        self._network: dashboards.Totals | None = None

    def _forget_pending(self) -> None:
        self._dirty: set[int] = set()
        self._deltas: dict[str, dashboards.Totals] = {}
        self._evicted: dict[int, ProgrammeRow] = {}
        self._parked: list[Parked] = []
        self._resolved: list[int] = []
        self._skipped: list[int] = []

    # ---- following the log ------------------------------------------------

    def process(self, batch: Sequence[Recorded]) -> Changes:
        """Apply one batch (in position order) and return all it changed."""
        position = batch[-1].position if batch else None
        try:
            self.absorb(batch)
            return self.flush(position)
        except EventFailed:
            # Something failed part-way: drop all of this pass and apply the
            # batch again, each event on a copy of its programme's state.
            self.forget()
            self.absorb(batch, careful=True)
            return self.flush(position)

    def resolve(self, programme: int, parked: Sequence[Recorded],
                skip: Iterable[int] = ()) -> Changes:
        """Apply a held programme's parked events in order (after a fix), except `skip`."""
        self.forget()
        self.held.pop(programme, None)
        self.absorb(sorted(parked, key=lambda r: r.position), careful=True,
                    skip=set(skip), resolving=True)
        return self.flush(None)

    def forget(self) -> None:
        """Drop everything in memory (after a failed write, or a failed quick pass)."""
        self._cache.clear()
        self._forget_pending()
        self._clinics = None
        self._network = None

    # ---- applying -----------------------------------------------------------

    def _delta(self, clinic_id: str) -> dashboards.Totals:
        delta = self._deltas.get(clinic_id)
        if delta is None:
            delta = self._deltas[clinic_id] = dashboards.new_delta()
        return delta

    def _state(self, programme: int, loaded: dict[int, summaries.State]
               ) -> summaries.State | None:
        state = self._cache.get(programme)
        if state is not None:
            return state
        row = self._evicted.pop(programme, None)
        if row is not None:  # let go but not yet written: take it back
            self._dirty.add(programme)
            return row.state
        return loaded.get(programme)

    def absorb(self, batch: Sequence[Recorded], *, careful: bool = False,
               skip: set[int] | None = None, resolving: bool = False) -> None:
        """Apply events; in a quick pass (not careful) a failure raises EventFailed."""
        cache = self._cache
        held = self.held
        dirty = self._dirty
        started = {r.programme for r in batch if r.first}  # nothing stored for these
        missing = sorted(
            {r.programme for r in batch if r.programme not in started
             and r.programme not in held and r.programme not in cache
             and r.programme not in self._evicted}
        )
        loaded = self._load_states(missing) if missing else {}
        apply_event = summaries.apply_event
        move_to_end = cache.move_to_end
        deltas = self._deltas
        touched: set[int] = set()
        for record in batch:
            key = record.programme
            if skip and record.position in skip:
                self._skipped.append(record.position)
                continue
            if key in held:
                self._parked.append(Parked(record.position, key, record.type, "held", None))
                continue
            state = cache.get(key)
            if state is None:
                state = self._state(key, loaded)
            if not careful:
                try:
                    event = record.event
                    if event is None:
                        raise summaries.ProjectionError(
                            f"cannot decode the event: {record.error}")
                    clinic_id = state["clinic_id"] if state is not None else event.clinic_id
                    delta = deltas.get(clinic_id) or self._delta(clinic_id)
                    state = apply_event(state, record.type, event, record.position, delta)
                except Exception as error:
                    raise EventFailed(record.position) from error
            else:
                before = copy.deepcopy(state)
                delta = dashboards.new_delta()
                try:
                    if record.event is None:
                        raise summaries.ProjectionError(
                            f"cannot decode the event: {record.error}")
                    state = apply_event(state, record.type, record.event, record.position, delta)
                    _render(summaries.settle(state))
                except Exception as error:
                    held[key] = record.position
                    self._parked.append(Parked(record.position, key, record.type, "poison",
                                               f"{type(error).__name__}: {error}"))
                    if before is not None:
                        before["held"] = record.position
                        cache[key] = before
                        dirty.add(key)
                    else:
                        cache.pop(key, None)
                    continue
                dashboards.combine(self._delta(state["clinic_id"]), delta)
                if resolving:
                    self._resolved.append(record.position)
            if key not in cache:
                cache[key] = state
            dirty.add(key)
            touched.add(key)
        for key in touched:  # the least recently used are let go first
            move_to_end(key)
        while len(cache) > self._cache_size:
            key, state = cache.popitem(last=False)
            if key in dirty:
                dirty.discard(key)
                self._evicted[key] = self._render_row(state)

    def _render_row(self, state: summaries.State) -> ProgrammeRow:
        """Settle and render a changed programme; its contribution change goes to the delta."""
        try:
            summary, contribution = _render(summaries.settle(state))
        except Exception as error:  # only in a quick pass: a careful one rendered each event
            raise EventFailed(state["position"]) from error
        old = state["contrib"]
        if contribution != old:
            delta = self._delta(state["clinic_id"])
            if old is not None:
                dashboards.apply_contribution(delta, old, -1)
            dashboards.apply_contribution(delta, contribution, 1)
            state["contrib"] = contribution
        return ProgrammeRow(state, summary)

    def take_evicted(self) -> Changes | None:
        """Rows of changed programmes the cache let go, to write before the next batch."""
        if not self._evicted:
            return None
        changes = Changes(position=None, programmes=self._evicted)
        self._evicted = {}
        return changes

    def flush(self, position: int | None) -> Changes:
        """Render every changed programme and add the deltas to the totals."""
        rows = self._evicted
        for key in self._dirty:
            state = self._cache[key]
            if key not in self.held:
                state.pop("held", None)
            rows[key] = self._render_row(state)
        if self._clinics is None or self._network is None:
            self._clinics, self._network = self._load_totals()
        clinics = self._clinics
        changed: dict[str, dashboards.Totals] = {}
        for clinic_id, delta in self._deltas.items():
            totals = clinics.get(clinic_id)
            if totals is None:
                totals = clinics[clinic_id] = dashboards.new_totals()
            dashboards.apply_delta(totals, delta)
            dashboards.apply_delta(self._network, delta, times=False)
            changed[clinic_id] = totals
        # Rendered here, once per written batch: the time to response of each
        # cohort (and the network's, from every clinic's times) is computed
        # when its totals change, never when a dashboard is read.
        changes = Changes(
            position=position, programmes=rows, clinics=changed,
            network=self._network if changed else None, parked=self._parked,
            resolved=self._resolved, skipped=self._skipped,
            dashboards={clinic_id: dashboards.clinic_dashboard(clinic_id, totals)
                        for clinic_id, totals in changed.items()},
            network_dashboard=(dashboards.network_dashboard(self._network, clinics)
                               if changed else None),
        )
        self._forget_pending()
        return changes


def _render(state: summaries.State) -> tuple[dict[str, Any], list[Any]]:
    measures = summaries.measure(state)
    return summaries.summary(state, measures), summaries.contribution(state, measures)
