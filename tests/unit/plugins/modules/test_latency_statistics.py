"""coinbase_latency_info's statistics: nearest-rank percentiles."""

from __future__ import annotations

from ansible_collections.tradeops.incident_response.plugins.modules.coinbase_latency_info import percentile, statistics


def test_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50.0, 95.0, 99.0)
    five = [10.0, 20.0, 30.0, 40.0, 600.0]
    assert percentile(five, 95) == 600.0 and percentile(five, 50) == 30.0
    assert percentile([7.0], 99) == 7.0


def test_statistics():
    assert statistics([3.0, 1.0, 2.0]) == {"p50": 2.0, "p95": 3.0, "p99": 3.0, "max": 3.0, "min": 1.0, "mean": 2.0}
