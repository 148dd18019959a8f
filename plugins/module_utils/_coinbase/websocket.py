# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Coinbase Advanced Trade WebSocket: subscribe messages, feed health, and a bounded probe.

``FeedMonitor`` is the one place that understands the feed: sequence numbers (one counter per
connection, +1 per message), heartbeat counters and timing, per-product update gaps and
staleness against the SOP's thresholds (5 s: block entries; 30 s: kill switch).
``EndpointProbe`` connects, subscribes within Coinbase's 5 s, listens for a bounded time and
reconnects after a drop, counting disconnects and downtime the way the SOP's alert thresholds
do (``coinbase_ws_probe``, SOP 2 and 8). The stand-in bot uses ``connect``, ``FeedMonitor`` and
``subscribe_message`` for its long-running feed.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any, Callable, Iterable, Optional

try:
    import websockets
    from websockets.asyncio.client import connect as ws_connect

    HAS_WEBSOCKETS = True
    WEBSOCKETS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module through missing_required_lib
    HAS_WEBSOCKETS = False
    WEBSOCKETS_IMPORT_ERROR = exc

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    InputError,
    TransportError,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.tokens import build_ws_jwt

MARKET_DATA_URL = "wss://advanced-trade-ws.coinbase.com"
USER_DATA_URL = "wss://advanced-trade-ws-user.coinbase.com"
SUBSCRIBE_DEADLINE_S = 5.0  # Coinbase disconnects a client that has not subscribed within 5 s
STALE_AFTER_S = 5.0  # SOP 8: block entries, reduce-only, reconnect
CRITICAL_AFTER_S = 30.0  # SOP 8: activate the kill switch
AUTH_CHANNELS = frozenset({"user", "futures_balance_summary"})
NO_PRODUCT_CHANNELS = frozenset({"heartbeats", "futures_balance_summary", "status"})
MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # the SDK's default
MAX_EVENTS_KEPT = 100  # gap and error lists keep the latest; counters keep the totals (long-running bots)
RECONNECT_FIRST_WAIT_S = 0.5
RECONNECT_MAX_WAIT_S = 5.0
ABNORMAL_CLOSE = 1006  # no close frame: the TCP connection was reset


def subscribe_message(channel: str, product_ids: Iterable[str] = (), credentials: Any = None, unsubscribe: bool = False) -> dict:
    """One channel per message, as Coinbase wants; a fresh JWT on each when a key is configured (as the SDK does)."""
    message = {
        "type": "unsubscribe" if unsubscribe else "subscribe",
        "product_ids": [] if channel in NO_PRODUCT_CHANNELS else list(product_ids),
        "channel": channel,
    }
    if credentials is not None:
        message["jwt"] = build_ws_jwt(credentials)
    return message


def _as_int(value: Any) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class FeedMonitor:
    """Feed health from the messages of one or more connections (sequence numbers are per connection)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self.messages = 0
        self.by_channel: dict = {}
        self.sequence_gaps: list = []
        self.heartbeat_gaps: list = []
        self.errors: list = []
        self.auth_failed = False
        self.subscriptions: Optional[dict] = None
        self.last_message_at: Optional[float] = None
        self.max_message_gap_s = 0.0
        self.products: dict = {}
        self.last_heartbeat_counter: Optional[int] = None
        self.heartbeats = 0
        self.last_heartbeat_at: Optional[float] = None
        self.max_heartbeat_interval_s = 0.0
        self.acknowledged_at: Optional[float] = None
        self.missed_messages = 0
        self.missed_heartbeats = 0
        self._last_sequence: Optional[int] = None

    def begin(self, at: float) -> None:
        """Start the clock of every gap at ``at``: silence before the first message counts too."""
        self.started = self.last_message_at = self.last_heartbeat_at = at
        for state in self.products.values():
            state["last_update_at"] = state["last_update_at"] or at

    @staticmethod
    def _keep(events: list, item: Any) -> None:
        events.append(item)
        del events[:-MAX_EVENTS_KEPT]

    def new_connection(self) -> None:
        """Sequence numbers restart on a new connection; so may the heartbeat counter."""
        self._last_sequence = None
        self.last_heartbeat_counter = None

    def watch(self, product_ids: Iterable[str]) -> None:
        for product in product_ids:
            self.products.setdefault(product, {"updates": 0, "last_update_at": None, "max_gap_s": 0.0, "price": None})

    def observe(self, message: dict, at: Optional[float] = None) -> None:
        now = self._clock() if at is None else at
        if message.get("type") == "error":
            text = str(message.get("message") or message.get("reason") or "error")
            self._keep(self.errors, text)
            if "auth" in text.lower():
                self.auth_failed = True
            return
        self.messages += 1
        if self.last_message_at is not None:
            self.max_message_gap_s = max(self.max_message_gap_s, now - self.last_message_at)
        self.last_message_at = now
        channel = message.get("channel") or "unknown"
        self.by_channel[channel] = self.by_channel.get(channel, 0) + 1
        self._check_sequence(_as_int(message.get("sequence_num")))
        events = message.get("events") or []
        if channel == "subscriptions":
            if self.acknowledged_at is None:
                self.acknowledged_at = now
            for event in events:
                self.subscriptions = event.get("subscriptions") or self.subscriptions
        elif channel == "heartbeats":
            self.heartbeats += 1
            self.max_heartbeat_interval_s = max(self.max_heartbeat_interval_s, now - (self.last_heartbeat_at or now))
            self.last_heartbeat_at = now
            for event in events:
                self._check_heartbeat(_as_int(event.get("heartbeat_counter")))
        elif channel in ("ticker", "ticker_batch"):
            for event in events:
                for tick in event.get("tickers") or []:
                    self._update_product(tick.get("product_id"), tick.get("price"), now)

    def _check_sequence(self, sequence: Optional[int]) -> None:
        if sequence is None:
            return
        if self._last_sequence is not None and sequence > self._last_sequence + 1:
            missed = sequence - self._last_sequence - 1
            self.missed_messages += missed
            self._keep(self.sequence_gaps, {"expected": self._last_sequence + 1, "received": sequence, "missed": missed})
        if self._last_sequence is None or sequence > self._last_sequence:
            self._last_sequence = sequence

    def _check_heartbeat(self, counter: Optional[int]) -> None:
        if counter is None:
            return
        last = self.last_heartbeat_counter
        if last is not None and counter > last + 1:
            self.missed_heartbeats += counter - last - 1
            self._keep(self.heartbeat_gaps, {"expected": last + 1, "received": counter, "missed": counter - last - 1})
        self.last_heartbeat_counter = counter

    def _update_product(self, product_id: Optional[str], price: Any, now: float) -> None:
        if not product_id:
            return
        state = self.products.setdefault(product_id, {"updates": 0, "last_update_at": None, "max_gap_s": 0.0, "price": None})
        if state["last_update_at"] is not None:
            state["max_gap_s"] = max(state["max_gap_s"], now - state["last_update_at"])
        state["last_update_at"] = now
        state["updates"] += 1
        state["price"] = price

    def data_age(self, product_id: str, now: Optional[float] = None) -> float:
        """Seconds since the product's last update (since monitoring began when none arrived)."""
        now = self._clock() if now is None else now
        state = self.products.get(product_id) or {}
        return now - (state.get("last_update_at") or self.started)

    def report(self, now: Optional[float] = None, stale_after: float = STALE_AFTER_S, critical_after: float = CRITICAL_AFTER_S) -> dict:
        now = self._clock() if now is None else now
        products = {}
        for product_id, state in sorted(self.products.items()):
            age = self.data_age(product_id, now)
            products[product_id] = {
                "updates": state["updates"],
                "last_price": state["price"],
                "data_age_s": round(age, 3),
                # A feed that stalls at the end of the window is a gap too.
                "max_gap_s": round(max(state["max_gap_s"], age), 3),
                "stale": age > stale_after,
                "critical": age > critical_after,
            }
        feed_age = now - (self.last_message_at or self.started)
        return {
            "messages": self.messages,
            "by_channel": dict(self.by_channel),
            "products": products,
            "max_message_gap_s": round(max(self.max_message_gap_s, feed_age), 3),
            "heartbeat_counter": self.last_heartbeat_counter,
            "heartbeat_gaps": self.heartbeat_gaps,
            "sequence_gaps": self.sequence_gaps,
            "missed_messages": self.missed_messages,
            "missed_heartbeats": self.missed_heartbeats,
            "errors": self.errors,
            "auth_failed": self.auth_failed,
            "stale": any(p["stale"] for p in products.values()) or feed_age > stale_after,
            "critical": any(p["critical"] for p in products.values()) or feed_age > critical_after,
        }


def ssl_context(ca_bundle: Optional[str] = None, validate_certs: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def connect(url: str, context: Optional[ssl.SSLContext], open_timeout: float, **kwargs: Any) -> Any:
    """Open a connection with the settings every caller needs (TLS context, timeouts, the SDK's message size)."""
    if not HAS_WEBSOCKETS:
        raise TransportError("The Python library 'websockets' is not installed.")
    if not url.startswith(("wss://", "ws://")):
        raise InputError("A WebSocket URL starts with wss://, got %r." % url)
    return await ws_connect(url, ssl=context if url.startswith("wss://") else None, open_timeout=open_timeout,
                            close_timeout=1, max_size=MAX_MESSAGE_BYTES, **kwargs)


class EndpointProbe:
    """Connect, subscribe (within Coinbase's 5 s), listen until the deadline, reconnect after a drop."""

    def __init__(self, url: str, channels: list, product_ids: list, credentials: Any, context: Any,
                 connect_timeout: float, reconnect: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.channels = channels
        self.product_ids = product_ids
        self.credentials = credentials
        self.context = context
        self.connect_timeout = connect_timeout
        self.reconnect = reconnect
        self._clock = clock
        self.monitor = FeedMonitor(clock)
        self.monitor.watch(product_ids if "ticker" in channels else [])
        self.connections: list = []
        self.disconnects: list = []
        self.connect_errors: list = []
        self.down_since: Optional[float] = None
        self.downtime_s = 0.0
        self.started = clock()

    def _elapsed(self) -> float:
        return round(self._clock() - self.started, 3)

    async def run(self, listen_s: float) -> None:
        self.started = self._clock()
        self.monitor.begin(self.started)
        deadline = self.started + listen_s
        wait = RECONNECT_FIRST_WAIT_S
        while self._clock() < deadline:
            connection = await self._connect(deadline)
            if connection is not None:
                wait = RECONNECT_FIRST_WAIT_S
                await self._listen(connection, deadline)
            elif self.down_since is None and not self.connections:
                self.down_since = self.started  # never up: down since the start
            if self._clock() >= deadline:
                break
            if not self.reconnect or self.monitor.auth_failed:
                # Stay down for the rest of the window, so ages and downtime cover what was asked.
                await asyncio.sleep(max(0.0, deadline - self._clock()))
                break
            await asyncio.sleep(max(0.0, min(wait, deadline - self._clock())))
            wait = min(wait * 2, RECONNECT_MAX_WAIT_S)
        if self.down_since is not None:
            self.downtime_s += max(0.0, min(self._clock(), deadline) - self.down_since)

    async def _connect(self, deadline: float) -> Any:
        began = self._clock()
        timeout = max(0.1, min(self.connect_timeout, deadline - began))
        try:
            connection = await asyncio.wait_for(connect(self.url, self.context, timeout), timeout=timeout + 0.5)
        except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as exc:
            self.connect_errors.append({"at_s": self._elapsed(), "error": "%s: %s" % (type(exc).__name__, exc)})
            return None
        opened = self._clock()
        if self.down_since is not None:
            self.downtime_s += opened - self.down_since
            self.down_since = None
        self.monitor.new_connection()
        self.monitor.acknowledged_at = None
        self.connections.append({"at_s": self._elapsed(), "connect_ms": round((opened - began) * 1000.0, 1),
                                 "subscribe_sent_ms": None, "subscribe_ack_ms": None, "_opened": opened})
        return connection

    async def _listen(self, connection: Any, deadline: float) -> None:
        record = self.connections[-1]
        try:
            for channel in self.channels:
                await connection.send(json.dumps(subscribe_message(channel, self.product_ids, self.credentials)))
            record["subscribe_sent_ms"] = round((self._clock() - record["_opened"]) * 1000.0, 1)
            while True:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                try:
                    raw = await asyncio.wait_for(connection.recv(), timeout=remaining)
                except asyncio.TimeoutError:
                    break
                try:
                    message = json.loads(raw)
                except ValueError:
                    self.monitor.errors.append("a message that is not JSON")
                    continue
                if isinstance(message, dict):
                    self.monitor.observe(message)
                    if record["subscribe_ack_ms"] is None and self.monitor.acknowledged_at is not None:
                        record["subscribe_ack_ms"] = round((self.monitor.acknowledged_at - record["_opened"]) * 1000.0, 1)
        except websockets.ConnectionClosed as exc:
            frame = getattr(exc, "rcvd", None)
            self.disconnects.append({
                "at_s": self._elapsed(),
                "code": getattr(frame, "code", None) or ABNORMAL_CLOSE,
                "reason": getattr(frame, "reason", "") or "",
                "after_connected_s": round(self._clock() - record["_opened"], 3),
            })
            self.down_since = self._clock()
        finally:
            await connection.close()

    def report(self, stale_after: float, critical_after: float) -> dict:
        now = self._clock()
        feed = self.monitor.report(now=now, stale_after=stale_after, critical_after=critical_after)
        products = {}
        for product_id, state in feed["products"].items():
            products[product_id] = {
                "updates": state["updates"],
                "last_price": state["last_price"],
                "data_age_s": state["data_age_s"],
                "max_gap_s": state["max_gap_s"],
                "stale": state["max_gap_s"] > stale_after,
                "critical": state["max_gap_s"] > critical_after,
                "stale_now": state["stale"],
            }
        heartbeat_age = now - (self.monitor.last_heartbeat_at or self.started)
        max_gap = feed["max_message_gap_s"]
        connections = [{k: v for k, v in c.items() if not k.startswith("_")} for c in self.connections]
        first = connections[0] if connections else {}
        return {
            "url": self.url,
            "channels": list(self.channels),
            "connected": bool(connections),
            "connect_ms": first.get("connect_ms"),
            "subscribe_sent_ms": first.get("subscribe_sent_ms"),
            "subscribe_ack_ms": first.get("subscribe_ack_ms"),
            "subscribed_within_5s": bool(first) and first.get("subscribe_sent_ms") is not None
            and first["subscribe_sent_ms"] < SUBSCRIBE_DEADLINE_S * 1000.0,
            "connections": connections,
            "connect_errors": self.connect_errors,
            "disconnects": self.disconnects,
            "downtime_s": round(self.downtime_s, 3),
            "messages": feed["messages"],
            "by_channel": feed["by_channel"],
            "products": products,
            "heartbeat": {
                "received": self.monitor.heartbeats,
                "counter": feed["heartbeat_counter"],
                "gaps": feed["heartbeat_gaps"],
                "max_interval_s": round(max(self.monitor.max_heartbeat_interval_s, heartbeat_age), 3),
            },
            "sequence_gaps": feed["sequence_gaps"],
            "max_message_gap_s": max_gap,
            "errors": feed["errors"],
            "auth_failed": feed["auth_failed"],
            "stale": max_gap > stale_after or any(p["stale"] for p in products.values()),
            "critical": max_gap > critical_after or any(p["critical"] for p in products.values()),
        }


def run_probes(probes: list, listen_s: float) -> None:
    """Run every endpoint's probe at the same time for ``listen_s`` seconds."""

    async def _all() -> None:
        await asyncio.gather(*(probe.run(listen_s) for probe in probes))

    asyncio.run(_all())
