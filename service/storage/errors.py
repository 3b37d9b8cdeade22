"""What the store's drivers raise when the database cannot be reached.

The library's own errors (it wraps the driver's), psycopg's from our own
tables' connections, and the pools' timeouts: all mean "try again shortly",
which the HTTP layer answers with 503 and Retry-After, and the command line
with a plain message.
"""

from __future__ import annotations

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg_pool import PoolTimeout

UNREACHABLE = (OperationalError, InterfaceError, psycopg.OperationalError, PoolTimeout)
