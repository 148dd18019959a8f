"""coinbase_fills_info against the double: totals, reversals, corrections, unexpected fills, paging, faults, files."""

from __future__ import annotations

import csv
import json
import os
import stat
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs

import pytest

FILLS_PATH = "/api/v3/brokerage/orders/historical/fills"
BIP, ETP = "BIP-20DEC30-CDE", "ETP-20DEC30-CDE"


def iso(ts):
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_book(control, key, reversal_side="BUY"):
    """Two bot orders and one attacker order on BIP, one bot order on ETP, their fills and a reversal of the first."""
    bot = control.seed_orders(2, BIP, client_order_id_prefix="bot1-", status="CANCELLED", key=key.name)["order_ids"]
    evil = control.seed_orders(1, BIP, client_order_id_prefix="evil-", status="CANCELLED", key=key.name)["order_ids"]
    eth = control.seed_orders(1, ETP, client_order_id_prefix="bot2-", status="CANCELLED", key=key.name)["order_ids"]
    control.inject_fill(BIP, "BUY", "3", "95000", order_id=bot[0], commission="1.5", key=key.name)
    control.inject_fill(BIP, "SELL", "1", "95100", order_id=bot[1], commission="0.5", key=key.name)
    control.inject_fill(BIP, "BUY", "2", "94000", order_id=evil[0], commission="1", key=key.name)
    control.inject_fill(ETP, "SELL", "4", "3500", order_id=eth[0], commission="0.7", key=key.name)
    control.inject_fill(BIP, reversal_side, "3", "95000", trade_type="REVERSAL", order_id=bot[0], commission="1.5", key=key.name)
    return {"bot": bot, "evil": evil, "eth": eth}


EXPECTED_BIP = {
    "records": 4, "by_trade_type": {"FILL": 3, "REVERSAL": 1, "CORRECTION": 0, "SYNTHETIC": 0}, "contract_size": "0.01",
    "buy_contracts": "2", "sell_contracts": "1", "volume_contracts": "3", "volume_base": "0.03",
    "notional": "2831", "fees": "1.5", "net_contracts": "1", "net_base": "0.01",
}
EXPECTED_ETP = {
    "records": 1, "by_trade_type": {"FILL": 1, "REVERSAL": 0, "CORRECTION": 0, "SYNTHETIC": 0}, "contract_size": "0.1",
    "buy_contracts": "0", "sell_contracts": "4", "volume_contracts": "4", "volume_base": "0.4",
    "notional": "1400", "fees": "0.7", "net_contracts": "-4", "net_base": "-0.4",
}


# Coinbase does not document which side a reversal record carries; the totals must not depend on it.
@pytest.mark.parametrize("reversal_side", ["BUY", "SELL"])
def test_totals_reversal_and_unexpected_fill(make_key, connection, run_module, clean_double, reversal_side):
    key = make_key()
    ids = seed_book(clean_double.control, key, reversal_side)
    result = run_module("coinbase_fills_info", connection(key, expected_client_order_id_prefixes=["bot1-", "bot2-"], include_fills=True))
    assert result["failed"] is False and result["changed"] is False
    assert result["totals"] == {BIP: EXPECTED_BIP, ETP: EXPECTED_ETP}
    assert result["summary"] == {"fills": 5, "products": 2, "reversals": 1, "corrections": 0, "unexpected": 1, "flagged": 3, "fees": "2.2"}
    [unexpected] = result["unexpected_fills"]
    assert unexpected["order_id"] == ids["evil"][0] and unexpected["client_order_id"] == "evil-000000"
    reversal = [f for f in result["fills"] if f["trade_type"] == "REVERSAL"][0]
    assert reversal["flags"] == ["reversal"]
    original = [f for f in result["fills"] if f["order_id"] == ids["bot"][0] and f["trade_type"] == "FILL"][0]
    assert original["flags"] == ["reversed"] and original["client_order_id"] == "bot1-000000"
    # the orders' client ids were looked up in one batch, not one request per order
    lookups = clean_double.control.requests(path="/api/v3/brokerage/orders/historical/batch")
    assert len(lookups) == 1 and len(parse_qs(lookups[0]["query"])["order_ids"]) == 4


def test_correction_counts_as_its_trade_and_an_orphan_reversal_is_flagged(make_key, connection, run_module, clean_double):
    key = make_key()
    control = clean_double.control
    [order] = control.seed_orders(1, BIP, client_order_id_prefix="bot1-", status="CANCELLED", key=key.name)["order_ids"]
    control.inject_fill(BIP, "BUY", "5", "95000", order_id=order, commission="2", key=key.name)
    control.inject_fill(BIP, "SELL", "1", "95000", trade_type="CORRECTION", order_id=order, key=key.name)
    control.inject_fill(BIP, "SELL", "2", "96000", trade_type="REVERSAL", key=key.name)  # its original is older than the window
    result = run_module("coinbase_fills_info", connection(key, expected_client_order_id_prefixes=["bot1-"]))
    totals = result["totals"][BIP]
    # buy 5, correction sell 1, orphan reversal undoes a SELL 2 on its own side: sells 1 - 2
    assert (totals["buy_contracts"], totals["sell_contracts"], totals["net_contracts"]) == ("5", "-1", "6")
    assert totals["notional"] == "3780"  # 4750 + 950 - 1920
    flags = {f["trade_type"]: f["flags"] for f in result["flagged_fills"]}
    assert flags["CORRECTION"] == ["correction"]
    assert flags["REVERSAL"] == ["reversal", "reversal_original_not_in_window", "unexpected", "order_not_found"]
    assert result["summary"]["corrections"] == 1 and result["summary"]["unexpected"] == 1


def test_pagination_follows_the_cursor_past_one_page(make_key, connection, run_module, clean_double):
    key = make_key()
    for index in range(7):
        clean_double.control.inject_fill(BIP, "BUY", "1", str(95000 + index), key=key.name)
    result = run_module("coinbase_fills_info", connection(key, page_size=3, include_fills=True))
    assert result["summary"]["fills"] == 7 and result["totals"][BIP]["buy_contracts"] == "7"
    assert len({f["entry_id"] for f in result["fills"]}) == 7
    pages = clean_double.control.requests(path=FILLS_PATH)
    assert len(pages) == 3 and ["cursor" in parse_qs(p["query"]) for p in pages] == [False, True, True]
    query = parse_qs(pages[0]["query"])
    assert query["limit"] == ["3"] and "start_sequence_timestamp" in query and "end_sequence_timestamp" in query


def test_product_names_are_resolved_and_filtered_at_the_api(make_key, connection, run_module, clean_double):
    key = make_key()
    seed_book(clean_double.control, key)
    result = run_module("coinbase_fills_info", connection(key, products=["BTC-PERP"]))
    assert result["product_ids"] == [{"requested": "BTC-PERP", "product_id": BIP, "display_name": "BTC PERP"}]
    assert list(result["totals"]) == [BIP] and result["totals"][BIP] == EXPECTED_BIP
    [page] = clean_double.control.requests(path=FILLS_PATH)
    assert parse_qs(page["query"])["product_ids"] == [BIP]


def test_explicit_window_excludes_fills_outside_it(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.inject_fill(BIP, "BUY", "1", "95000", key=key.name)
    now = time.time()
    result = run_module("coinbase_fills_info", connection(key, start=iso(now - 7200), end=iso(now - 3600)))
    assert result["summary"]["fills"] == 0 and result["totals"] == {}
    assert result["window"]["hours"] == 1.0
    query = parse_qs(clean_double.control.requests(path=FILLS_PATH)[0]["query"])
    assert query["start_sequence_timestamp"] == [iso(now - 7200).replace("Z", ".000Z")]


def test_429_burst_and_5xx_are_retried_and_the_result_is_still_right(make_key, connection, run_module, clean_double):
    key = make_key()
    seed_book(clean_double.control, key)
    clean_double.control.rate_limit_burst(0.6, path=FILLS_PATH)
    clean_double.control.fail_next(503, count=2, path="/api/v3/brokerage/orders/historical/batch")
    result = run_module("coinbase_fills_info", connection(key, expected_client_order_id_prefixes=["bot1-", "bot2-"], retry_max_delay=0.3))
    assert result["failed"] is False
    assert result["totals"] == {BIP: EXPECTED_BIP, ETP: EXPECTED_ETP} and result["summary"]["unexpected"] == 1
    statuses = [r["status"] for r in clean_double.control.requests(path="/api/v3/brokerage/orders/historical")]
    assert 429 in statuses and statuses.count(503) == 2 and statuses[-1] == 200
    assert result["requests"]["retries"] >= 3 and result["requests"]["alert_ops"] is True


def test_revoked_key_fails_clearly(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.revoke_key(key.name)
    result = run_module("coinbase_fills_info", connection(key))
    assert result["failed"] and "HTTP 401" in result["msg"] and result["error"]["kind"] == "unauthenticated"
    assert "revoked" in result["msg"]


def test_missing_view_scope_fails_clearly(make_key, connection, run_module):
    result = run_module("coinbase_fills_info", connection(make_key(permissions="trade")))
    assert result["failed"] and result["error"]["kind"] == "forbidden" and result["error"]["missing_scopes"] is True
    assert "view" in result["msg"]


@pytest.mark.parametrize("extra, expected", [
    ({"start": "yesterday"}, "start must be an RFC 3339 time"),
    ({"start": "2026-11-27T01:00:00"}, "no time zone"),
    ({"start": "2026-11-27T05:00:00Z", "end": "2026-11-27T01:00:00Z"}, "start must be before end"),
    ({"start": "2026-11-27T05:00:00Z", "hours": 2}, "mutually exclusive: hours|start"),
    ({"hours": 0}, "hours must be greater than 0"),
    ({"products": ["DOGE-PERP"]}, "'DOGE-PERP' matches no product"),
    ({"csv_path": "/nonexistent/dir/a.csv"}, "csv_path: cannot write /nonexistent/dir/a.csv"),
])
def test_bad_arguments_name_the_argument(make_key, connection, run_module, extra, expected):
    result = run_module("coinbase_fills_info", connection(make_key(), **extra))
    assert result["failed"] and expected in result["msg"], result["msg"]


def test_files_are_0600_rewritten_only_when_content_differs_and_not_in_check_mode(make_key, connection, run_module, clean_double, tmp_path):
    key = make_key()
    seed_book(clean_double.control, key)
    now = time.time()
    csv_path, json_path = tmp_path / "audit.csv", tmp_path / "audit.json"
    args = connection(key, start=iso(now - 600), end=iso(now + 600), csv_path=str(csv_path), json_path=str(json_path),
                      expected_client_order_id_prefixes=["bot1-", "bot2-"])

    rehearsal = run_module("coinbase_fills_info", args, check_mode=True)
    assert rehearsal["changed"] is True and not csv_path.exists() and not json_path.exists()
    assert rehearsal["files"]["csv"] == dict(rehearsal["files"]["csv"], changed=True, written=False)

    first = run_module("coinbase_fills_info", args)
    assert first["changed"] is True and first["files"]["json"]["written"] is True
    for path in (csv_path, json_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 5 and rows[0]["sequence_timestamp"] <= rows[-1]["sequence_timestamp"]
    assert [r["flags"] for r in rows if r["client_order_id"].startswith("evil-")] == ["unexpected"]
    report = json.loads(json_path.read_text())
    assert report["totals"][BIP] == EXPECTED_BIP and report["summary"]["unexpected"] == 1
    assert first["files"]["csv"]["sha256"] == rehearsal["files"]["csv"]["sha256"]

    second = run_module("coinbase_fills_info", args)
    assert second["changed"] is False and second["files"]["csv"]["written"] is False

    os.chmod(csv_path, 0o644)
    clean_double.control.inject_fill(BIP, "BUY", "1", "95000", key=key.name)
    third = run_module("coinbase_fills_info", args)
    assert third["changed"] is True and stat.S_IMODE(os.stat(csv_path).st_mode) == 0o600
    assert len(list(csv.DictReader(csv_path.open()))) == 6
    # an audit only reads at the exchange
    assert {r["method"] for r in clean_double.control.requests()} == {"GET"}
