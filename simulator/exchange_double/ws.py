"""The WebSocket feeds: heartbeats, ticker, user and futures_balance_summary.

Protocol as Coinbase documents it: the client must subscribe within 5 s; one channel per
(un)subscribe message, with an optional ``jwt``; the server acknowledges on the
``subscriptions`` channel; every message carries ``channel``, ``client_id``, ``timestamp``,
``sequence_num`` (per connection, +1 per message) and ``events``. The user endpoint (host
``advanced-trade-ws-user.*`` or path ``/ws/user``) requires a JWT on every subscription.

Each connection has its own queue and sender task, so one slow or stalled client never holds
up the others, and fault injection (stall, gaps, drop) happens at the point of sending.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from exchange_double import views
from exchange_double.auth import ApiKey, AuthError
from exchange_double.errors import json_error
from exchange_double.models import WORKING_STATUSES, Order, Product
from exchange_double.util import compact_json, rfc3339_nanos

if TYPE_CHECKING:
    from exchange_double.context import Double

log = logging.getLogger(__name__)

MARKET_CHANNELS = frozenset({"heartbeats", "ticker", "user", "futures_balance_summary"})
USER_ENDPOINT_CHANNELS = frozenset({"heartbeats", "user", "futures_balance_summary"})
AUTH_CHANNELS = frozenset({"user", "futures_balance_summary"})
USER_SNAPSHOT_BATCH = 50
QUEUE_LIMIT = 10000
AUTH_FAILURE = "authentication failure"


class _Refused(Exception):
    """A (un)subscribe message was refused; the client has already been told."""


@dataclass(eq=False)
class Connection:
    """One client socket and what it is subscribed to."""

    id: int
    ws: web.WebSocketResponse
    request: web.Request
    endpoint: str
    client_ip: str | None
    # (channel, events, product_id); channel None = a bare message such as an error.
    queue: asyncio.Queue[tuple[str | None, Any, str | None]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )
    next_sequence: int = 0
    pending_sequence_skip: int = 0
    # channel -> product ids ("*" = every product, for channels without products)
    subscriptions: dict[str, set[str]] = field(default_factory=dict)
    # The key that subscribed the user / futures_balance_summary channels (its portfolio).
    user_key: ApiKey | None = None
    subscribed: bool = False
    evicted: bool = False

    def take_sequence(self) -> int:
        if self.pending_sequence_skip:
            self.next_sequence += self.pending_sequence_skip
            self.pending_sequence_skip = 0
        number = self.next_sequence
        self.next_sequence += 1
        return number

    def listing(self) -> dict[str, list[str]]:
        """Subscriptions as the acknowledgement shows them (channel -> products, [] = all)."""
        return {channel: sorted(products - {"*"}) for channel, products in sorted(self.subscriptions.items())}

    def wants(self, channel: str, product_id: str | None = None) -> bool:
        products = self.subscriptions.get(channel)
        if not products:
            return False
        return product_id is None or "*" in products or product_id in products


class Hub:
    """Accepts WebSocket connections and fans exchange events out to them."""

    def __init__(self, double: Double) -> None:
        self._double = double
        self.connections: dict[int, Connection] = {}
        self._ids = itertools.count(1)
        self.heartbeat_counter = 0
        self._pending_heartbeat_skip = 0
        self._started = time.monotonic()
        self._dirty_portfolios: set[str] = set()
        self._flush_scheduled = False

    # ---------------------------------------------------------------- connections
    async def handle(self, request: web.Request) -> web.StreamResponse:
        request["logged_by_hub"] = True  # WebSocket events get their own request-log entries
        double = self._double
        endpoint = "user" if _is_user_endpoint(request) else "market"
        if double.faults.ws.refusing():
            self._log(request, None, "refused", status=503, fault="ws_refuse")
            return json_error(503, "WebSocket connections are being refused (injected fault)")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20, compress=False)
        if not ws.can_prepare(request).ok:
            self._log(request, None, "not_an_upgrade", status=400)
            return json_error(400, "this path only accepts WebSocket upgrades")
        await ws.prepare(request)
        conn = Connection(next(self._ids), ws, request, endpoint, request.remote)
        self.connections[conn.id] = conn
        self._log(request, conn, "connect", status=101)
        sender = asyncio.create_task(self._sender(conn))
        watchdog = asyncio.create_task(self._subscribe_deadline(conn))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(conn, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.pop(conn.id, None)
            watchdog.cancel()
            sender.cancel()
            self._log(request, conn, "close", status=101, close_code=ws.close_code)
        return ws

    async def _subscribe_deadline(self, conn: Connection) -> None:
        await asyncio.sleep(self._double.config.ws_subscribe_timeout)
        if not conn.subscribed and not conn.ws.closed:
            self._log(conn.request, conn, "subscribe_timeout", status=408)
            await conn.ws.close(code=1008, message=b"no subscribe message received in time")

    async def _sender(self, conn: Connection) -> None:
        while True:
            channel, events, product_id = await conn.queue.get()
            # Looked up per message: clearing faults replaces the fault state object.
            if self._double.faults.ws.stalled(product_id):
                continue  # a stalled feed sends nothing and keeps the socket open
            if channel is None:
                message = events  # errors go out bare, without envelope or sequence number
            else:
                message = {
                    "channel": channel,
                    "client_id": "",
                    "timestamp": rfc3339_nanos(self._double.clock.now()),
                    "sequence_num": conn.take_sequence(),
                    "events": events,
                }
            try:
                await conn.ws.send_str(compact_json(message))
            except (ConnectionError, RuntimeError):
                return

    def _enqueue(self, conn: Connection, channel: str | None, events: Any, product_id: str | None = None) -> None:
        try:
            conn.queue.put_nowait((channel, events, product_id))
        except asyncio.QueueFull:
            # A client that cannot keep up is disconnected, as real feeds do.
            if not conn.evicted:
                conn.evicted = True
                log.warning("connection %s fell %s messages behind; closing it", conn.id, QUEUE_LIMIT)
                asyncio.get_running_loop().create_task(conn.ws.close(code=1008, message=b"slow consumer"))

    # ---------------------------------------------------------------- subscribe protocol
    def _on_text(self, conn: Connection, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            self._error(conn, "malformed JSON message")
            return
        if not isinstance(message, dict):
            self._error(conn, "message must be a JSON object")
            return
        kind, channel = message.get("type"), message.get("channel")
        product_ids = message.get("product_ids") or []
        if kind not in ("subscribe", "unsubscribe"):
            self._error(conn, f"unknown message type {kind!r}; expected subscribe or unsubscribe")
            return
        allowed = USER_ENDPOINT_CHANNELS if conn.endpoint == "user" else MARKET_CHANNELS
        if channel not in allowed:
            self._error(conn, f"Failed to subscribe: channel {channel!r} is not available on this endpoint")
            return
        if not isinstance(product_ids, list) or not all(isinstance(p, str) for p in product_ids):
            self._error(conn, "product_ids must be a list of strings")
            return
        try:
            key = self._authenticate(conn, message, channel, kind)
        except _Refused:
            return
        if kind == "subscribe":
            self._subscribe(conn, channel, product_ids, key)
        else:
            self._unsubscribe(conn, channel, product_ids)

    def _authenticate(self, conn: Connection, message: dict[str, Any], channel: str, kind: str) -> ApiKey | None:
        """The key behind the message's JWT (None when none is sent or needed).

        Raises _Refused after telling the client, when a JWT is missing, invalid or lacks scope.
        """
        token = message.get("jwt")
        needs_key = channel in AUTH_CHANNELS or conn.endpoint == "user"
        if not token:
            if needs_key:
                self._log(conn.request, conn, kind, status=401, channel=channel, auth_error="no jwt in message")
                self._error(conn, AUTH_FAILURE)
                raise _Refused
            return None
        try:
            key = self._double.verifier.verify(str(token), accepted_uris=None)
        except AuthError as exc:
            self._log(conn.request, conn, kind, status=401, channel=channel, auth_error=exc.reason,
                      claimed_key=exc.claimed_key)
            self._error(conn, AUTH_FAILURE)
            raise _Refused from None
        if needs_key and not key.can_view:
            self._log(conn.request, conn, kind, status=403, channel=channel, key=key.name)
            self._error(conn, "permission denied: the key lacks the view scope")
            raise _Refused
        return key

    def _subscribe(self, conn: Connection, channel: str, product_ids: list[str], key: ApiKey | None) -> None:
        exchange = self._double.exchange
        wanted = set(product_ids)
        if channel == "ticker":
            unknown = sorted(p for p in wanted if p not in exchange.products)
            if unknown:
                self._error(conn, f"Failed to subscribe: unknown product_ids {', '.join(unknown)}")
                wanted -= set(unknown)
            if not wanted:
                return
        elif not wanted:
            wanted = {"*"}
        if channel in AUTH_CHANNELS:
            conn.user_key = key
        conn.subscriptions.setdefault(channel, set()).update(wanted)
        conn.subscribed = True
        self._log(conn.request, conn, "subscribe", status=200, channel=channel,
                  product_ids=sorted(wanted - {"*"}), key=key.name if key else None)
        self._acknowledge(conn)
        if channel == "ticker":
            tickers = [views.ticker(exchange.products[p], exchange) for p in sorted(wanted)]
            self._enqueue(conn, "ticker", [{"type": "snapshot", "tickers": tickers}])
        elif channel == "user":
            self._user_snapshot(conn)
        elif channel == "futures_balance_summary":
            self._balance_message(conn, "snapshot")

    def _unsubscribe(self, conn: Connection, channel: str, product_ids: list[str]) -> None:
        current = conn.subscriptions.get(channel, set())
        if product_ids:
            current.difference_update(product_ids)
        else:
            current.clear()
        if not current:
            conn.subscriptions.pop(channel, None)
        self._log(conn.request, conn, "unsubscribe", status=200, channel=channel, product_ids=sorted(product_ids))
        self._acknowledge(conn)

    def _acknowledge(self, conn: Connection) -> None:
        self._enqueue(conn, "subscriptions", [{"subscriptions": conn.listing()}])

    def _error(self, conn: Connection, message: str) -> None:
        """Errors are sent bare (no envelope), as Coinbase does: ``{"type":"error",...}``."""
        self._enqueue(conn, None, {"type": "error", "message": message})

    # ---------------------------------------------------------------- user and balance channels
    def _user_portfolio_products(self, conn: Connection) -> set[str] | None:
        products = conn.subscriptions.get("user", set())
        return None if not products or "*" in products else products

    def _user_snapshot(self, conn: Connection) -> None:
        exchange = self._double.exchange
        assert conn.user_key is not None
        portfolio = exchange.portfolios.get(conn.user_key.portfolio_uuid)
        if portfolio is None:
            return
        only = self._user_portfolio_products(conn)
        orders = [
            views.ws_order(o, exchange)
            for o in exchange.orders_of(portfolio, WORKING_STATUSES)
            if only is None or o.product_id in only
        ]
        positions = views.ws_positions(portfolio, exchange)
        batches = [orders[i:i + USER_SNAPSHOT_BATCH] for i in range(0, len(orders), USER_SNAPSHOT_BATCH)] or [[]]
        for index, batch in enumerate(batches):
            event: dict[str, Any] = {"type": "snapshot", "orders": batch}
            if index == 0:
                event["positions"] = positions
            self._enqueue(conn, "user", [event])

    def _balance_message(self, conn: Connection, kind: str) -> None:
        exchange = self._double.exchange
        assert conn.user_key is not None
        portfolio = exchange.portfolios.get(conn.user_key.portfolio_uuid)
        if portfolio is not None:
            summary = views.ws_balance_summary(portfolio, exchange)
            self._enqueue(conn, "futures_balance_summary", [{"type": kind, "fcm_balance_summary": summary}])

    # ---------------------------------------------------------------- exchange events (listener)
    def order_changed(self, order: Order) -> None:
        payload: dict[str, Any] | None = None
        for conn in self.connections.values():
            key = conn.user_key
            if key is None or key.portfolio_uuid != order.portfolio_uuid or not conn.wants("user", order.product_id):
                continue
            if payload is None:
                payload = views.ws_order(order, self._double.exchange)
            self._enqueue(conn, "user", [{"type": "update", "orders": [payload]}])

    def portfolio_changed(self, portfolio_uuid: str) -> None:
        # Coalesced: a batch cancel of 100 orders sends one positions/balance update, not 100.
        self._dirty_portfolios.add(portfolio_uuid)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_portfolios)

    def _flush_portfolios(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty_portfolios = self._dirty_portfolios, set()
        exchange = self._double.exchange
        for conn in self.connections.values():
            key = conn.user_key
            if key is None or key.portfolio_uuid not in dirty:
                continue
            portfolio = exchange.portfolios.get(key.portfolio_uuid)
            if portfolio is None:
                continue
            if conn.wants("user"):
                positions = views.ws_positions(portfolio, exchange)
                self._enqueue(conn, "user", [{"type": "update", "orders": [], "positions": positions}])
            if conn.wants("futures_balance_summary"):
                self._balance_message(conn, "update")

    def prices_changed(self, products: list[Product]) -> None:
        exchange = self._double.exchange
        for product in products:
            payload: dict[str, Any] | None = None
            for conn in self.connections.values():
                if conn.wants("ticker", product.product_id):
                    if payload is None:
                        payload = views.ticker(product, exchange)
                    self._enqueue(conn, "ticker", [{"type": "update", "tickers": [payload]}], product.product_id)

    # ---------------------------------------------------------------- heartbeats
    async def heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._double.config.heartbeat_interval)
            self.heartbeat_counter += 1 + self._pending_heartbeat_skip
            self._pending_heartbeat_skip = 0
            event = {"current_time": self._go_time(), "heartbeat_counter": self.heartbeat_counter}
            for conn in self.connections.values():
                if conn.wants("heartbeats"):
                    self._enqueue(conn, "heartbeats", [event])

    def _go_time(self) -> str:
        """Heartbeat ``current_time`` in Go's time.String() format, as Coinbase sends it."""
        now = self._double.clock.now()
        stamp = rfc3339_nanos(now)  # 2026-11-27T13:42:22.123456789Z
        uptime = time.monotonic() - self._started
        return f"{stamp[:10]} {stamp[11:-1]} +0000 UTC m=+{uptime:.9f}"

    # ---------------------------------------------------------------- faults acting on live sockets
    async def drop_all(self, mode: str = "abort", code: int = 1011) -> int:
        """Drop every connection: ``abort`` resets TCP (no close frame), ``close`` sends one."""
        connections = list(self.connections.values())
        for conn in connections:
            if mode == "abort":
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()
            else:
                await conn.ws.close(code=code, message=b"dropped by the exchange double")
        return len(connections)

    def heartbeat_gap(self, skip: int) -> None:
        self._pending_heartbeat_skip += skip

    def sequence_gap(self, skip: int) -> int:
        for conn in self.connections.values():
            conn.pending_sequence_skip += skip
        return len(self.connections)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "id": conn.id,
                "endpoint": conn.endpoint,
                "client_ip": conn.client_ip,
                "key": conn.user_key.name if conn.user_key else None,
                "subscriptions": conn.listing(),
                "next_sequence_num": conn.next_sequence,
            }
            for conn in self.connections.values()
        ]

    # ---------------------------------------------------------------- request log
    def _log(self, request: web.Request, conn: Connection | None, event: str, *, status: int,
             channel: str | None = None, product_ids: list[str] | None = None, key: str | None = None,
             auth_error: str | None = None, claimed_key: str | None = None, fault: str | None = None,
             close_code: int | None = None) -> None:
        endpoint = conn.endpoint if conn else ("user" if _is_user_endpoint(request) else "market")
        details: dict[str, Any] = {"event": event, "endpoint": endpoint}
        if conn is not None:
            details["connection"] = conn.id
        if close_code is not None:
            details["close_code"] = close_code
        if channel is not None:
            details["channel"] = channel
        if product_ids is not None:
            details["product_ids"] = product_ids
        self._double.request_log.record(
            method="WS",
            path=request.path,
            query=request.query_string,
            status=status,
            key=key,
            client_ip=request.remote,
            duration_ms=0.0,
            auth_error=auth_error,
            claimed_key=claimed_key,
            fault=fault,
            ws=details,
        )


def _is_user_endpoint(request: web.Request) -> bool:
    host = (request.host or "").lower()
    return request.path.rstrip("/") == "/ws/user" or host.startswith("advanced-trade-ws-user.")

