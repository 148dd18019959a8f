"""The WebSocket feeds and their faults, with a plain websockets client over real TLS."""

from __future__ import annotations

import itertools
import json
import re
import socket
import ssl
import time
from typing import Any, Callable

import pytest
from double_api import BTC_PERP, ETH_PERP, Api
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from exchange_double.keys import GeneratedKey
from exchange_double.testing import DoubleHandle

RFC3339_NANOS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def open_ws(double: DoubleHandle, path: str = "/", host: str = "localhost") -> ClientConnection:
    """Connect over TLS; ``host`` is what the client dials (and the Host header it sends).

    The sync client buffers one unread message only; with more pending at close time it
    cannot read the server's close frame, so its close timeout is kept short.
    """
    context = ssl.create_default_context(cafile=str(double.ca_path))
    sock = socket.create_connection(("127.0.0.1", double.port))
    return connect(f"wss://{host}:{double.port}{path}", sock=sock, ssl=context, server_hostname=host,
                   open_timeout=5, close_timeout=0.5)


def subscribe(ws: ClientConnection, channel: str, product_ids: list[str] | None = None,
              key: GeneratedKey | None = None, kind: str = "subscribe") -> None:
    message: dict[str, Any] = {"type": kind, "product_ids": product_ids or [], "channel": channel}
    if key is not None:
        message["jwt"] = key.mint_jwt(None)
    ws.send(json.dumps(message))


def receive(ws: ClientConnection, timeout: float = 3.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def receive_until(ws: ClientConnection, wanted: Callable[[dict[str, Any]], bool],
                  timeout: float = 3.0) -> list[dict[str, Any]]:
    """Messages up to and including the first one ``wanted`` accepts."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        message = receive(ws, max(0.01, deadline - time.monotonic()))
        seen.append(message)
        if wanted(message):
            return seen
    raise AssertionError(f"no wanted message within {timeout}s; got {seen[-3:]}")


def heartbeats(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while len(found) < count:
        message = receive(ws)
        if message.get("channel") == "heartbeats":
            found.append(message)
    return found


def is_error(message: dict[str, Any]) -> bool:
    return message.get("type") == "error"


def test_connection_without_subscribe_is_closed_after_the_deadline(double: DoubleHandle) -> None:
    started = time.monotonic()
    with open_ws(double) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    elapsed = time.monotonic() - started
    assert 0.8 < elapsed < 3.0  # the suite's deadline is 1 s (Coinbase: 5 s)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert any(e["ws"]["event"] == "subscribe_timeout" for e in double.control.requests(method="WS"))


def test_heartbeats_envelope_counter_and_sequence(double: DoubleHandle) -> None:
    with open_ws(double) as ws:
        subscribe(ws, "heartbeats")
        ack = receive(ws)
        assert ack["channel"] == "subscriptions" and ack["sequence_num"] == 0
        assert ack["events"] == [{"subscriptions": {"heartbeats": []}}]
        beats = heartbeats(ws, 4)
    for beat in beats:
        assert set(beat) == {"channel", "client_id", "timestamp", "sequence_num", "events"}
        assert beat["client_id"] == "" and RFC3339_NANOS.match(beat["timestamp"])
        assert isinstance(beat["events"][0]["heartbeat_counter"], int)
        assert " +0000 UTC" in beat["events"][0]["current_time"]
    counters = [b["events"][0]["heartbeat_counter"] for b in beats]
    sequences = [b["sequence_num"] for b in beats]
    assert counters == list(range(counters[0], counters[0] + 4))
    assert sequences == [1, 2, 3, 4]


def test_ticker_snapshot_then_updates_on_price_changes(double: DoubleHandle) -> None:
    with open_ws(double) as ws:
        subscribe(ws, "ticker", [BTC_PERP, ETH_PERP])
        assert receive(ws)["channel"] == "subscriptions"
        snapshot = receive(ws)
        assert snapshot["events"][0]["type"] == "snapshot"
        tickers = {t["product_id"]: t for t in snapshot["events"][0]["tickers"]}
        assert set(tickers) == {BTC_PERP, ETH_PERP}
        assert {"type", "product_id", "price", "volume_24_h", "low_24_h", "high_24_h", "best_bid",
                "best_ask"} <= set(tickers[BTC_PERP])
        double.control.set_product(BTC_PERP, price="97000")
        update = receive(ws)
        assert update["events"][0]["type"] == "update"
        ticker = update["events"][0]["tickers"][0]
        assert (ticker["product_id"], ticker["price"], ticker["best_bid"], ticker["best_ask"]) == (
            BTC_PERP, "97000", "96995", "97005")
        subscribe(ws, "ticker", ["NOPE-USD"])
        assert is_error(receive(ws))


def test_user_channel_requires_a_valid_jwt(double: DoubleHandle, ec_key: GeneratedKey) -> None:
    with open_ws(double) as ws:
        subscribe(ws, "user")
        assert receive(ws) == {"type": "error", "message": "authentication failure"}
        expired = {"type": "subscribe", "product_ids": [], "channel": "user",
                   "jwt": ec_key.mint_jwt(None, now=time.time() - 300)}
        ws.send(json.dumps(expired))
        assert receive(ws) == {"type": "error", "message": "authentication failure"}
        subscribe(ws, "heartbeats")  # public channels need no JWT on the market endpoint
        assert receive(ws)["channel"] == "subscriptions"
    failures = [e for e in double.control.requests(method="WS") if e["status"] == 401]
    assert [e["auth_error"] for e in failures][:2] == ["no jwt in message", failures[1]["auth_error"]]
    assert "expired" in failures[1]["auth_error"] and failures[1]["claimed_key"] == ec_key.name


@pytest.mark.parametrize(("path", "host"), [("/ws/user", "localhost"), ("/", "advanced-trade-ws-user.coinbase.com")])
def test_user_endpoint_requires_a_jwt_for_every_channel(double: DoubleHandle, ed_key: GeneratedKey,
                                                        path: str, host: str) -> None:
    with open_ws(double, path, host) as ws:
        subscribe(ws, "heartbeats")
        assert receive(ws) == {"type": "error", "message": "authentication failure"}
        subscribe(ws, "ticker", [BTC_PERP], key=ed_key)
        assert is_error(receive(ws))  # market channels are not served on the user endpoint
        subscribe(ws, "heartbeats", key=ed_key)
        assert receive(ws)["channel"] == "subscriptions"
        [connection] = double.control.ws_connections()
        assert connection["endpoint"] == "user" and connection["subscriptions"] == {"heartbeats": []}


def test_user_channel_snapshot_in_batches_then_updates(double: DoubleHandle, api: Api, ec_key: GeneratedKey) -> None:
    ids = double.control.seed_orders(60, BTC_PERP)["order_ids"]
    double.control.set_position(ETH_PERP, "SHORT", 3, "3500")
    with open_ws(double, "/ws/user") as ws:
        subscribe(ws, "user", key=ec_key)
        assert receive(ws)["channel"] == "subscriptions"
        first, second = receive(ws), receive(ws)
        assert [m["events"][0]["type"] for m in (first, second)] == ["snapshot", "snapshot"]
        assert len(first["events"][0]["orders"]) == 50 and len(second["events"][0]["orders"]) == 10
        positions = first["events"][0]["positions"]["expiring_futures_positions"]
        assert positions == [{"product_id": ETH_PERP, "side": "SHORT", "number_of_contracts": "3",
                              "realized_pnl": "0.00", "unrealized_pnl": "0.00", "entry_price": "3500"}]
        api.ok("POST", "/orders/batch_cancel", json={"order_ids": [ids[0]]})
        updates = receive_until(ws, lambda m: any(o["status"] == "CANCELLED" for o in m["events"][0].get("orders", [])))
        order = updates[-1]["events"][0]["orders"][0]
        assert order["order_id"] == ids[0] and order["leaves_quantity"] == "0"


def test_futures_balance_summary_snapshot_and_update(double: DoubleHandle, api: Api, ec_key: GeneratedKey) -> None:
    with open_ws(double) as ws:
        subscribe(ws, "futures_balance_summary", key=ec_key)
        assert receive(ws)["channel"] == "subscriptions"
        snapshot = receive(ws)["events"][0]
        assert snapshot["type"] == "snapshot"
        summary = snapshot["fcm_balance_summary"]
        assert summary["cfm_usd_balance"] == "250000.00" and summary["unrealized_pnl"] == "0.00"
        double.control.set_position(BTC_PERP, "LONG", 2, "94000")
        update = receive_until(ws, lambda m: m["events"][0]["type"] == "update")[-1]
        assert update["events"][0]["fcm_balance_summary"]["unrealized_pnl"] == "20.00"


def test_unsubscribe_stops_the_feed(double: DoubleHandle) -> None:
    with open_ws(double) as ws:
        subscribe(ws, "heartbeats")
        heartbeats(ws, 1)
        subscribe(ws, "heartbeats", kind="unsubscribe")
        ack = receive_until(ws, lambda m: m["channel"] == "subscriptions")[-1]
        assert ack["events"] == [{"subscriptions": {}}]
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.4)


def test_stall_keeps_the_socket_open_but_silent(double: DoubleHandle) -> None:
    with open_ws(double) as ws:
        subscribe(ws, "heartbeats")
        last = heartbeats(ws, 2)[-1]
        double.control.ws_stall(0.8)
        stalled_at = time.monotonic()
        # Drain what was already on the wire, then expect silence until the stall ends.
        resumed = None
        while resumed is None:
            message = receive(ws, timeout=3)
            if time.monotonic() - stalled_at > 0.3:
                resumed = message
        assert time.monotonic() - stalled_at >= 0.75
        assert resumed["sequence_num"] > last["sequence_num"]
        # Heartbeats generated during the stall were never sent, so the counter jumps.
        assert resumed["events"][0]["heartbeat_counter"] > last["events"][0]["heartbeat_counter"] + 3


def test_per_product_stall_silences_only_that_ticker(double: DoubleHandle) -> None:
    with open_ws(double) as ws:
        subscribe(ws, "ticker", [BTC_PERP, ETH_PERP])
        subscribe(ws, "heartbeats")
        double.control.ws_stall(5, product_ids=[BTC_PERP])
        double.control.set_product(BTC_PERP, price="99000")
        double.control.set_product(ETH_PERP, price="3600")
        messages = receive_until(ws, lambda m: m["channel"] == "ticker" and m["events"][0]["type"] == "update")
        heartbeats(ws, 2)
        tickers = [t["product_id"] for m in messages if m["channel"] == "ticker" and m["events"][0]["type"] == "update"
                   for t in m["events"][0]["tickers"]]
        assert tickers == [ETH_PERP]


@pytest.mark.parametrize(("mode", "code"), [("abort", 1006), ("close", 1011)])
def test_drop_all_connections(double: DoubleHandle, mode: str, code: int) -> None:
    with open_ws(double) as ws:
        subscribe(ws, "heartbeats")
        heartbeats(ws, 1)
        assert double.control.ws_drop(mode=mode)["dropped"] == 1
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=3)
        received = closed.value.rcvd
        assert (received.code if received else 1006) == code


def test_refuse_new_connections_for_a_while(double: DoubleHandle) -> None:
    double.control.ws_refuse(0.7)
    with pytest.raises(InvalidStatus) as refused:
        open_ws(double)
    assert refused.value.response.status_code == 503
    time.sleep(0.8)
    with open_ws(double) as ws:
        subscribe(ws, "heartbeats")
        assert receive(ws)["channel"] == "subscriptions"


def test_heartbeat_counter_gap(double: DoubleHandle) -> None:
    with open_ws(double) as ws:
        subscribe(ws, "heartbeats")
        before = heartbeats(ws, 1)[0]["events"][0]["heartbeat_counter"]
        double.control.ws_heartbeat_gap(3)
        counters = [before] + [b["events"][0]["heartbeat_counter"] for b in heartbeats(ws, 4)]
    steps = [b - a for a, b in itertools.pairwise(counters)]
    assert sorted(steps) == [1, 1, 1, 4]  # three counter values skipped, once


def test_sequence_number_gap(double: DoubleHandle) -> None:
    with open_ws(double) as ws:
        subscribe(ws, "heartbeats")
        before = heartbeats(ws, 1)[-1]["sequence_num"]
        double.control.ws_sequence_gap(5)
        after = [b["sequence_num"] for b in heartbeats(ws, 3)]
    assert after[0] == before + 6 and after[1:] == [before + 7, before + 8]


def test_malformed_messages_get_errors(double: DoubleHandle) -> None:
    with open_ws(double) as ws:
        ws.send("not json")
        assert is_error(receive(ws))
        ws.send(json.dumps({"type": "subscribe", "channel": "level3", "product_ids": []}))
        assert is_error(receive(ws))
        ws.send(json.dumps({"type": "hello", "channel": "heartbeats"}))
        assert is_error(receive(ws))


def test_websocket_events_are_in_the_request_log(double: DoubleHandle, ec_key: GeneratedKey) -> None:
    with open_ws(double, "/ws/user") as ws:
        subscribe(ws, "futures_balance_summary", key=ec_key)
        receive(ws)  # the acknowledgement
        receive(ws)  # the snapshot
    time.sleep(0.1)
    events = [(e["ws"]["event"], e["ws"]["endpoint"]) for e in double.control.requests(method="WS")]
    assert events == [("connect", "user"), ("subscribe", "user"), ("close", "user")]
    subscribed = double.control.requests(method="WS", key=ec_key.name)
    assert subscribed[0]["ws"]["channel"] == "futures_balance_summary"
