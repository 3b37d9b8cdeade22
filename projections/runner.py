"""`traction projections run`: catch up, then follow new events.

The runner reads the notification log after its version's tracking
position, decodes each batch (decoding.py), applies it in
memory (engine.py) and writes rows and position in one transaction
(store.py). It follows new events on PostgreSQL through the recorder's
`subscribe()` (LISTEN/NOTIFY: a save wakes it at once) and on SQLite, where
the library offers no subscription, by polling every `poll_interval`
(20 ms). A batch is at most `batch_size` events (500): under load a batch
takes a few milliseconds, so a save reaches the read models well within
100 ms.

Only one runner per projection is active (locks.py), on any number of
hosts; the others wait as standbys (or, with `wait_for_lock=False`, exit
with LockHeld) and one takes over the moment the active runner's lock
session ends. The active runner touches its lock at least every second
(the lease, LEASE_SECONDS), and each of its writes is fenced by the lock: a
runner whose lock session has ended (killed by an operator, dropped by the
network or the lease) writes nothing more and goes back to waiting as a
standby. When a rebuild swaps in a new version, the runner's next write
finds its version retired, and it carries on with the new one from that
version's position. Store errors (the database restarting, say) are retried
with back-off from the last committed position: nothing is skipped and
nothing counted twice.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any
from uuid import UUID

from domain.application import Programmes
from projections.decoding import decode
from projections.engine import Changes, MetricsEngine, Recorded
from projections.locks import LockHeld, LockLost, ProjectionLock
from projections.store import (
    DEFAULT_PROJECTION,
    Fence,
    ReadModelStore,
    VersionRetired,
    check_name,
)
from projections.summaries import STATE_FORMAT
from service.storage.stores import Store

log = logging.getLogger("traction.projections")

#: The most events in one batch (one transaction) while following.
BATCH_SIZE = 500
#: How often the SQLite follower looks for new events.
POLL_INTERVAL = 0.02
#: How often the runner looks for operators' retry/skip requests.
REQUEST_INTERVAL = 0.5
#: How long the runner lock outlives a runner that stops touching it (a hung
#: process on a host that still answers the network): then a standby takes over.
LEASE_SECONDS = 10.0


class OutdatedReadModels(Exception):
    """The live read models are in another state format than this release's."""


class VersionSession:
    """Processing into one version of a projection: its engine and its position."""

    def __init__(self, application: Programmes, read_models: ReadModelStore, name: str,
                 version: int, *, expect: str = "live", fence: Fence | None = None) -> None:
        self.application = application
        self.read_models = read_models
        self.name = name
        self.version = version
        self.expect = expect
        #: Refuses a write once this process no longer holds the runner lock.
        self.fence = fence
        self.engine = MetricsEngine(
            load_states=partial(read_models.load_states, version),
            load_totals=partial(read_models.load_totals, version),
            held=read_models.load_held(name, version),
        )
        self.position = read_models.position(name, version)

    def apply(self, notifications: Sequence[Any],
              records: Sequence[Recorded] | None = None) -> Changes:
        """Apply and write one batch (one transaction); `records` if already decoded."""
        if records is None:
            records = decode(self.application.mapper, notifications)
        changes = self.engine.process(records)
        try:
            self.read_models.write(self.name, self.version, changes, expect=self.expect,
                                   fence=self.fence)
        except BaseException:
            self.engine.forget()
            raise
        if changes.position is not None:
            self.position = changes.position
        return changes

    def resolve(self, position: int, action: str) -> dict[str, Any] | None:
        """Retry (or skip) a parked poison event, then its programme's held events.

        Returns the poison event still parked for that programme afterwards
        (None when everything applied).
        """
        parked = self.read_models.parked(self.name, self.version)
        target = next((p for p in parked if p["position"] == position), None)
        if target is None or target["kind"] != "poison":
            raise ValueError(f"no poison event is parked at position {position}")
        programme = UUID(target["programme_id"]).int
        waiting = [p for p in parked if p["programme_id"] == target["programme_id"]
                   and p["kind"] in ("poison", "held")]
        recorder = self.application.recorder
        notifications = []
        for row in waiting:
            notifications.extend(recorder.select_notifications(start=row["position"], limit=1))
        records = decode(self.application.mapper, notifications)
        skip = [position] if action == "skip" else []
        changes = self.engine.resolve(programme, records, skip)
        try:
            self.read_models.write(self.name, self.version, changes, expect="live",
                                   fence=self.fence)
        except BaseException:
            self.engine.forget()
            raise
        return next((
            {"position": p.position, "error": p.error}
            for p in changes.parked if p.kind == "poison"
        ), None)


class PollingFeed:
    """New notifications by polling (SQLite)."""

    def __init__(self, recorder: Any, position: int, interval: float = POLL_INTERVAL) -> None:
        self.recorder = recorder
        self.position = position
        self.interval = interval

    def next(self, limit: int, timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.recorder.select_notifications(
                start=self.position, limit=limit, inclusive_of_start=False
            )
            if found:
                self.position = found[-1].id
                return list(found)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(self.interval, remaining))

    def close(self) -> None:
        pass


class SubscriptionFeed:
    """New notifications from the recorder's subscription (PostgreSQL LISTEN/NOTIFY)."""

    def __init__(self, recorder: Any, position: int) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=20_000)
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self._subscription = recorder.subscribe(gt=position)
        self._subscription.__enter__()
        self._thread = threading.Thread(target=self._pump, name="projection-feed", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        try:
            for notification in self._subscription:
                while not self._stopped.is_set():
                    try:
                        self._queue.put(notification, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stopped.is_set():
                    return
        except BaseException as error:
            self._error = error

    def next(self, limit: int, timeout: float) -> list[Any]:
        if self._error is not None:
            raise self._error
        try:
            found = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            if self._error is not None:
                raise self._error from None
            return []
        while len(found) < limit:
            try:
                found.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return found

    def close(self) -> None:
        self._stopped.set()
        try:
            self._subscription.__exit__(None, None, None)
        finally:
            self._thread.join(timeout=5)


def open_feed(application: Programmes, store: Store, position: int) -> Any:
    if store.is_postgres:
        return SubscriptionFeed(application.recorder, position)
    return PollingFeed(application.recorder, position)


class ProjectionRunner:
    """Keeps one projection's live version up to date with the event store."""

    def __init__(self, application: Programmes, read_models: ReadModelStore, store: Store,
                 name: str = DEFAULT_PROJECTION, *, batch_size: int = BATCH_SIZE) -> None:
        self.application = application
        self.read_models = read_models
        self.store = store
        self.name = check_name(name)
        self.batch_size = batch_size
        self.stop = threading.Event()
        #: Set whenever the runner has processed everything recorded (tests wait on it).
        self.caught_up = threading.Event()
        self._version: int | None = None

    def run(self, *, once: bool = False, wait_for_lock: bool = True) -> None:
        """Run until `stop` is set (or, with `once`, until caught up)."""
        application, read_models = self.application, self.read_models
        live = read_models.versions(self.name)[0]
        if (read_models.state_format(self.name, live) != STATE_FORMAT
                and not read_models.adopt_format(self.name, live)):
            # States it does not understand: rebuild them first (projections/upgrade.py).
            raise OutdatedReadModels(
                f"{self.name} v{live} was built in another state format; run "
                "`traction migrate` (or start `traction projections run`, which rebuilds it)")
        lock = ProjectionLock(self.store, f"runner:{self.name}", lease=LEASE_SECONDS)
        try:
            if not self._take_lock(lock, wait_for_lock):
                return
            backoff = 0.5
            while not self.stop.is_set():
                try:
                    if self._follow(application, read_models, lock, once=once):
                        return
                    backoff = 0.5
                except VersionRetired as retired:
                    log.info("projection %s: %s; following the new live version",
                             self.name, retired)
                except LockLost:
                    log.error("projection %s: lost the runner lock (its database session "
                              "ended); writing nothing more, waiting as a standby", self.name)
                    lock.release()
                    if not self._take_lock(lock, wait=True):
                        return
                except Exception:
                    if self._retired(read_models):
                        # Its tables went before its next write noticed the swap.
                        log.info("projection %s: v%s was retired by a rebuild; following the "
                                 "new live version", self.name, self._version)
                        continue
                    log.exception("projection %s: store error; retrying in %.1f s from the "
                                  "last committed position", self.name, backoff)
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            lock.release()

    def _take_lock(self, lock: ProjectionLock, wait: bool) -> bool:
        """Take the runner lock, waiting for the store if it cannot be reached yet."""
        pause = 0.5
        waited = False

        def standing_by() -> None:
            nonlocal waited
            waited = True
            log.warning("projection %s: another runner is active; waiting as a standby",
                        self.name)

        while not self.stop.is_set():
            try:
                taken = lock.acquire(wait=wait, on_wait=standing_by,
                                     should_stop=self.stop.is_set)
            except LockHeld:
                raise
            except Exception as error:  # the database is not up yet, say
                log.warning("projection %s: cannot take the runner lock (%s); retrying in "
                            "%.1f s", self.name, type(error).__name__, pause)
                self.stop.wait(pause)
                pause = min(pause * 2, 10.0)
                continue
            if taken and waited:
                log.warning("projection %s: took the runner lock; this runner is now the "
                            "active one", self.name)
            return taken
        return False

    def _retired(self, read_models: ReadModelStore) -> bool:
        try:
            return self._version is not None and read_models.versions(self.name)[0] != self._version
        except Exception:
            return False

    def _follow(self, application: Programmes, read_models: ReadModelStore,
                lock: ProjectionLock, *, once: bool) -> bool:
        """Follow the live version until it is retired; True when `once` is done."""
        # A runner that lost the lock a moment ago may still be committing a batch.
        read_models.settle_writers(self.name)
        version = self._version = read_models.versions(self.name)[0]
        session = VersionSession(application, read_models, self.name, version,
                                 fence=lock.fence)
        log.info("projection %s v%d: following from position %d",
                 self.name, version, session.position)
        feed = open_feed(application, self.store, session.position)
        checked = 0.0
        try:
            while not self.stop.is_set():
                lock.heartbeat()
                if time.monotonic() - checked > REQUEST_INTERVAL:
                    self._handle_requests(session)
                    checked = time.monotonic()
                notifications = feed.next(self.batch_size, timeout=0.2)
                if not notifications:
                    head = application.recorder.max_notification_id() or 0
                    if session.position >= head:
                        self.caught_up.set()
                        if once:
                            return True
                    continue
                self.caught_up.clear()
                changes = session.apply(notifications)
                for parked in changes.parked:
                    if parked.kind == "poison":
                        # No ids or data in the log: `traction projections status` has them.
                        log.error("projection %s: parked a poison event at position %d (%s); "
                                  "its programme's later events are held", self.name,
                                  parked.position, (parked.error or "").split(":", 1)[0])
        finally:
            feed.close()
        return False

    def _handle_requests(self, session: VersionSession) -> None:
        for request in session.read_models.requests(self.name, session.version):
            try:
                remaining = session.resolve(request["position"], request["request"])
            except ValueError as error:
                log.warning("projection %s: %s; request dropped", self.name, error)
                session.read_models.request(self.name, session.version, request["position"],
                                            None)
                continue
            log.info("projection %s: %s of position %d done%s", self.name, request["request"],
                     request["position"],
                     f"; still parked at {remaining['position']}" if remaining else "")


__all__ = ["LockHeld", "ProjectionRunner", "VersionSession", "decode"]
