"""The stand-in bot's decisions, without a fleet: modes, staleness, reduce-only, pacing, ids.

The fleet tests (test_fleet.py) show the same behaviour end to end against the double; these
pin the rules down quickly and name the rule that broke.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from trading_bot import common
from trading_bot.orders import OrderService, Pacer, owned_by, position_sizes, reduces_exposure
from trading_bot.perpetuals import MarketState


class FakeClient:
    """Records what the bot asks the exchange for; answers like the client does."""

    def __init__(self, positions=None, open_orders=None):
        self.calls = []
        self.attempts = []
        self.positions = positions or []
        self.open_orders = open_orders or []
        self.next_id = 0

    def get_product(self, product_id):
        self.calls.append(("get_product", product_id))
        return {"product_id": product_id, "base_increment": "1", "base_min_size": "1", "quote_increment": "5"}

    def list_orders(self, order_status=None, product_ids=None, **_):
        self.calls.append(("list_orders", tuple(order_status or ())))
        return list(self.open_orders)

    def list_positions(self):
        self.calls.append(("list_positions",))
        return list(self.positions)

    def create_order(self, client_order_id, product_id, side, order_configuration):
        self.next_id += 1
        self.calls.append(("create_order", client_order_id, product_id, side, order_configuration))
        return {"success": True, "success_response": {"order_id": "o%d" % self.next_id}}

    def cancel_orders(self, order_ids):
        self.calls.append(("cancel_orders", list(order_ids)))
        return [{"order_id": o, "success": True} for o in order_ids]

    def close_position(self, client_order_id, product_id, size=None):
        self.calls.append(("close_position", client_order_id, product_id, size))
        return {"success": True, "success_response": {"order_id": "c1"}}

    def of(self, name):
        return [c for c in self.calls if c[0] == name]


@pytest.fixture
def host(tmp_path):
    """A bot's files in a temporary directory, and a config pointing at them."""
    env = {
        "PRODUCT_IDS": "BIP-20DEC30-CDE,ETP-20DEC30-CDE",
        "BOT_ID": "drill-bot-7",
        "MAX_ORDERS_PER_SECOND": "1000",
        "BATCH_SIZE": "3",
        "QUOTES_PER_CYCLE": "4",
        "MAX_OPEN_ORDERS": "5",
        "TRADING_MODE_FILE": str(tmp_path / "trading_mode"),
        "MARKET_STATE_FILE": str(tmp_path / "market.json"),
        "TRADING_BOT_LOG_DIR": str(tmp_path / "logs"),
    }
    cfg = common.Config.from_env(env)
    log = logging.getLogger("test-bot")

    class Host:
        pass

    h = Host()
    h.cfg, h.log, h.tmp = cfg, log, tmp_path
    h.now = 1_800_000_000.0

    def mode(word):
        (tmp_path / "trading_mode").write_text(word + "\n")

    def market(age=0.5, price="95000"):
        products = {p: {"price": price, "last_update_epoch": h.now - age} for p in cfg.product_ids}
        common.write_json_atomic(cfg.market_state_file, {"products": products})

    def service(client):
        return OrderService(cfg, log, client, clock=lambda: h.now)

    h.mode, h.market, h.service = mode, market, service
    return h


def test_client_order_ids_name_the_host_and_only_that_host():
    assert owned_by("drill-bot-1-1764250000000-12", "drill-bot-1")
    assert not owned_by("drill-bot-10-1764250000000-12", "drill-bot-1")
    assert not owned_by("drill-bot-1-abc-12", "drill-bot-1")
    assert not owned_by(None, "drill-bot-1")


def test_reduce_only_rule():
    assert reduces_exposure("SELL", Decimal(1), Decimal(3))
    assert not reduces_exposure("SELL", Decimal(4), Decimal(3))  # would flip to short
    assert not reduces_exposure("BUY", Decimal(1), Decimal(3))
    assert reduces_exposure("BUY", Decimal(2), Decimal(-2))
    assert not reduces_exposure("SELL", Decimal(1), Decimal(0))  # flat: anything is new exposure


def test_positions_are_signed():
    sizes = position_sizes([{"product_id": "A", "side": "LONG", "number_of_contracts": "3"},
                            {"product_id": "B", "side": "SHORT", "number_of_contracts": "2"}])
    assert sizes == {"A": Decimal(3), "B": Decimal(-2)}


@pytest.mark.parametrize("content, expected", [(None, "HALTED"), ("normal\n", "NORMAL"), ("REDUCE_ONLY", "REDUCE_ONLY"),
                                               ("HALTED", "HALTED"), ("YOLO", "HALTED"), ("", "HALTED")])
def test_mode_file_missing_or_unknown_means_halted(tmp_path, content, expected):
    path = tmp_path / "trading_mode"
    if content is not None:
        path.write_text(content)
    assert common.read_trading_mode(str(path))[0] == expected


def test_halted_places_and_cancels_nothing(host):
    host.mode("HALTED")
    host.market()
    client = FakeClient(open_orders=[{"order_id": "x", "client_order_id": "drill-bot-7-1-1", "product_id": "BIP-20DEC30-CDE", "side": "BUY"}])
    host.service(client).cycle()
    assert client.calls == []


def test_normal_quotes_with_host_ids_and_respects_batch_size(host):
    host.mode("NORMAL")
    host.market()
    client = FakeClient()
    svc = host.service(client)
    svc.cycle()
    created = client.of("create_order")
    assert len(created) == 3  # QUOTES_PER_CYCLE=4 but BATCH_SIZE=3 bounds a batch
    for _, coid, product, side, config in created:
        assert owned_by(coid, "drill-bot-7")
        limit = config["limit_limit_gtc"]
        price = Decimal(limit["limit_price"])
        assert (price < 95000) if side == "BUY" else (price > 95000)
        assert price % 5 == 0  # quote_increment
    assert {c[3] for c in created} == {"BUY", "SELL"}


def test_book_is_capped_oldest_cancelled_in_batches(host):
    host.mode("NORMAL")
    host.market()
    client = FakeClient()
    svc = host.service(client)
    for i in range(4):
        host.now += 1
        host.market()
        svc.cycle()
    assert len(svc.book) <= host.cfg.max_open_orders
    cancels = client.of("cancel_orders")
    assert cancels and all(len(c[1]) <= host.cfg.batch_size for c in cancels)
    assert "o1" in cancels[0][1]  # the oldest went first


def test_stale_data_blocks_entries(host):
    host.mode("NORMAL")
    host.market(age=6.0)
    client = FakeClient()
    host.service(client).cycle()
    assert client.of("create_order") == []


def test_reduce_only_only_reduces(host):
    host.mode("REDUCE_ONLY")
    host.market()
    mine = {"order_id": "r1", "client_order_id": "drill-bot-7-1-1", "product_id": "BIP-20DEC30-CDE", "side": "BUY"}
    theirs = {"order_id": "r2", "client_order_id": "drill-bot-8-1-1", "product_id": "BIP-20DEC30-CDE", "side": "BUY"}
    client = FakeClient(positions=[{"product_id": "BIP-20DEC30-CDE", "side": "LONG", "number_of_contracts": "3"}],
                        open_orders=[mine, theirs])
    host.service(client).cycle()
    assert client.of("create_order") == []
    assert client.of("cancel_orders") == [("cancel_orders", ["r1"])]  # only our own resting order
    closes = client.of("close_position")
    assert len(closes) == 1 and closes[0][2] == "BIP-20DEC30-CDE" and Decimal(closes[0][3]) <= 3


def test_mode_is_checked_before_every_order(host):
    """A HALTED written while a batch is being placed stops the batch at the next order."""
    host.mode("NORMAL")
    host.market()
    client = FakeClient()
    svc = host.service(client)
    original = client.create_order

    def create_then_halt(*args):
        result = original(*args)
        host.mode("HALTED")
        return result

    client.create_order = create_then_halt
    svc.cycle()
    assert len(client.of("create_order")) == 1


def test_pacer_bounds_the_rate():
    t = [0.0]
    pacer = Pacer(5.0, clock=lambda: t[0], sleep=lambda s: t.__setitem__(0, t[0] + s))
    for _ in range(50):
        pacer.wait()
    assert t[0] >= (50 - 1) / 5.0 - 1e-9


def test_market_state_ages_heartbeats_and_gaps():
    now = [1000.0]
    state = MarketState(["BIP-20DEC30-CDE"], clock=lambda: now[0])
    state.on_connect()
    state.on_message({"channel": "ticker", "sequence_num": 0, "timestamp": "2026-11-27T10:00:00.123456789Z",
                      "events": [{"type": "snapshot", "tickers": [{"product_id": "BIP-20DEC30-CDE", "price": "95000.5"}]}]})
    notes = state.on_message({"channel": "heartbeats", "sequence_num": 3,
                              "events": [{"current_time": "x", "heartbeat_counter": "41"}]})
    assert any("sequence gap" in text for _, text in notes)
    snap = state.snapshot()
    assert snap["products"]["BIP-20DEC30-CDE"]["price"] == "95000.5"
    assert snap["products"]["BIP-20DEC30-CDE"]["stale"] is False
    assert snap["heartbeat"]["counter"] == 41
    now[0] += 5.5
    notes = state.staleness()
    assert any(level == logging.WARNING and "stale data for BIP-20DEC30-CDE" in text for level, text in notes)
    assert state.snapshot()["stale"] is True
    json.dumps(state.snapshot())  # market.json must serialise
