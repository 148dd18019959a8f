"""Views of the whole exchange for people: the control API's state summary and the snapshot
written to the state directory on shutdown (for post-drill inspection)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from exchange_double import views
from exchange_double.context import Double
from exchange_double.models import Portfolio
from exchange_double.util import fmt_decimal, rfc3339


def portfolio_summary(double: Double, portfolio: Portfolio) -> dict[str, Any]:
    exchange = double.exchange
    by_status = {status: len(index) for status, index in sorted(portfolio.orders_by_status.items()) if len(index)}
    return {
        "uuid": portfolio.uuid,
        "name": portfolio.name,
        "portfolio_type": portfolio.portfolio_type,
        "orders_by_status": by_status,
        "positions": [views.position(p, exchange) for p in exchange.open_positions(portfolio)],
        "balance_summary": views.balance_summary(portfolio, exchange),
        "accounts": {
            a.currency: {"available": fmt_decimal(a.available), "hold": fmt_decimal(a.hold)}
            for a in portfolio.accounts.values()
        },
        "fills": len(portfolio.fills_by_time),
        "keys": [k.name for k in exchange.keys.all() if k.portfolio_uuid == portfolio.uuid],
    }


def state_summary(double: Double, portfolio_uuid: str | None = None) -> dict[str, Any]:
    """Orders by status, positions and balances per portfolio; products at a glance."""
    exchange = double.exchange
    portfolios = [exchange.portfolio(portfolio_uuid)] if portfolio_uuid else list(exchange.portfolios.values())
    totals: Counter[str] = Counter()
    for portfolio in portfolios:
        for status, index in portfolio.orders_by_status.items():
            totals[status] += len(index)
    return {
        "time": rfc3339(double.clock.now()),
        "clock_offset_s": double.clock.offset,
        "default_portfolio_uuid": exchange.default_portfolio.uuid,
        "orders_by_status": {status: count for status, count in sorted(totals.items()) if count},
        "portfolios": [portfolio_summary(double, p) for p in portfolios],
        "products": [
            {
                "product_id": p.product_id,
                "price": fmt_decimal(p.price),
                "session_open": p.session_open,
                "funding_rate": fmt_decimal(p.funding_rate) if p.funding_rate is not None else None,
            }
            for p in exchange.products.values()
        ],
        "websocket_connections": len(double.hub.connections),
    }


def full_snapshot(double: Double) -> dict[str, Any]:
    """Everything, rendered as the API would (public key material only, never secrets)."""
    exchange = double.exchange
    return {
        "summary": state_summary(double),
        "config": double.config.as_dict(),
        "keys": [k.describe() for k in exchange.keys.all()],
        "products": [views.product(p, exchange) for p in exchange.products.values()],
        "orders": [views.order(o, exchange) for o in exchange.orders.values()],
        "fills": [views.fill(f, exchange) for f in exchange.fills.values()],
        "faults": double.faults.describe(),
    }
