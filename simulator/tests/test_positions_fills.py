"""Positions, close_position, PnL and margin arithmetic, fills and their cursor."""

from __future__ import annotations

import time
from decimal import Decimal

from double_api import BTC_PERP, ETH_PERP, Api

from exchange_double.testing import DoubleHandle

POSITION_FIELDS = {"product_id", "expiration_time", "side", "number_of_contracts", "current_price",
                   "avg_entry_price", "unrealized_pnl", "daily_realized_pnl"}
AMOUNT_FIELDS = {"futures_buying_power", "total_usd_balance", "cbi_usd_balance", "cfm_usd_balance",
                 "total_open_orders_hold_amount", "unrealized_pnl", "daily_realized_pnl", "initial_margin",
                 "available_margin", "liquidation_threshold", "liquidation_buffer_amount"}


def close(api: Api, client_order_id: str, size: str | None = None, product_id: str = BTC_PERP) -> dict:
    body = {"client_order_id": client_order_id, "product_id": product_id}
    if size is not None:
        body["size"] = size
    return api.ok("POST", "/orders/close_position", json=body)


def contracts(api: Api, product_id: str = BTC_PERP) -> tuple[str, str] | None:
    for position in api.ok("GET", "/cfm/positions")["positions"]:
        if position["product_id"] == product_id:
            return position["side"], position["number_of_contracts"]
    return None


def test_close_position_is_idempotent_on_client_order_id(api: Api, double: DoubleHandle) -> None:
    double.control.set_position(BTC_PERP, "LONG", 3, "95000")
    first = close(api, "close-once")
    assert first["success"] is True and first["success_response"]["side"] == "SELL"
    double.control.set_position(BTC_PERP, "LONG", 2, "95000")  # someone re-opened meanwhile
    retry = close(api, "close-once")
    assert retry["order_id"] == first["order_id"]
    assert contracts(api) == ("LONG", "2")  # the retry did not close a second time


def test_close_position_never_flips(api: Api, double: DoubleHandle) -> None:
    double.control.set_position(BTC_PERP, "LONG", 3, "95000")
    result = close(api, "close-too-much", size="5")
    order = api.ok("GET", f"/orders/historical/{result['order_id']}")["order"]
    assert order["filled_size"] == "3" and order["side"] == "SELL" and order["order_type"] == "MARKET"
    assert contracts(api) is None
    # A plain opposite market order has no such protection: it flips.
    double.control.set_position(BTC_PERP, "LONG", 3, "95000")
    api.market_order("naive-close", "SELL", "5")
    assert contracts(api) == ("SHORT", "2")


def test_partial_close_of_a_short_buys(api: Api, double: DoubleHandle) -> None:
    double.control.set_position(ETH_PERP, "SHORT", 10, "3500")
    result = close(api, "partial", size="4", product_id=ETH_PERP)
    assert result["success_response"]["side"] == "BUY"
    assert contracts(api, ETH_PERP) == ("SHORT", "6")


def test_close_position_rejections(api: Api, double: DoubleHandle) -> None:
    nothing = close(api, "nothing-to-close")
    assert nothing["success"] is False and nothing["error_response"]["error"] == "NO_OPEN_POSITION"
    spot = close(api, "spot", product_id="BTC-USD")
    assert spot["success"] is False and spot["error_response"]["error"] == "INVALID_PRODUCT_ID"
    double.control.set_position(BTC_PERP, "LONG", 1, "95000")
    double.control.set_product(BTC_PERP, session_open=False)
    closed = close(api, "session-closed")
    assert closed["success"] is False and closed["error_response"]["error"] == "ORDER_ENTRY_DISABLED"
    assert contracts(api) == ("LONG", "1")
    missing = api.request("POST", "/orders/close_position", json={"product_id": BTC_PERP})
    assert missing.status_code == 400


def test_unrealized_pnl_margin_and_balance_arithmetic(api: Api, double: DoubleHandle) -> None:
    double.control.set_position(BTC_PERP, "LONG", 4, "95000")
    double.control.set_position(ETH_PERP, "SHORT", 10, "3500")
    double.control.set_product(BTC_PERP, price="96000")
    double.control.set_product(ETH_PERP, price="3400")
    positions = {p["product_id"]: p for p in api.ok("GET", "/cfm/positions")["positions"]}
    assert set(positions[BTC_PERP]) == POSITION_FIELDS
    assert positions[BTC_PERP]["unrealized_pnl"] == "40.00"     # (96000-95000) x 4 x 0.01
    assert positions[ETH_PERP]["unrealized_pnl"] == "100.00"    # (3400-3500) x -10 x 0.1
    assert positions[ETH_PERP]["current_price"] == "3400"
    summary = api.ok("GET", "/cfm/balance_summary")["balance_summary"]
    assert set(summary) >= AMOUNT_FIELDS
    assert all(set(summary[name]) == {"value", "currency"} for name in AMOUNT_FIELDS)
    assert isinstance(summary["liquidation_buffer_percentage"], str)
    values = {name: summary[name]["value"] for name in AMOUNT_FIELDS}
    assert values["unrealized_pnl"] == "140.00"
    assert values["initial_margin"] == "724.00"                 # 384 (BTC) + 340 (ETH) at 10 %
    assert values["liquidation_threshold"] == "362.00"          # maintenance at 5 %
    assert values["cfm_usd_balance"] == "250000.00"
    assert values["total_usd_balance"] == "275000.00"           # + 25000 spot USD
    assert values["available_margin"] == "249416.00"            # 250140 equity - 724
    assert values["liquidation_buffer_amount"] == "249778.00"


def test_realized_pnl_accumulates_from_reducing_fills(api: Api, double: DoubleHandle) -> None:
    double.control.set_position(BTC_PERP, "LONG", 4, "95000")
    double.control.set_product(BTC_PERP, price="96000")
    close(api, "take-profit")  # sells 4 at the bid, 95995
    summary = api.ok("GET", "/cfm/balance_summary")["balance_summary"]
    realized = (Decimal(95995) - 95000) * 4 * Decimal("0.01")
    commission = Decimal(95995) * 4 * Decimal("0.01") * Decimal("0.0005")
    assert summary["daily_realized_pnl"]["value"] == f"{realized:.2f}"
    assert summary["cfm_usd_balance"]["value"] == f"{Decimal(250000) + realized - commission:.2f}"
    fills = api.ok("GET", "/orders/historical/fills")["fills"]
    assert fills[0]["commission"] == str(commission.normalize())
    double.control.set_daily_realized_pnl("-5000")
    assert api.ok("GET", "/cfm/balance_summary")["balance_summary"]["daily_realized_pnl"]["value"] == "-5000.00"


def test_flat_product_has_no_position(api: Api) -> None:
    response = api.get(f"/cfm/positions/{BTC_PERP}")
    assert response.status_code == 404
    assert api.ok("GET", "/cfm/positions") == {"positions": []}


def test_fills_paginate_with_cursor_only(api: Api, double: DoubleHandle) -> None:
    for i in range(7):
        api.market_order(f"fill-{i}", "BUY" if i % 2 else "SELL", "1")
    seen, cursor, pages = [], "", 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.ok("GET", "/orders/historical/fills", params=params)
        assert set(body) == {"fills", "cursor"}  # no has_next on this endpoint
        seen += [f["entry_id"] for f in body["fills"]]
        pages += 1
        cursor = body["cursor"]
        if not cursor:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 7


def test_fills_filter_by_sequence_timestamp_and_include_injected_reversals(api: Api, double: DoubleHandle) -> None:
    early = api.market_order("early", "BUY", "1")["order_id"]
    time.sleep(0.05)
    start = double.control.get_clock()["now"]
    late = api.market_order("late", "BUY", "2")["order_id"]
    double.control.inject_fill(BTC_PERP, "BUY", "2", "95005", trade_type="REVERSAL", order_id=late)
    double.control.inject_fill(BTC_PERP, "SELL", "1", "95000", trade_type="CORRECTION")
    fills = api.ok("GET", "/orders/historical/fills", params={"start_sequence_timestamp": start})["fills"]
    assert sorted(f["trade_type"] for f in fills) == ["CORRECTION", "FILL", "REVERSAL"]
    assert early not in {f["order_id"] for f in fills}
    by_order = api.ok("GET", "/orders/historical/fills", params={"order_ids": [late]})["fills"]
    assert {f["trade_type"] for f in by_order} == {"FILL", "REVERSAL"}
    fill = by_order[0]
    assert {"entry_id", "trade_id", "order_id", "trade_time", "trade_type", "price", "size", "commission",
            "product_id", "sequence_timestamp", "liquidity_indicator", "size_in_quote", "user_id", "side",
            "retail_portfolio_id"} <= set(fill)
