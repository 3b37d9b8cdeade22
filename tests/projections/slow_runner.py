"""`traction projections run` whose every write transaction stays open a while
before its commit: the crash tests' window to SIGKILL a runner in the middle
of a batch. Fault injection for tests only; the service has no such hook.

    python -m tests.projections.slow_runner SECONDS [run options...]
"""

from __future__ import annotations

import sys
import time
from typing import Any

from projections.store import ReadModelStore
from service.cli import main


def hold_each_write_open(seconds: float) -> None:
    """Sleep inside each read-model transaction, after its writes, before its commit."""
    write_in = ReadModelStore.write_in

    def write_slowly(self: ReadModelStore, *args: Any, **kwargs: Any) -> None:
        write_in(self, *args, **kwargs)
        time.sleep(seconds)

    ReadModelStore.write_in = write_slowly  # type: ignore[method-assign]


if __name__ == "__main__":
    hold_each_write_open(float(sys.argv[1]))
    main(args=["projections", "run", *sys.argv[2:]], prog_name="traction")
