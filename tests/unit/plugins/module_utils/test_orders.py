"""The cancel-all engine against a scripted fake exchange and a fake clock: rounds, retries,
CANCEL_QUEUED, arrivals, the deadline, errors; and the listing helpers (prefix rule, counts)."""

from __future__ import annotations

import pytest

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    InputError,
    PermissionDeniedError,
    ServerError,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.orders import (
    CancelAll,
    OrderFilter,
    PrefixRule,
    compact,
    summarize,
)


class FakeTime:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


class FakeExchange:
    """Just enough of CoinbaseClient for the engine. Each request costs 10 ms of fake time."""

    def __init__(self, time, count=0, product="BIP-20DEC30-CDE", prefix="bot-01-1732665600000-"):
        self.time = time
        self.deadline = None
        self.orders = {}
        self.batches = []
        self.lists = 0
        self.fail = {}          # order_id -> list of failure reasons to answer, one per attempt
        self.queue_cancels = 0  # cancels answered success but left CANCEL_QUEUED for this many listings
        self.queued = {}
        self.arrivals = []      # per listing, how many new orders appear before it
        self.list_errors = []   # per listing, an exception to raise (None = answer)
        self.cancel_errors = []  # per batch, an exception to raise (None = answer)
        self.deadlines_seen = []
        self.add(count, product, prefix)

    def add(self, count, product="BIP-20DEC30-CDE", prefix="bot-01-1732665600000-", status="OPEN"):
        start = len(self.orders)
        for i in range(start, start + count):
            order_id = "o%05d" % i
            self.orders[order_id] = {"order_id": order_id, "client_order_id": "%s%d" % (prefix, i), "product_id": product,
                                     "side": "BUY" if i % 2 == 0 else "SELL", "status": status,
                                     "order_configuration": {"limit_limit_gtc": {"base_size": "1", "limit_price": "90000"}}}

    def list_working_orders(self, product_ids, product_type, order_side, statuses, page_size):
        self.time.now += 0.01
        self.deadlines_seen.append(self.deadline)
        index = self.lists
        self.lists += 1
        if index < len(self.list_errors) and self.list_errors[index] is not None:
            raise self.list_errors[index]
        if index < len(self.arrivals):
            self.add(self.arrivals[index])
        for order_id in list(self.queued):
            self.queued[order_id] -= 1
            if self.queued[order_id] < 0:
                del self.queued[order_id]
                self.orders[order_id]["status"] = "CANCELLED"
        working = [dict(o) for o in self.orders.values() if o["status"] in statuses]
        open_orders = [o for o in working if o["status"] == "OPEN"][:1000]  # Coinbase's cap
        return open_orders + [o for o in working if o["status"] != "OPEN"]

    def cancel_orders(self, order_ids):
        self.time.now += 0.01
        assert len(order_ids) <= 100
        index = len(self.batches)
        self.batches.append(list(order_ids))
        if index < len(self.cancel_errors) and self.cancel_errors[index] is not None:
            raise self.cancel_errors[index]
        results = []
        for order_id in order_ids:
            order = self.orders[order_id]
            planned = self.fail.get(order_id) or []
            if planned:
                results.append({"order_id": order_id, "success": False, "failure_reason": planned.pop(0)})
            elif order["status"] == "CANCEL_QUEUED":
                results.append({"order_id": order_id, "success": False, "failure_reason": "DUPLICATE_CANCEL_REQUEST"})
            else:
                if self.queue_cancels:
                    order["status"] = "CANCEL_QUEUED"
                    self.queued[order_id] = self.queue_cancels
                else:
                    order["status"] = "CANCELLED"
                results.append({"order_id": order_id, "success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON"})
        return results

    def working(self):
        return [o for o in self.orders.values() if o["status"] in ("OPEN", "PENDING", "QUEUED", "CANCEL_QUEUED")]


def engine(exchange, time, order_filter=None, **options):
    options.setdefault("quiet_period", 0.5)
    return CancelAll(exchange, order_filter or OrderFilter(), clock=time.clock, sleep=time.sleep, **options)


@pytest.fixture
def time():
    return FakeTime()


def test_sweeps_in_batches_of_100_and_confirms_with_a_quiet_listing(time):
    exchange = FakeExchange(time, 250)
    report = engine(exchange, time).run()
    assert [len(b) for b in exchange.batches] == [100, 100, 50]
    assert report["empty"] is True and report["stopped_because"] == "empty" and report["remaining"] == 0
    assert report["cancelled_count"] == 250 and report["initiated"] == 250 and exchange.working() == []
    assert exchange.lists == 3 and time.sleeps == [0.5]  # list, cancel; list (empty); wait; list (still empty)
    assert report["timings"]["time_to_first_cancel_s"] == pytest.approx(0.02)
    assert report["timings"]["time_to_zero_s"] == pytest.approx(0.05)
    assert report["timings"]["total_s"] == pytest.approx(0.56)


def test_batch_size_is_bounded():
    with pytest.raises(InputError, match="batch_size"):
        CancelAll(None, OrderFilter(), batch_size=101)


def test_more_than_the_open_cap_takes_more_rounds(time):
    exchange = FakeExchange(time, 1500)
    report = engine(exchange, time).run()
    assert [r["listed"] for r in report["rounds"] if r["sent"]] == [1000, 500]
    assert report["rounds"][0]["listing_capped"] is True and report["empty"] is True and report["cancelled_count"] == 1500


def test_failed_cancels_are_retried_in_later_rounds(time):
    exchange = FakeExchange(time, 10)
    exchange.fail = {"o00003": ["COMMANDER_REJECTED_CANCEL_ORDER", "UNKNOWN_CANCEL_FAILURE_REASON"]}
    report = engine(exchange, time).run()
    assert report["empty"] is True and report["cancelled_count"] == 10 and report["failed_orders"] == []
    assert report["retried"] == [{"order_id": "o00003", "attempts": 3, "outcome": "cancelled",
                                  "failure_reasons": ["COMMANDER_REJECTED_CANCEL_ORDER", "UNKNOWN_CANCEL_FAILURE_REASON"]}]
    assert exchange.batches[1:] == [["o00003"], ["o00003"]]


def test_retries_are_bounded_and_the_failure_is_reported(time):
    exchange = FakeExchange(time, 3)
    exchange.fail = {"o00001": ["INVALID_CANCEL_FCM_TRADING_SESSION"] * 100}
    report = engine(exchange, time, cancel_retries=2).run()
    assert report["stopped_because"] == "retries_exhausted" and report["empty"] is False and report["remaining"] == 1
    [failed] = report["failed_orders"]
    assert (failed["order_id"], failed["failure_reason"], failed["attempts"]) == ("o00001", "INVALID_CANCEL_FCM_TRADING_SESSION", 3)
    assert sum(b.count("o00001") for b in exchange.batches) == 3


def test_a_round_with_no_progress_waits_before_the_next(time):
    exchange = FakeExchange(time, 1)
    exchange.fail = {"o00000": ["COMMANDER_REJECTED_CANCEL_ORDER"]}
    engine(exchange, time, poll_interval=0.25).run()
    assert time.sleeps[0] == 0.25


def test_cancel_queued_orders_are_waited_for_not_sent_again(time):
    exchange = FakeExchange(time, 5)
    exchange.queue_cancels = 2  # still CANCEL_QUEUED at the next two listings
    report = engine(exchange, time, poll_interval=0.2).run()
    assert len(exchange.batches) == 1
    assert [r["cancel_queued"] for r in report["rounds"]][:3] == [0, 5, 5]
    assert report["empty"] is True and report["cancelled_count"] == 5 and time.sleeps[:2] == [0.2, 0.2]


def test_duplicate_cancel_request_counts_as_initiated(time):
    exchange = FakeExchange(time, 2)
    exchange.fail = {"o00000": ["DUPLICATE_CANCEL_REQUEST"]}  # an earlier cancel is on its way
    original = exchange.cancel_orders

    def cancel_and_finish(order_ids):
        results = original(order_ids)
        exchange.orders["o00000"]["status"] = "CANCELLED"
        return results

    exchange.cancel_orders = cancel_and_finish
    report = engine(exchange, time).run()
    assert report["retried"] == [] and report["initiated"] == 2 and report["cancelled_count"] == 2
    assert len(exchange.batches) == 1


def test_an_order_that_fills_instead_is_gone_not_cancelled(time):
    exchange = FakeExchange(time, 3)
    exchange.fail = {"o00002": ["ORDER_IS_FULLY_FILLED"]}
    original = exchange.cancel_orders

    def cancel_and_fill(order_ids):
        results = original(order_ids)
        exchange.orders["o00002"]["status"] = "FILLED"
        return results

    exchange.cancel_orders = cancel_and_fill
    report = engine(exchange, time).run()
    assert report["empty"] is True and report["cancelled_count"] == 2
    assert [o["order_id"] for o in report["gone"]] == ["o00002"] and report["failed_orders"] == []


def test_orders_arriving_between_rounds_are_cancelled_too(time):
    exchange = FakeExchange(time, 100)
    exchange.arrivals = [0, 30, 0, 20]  # new orders before the 2nd and 4th listing
    report = engine(exchange, time).run()
    assert report["empty"] is True and report["cancelled_count"] == 150 and exchange.working() == []
    assert [r["sent"] for r in report["rounds"] if r["sent"]] == [100, 30, 20]


def test_deadline_stops_new_rounds_and_one_last_listing_says_what_remains(time):
    exchange = FakeExchange(time, 10)
    exchange.arrivals = [10] * 10000  # a bot that never stops
    report = engine(exchange, time, deadline=0.2).run()
    assert report["stopped_because"] == "deadline" and report["empty"] is False
    assert report["remaining"] == 10 and report["timings"]["time_to_zero_s"] is None
    assert report["timings"]["total_s"] <= 0.2 + 0.02  # the final listing after the deadline
    assert set(exchange.deadlines_seen) == {100.2}  # the client was told the deadline...
    assert exchange.deadline is None  # ...and it was restored afterwards


def test_max_rounds(time):
    exchange = FakeExchange(time, 10)
    exchange.arrivals = [10] * 10000
    report = engine(exchange, time, max_rounds=3).run()
    assert report["stopped_because"] == "max_rounds" and report["cancel_rounds"] == 3 and report["remaining"] == 10


def test_a_failed_listing_is_retried_next_round(time):
    exchange = FakeExchange(time, 10)
    exchange.list_errors = [None, ServerError("GET ... answered HTTP 503")]
    report = engine(exchange, time, poll_interval=0.1).run()
    assert report["empty"] is True and report["errors"][0]["during"] == "list" and report["cancelled_count"] == 10


def test_a_listing_that_keeps_failing_leaves_the_result_unknown(time):
    exchange = FakeExchange(time, 10)
    exchange.list_errors = [None] + [ServerError("GET ... answered HTTP 503")] * 10000
    report = engine(exchange, time, deadline=1.0, poll_interval=0.1).run()
    assert report["stopped_because"] == "list_failed" and report["remaining"] is None and report["empty"] is False


def test_a_failed_batch_is_sent_again(time):
    exchange = FakeExchange(time, 150)
    exchange.cancel_errors = [ServerError("POST ... answered HTTP 502")]
    report = engine(exchange, time).run()
    assert report["empty"] is True and report["cancelled_count"] == 150
    assert len(report["retried"]) == 100 and report["retried"][0]["failure_reasons"][0].startswith("REQUEST_FAILED")


def test_a_permission_error_stops_at_once_and_keeps_the_report(time):
    exchange = FakeExchange(time, 150)
    exchange.cancel_errors = [None, PermissionDeniedError("POST answered HTTP 403", path="/api/v3/brokerage/orders/batch_cancel")]
    run = engine(exchange, time)
    report = run.run()
    assert isinstance(run.fatal, PermissionDeniedError)
    assert report["stopped_because"] == "error" and report["initiated"] == 100
    assert report["remaining"] is None and len(report["unconfirmed"]) == 100 and exchange.deadline is None


def test_a_capped_listing_padded_by_other_hosts_cannot_prove_absence(time):
    exchange = FakeExchange(time, 1000, prefix="bot-02-1732665600000-")
    report = engine(exchange, time, OrderFilter(client_order_id_prefix="bot-01-")).run()
    assert report["stopped_because"] == "incomplete_listing" and report["empty"] is False and report["complete"] is False
    assert exchange.batches == []


def test_preview_sends_nothing(time):
    exchange = FakeExchange(time, 7)
    exchange.add(3, product="ETP-20DEC30-CDE", status="QUEUED")
    preview = engine(exchange, time).preview()
    assert preview["count"] == 10 and preview["by_product"] == {"BIP-20DEC30-CDE": 7, "ETP-20DEC30-CDE": 3}
    assert preview["by_status"] == {"OPEN": 7, "QUEUED": 3} and exchange.batches == []


@pytest.mark.parametrize("client_order_id, prefix", [
    ("bot-01-1732665600000-42", "bot-01"),
    ("trading-host-eu-3-1732665600000-7", "trading-host-eu-3"),
    ("manual-order", "(none)"),
    ("", "(none)"),
    (None, "(none)"),
])
def test_default_prefix_rule_finds_the_host(client_order_id, prefix):
    assert PrefixRule().prefix(client_order_id) == prefix


def test_prefix_rule_groups():
    assert PrefixRule(r"^(\w+)\.").prefix("eu.trader-1") == "eu"
    assert PrefixRule(r"^[a-z]+").prefix("abc123") == "abc"
    with pytest.raises(InputError, match="client_order_id_pattern"):
        PrefixRule("(")


def test_summarize_and_compact():
    orders = [
        {"order_id": "1", "client_order_id": "bot-01-1732665600000-1", "product_id": "A", "side": "BUY", "status": "OPEN",
         "order_configuration": {"limit_limit_gtc": {"base_size": "2", "limit_price": "10.5"}}},
        {"order_id": "2", "client_order_id": "x", "product_id": "B", "side": "SELL", "status": "QUEUED",
         "order_configuration": {"market_market_ioc": {"quote_size": "100"}}},
    ]
    assert summarize(orders, PrefixRule()) == {
        "count": 2, "by_product": {"A": 1, "B": 1}, "by_status": {"OPEN": 1, "QUEUED": 1},
        "by_side": {"BUY": 1, "SELL": 1}, "by_prefix": {"(none)": 1, "bot-01": 1}}
    first, second = (compact(o, PrefixRule()) for o in orders)
    assert (first["base_size"], first["limit_price"], first["prefix"]) == ("2", "10.5", "bot-01")
    assert (second["base_size"], second["quote_size"], second["limit_price"]) == (None, "100", None)
