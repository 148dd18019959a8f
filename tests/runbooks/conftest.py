"""Runbook tests: each runbook runs against the drill fleet and the exchange double and is judged
by the state it leaves there (tests/support/runbook.py)."""

from __future__ import annotations

import pytest

from support.drill import run
from support.runbook import Drill


@pytest.fixture
def drill(drill_double, drill_fleet, tmp_path) -> Drill:
    environment = Drill(drill_double, drill_fleet, tmp_path)
    environment.reset()
    yield environment
    run(["podman", "unpause"] + drill_fleet.hosts, check=False)
