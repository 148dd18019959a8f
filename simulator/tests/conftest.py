"""Shared fixtures: one real double per test session, reset before every test.

The session double runs with a frozen market (prices change only when a test says so, so
PnL assertions are exact), fast heartbeats and a short subscribe deadline (the suite stays
fast), and the rate limiter off (tests that exercise it switch it on). After each test the
double is reset and these settings restored, so tests cannot leak state into each other.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from double_api import Api

from exchange_double.keys import GeneratedKey
from exchange_double.testing import DoubleHandle, running_double

BASELINE: dict[str, Any] = {
    "market_frozen": True,
    "tick_interval": 0.05,
    "heartbeat_interval": 0.1,
    "ws_subscribe_timeout": 1.0,
    "rate_limit_enabled": False,
    "cancel_queued_delay": 0.0,
    "orders_default_limit": 100,
    "jwt_leeway": 5.0,
}


@pytest.fixture(scope="session")
def double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DoubleHandle]:
    with running_double(tmp_path_factory.mktemp("double"), **BASELINE) as handle:
        yield handle


@pytest.fixture(autouse=True)
def fresh_double(request: pytest.FixtureRequest) -> Iterator[None]:
    if "double" not in request.fixturenames:
        yield
        return
    handle: DoubleHandle = request.getfixturevalue("double")
    handle.control.reset()
    handle.control.set_config(**BASELINE)
    yield


@pytest.fixture
def ec_key(double: DoubleHandle) -> GeneratedKey:
    return double.new_key("ec")


@pytest.fixture
def ed_key(double: DoubleHandle) -> GeneratedKey:
    return double.new_key("ed25519")


@pytest.fixture
def api(double: DoubleHandle, ec_key: GeneratedKey) -> Iterator[Api]:
    client = Api(double, ec_key)
    yield client
    client.http.close()


@pytest.fixture
def public_api(double: DoubleHandle) -> Iterator[Api]:
    client = Api(double, None)
    yield client
    client.http.close()
