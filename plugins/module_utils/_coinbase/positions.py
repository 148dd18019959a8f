# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""CFM futures positions: reading them as numbers, daily PnL against a loss limit, and closing
or reducing them safely (``PositionCloser``, behind ``coinbase_position``).

- Money and sizes arrive as decimal strings. All arithmetic here is in ``Decimal``; results are
  rendered as ``{"value": <number>, "exact": "<string>"}`` so a playbook can compare numbers
  and a record can keep the exact figure.
- Closing goes through ``POST /orders/close_position`` only: the venue derives side and size
  from the live position, so it cannot open or flip one (a plain opposite-side market order
  can). There is no ``reduce_only`` flag on Advanced Trade.
- Every close order's ``client_order_id`` is derived from the incident id, the product, the
  action, its target and an attempt number, so a re-run of the same incident finds (or, at the
  venue, is answered with) the order it already placed instead of placing a second one.

No Ansible imports: runbooks and scripts reuse this as is.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Optional

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import products as products_mod
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import WORKING_ORDER_STATUSES
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    AuthenticationError,
    BusinessRejectError,
    CoinbaseError,
    InputError,
    PermissionDeniedError,
)

ZERO = Decimal(0)
HUNDRED = Decimal(100)
# Fixed forever: changing it would change every incident's client_order_ids (and break idempotency).
INCIDENT_NAMESPACE = uuid.UUID("6f1d2a9e-4b7c-5e3a-9d21-0c8b7f4e2a10")
ROUNDINGS = ("down", "up")


# ---------------------------------------------------------------------- decimal handling
def to_decimal(value: Any) -> Optional[Decimal]:
    """A Decimal from a decimal string, a number or an amount object ``{value, currency}``; None when absent."""
    if isinstance(value, dict):
        value = value.get("value")
    if value is None or isinstance(value, bool):
        return None
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError("%r is not a decimal number" % (value,)) from None
    if not number.is_finite():
        raise ValueError("%r is not a finite number" % (value,))
    return number


def exact(number: Optional[Decimal]) -> Optional[str]:
    """Plain notation without an exponent (Decimal('1E+1') -> '10'), as Coinbase writes numbers."""
    if number is None:
        return None
    text = format(number, "f")
    return "0" if text in ("-0", "-0.0") else text


def as_number(number: Optional[Decimal]) -> Any:
    """An int when whole (contract counts), else a float, for comparisons in playbooks."""
    if number is None:
        return None
    if number == number.to_integral_value() and abs(number) < 2 ** 53:
        return int(number)
    return float(number)


def or_zero(number: Optional[Decimal]) -> Decimal:
    return ZERO if number is None else number


def figure(number: Optional[Decimal], currency: Optional[str] = None) -> dict:
    view = {"value": as_number(number), "exact": exact(number)}
    if currency:
        view["currency"] = currency
    return view


def _amount_currency(value: Any) -> Optional[str]:
    return value.get("currency") if isinstance(value, dict) else None


# ---------------------------------------------------------------------- positions
def signed_contracts(position: dict) -> Decimal:
    contracts = or_zero(to_decimal(position.get("number_of_contracts")))
    return -abs(contracts) if str(position.get("side") or "").upper() == "SHORT" else abs(contracts)


def contract_size(product: Optional[dict]) -> Optional[Decimal]:
    return to_decimal(products_mod.details(product or {}).get("contract_size"))


def display_name(product: Optional[dict], fallback: Optional[str] = None) -> Optional[str]:
    product = product or {}
    return product.get("display_name") or products_mod.details(product).get("display_name") or fallback


class PositionFigures:
    """One position's numbers, in Decimal. ``notional`` = contracts x contract_size x current price."""

    def __init__(self, position: dict, product: Optional[dict]) -> None:
        self.raw = position
        self.product_id = position.get("product_id")
        self.display_name = display_name(product, self.product_id)
        self.side = str(position.get("side") or "").upper() or None
        self.contracts = abs(or_zero(to_decimal(position.get("number_of_contracts"))))
        self.signed_contracts = signed_contracts(position)
        self.entry_price = to_decimal(position.get("avg_entry_price"))
        self.current_price = to_decimal(position.get("current_price"))
        self.unrealized_pnl = or_zero(to_decimal(position.get("unrealized_pnl")))
        self.daily_realized_pnl = or_zero(to_decimal(position.get("daily_realized_pnl")))
        self.contract_size = contract_size(product)
        if self.contract_size is not None and self.current_price is not None:
            self.notional: Optional[Decimal] = self.contracts * self.contract_size * self.current_price
        else:
            self.notional = None

    def as_dict(self) -> dict:
        return {
            "product_id": self.product_id,
            "display_name": self.display_name,
            "side": self.side,
            "contracts": as_number(self.contracts),
            "signed_contracts": as_number(self.signed_contracts),
            "entry_price": figure(self.entry_price),
            "current_price": figure(self.current_price),
            "unrealized_pnl": figure(self.unrealized_pnl),
            "daily_realized_pnl": figure(self.daily_realized_pnl),
            "contract_size": figure(self.contract_size),
            "notional": figure(self.notional),
            "expiration_time": self.raw.get("expiration_time"),
        }


def describe_positions(positions: Iterable[dict], catalogue: Iterable[dict]) -> list:
    """PositionFigures for every open position (zero-contract entries are dropped)."""
    by_id = {p.get("product_id"): p for p in catalogue}
    figures = [PositionFigures(p, by_id.get(p.get("product_id"))) for p in positions]
    return [f for f in figures if f.contracts != 0]


def position_totals(figures: list) -> dict:
    long_notional = sum((or_zero(f.notional) for f in figures if f.signed_contracts > 0), ZERO)
    short_notional = sum((or_zero(f.notional) for f in figures if f.signed_contracts < 0), ZERO)
    return {
        "positions": len(figures),
        "long_contracts": as_number(sum((f.contracts for f in figures if f.signed_contracts > 0), ZERO)),
        "short_contracts": as_number(sum((f.contracts for f in figures if f.signed_contracts < 0), ZERO)),
        "unrealized_pnl": figure(sum((f.unrealized_pnl for f in figures), ZERO)),
        "daily_realized_pnl": figure(sum((f.daily_realized_pnl for f in figures), ZERO)),
        "gross_notional": figure(long_notional + short_notional),
        "net_notional": figure(long_notional - short_notional),
        "notional_complete": all(f.notional is not None for f in figures),
    }


BALANCE_FIELDS = (
    "futures_buying_power", "total_usd_balance", "cbi_usd_balance", "cfm_usd_balance",
    "total_open_orders_hold_amount", "unrealized_pnl", "daily_realized_pnl", "initial_margin",
    "available_margin", "liquidation_threshold", "liquidation_buffer_amount",
)


def describe_balance_summary(summary: dict) -> dict:
    """The balance summary's money fields as figures; the percentage as a figure too."""
    view = {}
    for name in BALANCE_FIELDS:
        if name in summary:
            view[name] = figure(to_decimal(summary[name]), _amount_currency(summary[name]))
    if "liquidation_buffer_percentage" in summary:
        view["liquidation_buffer_percentage"] = figure(to_decimal(summary["liquidation_buffer_percentage"]))
    return view


# ---------------------------------------------------------------------- daily PnL against the loss limit
def daily_pnl(summary: dict, figures: list, daily_loss_limit: Decimal, warn_at_percent: Optional[Decimal] = None,
              include_unrealized: bool = True) -> dict:
    """Today's PnL against SOP 4's daily loss limit.

    Sign convention: PnL figures are signed as Coinbase reports them (negative = loss);
    ``daily_loss_limit`` is a positive amount, the largest loss tolerated. The limit is breached
    when today's loss reaches it (``total <= -limit``). Realized PnL comes from the balance
    summary (it includes positions closed today, which no longer list); unrealized from the
    balance summary too, with the per-position sums alongside as a cross-check.
    """
    if daily_loss_limit <= 0:
        raise InputError("daily_loss_limit must be a positive amount (the largest loss tolerated), got %s." % daily_loss_limit)
    positions_realized = sum((f.daily_realized_pnl for f in figures), ZERO)
    positions_unrealized = sum((f.unrealized_pnl for f in figures), ZERO)
    summary_realized = to_decimal(summary.get("daily_realized_pnl"))
    summary_unrealized = to_decimal(summary.get("unrealized_pnl"))
    sources = {
        "realized": "balance_summary" if summary_realized is not None else "positions",
        "unrealized": "balance_summary" if summary_unrealized is not None else "positions",
    }
    realized = summary_realized if summary_realized is not None else positions_realized
    unrealized = summary_unrealized if summary_unrealized is not None else positions_unrealized
    total = realized + (unrealized if include_unrealized else ZERO)
    loss = -total if total < 0 else ZERO
    used = loss / daily_loss_limit * HUNDRED
    result = {
        "realized_today": figure(realized),
        "unrealized": figure(unrealized),
        "total": figure(total),
        "loss": figure(loss),
        "daily_loss_limit": figure(daily_loss_limit),
        "margin_to_limit": figure(daily_loss_limit - loss),
        "used_percent": figure(used.quantize(Decimal("0.01"))),
        "breached": loss >= daily_loss_limit,
        "include_unrealized": include_unrealized,
        "sources": sources,
        "positions_realized_today": figure(positions_realized),
        "positions_unrealized": figure(positions_unrealized),
        "unrealized_discrepancy": figure(unrealized - positions_unrealized),
    }
    if warn_at_percent is not None:
        result["warn_at_percent"] = figure(warn_at_percent)
        result["warning"] = used >= warn_at_percent
    else:
        result["warning"] = False
    return result


# ---------------------------------------------------------------------- closing and reducing
def incident_client_order_id(incident_id: str, product_id: str, action: str, target: str, attempt: int = 1) -> str:
    """The deterministic client_order_id of one close order of an incident (a UUID, like the SDK's own ids)."""
    seed = "|".join(("tradeops", incident_id, product_id, action, target, str(attempt)))
    return str(uuid.uuid5(INCIDENT_NAMESPACE, seed))


def reduce_size(held: Decimal, percent: Decimal, increment: Optional[Decimal], rounding: str = "down") -> Decimal:
    """Contracts to close to reduce ``held`` by ``percent``, in whole ``increment`` steps.

    ``down`` (the default) never closes more than asked: 50 % of 3 contracts closes 1. ``up``
    closes at least what was asked: 50 % of 3 closes 2. Neither ever exceeds the position.
    """
    if not ZERO < percent <= HUNDRED:
        raise InputError("percent must be more than 0 and at most 100, got %s." % percent)
    if rounding not in ROUNDINGS:
        raise InputError("rounding must be one of %s, got %r." % (", ".join(ROUNDINGS), rounding))
    held = abs(held)
    step = increment if increment is not None and increment > 0 else Decimal(1)
    wanted = held * percent / HUNDRED
    steps = (wanted / step).to_integral_value(rounding=ROUND_FLOOR if rounding == "down" else ROUND_CEILING)
    return min(steps * step, held)


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def session_state(product: dict) -> dict:
    """Whether the venue takes orders for this product now, and if not, why."""
    session = product.get("fcm_trading_session_details") or {}
    is_open = session.get("is_session_open")
    blockers = []
    if is_open is False:
        blockers.append("the trading session is closed (%s, %s)" % (session.get("session_state") or "?", session.get("closed_reason") or "?"))
    if product.get("trading_disabled"):
        blockers.append("trading is disabled for the product")
    if product.get("cancel_only"):
        blockers.append("the product is cancel-only")
    return {
        "open": not blockers,
        "is_session_open": is_open,
        "session_state": session.get("session_state"),
        "closed_reason": session.get("closed_reason"),
        "blockers": blockers,
    }


class PositionPlan:
    """What to do for one product, and what happened."""

    def __init__(self, product_id: str, product: dict, action: str, requested: Optional[str] = None,
                 percent: Optional[Decimal] = None) -> None:
        self.product_id = product_id
        self.product = product
        self.requested = requested or product_id
        self.action = action  # close | reduce
        self.percent = percent
        self.side: Optional[str] = None
        self.contracts = ZERO
        self.size: Optional[Decimal] = None  # None for a close: the venue closes the whole position
        self.target = ZERO
        self.client_order_id: Optional[str] = None
        self.attempt = 0
        self.session = session_state(product)
        self.outcome = "planned"
        self.sent = False  # this run placed (or was answered with) a close order
        self.reason: Optional[str] = None
        self.order_id: Optional[str] = None
        self.order: dict = {}
        self.earlier_orders: list = []
        self.contracts_after: Optional[Decimal] = None
        self.verified: Optional[bool] = None
        self.error: Optional[dict] = None

    @property
    def target_label(self) -> str:
        return "flat" if self.action == "close" else "pct-%s" % exact(self.percent.normalize())

    @property
    def order_side(self) -> Optional[str]:
        return {"LONG": "SELL", "SHORT": "BUY"}.get(self.side or "")

    @property
    def failed(self) -> bool:
        return self.outcome in ("blocked", "rejected", "error", "unverified")

    def as_dict(self) -> dict:
        view = {
            "product_id": self.product_id,
            "display_name": display_name(self.product, self.product_id),
            "requested": self.requested,
            "action": self.action,
            "percent": as_number(self.percent),
            "side": self.side,
            "order_side": self.order_side,
            "contracts_before": as_number(self.contracts),
            "size": exact(self.size) if self.size is not None else ("all" if self.action == "close" and self.contracts else None),
            "target_contracts": as_number(self.target),
            "contracts_after": as_number(self.contracts_after),
            "client_order_id": self.client_order_id,
            "attempt": self.attempt or None,
            "session": self.session,
            "outcome": self.outcome,
            "reason": self.reason,
            "order_id": self.order_id,
            "order": self.order,
            "earlier_orders": self.earlier_orders,
            "verified": self.verified,
        }
        if self.error:
            view["error"] = self.error
        return view

    def would(self) -> dict:
        """The check-mode line: what a real run would send."""
        return {
            "product_id": self.product_id,
            "display_name": display_name(self.product, self.product_id),
            "action": self.action,
            "side": self.side,
            "contracts": as_number(self.contracts),
            "size": exact(self.size) if self.size is not None else "all",
            "order_side": self.order_side,
            "target_contracts": as_number(self.target),
            "client_order_id": self.client_order_id,
        }


def _order_view(order: dict) -> dict:
    return {
        "order_id": order.get("order_id"),
        "client_order_id": order.get("client_order_id"),
        "status": order.get("status"),
        "side": order.get("side"),
        "filled_size": order.get("filled_size"),
        "average_filled_price": order.get("average_filled_price"),
        "created_time": order.get("created_time"),
    }


class PositionCloser:
    """Plan, send and verify close / reduce orders for one incident.

    Idempotency: before sending, the product's orders of the last ``lookback_hours`` are searched
    for this incident's client_order_ids (attempt 1, 2, ...). A reduce that already filled is
    not repeated; a close is repeated only while the position is not flat, with the next attempt
    number (a close can never overshoot: the venue closes what is held). A working order of the
    incident is waited for, not duplicated. Should the search miss an order, the venue answers a
    repeated client_order_id with the existing order instead of placing a new one.
    """

    def __init__(self, client: Any, incident_id: str, *, lookback_hours: float = 24.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 wall_clock: Callable[[], float] = time.time) -> None:
        if not incident_id or not str(incident_id).strip():
            raise InputError("incident_id must be a non-empty string, for example the incident ticket number.")
        self.client = client
        self.incident_id = str(incident_id).strip()
        self.lookback_hours = lookback_hours
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock

    # ------------------------------------------------------------ planning
    def plan(self, plan: PositionPlan, position: Optional[dict], rounding: str = "down") -> PositionPlan:
        if position is not None and signed_contracts(position) != 0:
            held = signed_contracts(position)
            plan.side = "LONG" if held > 0 else "SHORT"
            plan.contracts = abs(held)
        if plan.contracts == 0:
            plan.outcome = "already_flat"
            plan.contracts_after = ZERO
            return plan
        if plan.action == "reduce":
            increment = to_decimal(plan.product.get("base_increment"))
            plan.size = reduce_size(plan.contracts, plan.percent, increment, rounding)
            plan.target = plan.contracts - plan.size
        earlier = self._incident_orders(plan)
        plan.earlier_orders = [dict(_order_view(o), attempt=n) for n, _cid, o in earlier]
        working = [o for _n, _cid, o in earlier if o.get("status") in WORKING_ORDER_STATUSES]
        filled = [o for _n, _cid, o in earlier if or_zero(to_decimal(o.get("filled_size"))) > 0]
        if plan.action == "reduce" and filled:
            plan.outcome = "already_reduced"
            plan.order_id = filled[0].get("order_id")
            plan.order = _order_view(filled[0])
            plan.reason = "This incident already reduced %s by %s %% (order %s); use another incident_id to reduce again." % (
                plan.product_id, exact(plan.percent), plan.order_id)
            plan.contracts_after = plan.contracts
            return plan
        if working:
            plan.outcome = "pending"
            plan.order_id = working[0].get("order_id")
            plan.order = _order_view(working[0])
            plan.reason = "An order of this incident is still working; waiting for it instead of sending another."
            return plan
        if plan.size is not None and plan.size == 0:
            plan.outcome = "nothing_to_reduce"
            plan.reason = "%s %% of %s contracts rounds down to 0 whole contracts; nothing to send (rounding: up would close 1)." % (
                exact(plan.percent), exact(plan.contracts))
            plan.contracts_after = plan.contracts
            return plan
        if not plan.session["open"]:
            plan.outcome = "blocked"
            plan.reason = "Not sent: %s." % "; ".join(plan.session["blockers"])
            return plan
        plan.attempt = len(earlier) + 1
        plan.client_order_id = incident_client_order_id(self.incident_id, plan.product_id, plan.action, plan.target_label, plan.attempt)
        plan.outcome = "to_send"
        return plan

    def _incident_orders(self, plan: PositionPlan) -> list:
        """[(attempt, client_order_id, order)] of this incident's earlier orders for this action, attempt 1 upwards."""
        since = _rfc3339(self._wall_clock() - self.lookback_hours * 3600.0)
        orders = self.client.list_orders(product_ids=[plan.product_id], start_date=since, page_size=1000)
        by_client_id = {o.get("client_order_id"): o for o in orders if o.get("client_order_id")}
        found = []
        attempt = 1
        while True:
            client_order_id = incident_client_order_id(self.incident_id, plan.product_id, plan.action, plan.target_label, attempt)
            order = by_client_id.get(client_order_id)
            if order is None:
                return found
            found.append((attempt, client_order_id, order))
            attempt += 1

    # ------------------------------------------------------------ sending
    def send(self, plan: PositionPlan) -> PositionPlan:
        """POST close_position for a planned order. Refusals are per product; a refused key stops everything."""
        if plan.outcome != "to_send":
            return plan
        size = exact(plan.size) if plan.size is not None else None
        try:
            response = self.client.close_position(plan.client_order_id, plan.product_id, size=size)
        except (AuthenticationError, PermissionDeniedError):
            raise
        except BusinessRejectError as exc:
            if exc.error == "NO_OPEN_POSITION":
                plan.outcome = "already_flat"  # closed by someone else between our read and our order
                plan.reason = "The venue found no open position to close."
                return plan
            plan.outcome = "rejected"
            plan.reason = "The venue refused the close order: %s (%s)." % (exc.details or exc.message, exc.error)
            plan.error = exc.to_dict()
            return plan
        except CoinbaseError as exc:
            plan.outcome = "error"
            plan.reason = ("The close order's fate is unknown: %s Re-run with the same incident_id: the same "
                           "client_order_id cannot close twice." % exc)
            plan.error = exc.to_dict()
            return plan
        success = response.get("success_response") or {}
        plan.order_id = success.get("order_id") or response.get("order_id")
        plan.outcome = "sent"
        plan.sent = True
        return plan

    # ------------------------------------------------------------ verifying
    def reached(self, plan: PositionPlan, position: Optional[dict]) -> bool:
        """Flat for a close; at or below the target, same side, for a reduce."""
        held = signed_contracts(position) if position else ZERO
        plan.contracts_after = abs(held)
        if held == 0:
            return True
        if plan.action == "close":
            return False
        same_side = (held > 0) == (plan.side == "LONG")
        return same_side and abs(held) <= plan.target

    def verify(self, plans: list, timeout: float, interval: float = 0.5) -> None:
        """Re-read positions until every sent or pending plan reached its target, or ``timeout`` passes."""
        waiting = [p for p in plans if p.outcome in ("sent", "pending")]
        if not waiting:
            return
        give_up_at = self._clock() + timeout
        read_error = None
        pending = waiting
        while True:
            try:
                positions = {p.get("product_id"): p for p in self.client.list_positions()}
            except CoinbaseError as exc:  # after the client's retries; the orders are out, say so
                read_error = exc
                break
            pending = [p for p in waiting if not self.reached(p, positions.get(p.product_id))]
            if not pending or self._clock() >= give_up_at:
                break
            self._sleep(min(interval, max(0.0, give_up_at - self._clock())))
        for plan in waiting:
            plan.verified = plan not in pending
            plan.outcome = ("closed" if plan.action == "close" else "reduced") if plan.verified else "unverified"
            if read_error is not None and not plan.verified:
                plan.reason = "Could not re-read positions to verify: %s" % read_error
                plan.error = read_error.to_dict()
                continue
            if plan.order_id:
                try:
                    plan.order = _order_view(self.client.get_order(plan.order_id))
                except CoinbaseError as exc:
                    plan.order = {"order_id": plan.order_id, "error": exc.message}
            if not plan.verified:
                plan.reason = "After %.0f s the position is %s contracts, the target was %s." % (
                    timeout, exact(plan.contracts_after), exact(plan.target))
