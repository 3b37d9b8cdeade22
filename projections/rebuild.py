"""`traction projections rebuild`: a new version from position 0, beside the live one.

1. A new version number gets empty tables (without secondary indexes, which
   are built once at the end) and is recorded as *building*; the live
   version and its readers are untouched.
2. The whole notification log is read in large pages and applied in large
   batches, each written with the new version's tracking position in one
   transaction; a tqdm bar shows events/s and the time left.
3. Close to the head, the indexes are built, and one transaction (which
   locks the versions row, so the runner's next write waits for it) applies
   the last events — at least up to the live version's position, so readers
   never see the position go back — and makes the new version live.
4. The runner's next write finds its version retired and carries on with the
   new one. After a grace period (reads that began on the old version have
   finished) the old version's tables are dropped.

An interrupted rebuild leaves the live version as it was; the next rebuild
drops the half-built version and starts again from 0 (with the code that
runs it, which is the point of a rebuild).
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from tqdm import tqdm

from domain.application import Programmes
from projections.decoding import decode_rows
from projections.engine import EventFailed
from projections.locks import LockHeld, ProjectionLock
from projections.runner import VersionSession
from projections.store import DEFAULT_PROJECTION, ReadModelStore, check_name
from service.storage.stores import Store

log = logging.getLogger("traction.projections")

#: Events per batch (and per page read) while rebuilding.
REBUILD_BATCH = 10_000
#: Swap once the new version is this close to the head.
SWAP_LAG = 2_000
#: Seconds to keep the old version after the swap, for reads already under way.
DEFAULT_DROP_GRACE = 5.0


@dataclass
class RebuildReport:
    name: str
    old_version: int
    new_version: int
    position: int
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_second": round(self.events_per_second, 1)}


def rebuild(
    app: Programmes,
    read_models: ReadModelStore,
    store: Store,
    name: str = DEFAULT_PROJECTION,
    *,
    batch_size: int = REBUILD_BATCH,
    progress: bool = True,
    grace: float = DEFAULT_DROP_GRACE,
) -> RebuildReport:
    """Build a new version of a projection from scratch, then swap it in.

    `grace`: seconds to keep the old version after the swap, for reads that
    began on it (TRACTION_PROJECTION_DROP_GRACE)."""
    check_name(name)
    lock = ProjectionLock(store, f"rebuild:{name}")
    if not lock.try_acquire():
        raise LockHeld(f"rebuild:{name}")
    new_version: int | None = None
    try:
        try:
            started = time.monotonic()
            live, new_version = read_models.begin_build(name)
            try:
                report = _build_and_swap(app, read_models, name, live, new_version,
                                         batch_size, progress, started, bulk=True)
            except EventFailed as failed:
                # A poison event: build again, batch by batch, parking it.
                log.warning("rebuild %s: the event at position %s cannot be applied; "
                            "building again batch by batch, parking it", name, failed)
                live, new_version = read_models.begin_build(name)
                report = _build_and_swap(app, read_models, name, live, new_version,
                                         batch_size, progress, started, bulk=False)
        except BaseException:
            if new_version is not None:
                try:
                    read_models.abandon_build(name, new_version)
                except Exception:  # the store may be what failed; the next rebuild cleans up
                    pass
            raise
        if grace > 0:
            time.sleep(grace)
        read_models.drop_version(name, live)
    finally:
        lock.release()
    return report


def _build_and_swap(app: Programmes, read_models: Any, name: str, live: int, new_version: int,
                    batch_size: int, progress: bool, started: float, *,
                    bulk: bool) -> RebuildReport:
    """Apply the whole log to the new version, then swap it in.

    In bulk (the normal case) every programme is rendered and written once
    per flush rather than once per batch, and only the programmes the cache
    lets go are written on the way; a poison event raises EventFailed (the
    caller then builds batch by batch, which parks it).
    """
    session = VersionSession(app, read_models, name, new_version, expect="building")
    engine = session.engine
    recorder = app.recorder
    head = recorder.max_notification_id() or 0
    events = 0
    position = 0
    # The states are plain acyclic data: the cyclic collector would only
    # rescan the growing cache again and again (half the time of a rebuild).
    collecting = gc.isenabled()
    gc.disable()
    try:
        with tqdm(total=head, unit="ev", unit_scale=True, smoothing=0.05, file=sys.stderr,
                  desc=f"rebuild {name} v{new_version}", disable=not progress) as bar:
            for rows in _read_ahead(recorder, position, batch_size):
                if rows:
                    if bulk:
                        engine.absorb(decode_rows(app.mapper, rows))
                        evicted = engine.take_evicted()
                        if evicted is not None:
                            read_models.write(name, new_version, evicted, expect="building")
                    else:
                        session.apply((), decode_rows(app.mapper, rows))
                    position = rows[-1][0]
                    events += len(rows)
                    bar.update(len(rows))
                    if events % (20 * batch_size) < len(rows):
                        gc.collect(1)
                if len(rows) < batch_size:
                    head = recorder.max_notification_id() or 0
                    if head > (bar.total or 0):
                        bar.total = head
                        bar.refresh()
                    if head - position <= SWAP_LAG:
                        break
            if bulk:
                read_models.write(name, new_version, engine.flush(position or None),
                                  expect="building")
            read_models.finish_build(new_version)
            changes = None
            with read_models.swapping(name, new_version) as cursor:
                # The runner cannot commit now: catch up at least to its position,
                # in one batch (states are loaded before anything is written).
                live_position = read_models.position(name, live)
                rows = recorder.log_rows(position, max(live_position - position, 0) + batch_size)
                if rows:
                    changes = engine.process(decode_rows(app.mapper, rows))
                    read_models.write_in(cursor, name, new_version, changes, expect="building")
            if changes is not None:
                assert changes.position is not None
                position = changes.position
                events += len(rows)
                bar.update(len(rows))
    finally:
        if collecting:
            gc.enable()
    return RebuildReport(name, live, new_version, position, events,
                         time.monotonic() - started)


def _read_ahead(recorder: Any, position: int, limit: int) -> Iterator[Sequence[Any]]:
    """Pages of the log after `position` as plain rows (the recorder's `log_rows`:
    no library objects to build and free for a million events); each next page
    is read (by the database, which lets go of the interpreter meanwhile) while
    the caller applies this one."""
    with ThreadPoolExecutor(1, thread_name_prefix="rebuild-read") as pool:
        def read(after: int) -> Future[Sequence[Any]]:
            return pool.submit(recorder.log_rows, after, limit)

        pending = read(position)
        while True:
            page = pending.result()
            if page:
                position = page[-1][0]
            pending = read(position)
            yield page
