"""trading-bot-perpetuals: market data over the WebSocket, data age, /var/lib/trading-bot/market.json.

What it lets an operator (and the tests) observe, per the SOP:
- section 2: `connect` / `disconnect` / `error` / `reconnect` lines in logs/websocket.log, the
  reconnect backoff (1 s doubling to 60 s), disconnects in the last hour;
- section 8: the age of each product's data, a `stale` warning when it passes 5 s (critical
  at 30 s), sequence gaps, and a reconnect when the feed goes silent;
- section 3 / 1: at start it checks its REST key (GET /key_permissions) and logs the outcome
  with the key's name only.
market.json is rewritten atomically every second; the order service blocks entries from it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import signal
import threading
import time
from typing import Any, Optional

import websockets

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import errors as cb_errors
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.websocket import (
    CRITICAL_AFTER_S,
    STALE_AFTER_S,
    FeedMonitor,
    connect as ws_connect,
    ssl_context,
    subscribe_message,
)

from trading_bot.common import (
    BACKOFF,
    Config,
    describe_error,
    load_credentials,
    make_client,
    setup_logger,
    utc_iso,
    write_json_atomic,
)

SUBSCRIBE_CHANNELS = ("heartbeats", "ticker")
SILENT_RECONNECT_S = 10.0  # no message at all (heartbeats included) for this long: the feed stalled
STALE_LOG_EVERY_S = 10.0
WRITE_EVERY_S = 1.0


class MarketState:
    """What the strategy knows about the market and how old it is.

    Parsing the feed (sequence and heartbeat gaps, per-product updates) is the collection's
    ``FeedMonitor``; this adds what a long-running bot needs on top: connection history, log
    lines when something changes, and the snapshot that becomes market.json.
    """

    def __init__(self, products: list, clock: Any = time.time) -> None:
        self.clock = clock
        self.feed = FeedMonitor(clock=clock)  # wall clock: market.json carries epoch times
        self.feed.watch(products)
        self.product_ids = list(products)
        self.logged = {p: {"stale_since": None, "last_log": 0.0, "critical": False} for p in products}
        self.connected = False
        self.connected_since: Optional[float] = None
        self.connects = 0
        self.disconnects: collections.deque = collections.deque()
        self.sequence_gaps = 0
        self.heartbeat_gaps = 0
        self.auth: dict = {"checked": False}

    # -- feed events
    def on_connect(self) -> None:
        self.connected, self.connected_since = True, self.clock()
        self.connects += 1
        self.feed.new_connection()
        self.feed.last_message_at = self.connected_since

    def on_disconnect(self) -> None:
        if self.connected:
            self.disconnects.append(self.clock())
        self.connected = False

    def on_message(self, message: dict) -> list:
        """Apply one feed message; returns (level, text) lines worth logging."""
        self.feed.observe(message)
        notes = []
        # The monitor keeps every gap; a bot that runs for weeks logs and counts them instead.
        for gap in self.feed.sequence_gaps:
            notes.append((logging.WARNING, "sequence gap: expected %(expected)d, got %(received)d (%(missed)d messages lost)" % gap))
        for gap in self.feed.heartbeat_gaps:
            notes.append((logging.WARNING, "heartbeat gap: expected %(expected)d, got %(received)d" % gap))
        for text in self.feed.errors:
            notes.append((logging.ERROR, "error from exchange: %s" % text[:200]))
        self.sequence_gaps += len(self.feed.sequence_gaps)
        self.heartbeat_gaps += len(self.feed.heartbeat_gaps)
        del self.feed.sequence_gaps[:], self.feed.heartbeat_gaps[:], self.feed.errors[:]
        return notes

    def _age(self, product_id: str, now: float) -> Optional[float]:
        updated = self.feed.products[product_id]["last_update_at"]
        return None if updated is None else now - updated

    # -- ages
    def staleness(self) -> list:
        """Log lines for products that went stale, stayed stale, or recovered."""
        now = self.clock()
        notes = []
        for pid in self.product_ids:
            age, log = self._age(pid, now), self.logged[pid]
            if age is None or age > STALE_AFTER_S:
                if log["stale_since"] is None:
                    log["stale_since"], log["last_log"] = now, 0.0
                if now - log["last_log"] >= STALE_LOG_EVERY_S:
                    log["last_log"] = now
                    notes.append((logging.WARNING, "stale data for %s: %s (entries blocked)"
                                  % (pid, "no update yet" if age is None else "%.1fs old" % age)))
                if age is not None and age > CRITICAL_AFTER_S and not log["critical"]:
                    log["critical"] = True
                    notes.append((logging.CRITICAL, "critical staleness for %s: %.1fs old (SOP 8: kill switch territory)" % (pid, age)))
            elif log["stale_since"] is not None:
                if self.feed.products[pid]["updates"] <= 1:
                    notes.append((logging.INFO, "first data for %s: price %s" % (pid, self.feed.products[pid]["price"])))
                else:
                    notes.append((logging.INFO, "fresh data for %s again after %.1fs stale" % (pid, now - log["stale_since"])))
                log["stale_since"], log["critical"] = None, False
        return notes

    def snapshot(self) -> dict:
        now = self.clock()
        while self.disconnects and now - self.disconnects[0] > 3600:
            self.disconnects.popleft()
        products = {}
        for pid in self.product_ids:
            state, age = self.feed.products[pid], self._age(pid, now)
            products[pid] = {
                "price": None if state["price"] is None else str(state["price"]),
                "last_update": utc_iso(state["last_update_at"]) if state["last_update_at"] else None,
                "last_update_epoch": state["last_update_at"],
                "data_age_s": None if age is None else round(age, 3),
                "stale": age is None or age > STALE_AFTER_S,
                "updates": state["updates"],
            }
        last = self.feed.last_message_at
        return {
            "written_at": utc_iso(now),
            "written_at_epoch": now,
            "stale_after_s": STALE_AFTER_S,
            "stale": any(p["stale"] for p in products.values()),
            "products": products,
            "connection": {
                "connected": self.connected,
                "connected_since": utc_iso(self.connected_since) if self.connected and self.connected_since else None,
                "connects": self.connects,
                "disconnects_last_hour": len(self.disconnects),
                "last_message_age_s": None if last is None else round(now - last, 3),
                "sequence_gaps": self.sequence_gaps,
            },
            "heartbeat": {"counter": self.feed.last_heartbeat_counter, "gaps": self.heartbeat_gaps},
            "auth": self.auth,
        }


class PerpetualsService:
    def __init__(self, cfg: Config, log: logging.Logger) -> None:
        self.cfg = cfg
        self.log = log
        self.state = MarketState(cfg.product_ids)
        self.credentials: Any = None
        self.got_data = False
        self.ssl_context = ssl_context(cfg.ca_bundle)

    def _emit(self, notes: list) -> None:
        for level, text in notes:
            self.log.log(level, text)

    def check_auth(self) -> None:
        """SOP 1 and 3: is the key we hold accepted? Logged with the key's name, never its material."""
        if self.credentials is None:
            self.state.auth = {"checked": True, "ok": False, "key_name": None, "error": "no credentials"}
            return
        name = self.credentials.key_name
        client = make_client(self.cfg, self.credentials)
        try:
            perms = client.get_key_permissions()
            self.state.auth = {"checked": True, "ok": True, "key_name": name, "slot": self.cfg.key_slot,
                               "can_trade": perms.get("can_trade"), "checked_at": utc_iso()}
            self.log.info("auth ok key=%s slot=%s can_view=%s can_trade=%s portfolio_type=%s", name, self.cfg.key_slot,
                          perms.get("can_view"), perms.get("can_trade"), perms.get("portfolio_type"))
        except cb_errors.CoinbaseError as exc:
            self.state.auth = {"checked": True, "ok": False, "key_name": name, "slot": self.cfg.key_slot,
                               "error": type(exc).__name__, "status": getattr(exc, "status", None), "checked_at": utc_iso()}
            self.log.error("error auth key=%s slot=%s: %s", name, self.cfg.key_slot, describe_error(exc))
        finally:
            client.close()

    def subscribe_messages(self) -> list:
        # A fresh JWT in every subscribe message when a key is configured, as the official SDK does.
        return [json.dumps(subscribe_message(channel, self.cfg.product_ids, self.credentials))
                for channel in SUBSCRIBE_CHANNELS]

    async def writer(self) -> None:
        while True:
            self._emit(self.state.staleness())
            try:
                write_json_atomic(self.cfg.market_state_file, self.state.snapshot())
            except OSError as exc:
                self.log.error("error writing %s: %s", self.cfg.market_state_file, exc)
            await asyncio.sleep(WRITE_EVERY_S)

    async def session(self, attempt: int) -> None:
        """One connection: subscribe, read until it ends (self.got_data says whether data flowed)."""
        url = self.cfg.ws_market_url
        headers = {"x-cb-retry-counter": str(attempt)} if attempt else None
        self.got_data = False
        async with await ws_connect(url, self.ssl_context, 10, additional_headers=headers,
                                    ping_interval=20, ping_timeout=20) as ws:
            self.state.on_connect()
            # The exchange drops a connection that has not subscribed within 5 s: subscribe first.
            for message in self.subscribe_messages():
                await ws.send(message)
            self.log.info("connect url=%s channels=%s products=%s attempt=%d", url, ",".join(SUBSCRIBE_CHANNELS),
                          ",".join(self.cfg.product_ids), attempt)
            try:
                while True:
                    try:
                        raw = await asyncio.wait_for(ws.recv(), timeout=SILENT_RECONNECT_S)
                    except asyncio.TimeoutError:
                        self.log.warning("disconnect reason=no message for %.0fs (feed stalled), closing to reconnect",
                                         SILENT_RECONNECT_S)
                        return
                    try:
                        message = json.loads(raw)
                    except ValueError:
                        self.log.warning("unreadable message (%d bytes) ignored", len(raw))
                        continue
                    if not isinstance(message, dict):
                        continue
                    self._emit(self.state.on_message(message))
                    if message.get("channel") == "subscriptions":
                        subs = ((message.get("events") or [{}])[0] or {}).get("subscriptions")
                        self.log.info("subscribed %s", json.dumps(subs, sort_keys=True)[:300])
                    if message.get("channel") in SUBSCRIBE_CHANNELS:
                        self.got_data = True
            finally:
                self.state.on_disconnect()

    async def run(self) -> None:
        self.credentials = load_credentials(self.log)
        writer = asyncio.create_task(self.writer())
        # A daemon thread, not asyncio.to_thread: a stop must never wait for an HTTP call that is
        # retrying against a slow or unreachable API (asyncio.run joins its executor's threads).
        threading.Thread(target=self.check_auth, name="auth-check", daemon=True).start()
        attempt = 0
        try:
            while True:
                try:
                    await self.session(attempt)
                except websockets.exceptions.ConnectionClosed as exc:
                    rcvd = exc.rcvd
                    self.log.warning("disconnect code=%s reason=%s", rcvd.code if rcvd else "none (connection lost)",
                                     (rcvd.reason or "-") if rcvd else "-")
                except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as exc:  # OSError covers TLS
                    self.log.error("error connect url=%s: %s: %s", self.cfg.ws_market_url, type(exc).__name__, str(exc)[:200])
                # A connection that carried data was healthy: start the backoff again from 1 s.
                attempt = 1 if self.got_data else attempt + 1
                delay = BACKOFF.delay(attempt)
                self.log.info("reconnect attempt=%d in %.1fs", attempt, delay)
                await asyncio.sleep(delay)
        finally:
            writer.cancel()


def main() -> None:
    cfg = Config.from_env()
    log = setup_logger("trading_bot.perpetuals", cfg.log_dir, "websocket.log")
    log.info("start trading-bot-perpetuals bot_id=%s products=%s", cfg.bot_id, ",".join(cfg.product_ids))
    service = PerpetualsService(cfg, log)

    async def runner() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await service.run()
        except asyncio.CancelledError:
            log.info("stop: signal received, closing the feed")

    asyncio.run(runner())


if __name__ == "__main__":
    main()
