"""The fleet tests use the shared drill environment (tests/support/drill.py, a plugin registered by
the root conftest.py) under the short names these tests were written with."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def double(drill_double):
    return drill_double


@pytest.fixture(scope="session")
def fleet(drill_fleet):
    return drill_fleet
