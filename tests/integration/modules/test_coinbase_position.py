"""coinbase_position against the exchange double: close / reduce through close_position only,
once per incident, with the trading session checked first and the result verified."""

from __future__ import annotations

import json
import time
from unittest import mock

import pytest

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import CoinbaseClient
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.credentials import load_credentials
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.positions import incident_client_order_id

BTC = "BIP-20DEC30-CDE"
ETH = "ETP-20DEC30-CDE"
SOL = "SLP-20DEC30-CDE"
CLOSE = "/api/v3/brokerage/orders/close_position"


def contracts(double, key):
    """{product_id: signed contracts} as the double holds them."""
    portfolio = next(p for p in double.control.state()["portfolios"] if key.name in p["keys"])
    return {p["product_id"]: float(p["number_of_contracts"]) * (-1 if p["side"] == "SHORT" else 1) for p in portfolio["positions"]}


def close_posts(double):
    return [r for r in double.control.requests(path=CLOSE) if r["method"] == "POST"]


def position(run_module, connection, key, state, products, incident="INC-4242", check_mode=False, **options):
    args = connection(key, state=state, product_ids=products, incident_id=incident, retry_max_delay=0.05,
                      poll_interval=0.1, **options)
    return run_module("coinbase_position", args, check_mode=check_mode)


def test_close_one_product_then_a_rerun_changes_nothing(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 3, key=key.name)
    clean_double.control.set_position(ETH, "SHORT", 4, key=key.name)
    result = position(run_module, connection, key, "closed", ["BTC-PERP"])
    assert result["failed"] is False and result["changed"] is True and result["verified"] is True
    done = result["positions"][0]
    assert (done["requested"], done["product_id"], done["display_name"]) == ("BTC-PERP", BTC, "BTC PERP")
    assert (done["outcome"], done["side"], done["order_side"], done["contracts_before"], done["contracts_after"]) == (
        "closed", "LONG", "SELL", 3, 0)
    assert done["client_order_id"] == incident_client_order_id("INC-4242", BTC, "close", "flat", 1)
    assert done["order"]["status"] == "FILLED" and done["order"]["filled_size"] == "3"
    assert contracts(clean_double, key) == {ETH: -4}
    posts = close_posts(clean_double)
    assert [p["client_order_id"] for p in posts] == [done["client_order_id"]]

    again = position(run_module, connection, key, "closed", ["BTC-PERP"])
    assert again["failed"] is False and again["changed"] is False
    assert again["positions"][0]["outcome"] == "already_flat"
    assert len(close_posts(clean_double)) == 1  # the re-run sent nothing


def test_close_all_handles_long_and_short(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 2, key=key.name)
    clean_double.control.set_position(ETH, "SHORT", 5, key=key.name)
    result = position(run_module, connection, key, "closed", "all")
    assert result["failed"] is False and result["changed"] is True
    sides = {p["product_id"]: (p["order_side"], p["outcome"]) for p in result["positions"]}
    assert sides == {BTC: ("SELL", "closed"), ETH: ("BUY", "closed")}
    assert contracts(clean_double, key) == {}
    assert result["diff"] == {"before": {"contracts": {BTC: 2, ETH: 5}}, "after": {"contracts": {BTC: 0, ETH: 0}}}


def test_reduce_50_percent_of_3_rounds_down_and_runs_once_per_incident(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 3, key=key.name)
    first = position(run_module, connection, key, "reduced", ["BTC-PERP"], percent=50)
    done = first["positions"][0]
    assert first["changed"] is True and (done["size"], done["target_contracts"], done["outcome"]) == ("1", 2, "reduced")
    assert contracts(clean_double, key) == {BTC: 2}

    retry = position(run_module, connection, key, "reduced", ["BTC-PERP"], percent=50)
    assert retry["failed"] is False and retry["changed"] is False
    assert retry["positions"][0]["outcome"] == "already_reduced" and "another incident_id" in retry["positions"][0]["reason"]
    assert retry["positions"][0]["order_id"] == done["order_id"]
    assert contracts(clean_double, key) == {BTC: 2} and len(close_posts(clean_double)) == 1

    next_incident = position(run_module, connection, key, "reduced", ["BTC-PERP"], incident="INC-4243", percent=50)
    assert next_incident["changed"] is True and contracts(clean_double, key) == {BTC: 1}


@pytest.mark.parametrize("held, percent, rounding, closed", [
    (3, 50, "up", 2),
    (5, 30, "down", 1),
    (5, 30, "up", 2),
    (4, 100, "down", 4),
])
def test_reduce_rounding(make_key, connection, run_module, clean_double, held, percent, rounding, closed):
    key = make_key()
    clean_double.control.set_position(SOL, "SHORT", held, key=key.name)
    result = position(run_module, connection, key, "reduced", [SOL], percent=percent, rounding=rounding)
    assert result["failed"] is False and result["positions"][0]["size"] == str(closed)
    assert contracts(clean_double, key).get(SOL, 0) == -(held - closed)


def test_reduce_that_rounds_to_nothing_sends_nothing(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 1, key=key.name)
    result = position(run_module, connection, key, "reduced", ["BTC-PERP"], percent=50)
    assert result["failed"] is False and result["changed"] is False
    assert result["positions"][0]["outcome"] == "nothing_to_reduce" and "rounding: up" in result["positions"][0]["reason"]
    assert close_posts(clean_double) == [] and contracts(clean_double, key) == {BTC: 1}


def test_a_close_is_repeated_with_a_new_attempt_only_when_the_position_reopened(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 3, key=key.name)
    position(run_module, connection, key, "closed", [BTC])
    clean_double.control.set_position(BTC, "LONG", 2, key=key.name)  # a bot re-opened it
    result = position(run_module, connection, key, "closed", [BTC])
    done = result["positions"][0]
    assert result["changed"] is True and done["outcome"] == "closed" and done["attempt"] == 2
    assert done["client_order_id"] == incident_client_order_id("INC-4242", BTC, "close", "flat", 2)
    assert [o["attempt"] for o in done["earlier_orders"]] == [1]
    assert contracts(clean_double, key) == {}
    assert len({p["client_order_id"] for p in close_posts(clean_double)}) == 2


def _client_for(double, key):
    return CoinbaseClient(load_credentials(key_name=key.name, private_key_path=key.path), base_url=double.url,
                          ca_bundle=str(double.ca_path))


def test_a_rerun_after_a_lost_response_does_not_reduce_twice(make_key, connection, run_module, clean_double):
    """Run 1 reached the venue but died before it heard back: its order exists, run 2 must not add another."""
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 4, key=key.name)
    with _client_for(clean_double, key) as client:
        client.close_position(incident_client_order_id("INC-9", BTC, "reduce", "pct-50", 1), BTC, size="2")
    assert contracts(clean_double, key) == {BTC: 2}
    result = position(run_module, connection, key, "reduced", [BTC], incident="INC-9", percent=50)
    assert result["changed"] is False and result["positions"][0]["outcome"] == "already_reduced"
    assert contracts(clean_double, key) == {BTC: 2} and len(close_posts(clean_double)) == 1


def test_the_venue_answers_a_repeated_client_order_id_with_the_existing_order(make_key, connection, run_module, clean_double):
    """Even when the search misses the earlier order (outside lookback_hours), the same client_order_id cannot close twice."""
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 4, key=key.name)
    with _client_for(clean_double, key) as client:
        client.close_position(incident_client_order_id("INC-10", BTC, "reduce", "pct-50", 1), BTC, size="2")
    # start_date is sent in whole seconds, so the 0.036 s window reaches back at most ~1.04 s.
    time.sleep(1.5)
    result = position(run_module, connection, key, "reduced", [BTC], incident="INC-10", percent=50,
                      lookback_hours=0.00001, verify_timeout=0.5)
    assert result["failed"] is True and result["positions"][0]["outcome"] == "unverified"
    assert contracts(clean_double, key) == {BTC: 2}  # not 1: nothing was closed a second time
    orders = clean_double.control.list_orders(key=key.name)
    assert len(orders) == 1


def test_closed_trading_session_fails_that_product_without_sending(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 2, key=key.name)
    clean_double.control.set_position(ETH, "LONG", 3, key=key.name)
    clean_double.control.set_product(ETH, session_open=False)
    preview = position(run_module, connection, key, "closed", "all", check_mode=True)
    assert preview["failed"] is True and "would fail" in preview["msg"] and ETH in preview["msg"]
    assert [w["product_id"] for w in preview["would_close"]] == [BTC]

    result = position(run_module, connection, key, "closed", "all")
    assert result["failed"] is True and "1 of 2 products failed" in result["msg"] and "trading session is closed" in result["msg"]
    outcomes = {p["product_id"]: p["outcome"] for p in result["positions"]}
    assert outcomes == {BTC: "closed", ETH: "blocked"}
    blocked = next(p for p in result["positions"] if p["product_id"] == ETH)
    assert blocked["session"]["is_session_open"] is False and blocked["client_order_id"] is None
    assert len(close_posts(clean_double)) == 1
    assert contracts(clean_double, key) == {ETH: 3}


def test_cancel_only_product_is_blocked(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_position(SOL, "LONG", 2, key=key.name)
    clean_double.control.set_product(SOL, cancel_only=True)
    result = position(run_module, connection, key, "closed", ["SOL-PERP"])
    assert result["failed"] is True and "cancel-only" in result["msg"] and close_posts(clean_double) == []


def test_check_mode_reports_would_close_and_sends_nothing(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 3, key=key.name)
    clean_double.control.set_position(ETH, "SHORT", 7, key=key.name)
    result = position(run_module, connection, key, "reduced", "all", check_mode=True, percent=50)
    assert result["failed"] is False and result["changed"] is True
    assert sorted((w["product_id"], w["side"], w["contracts"], w["size"], w["order_side"], w["target_contracts"])
                  for w in result["would_close"]) == [(BTC, "LONG", 3, "1", "SELL", 2), (ETH, "SHORT", 7, "3", "BUY", 4)]
    assert all(w["client_order_id"] for w in result["would_close"])
    assert [r for r in clean_double.control.requests() if r["method"] != "GET"] == []
    assert contracts(clean_double, key) == {BTC: 3, ETH: -7}
    # the real run sends exactly the ids check mode announced
    real = position(run_module, connection, key, "reduced", "all", percent=50)
    assert sorted(p["client_order_id"] for p in close_posts(clean_double)) == sorted(w["client_order_id"] for w in result["would_close"])
    assert real["verified"] is True and contracts(clean_double, key) == {BTC: 2, ETH: -4}


def test_flat_book_close_all_is_a_no_op(make_key, connection, run_module, clean_double):
    key = make_key()
    result = position(run_module, connection, key, "closed", "all")
    assert result["failed"] is False and result["changed"] is False and result["positions"] == []


def test_5xx_and_429_on_the_close_are_retried(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 3, key=key.name)
    clean_double.control.fail_next(503, count=2, path=CLOSE)
    clean_double.control.fail_next(429, count=1, path="/api/v3/brokerage/cfm/positions", retry_after=0.05)
    result = position(run_module, connection, key, "closed", [BTC])
    assert result["failed"] is False and result["positions"][0]["outcome"] == "closed"
    assert [p["status"] for p in close_posts(clean_double)] == [503, 503, 200]
    assert contracts(clean_double, key) == {}


def test_a_close_that_fails_after_every_retry_says_a_rerun_is_safe(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 3, key=key.name)
    clean_double.control.fail_next(500, count=5, path=CLOSE)
    result = position(run_module, connection, key, "closed", [BTC], max_retries=1)
    assert result["failed"] is True and result["positions"][0]["outcome"] == "error"
    assert "same incident_id" in result["msg"]
    rerun = position(run_module, connection, key, "closed", [BTC])
    assert rerun["failed"] is False and contracts(clean_double, key) == {}


def test_revoked_key(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 3, key=key.name)
    clean_double.control.revoke_key(key.name)
    result = position(run_module, connection, key, "closed", [BTC])
    assert result["failed"] is True and result["error"]["kind"] == "unauthenticated" and close_posts(clean_double) == []
    assert "eyJ" not in json.dumps(result)


def test_a_key_refused_after_the_first_close_still_reports_what_was_sent(make_key, connection, run_module, clean_double):
    """Product 1's close goes out, then the key is revoked: product 2's close is a 401. The failure
    must still say that an order was sent (changed) and which one."""
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 2, key=key.name)
    clean_double.control.set_position(ETH, "SHORT", 5, key=key.name)
    original = CoinbaseClient.close_position
    sent = []

    def close_then_revoke(self, *args, **kwargs):
        if sent:
            clean_double.control.revoke_key(key.name)
        response = original(self, *args, **kwargs)
        sent.append(response)
        return response

    with mock.patch.object(CoinbaseClient, "close_position", close_then_revoke):
        result = position(run_module, connection, key, "closed", "all")
    assert result["failed"] is True and result["error"]["kind"] == "unauthenticated"
    assert result["changed"] is True
    by_product = {p["product_id"]: p for p in result["positions"]}
    assert set(by_product) == {BTC, ETH}
    btc, eth = by_product[BTC], by_product[ETH]
    assert btc["client_order_id"] == incident_client_order_id("INC-4242", BTC, "close", "flat", 1)
    assert btc["order_id"] and btc["outcome"] == "unverified" and btc["verified"] is False
    assert btc["error"]["kind"] == "unauthenticated"
    assert eth["outcome"] == "error" and eth["order_id"] is None and "Not sent" in eth["reason"]
    assert [p["client_order_id"] for p in close_posts(clean_double) if p["status"] == 200] == [btc["client_order_id"]]
    assert contracts(clean_double, key) == {ETH: -5}
    assert "eyJ" not in json.dumps(result)


def test_view_only_key_cannot_close(make_key, connection, run_module, clean_double):
    key = make_key(permissions="view")
    clean_double.control.set_position(BTC, "LONG", 3, key=key.name)
    result = position(run_module, connection, key, "closed", [BTC])
    assert result["failed"] is True and "may not trade" in result["msg"] and close_posts(clean_double) == []
    assert contracts(clean_double, key) == {BTC: 3}


@pytest.mark.parametrize("state, products, options, named", [
    ("reduced", ["BTC-PERP"], {"percent": 150}, "percent must be more than 0 and at most 100, got 150"),
    ("reduced", ["BTC-PERP"], {"percent": 0}, "percent must be more than 0"),
    ("reduced", ["BTC-PERP"], {}, "percent is required with state=reduced"),
    ("closed", ["BTC-PERP"], {"percent": 50}, "percent only applies to state=reduced"),
    ("closed", ["DOGE-PERP"], {}, "product_ids: The product 'DOGE-PERP' matches no product"),
    ("closed", ["all", "BTC-PERP"], {}, "product_ids: 'all' cannot be combined"),
    ("closed", ["BTC-PERP"], {"incident_id": " "}, "incident_id must not be empty"),
    ("reduced", ["BTC-PERP"], {"percent": 50, "rounding": "nearest"}, "rounding"),
])
def test_bad_arguments_name_the_argument(make_key, connection, run_module, clean_double, state, products, options, named):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 3, key=key.name)
    incident = options.pop("incident_id", "INC-1")
    result = position(run_module, connection, key, state, products, incident=incident, **options)
    assert result["failed"] is True and named in result["msg"]
    assert close_posts(clean_double) == [] and contracts(clean_double, key) == {BTC: 3}


def test_through_ansible_playbook(make_key, connection, ansible_playbook, clean_double):
    key = make_key()
    clean_double.control.set_position(BTC, "LONG", 6, key=key.name)
    args = connection(key, state="reduced", product_ids=["BTC-PERP"], percent=50, incident_id="INC-PB-1", poll_interval=0.1)
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
             "tasks": [
                 {"name": "plan", "tradeops.incident_response.coinbase_position": args, "check_mode": True, "register": "plan"},
                 {"name": "reduce", "tradeops.incident_response.coinbase_position": args, "register": "reduced"},
                 {"name": "again", "tradeops.incident_response.coinbase_position": args, "register": "again"},
             ]}]
    rc, output, results = ansible_playbook(play)
    assert rc == 0, output
    plan, reduced, again = (results[n][0]["localhost"] for n in ("plan", "reduce", "again"))
    assert plan["would_close"][0]["size"] == "3" and plan["changed"] is True
    assert reduced["changed"] is True and reduced["positions"][0]["outcome"] == "reduced"
    assert again["changed"] is False and again["positions"][0]["outcome"] == "already_reduced"
    assert contracts(clean_double, key) == {BTC: 3} and len(close_posts(clean_double)) == 1
