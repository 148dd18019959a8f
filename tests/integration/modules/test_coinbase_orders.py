"""coinbase_orders state=cancelled against the exchange double: the kill switch's cancel-all.

Every test asserts the double's own state (orders by status, the request log), not only what
the module said.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time

import pytest

BTC = "BIP-20DEC30-CDE"
ETH = "ETP-20DEC30-CDE"
BATCH_CANCEL = "/api/v3/brokerage/orders/batch_cancel"
LIST_ORDERS = "/api/v3/brokerage/orders/historical/batch"
WORKING = ["OPEN", "PENDING", "QUEUED", "CANCEL_QUEUED"]
FAST = dict(quiet_period=0.2, poll_interval=0.1, retry_max_delay=0.05)


def working_orders(double, key):
    return double.control.list_orders(status=WORKING, key=key.name)


def cancel_calls(double):
    return [r for r in double.control.requests(path=BATCH_CANCEL) if r["method"] == "POST"]


def cancel(run_module, connection, key, check_mode=False, **options):
    args = connection(key, state="cancelled", **dict(FAST, **options))
    return run_module("coinbase_orders", args, check_mode=check_mode)


def test_more_than_1000_open_orders_are_cancelled_to_zero_in_batches_of_100(make_key, connection, run_module, clean_double):
    key = make_key()
    seeded = clean_double.control.seed_orders(1250, BTC, key=key.name)["order_ids"]
    result = cancel(run_module, connection, key)
    assert result["failed"] is False and result["changed"] is True
    assert result["empty"] is True and result["remaining"] == 0 and result["stopped_because"] == "empty"
    assert result["cancelled_count"] == 1250 and sorted(o["order_id"] for o in result["cancelled"]) == sorted(seeded)
    # Coinbase lists at most 1000 OPEN orders: the first round saw 1000, the re-listing the other 250.
    assert [r["listed"] for r in result["rounds"] if r["sent"]] == [1000, 250]
    assert result["rounds"][0]["listing_capped"] is True
    calls = cancel_calls(clean_double)
    assert len(calls) == math.ceil(1000 / 100) + math.ceil(250 / 100)
    assert all(c["status"] == 200 for c in calls)
    assert working_orders(clean_double, key) == []
    statuses = {o["status"] for o in clean_double.control.list_orders(key=key.name)}
    assert statuses == {"CANCELLED"}
    assert result["timings"]["time_to_first_cancel_s"] <= result["timings"]["time_to_zero_s"] <= result["timings"]["total_s"]
    assert result["diff"] == {"before": {"working_orders": {BTC: 1000}}, "after": {"working_orders": {}}}

    again = cancel(run_module, connection, key)
    assert again["changed"] is False and again["cancelled_count"] == 0 and again["empty"] is True
    assert len(cancel_calls(clean_double)) == len(calls)  # nothing sent the second time


def test_listing_reads_every_page(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.seed_orders(250, BTC, key=key.name)
    result = cancel(run_module, connection, key, page_size=100)
    assert result["empty"] and result["cancelled_count"] == 250
    first_round_open_pages = [r for r in clean_double.control.requests(path=LIST_ORDERS) if "OPEN" in r["query"]][:3]
    assert ["cursor=" in r["query"] for r in first_round_open_pages] == [False, True, True]


def test_per_order_failures_are_retried_until_cancelled(make_key, connection, run_module, clean_double):
    key = make_key()
    ids = clean_double.control.seed_orders(300, BTC, key=key.name)["order_ids"]
    stubborn = ids[:7]
    clean_double.control.cancel_failures(order_ids=stubborn, reason="COMMANDER_REJECTED_CANCEL_ORDER", times=2)
    result = cancel(run_module, connection, key)
    assert result["failed"] is False and result["empty"] is True and result["cancelled_count"] == 300
    retried = {r["order_id"]: r for r in result["retried"]}
    assert set(retried) == set(stubborn)
    assert all(r["attempts"] == 3 and r["outcome"] == "cancelled" for r in retried.values())
    assert all(r["failure_reasons"] == ["COMMANDER_REJECTED_CANCEL_ORDER"] * 2 for r in retried.values())
    assert result["failed"] is False and result["cancel_rounds"] == 3
    assert working_orders(clean_double, key) == []


def test_an_order_that_cannot_be_cancelled_is_reported_with_its_reason(make_key, connection, run_module, clean_double):
    key = make_key()
    ids = clean_double.control.seed_orders(20, ETH, key=key.name)["order_ids"]
    clean_double.control.cancel_failures(order_ids=[ids[3]], reason="INVALID_CANCEL_FCM_TRADING_SESSION")
    result = cancel(run_module, connection, key, cancel_retries=2)
    assert result["failed"] is True and "1 working orders remain" in result["msg"]
    assert "INVALID_CANCEL_FCM_TRADING_SESSION" in result["msg"]
    assert result["stopped_because"] == "retries_exhausted" and result["empty"] is False and result["remaining"] == 1
    assert [(f["order_id"], f["failure_reason"], f["attempts"]) for f in result["failed_orders"]] == [
        (ids[3], "INVALID_CANCEL_FCM_TRADING_SESSION", 3)]
    assert result["cancelled_count"] == 19
    assert [o["order_id"] for o in working_orders(clean_double, key)] == [ids[3]]

    tolerant = cancel(run_module, connection, key, cancel_retries=0, fail_on_remaining=False)
    assert tolerant["failed"] is False and tolerant["empty"] is False and tolerant["remaining"] == 1


def test_orders_arriving_during_the_cancel_end_at_zero_before_the_deadline(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.seed_orders(400, BTC, key=key.name, client_order_id_prefix="bot-01-1732665600000-")
    seeded = [400]
    started = threading.Event()

    def keep_placing():
        # A bot that was not stopped yet: 10 orders every 50 ms for 1.5 s.
        started.set()
        for batch in range(30):
            clean_double.control.seed_orders(10, ETH, key=key.name, client_order_id_prefix="bot-02-17326656%05d-" % batch)
            seeded[0] += 10
            time.sleep(0.05)

    bot = threading.Thread(target=keep_placing)
    bot.start()
    started.wait()
    began = time.monotonic()
    result = cancel(run_module, connection, key, deadline=20, quiet_period=0.5)
    elapsed = time.monotonic() - began
    bot.join()
    assert result["failed"] is False and result["empty"] is True and elapsed < 20
    assert working_orders(clean_double, key) == []
    assert result["cancelled_count"] == seeded[0] == 700
    assert result["cancelled_by_product"] == {BTC: 400, ETH: 300}
    assert result["cancel_rounds"] >= 2  # new orders were found by re-listing


def test_cancel_queued_orders_are_rechecked_not_cancelled_twice(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.seed_orders(150, BTC, key=key.name)
    clean_double.control.set_config(cancel_queued_delay=0.4)
    try:
        result = cancel(run_module, connection, key)
    finally:
        clean_double.control.set_config(cancel_queued_delay=0.0)
    assert result["failed"] is False and result["empty"] is True and result["cancelled_count"] == 150
    assert any(r["cancel_queued"] == 150 and r["sent"] == 0 for r in result["rounds"])
    assert len(cancel_calls(clean_double)) == 2  # 150 ids once, never again while CANCEL_QUEUED
    assert working_orders(clean_double, key) == []


def test_429_and_5xx_during_the_cancel_are_retried_and_the_result_is_right(make_key, connection, run_module, clean_double):
    key = make_key()
    ids = clean_double.control.seed_orders(500, BTC, key=key.name)["order_ids"]
    clean_double.control.fail_next(429, count=3, path=BATCH_CANCEL, retry_after=0.05)
    clean_double.control.fail_next(503, count=2, path=LIST_ORDERS)
    result = cancel(run_module, connection, key)
    assert result["failed"] is False and result["empty"] is True
    assert sorted(o["order_id"] for o in result["cancelled"]) == sorted(ids)
    assert result["errors"] == [] and result["requests"]["retries"] == 5 and result["requests"]["alert_ops"] is True
    statuses = [c["status"] for c in cancel_calls(clean_double)]
    assert statuses.count(429) == 3 and statuses.count(200) == 5
    assert working_orders(clean_double, key) == []


def test_a_rate_limit_burst_is_waited_out(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.seed_orders(300, BTC, key=key.name)
    clean_double.control.rate_limit_burst(0.6)
    result = cancel(run_module, connection, key, retry_max_delay=0.2)
    assert result["failed"] is False and result["empty"] is True and result["cancelled_count"] == 300
    assert result["requests"]["failures"] >= 1
    assert working_orders(clean_double, key) == []


def test_a_batch_that_fails_after_every_retry_is_sent_again_next_round(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.seed_orders(150, BTC, key=key.name)
    clean_double.control.fail_next(502, count=2, path=BATCH_CANCEL)
    result = cancel(run_module, connection, key, max_retries=1)
    assert result["failed"] is False and result["empty"] is True and result["cancelled_count"] == 150
    assert len(result["errors"]) == 1 and result["errors"][0]["during"] == "batch_cancel"
    assert len([r for r in result["retried"] if r["outcome"] == "cancelled"]) == 100
    assert working_orders(clean_double, key) == []


def test_check_mode_lists_and_sends_nothing(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.seed_orders(120, BTC, key=key.name)
    clean_double.control.seed_orders(5, ETH, key=key.name, status="QUEUED")
    result = cancel(run_module, connection, key, check_mode=True)
    # check mode reports changed when a real run would cancel something (Ansible's convention)
    assert result["failed"] is False and result["changed"] is True
    would = result["would_cancel"]
    assert would["count"] == 125 and would["by_product"] == {BTC: 120, ETH: 5}
    assert would["by_status"] == {"OPEN": 120, "QUEUED": 5} and len(set(would["order_ids"])) == 125
    assert "cancelled" not in result
    assert [r for r in clean_double.control.requests() if r["method"] != "GET"] == []
    assert len(working_orders(clean_double, key)) == 125


def test_check_mode_on_an_empty_book_is_not_changed(make_key, connection, run_module, clean_double):
    key = make_key()
    result = cancel(run_module, connection, key, check_mode=True)
    assert result["failed"] is False and result["changed"] is False and result["would_cancel"]["count"] == 0


def test_filters_cancel_only_what_matches(make_key, connection, run_module, clean_double):
    key = make_key()
    control = clean_double.control
    mine = control.seed_orders(30, BTC, key=key.name, client_order_id_prefix="bot-01-1732665600000-")["order_ids"]
    control.seed_orders(20, BTC, key=key.name, client_order_id_prefix="bot-02-1732665600000-")
    control.seed_orders(10, ETH, key=key.name, client_order_id_prefix="bot-01-1732665600001-")
    result = cancel(run_module, connection, key, product_ids=["BTC-PERP"], client_order_id_prefix="bot-01-")
    assert result["failed"] is False and result["empty"] is True
    assert result["products"] == [{"requested": "BTC-PERP", "product_id": BTC, "display_name": "BTC PERP"}]
    assert sorted(o["order_id"] for o in result["cancelled"]) == sorted(mine)
    assert {o["prefix"] for o in result["cancelled"]} == {"bot-01"}
    left = working_orders(clean_double, key)
    assert len(left) == 30 and not set(mine) & {o["order_id"] for o in left}


def test_another_portfolios_orders_are_not_touched(make_key, connection, run_module, clean_double):
    mine, theirs = make_key(), make_key(portfolio_uuid="7a3e2d1c-0000-4000-8000-00000000beef")
    clean_double.control.seed_orders(10, BTC, key=mine.name)
    clean_double.control.seed_orders(10, BTC, key=theirs.name)
    result = cancel(run_module, connection, mine)
    assert result["empty"] and result["cancelled_count"] == 10
    assert result["portfolio_uuid"] != "7a3e2d1c-0000-4000-8000-00000000beef"
    assert len(working_orders(clean_double, theirs)) == 10


def test_revoked_key_fails_clearly_and_sends_nothing(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.seed_orders(10, BTC, key=key.name)
    clean_double.control.revoke_key(key.name)
    result = cancel(run_module, connection, key)
    assert result["failed"] is True and "401" in result["msg"] and result["error"]["kind"] == "unauthenticated"
    assert cancel_calls(clean_double) == []
    assert "BEGIN" not in json.dumps(result) and "eyJ" not in json.dumps(result)
    assert len(working_orders(clean_double, key)) == 10


def test_view_only_key_is_a_clear_permission_failure(make_key, connection, run_module, clean_double):
    key = make_key(permissions="view")
    clean_double.control.seed_orders(10, BTC, key=key.name)
    result = cancel(run_module, connection, key)
    assert result["failed"] is True and "may not trade" in result["msg"] and "trade permission" in result["msg"]
    assert result["can_trade"] is False
    assert cancel_calls(clean_double) == [] and clean_double.control.requests(path=LIST_ORDERS) == []
    assert len(working_orders(clean_double, key)) == 10

    preview = cancel(run_module, connection, key, check_mode=True)  # check mode still shows what is there
    assert preview["failed"] is False and preview["would_cancel"]["count"] == 10 and preview["can_trade"] is False


def test_key_without_view_scope_fails_naming_the_missing_scope(make_key, connection, run_module, clean_double):
    key = make_key(permissions="trade")
    result = cancel(run_module, connection, key)
    assert result["failed"] is True and result["error"]["kind"] == "forbidden"
    assert result["error"]["missing_scopes"] is True and "permission" in result["msg"]


@pytest.mark.parametrize("options, named", [
    ({"product_ids": ["DOGE-PERP"]}, "product_ids: The product 'DOGE-PERP' matches no product"),
    ({"batch_size": 150}, "batch_size must be between 1 and 100"),
    ({"deadline": 0}, "deadline must be greater than 0"),
    ({"client_order_id_pattern": "(unclosed"}, "client_order_id_pattern"),
    ({"page_size": 5000}, "page_size must be between 1 and 1000"),
])
def test_bad_arguments_fail_naming_the_argument(make_key, connection, run_module, clean_double, options, named):
    key = make_key()
    clean_double.control.seed_orders(3, BTC, key=key.name)
    result = cancel(run_module, connection, key, **options)
    assert result["failed"] is True and named in result["msg"]
    assert "Traceback" not in json.dumps(result)
    assert cancel_calls(clean_double) == [] and len(working_orders(clean_double, key)) == 3


def test_state_is_required(make_key, connection, run_module):
    result = run_module("coinbase_orders", connection(make_key()))
    assert result["failed"] is True and "state" in result["msg"]


def test_through_ansible_playbook(make_key, connection, ansible_playbook, clean_double):
    key = make_key()
    clean_double.control.seed_orders(40, BTC, key=key.name)
    clean_double.control.seed_orders(2, ETH, key=key.name, status="PENDING")
    args = connection(key, state="cancelled", product_type="FUTURE", quiet_period=0.2)
    tasks = [
        {"name": "preview", "tradeops.incident_response.coinbase_orders": args, "check_mode": True, "register": "preview"},
        {"name": "cancel", "tradeops.incident_response.coinbase_orders": args, "register": "swept"},
    ]
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}, "tasks": tasks}]
    rc, output, results = ansible_playbook(play)
    assert rc == 0, output
    preview, swept = results["preview"][0]["localhost"], results["cancel"][0]["localhost"]
    assert preview["would_cancel"]["count"] == 42 and preview["changed"] is True
    assert swept["changed"] is True and swept["empty"] is True and swept["cancelled_count"] == 42
    assert working_orders(clean_double, key) == []


def test_all_five_exchange_side_modules_at_vvvv_leak_no_key_and_no_token(make_key, ansible_playbook, clean_double):
    key = make_key()
    clean_double.control.seed_orders(5, BTC, key=key.name)
    clean_double.control.set_position(ETH, "LONG", 2, key=key.name)
    conn = {"api_url": clean_double.url, "ca_bundle": str(clean_double.ca_path), "api_key_name": key.name,
            "private_key": "{{ lookup('ansible.builtin.file', '%s') }}" % key.path}
    fqcn = "tradeops.incident_response."
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
             "tasks": [
                 {"name": "info", fqcn + "coinbase_order_info": conn},
                 {"name": "cancel", fqcn + "coinbase_orders": dict(conn, state="cancelled", quiet_period=0.1)},
                 {"name": "positions", fqcn + "coinbase_position_info": conn},
                 {"name": "pnl", fqcn + "coinbase_pnl_info": dict(conn, daily_loss_limit=1000)},
                 {"name": "close", fqcn + "coinbase_position": dict(conn, state="closed", product_ids=["all"], incident_id="INC-V")},
             ]}]
    rc, output, _results = ansible_playbook(play, verbosity=4, json_output=False)
    assert rc == 0, output[-3000:]
    # the invocation (with its arguments) is in the output, the key masked, and the results too
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in output and re.search(r'cancelled_count"?: 5', output)
    body = "".join(key.secret.strip().splitlines()[1:-1])
    assert body[:40] not in output.replace("\\n", "").replace("\n", "")
    assert "BEGIN EC PRIVATE KEY" not in output
    assert not re.search(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{20,}", output)
    assert working_orders(clean_double, key) == []
