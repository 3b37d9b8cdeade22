"""What the API reads from the projections: JSON bodies, ready to send.

Every read answers with the position of the live version it read (a
consistency token: the read reflects every event up to it), and may first
wait, for a bounded time, until the projection has processed a position the
client already knows about (`min_position`, e.g. from a receipt).

The stored summaries and dashboards are JSON already: a read joins the
stored strings instead of parsing and re-serializing them.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

from projections import dashboards, network, summaries
from projections.store import DEFAULT_PROJECTION, ReadModelStore, to_json
from service.storage.replica import Replica

T = TypeVar("T")

#: How long a read waits for ?min_position by default (seconds).
DEFAULT_MIN_POSITION_WAIT = 2.0


class ProjectionBehind(Exception):
    """The projection has not processed `wanted` within the wait."""

    def __init__(self, position: int, wanted: int) -> None:
        super().__init__(f"the projection is at position {position}, not yet {wanted}")
        self.position = position
        self.wanted = wanted


class InvalidCursor(ValueError):
    pass


def encode_cursor(key: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        started, programme_id = text.split(":", 1)
        return int(started), str(UUID(programme_id))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("not a cursor this service gave out") from None


class Reader:
    """Reads of one projection's live version, for the API.

    With a read replica, each read (and its wait for min_position) is made on
    the replica's copy of the read models, or, while the replica cannot be
    reached, on the primary's (service/storage/replica.py). Either way the
    answer carries the position of the copy it was read from, and is never
    older than a min_position asked for.
    """

    def __init__(self, read_models: ReadModelStore, name: str = DEFAULT_PROJECTION, *,
                 min_position_wait: float = DEFAULT_MIN_POSITION_WAIT,
                 replica: Replica | None = None,
                 replica_read_models: ReadModelStore | None = None) -> None:
        self.read_models = read_models
        self.name = name
        #: How long a read waits for ?min_position (TRACTION_MIN_POSITION_WAIT).
        self.min_position_wait = min_position_wait
        self.replica = replica
        self.replica_read_models = replica_read_models

    def _wait(self, read_models: ReadModelStore, min_position: int | None,
              deadline: float) -> int:
        position = read_models.live_position(self.name)[1]
        if min_position is None or position >= min_position:
            return position
        pause = 0.002
        while position < min_position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProjectionBehind(position, min_position)
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.025)
            position = read_models.live_position(self.name)[1]
        return position

    def _read(self, read: Callable[[ReadModelStore], T], min_position: int | None) -> T:
        """`read` on the copy that answers, once it has processed min_position
        (one wait of TRACTION_MIN_POSITION_WAIT, whichever copy answers)."""
        deadline = time.monotonic() + self.min_position_wait

        def on(read_models: ReadModelStore) -> T:
            self._wait(read_models, min_position, deadline)
            return read(read_models)

        if self.replica is None or self.replica_read_models is None:
            return on(self.read_models)
        replica_read_models = self.replica_read_models
        return self.replica.read(lambda: on(replica_read_models),
                                 lambda: on(self.read_models))

    def programmes(self, clinic_id: str, *, status: str | None = None, cursor: str | None = None,
                   limit: int = 50, min_position: int | None = None) -> tuple[int, str]:
        """A page of a clinic's programme summaries, newest first, and the next cursor."""
        after = decode_cursor(cursor) if cursor else None
        position, rows, following = self._read(
            lambda models: models.summaries_page(self.name, clinic_id, status, after, limit),
            min_position)
        following_cursor = to_json(encode_cursor(following)) if following else "null"
        return position, f'{{"programmes":[{",".join(rows)}],"next":{following_cursor}}}'

    def summary(self, clinic_id: str, programme_id: UUID, *,
                min_position: int | None = None) -> tuple[int, str | None]:
        """One programme's summary with its pain trajectory (None: not in this clinic)."""
        position, summary, state = self._read(
            lambda models: models.summary(self.name, clinic_id, str(programme_id)),
            min_position)
        if summary is None or state is None:
            return position, None
        trajectory = to_json(summaries.trajectory(json.loads(state)))
        return position, f'{summary[:-1]},"pain_trajectory":{trajectory}}}'

    def clinic(self, clinic_id: str, *, min_position: int | None = None) -> tuple[int, str]:
        """A clinic's dashboard (all zero before its first programme)."""
        position, dashboard = self._read(
            lambda models: models.clinic_dashboard(self.name, clinic_id), min_position)
        if dashboard is None:
            dashboard = to_json(dashboards.clinic_dashboard(clinic_id, dashboards.new_totals()))
        return position, dashboard

    def network(self, *, min_position: int | None = None) -> tuple[int, str]:
        """Every clinic's dashboard and the network's totals."""
        position, clinics, totals = self._read(
            lambda models: models.network(self.name), min_position)
        if totals is None:
            totals = to_json(dashboards.network_dashboard(dashboards.new_totals(), {}))
        return position, network.network_body(clinics, totals)
