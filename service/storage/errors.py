"""What the store's drivers raise when the database cannot be reached.

The library's own errors (it wraps the driver's), psycopg's from our own
tables' connections, and the pools' timeouts: all mean "try again shortly",
which the HTTP layer answers with 503 and Retry-After, and the command line
with a plain message.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg_pool import PoolTimeout

UNREACHABLE = (OperationalError, InterfaceError, psycopg.OperationalError, PoolTimeout)

#: A write is tried as often, and as far apart, as the library tries its own.
WRITE_ATTEMPTS = 10
WRITE_RETRY_SECONDS = 0.2

log = logging.getLogger(__name__)
Write = TypeVar("Write", bound=Callable[..., Any])


def retry_write(write: Write) -> Write:
    """Try a write again, a little later, when the database could not be reached
    or used (a connection lost with a restart, the table's lock timing out), and
    say so in the log: a conflict (IntegrityError) is never retried here, so a
    retry in the log means the store, not the traffic, is in trouble."""

    @functools.wraps(write)
    def retried(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return write(*args, **kwargs)
            except (InterfaceError, OperationalError) as error:
                if attempt == WRITE_ATTEMPTS:
                    raise
                # The first line only: a driver's detail lines may quote values.
                reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
                log.warning("a write to the store failed (%s: %s); retrying, attempt %d of %d",
                            type(error).__name__, reason, attempt + 1, WRITE_ATTEMPTS)
                time.sleep(WRITE_RETRY_SECONDS)
        raise AssertionError("unreachable")

    return retried  # type: ignore[return-value]
