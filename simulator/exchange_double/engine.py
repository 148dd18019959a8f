"""The exchange itself: products and prices, portfolios, orders, fills, positions.

Everything here is synchronous and free of HTTP: the REST, WebSocket and control layers call
in, and the engine tells its listeners (the WebSocket hub) what changed. Data structures are
chosen for the kill-switch workload: orders by id in a dict, per-portfolio sorted indexes by
time and by status, per-product books sorted by price; nothing scans every order.
"""

from __future__ import annotations

import math
import random
from decimal import ROUND_DOWN, Decimal
from typing import Any, Callable, Iterable, Protocol

from exchange_double import ledger, listing
from exchange_double.auth import KeyRegistry
from exchange_double.catalogue import SPOT_WALLETS, IdFactory, default_products, next_funding_time
from exchange_double.clock import Clock
from exchange_double.config import DoubleConfig
from exchange_double.indexes import SortedIndex
from exchange_double.models import (
    BUY,
    CANCEL_QUEUED,
    CANCELLED,
    EXPIRED,
    FAILED,
    FILLED,
    OPEN,
    PENDING,
    QUEUED,
    RESTING_STATUSES,
    SELL,
    TRADE_TYPES,
    WORKING_STATUSES,
    Account,
    Fill,
    Order,
    Portfolio,
    Position,
    Product,
)
from exchange_double.util import ZERO, fmt_decimal, quantize_to_step, to_decimal
from exchange_double.validation import (
    InvalidRequest,
    NotFound,
    Rejection,
    check_price,
    check_size,
    parse_configuration,
    parse_decimal,
    parse_interval,
    parse_timestamp,
    required_text,
)

Scheduler = Callable[[float, Callable[[], None]], None]
CancelFailureHook = Callable[[str], "str | None"]


class ExchangeListener(Protocol):
    """Told about every change, synchronously (the WebSocket hub only enqueues messages)."""

    def order_changed(self, order: Order) -> None: ...

    def portfolio_changed(self, portfolio_uuid: str) -> None: ...

    def prices_changed(self, products: list[Product]) -> None: ...


_DECIMAL_PRODUCT_FIELDS = ("price", "funding_rate", "open_interest", "initial_margin_rate", "maintenance_margin_rate")
_BOOL_PRODUCT_FIELDS = (
    "session_open",
    "after_hours_order_entry_disabled",
    "reject_cancels_when_closed",
    "cancel_only",
    "limit_only",
    "post_only",
    "trading_disabled",
)
_TEXT_PRODUCT_FIELDS = ("session_state", "closed_reason")
_SEEDABLE_STATUSES = (OPEN, PENDING, QUEUED, CANCELLED, EXPIRED, FAILED)


class Exchange:
    """All exchange state, and every operation on it."""

    def __init__(self, config: DoubleConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.keys = KeyRegistry()
        self.listeners: list[ExchangeListener] = []
        # Set by the server to loop.call_later; without it delayed transitions happen at once.
        self.scheduler: Scheduler | None = None
        self.reset()

    # ------------------------------------------------------------------ lifecycle
    def reset(self, seed: int | None = None, keep_keys: bool = False) -> None:
        """Back to a fresh exchange for ``seed`` (default: the configured seed)."""
        if seed is not None:
            self.config.seed = seed
        self.ids = IdFactory(self.config.seed)
        self._market_random = random.Random(f"market-{self.config.seed}")
        self._seq = 0
        now = self.clock.now()
        self.products: dict[str, Product] = {p.product_id: p for p in default_products(now)}
        self.portfolios: dict[str, Portfolio] = {}
        self.orders: dict[str, Order] = {}
        self.fills: dict[str, Fill] = {}
        # Per product: (buys by (price, seq, id), sells by (price, seq, id)) of resting limits.
        self._books: dict[str, tuple[SortedIndex, SortedIndex]] = {
            pid: (SortedIndex(), SortedIndex()) for pid in self.products
        }
        self._expiries = SortedIndex()
        self.default_portfolio = self.ensure_portfolio(None, name="Default", portfolio_type="DEFAULT")
        if keep_keys:
            for key in self.keys.all():
                self.ensure_portfolio(key.portfolio_uuid)
        else:
            self.keys.clear()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @property
    def sequence(self) -> int:
        """A counter that grows with every order and fill (the list-orders ``sequence``)."""
        return self._seq

    # ------------------------------------------------------------------ portfolios
    def ensure_portfolio(
        self, uuid: str | None, name: str | None = None, portfolio_type: str = "DEFAULT"
    ) -> Portfolio:
        """The portfolio ``uuid``, created with starting balances when it does not exist."""
        if uuid and uuid in self.portfolios:
            return self.portfolios[uuid]
        uuid = uuid or self.ids.uuid()
        now = self.clock.now()
        portfolio = Portfolio(
            uuid=uuid,
            name=name or f"Portfolio {len(self.portfolios) + 1}",
            portfolio_type=portfolio_type,
            user_id=self.ids.uuid(),
            cfm_usd_balance=to_decimal(self.config.starting_cfm_usd),
        )
        for currency, wallet_name, is_fiat, amount in SPOT_WALLETS:
            start = to_decimal(self.config.starting_cbi_usd) if currency == "USD" else amount
            portfolio.accounts[currency] = Account(
                uuid=self.ids.uuid(),
                currency=currency,
                name=wallet_name,
                available=start,
                hold=ZERO,
                created_at=now,
                is_fiat=is_fiat,
                is_default=currency == "USD",
            )
        self.portfolios[uuid] = portfolio
        return portfolio

    def portfolio(self, uuid: str) -> Portfolio:
        portfolio = self.portfolios.get(uuid)
        if portfolio is None:
            raise NotFound(f"portfolio {uuid} not found")
        return portfolio

    def set_balances(self, portfolio: Portfolio, cfm_usd: Any = None, cbi_usd: Any = None) -> None:
        if cfm_usd is not None:
            portfolio.cfm_usd_balance = parse_decimal(cfm_usd, "cfm_usd_balance")
        if cbi_usd is not None:
            usd = portfolio.accounts["USD"]
            usd.available = parse_decimal(cbi_usd, "cbi_usd_balance") - usd.hold
        self._emit_portfolio(portfolio.uuid)

    def balance(self, portfolio: Portfolio) -> ledger.BalanceFigures:
        return ledger.balance_figures(portfolio, self.products)

    def open_positions(self, portfolio: Portfolio) -> list[Position]:
        return [p for p in portfolio.positions.values() if p.contracts != 0]

    def position(self, portfolio: Portfolio, product_id: str) -> Position:
        position = portfolio.positions.get(product_id)
        if position is None or position.contracts == 0:
            raise NotFound(f"no open position for product {product_id}")
        return position

    # ------------------------------------------------------------------ products
    def product(self, product_id: str) -> Product:
        product = self.products.get(product_id)
        if product is None:
            raise NotFound(f"product {product_id} not found")
        return product

    def list_products(
        self,
        product_type: str | None,
        product_ids: list[str],
        contract_expiry_type: str | None,
    ) -> list[Product]:
        wanted = set(product_ids)
        result = []
        for product in self.products.values():
            if product_type and product_type != "UNKNOWN_PRODUCT_TYPE" and product.product_type != product_type:
                continue
            if wanted and product.product_id not in wanted:
                continue
            if contract_expiry_type and contract_expiry_type != "UNKNOWN_CONTRACT_EXPIRY_TYPE":
                if not product.is_future or contract_expiry_type != "EXPIRING":
                    continue
            result.append(product)
        return result

    def set_product(self, product_id: str, changes: dict[str, Any]) -> Product:
        """Change product fields (price, funding, session, flags) as a drill would see them."""
        product = self.product(product_id)
        unknown = set(changes) - {
            *_DECIMAL_PRODUCT_FIELDS, *_BOOL_PRODUCT_FIELDS, *_TEXT_PRODUCT_FIELDS,
            "funding_time", "funding_interval",
        }
        if unknown:
            raise InvalidRequest(f"unknown product fields: {', '.join(sorted(unknown))}")
        for name in _DECIMAL_PRODUCT_FIELDS:
            if name in changes and name != "price":
                setattr(product, name, parse_decimal(changes[name], name))
        for name in _BOOL_PRODUCT_FIELDS:
            if name in changes:
                if not isinstance(changes[name], bool):
                    raise InvalidRequest(f"{name} must be true or false")
                setattr(product, name, changes[name])
        if "session_open" in changes:
            product.session_state = (
                "FCM_TRADING_SESSION_STATE_OPEN" if product.session_open else "FCM_TRADING_SESSION_STATE_CLOSED"
            )
            product.closed_reason = (
                "FCM_TRADING_SESSION_CLOSED_REASON_UNDEFINED"
                if product.session_open
                else "FCM_TRADING_SESSION_CLOSED_REASON_EXCHANGE_MAINTENANCE"
            )
        for name in _TEXT_PRODUCT_FIELDS:
            if name in changes:
                setattr(product, name, str(changes[name]))
        if "funding_interval" in changes:
            product.funding_interval_s = parse_interval(changes["funding_interval"])
        if "funding_time" in changes:
            product.funding_time = parse_timestamp(changes["funding_time"], "funding_time")
            product.funding_pinned = True
        if "price" in changes:
            price = parse_decimal(changes["price"], "price")
            if price <= 0:
                raise InvalidRequest("price must be positive")
            self._set_prices({product: price})
        else:
            self._emit_prices([product])
        return product

    def step_market(self, steps: int = 1) -> None:
        """Move every price ``steps`` times along the seeded random walk."""
        for _ in range(steps):
            new_prices: dict[Product, Decimal] = {}
            for product in self.products.values():
                shock = self._market_random.gauss(0.0, self.config.volatility)
                moved = product.price * Decimal(repr(math.exp(shock)))
                new_prices[product] = max(product.quote_increment, quantize_to_step(moved, product.quote_increment))
            self._set_prices(new_prices)

    def housekeeping(self) -> None:
        """Time-driven changes: GTD expiries and funding times rolling forward."""
        now = self.clock.now()
        while (first := self._expiries.first()) is not None and first[0] <= now:
            self._expiries.remove(first)
            order = self.orders[first[2]]
            if order.status in WORKING_STATUSES:
                self._set_status(order, EXPIRED)
                self._emit_order(order)
                self._emit_portfolio(order.portfolio_uuid)
        for product in self.products.values():
            interval = product.funding_interval_s
            if interval and not product.funding_pinned and product.funding_time is not None:
                if product.funding_time <= now:
                    product.funding_time = next_funding_time(now, interval)

    def _set_prices(self, new_prices: dict[Product, Decimal]) -> None:
        changed = []
        for product, price in new_prices.items():
            if price == product.price:
                continue
            product.price = price
            product.high_24h = max(product.high_24h, price)
            product.low_24h = min(product.low_24h, price)
            changed.append(product)
        if not changed:
            return
        for product in changed:
            self._match_resting(product)
        self._emit_prices(changed)
        changed_ids = {p.product_id for p in changed}
        for portfolio in self.portfolios.values():
            if any(p.contracts != 0 and p.product_id in changed_ids for p in portfolio.positions.values()):
                self._emit_portfolio(portfolio.uuid)

    def _match_resting(self, product: Product) -> None:
        """Fill resting limit orders the new price crosses, at their limit price (maker)."""
        buys, sells = self._books[product.product_id]
        ask, bid = product.best_ask(self.config.spread_ticks), product.best_bid(self.config.spread_ticks)
        crossing: list[str] = []
        for price, _seq, order_id in buys.descending():
            if price < ask:
                break
            crossing.append(order_id)
        for price, _seq, order_id in sells.ascending():
            if price > bid:
                break
            crossing.append(order_id)
        for order_id in crossing:
            order = self.orders[order_id]
            assert order.limit_price is not None
            self._fill(order, order.limit_price, "MAKER")

    # ------------------------------------------------------------------ orders: placing
    def place_order(self, portfolio: Portfolio, body: dict[str, Any]) -> Order:
        """``POST /orders``: the existing order for a known client_order_id, or a new one.

        Raises InvalidRequest for malformed bodies and Rejection for business rejections.
        """
        client_order_id = required_text(body, "client_order_id")
        product_id = required_text(body, "product_id")
        side = required_text(body, "side").upper()
        configuration = body.get("order_configuration")
        if not isinstance(configuration, dict):
            raise InvalidRequest("order_configuration is required")
        existing = self._existing(portfolio, client_order_id)
        if existing is not None:
            return existing
        product = self.products.get(product_id)
        if product is None:
            raise Rejection("INVALID_PRODUCT_ID", f"product {product_id} does not exist",
                            preview_failure_reason="PREVIEW_INVALID_PRODUCT_ID")
        if side not in (BUY, SELL):
            raise Rejection("INVALID_SIDE", f"side must be BUY or SELL, got {side}",
                            preview_failure_reason="PREVIEW_INVALID_SIDE")
        parsed = parse_configuration(configuration)
        self._check_entry_allowed(product, parsed.order_type)
        ask, bid = product.best_ask(self.config.spread_ticks), product.best_bid(self.config.spread_ticks)
        base_size = parsed.base_size
        if parsed.quote_size is not None:
            if product.is_future or side == SELL:
                raise Rejection("UNSUPPORTED_ORDER_CONFIGURATION",
                                "quote_size is only supported for spot market buys; use base_size (contracts)")
            base_size = (parsed.quote_size / ask).quantize(product.base_increment, rounding=ROUND_DOWN)
        assert base_size is not None
        check_size(product, base_size)
        if parsed.limit_price is not None:
            check_price(product, parsed.limit_price)
        if parsed.end_time is not None and parsed.end_time <= self.clock.now():
            raise Rejection("INVALID_END_TIME", "end_time must be in the future",
                            preview_failure_reason="PREVIEW_INVALID_END_TIME",
                            new_order_failure_reason="INVALID_REQUEST")
        if parsed.limit_price is None:
            crosses = True  # market orders always execute
        else:
            crosses = parsed.limit_price >= ask if side == BUY else parsed.limit_price <= bid
        if parsed.post_only and crosses:
            raise Rejection("INVALID_LIMIT_PRICE_POST_ONLY", "post-only order would cross the book",
                            preview_failure_reason="PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY")
        reference_price = (ask if side == BUY else bid) if crosses else parsed.limit_price
        assert reference_price is not None
        self._check_funds(portfolio, product, side, base_size, reference_price)
        leverage = body.get("leverage")
        margin_type = body.get("margin_type")
        order = Order(
            order_id=self.ids.uuid(),
            client_order_id=client_order_id,
            portfolio_uuid=portfolio.uuid,
            user_id=portfolio.user_id,
            product_id=product.product_id,
            product_type=product.product_type,
            side=side,
            order_type=parsed.order_type,
            time_in_force=parsed.time_in_force,
            configuration=parsed.echo,
            base_size=base_size,
            quote_size=parsed.quote_size,
            limit_price=parsed.limit_price,
            post_only=parsed.post_only,
            end_time=parsed.end_time,
            status=OPEN,
            created_time=self.clock.now(),
            seq=self._next_seq(),
            leverage=str(leverage) if leverage is not None else "",
            margin_type=str(margin_type) if margin_type else "CROSS",
        )
        self._register(portfolio, order)
        if crosses:
            self._fill(order, ask if side == BUY else bid, "TAKER")
            return order
        if parsed.time_in_force in ("IMMEDIATE_OR_CANCEL", "FILL_OR_KILL"):
            order.cancel_message = "Order did not cross the book and was cancelled (IOC/FOK)"
            self._set_status(order, CANCELLED)
        else:
            self._attach(order)
        self._emit_order(order)
        self._emit_portfolio(portfolio.uuid)
        return order

    def close_position(self, portfolio: Portfolio, body: dict[str, Any]) -> Order:
        """``POST /orders/close_position``: a market order against the live position.

        The venue derives the side from the position and never closes more than it holds, so a
        retry or a stale read can never flip the position.
        """
        client_order_id = required_text(body, "client_order_id")
        product_id = required_text(body, "product_id")
        existing = self._existing(portfolio, client_order_id)
        if existing is not None:
            return existing
        product = self.products.get(product_id)
        if product is None:
            raise Rejection("INVALID_PRODUCT_ID", f"product {product_id} does not exist",
                            preview_failure_reason="PREVIEW_INVALID_PRODUCT_ID")
        if not product.is_future:
            raise Rejection("INVALID_PRODUCT_ID", "close_position only applies to futures products",
                            preview_failure_reason="PREVIEW_INVALID_PRODUCT_ID")
        self._check_entry_allowed(product, "MARKET")
        position = portfolio.positions.get(product_id)
        if position is None or position.contracts == 0:
            raise Rejection("NO_OPEN_POSITION", f"no open position to close for {product_id}",
                            preview_failure_reason="PREVIEW_NO_POSITION",
                            new_order_failure_reason="INVALID_REQUEST")
        held = abs(position.contracts)
        size = held
        if body.get("size") not in (None, ""):
            try:
                size = to_decimal(body["size"])
            except ValueError:
                raise Rejection("INVALID_SIZE_PRECISION", f"size {body['size']!r} is not a number",
                                preview_failure_reason="PREVIEW_INVALID_SIZE_PRECISION") from None
            check_size(product, size)
            size = min(size, held)
        side = SELL if position.contracts > 0 else BUY
        spread = self.config.spread_ticks
        price = product.best_bid(spread) if side == SELL else product.best_ask(spread)
        order = Order(
            order_id=self.ids.uuid(),
            client_order_id=client_order_id,
            portfolio_uuid=portfolio.uuid,
            user_id=portfolio.user_id,
            product_id=product_id,
            product_type=product.product_type,
            side=side,
            order_type="MARKET",
            time_in_force="IMMEDIATE_OR_CANCEL",
            configuration={"market_market_ioc": {"base_size": fmt_decimal(size)}},
            base_size=size,
            quote_size=None,
            limit_price=None,
            post_only=False,
            end_time=None,
            status=OPEN,
            created_time=self.clock.now(),
            seq=self._next_seq(),
        )
        self._register(portfolio, order)
        self._fill(order, price, "TAKER")
        return order

    def _existing(self, portfolio: Portfolio, client_order_id: str) -> Order | None:
        order_id = portfolio.order_ids_by_client_id.get(client_order_id)
        return self.orders[order_id] if order_id else None

    def _check_entry_allowed(self, product: Product, order_type: str) -> None:
        if product.trading_disabled or product.cancel_only:
            raise Rejection("ORDER_ENTRY_DISABLED", f"{product.product_id} is cancel-only / trading disabled",
                            preview_failure_reason="PREVIEW_TRADING_DISABLED")
        if product.is_future and not product.session_open:
            raise Rejection("ORDER_ENTRY_DISABLED",
                            f"the trading session for {product.product_id} is closed ({product.closed_reason})",
                            preview_failure_reason="PREVIEW_INVALID_FCM_TRADING_SESSION")
        if product.limit_only and order_type == "MARKET":
            raise Rejection("UNSUPPORTED_ORDER_CONFIGURATION", f"{product.product_id} is limit-only")

    def _check_funds(self, portfolio: Portfolio, product: Product, side: str, size: Decimal, price: Decimal) -> None:
        if product.is_future:
            opening = ledger.opening_contracts(portfolio.positions.get(product.product_id), side, size)
            required = ledger.notional(opening, product, price) * product.initial_margin_rate
            if required > self.balance(portfolio).available_margin:
                raise Rejection("INSUFFICIENT_FUND", "Insufficient margin for this order",
                                preview_failure_reason="PREVIEW_INSUFFICIENT_FUND",
                                new_order_failure_reason="INSUFFICIENT_FUNDS")
            return
        taker = to_decimal(self.config.taker_fee_rate)
        if side == BUY:
            have, need = portfolio.accounts[product.quote_currency].available, size * price * (1 + taker)
        else:
            have, need = portfolio.accounts[product.base_currency].available, size
        if need > have:
            raise Rejection("INSUFFICIENT_FUND", "Insufficient balance in source account",
                            preview_failure_reason="PREVIEW_INSUFFICIENT_FUND",
                            new_order_failure_reason="INSUFFICIENT_FUNDS")

    # ------------------------------------------------------------------ orders: state machine
    @staticmethod
    def _order_key(order: Order) -> tuple[float, int, str]:
        return (order.created_time, order.seq, order.order_id)

    def _register(self, portfolio: Portfolio, order: Order) -> None:
        self.orders[order.order_id] = order
        portfolio.order_ids_by_client_id[order.client_order_id] = order.order_id
        key = self._order_key(order)
        portfolio.orders_by_time.add(key)
        portfolio.status_index(order.status).add(key)

    def _set_status(self, order: Order, status: str) -> None:
        if order.status == status:
            return
        portfolio = self.portfolios[order.portfolio_uuid]
        key = self._order_key(order)
        portfolio.status_index(order.status).remove(key)
        portfolio.status_index(status).add(key)
        order.status = status
        if status not in WORKING_STATUSES:
            order.pending_cancel = False
            self._detach(order)

    def _attach(self, order: Order) -> None:
        """Book the working order's hold; put it on the book if it rests; track its expiry."""
        portfolio = self.portfolios[order.portfolio_uuid]
        product = self.products[order.product_id]
        leaves = order.base_size - order.filled_size if order.base_size is not None else ZERO
        price = order.limit_price if order.limit_price is not None else product.price
        if product.is_future:
            opening = ledger.opening_contracts(portfolio.positions.get(order.product_id), order.side, leaves)
            order.hold = ledger.notional(opening, product, price) * product.initial_margin_rate
            portfolio.futures_hold += order.hold
        else:
            currency = product.quote_currency if order.side == BUY else product.base_currency
            order.hold = leaves * price if order.side == BUY else leaves
            account = portfolio.accounts[currency]
            account.available -= order.hold
            account.hold += order.hold
        if order.limit_price is not None and order.status in RESTING_STATUSES:
            buys, sells = self._books[order.product_id]
            (buys if order.side == BUY else sells).add((order.limit_price, order.seq, order.order_id))
        if order.end_time is not None:
            self._expiries.add((order.end_time, order.seq, order.order_id))
        order.attached = True

    def _detach(self, order: Order) -> None:
        if not order.attached:
            return
        portfolio = self.portfolios[order.portfolio_uuid]
        product = self.products[order.product_id]
        if product.is_future:
            portfolio.futures_hold -= order.hold
        else:
            currency = product.quote_currency if order.side == BUY else product.base_currency
            account = portfolio.accounts[currency]
            account.available += order.hold
            account.hold -= order.hold
        order.hold = ZERO
        if order.limit_price is not None:
            buys, sells = self._books[order.product_id]
            (buys if order.side == BUY else sells).remove((order.limit_price, order.seq, order.order_id))
        if order.end_time is not None:
            self._expiries.remove((order.end_time, order.seq, order.order_id))
        order.attached = False

    def _fill(self, order: Order, price: Decimal, liquidity: str) -> None:
        """Fill the rest of ``order`` at ``price`` and announce it.

        The double's book has unlimited depth at the best price, so fills are never partial.
        """
        assert order.base_size is not None
        size = order.base_size - order.filled_size
        portfolio = self.portfolios[order.portfolio_uuid]
        product = self.products[order.product_id]
        now = self.clock.now()
        value = price * size * (product.contract_size if product.is_future else 1)
        rate = self.config.taker_fee_rate if liquidity == "TAKER" else self.config.maker_fee_rate
        commission = value * to_decimal(rate)
        order.filled_size += size
        order.filled_value += price * size
        order.total_fees += commission
        order.number_of_fills += 1
        order.last_fill_time = now
        self._set_status(order, FILLED)
        self._record_fill(portfolio, order.order_id, product, order.side, size, price, commission,
                          "FILL", liquidity, now)
        self._apply_trade(portfolio, product, order.side, size, price, commission)
        product.volume_24h += size * (product.contract_size if product.is_future else 1)
        self._emit_order(order)
        self._emit_portfolio(portfolio.uuid)

    def _record_fill(
        self,
        portfolio: Portfolio,
        order_id: str,
        product: Product,
        side: str,
        size: Decimal,
        price: Decimal,
        commission: Decimal,
        trade_type: str,
        liquidity: str,
        trade_time: float,
    ) -> Fill:
        fill = Fill(
            entry_id=self.ids.uuid(),
            trade_id=self.ids.uuid(),
            order_id=order_id,
            portfolio_uuid=portfolio.uuid,
            user_id=portfolio.user_id,
            product_id=product.product_id,
            side=side,
            price=price,
            size=size,
            commission=commission,
            trade_type=trade_type,
            liquidity_indicator=liquidity,
            trade_time=trade_time,
            sequence_time=self.clock.now(),
            seq=self._next_seq(),
        )
        self.fills[fill.entry_id] = fill
        portfolio.fills_by_time.add((fill.sequence_time, fill.seq, fill.entry_id))
        return fill

    def _apply_trade(
        self, portfolio: Portfolio, product: Product, side: str, size: Decimal, price: Decimal, commission: Decimal
    ) -> None:
        if product.is_future:
            position = portfolio.positions.get(product.product_id)
            if position is None:
                position = portfolio.positions[product.product_id] = Position(product.product_id, ZERO, ZERO)
            realized = ledger.apply_fill(position, side, size, price, product.contract_size)
            portfolio.daily_realized_pnl += realized
            portfolio.cfm_usd_balance += realized - commission
            return
        quote = portfolio.accounts[product.quote_currency]
        base = portfolio.accounts[product.base_currency]
        if side == BUY:
            quote.available -= price * size + commission
            base.available += size
        else:
            base.available -= size
            quote.available += price * size - commission

    # ------------------------------------------------------------------ orders: cancelling
    def cancel_orders(
        self, portfolio: Portfolio, order_ids: list[str], injected_failure: CancelFailureHook
    ) -> list[dict[str, Any]]:
        """``POST /orders/batch_cancel``: one result per id, in request order."""
        results = []
        for order_id in order_ids:
            reason = self._cancel_one(portfolio, order_id, injected_failure)
            results.append(
                {
                    "success": reason is None,
                    # Coinbase fills failure_reason even on success; clients must key off success.
                    "failure_reason": reason or "UNKNOWN_CANCEL_FAILURE_REASON",
                    "order_id": order_id,
                }
            )
        return results

    def _cancel_one(self, portfolio: Portfolio, order_id: str, injected_failure: CancelFailureHook) -> str | None:
        order = self.orders.get(order_id)
        if order is None or order.portfolio_uuid != portfolio.uuid:
            return "UNKNOWN_CANCEL_ORDER"
        if order.status in (CANCELLED, CANCEL_QUEUED):
            return "DUPLICATE_CANCEL_REQUEST"
        if order.status == FILLED:
            return "ORDER_IS_FULLY_FILLED"
        if order.status not in WORKING_STATUSES:
            return "INVALID_CANCEL_REQUEST"
        product = self.products[order.product_id]
        if product.is_future and not product.session_open and product.reject_cancels_when_closed:
            return "INVALID_CANCEL_FCM_TRADING_SESSION"
        injected = injected_failure(order_id)
        if injected:
            return injected
        delay = self.config.cancel_queued_delay
        if delay > 0 and self.scheduler is not None:
            self._set_status(order, CANCEL_QUEUED)
            order.pending_cancel = True
            self.scheduler(delay, lambda: self._finish_cancel(order.order_id))
        else:
            self._finish_cancel(order.order_id)
            return None
        self._emit_order(order)
        return None

    def _finish_cancel(self, order_id: str) -> None:
        order = self.orders.get(order_id)
        if order is None or order.status not in WORKING_STATUSES:
            return  # filled while cancel-queued, or the exchange was reset
        order.cancel_message = "User requested cancel"
        self._set_status(order, CANCELLED)
        self._emit_order(order)
        self._emit_portfolio(order.portfolio_uuid)

    # ------------------------------------------------------------------ orders: reading
    def get_order(self, portfolio: Portfolio, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None or order.portfolio_uuid != portfolio.uuid:
            raise NotFound("order with this orderID was not found")
        return order

    def orders_of(self, portfolio: Portfolio, statuses: Iterable[str]) -> list[Order]:
        """Orders of a portfolio in ``statuses``, newest first (control API, user snapshot)."""
        return list(listing.orders_descending(self, portfolio, set(statuses), None))


    # ------------------------------------------------------------------ control-only operations
    def seed_orders(
        self,
        portfolio: Portfolio,
        product_id: str,
        count: int,
        side: str = "BOTH",
        base_size: Any = "1",
        offset_pct: float = 5.0,
        step_pct: float = 0.01,
        client_order_id_prefix: str | None = None,
        status: str = OPEN,
    ) -> list[Order]:
        """Create ``count`` limit GTC orders away from the market, without margin checks.

        BUYs sit ``offset_pct`` % (+ ``step_pct`` % per order) below the price, SELLs above, so
        the random walk does not fill them; ``side="BOTH"`` alternates.
        """
        product = self.product(product_id)
        side = side.upper()
        status = status.upper()
        if side not in (BUY, SELL, "BOTH"):
            raise InvalidRequest("side must be BUY, SELL or BOTH")
        if status not in _SEEDABLE_STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(_SEEDABLE_STATUSES)}")
        if not 1 <= count <= 100000:
            raise InvalidRequest("count must be between 1 and 100000")
        size = parse_decimal(base_size, "base_size")
        prefix = client_order_id_prefix if client_order_id_prefix is not None else f"seed-{self.ids.uuid()[:8]}-"
        client_ids = [f"{prefix}{i:06d}" for i in range(count)]
        clashes = [c for c in client_ids if c in portfolio.order_ids_by_client_id]
        if clashes:
            raise InvalidRequest(f"client_order_id {clashes[0]} already exists; use another prefix")
        now = self.clock.now()
        created = []
        for i, client_order_id in enumerate(client_ids):
            order_side = side if side != "BOTH" else (BUY if i % 2 == 0 else SELL)
            distance = Decimal(repr((offset_pct + i * step_pct) / 100))
            factor = 1 - distance if order_side == BUY else 1 + distance
            price = max(product.quote_increment, quantize_to_step(product.price * factor, product.quote_increment))
            order = Order(
                order_id=self.ids.uuid(),
                client_order_id=client_order_id,
                portfolio_uuid=portfolio.uuid,
                user_id=portfolio.user_id,
                product_id=product_id,
                product_type=product.product_type,
                side=order_side,
                order_type="LIMIT",
                time_in_force="GOOD_UNTIL_CANCELLED",
                configuration={"limit_limit_gtc": {"base_size": fmt_decimal(size), "limit_price": fmt_decimal(price),
                                                   "post_only": False}},
                base_size=size,
                quote_size=None,
                limit_price=price,
                post_only=False,
                end_time=None,
                status=status,
                created_time=now,
                seq=self._next_seq(),
            )
            if status in (CANCELLED, EXPIRED, FAILED):
                order.cancel_message = "seeded by the control API"
            self._register(portfolio, order)
            if status in WORKING_STATUSES:
                self._attach(order)
            self._emit_order(order)
            created.append(order)
        self._emit_portfolio(portfolio.uuid)
        return created

    def set_position(
        self,
        portfolio: Portfolio,
        product_id: str,
        side: str,
        contracts: Any,
        entry_price: Any = None,
        daily_realized_pnl: Any = None,
    ) -> Position:
        """Set a futures position outright (contracts 0 = flat)."""
        product = self.product(product_id)
        if not product.is_future:
            raise InvalidRequest("positions exist only for futures products")
        side = side.upper()
        if side not in ("LONG", "SHORT"):
            raise InvalidRequest("side must be LONG or SHORT")
        amount = parse_decimal(contracts, "contracts")
        if amount < 0:
            raise InvalidRequest("contracts must not be negative (use side SHORT)")
        entry = product.price if entry_price is None else parse_decimal(entry_price, "entry_price")
        position = portfolio.positions.get(product_id) or Position(product_id, ZERO, ZERO)
        position.contracts = amount if side == "LONG" else -amount
        position.avg_entry_price = entry if amount else ZERO
        if daily_realized_pnl is not None:
            position.daily_realized_pnl = parse_decimal(daily_realized_pnl, "daily_realized_pnl")
        portfolio.positions[product_id] = position
        self._emit_portfolio(portfolio.uuid)
        return position

    def set_daily_realized_pnl(self, portfolio: Portfolio, value: Any) -> None:
        portfolio.daily_realized_pnl = parse_decimal(value, "daily_realized_pnl")
        self._emit_portfolio(portfolio.uuid)

    def inject_fill(
        self,
        portfolio: Portfolio,
        product_id: str,
        side: str,
        size: Any,
        price: Any,
        trade_type: str = "FILL",
        order_id: str | None = None,
        commission: Any = "0",
        trade_time: Any = None,
        liquidity_indicator: str = "TAKER",
        apply_to_position: bool = False,
    ) -> Fill:
        """Add a fill record, e.g. a REVERSAL or CORRECTION an audit must account for."""
        product = self.product(product_id)
        side, trade_type = side.upper(), trade_type.upper()
        if side not in (BUY, SELL):
            raise InvalidRequest("side must be BUY or SELL")
        if trade_type not in TRADE_TYPES:
            raise InvalidRequest(f"trade_type must be one of {', '.join(TRADE_TYPES)}")
        fill_size, fill_price = parse_decimal(size, "size"), parse_decimal(price, "price")
        fee = parse_decimal(commission, "commission")
        when = self.clock.now() if trade_time is None else parse_timestamp(trade_time, "trade_time")
        fill = self._record_fill(portfolio, order_id or self.ids.uuid(), product, side, fill_size, fill_price,
                                 fee, trade_type, liquidity_indicator.upper(), when)
        if apply_to_position:
            self._apply_trade(portfolio, product, side, fill_size, fill_price, fee)
            self._emit_portfolio(portfolio.uuid)
        return fill

    # ------------------------------------------------------------------ events
    def _emit_order(self, order: Order) -> None:
        for listener in self.listeners:
            listener.order_changed(order)

    def _emit_portfolio(self, portfolio_uuid: str) -> None:
        for listener in self.listeners:
            listener.portfolio_changed(portfolio_uuid)

    def _emit_prices(self, products: list[Product]) -> None:
        for listener in self.listeners:
            listener.prices_changed(products)
