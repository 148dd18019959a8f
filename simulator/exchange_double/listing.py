"""Listing orders and fills: filters, sort orders, stable cursors, the OPEN cap.

Default listings walk the per-portfolio sorted indexes from the cursor's key downwards (newest
first), so a page costs what it returns, not what the portfolio holds, and orders that are
cancelled or placed between pages never shift the remaining pages.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from exchange_double.indexes import decode_cursor, encode_cursor
from exchange_double.models import OPEN, ORDER_STATUSES, Fill, Order, Portfolio
from exchange_double.util import ZERO
from exchange_double.validation import InvalidRequest

if TYPE_CHECKING:
    from exchange_double.engine import Exchange

_SORT_BY_ORDERS = ("LIMIT_PRICE", "LAST_FILL_TIME", "LAST_UPDATE_TIME")


@dataclass(slots=True)
class OrderQuery:
    """Filters of ``GET /orders/historical/batch`` after parsing."""

    order_ids: list[str] = field(default_factory=list)
    product_ids: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    limit: int | None = None
    cursor: str = ""
    start_date: float | None = None
    end_date: float | None = None
    product_type: str | None = None
    order_side: str | None = None
    order_types: list[str] = field(default_factory=list)
    contract_expiry_type: str | None = None
    order_placement_source: str | None = None
    time_in_forces: list[str] = field(default_factory=list)
    sort_by: str | None = None


@dataclass(slots=True)
class FillQuery:
    """Filters of ``GET /orders/historical/fills`` after parsing."""

    order_ids: list[str] = field(default_factory=list)
    trade_ids: list[str] = field(default_factory=list)
    product_ids: list[str] = field(default_factory=list)
    start: float | None = None
    end: float | None = None
    limit: int | None = None
    cursor: str = ""
    sort_by: str | None = None


@dataclass(slots=True)
class Page:
    items: list[Any]
    has_next: bool
    cursor: str


# Settable product fields and how to parse them (control API, set_product).


def list_orders(exchange: Exchange, portfolio: Portfolio, query: OrderQuery) -> Page:
    """``GET /orders/historical/batch`` with stable key-based cursors and the OPEN cap."""
    statuses = {s.upper() for s in query.statuses}
    unknown = statuses - set(ORDER_STATUSES) - {"UNKNOWN_ORDER_STATUS"}
    if unknown:
        raise InvalidRequest(f"unknown order_status: {', '.join(sorted(unknown))}")
    if OPEN in statuses and len(statuses) > 1:
        raise InvalidRequest("OPEN cannot be combined with other order statuses")
    open_only = statuses == {OPEN}
    if query.sort_by and query.sort_by not in _SORT_BY_ORDERS:
        raise InvalidRequest(f"unknown sort_by: {query.sort_by}")
    limit = _page_limit(query.limit, exchange.config.orders_default_limit, exchange.config.orders_max_limit)
    state = _cursor_state(query.cursor)
    served = int(state.get("n", 0))
    if open_only:
        limit = min(limit, exchange.config.open_orders_cap - served)
        if limit <= 0:
            return Page([], False, "")
    matches = _order_filter(exchange, query, statuses, open_only)
    sort_key = _order_sort_key(query.sort_by)
    after = _key_from_cursor(state, query.sort_by)
    if query.order_ids or query.sort_by:
        # Explicit ids or a non-time sort: small or unusual listings, sorted in full.
        pool: Iterable[Order] = (
            _orders_by_id(exchange, portfolio, query.order_ids)
            if query.order_ids
            else orders_descending(exchange, portfolio, statuses, None)
        )
        ordered = sorted(filter(matches, pool), key=sort_key, reverse=True)
        candidates: Iterator[Order] = (o for o in ordered if after is None or sort_key(o) < after)
    else:
        candidates = (o for o in orders_descending(exchange, portfolio, statuses, after) if matches(o))
    page = _take(candidates, limit + 1)
    has_next = len(page) > limit
    page = page[:limit]
    if open_only and served + len(page) >= exchange.config.open_orders_cap:
        has_next = False
    cursor = ""
    if has_next and page:
        cursor = encode_cursor({"k": _jsonable_key(sort_key(page[-1])), "n": served + len(page)})
    return Page(page, has_next, cursor)

def _orders_by_id(exchange: Exchange, portfolio: Portfolio, order_ids: list[str]) -> list[Order]:
    found = (exchange.orders.get(order_id) for order_id in dict.fromkeys(order_ids))
    return [o for o in found if o is not None and o.portfolio_uuid == portfolio.uuid]

def orders_descending(
    exchange: Exchange, portfolio: Portfolio, statuses: set[str], before: tuple[Any, ...] | None
) -> Iterator[Order]:
    if statuses:
        streams = [portfolio.status_index(s).descending(before) for s in sorted(statuses)]
        keys: Iterable[tuple[Any, ...]] = heapq.merge(*streams, reverse=True) if len(streams) > 1 else streams[0]
    else:
        keys = portfolio.orders_by_time.descending(before)
    for key in keys:
        yield exchange.orders[key[2]]

def _order_filter(
    exchange: Exchange, query: OrderQuery, statuses: set[str], open_only: bool
) -> Callable[[Order], bool]:
    product_ids = set(query.product_ids)
    order_types = {t.upper() for t in query.order_types}
    tifs = {t.upper() for t in query.time_in_forces}
    expiry = query.contract_expiry_type

    def matches(order: Order) -> bool:
        if statuses and order.status not in statuses:
            return False
        if product_ids and order.product_id not in product_ids:
            return False
        if query.product_type and query.product_type != "UNKNOWN_PRODUCT_TYPE" \
                and order.product_type != query.product_type:
            return False
        if query.order_side and order.side != query.order_side.upper():
            return False
        if order_types and order.order_type not in order_types:
            return False
        if tifs and order.time_in_force not in tifs:
            return False
        if query.order_placement_source and order.order_placement_source != query.order_placement_source:
            return False
        if expiry and expiry != "UNKNOWN_CONTRACT_EXPIRY_TYPE":
            if not exchange.products[order.product_id].is_future or expiry != "EXPIRING":
                return False
        if not open_only:  # start/end dates do not apply to OPEN listings
            if query.start_date is not None and order.created_time < query.start_date:
                return False
            if query.end_date is not None and order.created_time > query.end_date:
                return False
        return True

    return matches

def list_fills(exchange: Exchange, portfolio: Portfolio, query: FillQuery) -> Page:
    if query.sort_by and query.sort_by not in ("TRADE_TIME", "PRICE"):
        raise InvalidRequest(f"unknown sort_by: {query.sort_by}")
    limit = _page_limit(query.limit, exchange.config.fills_default_limit, exchange.config.fills_max_limit)
    state = _cursor_state(query.cursor)
    by_price = query.sort_by == "PRICE"
    after = None
    if "k" in state:
        raw = state["k"]
        after = (Decimal(raw[0]), raw[1], raw[2]) if by_price else tuple(raw)
    order_ids, trade_ids, product_ids = set(query.order_ids), set(query.trade_ids), set(query.product_ids)

    def matches(fill: Fill) -> bool:
        return (
            (not order_ids or fill.order_id in order_ids)
            and (not trade_ids or fill.trade_id in trade_ids)
            and (not product_ids or fill.product_id in product_ids)
            and (query.start is None or fill.sequence_time >= query.start)
            and (query.end is None or fill.sequence_time <= query.end)
        )

    def key(fill: Fill) -> tuple[Any, ...]:
        return (fill.price, fill.seq, fill.entry_id) if by_price else (fill.sequence_time, fill.seq, fill.entry_id)

    if by_price:
        everything = sorted((exchange.fills[k[2]] for k in portfolio.fills_by_time.descending()), key=key, reverse=True)
        candidates: Iterator[Fill] = (f for f in everything if matches(f) and (after is None or key(f) < after))
    else:
        candidates = (
            f for f in (exchange.fills[k[2]] for k in portfolio.fills_by_time.descending(after)) if matches(f)
        )
    page = _take(candidates, limit + 1)
    has_next = len(page) > limit
    page = page[:limit]
    cursor = encode_cursor({"k": _jsonable_key(key(page[-1]))}) if has_next and page else ""
    return Page(page, has_next, cursor)


def _page_limit(requested: int | None, default: int, maximum: int) -> int:
    if requested is None or requested <= 0:
        return default
    return min(requested, maximum)


def _cursor_state(cursor: str) -> dict[str, Any]:
    if not cursor:
        return {}
    try:
        return decode_cursor(cursor)
    except ValueError:
        raise InvalidRequest("invalid cursor") from None


def _order_sort_key(sort_by: str | None) -> Callable[[Order], tuple[Any, ...]]:
    if sort_by == "LIMIT_PRICE":
        return lambda o: (o.limit_price if o.limit_price is not None else ZERO, o.created_time, o.seq, o.order_id)
    if sort_by == "LAST_FILL_TIME":
        return lambda o: (o.last_fill_time or 0.0, o.created_time, o.seq, o.order_id)
    return lambda o: (o.created_time, o.seq, o.order_id)


def _key_from_cursor(state: dict[str, Any], sort_by: str | None) -> tuple[Any, ...] | None:
    raw = state.get("k")
    if raw is None:
        return None
    try:
        if sort_by == "LIMIT_PRICE":
            return (Decimal(raw[0]), *raw[1:])
        return tuple(raw)
    except (TypeError, ArithmeticError, ValueError):
        raise InvalidRequest("invalid cursor") from None


def _jsonable_key(key: tuple[Any, ...]) -> list[Any]:
    return [str(part) if isinstance(part, Decimal) else part for part in key]


def _take(iterator: Iterable[Any], count: int) -> list[Any]:
    result = []
    for item in iterator:
        result.append(item)
        if len(result) >= count:
            break
    return result
