"""funding.py: interval parsing, the 8-hour basis and who pays whom."""

from __future__ import annotations

import pytest

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.funding import impact, normalise, parse_interval


@pytest.mark.parametrize("value, seconds", [
    ("3600s", 3600.0), ("28800s", 28800.0), ("1.5s", 1.5), ("3600", 3600.0), (3600, 3600.0), (28800.0, 28800.0),
    ("PT1H", 3600.0), ("PT8H", 28800.0), ("PT30M", 1800.0), ("P1D", 86400.0), ("pt1h", 3600.0),
    (None, None), ("", None), ("hourly", None), ("0s", None), ("-60s", None), (True, None), ("P", None),
])
def test_parse_interval(value, seconds):
    assert parse_interval(value) == seconds


def test_normalise_to_8_hours():
    assert normalise(0.0001, 3600) == pytest.approx(0.0008)
    assert normalise(0.0001, 28800) == pytest.approx(0.0001)
    assert normalise(-0.0003, 14400) == pytest.approx(-0.0006)


def test_long_pays_short_receives_when_the_rate_is_positive():
    long_ = impact(10, 0.01, 100000, 0.0001, 3600)
    assert long_["side"] == "LONG" and long_["notional"] == 10000 and long_["payment_per_period"] == 1.0
    assert long_["payment_per_8h"] == 8.0 and long_["payment_per_day"] == 24.0
    short = impact(-10, 0.01, 100000, 0.0001, 3600)
    assert short["side"] == "SHORT" and short["payment_per_day"] == -24.0
    assert impact(-10, 0.01, 100000, -0.0001, 3600)["payment_per_day"] == 24.0  # negative rate: shorts pay
    assert impact(0, 0.01, 100000, 0.0001, 3600)["side"] == "FLAT"
