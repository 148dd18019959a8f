"""Every REST fault injector, the rate limiter, and the kill-switch workload under latency."""

from __future__ import annotations

import time

from double_api import BTC_PERP, Api

from exchange_double.testing import DoubleHandle


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def test_latency_applies_to_matching_paths_only(api: Api, double: DoubleHandle) -> None:
    double.control.add_latency(250, path="/api/v3/brokerage/accounts*", methods=["GET"])
    slow, response = timed(lambda: api.get("/accounts"))
    assert response.status_code == 200 and slow >= 0.25
    fast, _ = timed(lambda: api.get("/cfm/positions"))
    assert fast < 0.2
    control, _ = timed(double.control.health)
    assert control < 0.2
    assert double.control.requests(path="/accounts")[-1]["fault"] == "latency"


def test_fail_next_is_deterministic_and_sends_retry_after(api: Api, double: DoubleHandle) -> None:
    double.control.fail_next(503, count=2, path="/api/v3/brokerage/cfm/*", retry_after=2)
    statuses = [api.get("/cfm/positions") for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].headers["Retry-After"] == "2"
    assert statuses[0].json() == {"error": "UNAVAILABLE", "code": 14, "message": "Service Unavailable",
                                  "error_details": "Service Unavailable"}
    assert api.get("/accounts").status_code == 200  # other paths untouched
    faults = [e.get("fault") for e in double.control.requests(path="/cfm/positions")]
    assert faults == ["fail_next", "fail_next", None]


def test_injected_errors_keep_the_real_shapes(api: Api, double: DoubleHandle) -> None:
    double.control.fail_next(401)
    unauthorized = api.get("/accounts")
    assert unauthorized.status_code == 401 and unauthorized.text == "Unauthorized"
    double.control.fail_next(403)
    assert '"error_details":"Missing required scopes"' in api.get("/accounts").text
    double.control.fail_next(429, retry_after=1)
    limited = api.get("/accounts")
    assert limited.json() == {"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests"}
    assert limited.headers["Retry-After"] == "1"
    double.control.fail_next(502, body_format="text")
    gateway = api.get("/accounts")
    assert gateway.status_code == 502 and gateway.text == "Bad Gateway"
    assert gateway.headers["content-type"].startswith("text/plain")
    double.control.fail_next(500, message="matching engine unavailable")
    assert api.get("/accounts").json()["message"] == "matching engine unavailable"


def test_error_rate_by_status(api: Api, double: DoubleHandle) -> None:
    double.control.add_error_rate(504, 1.0, path="/api/v3/brokerage/orders*")
    assert api.get("/orders/historical/batch").status_code == 504
    assert api.get("/accounts").status_code == 200
    double.control.clear_faults()
    double.control.add_error_rate(500, 0.5)
    statuses = [api.get("/time").status_code for _ in range(60)]
    assert 10 < statuses.count(500) < 50 and statuses.count(200) == 60 - statuses.count(500)


def test_faults_never_touch_the_control_api(double: DoubleHandle) -> None:
    double.control.add_error_rate(503, 1.0)
    double.control.add_latency(2000)
    elapsed, health = timed(double.control.health)
    assert health["status"] == "ok" and elapsed < 1
    described = double.control.list_faults()
    assert described["error_rates"][0]["status"] == 503 and described["latency"][0]["ms"] == 2000
    cleared = double.control.clear_faults()
    assert cleared["error_rates"] == [] and cleared["latency"] == []


def test_rate_limit_burst_expires(api: Api, double: DoubleHandle) -> None:
    double.control.rate_limit_burst(0.5, retry_after=1)
    assert api.get("/accounts").status_code == 429
    time.sleep(0.6)
    assert api.get("/accounts").status_code == 200


def test_cancel_failures_by_id_and_by_rate(api: Api, double: DoubleHandle) -> None:
    ids = double.control.seed_orders(6, BTC_PERP)["order_ids"]
    double.control.cancel_failures(order_ids=[ids[0]], reason="COMMANDER_REJECTED_CANCEL_ORDER", times=1)
    first = api.ok("POST", "/orders/batch_cancel", json={"order_ids": ids[:3]})["results"]
    assert [(r["success"], r["failure_reason"]) for r in first] == [
        (False, "COMMANDER_REJECTED_CANCEL_ORDER"),
        (True, "UNKNOWN_CANCEL_FAILURE_REASON"),
        (True, "UNKNOWN_CANCEL_FAILURE_REASON"),
    ]
    retry = api.ok("POST", "/orders/batch_cancel", json={"order_ids": [ids[0]]})["results"]
    assert retry[0]["success"] is True  # it failed once, as configured
    double.control.cancel_failures(rate=1.0, reason="INVALID_CANCEL_FCM_TRADING_SESSION", times=2)
    results = api.ok("POST", "/orders/batch_cancel", json={"order_ids": ids[3:]})["results"]
    assert [r["success"] for r in results] == [False, False, True]
    assert results[0]["failure_reason"] == "INVALID_CANCEL_FCM_TRADING_SESSION"
    statuses = {o["order_id"]: o["status"] for o in double.control.list_orders()}
    assert [statuses[i] for i in ids] == ["CANCELLED", "CANCELLED", "CANCELLED", "OPEN", "OPEN", "CANCELLED"]


def test_cancels_can_be_refused_while_a_session_is_closed(api: Api, double: DoubleHandle) -> None:
    order_id = api.limit_order("in-maintenance", "BUY", "90000")["order_id"]
    double.control.set_product(BTC_PERP, session_open=False, reject_cancels_when_closed=True)
    result = api.ok("POST", "/orders/batch_cancel", json={"order_ids": [order_id]})["results"][0]
    assert result == {"success": False, "failure_reason": "INVALID_CANCEL_FCM_TRADING_SESSION", "order_id": order_id}


def test_private_rate_limit_is_per_key_and_sliding(api: Api, double: DoubleHandle) -> None:
    double.control.set_config(rate_limit_enabled=True, private_rps=30)
    responses = [api.get("/cfm/positions") for _ in range(40)]
    statuses = [r.status_code for r in responses]
    assert statuses[:30] == [200] * 30 and 429 in statuses[30:]
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json() == {"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests"}
    assert responses[0].headers["x-ratelimit-limit"] == "30"
    assert int(responses[0].headers["x-ratelimit-remaining"]) == 29
    other = double.new_key("ed25519")
    assert api.request("GET", "/cfm/positions", key=other).status_code == 200
    time.sleep(1.05)
    assert api.get("/cfm/positions").status_code == 200


def test_public_rate_limit_is_per_ip(public_api: Api, double: DoubleHandle) -> None:
    double.control.set_config(rate_limit_enabled=True, public_rps=10)
    statuses = [public_api.get("/time").status_code for _ in range(15)]
    assert statuses[:10] == [200] * 10 and 429 in statuses[10:]
    double.control.set_config(rate_limit_enabled=False)
    assert public_api.get("/time").status_code == 200


def test_kill_switch_workload_is_fast_under_latency(api: Api, double: DoubleHandle) -> None:
    """1,500 open orders, 20 ms added to every request: list + cancel everything in seconds."""
    double.control.seed_orders(1500, BTC_PERP)
    double.control.add_latency(20)
    started = time.perf_counter()
    requests = 0
    while True:
        open_ids, cursor = [], None
        while True:
            params = {"order_status": "OPEN", **({"cursor": cursor} if cursor else {})}
            body = api.ok("GET", "/orders/historical/batch", params=params)
            requests += 1
            open_ids += [o["order_id"] for o in body["orders"]]
            cursor = body["cursor"]
            if not body["has_next"]:
                break
        if not open_ids:
            break
        for start in range(0, len(open_ids), 100):
            results = api.ok("POST", "/orders/batch_cancel", json={"order_ids": open_ids[start:start + 100]})
            requests += 1
            assert all(r["success"] for r in results["results"])
    elapsed = time.perf_counter() - started
    assert double.control.state()["orders_by_status"] == {"CANCELLED": 1500}
    assert requests == 31  # 10 + 10 (first sweep, capped at 1000), 5 + 5, then 1 empty listing
    assert elapsed < 10, f"kill-switch workload took {elapsed:.1f}s"
