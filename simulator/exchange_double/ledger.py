"""Position, PnL and margin arithmetic for CFM futures, kept apart so it can be read (and
checked) on its own.

Conventions: contracts are signed (long > 0); a contract is worth ``contract_size`` units of
the root currency; PnL = price move x contracts x contract size. Realized PnL is gross of fees;
fees are charged to the futures cash balance separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from exchange_double.models import BUY, Portfolio, Position, Product
from exchange_double.util import ZERO

AVG_PRICE_STEP = Decimal("0.00000001")


def signed(side: str, size: Decimal) -> Decimal:
    return size if side == BUY else -size


def opening_contracts(position: Position | None, side: str, size: Decimal) -> Decimal:
    """The part of an order that adds exposure (needs margin); the rest reduces a position."""
    current = position.contracts if position else ZERO
    delta = signed(side, size)
    if current == 0 or (current > 0) == (delta > 0):
        return size
    return max(ZERO, size - abs(current))


def apply_fill(position: Position, side: str, size: Decimal, price: Decimal, contract_size: Decimal) -> Decimal:
    """Apply a fill to ``position`` in place and return the realized PnL it produced.

    Reducing fills realize PnL against the average entry; a fill that crosses zero closes the
    old position and opens the remainder at the fill price; adding fills average the entry.
    """
    current = position.contracts
    delta = signed(side, size)
    if current == 0 or (current > 0) == (delta > 0):
        total = abs(current) + size
        position.avg_entry_price = (
            (abs(current) * position.avg_entry_price + size * price) / total
        ).quantize(AVG_PRICE_STEP)
        position.contracts = current + delta
        return ZERO
    closing = min(size, abs(current))
    direction = Decimal(1) if current > 0 else Decimal(-1)
    realized = (price - position.avg_entry_price) * closing * contract_size * direction
    position.contracts = current + delta
    if position.contracts != 0 and (position.contracts > 0) != (current > 0):
        position.avg_entry_price = price
    elif position.contracts == 0:
        position.avg_entry_price = ZERO
    position.daily_realized_pnl += realized
    return realized


def unrealized_pnl(position: Position, product: Product) -> Decimal:
    return (product.price - position.avg_entry_price) * position.contracts * product.contract_size


def notional(contracts: Decimal, product: Product, price: Decimal | None = None) -> Decimal:
    return abs(contracts) * product.contract_size * (product.price if price is None else price)


@dataclass(frozen=True, slots=True)
class BalanceFigures:
    """The numbers behind ``/cfm/balance_summary`` and the futures_balance_summary channel."""

    cbi_usd_balance: Decimal
    cfm_usd_balance: Decimal
    unrealized_pnl: Decimal
    daily_realized_pnl: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    open_orders_hold: Decimal

    @property
    def total_usd_balance(self) -> Decimal:
        return self.cbi_usd_balance + self.cfm_usd_balance

    @property
    def equity(self) -> Decimal:
        return self.cfm_usd_balance + self.unrealized_pnl

    @property
    def available_margin(self) -> Decimal:
        return self.equity - self.initial_margin - self.open_orders_hold

    @property
    def futures_buying_power(self) -> Decimal:
        return max(ZERO, self.available_margin)

    @property
    def liquidation_buffer_amount(self) -> Decimal:
        return self.equity - self.maintenance_margin

    @property
    def liquidation_buffer_percentage(self) -> Decimal:
        """Buffer as a percentage of equity: how far equity can fall before liquidation."""
        if self.equity <= 0:
            return ZERO
        return self.liquidation_buffer_amount / self.equity * 100


def balance_figures(portfolio: Portfolio, products: dict[str, Product]) -> BalanceFigures:
    unrealized = initial = maintenance = ZERO
    for position in portfolio.positions.values():
        if position.contracts == 0:
            continue
        product = products[position.product_id]
        unrealized += unrealized_pnl(position, product)
        exposure = notional(position.contracts, product)
        initial += exposure * product.initial_margin_rate
        maintenance += exposure * product.maintenance_margin_rate
    usd = portfolio.accounts.get("USD")
    return BalanceFigures(
        cbi_usd_balance=(usd.available + usd.hold) if usd else ZERO,
        cfm_usd_balance=portfolio.cfm_usd_balance,
        unrealized_pnl=unrealized,
        daily_realized_pnl=portfolio.daily_realized_pnl,
        initial_margin=initial,
        maintenance_margin=maintenance,
        open_orders_hold=portfolio.futures_hold,
    )
