"""Rendering internal records into the JSON shapes Coinbase returns.

Field names follow the official SDK 1.8.4 response types (``coinbase/rest/types``,
``coinbase/websocket/types``); money and sizes are decimal strings; times are RFC 3339 UTC.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exchange_double import ledger
from exchange_double.engine import Exchange
from exchange_double.validation import Rejection
from exchange_double.models import Account, Fill, Order, Portfolio, Position, Product
from exchange_double.util import fmt_decimal, fmt_money, rfc3339, rfc3339_seconds


def amount(value: Decimal, currency: str = "USD") -> dict[str, str]:
    return {"value": fmt_money(value), "currency": currency}


# ---------------------------------------------------------------------- products
def product(p: Product, exchange: Exchange) -> dict[str, Any]:
    spread = exchange.config.spread_ticks
    change = (p.price - p.open_24h) / p.open_24h * 100 if p.open_24h else Decimal(0)
    view: dict[str, Any] = {
        "product_id": p.product_id,
        "price": fmt_decimal(p.price),
        "price_percentage_change_24h": fmt_decimal(change.quantize(Decimal("0.00000001"))),
        "volume_24h": fmt_decimal(p.volume_24h),
        "volume_percentage_change_24h": "0",
        "base_increment": fmt_decimal(p.base_increment),
        "quote_increment": fmt_decimal(p.quote_increment),
        "quote_min_size": fmt_decimal(p.quote_increment),
        "quote_max_size": "100000000",
        "base_min_size": fmt_decimal(p.base_min_size),
        "base_max_size": fmt_decimal(p.base_max_size),
        "base_name": p.base_name,
        "quote_name": p.quote_name,
        "watched": False,
        "is_disabled": False,
        "new": False,
        "status": "online",
        "cancel_only": p.cancel_only,
        "limit_only": p.limit_only,
        "post_only": p.post_only,
        "trading_disabled": p.trading_disabled,
        "auction_mode": False,
        "product_type": p.product_type,
        "quote_currency_id": p.quote_currency,
        "base_currency_id": p.base_currency,
        "fcm_trading_session_details": _session(p) if p.is_future else None,
        "mid_market_price": fmt_decimal((p.best_bid(spread) + p.best_ask(spread)) / 2),
        "alias": "",
        "alias_to": [],
        "base_display_symbol": p.base_currency,
        "quote_display_symbol": p.quote_currency,
        "view_only": False,
        "price_increment": fmt_decimal(p.quote_increment),
        "display_name": p.display_name,
        "product_venue": p.venue,
        "approximate_quote_24h_volume": fmt_money(p.volume_24h * p.price),
    }
    if p.is_future:
        view["future_product_details"] = _future_details(p, exchange)
    return view


def _session(p: Product) -> dict[str, Any]:
    return {
        "is_session_open": p.session_open,
        "open_time": "2020-01-01T00:00:00Z" if p.perp_style else _day_boundary(p, "open"),
        "close_time": "2030-12-20T16:00:00Z" if p.perp_style else _day_boundary(p, "close"),
        "session_state": p.session_state,
        "after_hours_order_entry_disabled": p.after_hours_order_entry_disabled,
        "closed_reason": p.closed_reason,
        "maintenance": {"start_time": None, "end_time": None},
    }


def _day_boundary(p: Product, which: str) -> str:
    # Dated CDE futures trade in daily sessions; the exact hours do not matter to the collection.
    assert p.contract_expiry is not None
    return rfc3339_seconds(p.contract_expiry - (86400 * 30 if which == "open" else 0))


def _future_details(p: Product, exchange: Exchange) -> dict[str, Any]:
    expiry = p.contract_expiry or 0.0
    details: dict[str, Any] = {
        "venue": "cde",
        "contract_code": p.contract_code,
        "contract_expiry": rfc3339_seconds(expiry),
        "contract_size": fmt_decimal(p.contract_size),
        "contract_root_unit": p.contract_root_unit,
        "group_description": p.group_description,
        "contract_expiry_timezone": "Europe/London",
        "group_short_description": f"Nano {p.contract_root_unit}",
        "risk_managed_by": "MANAGED_BY_FCM",
        # CFM perp-style contracts are listed as EXPIRING with a placeholder expiry.
        "contract_expiry_type": "EXPIRING",
        # Populated for the retired INTX perpetuals; empty for CFM products.
        "perpetual_details": {
            "open_interest": "",
            "funding_rate": "",
            "funding_time": None,
            "max_leverage": "",
            "base_asset_uuid": "",
            "underlying_type": "",
        },
        "contract_display_name": p.display_name,
        "time_to_expiry_ms": str(max(0, int((expiry - exchange.clock.now()) * 1000))),
        "non_crypto": False,
        "contract_expiry_name": rfc3339_seconds(expiry)[:10],
        "twenty_four_by_seven": p.perp_style,
        "open_interest": fmt_decimal(p.open_interest),
        "display_name": p.display_name,
        "intraday_margin_rate": {
            "long_margin_rate": fmt_decimal(p.initial_margin_rate),
            "short_margin_rate": fmt_decimal(p.initial_margin_rate),
        },
        "overnight_margin_rate": {
            "long_margin_rate": fmt_decimal(p.initial_margin_rate * 2),
            "short_margin_rate": fmt_decimal(p.initial_margin_rate * 2),
        },
        "settlement_price": fmt_decimal(p.price),
        "futures_asset_type": "FUTURES_ASSET_TYPE_CRYPTO",
        "index_price": fmt_decimal(p.price),
    }
    if p.perp_style:
        details["funding_rate"] = fmt_decimal(p.funding_rate or Decimal(0))
        details["funding_time"] = rfc3339_seconds(p.funding_time or 0.0)
        details["funding_interval"] = f"{p.funding_interval_s}s"
    return details


# ---------------------------------------------------------------------- orders and fills
def order(o: Order, exchange: Exchange) -> dict[str, Any]:
    """The full ``Order`` object of list/get order."""
    p = exchange.products[o.product_id]
    multiplier = p.contract_size if p.is_future else Decimal(1)
    filled_value = o.filled_value * multiplier
    complete = (o.filled_size / o.base_size * 100) if o.base_size else Decimal(0)
    return {
        "order_id": o.order_id,
        "product_id": o.product_id,
        "user_id": o.user_id,
        "order_configuration": o.configuration,
        "side": o.side,
        "client_order_id": o.client_order_id,
        "status": o.status,
        "time_in_force": o.time_in_force,
        "created_time": rfc3339(o.created_time),
        "completion_percentage": fmt_decimal(complete),
        "filled_size": fmt_decimal(o.filled_size),
        "average_filled_price": fmt_decimal(o.average_filled_price),
        "fee": "",
        "number_of_fills": str(o.number_of_fills),
        "filled_value": fmt_decimal(filled_value),
        "pending_cancel": o.pending_cancel,
        "size_in_quote": o.quote_size is not None,
        "total_fees": fmt_decimal(o.total_fees),
        "size_inclusive_of_fees": False,
        "total_value_after_fees": fmt_decimal(filled_value + (o.total_fees if o.side == "BUY" else -o.total_fees)),
        "trigger_status": "INVALID_ORDER_TYPE",
        "order_type": o.order_type,
        "reject_reason": o.reject_reason,
        "settled": o.status == "FILLED",
        "product_type": o.product_type,
        "reject_message": o.reject_message,
        "cancel_message": o.cancel_message,
        "order_placement_source": o.order_placement_source,
        "outstanding_hold_amount": fmt_decimal(o.hold),
        "is_liquidation": False,
        "last_fill_time": rfc3339(o.last_fill_time) if o.last_fill_time is not None else None,
        "edit_history": [],
        "leverage": o.leverage,
        "margin_type": o.margin_type,
        "retail_portfolio_id": o.portfolio_uuid,
        "originating_order_id": "",
        "attached_order_id": "",
    }


def create_order_success(o: Order) -> dict[str, Any]:
    """Response of create order / close position when the order exists (new or idempotent)."""
    return {
        "success": True,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": o.order_id,
        "success_response": {
            "order_id": o.order_id,
            "product_id": o.product_id,
            "side": o.side,
            "client_order_id": o.client_order_id,
            "attached_order_id": "",
        },
        "order_configuration": o.configuration,
    }


def create_order_failure(rejection: Rejection, configuration: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": False,
        "failure_reason": "UNKNOWN_FAILURE_REASON",
        "order_id": "",
        "error_response": rejection.error_response(),
    }
    if isinstance(configuration, dict):
        body["order_configuration"] = configuration
    return body


def fill(f: Fill, exchange: Exchange) -> dict[str, Any]:
    p = exchange.products[f.product_id]
    multiplier = p.contract_size if p.is_future else Decimal(1)
    return {
        "entry_id": f.entry_id,
        "trade_id": f.trade_id,
        "order_id": f.order_id,
        "trade_time": rfc3339(f.trade_time),
        "trade_type": f.trade_type,
        "price": fmt_decimal(f.price),
        "size": fmt_decimal(f.size),
        "commission": fmt_decimal(f.commission),
        "product_id": f.product_id,
        "sequence_timestamp": rfc3339(f.sequence_time),
        "liquidity_indicator": f.liquidity_indicator,
        "size_in_quote": False,
        "user_id": f.user_id,
        "side": f.side,
        "retail_portfolio_id": f.portfolio_uuid,
        "commission_detail_total": {
            "total_commission": fmt_decimal(f.commission),
            "gst_commission": "0",
            "withholding_commission": "0",
            "client_commission": "0",
            "venue_commission": "0",
            "regulatory_commission": "0",
            "clearing_commission": "0",
        },
        "fillSource": "FILL_SOURCE_CLOB",
        "notional_value": fmt_decimal(f.price * f.size * multiplier),
    }


# ---------------------------------------------------------------------- futures and accounts
def position(pos: Position, exchange: Exchange) -> dict[str, Any]:
    p = exchange.products[pos.product_id]
    return {
        "product_id": pos.product_id,
        "expiration_time": rfc3339_seconds(p.contract_expiry or 0.0),
        "side": pos.side,
        "number_of_contracts": fmt_decimal(abs(pos.contracts)),
        "current_price": fmt_decimal(p.price),
        "avg_entry_price": fmt_decimal(pos.avg_entry_price),
        "unrealized_pnl": fmt_money(ledger.unrealized_pnl(pos, p)),
        "daily_realized_pnl": fmt_money(pos.daily_realized_pnl),
    }


def balance_summary(portfolio: Portfolio, exchange: Exchange) -> dict[str, Any]:
    """``/cfm/balance_summary``'s ``balance_summary``: amount objects, one percentage string."""
    b = exchange.balance(portfolio)
    window = _margin_window(b)
    return {
        "futures_buying_power": amount(b.futures_buying_power),
        "total_usd_balance": amount(b.total_usd_balance),
        "cbi_usd_balance": amount(b.cbi_usd_balance),
        "cfm_usd_balance": amount(b.cfm_usd_balance),
        "total_open_orders_hold_amount": amount(b.open_orders_hold),
        "unrealized_pnl": amount(b.unrealized_pnl),
        "daily_realized_pnl": amount(b.daily_realized_pnl),
        "initial_margin": amount(b.initial_margin),
        "available_margin": amount(b.available_margin),
        "liquidation_threshold": amount(b.maintenance_margin),
        "liquidation_buffer_amount": amount(b.liquidation_buffer_amount),
        "liquidation_buffer_percentage": fmt_money(b.liquidation_buffer_percentage),
        "intraday_margin_window_measure": {**window, "margin_window_type": "FCM_MARGIN_WINDOW_TYPE_INTRADAY"},
        "overnight_margin_window_measure": {**window, "margin_window_type": "FCM_MARGIN_WINDOW_TYPE_OVERNIGHT"},
    }


def _margin_window(b: ledger.BalanceFigures) -> dict[str, str]:
    return {
        "margin_level": "MARGIN_LEVEL_TYPE_BASE",
        "initial_margin": fmt_money(b.initial_margin),
        "maintenance_margin": fmt_money(b.maintenance_margin),
        "liquidation_buffer_percentage": fmt_money(b.liquidation_buffer_percentage),
        "total_hold": fmt_money(b.open_orders_hold),
        "futures_buying_power": fmt_money(b.futures_buying_power),
    }


def account(a: Account, portfolio: Portfolio) -> dict[str, Any]:
    return {
        "uuid": a.uuid,
        "name": a.name,
        "currency": a.currency,
        "available_balance": {"value": fmt_decimal(a.available), "currency": a.currency},
        "default": a.is_default,
        "active": True,
        "created_at": rfc3339(a.created_at),
        "updated_at": rfc3339(a.created_at),
        "deleted_at": None,
        "type": "ACCOUNT_TYPE_FIAT" if a.is_fiat else "ACCOUNT_TYPE_CRYPTO",
        "ready": True,
        "hold": {"value": fmt_decimal(a.hold), "currency": a.currency},
        "retail_portfolio_id": portfolio.uuid,
        "platform": "ACCOUNT_PLATFORM_CONSUMER",
    }


# ---------------------------------------------------------------------- WebSocket payloads
def ws_order(o: Order, exchange: Exchange) -> dict[str, Any]:
    """An order as the ``user`` channel reports it (its own field names)."""
    p = exchange.products[o.product_id]
    multiplier = p.contract_size if p.is_future else Decimal(1)
    complete = (o.filled_size / o.base_size * 100) if o.base_size else Decimal(0)
    return {
        "avg_price": fmt_decimal(o.average_filled_price),
        "cancel_reason": o.cancel_message,
        "client_order_id": o.client_order_id,
        "completion_percentage": fmt_decimal(complete),
        "contract_expiry_type": "EXPIRING" if p.is_future else "UNKNOWN_CONTRACT_EXPIRY_TYPE",
        "cumulative_quantity": fmt_decimal(o.filled_size),
        "filled_value": fmt_decimal(o.filled_value * multiplier),
        "leaves_quantity": fmt_decimal(o.leaves_size),
        "limit_price": fmt_decimal(o.limit_price) if o.limit_price is not None else "0",
        "number_of_fills": str(o.number_of_fills),
        "order_id": o.order_id,
        "order_side": o.side,
        "order_type": o.order_type,
        "outstanding_hold_amount": fmt_decimal(o.hold),
        "post_only": "true" if o.post_only else "false",
        "product_id": o.product_id,
        "product_type": o.product_type,
        "reject_reason": "",
        "retail_portfolio_id": o.portfolio_uuid,
        "risk_managed_by": "MANAGED_BY_FCM" if p.is_future else "UNKNOWN_RISK_MANAGEMENT_TYPE",
        "status": o.status,
        "stop_price": "",
        "time_in_force": o.time_in_force,
        "total_fees": fmt_decimal(o.total_fees),
        "total_value_after_fees": fmt_decimal(o.filled_value * multiplier),
        "trigger_status": "INVALID_ORDER_TYPE",
        "creation_time": rfc3339(o.created_time),
        "end_time": rfc3339(o.end_time) if o.end_time is not None else "0001-01-01T00:00:00Z",
        "start_time": "0001-01-01T00:00:00Z",
    }


def ws_positions(portfolio: Portfolio, exchange: Exchange) -> dict[str, Any]:
    """The ``user`` channel's positions: CFM contracts are reported as expiring futures."""
    expiring = []
    for pos in exchange.open_positions(portfolio):
        p = exchange.products[pos.product_id]
        expiring.append(
            {
                "product_id": pos.product_id,
                "side": pos.side,
                "number_of_contracts": fmt_decimal(abs(pos.contracts)),
                "realized_pnl": fmt_money(pos.daily_realized_pnl),
                "unrealized_pnl": fmt_money(ledger.unrealized_pnl(pos, p)),
                "entry_price": fmt_decimal(pos.avg_entry_price),
            }
        )
    return {"perpetual_futures_positions": [], "expiring_futures_positions": expiring}


def ws_balance_summary(portfolio: Portfolio, exchange: Exchange) -> dict[str, Any]:
    """The futures_balance_summary channel carries plain strings, not amount objects."""
    rest = balance_summary(portfolio, exchange)
    flat: dict[str, Any] = {}
    for name, value in rest.items():
        flat[name] = value["value"] if isinstance(value, dict) and "value" in value else value
    return flat


def ticker(p: Product, exchange: Exchange) -> dict[str, Any]:
    spread = exchange.config.spread_ticks
    change = (p.price - p.open_24h) / p.open_24h * 100 if p.open_24h else Decimal(0)
    return {
        "type": "ticker",
        "product_id": p.product_id,
        "price": fmt_decimal(p.price),
        "volume_24_h": fmt_decimal(p.volume_24h),
        "low_24_h": fmt_decimal(p.low_24h),
        "high_24_h": fmt_decimal(p.high_24h),
        "low_52_w": fmt_decimal(p.low_24h),
        "high_52_w": fmt_decimal(p.high_24h),
        "price_percent_chg_24_h": fmt_decimal(change.quantize(Decimal("0.00000001"))),
        "best_bid": fmt_decimal(p.best_bid(spread)),
        "best_ask": fmt_decimal(p.best_ask(spread)),
        "best_bid_quantity": "10",
        "best_ask_quantity": "10",
    }
