"""audit.py: how fills, reversals and corrections add up, and files that change only when their content does."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.audit import (
    audit_fills,
    render_csv,
    write_if_changed,
)

PERP = {"product_id": "BIP", "future_product_details": {"contract_size": "0.01"}}
SPOT = {"product_id": "BTC-USD"}


def fill(side, size, price, trade_type="FILL", order_id="o1", commission="0", product_id="BIP", at="2026-11-27T01:00:00Z", **extra):
    return dict({"entry_id": "%s-%s-%s" % (order_id, trade_type, at), "order_id": order_id, "product_id": product_id, "side": side,
                 "size": size, "price": price, "trade_type": trade_type, "commission": commission, "sequence_timestamp": at}, **extra)


@pytest.mark.parametrize("reversal_side", ["BUY", "SELL"])
def test_a_reversal_undoes_its_original_whatever_side_it_is_reported_with(reversal_side):
    fills = [fill("BUY", "2", "100", commission="0.2"), fill(reversal_side, "2", "100", "REVERSAL", commission="0.2", at="2026-11-27T02:00:00Z")]
    audit = audit_fills(fills, {"BIP": PERP})
    totals = audit["totals"]["BIP"]
    assert (totals["buy_contracts"], totals["sell_contracts"], totals["notional"], totals["fees"]) == ("0", "0", "0", "0")
    assert [f["flags"] for f in audit["fills"]] == [["reversed"], ["reversal"]]


def test_a_reversal_matches_the_fill_of_the_same_size_and_price():
    fills = [fill("BUY", "1", "100"), fill("BUY", "3", "101", at="2026-11-27T01:30:00Z"),
             fill("BUY", "3", "101", "REVERSAL", at="2026-11-27T02:00:00Z")]
    audit = audit_fills(fills, {"BIP": PERP})
    assert audit["totals"]["BIP"]["buy_contracts"] == "1"
    assert [f["flags"] for f in audit["fills"]] == [[], ["reversed"], ["reversal"]]


def test_fills_are_sorted_oldest_first_whatever_the_api_order():
    fills = [fill("BUY", "1", "100", at="2026-11-27T03:00:00Z", order_id="b"), fill("SELL", "1", "100", at="2026-11-27T01:00:00Z", order_id="a")]
    assert [f["order_id"] for f in audit_fills(fills, {})["fills"]] == ["a", "b"]


def test_spot_fills_count_one_per_unit_and_quote_sized_fills_are_converted():
    fills = [fill("BUY", "0.5", "90000", product_id="BTC-USD"), fill("BUY", "900", "90000", product_id="BTC-USD", size_in_quote=True)]
    totals = audit_fills(fills, {"BTC-USD": SPOT})["totals"]["BTC-USD"]
    assert totals["contract_size"] == "1" and totals["buy_contracts"] == "0.51" and totals["volume_base"] == "0.51"
    assert totals["notional"] == "45900"


def test_unknown_trade_types_and_sides_are_flagged_not_dropped():
    audit = audit_fills([fill("BUY", "1", "1", "NEW_KIND"), fill("", "1", "1")], {"BIP": PERP})
    assert audit["summary"]["fills"] == 2 and audit["totals"]["BIP"]["records"] == 2
    assert ["unknown_trade_type"] in [f["flags"] for f in audit["fills"]] and ["unknown_side"] in [f["flags"] for f in audit["fills"]]


def test_client_order_ids_not_looked_up_means_no_unexpected_flag():
    audit = audit_fills([fill("BUY", "1", "1")], {"BIP": PERP}, None, ["bot-"])
    assert audit["summary"]["unexpected"] == 0 and "client_order_id" not in audit["fills"][0]


def test_csv_has_one_row_per_fill_with_flags_joined():
    text = render_csv(audit_fills([fill("BUY", "1", "1"), fill("BUY", "1", "1", "REVERSAL", at="2026-11-27T02:00:00Z")], {})["fills"])
    lines = text.splitlines()
    assert lines[0].startswith("sequence_timestamp,trade_time,product_id") and len(lines) == 3 and lines[2].endswith(",reversal")


def test_write_if_changed(tmp_path):
    path = str(tmp_path / "audit.json")
    assert write_if_changed(path, "a", check_mode=True) == dict(write_if_changed(path, "a", check_mode=True), changed=True, written=False)
    assert not os.path.exists(path)
    assert write_if_changed(path, "a", check_mode=False)["written"] is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert write_if_changed(path, "a", check_mode=False)["changed"] is False
    os.chmod(path, 0o644)
    assert write_if_changed(path, "a", check_mode=True)["changed"] is True and stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert write_if_changed(path, "a", check_mode=False)["written"] is True and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert write_if_changed(path, "b", check_mode=False)["changed"] is True and open(path).read() == "b"
    assert [n for n in os.listdir(str(tmp_path)) if n.startswith(".")] == []  # no temporary file left behind
    with pytest.raises(OSError):
        write_if_changed(str(tmp_path / "missing" / "x.csv"), "a", check_mode=False)
