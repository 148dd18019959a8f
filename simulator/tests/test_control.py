"""The control API itself: request log, state view, config, reset and determinism, errors."""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.request

import pytest
from double_api import BTC_PERP, Api

from exchange_double.control import ControlError
from exchange_double.keys import GeneratedKey
from exchange_double.testing import DoubleHandle

JWT_SHAPE = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")  # header.payload.signature


def test_request_log_records_who_what_and_outcome_but_never_tokens(api: Api, double: DoubleHandle,
                                                                  ec_key: GeneratedKey) -> None:
    token = ec_key.mint_jwt(api.uri("GET", "/accounts"))
    api.request("GET", "/accounts", token=token, params={"limit": 2})
    api.limit_order("logged-order", "BUY", "90000")
    api.request("GET", "/cfm/positions", token="garbage")
    entries = double.control.requests()
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("GET", "/api/v3/brokerage/accounts", 200),
        ("POST", "/api/v3/brokerage/orders", 200),
        ("GET", "/api/v3/brokerage/cfm/positions", 401),
    ]
    first, order, refused = entries
    assert first["query"] == "limit=2" and first["key"] == ec_key.name and first["client_ip"] == "127.0.0.1"
    assert first["duration_ms"] >= 0 and first["time"] <= time.time()
    assert order["client_order_id"] == "logged-order"
    assert "key" not in refused and refused["auth_error"].startswith("malformed JWT")
    jsonl = (double.state_dir / "requests.jsonl").read_text()
    assert token not in jsonl and token not in json.dumps(entries)
    assert not JWT_SHAPE.search(jsonl)


def test_request_log_filters_and_clear(api: Api, double: DoubleHandle) -> None:
    other = double.new_key("ed25519")
    api.get("/accounts")
    api.request("GET", "/cfm/positions", key=other)
    api.post("/orders/batch_cancel", {"order_ids": ["nope"]})
    control = double.control
    assert len(control.requests(key=other.name)) == 1
    assert [e["path"] for e in control.requests(path="cfm")] == ["/api/v3/brokerage/cfm/positions"]
    assert len(control.requests(method="post")) == 1
    assert len(control.requests(client_ip="127.0.0.1")) == 3 and control.requests(client_ip="10.88.0.9") == []
    assert len(control.requests(status=200)) == 3
    first_id = control.requests()[0]["id"]
    assert len(control.requests(after_id=first_id)) == 2
    assert len(control.requests(limit=1)) == 1
    assert control.requests(since=time.time() + 60) == []
    assert control.clear_requests() == 3
    assert control.requests() == []
    lines = (double.state_dir / "requests.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["path"] == "/api/v3/brokerage/orders/batch_cancel"  # the file keeps it


def test_state_view(api: Api, double: DoubleHandle) -> None:
    double.control.seed_orders(5, BTC_PERP)
    api.market_order("state-buy", "BUY", "2")
    state = double.control.state()
    assert state["orders_by_status"] == {"FILLED": 1, "OPEN": 5}
    portfolio = next(p for p in state["portfolios"] if p["uuid"] == state["default_portfolio_uuid"])
    assert portfolio["positions"][0]["number_of_contracts"] == "2"
    assert portfolio["balance_summary"]["total_open_orders_hold_amount"]["value"] != "0.00"
    assert api.key is not None and api.key.name in portfolio["keys"]
    assert double.control.state(portfolio["uuid"])["portfolios"][0]["uuid"] == portfolio["uuid"]


def test_config_round_trip_and_validation(double: DoubleHandle) -> None:
    changed = double.control.set_config(private_rps="12", market_frozen="true")
    assert changed["changed"] == ["market_frozen", "private_rps"]
    assert double.control.get_config()["private_rps"] == 12
    with pytest.raises(ControlError) as unknown:
        double.control.set_config(no_such_option=1)
    assert unknown.value.status == 400
    with pytest.raises(ControlError):
        double.control.set_config(private_rps="many")


def test_reset_is_deterministic_per_seed(double: DoubleHandle) -> None:
    double.control.reset(seed=7)
    walk_a = double.control.market_step(5)
    double.control.reset(seed=7)
    walk_b = double.control.market_step(5)
    double.control.reset(seed=8)
    walk_c = double.control.market_step(5)
    assert walk_a == walk_b and walk_a != walk_c
    double.control.reset(seed=1)


def test_random_walk_moves_prices_and_fills_resting_orders(api: Api, double: DoubleHandle) -> None:
    near = api.limit_order("near-the-money", "SELL", "95010")["order_id"]
    double.control.set_config(market_frozen=False, volatility=0.002)
    deadline = time.time() + 10
    while time.time() < deadline:
        if api.ok("GET", f"/orders/historical/{near}")["order"]["status"] == "FILLED":
            break
        time.sleep(0.1)
    double.control.set_config(market_frozen=True)
    assert api.ok("GET", f"/orders/historical/{near}")["order"]["status"] == "FILLED"


def test_keys_listing_and_control_errors(double: DoubleHandle, ec_key: GeneratedKey) -> None:
    listed = {k["name"]: k for k in double.control.list_keys()}
    assert listed[ec_key.name]["algorithm"] == "ES256" and listed[ec_key.name]["revoked"] is False
    assert "PRIVATE" not in json.dumps(listed)
    with pytest.raises(ControlError) as missing:
        double.control.revoke_key("organizations/none/apiKeys/none")
    assert missing.value.status == 404
    with pytest.raises(ControlError) as bad_status:
        double.control.fail_next(200)
    assert bad_status.value.status == 400
    with pytest.raises(ControlError):
        double.control.register_key("bad", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ControlError):
        double.control.register_key("x", ec_key.public_pem, permissions=["admin"])


def test_reset_keeps_keys_when_asked(api: Api, double: DoubleHandle, ec_key: GeneratedKey) -> None:
    double.control.reset(keep_keys=True)
    assert api.get("/accounts").status_code == 200
    double.control.reset()
    assert api.get("/accounts").status_code == 401


def test_portfolios_can_be_created_funded_and_listed(api: Api, double: DoubleHandle) -> None:
    desk = "99999999-8888-4777-8666-555555555555"
    created = double.control.set_portfolio(desk, name="Desk B", portfolio_type="CONSUMER",
                                           cfm_usd_balance="1000", cbi_usd_balance="50")
    assert created["name"] == "Desk B" and created["balance_summary"]["cfm_usd_balance"]["value"] == "1000.00"
    key = double.new_key("ec", portfolio_uuid=desk)
    assert api.ok("GET", "/key_permissions", key=key)["portfolio_type"] == "CONSUMER"
    summary = api.ok("GET", "/cfm/balance_summary", key=key)["balance_summary"]
    assert summary["total_usd_balance"]["value"] == "1050.00"
    listed = {p["uuid"]: p for p in double.control.list_portfolios()}
    assert listed[desk]["keys"] == [key.name] and len(listed) == 2
    double.control.set_daily_realized_pnl("-750", key=key.name)
    assert api.ok("GET", "/cfm/balance_summary", key=key)["balance_summary"]["daily_realized_pnl"]["value"] == "-750.00"


def test_alert_sink_keeps_what_drills_send(double):
    control = double.control
    control.clear_alerts()
    body = json.dumps({"text": "INCIDENT: Kill Switch Activation"}).encode()
    request = urllib.request.Request(double.url + "/_control/alerts", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=str(double.ca_path))) as response:
        assert json.loads(response.read())["count"] == 1
    [alert] = control.alerts()
    assert alert["payload"] == {"text": "INCIDENT: Kill Switch Activation"} and alert["received_at"].endswith("Z")
    control.reset()
    assert control.alerts() == []
