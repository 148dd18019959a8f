"""Position arithmetic in Decimal, the reduce rounding rule, deterministic client_order_ids, the
daily loss limit, and the close planner / verifier against a fake client."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    BusinessRejectError,
    InputError,
    ServerError,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.positions import (
    PositionCloser,
    PositionFigures,
    PositionPlan,
    as_number,
    daily_pnl,
    describe_positions,
    exact,
    figure,
    incident_client_order_id,
    position_totals,
    reduce_size,
    session_state,
    to_decimal,
)

BTC_PRODUCT = {
    "product_id": "BIP-20DEC30-CDE", "display_name": "BTC PERP", "base_increment": "1",
    "fcm_trading_session_details": {"is_session_open": True, "session_state": "FCM_TRADING_SESSION_STATE_OPEN"},
    "future_product_details": {"contract_size": "0.01", "contract_root_unit": "BTC"},
}


def position(contracts, side="LONG", product_id="BIP-20DEC30-CDE", **fields):
    return dict({"product_id": product_id, "side": side, "number_of_contracts": str(contracts), "avg_entry_price": "94000",
                 "current_price": "95000", "unrealized_pnl": "30.00", "daily_realized_pnl": "0.00"}, **fields)


# ---------------------------------------------------------------------- numbers
@pytest.mark.parametrize("raw, expected", [
    ("12.30", Decimal("12.30")),
    ({"value": "-0.05", "currency": "USD"}, Decimal("-0.05")),
    (0.1, Decimal("0.1")),  # repr, not the binary expansion
    (7, Decimal(7)),
    ("", None),
    (None, None),
    ({"currency": "USD"}, None),
])
def test_to_decimal(raw, expected):
    assert to_decimal(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "NaN", "Infinity"])
def test_to_decimal_refuses_non_numbers(raw):
    with pytest.raises(ValueError):
        to_decimal(raw)


def test_rendering_keeps_the_exact_string_and_gives_a_number():
    assert exact(Decimal("1E+1")) == "10" and exact(Decimal("-0")) == "0" and exact(Decimal("0.10")) == "0.10"
    assert as_number(Decimal("3")) == 3 and isinstance(as_number(Decimal("3.0")), int)
    assert as_number(Decimal("0.01")) == 0.01
    assert figure(Decimal("249715.00"), "USD") == {"value": 249715, "exact": "249715.00", "currency": "USD"}
    assert figure(None) == {"value": None, "exact": None}


def test_position_figures_and_totals():
    catalogue = [BTC_PRODUCT, {"product_id": "ETP-20DEC30-CDE", "future_product_details": {"contract_size": "0.1"}}]
    figures = describe_positions([
        position(3),
        position(2, side="SHORT", product_id="ETP-20DEC30-CDE", current_price="3500.5", unrealized_pnl="-20.10"),
        position(0, product_id="SLP-20DEC30-CDE"),
    ], catalogue)
    assert [f.product_id for f in figures] == ["BIP-20DEC30-CDE", "ETP-20DEC30-CDE"]
    assert figures[0].notional == Decimal("2850.00") and figures[1].notional == Decimal("700.100")
    assert figures[1].signed_contracts == -2 and figures[0].display_name == "BTC PERP"
    totals = position_totals(figures)
    assert Decimal(totals["gross_notional"]["exact"]) == Decimal("3550.1") and Decimal(totals["net_notional"]["exact"]) == Decimal("2149.9")
    assert totals["unrealized_pnl"]["exact"] == "9.90" and (totals["long_contracts"], totals["short_contracts"]) == (3, 2)


def test_unknown_contract_size_leaves_notional_out_and_says_so():
    figures = [PositionFigures(position(1, product_id="NEW-PRODUCT"), None)]
    assert figures[0].notional is None and position_totals(figures)["notional_complete"] is False


# ---------------------------------------------------------------------- reduce rounding
@pytest.mark.parametrize("held, percent, increment, rounding, size", [
    ("3", "50", "1", "down", "1"),
    ("3", "50", "1", "up", "2"),
    ("1", "50", "1", "down", "0"),
    ("1", "50", "1", "up", "1"),
    ("4", "100", "1", "up", "4"),
    ("10", "33.3", "1", "down", "3"),
    ("10", "33.3", "1", "up", "4"),
    ("2.5", "50", "0.1", "down", "1.2"),
    ("2.5", "50", "0.1", "up", "1.3"),
    ("7", "99.99", "1", "up", "7"),  # never past the position
    ("7", "50", None, "down", "3"),  # whole contracts when the product says nothing
])
def test_reduce_size(held, percent, increment, rounding, size):
    got = reduce_size(Decimal(held), Decimal(percent), Decimal(increment) if increment else None, rounding)
    assert got == Decimal(size) and got <= Decimal(held)


@pytest.mark.parametrize("percent", ["0", "-5", "100.01", "150"])
def test_reduce_percent_must_be_in_range(percent):
    with pytest.raises(InputError, match="percent must be more than 0 and at most 100"):
        reduce_size(Decimal(3), Decimal(percent), Decimal(1))


def test_reduce_rounding_must_be_known():
    with pytest.raises(InputError, match="rounding"):
        reduce_size(Decimal(3), Decimal(50), Decimal(1), "nearest")


# ---------------------------------------------------------------------- client_order_ids
def test_client_order_ids_are_deterministic_uuids_and_differ_per_part():
    first = incident_client_order_id("INC-1", "BIP-20DEC30-CDE", "close", "flat", 1)
    assert first == incident_client_order_id("INC-1", "BIP-20DEC30-CDE", "close", "flat", 1)
    assert str(uuid.UUID(first)) == first
    others = {
        incident_client_order_id("INC-2", "BIP-20DEC30-CDE", "close", "flat", 1),
        incident_client_order_id("INC-1", "ETP-20DEC30-CDE", "close", "flat", 1),
        incident_client_order_id("INC-1", "BIP-20DEC30-CDE", "reduce", "pct-50", 1),
        incident_client_order_id("INC-1", "BIP-20DEC30-CDE", "reduce", "pct-25", 1),
        incident_client_order_id("INC-1", "BIP-20DEC30-CDE", "close", "flat", 2),
    }
    assert len(others) == 5 and first not in others


def test_client_order_ids_are_stable_across_releases():
    # A changed namespace or seed layout would let a re-run after an upgrade close twice.
    assert incident_client_order_id("INC-4242", "BIP-20DEC30-CDE", "close", "flat", 1) == "0bc50be1-44bd-5bcb-8fd6-7952933bbb29"


# ---------------------------------------------------------------------- daily loss limit
SUMMARY = {"daily_realized_pnl": {"value": "-3000.00", "currency": "USD"}, "unrealized_pnl": {"value": "-5000.00", "currency": "USD"}}


@pytest.mark.parametrize("limit, breached, margin", [("8000", True, "0.00"), ("8000.01", False, "0.01"), ("7000", True, "-1000.00")])
def test_breach_is_reaching_the_limit(limit, breached, margin):
    result = daily_pnl(SUMMARY, [], Decimal(limit))
    assert result["breached"] is breached and result["margin_to_limit"]["exact"] == margin
    assert result["loss"]["exact"] == "8000.00" and result["total"]["exact"] == "-8000.00"


def test_profit_is_no_loss():
    result = daily_pnl({"daily_realized_pnl": "100", "unrealized_pnl": "-40"}, [], Decimal(50))
    assert result["loss"]["value"] == 0 and result["breached"] is False and result["margin_to_limit"]["exact"] == "50"


def test_realized_only_and_warning():
    result = daily_pnl(SUMMARY, [], Decimal(3750), Decimal(80), include_unrealized=False)
    assert result["total"]["exact"] == "-3000.00" and result["used_percent"]["exact"] == "80.00" and result["warning"] is True


def test_positions_fill_in_when_the_summary_lacks_a_field():
    figures = [PositionFigures(position(3, unrealized_pnl="-12.50", daily_realized_pnl="-1.00"), BTC_PRODUCT)]
    result = daily_pnl({}, figures, Decimal(10))
    assert result["sources"] == {"realized": "positions", "unrealized": "positions"}
    assert result["total"]["exact"] == "-13.50" and result["breached"] is True


def test_limit_must_be_positive():
    with pytest.raises(InputError, match="positive"):
        daily_pnl(SUMMARY, [], Decimal(-1))


# ---------------------------------------------------------------------- the close planner
def test_session_state_names_every_blocker():
    closed = dict(BTC_PRODUCT, cancel_only=True, fcm_trading_session_details={
        "is_session_open": False, "session_state": "FCM_TRADING_SESSION_STATE_CLOSED", "closed_reason": "MAINTENANCE"})
    state = session_state(closed)
    assert state["open"] is False and len(state["blockers"]) == 2 and "MAINTENANCE" in state["blockers"][0]
    assert session_state(BTC_PRODUCT)["open"] is True


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeClient:
    def __init__(self, orders=(), positions=()):
        self.orders = list(orders)
        self.positions = list(positions)
        self.sent = []
        self.close_error = None
        self.position_reads = []  # scripted answers to list_positions, last one repeats

    def list_orders(self, product_ids=None, start_date=None, page_size=None):
        return [o for o in self.orders if o["product_id"] in product_ids]

    def close_position(self, client_order_id, product_id, size=None):
        self.sent.append((client_order_id, product_id, size))
        if self.close_error:
            raise self.close_error
        return {"success": True, "success_response": {"order_id": "ord-%d" % len(self.sent)}}

    def list_positions(self):
        if isinstance(self.position_reads, Exception):
            raise self.position_reads
        return self.position_reads.pop(0) if len(self.position_reads) > 1 else self.position_reads[0]

    def get_order(self, order_id):
        return {"order_id": order_id, "status": "FILLED", "filled_size": "1"}


def plan_for(client, held, action="close", percent=None, side="LONG", rounding="down", product=None, incident="INC-1"):
    product = product or BTC_PRODUCT
    time = FakeTime()
    closer = PositionCloser(client, incident, clock=time.clock, sleep=time.sleep)
    plan = PositionPlan(product["product_id"], product, action, percent=Decimal(percent) if percent else None)
    return closer, closer.plan(plan, position(held, side=side) if held else None, rounding)


def test_flat_needs_nothing():
    _closer, plan = plan_for(FakeClient(), 0)
    assert plan.outcome == "already_flat" and plan.client_order_id is None


def test_close_plans_attempt_1_for_the_whole_position():
    _closer, plan = plan_for(FakeClient(), 3, side="SHORT")
    assert (plan.outcome, plan.size, plan.order_side, plan.attempt) == ("to_send", None, "BUY", 1)
    assert plan.client_order_id == incident_client_order_id("INC-1", "BIP-20DEC30-CDE", "close", "flat", 1)
    assert plan.would()["size"] == "all"


def test_reduce_already_filled_for_this_incident_is_not_repeated():
    earlier = {"product_id": "BIP-20DEC30-CDE", "order_id": "old", "status": "FILLED", "filled_size": "1",
               "client_order_id": incident_client_order_id("INC-1", "BIP-20DEC30-CDE", "reduce", "pct-50", 1)}
    client = FakeClient(orders=[earlier])
    _closer, plan = plan_for(client, 2, action="reduce", percent="50")
    assert plan.outcome == "already_reduced" and plan.order_id == "old"


def test_a_dead_earlier_attempt_moves_to_the_next_attempt():
    earlier = {"product_id": "BIP-20DEC30-CDE", "order_id": "old", "status": "FAILED", "filled_size": "0",
               "client_order_id": incident_client_order_id("INC-1", "BIP-20DEC30-CDE", "reduce", "pct-50", 1)}
    _closer, plan = plan_for(FakeClient(orders=[earlier]), 4, action="reduce", percent="50")
    assert plan.outcome == "to_send" and plan.attempt == 2 and plan.size == 2


def test_a_working_earlier_order_is_waited_for():
    earlier = {"product_id": "BIP-20DEC30-CDE", "order_id": "old", "status": "OPEN", "filled_size": "0",
               "client_order_id": incident_client_order_id("INC-1", "BIP-20DEC30-CDE", "close", "flat", 1)}
    _closer, plan = plan_for(FakeClient(orders=[earlier]), 3)
    assert plan.outcome == "pending" and plan.order_id == "old"


def test_another_incidents_orders_do_not_count():
    earlier = {"product_id": "BIP-20DEC30-CDE", "order_id": "old", "status": "FILLED", "filled_size": "1",
               "client_order_id": incident_client_order_id("INC-OTHER", "BIP-20DEC30-CDE", "reduce", "pct-50", 1)}
    _closer, plan = plan_for(FakeClient(orders=[earlier]), 2, action="reduce", percent="50")
    assert plan.outcome == "to_send" and plan.attempt == 1


def test_closed_session_blocks_without_a_client_order_id():
    product = dict(BTC_PRODUCT, fcm_trading_session_details={"is_session_open": False, "session_state": "CLOSED", "closed_reason": "X"})
    client = FakeClient()
    _closer, plan = plan_for(client, 3, product=product)
    assert plan.outcome == "blocked" and plan.failed and "session is closed" in plan.reason and client.sent == []


def test_send_and_verify_until_the_target():
    client = FakeClient()
    closer, plan = plan_for(client, 3, action="reduce", percent="50")
    closer.send(plan)
    assert client.sent == [(plan.client_order_id, "BIP-20DEC30-CDE", "1")] and plan.sent
    client.position_reads = [[position(3)], [position(3)], [position(2)]]
    closer.verify([plan], timeout=5, interval=0.5)
    assert plan.verified is True and plan.outcome == "reduced" and plan.contracts_after == 2
    assert plan.order["status"] == "FILLED"


def test_verify_gives_up_after_the_timeout():
    client = FakeClient()
    closer, plan = plan_for(client, 3)
    closer.send(plan)
    client.position_reads = [[position(3)]]
    closer.verify([plan], timeout=2, interval=0.5)
    assert plan.verified is False and plan.outcome == "unverified" and "After 2 s the position is 3" in plan.reason


def test_verify_says_so_when_positions_cannot_be_read():
    client = FakeClient()
    closer, plan = plan_for(client, 3)
    closer.send(plan)
    client.position_reads = ServerError("GET /cfm/positions answered HTTP 503")
    closer.verify([plan], timeout=2)
    assert plan.failed and "Could not re-read positions" in plan.reason


@pytest.mark.parametrize("error, outcome", [
    (BusinessRejectError("refused", error="NO_OPEN_POSITION"), "already_flat"),
    (BusinessRejectError("refused", error="ORDER_ENTRY_DISABLED", details="session closed"), "rejected"),
    (ServerError("POST answered HTTP 503"), "error"),
])
def test_send_failures_are_per_product(error, outcome):
    client = FakeClient()
    closer, plan = plan_for(client, 3)
    client.close_error = error
    closer.send(plan)
    assert plan.outcome == outcome and plan.sent is False


def test_incident_id_is_required():
    with pytest.raises(InputError, match="incident_id"):
        PositionCloser(FakeClient(), "  ")
