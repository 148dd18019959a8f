"""The HTTP client: the SOP's retry schedule (proved without sleeping), error shapes, pagination, rate limit."""

from __future__ import annotations

import json

import httpx
import jwt
import pytest

import keyfactory as kf
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import CoinbaseClient
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.credentials import load_credentials
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    AuthenticationError,
    BusinessRejectError,
    InputError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    TransportError,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.retry import RetryPolicy, parse_retry_after


class FakeTime:
    """A clock that only moves when the client sleeps (or a test advances it)."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


class Script:
    """A MockTransport handler answering from a list of responses (callables or httpx.Response)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer):
            return answer(request)
        return answer


def ok(data):
    return httpx.Response(200, json=data)


@pytest.fixture
def creds():
    return load_credentials(key_name=kf.key_name(), private_key=kf.ec_pem())


@pytest.fixture
def fake_time():
    return FakeTime()


def make_client(creds, fake_time, handler, **kwargs):
    return CoinbaseClient(creds, base_url="https://api.coinbase.com", transport=httpx.MockTransport(handler),
                          sleep=fake_time.sleep, clock=fake_time.clock, **kwargs)


def test_every_request_carries_a_fresh_token_for_its_own_uri(creds, fake_time):
    script = Script(ok({"accounts": [], "has_next": False}))
    client = make_client(creds, fake_time, script)
    client.list_accounts()
    client.list_accounts()
    tokens = [r.headers["Authorization"].split(" ", 1)[1] for r in script.requests]
    claims = [jwt.decode(t, creds.public_key_pem(), algorithms=["ES256"]) for t in tokens]
    assert all(c["uri"] == "GET api.coinbase.com/api/v3/brokerage/accounts" for c in claims)
    assert len({jwt.get_unverified_header(t)["nonce"] for t in tokens}) == 2


def test_port_is_part_of_the_signed_host(creds, fake_time):
    script = Script(ok({"can_view": True}))
    client = CoinbaseClient(creds, base_url="https://localhost:8443", transport=httpx.MockTransport(script), sleep=fake_time.sleep, clock=fake_time.clock)
    client.get_key_permissions()
    token = script.requests[0].headers["Authorization"].split(" ", 1)[1]
    assert jwt.decode(token, options={"verify_signature": False})["uri"] == "GET localhost:8443/api/v3/brokerage/key_permissions"


def test_public_time_needs_no_key(fake_time):
    script = Script(ok({"iso": "2026-11-27T00:00:00Z"}))
    client = make_client(None, fake_time, script)
    assert client.get_server_time()["iso"]
    assert "Authorization" not in script.requests[0].headers


def test_sop_schedule_on_5xx_then_give_up(creds, fake_time):
    script = Script(httpx.Response(503, text="upstream connect error"))
    client = make_client(creds, fake_time, script)
    with pytest.raises(ServerError) as info:
        client.get_key_permissions()
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert len(script.requests) == 6
    assert "gave up after 6 attempts" in str(info.value)
    summary = client.summary()
    assert summary["failures"] == 6 and summary["retries"] == 5 and summary["alert_ops"] is True
    assert [a["wait_before_s"] for a in client.attempts] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0]


def test_waits_are_capped_at_60_seconds(creds, fake_time):
    client = make_client(creds, fake_time, Script(httpx.Response(500)), retry=RetryPolicy(max_retries=8))
    with pytest.raises(ServerError):
        client.get_key_permissions()
    assert fake_time.sleeps == [1, 2, 4, 8, 16, 32, 60, 60]


def test_recovers_after_transient_failures_and_reports_them(creds, fake_time):
    def boom(request):
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    script = Script(boom, slow, httpx.Response(502), ok({"can_view": True, "can_trade": True}))
    client = make_client(creds, fake_time, script)
    assert client.get_key_permissions()["can_trade"] is True
    assert fake_time.sleeps == [1.0, 2.0, 4.0]
    assert [a["outcome"] for a in client.attempts] == ["connection_error", "timeout", "http_502", "ok"]
    assert client.summary()["alert_ops"] is True  # SOP: alert ops after 3 failures


def test_retry_after_is_honoured(creds, fake_time):
    script = Script(httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "RATE_LIMIT_EXCEEDED"}), ok({}))
    client = make_client(creds, fake_time, script)
    client.get_key_permissions()
    assert fake_time.sleeps == [7.0]


def test_persistent_429_becomes_rate_limited_error(creds, fake_time):
    client = make_client(creds, fake_time, Script(httpx.Response(429, json={"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests"})))
    with pytest.raises(RateLimitedError) as info:
        client.get_key_permissions()
    assert info.value.status == 429 and info.value.error == "RATE_LIMIT_EXCEEDED"


def test_401_is_retried_once_with_a_fresh_token_and_plain_text_body_is_kept(creds, fake_time):
    script = Script(httpx.Response(401, text="Unauthorized"))
    client = make_client(creds, fake_time, script)
    with pytest.raises(AuthenticationError) as info:
        client.get_key_permissions()
    assert len(script.requests) == 2 and fake_time.sleeps == []
    first, second = (r.headers["Authorization"] for r in script.requests)
    assert first != second
    assert info.value.status == 401 and "Unauthorized" in str(info.value)
    assert "eyJ" not in str(info.value) and "eyJ" not in json.dumps(info.value.to_dict())


def test_a_single_spurious_401_is_absorbed(creds, fake_time):
    client = make_client(creds, fake_time, Script(httpx.Response(401, text="Unauthorized"), ok({"can_view": True})))
    assert client.get_key_permissions() == {"can_view": True}


def test_403_missing_scopes_is_a_permission_error(creds, fake_time):
    body = {"error": "PERMISSION_DENIED", "error_details": "Missing required scopes", "message": "Missing required scopes"}
    client = make_client(creds, fake_time, Script(httpx.Response(403, json=body)))
    with pytest.raises(PermissionDeniedError) as info:
        client.cancel_orders(["a"])
    assert info.value.missing_scopes and "permission" in str(info.value)
    assert len(client.attempts) == 1  # never retried


def test_other_4xx_is_not_retried_and_carries_the_error_fields(creds, fake_time):
    body = {"error": "INVALID_ARGUMENT", "error_details": "OPEN cannot be combined", "message": "bad"}
    client = make_client(creds, fake_time, Script(httpx.Response(400, json=body)))
    with pytest.raises(RequestRejectedError) as info:
        client.list_orders(["OPEN", "FILLED"])
    assert (info.value.error, info.value.details) == ("INVALID_ARGUMENT", "OPEN cannot be combined")
    assert len(client.attempts) == 1


def test_http_200_with_success_false_is_a_failure_with_its_reason(creds, fake_time):
    body = {"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON",
            "error_response": {"error": "INVALID_PRODUCT_ID", "message": "Product is not tradeable", "error_details": "session closed"}}
    client = make_client(creds, fake_time, Script(ok(body)))
    with pytest.raises(BusinessRejectError) as info:
        client.close_position("cid", "BIP-20DEC30-CDE")
    assert "Product is not tradeable" in str(info.value) and info.value.body == body


def test_error_bodies_never_leak_tokens(creds, fake_time):
    echoed = "invalid token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJrZXkifQ.c2lnbmF0dXJlc2ln"
    client = make_client(creds, fake_time, Script(httpx.Response(400, text=echoed)))
    with pytest.raises(RequestRejectedError) as info:
        client.get_key_permissions()
    assert "eyJhbGci" not in str(info.value) and "[REDACTED TOKEN]" in str(info.value)


def test_unreachable_api_gives_a_hint(creds, fake_time):
    def refuse(request):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = make_client(creds, fake_time, Script(refuse), retry=RetryPolicy(max_retries=1))
    with pytest.raises(TransportError) as info:
        client.get_key_permissions()
    assert "Cannot reach https://api.coinbase.com" in str(info.value) and "egress" in str(info.value)


def test_deadline_stops_retrying(creds, fake_time):
    client = make_client(creds, fake_time, Script(httpx.Response(503)))
    client.deadline = fake_time.now + 3.5
    with pytest.raises(ServerError, match="deadline"):
        client.get_key_permissions()
    assert fake_time.sleeps == [1.0, 2.0]


def test_cursor_and_has_next_pagination(creds, fake_time):
    pages = {
        None: {"orders": [{"order_id": "1"}, {"order_id": "2"}], "has_next": True, "cursor": "c1"},
        "c1": {"orders": [{"order_id": "3"}], "has_next": True, "cursor": "c2"},
        "c2": {"orders": [{"order_id": "4"}], "has_next": False, "cursor": ""},
    }

    def handler(request):
        return ok(pages[request.url.params.get("cursor")])

    client = make_client(creds, fake_time, handler)
    orders = client.list_orders(["OPEN"], product_ids=["A", "B"], page_size=2)
    assert [o["order_id"] for o in orders] == ["1", "2", "3", "4"]


def test_list_params_are_repeated_keys(creds, fake_time):
    script = Script(ok({"orders": [], "has_next": False}))
    make_client(creds, fake_time, script).list_orders(["OPEN"], product_ids=["A", "B"], product_type="FUTURE")
    params = script.requests[0].url.params
    assert params.get_list("product_ids") == ["A", "B"] and params["order_status"] == "OPEN" and params["product_type"] == "FUTURE"


def test_fills_stop_on_empty_cursor(creds, fake_time):
    pages = {None: {"fills": [{"trade_id": "t1"}], "cursor": "x"}, "x": {"fills": [{"trade_id": "t2"}], "cursor": ""}}
    client = make_client(creds, fake_time, lambda r: ok(pages[r.url.params.get("cursor")]))
    assert [f["trade_id"] for f in client.list_fills(start="2026-11-26T00:00:00Z")] == ["t1", "t2"]


def test_pagination_refuses_a_looping_cursor(creds, fake_time):
    client = make_client(creds, fake_time, Script(ok({"orders": [{"order_id": "1"}], "has_next": True, "cursor": "same"})))
    with pytest.raises(ServerError, match="same cursor"):
        client.list_orders(["OPEN"])


def test_working_orders_asks_each_status_separately(creds, fake_time):
    by_status = {"OPEN": [{"order_id": "o1"}], "QUEUED": [{"order_id": "q1"}], "PENDING": [], "CANCEL_QUEUED": [{"order_id": "o1"}]}
    script = Script(lambda r: ok({"orders": by_status[r.url.params["order_status"]], "has_next": False}))
    orders = make_client(creds, fake_time, script).list_working_orders()
    assert sorted(o["order_id"] for o in orders) == ["o1", "q1"]
    assert all(len(r.url.params.get_list("order_status")) == 1 for r in script.requests)


def test_cancel_batch_limit(creds, fake_time):
    with pytest.raises(InputError, match="at most 100"):
        make_client(creds, fake_time, Script(ok({}))).cancel_orders([str(i) for i in range(101)])


def test_rate_limit_keeps_any_second_under_the_limit(creds, fake_time):
    stamps = []

    def handler(request):
        stamps.append(fake_time.now)
        fake_time.now += 0.001  # each request takes 1 ms
        return ok({})

    client = make_client(creds, fake_time, handler, max_requests_per_second=10)
    for _request in range(35):
        client.get_key_permissions()
    for i in range(len(stamps) - 10):
        assert stamps[i + 10] - stamps[i] >= 0.999
    assert client.summary()["rate_limit_wait_s"] > 2.0


def test_retry_after_parsing():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now=1767225600.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_bad_base_url_and_timeout():
    with pytest.raises(InputError, match="https URL"):
        CoinbaseClient(None, base_url="api.coinbase.com")
    with pytest.raises(InputError, match="timeout"):
        CoinbaseClient(None, timeout=0)


def test_timeout_is_always_set(creds, fake_time):
    script = Script(ok({}))
    make_client(creds, fake_time, script, timeout=3).get_key_permissions()
    assert script.requests[0].extensions["timeout"] == {"connect": 3.0, "read": 3.0, "write": 3.0, "pool": 3.0}


def test_fractional_rate_below_one_request_per_second(creds, fake_time):
    stamps = []

    def handler(request):
        stamps.append(fake_time.now)
        return ok({})

    client = make_client(creds, fake_time, handler, max_requests_per_second=0.5)
    for _request in range(3):
        client.get_key_permissions()
    assert stamps[1] - stamps[0] >= 2.0 and stamps[2] - stamps[1] >= 2.0


def test_attempt_history_is_bounded_but_totals_count_everything(creds, fake_time):
    from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import ATTEMPTS_KEPT

    client = make_client(creds, fake_time, Script(ok({})), max_requests_per_second=0)
    for _request in range(ATTEMPTS_KEPT + 25):
        client.get_key_permissions()
    assert len(client.attempts) == ATTEMPTS_KEPT and client.summary()["requests"] == ATTEMPTS_KEPT + 25
