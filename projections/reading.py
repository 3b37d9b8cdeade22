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
from uuid import UUID

from projections import dashboards, network, summaries
from projections.store import DEFAULT_PROJECTION, ReadModelStore, to_json

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
    """Reads of one projection's live version, for the API."""

    def __init__(self, read_models: ReadModelStore, name: str = DEFAULT_PROJECTION, *,
                 min_position_wait: float = DEFAULT_MIN_POSITION_WAIT) -> None:
        self.read_models = read_models
        self.name = name
        #: How long a read waits for ?min_position (TRACTION_MIN_POSITION_WAIT).
        self.min_position_wait = min_position_wait

    def wait_for(self, min_position: int | None, timeout: float | None = None) -> int:
        """Wait until the projection has processed min_position; its position now."""
        position = self.read_models.live_position(self.name)[1]
        if min_position is None or position >= min_position:
            return position
        timeout = self.min_position_wait if timeout is None else timeout
        deadline = time.monotonic() + timeout
        pause = 0.002
        while position < min_position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProjectionBehind(position, min_position)
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.025)
            position = self.read_models.live_position(self.name)[1]
        return position

    def programmes(self, clinic_id: str, *, status: str | None = None, cursor: str | None = None,
                   limit: int = 50) -> tuple[int, str]:
        """A page of a clinic's programme summaries, newest first, and the next cursor."""
        after = decode_cursor(cursor) if cursor else None
        position, rows, following = self.read_models.summaries_page(
            self.name, clinic_id, status, after, limit
        )
        following_cursor = to_json(encode_cursor(following)) if following else "null"
        return position, f'{{"programmes":[{",".join(rows)}],"next":{following_cursor}}}'

    def summary(self, clinic_id: str, programme_id: UUID) -> tuple[int, str | None]:
        """One programme's summary with its pain trajectory (None: not in this clinic)."""
        position, summary, state = self.read_models.summary(
            self.name, clinic_id, str(programme_id)
        )
        if summary is None or state is None:
            return position, None
        trajectory = to_json(summaries.trajectory(json.loads(state)))
        return position, f'{summary[:-1]},"pain_trajectory":{trajectory}}}'

    def clinic(self, clinic_id: str) -> tuple[int, str]:
        """A clinic's dashboard (all zero before its first programme)."""
        position, dashboard = self.read_models.clinic_dashboard(self.name, clinic_id)
        if dashboard is None:
            dashboard = to_json(dashboards.clinic_dashboard(clinic_id, dashboards.new_totals()))
        return position, dashboard

    def network(self) -> tuple[int, str]:
        """Every clinic's dashboard and the network's totals."""
        position, clinics, totals = self.read_models.network(self.name)
        if totals is None:
            totals = to_json(dashboards.network_dashboard(dashboards.new_totals(), {}))
        return position, network.network_body(clinics, totals)

