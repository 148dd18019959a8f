"""coinbase_position_info against the exchange double: positions and the balance summary as exact numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

BTC = "BIP-20DEC30-CDE"
ETH = "ETP-20DEC30-CDE"


@pytest.fixture
def frozen(clean_double):
    """Prices move only when a test sets them, so PnL and notional are known to the cent."""
    clean_double.control.set_config(market_frozen=True)
    clean_double.control.set_product(BTC, price="95000")
    clean_double.control.set_product(ETH, price="3500")
    yield clean_double
    clean_double.control.set_config(market_frozen=False)


def read(run_module, connection, key, check_mode=False, **options):
    return run_module("coinbase_position_info", connection(key, retry_max_delay=0.05, **options), check_mode=check_mode)


def test_positions_and_totals_as_exact_numbers(make_key, connection, run_module, frozen):
    key = make_key()
    frozen.control.set_position(BTC, "LONG", 3, entry_price="94000", key=key.name)
    frozen.control.set_position(ETH, "SHORT", 2, entry_price="3600.5", daily_realized_pnl="-12.34", key=key.name)
    result = read(run_module, connection, key)
    assert result["failed"] is False and result["changed"] is False
    by_id = {p["product_id"]: p for p in result["positions"]}
    btc, eth = by_id[BTC], by_id[ETH]
    assert (btc["display_name"], btc["side"], btc["contracts"], btc["signed_contracts"]) == ("BTC PERP", "LONG", 3, 3)
    assert btc["entry_price"] == {"value": 94000, "exact": "94000"} and btc["current_price"]["exact"] == "95000"
    assert btc["contract_size"] == {"value": 0.01, "exact": "0.01"}
    assert Decimal(btc["unrealized_pnl"]["exact"]) == Decimal("30")  # (95000 - 94000) x 3 x 0.01
    assert Decimal(btc["notional"]["exact"]) == Decimal("2850")  # 3 x 0.01 x 95000
    assert (eth["side"], eth["signed_contracts"]) == ("SHORT", -2)
    assert Decimal(eth["unrealized_pnl"]["exact"]) == Decimal("20.10")  # (3500 - 3600.5) x -2 x 0.1
    assert Decimal(eth["notional"]["exact"]) == Decimal("700") and eth["daily_realized_pnl"]["exact"] == "-12.34"
    totals = result["totals"]
    assert (totals["positions"], totals["long_contracts"], totals["short_contracts"]) == (2, 3, 2)
    assert Decimal(totals["unrealized_pnl"]["exact"]) == Decimal("50.10")
    assert Decimal(totals["gross_notional"]["exact"]) == Decimal("3550") and Decimal(totals["net_notional"]["exact"]) == Decimal("2150")
    assert totals["daily_realized_pnl"]["exact"] == "-12.34" and totals["notional_complete"] is True
    # The balance summary is returned digit for digit as the venue sent it, and as a number.
    venue = next(p for p in frozen.control.state()["portfolios"] if key.name in p["keys"])["balance_summary"]
    summary = result["balance_summary"]
    for name in ("futures_buying_power", "total_usd_balance", "initial_margin", "available_margin",
                 "liquidation_threshold", "liquidation_buffer_amount", "unrealized_pnl", "daily_realized_pnl"):
        assert summary[name]["exact"] == venue[name]["value"] and summary[name]["currency"] == "USD"
        assert summary[name]["value"] == pytest.approx(float(venue[name]["value"]))
    assert summary["liquidation_buffer_percentage"]["exact"] == venue["liquidation_buffer_percentage"]


def test_filter_by_product_name(make_key, connection, run_module, frozen):
    key = make_key()
    frozen.control.set_position(BTC, "LONG", 1, key=key.name)
    frozen.control.set_position(ETH, "LONG", 1, key=key.name)
    result = read(run_module, connection, key, product_ids=["ETH PERP"], include_balance_summary=False)
    assert [p["product_id"] for p in result["positions"]] == [ETH] and "balance_summary" not in result
    assert result["products"] == [{"requested": "ETH PERP", "product_id": ETH, "display_name": "ETH PERP"}]


def test_flat_book(make_key, connection, run_module):
    result = read(run_module, connection, make_key(), check_mode=True)
    assert result["positions"] == [] and result["totals"]["positions"] == 0
    assert result["totals"]["gross_notional"]["value"] == 0


def test_5xx_is_retried(make_key, connection, run_module, frozen):
    key = make_key()
    frozen.control.set_position(BTC, "LONG", 2, key=key.name)
    frozen.control.fail_next(502, count=2, path="/api/v3/brokerage/cfm/balance_summary")
    frozen.control.fail_next(429, count=1, path="/api/v3/brokerage/cfm/positions", retry_after=0.05)
    result = read(run_module, connection, key)
    assert result["failed"] is False and result["totals"]["positions"] == 1 and result["requests"]["retries"] == 3


def test_revoked_key_and_missing_scope(make_key, connection, run_module, clean_double):
    revoked = make_key()
    clean_double.control.revoke_key(revoked.name)
    result = read(run_module, connection, revoked)
    assert result["failed"] is True and result["error"]["kind"] == "unauthenticated"
    trade_only = read(run_module, connection, make_key(permissions="trade"))
    assert trade_only["failed"] is True and trade_only["error"]["missing_scopes"] is True


def test_unknown_product_names_the_argument(make_key, connection, run_module):
    result = read(run_module, connection, make_key(), product_ids=["XRP-PERP"])
    assert result["failed"] is True and result["msg"].startswith("product_ids: The product 'XRP-PERP' matches no product")


def test_through_ansible_playbook(make_key, connection, ansible_playbook, frozen):
    key = make_key()
    frozen.control.set_position(BTC, "SHORT", 4, entry_price="96000", key=key.name)
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
             "tasks": [{"name": "read", "tradeops.incident_response.coinbase_position_info": connection(key), "register": "book"},
                       {"name": "check", "ansible.builtin.assert": {"that": [
                           "book.totals.positions == 1",
                           "book.positions[0].unrealized_pnl.value == 40",
                           "book.positions[0].notional.value > 3799"]}}]}]
    rc, output, results = ansible_playbook(play)
    assert rc == 0, output
    assert results["read"][0]["localhost"]["positions"][0]["unrealized_pnl"]["exact"] == "40.00"
