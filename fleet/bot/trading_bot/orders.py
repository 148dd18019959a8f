"""trading-bot-orders: order placement that honours the trading-mode file and the data age.

- NORMAL: every cycle (1 s) quotes QUOTES_PER_CYCLE resting limit orders around the last price
  and keeps the book bounded (per host at most MAX_OPEN_ORDERS; the oldest are cancelled), and
  now and then sends a small market order, so open orders and positions exist for the runbooks.
  The default demand (4 orders/s per host) keeps a fleet that shares one key well inside
  Coinbase's 30 requests/s per key; MAX_ORDERS_PER_SECOND is the bound, not the target.
- REDUCE_ONLY: no new exposure. Cancels its own resting orders and exits through
  close_position (the venue derives side and size from the live position, so it cannot flip).
- HALTED, or a missing / unreadable / unknown mode file: places and cancels nothing.
- Data older than 5 s (market.json, SOP 8) blocks entries for that product and pulls its quotes.
The mode file is read again right before every order, so a change takes effect within one
request. Order requests are paced to MAX_ORDERS_PER_SECOND (create, close and cancel requests
alike) and each batch (new orders per cycle, ids per cancel) is at most BATCH_SIZE.
client_order_id = <BOT_ID>-<epoch ms>-<seq>, so the exchange's order list tells who sent what.
Every decision and order is a line in logs/orders.log.
"""

from __future__ import annotations

import logging
import random
import time
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any, Callable, Optional

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import errors as cb_errors
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import MAX_CANCEL_BATCH
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.websocket import STALE_AFTER_S

from trading_bot.common import (
    BACKOFF,
    Config,
    Stopper,
    describe_error,
    load_credentials,
    make_client,
    read_json,
    read_trading_mode,
    setup_logger,
)

RECONCILE_EVERY_S = 10.0  # the exchange is the truth: a kill switch may have cancelled our book
POSITIONS_EVERY_S = 3.0
QUOTE_OFFSETS = (0.004, 0.02)  # resting limit orders 0.4 %..2 % away from the last price


class Pacer:
    """Order requests at most ``rate`` per second, evenly spaced (fractional rates work too)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self.next_at = 0.0

    def wait(self) -> None:
        now = self.clock()
        if now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.clock()
        self.next_at = max(now, self.next_at) + self.interval


def owned_by(client_order_id: Any, bot_id: str) -> bool:
    """True for '<bot_id>-<epoch ms>-<seq>' (and not for another host whose id merely starts the same)."""
    if not isinstance(client_order_id, str):
        return False
    parts = client_order_id.rsplit("-", 2)
    return len(parts) == 3 and parts[0] == bot_id and parts[1].isdigit() and parts[2].isdigit()


def position_sizes(positions: list) -> dict:
    """{product_id: signed contracts} from /cfm/positions (LONG positive, SHORT negative)."""
    sizes: dict = {}
    for pos in positions or []:
        try:
            size = Decimal(str(pos.get("number_of_contracts") or "0"))
        except InvalidOperation:
            continue
        if str(pos.get("side", "")).upper() == "SHORT" and size > 0:
            size = -size
        sizes[pos.get("product_id")] = sizes.get(pos.get("product_id"), Decimal(0)) + size
    return sizes


def reduces_exposure(side: str, size: Decimal, position: Decimal) -> bool:
    """An order reduces exposure only if it is opposite to the position and no larger than it."""
    if position == 0 or size <= 0:
        return False
    if position > 0:
        return side == "SELL" and size <= position
    return side == "BUY" and size <= -position


def _quantize(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


class OrderService:
    def __init__(self, cfg: Config, log: logging.Logger, client: Any, stopper: Optional[Stopper] = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.log = log
        self.client = client
        self.stopper = stopper or Stopper()
        self.clock = clock
        self.pacer = Pacer(cfg.max_orders_per_second, sleep=self.stopper.sleep)
        self.cancel_batch = max(1, min(cfg.batch_size, MAX_CANCEL_BATCH))
        self.seq = 0
        self.book: dict = {}  # order_id -> {product_id, side, client_order_id, placed_at}
        self.products: dict = {}  # product_id -> {base_size, quote_increment}
        self.positions: dict = {}
        self.mode: Optional[str] = None
        self.cycle_mode: Optional[str] = None
        self.notes: dict = {}  # last logged decision per topic, so a steady state is logged once
        self.last_reconcile = 0.0
        self.last_positions = 0.0
        self.last_market_order = clock()
        self.last_exit = 0.0
        self.placed = 0

    # ------------------------------------------------------------------ small helpers
    def note(self, topic: str, text: str, level: int = logging.INFO, state: Optional[str] = None) -> None:
        """Log a decision when it changes (a bot that holds still should not fill the log).

        ``state`` is what "changes" means when the text carries a moving number (an age).
        """
        state = text if state is None else state
        if self.notes.get(topic) != state:
            self.notes[topic] = state
            self.log.log(level, text)

    def next_client_order_id(self) -> str:
        self.seq += 1
        return "%s-%d-%d" % (self.cfg.bot_id, int(self.clock() * 1000), self.seq)

    def current_mode(self) -> str:
        mode, problem = read_trading_mode(self.cfg.trading_mode_file)
        if problem:
            self.note("mode-problem", "mode HALTED because %s" % problem, logging.WARNING)
        else:
            self.notes.pop("mode-problem", None)
        if mode != self.mode:
            self.log.info("mode %s -> %s", self.mode or "start", mode)
            self.mode = mode
        return mode

    def market(self) -> dict:
        """{product_id: (price or None, age_s or None)}; ages are recomputed here, not trusted from the file."""
        data = read_json(self.cfg.market_state_file) or {}
        now = self.clock()
        result = {}
        for pid in self.cfg.product_ids:
            info = (data.get("products") or {}).get(pid) or {}
            updated = info.get("last_update_epoch")
            age = (now - updated) if isinstance(updated, (int, float)) else None
            try:
                price = Decimal(str(info.get("price"))) if info.get("price") not in (None, "") else None
            except InvalidOperation:
                price = None
            result[pid] = (price, age)
        return result

    # ------------------------------------------------------------------ exchange calls
    def load_products(self) -> None:
        for pid in self.cfg.product_ids:
            if pid in self.products:
                continue
            product = self.client.get_product(pid)
            step = Decimal(str(product.get("base_increment") or "1"))
            size = max(Decimal(str(product.get("base_min_size") or step)), step)
            self.products[pid] = {"base_size": size, "quote_increment": Decimal(str(product.get("quote_increment") or "0.01"))}
            self.log.info("product %s base_size=%s quote_increment=%s", pid, size, self.products[pid]["quote_increment"])

    def reconcile(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.last_reconcile < RECONCILE_EVERY_S:
            return
        orders = self.client.list_orders(order_status=["OPEN"], product_ids=self.cfg.product_ids)
        mine = {}
        for order in orders:
            if owned_by(order.get("client_order_id"), self.cfg.bot_id):
                known = self.book.get(order.get("order_id"))
                mine[order["order_id"]] = known or {
                    "product_id": order.get("product_id"), "side": order.get("side"),
                    "client_order_id": order.get("client_order_id"), "placed_at": 0.0}
        gone = len(set(self.book) - set(mine))
        if gone:
            self.log.info("reconcile: %d of our orders are no longer open at the exchange (filled or cancelled elsewhere)", gone)
        self.book = mine
        self.last_reconcile = now

    def refresh_positions(self, force: bool = False) -> None:
        now = self.clock()
        if force or now - self.last_positions >= POSITIONS_EVERY_S:
            self.positions = position_sizes(self.client.list_positions())
            self.last_positions = now

    def place(self, product_id: str, side: str, config: dict, why: str) -> bool:
        """One create_order, if the mode still allows it right now. Returns True if the exchange took it."""
        self.pacer.wait()
        mode = self.current_mode()
        if self.stopper.stopping or mode == "HALTED" or (mode == "REDUCE_ONLY"):
            self.log.info("skip %s %s %s: mode is %s now", why, side, product_id, mode)
            return False
        coid = self.next_client_order_id()
        kind = next(iter(config))
        detail = config[kind]
        try:
            result = self.client.create_order(coid, product_id, side, config)
        except cb_errors.BusinessRejectError as exc:
            self.log.warning("rejected %s %s %s client_order_id=%s: %s", why, side, product_id, coid, describe_error(exc))
            return False
        order_id = (result.get("success_response") or {}).get("order_id") or result.get("order_id")
        self.placed += 1
        self.log.info("order %s %s %s %s size=%s price=%s client_order_id=%s order_id=%s", why, kind, side, product_id,
                      detail.get("base_size"), detail.get("limit_price", "market"), coid, order_id)
        if order_id and kind.startswith("limit_"):
            self.book[order_id] = {"product_id": product_id, "side": side, "client_order_id": coid, "placed_at": self.clock()}
        return True

    def cancel(self, order_ids: list, why: str) -> None:
        """Cancel our own orders in batches of at most BATCH_SIZE (and 100, the exchange's limit)."""
        for start in range(0, len(order_ids), self.cancel_batch):
            chunk = order_ids[start:start + self.cancel_batch]
            self.pacer.wait()
            if self.current_mode() == "HALTED" or self.stopper.stopping:
                return  # HALTED means hands off: the runbook owns the book now
            results = self.client.cancel_orders(chunk)
            ok = [r.get("order_id") for r in results if r.get("success")]
            failed = {r.get("order_id"): r.get("failure_reason") for r in results if not r.get("success")}
            for order_id in chunk:
                self.book.pop(order_id, None)
            self.log.info("cancel %s: %d requested, %d initiated%s", why, len(chunk), len(ok),
                          (", failed: %s" % ", ".join("%s=%s" % kv for kv in list(failed.items())[:5])) if failed else "")

    # ------------------------------------------------------------------ strategy
    def limit_config(self, product_id: str, side: str, price: Decimal) -> dict:
        spec = self.products[product_id]
        offset = Decimal(str(round(random.uniform(*QUOTE_OFFSETS), 5)))
        raw = price * (1 - offset) if side == "BUY" else price * (1 + offset)
        limit = _quantize(raw, spec["quote_increment"])
        return {"limit_limit_gtc": {"base_size": str(spec["base_size"]), "limit_price": str(limit), "post_only": False}}

    def entries_allowed(self, product_id: str, side: str) -> bool:
        """No entry that would push the position beyond MAX_POSITION_CONTRACTS."""
        pos = self.positions.get(product_id, Decimal(0))
        limit = Decimal(self.cfg.max_position)
        return not ((side == "BUY" and pos >= limit) or (side == "SELL" and pos <= -limit))

    def normal_cycle(self, market: dict) -> None:
        fresh = {}
        for pid, (price, age) in market.items():
            if price is None or age is None or age > STALE_AFTER_S:
                self.note("stale-" + pid, "block entries %s: data %s (SOP 8: > %.0fs)" % (
                    pid, "missing" if age is None else "%.1fs old" % age, STALE_AFTER_S), logging.WARNING, state="stale")
                stale_quotes = [oid for oid, o in self.book.items() if o["product_id"] == pid]
                if stale_quotes:
                    self.cancel(stale_quotes, "stale quotes %s" % pid)
            else:
                self.note("stale-" + pid, "entries allowed %s: data %.1fs old" % (pid, age), state="fresh")
                fresh[pid] = price
        if not fresh:
            return
        # Requote: QUOTES_PER_CYCLE new resting orders (never more than BATCH_SIZE), alternating
        # sides over the fresh products.
        pids = sorted(fresh)
        for n in range(min(self.cfg.quotes_per_cycle, self.cfg.batch_size)):
            if self.stopper.stopping:
                return
            pid = pids[n % len(pids)]
            side = "BUY" if (n // len(pids)) % 2 == 0 else "SELL"
            if not self.entries_allowed(pid, side):
                side = "SELL" if side == "BUY" else "BUY"
            if not self.place(pid, side, self.limit_config(pid, side, fresh[pid]), "quote"):
                return
            if len(self.book) >= self.cfg.max_open_orders + self.cfg.batch_size:
                break
        # Keep the book bounded: cancel the oldest beyond the per-host cap.
        excess = len(self.book) - self.cfg.max_open_orders
        if excess > 0:
            oldest = sorted(self.book, key=lambda oid: self.book[oid]["placed_at"])[:excess]
            self.cancel(oldest, "oldest beyond cap %d" % self.cfg.max_open_orders)
        # Now and then a small market order, so positions exist.
        if self.clock() - self.last_market_order >= self.cfg.market_order_every_s:
            self.last_market_order = self.clock()
            pid = random.choice(pids)
            side = random.choice(("BUY", "SELL"))
            if not self.entries_allowed(pid, side):
                side = "SELL" if side == "BUY" else "BUY"
            size = str(self.products[pid]["base_size"])
            self.place(pid, side, {"market_market_ioc": {"base_size": size}}, "market")

    def reduce_only_cycle(self) -> None:
        """SOP 2/7: pause entries, allow exits. Resting quotes could add exposure if filled: pull them."""
        if self.book:
            self.cancel(list(self.book), "reduce-only: pull resting quotes")
        if self.clock() - self.last_exit < self.cfg.exit_every_s:
            return
        self.last_exit = self.clock()
        open_positions = {pid: size for pid, size in self.positions.items() if pid in self.products and size != 0}
        if not open_positions:
            self.note("reduce", "reduce-only: flat, nothing to exit")
            return
        for pid, size in sorted(open_positions.items()):
            step = min(self.products[pid]["base_size"], abs(size))
            self.pacer.wait()
            if self.current_mode() != "REDUCE_ONLY" or self.stopper.stopping:
                return
            coid = self.next_client_order_id()
            try:
                result = self.client.close_position(coid, pid, size=str(step))
            except cb_errors.BusinessRejectError as exc:
                self.log.warning("rejected exit close_position %s size=%s client_order_id=%s: %s", pid, step, coid, describe_error(exc))
                continue
            self.placed += 1
            order_id = (result.get("success_response") or {}).get("order_id") or result.get("order_id")
            self.log.info("order exit close_position %s size=%s (position %s) client_order_id=%s order_id=%s",
                          pid, step, size, coid, order_id)
        self.last_positions = 0.0  # look at the position again next cycle

    def cycle(self) -> None:
        mode = self.current_mode()
        changed, self.cycle_mode = mode != self.cycle_mode, mode
        if mode == "HALTED":
            self.note("decision", "halted: placing nothing")
            return
        self.load_products()
        self.reconcile(force=changed)
        self.refresh_positions(force=changed)
        if mode == "REDUCE_ONLY":
            self.note("decision", "reduce_only: no new exposure, exits allowed")
            self.reduce_only_cycle()
        else:
            self.note("decision", "normal: quoting")
            self.normal_cycle(self.market())

    def run(self) -> None:
        streak = 0
        while not self.stopper.stopping:
            started = time.monotonic()
            try:
                self.cycle()
                if streak:
                    self.log.info("recovered after %d failed cycles", streak)
                streak = 0
            except cb_errors.CoinbaseError as exc:
                # 401/403/429/5xx/timeouts: the client already retried briefly; back off here (1 s
                # doubling to 60 s) and keep running, so a revoked key or a blocked network never
                # becomes a tight crash loop.
                streak += 1
                delay = BACKOFF.delay(streak)
                self.log.error("error cycle %d failed: %s; next try in %.0fs", streak, describe_error(exc), delay)
                self.last_reconcile = 0.0
                self.stopper.sleep(delay)
                continue
            self.stopper.sleep(max(0.0, self.cfg.cycle_s - (time.monotonic() - started)))


def main() -> None:
    cfg = Config.from_env()
    log = setup_logger("trading_bot.orders", cfg.log_dir, "orders.log")
    log.info("start trading-bot-orders bot_id=%s products=%s max_orders_per_second=%s batch_size=%d "
             "quotes_per_cycle=%d max_open_orders=%d", cfg.bot_id, ",".join(cfg.product_ids),
             cfg.max_orders_per_second, cfg.batch_size, cfg.quotes_per_cycle, cfg.max_open_orders)
    stopper = Stopper()
    stopper.install()
    credentials = None
    streak = 0
    while credentials is None and not stopper.stopping:
        credentials = load_credentials(log)
        if credentials is None:
            streak += 1
            stopper.sleep(BACKOFF.delay(streak))
    if credentials is None:
        return
    client = make_client(cfg, credentials)
    try:
        OrderService(cfg, log, client, stopper).run()
    finally:
        client.close()
        log.info("stop: %s", stopper.signal_name or "loop ended")


if __name__ == "__main__":
    main()
