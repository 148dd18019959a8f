# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A bounded health probe of Coinbase's WebSocket feeds (SOP 2 ``ws_probe.py --auth``, SOP 8).

Builds on ``websocket.py`` (``FeedMonitor``, ``subscribe_message``, ``ssl_context``) and adds
what a probe needs beyond its one-connection ``probe()``: several endpoints at once, the time
until the server acknowledges the subscription, heartbeat timing, staleness at any moment of
the window (not only at its end), and reconnecting after a drop so that disconnects and
downtime are counted the way the SOP's alert thresholds count them.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable, Optional

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import websocket as ws_mod

try:
    import websockets
except ImportError:  # pragma: no cover - reported by the module through missing_required_lib
    websockets = None

RECONNECT_FIRST_WAIT_S = 0.5
RECONNECT_MAX_WAIT_S = 5.0
ABNORMAL_CLOSE = 1006  # no close frame: the TCP connection was reset


class ProbeMonitor(ws_mod.FeedMonitor):
    """FeedMonitor plus heartbeat timing and the moment of the first subscription acknowledgement."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.heartbeats = 0
        self.last_heartbeat_at: Optional[float] = None
        self.max_heartbeat_interval_s = 0.0
        self.acknowledged_at: Optional[float] = None

    def begin(self, at: float) -> None:
        """Start the clock of every gap at ``at``: silence before the first message counts too."""
        self.started = self.last_message_at = self.last_heartbeat_at = at
        for state in self.products.values():
            state["last_update_at"] = state["last_update_at"] or at

    def observe(self, message: dict, at: Optional[float] = None) -> None:
        now = self._clock() if at is None else at
        channel = message.get("channel")
        if channel == "heartbeats":
            self.heartbeats += 1
            self.max_heartbeat_interval_s = max(self.max_heartbeat_interval_s, now - (self.last_heartbeat_at or now))
            self.last_heartbeat_at = now
        elif channel == "subscriptions" and self.acknowledged_at is None:
            self.acknowledged_at = now
        super().observe(message, at=now)


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
        self.monitor = ProbeMonitor(clock)
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
            connection = await asyncio.wait_for(
                websockets.connect(self.url, ssl=self.context, open_timeout=timeout, max_size=ws_mod.MAX_MESSAGE_BYTES,
                                   close_timeout=1),
                timeout=timeout + 0.5,
            )
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
                await connection.send(json.dumps(ws_mod.subscribe_message(channel, self.product_ids, self.credentials)))
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
            and first["subscribe_sent_ms"] < ws_mod.SUBSCRIBE_DEADLINE_S * 1000.0,
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
