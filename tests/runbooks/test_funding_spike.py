"""SOP 6, funding rate spike, on the drill fleet: judged by the double's positions, orders and request log."""

from __future__ import annotations

import time

import pytest

from support.drill import set_mode
from support.runbook import assert_no_secrets

pytestmark = pytest.mark.timeout(600)

BTC, ETH, SOL = "BIP-20DEC30-CDE", "ETP-20DEC30-CDE", "SLP-20DEC30-CDE"
CLOSE = "/api/v3/brokerage/orders/close_position"
WRITES = ("/api/v3/brokerage/orders", "/api/v3/brokerage/orders/batch_cancel", CLOSE)


@pytest.fixture
def book(drill, normal_after):
    """Bots HALTED and the market frozen, so positions move only by the runbook; prices pinned."""
    for host in drill.hosts:
        set_mode(host, "HALTED")
    drill.control.set_config(market_frozen=True)
    try:
        key = drill.keys["primary"]["name"]
        drill.control.set_product(BTC, price="95000")
        drill.control.set_product(ETH, price="3500")
        drill.control.set_product(SOL, price="180")

        def arrange(positions, rates):
            for product, (side, contracts) in positions.items():
                drill.control.set_position(product, side, contracts, None, key=key)
            for product, rate in rates.items():
                drill.control.set_product(product, funding_rate=rate, funding_interval="3600s")
            time.sleep(1)  # a bot's order already in flight when HALTED was written lands now
            return time.time()

        yield arrange
    finally:
        drill.control.set_config(market_frozen=False)


def controller_requests(drill, since, paths=WRITES):
    return [e for e in drill.control.requests(method="POST", since=since)
            if e["path"] in paths and e["client_ip"] not in drill.ips.values()]


def contracts(drill, product):
    held = [p for p in drill.positions() if p["product_id"] == product]
    return float(held[0]["number_of_contracts"]) if held else 0.0


def test_spike_both_sides_needs_approval_and_check_mode_changes_nothing(drill, book):
    """+0.12 % and -0.12 % per 8 h spike, +0.08 % does not; only BTC costs more than the target;
    without approval (no terminal) and in check mode nothing is reduced."""
    # The drill inventory sets a target; an operator's inventory without one is an empty value here.
    refused = drill.playbook("funding_spike.yml", {"funding_daily_target": ""})
    assert refused.returncode != 0 and "funding_daily_target must be" in refused.output

    # BTC long 7 x 0.01 x 95000 = 6650 USD at 0.015 %/h pays 23.94 USD a day (> 20);
    # ETH long 3 x 0.1 x 3500 at 0.01 %/h pays 2.52 (< 20); SOL long pays -0.015 %/h: it receives.
    since = book({BTC: ("LONG", 7), ETH: ("LONG", 3), SOL: ("LONG", 2)},
                 {BTC: "0.00015", ETH: "0.0001", SOL: "-0.00015"})
    products = ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
    result = drill.playbook("funding_spike.yml", {"funding_daily_target": 20, "funding_products": products,
                                                  "incident_record_id": "FS-NOAPPROVAL"})

    assert result.returncode == 0, result.output[-4000:]
    assert "NOT REDUCED" in result.output and "funding_reduce_approved=true" in result.output
    assert controller_requests(drill, since) == []
    assert (contracts(drill, BTC), contracts(drill, ETH), contracts(drill, SOL)) == (7, 3, 2)
    record = result.record("funding_spike")
    assert record["final_state"]["spikes"] == [BTC, SOL]  # both signs beyond 0.1 %; ETH's 0.08 % is not
    assert record["final_state"]["over_target"] == [BTC] and record["final_state"]["reduced"] is False
    steps = " ".join(e["step"] for e in record["timeline"])
    assert "BTC-PERP -> BIP-20DEC30-CDE" in steps and "0.1200 % per 8 h SPIKE (longs_pay)" in steps
    assert "-0.1200 % per 8 h SPIKE (shorts_pay)" in steps and "0.0800 % per 8 h;" in steps
    impact = [e for e in record["timeline"] if e["step"].startswith("Step 2")][0]["details"]["positions"]
    assert impact[BTC]["payment_per_day"] == pytest.approx(23.94) and impact[BTC]["exceeds_daily_target"] is True
    assert impact[ETH]["payment_per_day"] == pytest.approx(2.52) and impact[ETH]["exceeds_daily_target"] is False
    assert impact[SOL]["payment_per_day"] == pytest.approx(-6.48) and impact[SOL]["exceeds_daily_target"] is False
    assert record["status"] == "Investigating"
    assert any("Funding Rate Spike" in str(a["payload"]) for a in drill.control.alerts())

    # Check mode, approved: the plan (3 of 7 contracts, rounded down) and nothing sent.
    since = time.time()
    rehearsal = drill.playbook("funding_spike.yml", {"funding_daily_target": 20, "funding_reduce_approved": True,
                                                     "incident_record_id": "FS-CHECK"}, check=True)
    assert rehearsal.returncode == 0, rehearsal.output[-4000:]
    assert controller_requests(drill, since) == [] and contracts(drill, BTC) == 7
    record = rehearsal.record("funding_spike")
    assert record["rehearsal"] is True
    plan = [e for e in record["timeline"] if e["step"].startswith("Step 3, decision: reduce")][0]
    assert [(w["product_id"], w["size"], w["target_contracts"]) for w in plan["details"]["would_reduce"]] == [(BTC, "3", 4)]
    assert_no_secrets(result.output + rehearsal.output, drill)


def test_approved_reduction_happens_exactly_once(drill, book):
    """AWX path (approval node -> funding_reduce_approved=true): 50 % of 7 rounds down to 3, sent once;
    a second run of the same incident sends nothing although the 4 left still cost more than the target."""
    # 7 contracts pay 23.94 USD a day, the 4 left 13.68: both over a target of 10.
    since = book({BTC: ("LONG", 7)}, {BTC: "0.00015"})
    variables = {"funding_daily_target": 10, "funding_reduce_approved": True, "incident_record_id": "FS-ONCE"}

    runner = drill.runner("funding_spike.yml", variables)

    assert runner.status == "successful", runner.stdout.read()[-4000:]
    closes = controller_requests(drill, since, paths=(CLOSE,))
    assert len(closes) == 1 and closes[0]["status"] == 200
    order = [o for o in drill.control.list_orders(product_id=BTC) if o["client_order_id"] == closes[0]["client_order_id"]][0]
    assert order["status"] == "FILLED" and float(order["filled_size"]) == 3 and order["side"] == "SELL"
    assert contracts(drill, BTC) == 4

    again = drill.playbook("funding_spike.yml", variables)

    assert again.returncode == 0, again.output[-4000:]
    assert len(controller_requests(drill, since, paths=(CLOSE,))) == 1 and contracts(drill, BTC) == 4
    record = again.record("funding_spike")
    assert "already_reduced" in " ".join(e["step"] for e in record["timeline"])
    assert record["final_state"]["reduced"] is False and record["status"] == "Mitigating"
