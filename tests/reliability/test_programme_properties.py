"""R4: stateful property tests of the Programme aggregate through the
`Programmes` application on a real SQLite file (tests/reliability/programme_machine.py):
an accepted command keeps every rule, a refused one changes nothing, and
replaying the events rebuilds the same state.

(R4's "same metrics whatever the arrival order" belongs with the projections.)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.reliability.programme_machine import machine_on

pytestmark = pytest.mark.slow
MACHINE_SETTINGS = settings(max_examples=25, stateful_step_count=25, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.filter_too_much])


@pytest.fixture
def sqlite_url_in_memory_fs(tmp_path) -> Iterator[str]:
    """A SQLite file on tmpfs when there is one: every step commits, and a disk's
    fsync would make the run ten times slower without testing anything more."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else str(tmp_path)
    directory = tempfile.mkdtemp(prefix="traction-r4-", dir=base)
    try:
        yield f"sqlite:///{directory}/ledger.sqlite"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_commands_keep_the_rules_and_replay_to_the_same_state(sqlite_url_in_memory_fs):
    machine = machine_on(sqlite_url_in_memory_fs)
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
