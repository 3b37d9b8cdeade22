"""Read models built by an older release: rebuilt, never written into.

A release that changes what a read model holds bumps its state format
(projections/summaries.py STATE_FORMAT). Read models record the format they
were built in; `rebuild_outdated` rebuilds (beside the live ones, then
swaps: reads go on) every projection whose live version is in another
format. `traction migrate` calls it, and `traction projections run` does
before it follows the log, so an upgraded runner never applies events to
states it does not understand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from domain.application import Programmes
from projections.locks import LockHeld
from projections.rebuild import RebuildReport, rebuild
from projections.store import PROJECTIONS, ReadModelStore
from projections.summaries import STATE_FORMAT
from service.storage.stores import Store

log = logging.getLogger("traction.projections")


def outdated(read_models: ReadModelStore) -> dict[str, int]:
    """The projections whose live version is in another format: name -> its format."""
    found = {}
    for name in PROJECTIONS:
        live = read_models.versions(name)[0]
        state_format = read_models.state_format(name, live)
        # A version nothing was applied to yet (a new store's) takes this format as it is.
        if state_format != STATE_FORMAT and not read_models.adopt_format(name, live):
            found[name] = state_format
    return found


def rebuild_outdated(application: Programmes, read_models: ReadModelStore, store: Store, *,
                     progress: bool = False, grace: float = 0.0,
                     wait: Callable[[float], object] = time.sleep) -> list[RebuildReport]:
    """Rebuild every outdated projection; while another process rebuilds one, wait for it."""
    reports = []
    for name, state_format in outdated(read_models).items():
        log.warning("projection %s: its read models were built by an older release (state "
                    "format %d); rebuilding them in format %d", name, state_format,
                    STATE_FORMAT)
        while True:
            try:
                reports.append(rebuild(application, read_models, store, name,
                                       progress=progress, grace=grace))
                break
            except LockHeld:  # another runner or `traction migrate` is rebuilding it
                if name not in outdated(read_models):
                    break
                wait(1.0)
    return reports
