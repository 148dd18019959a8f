"""coinbase_latency_info against the double: injected latency on both sides of 500 ms, errors, timeouts, pacing."""

from __future__ import annotations

import pytest

TIME_PATH = "/api/v3/brokerage/time"
PERMISSIONS_PATH = "/api/v3/brokerage/key_permissions"


def test_baseline_is_low_and_paced_under_the_public_limit(connection, run_module, clean_double):
    result = run_module("coinbase_latency_info", connection(None, samples=20))
    assert result["failed"] is False and result["changed"] is False and result["high"] is False
    assert result["endpoint"] == {"path": TIME_PATH, "authenticated": False}
    assert result["counts"] == {"requested": 20, "measured": 20, "ok": 20, "timeouts": 0, "errors": 0, "error_rate": 0.0}
    assert len(result["samples_ms"]) == 20 and result["latency_ms"]["p50"] < 100
    pacing = result["pacing"]
    assert pacing["interval_s"] == 0.125 and pacing["achieved_rate_per_s"] <= 8.5 and pacing["rate_limit_wait_s"] == 0
    log = clean_double.control.requests(path=TIME_PATH)
    assert len(log) == 21 and {r["status"] for r in log} == {200}  # 1 warm-up + 20 samples, no 429 from the double


def test_injected_latency_over_500ms_is_high(connection, run_module, clean_double):
    clean_double.control.add_latency(600, path=TIME_PATH)
    result = run_module("coinbase_latency_info", connection(None, samples=4, interval=0, warmup=0))
    assert result["high"] is True and result["latency_ms"]["p95"] >= 600 and result["latency_ms"]["min"] >= 600


def test_injected_latency_under_500ms_is_not_high_and_the_threshold_is_configurable(connection, run_module, clean_double):
    clean_double.control.add_latency(150, path=TIME_PATH)
    under = run_module("coinbase_latency_info", connection(None, samples=5, interval=0, warmup=0))
    assert under["high"] is False and 150 <= under["latency_ms"]["p50"] < 500
    stricter = run_module("coinbase_latency_info", connection(None, samples=5, interval=0, warmup=0, threshold_ms=100))
    assert stricter["high"] is True and stricter["threshold_ms"] == 100


def test_5xx_samples_are_counted_not_retried_and_not_measured(connection, run_module, clean_double):
    clean_double.control.fail_next(503, count=3, path=TIME_PATH)
    result = run_module("coinbase_latency_info", connection(None, samples=10, interval=0.11, warmup=0))
    assert result["errors"] == {"http_503": 3}
    assert result["counts"] == {"requested": 10, "measured": 7, "ok": 7, "timeouts": 0, "errors": 3, "error_rate": 0.3}
    assert len(clean_double.control.requests(path=TIME_PATH)) == 10  # one attempt per sample: no retries


def test_429_burst_is_counted_and_the_rest_measured(connection, run_module, clean_double):
    clean_double.control.rate_limit_burst(0.4, path=TIME_PATH)
    result = run_module("coinbase_latency_info", connection(None, samples=10, warmup=0))
    assert result["errors"].get("http_429", 0) >= 1 and result["counts"]["ok"] >= 1
    assert result["counts"]["ok"] + result["errors"]["http_429"] == 10
    assert result["requests"]["waits_s"] == []  # nothing was retried


def test_timeouts_count_at_the_timeout_value(connection, run_module, clean_double):
    clean_double.control.add_latency(1500, path=TIME_PATH)
    result = run_module("coinbase_latency_info", connection(None, samples=3, interval=0, warmup=0, timeout=0.3, threshold_ms=200))
    assert result["counts"]["timeouts"] == 3 and result["samples_ms"] == [300.0, 300.0, 300.0]
    assert result["latency_ms"]["p95"] == 300.0 and result["high"] is True


def test_all_errors_is_a_failure_not_a_latency(connection, run_module, clean_double):
    clean_double.control.fail_next(502, count=3, path=TIME_PATH)
    result = run_module("coinbase_latency_info", connection(None, samples=3, interval=0, warmup=0))
    assert result["failed"] and "No sample was answered: 3 x http_502" in result["msg"]


def test_authenticated_endpoint_signs_each_request_and_paces_for_the_shared_key(make_key, connection, run_module, clean_double):
    key = make_key(permissions="view")
    result = run_module("coinbase_latency_info", connection(key, endpoint="/key_permissions", samples=5))
    assert result["endpoint"] == {"path": PERMISSIONS_PATH, "authenticated": True} and result["pacing"]["interval_s"] == 0.2
    log = clean_double.control.requests(path=PERMISSIONS_PATH)
    assert [r["key"] for r in log] == [key.name] * 6
    assert result["pacing"]["duration_s"] >= 0.8  # five samples started 0.2 s apart
    finished = [r["time"] for r in log[1:]]
    assert (finished[-1] - finished[0]) / 4 > 0.15


def test_client_rate_limit_waits_are_reported_and_not_measured(make_key, connection, run_module):
    key = make_key(permissions="view")
    result = run_module("coinbase_latency_info", connection(key, endpoint="/key_permissions", samples=6, interval=0, warmup=0,
                                                            max_requests_per_second=3))
    assert result["pacing"]["rate_limit_wait_s"] > 0.5 and result["latency_ms"]["max"] < 400


def test_revoked_key_fails_clearly(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.revoke_key(key.name)
    result = run_module("coinbase_latency_info", connection(key, endpoint="/key_permissions", samples=5))
    assert result["failed"] and result["error"]["kind"] == "unauthenticated" and "HTTP 401" in result["msg"]
    assert len(clean_double.control.requests(path=PERMISSIONS_PATH)) == 2  # the client's one retry with a fresh token, then stop


def test_missing_scope_fails_clearly(make_key, connection, run_module):
    result = run_module("coinbase_latency_info", connection(make_key(permissions="trade"), endpoint="/accounts", samples=5))
    assert result["failed"] and result["error"]["missing_scopes"] is True


@pytest.mark.parametrize("extra, expected", [
    ({"samples": 0}, "samples must be greater than 0"),
    ({"endpoint": "time"}, "endpoint must be a path"),
    ({"endpoint": "/time?x=1"}, "endpoint must be a path"),
    ({"interval": -1}, "interval must be 0 or more"),
    ({"endpoint": "/key_permissions"}, "No private key was given"),
])
def test_bad_arguments_name_the_argument(connection, run_module, extra, expected):
    result = run_module("coinbase_latency_info", connection(None, **extra))
    assert result["failed"] and expected in result["msg"], result["msg"]
