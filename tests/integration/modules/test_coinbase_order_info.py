"""coinbase_order_info against the exchange double: every working status, every page, counts per product / status / side / host."""

from __future__ import annotations

import json

import pytest

BTC = "BIP-20DEC30-CDE"
ETH = "ETP-20DEC30-CDE"
LIST_ORDERS = "/api/v3/brokerage/orders/historical/batch"


def info(run_module, connection, key, check_mode=False, **options):
    return run_module("coinbase_order_info", connection(key, retry_max_delay=0.05, **options), check_mode=check_mode)


def seed_mixed_book(control, key):
    """bot-01: 130 OPEN BTC; bot-02: 40 OPEN ETH + 6 QUEUED ETH; a manual order; 3 PENDING BTC; history that must not show."""
    control.seed_orders(130, BTC, key=key.name, client_order_id_prefix="bot-01-1732665600000-")
    control.seed_orders(40, ETH, key=key.name, side="SELL", client_order_id_prefix="bot-02-1732665600123-")
    control.seed_orders(6, ETH, key=key.name, status="QUEUED", client_order_id_prefix="bot-02-1732665600456-")
    control.seed_orders(3, BTC, key=key.name, status="PENDING", side="BUY", client_order_id_prefix="manual-")
    control.seed_orders(25, BTC, key=key.name, status="CANCELLED", client_order_id_prefix="old-")
    control.seed_orders(4, BTC, key=key.name, status="EXPIRED", client_order_id_prefix="older-")


def test_lists_open_queued_and_pending_across_pages_with_counts(make_key, connection, run_module, clean_double):
    key = make_key()
    seed_mixed_book(clean_double.control, key)
    result = info(run_module, connection, key, page_size=50)
    assert result["failed"] is False and result["changed"] is False and result["complete"] is True
    assert result["count"] == 179 and len(result["orders"]) == 179
    assert result["by_status"] == {"OPEN": 170, "PENDING": 3, "QUEUED": 6}
    assert result["by_product"] == {BTC: 133, ETH: 46}
    assert result["by_side"] == {"BUY": 65 + 3 + 3, "SELL": 65 + 40 + 3}
    assert result["by_prefix"] == {"bot-01": 130, "bot-02": 46, "(none)": 3}
    truth = {o["order_id"] for o in clean_double.control.list_orders(status=["OPEN", "PENDING", "QUEUED"], key=key.name)}
    assert {o["order_id"] for o in result["orders"]} == truth
    # 170 OPEN orders at 50 a page are four pages: the cursor was followed to the end.
    open_pages = [r for r in clean_double.control.requests(path=LIST_ORDERS) if "order_status=OPEN" in r["query"]]
    assert len(open_pages) == 4 and ["cursor=" in r["query"] for r in open_pages] == [False, True, True, True]
    # every status was asked for on its own (OPEN cannot be combined with others)
    assert all(r["query"].count("order_status=") == 1 for r in clean_double.control.requests(path=LIST_ORDERS))
    order = next(o for o in result["orders"] if o["prefix"] == "bot-01")
    assert order["product_type"] == "FUTURE" and order["order_type"] == "LIMIT" and order["base_size"] == "1"
    assert float(order["limit_price"]) > 0


def test_filters_by_product_name_type_side_and_prefix(make_key, connection, run_module, clean_double):
    key = make_key()
    seed_mixed_book(clean_double.control, key)
    clean_double.control.seed_orders(2, "BTC-USD", key=key.name, side="SELL", base_size="0.001", client_order_id_prefix="spot-")
    result = info(run_module, connection, key, product_ids=["eth perp"], order_side="SELL")
    assert result["products"] == [{"requested": "eth perp", "product_id": ETH, "display_name": "ETH PERP"}]
    assert result["filters"]["product_ids"] == [ETH] and result["filters"]["order_side"] == "SELL"
    assert result["count"] == 43 and result["by_status"] == {"OPEN": 40, "QUEUED": 3}

    spot = info(run_module, connection, key, product_type="SPOT")
    assert spot["count"] == 2 and spot["by_product"] == {"BTC-USD": 2}

    host = info(run_module, connection, key, client_order_id_prefix="bot-02-", include_orders=False)
    assert host["count"] == 46 and host["by_prefix"] == {"bot-02": 46} and "orders" not in host

    queued_only = info(run_module, connection, key, statuses=["QUEUED", "PENDING"])
    assert queued_only["by_status"] == {"PENDING": 3, "QUEUED": 6}


def test_prefix_rule_is_an_option(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.seed_orders(3, BTC, key=key.name, client_order_id_prefix="eu.trader1_")
    clean_double.control.seed_orders(2, BTC, key=key.name, client_order_id_prefix="us.trader7_")
    result = info(run_module, connection, key, client_order_id_pattern=r"^(\w+)\.")
    assert result["by_prefix"] == {"eu": 3, "us": 2}


def test_more_than_1000_open_orders_with_a_prefix_filter_is_flagged_incomplete(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.seed_orders(5, BTC, key=key.name, client_order_id_prefix="bot-09-1732665600000-")
    clean_double.control.seed_orders(1000, BTC, key=key.name, client_order_id_prefix="bot-01-1732665600000-")
    result = info(run_module, connection, key, client_order_id_prefix="bot-09-", include_orders=False)
    # The 1000 newest OPEN orders are bot-01's: bot-09's hide behind Coinbase's cap, and the result says so.
    assert result["count"] == 0 and result["complete"] is False


def test_empty_book(make_key, connection, run_module):
    result = info(run_module, connection, make_key(), check_mode=True)
    assert result["failed"] is False and result["count"] == 0 and result["by_product"] == {} and result["orders"] == []


def test_5xx_and_429_while_listing_are_retried(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.seed_orders(60, BTC, key=key.name)
    clean_double.control.fail_next(503, count=2, path=LIST_ORDERS)
    clean_double.control.fail_next(429, count=1, path=LIST_ORDERS, retry_after=0.05)
    result = info(run_module, connection, key, page_size=25)
    assert result["failed"] is False and result["count"] == 60
    assert result["requests"]["retries"] == 3 and result["requests"]["failures"] == 3


def test_revoked_key(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.revoke_key(key.name)
    result = info(run_module, connection, key)
    assert result["failed"] is True and result["error"]["kind"] == "unauthenticated" and "revoked" in result["msg"]
    assert "eyJ" not in json.dumps(result)


def test_missing_view_scope(make_key, connection, run_module):
    result = info(run_module, connection, make_key(permissions="trade"))
    assert result["failed"] is True and result["error"]["missing_scopes"] is True
    assert "Listing the working orders failed" in result["msg"]


@pytest.mark.parametrize("options, named", [
    ({"product_ids": ["NOPE-PERP"]}, "product_ids: The product 'NOPE-PERP' matches no product"),
    ({"page_size": 0}, "page_size must be between 1 and 1000"),
    ({"statuses": ["FILLED"]}, "statuses"),
    ({"client_order_id_pattern": "["}, "client_order_id_pattern"),
])
def test_bad_arguments(make_key, connection, run_module, options, named):
    result = info(run_module, connection, make_key(), **options)
    assert result["failed"] is True and named in result["msg"]


def test_through_ansible_playbook(make_key, connection, ansible_playbook, clean_double):
    key = make_key()
    seed_mixed_book(clean_double.control, key)
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
             "tasks": [{"name": "list", "tradeops.incident_response.coinbase_order_info": connection(key, include_orders=False),
                        "register": "working"}]}]
    rc, output, results = ansible_playbook(play)
    assert rc == 0, output
    working = results["list"][0]["localhost"]
    assert working["count"] == 179 and working["by_prefix"]["bot-01"] == 130
