# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Coinbase Advanced Trade WebSocket: subscribe messages, feed health, and a bounded probe.

``FeedMonitor`` is the one place that understands the feed: sequence numbers (one counter per
connection, +1 per message), heartbeat counters, per-product update gaps and staleness against
the SOP's thresholds (5 s: block entries; 30 s: kill switch). The stand-in bot and
``coinbase_ws_probe`` both use it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any, Callable, Iterable, Optional

try:
    import websockets

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
        self._last_sequence: Optional[int] = None

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
            self.errors.append(text)
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
            for event in events:
                self.subscriptions = event.get("subscriptions") or self.subscriptions
        elif channel == "heartbeats":
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
            self.sequence_gaps.append({"expected": self._last_sequence + 1, "received": sequence, "missed": sequence - self._last_sequence - 1})
        if self._last_sequence is None or sequence > self._last_sequence:
            self._last_sequence = sequence

    def _check_heartbeat(self, counter: Optional[int]) -> None:
        if counter is None:
            return
        last = self.last_heartbeat_counter
        if last is not None and counter > last + 1:
            self.heartbeat_gaps.append({"expected": last + 1, "received": counter, "missed": counter - last - 1})
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


async def _probe(url: str, channels: list, product_ids: list, credentials: Any, listen_s: float,
                 context: Optional[ssl.SSLContext], connect_timeout: float, monitor: FeedMonitor) -> dict:
    outcome = {"url": url, "connected": False, "connect_ms": None, "subscribe_ms": None, "closed": None}
    started = time.monotonic()
    try:
        connection = await asyncio.wait_for(
            websockets.connect(url, ssl=context, open_timeout=connect_timeout, max_size=MAX_MESSAGE_BYTES, close_timeout=2),
            timeout=connect_timeout + 1,
        )
    except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as exc:
        outcome["error"] = "%s: %s" % (type(exc).__name__, exc)
        return outcome
    outcome["connected"] = True
    outcome["connect_ms"] = round((time.monotonic() - started) * 1000.0, 1)
    monitor.new_connection()
    opened = time.monotonic()
    try:
        for channel in channels:
            await connection.send(json.dumps(subscribe_message(channel, product_ids, credentials)))
        outcome["subscribe_ms"] = round((time.monotonic() - opened) * 1000.0, 1)
        deadline = time.monotonic() + listen_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                raw = await asyncio.wait_for(connection.recv(), timeout=remaining)
            except asyncio.TimeoutError:
                break
            try:
                message = json.loads(raw)
            except ValueError:
                monitor.errors.append("message that is not JSON")
                continue
            if isinstance(message, dict):
                monitor.observe(message)
    except websockets.ConnectionClosed as exc:
        code = getattr(getattr(exc, "rcvd", None), "code", None) or getattr(exc, "code", None)
        reason = getattr(getattr(exc, "rcvd", None), "reason", None) or getattr(exc, "reason", "")
        outcome["closed"] = {"code": code, "reason": reason, "after_s": round(time.monotonic() - opened, 3)}
    finally:
        await connection.close()
    return outcome


def probe(url: str, channels: list, product_ids: list, credentials: Any = None, listen_s: float = 10.0,
          ca_bundle: Optional[str] = None, validate_certs: bool = True, connect_timeout: float = 10.0,
          monitor: Optional[FeedMonitor] = None) -> tuple:
    """Connect, subscribe within the 5 s rule, listen for ``listen_s`` seconds. Returns (connection outcome, FeedMonitor)."""
    if not HAS_WEBSOCKETS:
        raise TransportError("The Python library 'websockets' is not installed on the controller.")
    if not url.startswith(("wss://", "ws://")):
        raise InputError("A WebSocket URL starts with wss://, got %r." % url)
    if listen_s <= 0 or connect_timeout <= 0:
        raise InputError("listen time and connect timeout must be greater than 0 seconds.")
    needs_key = [c for c in channels if c in AUTH_CHANNELS]
    if needs_key and credentials is None:
        raise InputError("The %s channel(s) need an API key (a JWT on the subscribe message)." % ", ".join(needs_key))
    monitor = monitor or FeedMonitor()
    monitor.watch(p for p in product_ids)
    context = ssl_context(ca_bundle, validate_certs) if url.startswith("wss://") else None
    outcome = asyncio.run(_probe(url, channels, product_ids, credentials, listen_s, context, connect_timeout, monitor))
    return outcome, monitor
