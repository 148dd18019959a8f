"""The exchange's state as plain data: products, portfolios, accounts, orders, fills, positions.

These are internal records. ``views.py`` renders them into the exact JSON shapes Coinbase
returns; ``engine.py`` owns every change to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exchange_double.indexes import SortedIndex
from exchange_double.util import ZERO

# Order statuses as Coinbase names them.
PENDING = "PENDING"
OPEN = "OPEN"
FILLED = "FILLED"
CANCELLED = "CANCELLED"
EXPIRED = "EXPIRED"
FAILED = "FAILED"
QUEUED = "QUEUED"
CANCEL_QUEUED = "CANCEL_QUEUED"
ORDER_STATUSES = (PENDING, OPEN, FILLED, CANCELLED, EXPIRED, FAILED, QUEUED, CANCEL_QUEUED)
# Orders in these states are working: they can fill and can be cancelled.
WORKING_STATUSES = frozenset({PENDING, OPEN, QUEUED, CANCEL_QUEUED})
# Working orders that sit on the book and fill when the price crosses them.
RESTING_STATUSES = frozenset({OPEN, QUEUED, CANCEL_QUEUED})

BUY, SELL = "BUY", "SELL"
FUTURE, SPOT = "FUTURE", "SPOT"
TRADE_TYPES = ("FILL", "REVERSAL", "CORRECTION", "SYNTHETIC")


@dataclass(slots=True, eq=False)
class Product:
    """A tradable product. Futures carry contract and funding data; spot does not."""

    product_id: str
    product_type: str
    display_name: str
    base_currency: str
    quote_currency: str
    base_name: str
    quote_name: str
    price: Decimal
    base_increment: Decimal
    quote_increment: Decimal
    base_min_size: Decimal
    base_max_size: Decimal
    venue: str
    # Futures only.
    contract_size: Decimal = Decimal(1)
    contract_root_unit: str = ""
    contract_code: str = ""
    contract_expiry: float | None = None
    perp_style: bool = False
    group_description: str = ""
    funding_rate: Decimal | None = None
    funding_time: float | None = None
    funding_interval_s: int | None = None
    funding_pinned: bool = False
    open_interest: Decimal = ZERO
    initial_margin_rate: Decimal = Decimal("0.10")
    maintenance_margin_rate: Decimal = Decimal("0.05")
    # Trading session and product flags (futures sessions; spot is always open).
    session_open: bool = True
    session_state: str = "FCM_TRADING_SESSION_STATE_OPEN"
    closed_reason: str = "FCM_TRADING_SESSION_CLOSED_REASON_UNDEFINED"
    after_hours_order_entry_disabled: bool = False
    reject_cancels_when_closed: bool = False
    cancel_only: bool = False
    limit_only: bool = False
    post_only: bool = False
    trading_disabled: bool = False
    # 24 h statistics for the ticker and the product view.
    open_24h: Decimal = ZERO
    high_24h: Decimal = ZERO
    low_24h: Decimal = ZERO
    volume_24h: Decimal = ZERO

    @property
    def is_future(self) -> bool:
        return self.product_type == FUTURE

    def best_bid(self, spread_ticks: int) -> Decimal:
        return self.price - self.quote_increment * spread_ticks

    def best_ask(self, spread_ticks: int) -> Decimal:
        return self.price + self.quote_increment * spread_ticks


@dataclass(slots=True)
class Account:
    """A spot wallet of a portfolio (what ``/accounts`` lists)."""

    uuid: str
    currency: str
    name: str
    available: Decimal
    hold: Decimal
    created_at: float
    is_fiat: bool
    is_default: bool = False


@dataclass(slots=True)
class Order:
    """One order, whatever its state."""

    order_id: str
    client_order_id: str
    portfolio_uuid: str
    user_id: str
    product_id: str
    product_type: str
    side: str
    order_type: str
    time_in_force: str
    configuration: dict[str, Any]
    base_size: Decimal | None
    quote_size: Decimal | None
    limit_price: Decimal | None
    post_only: bool
    end_time: float | None
    status: str
    created_time: float
    seq: int
    leverage: str = ""
    margin_type: str = "CROSS"
    order_placement_source: str = "RETAIL_ADVANCED"
    filled_size: Decimal = ZERO
    filled_value: Decimal = ZERO
    total_fees: Decimal = ZERO
    number_of_fills: int = 0
    last_fill_time: float | None = None
    pending_cancel: bool = False
    cancel_message: str = ""
    reject_reason: str = "REJECT_REASON_UNSPECIFIED"
    reject_message: str = ""
    # Margin (futures) or funds (spot) this working order holds; ``attached`` says whether the
    # hold is booked and the order is on the book, so detaching is exactly-once.
    hold: Decimal = ZERO
    attached: bool = False

    @property
    def leaves_size(self) -> Decimal:
        if self.base_size is None or self.status not in WORKING_STATUSES:
            return ZERO
        return self.base_size - self.filled_size

    @property
    def average_filled_price(self) -> Decimal:
        return self.filled_value / self.filled_size if self.filled_size else ZERO


@dataclass(slots=True)
class Fill:
    """One fill (or an injected reversal / correction of one)."""

    entry_id: str
    trade_id: str
    order_id: str
    portfolio_uuid: str
    user_id: str
    product_id: str
    side: str
    price: Decimal
    size: Decimal
    commission: Decimal
    trade_type: str
    liquidity_indicator: str
    trade_time: float
    sequence_time: float
    seq: int


@dataclass(slots=True)
class Position:
    """A futures position: signed contracts (positive = long) and its average entry."""

    product_id: str
    contracts: Decimal
    avg_entry_price: Decimal
    daily_realized_pnl: Decimal = ZERO

    @property
    def side(self) -> str:
        return "LONG" if self.contracts > 0 else "SHORT"


@dataclass(slots=True)
class Portfolio:
    """Everything one API key can see: wallets, futures cash, positions, orders, fills."""

    uuid: str
    name: str
    portfolio_type: str
    user_id: str
    cfm_usd_balance: Decimal
    daily_realized_pnl: Decimal = ZERO
    # Initial margin held by working futures orders, kept incrementally (no O(n) re-sum).
    futures_hold: Decimal = ZERO
    accounts: dict[str, Account] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    order_ids_by_client_id: dict[str, str] = field(default_factory=dict)
    orders_by_time: SortedIndex = field(default_factory=SortedIndex)
    orders_by_status: dict[str, SortedIndex] = field(default_factory=dict)
    fills_by_time: SortedIndex = field(default_factory=SortedIndex)

    def status_index(self, status: str) -> SortedIndex:
        index = self.orders_by_status.get(status)
        if index is None:
            index = self.orders_by_status[status] = SortedIndex()
        return index
