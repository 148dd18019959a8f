# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Working orders: listing them with the kill switch's filters, counting them, and cancelling
them all (``CancelAll``, the engine behind ``coinbase_orders state=cancelled``).

Facts this rests on (see the API fact sheet):
- Working orders are OPEN, PENDING, QUEUED and CANCEL_QUEUED; all of them can still trade. OPEN
  cannot be combined with other statuses in one query, so the client asks for each separately.
- At most 1000 OPEN orders are listed across all pages; more only show up once some are gone.
- ``batch_cancel`` takes at most 100 ids and answers per order; ``success`` means the cancel was
  *initiated*, so only a fresh listing confirms it. There is no cancel-all endpoint.
- Keys are portfolio-scoped: everything here sees and cancels only the key's portfolio.

No Ansible imports: a runbook benchmark and scripts reuse this as is.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any, Callable, Iterable, Optional

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import products as products_mod
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import (
    MAX_CANCEL_BATCH,
    WORKING_ORDER_STATUSES,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    AuthenticationError,
    CoinbaseError,
    InputError,
    PermissionDeniedError,
    RequestRejectedError,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.timeutil import iso_utc

OPEN_LIST_CAP = 1000  # Coinbase lists at most this many OPEN orders, across all pages
DEFAULT_PAGE_SIZE = 1000
CANCEL_QUEUED = "CANCEL_QUEUED"
# The drill bots' client_order_id is <host>-<epoch ms>-<seq>; host names may contain dashes.
DEFAULT_PREFIX_PATTERN = r"^(?P<prefix>.+)-\d{10,}-\d+$"
NO_PREFIX = "(none)"
# A cancel answered with this is already under way: as good as initiated.
ALREADY_CANCELLING = frozenset({"DUPLICATE_CANCEL_REQUEST"})
# Errors that no further round can fix: a refused key, a missing permission, a malformed request.
FATAL_ERRORS = (AuthenticationError, PermissionDeniedError, RequestRejectedError, InputError)


# ---------------------------------------------------------------------- products
def resolve_product_names(client: Any, names: Optional[Iterable[str]]) -> list:
    """``[{requested, product_id, display_name}]`` for names like BTC-PERP; InputError names the unknown one."""
    names = [n for n in (names or []) if n]
    if not names:
        return []
    resolved = products_mod.resolve(client.list_products(), names)
    return [{"requested": r["requested"], "product_id": r["product_id"], "display_name": r["display_name"]} for r in resolved]


# ---------------------------------------------------------------------- client_order_id prefixes
class PrefixRule:
    """Which part of a client_order_id names who placed the order (the host, for the drill bots).

    The pattern's named group ``prefix`` (else its first group, else the whole match) is the
    prefix; ids that do not match count under ``(none)``.
    """

    def __init__(self, pattern: str = DEFAULT_PREFIX_PATTERN) -> None:
        try:
            self.regex = re.compile(pattern)
        except re.error as exc:
            raise InputError("client_order_id_pattern %r is not a valid regular expression: %s." % (pattern, exc)) from None
        self.pattern = pattern

    def prefix(self, client_order_id: Optional[str]) -> str:
        match = self.regex.search(client_order_id or "")
        if not match:
            return NO_PREFIX
        if "prefix" in self.regex.groupindex:
            found = match.group("prefix")
        elif self.regex.groups:
            found = match.group(1)
        else:
            found = match.group(0)
        return found or NO_PREFIX


# ---------------------------------------------------------------------- listing
def order_size(order: dict) -> tuple:
    """(base_size, quote_size, limit_price) from the order's one configuration, as strings or None."""
    configuration = order.get("order_configuration") or {}
    params = next(iter(configuration.values()), {}) if isinstance(configuration, dict) and configuration else {}
    if not isinstance(params, dict):
        params = {}
    return params.get("base_size") or None, params.get("quote_size") or None, params.get("limit_price") or None


def compact(order: dict, prefix_rule: Optional[PrefixRule] = None) -> dict:
    """The fields an operator reads, instead of Coinbase's forty."""
    base_size, quote_size, limit_price = order_size(order)
    view = {
        "order_id": order.get("order_id"),
        "client_order_id": order.get("client_order_id"),
        "product_id": order.get("product_id"),
        "product_type": order.get("product_type"),
        "side": order.get("side"),
        "status": order.get("status"),
        "order_type": order.get("order_type"),
        "base_size": base_size,
        "quote_size": quote_size,
        "limit_price": limit_price,
        "filled_size": order.get("filled_size"),
        "created_time": order.get("created_time"),
    }
    if prefix_rule is not None:
        view["prefix"] = prefix_rule.prefix(order.get("client_order_id"))
    return view


class OrderFilter:
    """The filters of a listing. Product, product type and side are applied by the API; the
    client_order_id prefix by us (the API has no such filter)."""

    def __init__(self, product_ids: Optional[Iterable[str]] = None, product_type: Optional[str] = None,
                 order_side: Optional[str] = None, client_order_id_prefix: Optional[str] = None,
                 statuses: Iterable[str] = WORKING_ORDER_STATUSES, page_size: Optional[int] = DEFAULT_PAGE_SIZE) -> None:
        self.product_ids = list(product_ids or [])
        self.product_type = product_type or None
        self.order_side = order_side or None
        self.client_order_id_prefix = client_order_id_prefix or None
        self.statuses = list(statuses)
        self.page_size = page_size

    def as_dict(self) -> dict:
        return {
            "product_ids": self.product_ids,
            "product_type": self.product_type,
            "order_side": self.order_side,
            "client_order_id_prefix": self.client_order_id_prefix,
            "statuses": self.statuses,
        }

    def matches(self, order: dict) -> bool:
        return not self.client_order_id_prefix or str(order.get("client_order_id") or "").startswith(self.client_order_id_prefix)

    def list(self, client: Any) -> "Listing":
        listed = client.list_working_orders(self.product_ids, self.product_type, self.order_side,
                                            statuses=self.statuses, page_size=self.page_size)
        open_count = sum(1 for o in listed if o.get("status") == "OPEN")
        matching = [o for o in listed if self.matches(o)]
        return Listing(matching, capped=open_count >= OPEN_LIST_CAP, filtered_out=len(listed) - len(matching))


class Listing:
    """One listing of working orders. ``capped``: the OPEN list hit Coinbase's 1000 cap, so more may exist."""

    def __init__(self, orders: list, capped: bool = False, filtered_out: int = 0) -> None:
        self.orders = orders
        self.capped = capped
        self.filtered_out = filtered_out

    @property
    def complete(self) -> bool:
        """Whether this listing can prove what it does not show. A capped listing whose
        orders were all ours still shrinks as we cancel; a capped listing padded with
        orders we filtered out can hide ours behind the cap indefinitely."""
        return not (self.capped and self.filtered_out)


def count_by(orders: Iterable[dict], field: str) -> dict:
    return dict(sorted(Counter(str(o.get(field) or "") for o in orders).items()))


def summarize(orders: list, prefix_rule: PrefixRule) -> dict:
    """Counts per product, status, side and client_order_id prefix."""
    return {
        "count": len(orders),
        "by_product": count_by(orders, "product_id"),
        "by_status": count_by(orders, "status"),
        "by_side": count_by(orders, "side"),
        "by_prefix": dict(sorted(Counter(prefix_rule.prefix(o.get("client_order_id")) for o in orders).items())),
    }


# ---------------------------------------------------------------------- the cancel-all engine
class _Tracked:
    """What we know about one order during a sweep."""

    __slots__ = ("order", "attempts", "reasons", "initiated", "last_failure", "outcome")

    def __init__(self, order: dict) -> None:
        self.order = order
        self.attempts = 0
        self.reasons: list = []  # every failure reason, in order
        self.initiated = False  # a cancel of ours was initiated at some point
        self.last_failure: Optional[str] = None  # the latest attempt's failure reason, None if it worked
        self.outcome: Optional[str] = None  # cancelled | gone, once it left the working set


class CancelAll:
    """Cancel every working order matching ``order_filter``, and prove it by re-listing.

    A round lists the working orders (all pages, each status separately) and cancels them in
    batches of ``batch_size``. Rounds repeat until a listing shows none left and stays empty for
    ``quiet_period`` seconds (bots may still be placing orders), or ``deadline`` seconds pass,
    or ``max_rounds`` rounds ran. Orders whose cancel failed are sent again in the next round,
    at most ``cancel_retries`` times each. Orders in CANCEL_QUEUED are not sent again: the next
    listing, ``poll_interval`` later, says whether they went. An order counts as cancelled once
    its cancel was initiated and it no longer lists as working; one that left the working set
    without a cancel of ours initiated (filled, or cancelled by someone else) counts as gone.

    Measured against the exchange double with 20 ms latency per request: 1,000 open orders take
    one listing (page size 1000), ten batch calls and one confirming listing, well under a
    second, so requests are sent one at a time (simpler, and always under the rate limit).
    """

    def __init__(self, client: Any, order_filter: OrderFilter, *, deadline: float = 60.0, max_rounds: int = 50,
                 cancel_retries: int = 5, batch_size: int = MAX_CANCEL_BATCH, poll_interval: float = 0.5,
                 quiet_period: float = 1.0, prefix_rule: Optional[PrefixRule] = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if not 1 <= batch_size <= MAX_CANCEL_BATCH:
            raise InputError("batch_size must be between 1 and %d, got %s." % (MAX_CANCEL_BATCH, batch_size))
        if deadline <= 0 or max_rounds < 1 or cancel_retries < 0 or poll_interval < 0 or quiet_period < 0:
            raise InputError("deadline must be > 0, max_rounds >= 1, cancel_retries, poll_interval and quiet_period >= 0.")
        self.client = client
        self.filter = order_filter
        self.deadline_s = float(deadline)
        self.max_rounds = max_rounds
        self.cancel_retries = cancel_retries
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.quiet_period = quiet_period
        self.prefix_rule = prefix_rule or PrefixRule()
        self._clock = clock
        self._sleep = sleep
        self.fatal: Optional[CoinbaseError] = None
        self._initiated_since_listing = 0
        self._first_cancel_at: Optional[float] = None

    # ------------------------------------------------------------ check mode
    def preview(self) -> dict:
        """One listing, no cancel: what a real run would start with."""
        listing = self.filter.list(self.client)
        ids = [o.get("order_id") for o in listing.orders]
        return {
            "count": len(ids),
            "order_ids": ids,
            "by_product": count_by(listing.orders, "product_id"),
            "by_status": count_by(listing.orders, "status"),
            "complete": listing.complete,
            "orders": [compact(o, self.prefix_rule) for o in listing.orders],
        }

    # ------------------------------------------------------------ the sweep
    def run(self) -> dict:
        """Sweep, and return the report. A refused key, a missing permission or a rejected request
        stops the sweep at once: ``fatal`` then holds the error and the report what was done."""
        self.fatal = None
        started = self._clock()
        self._wall_started = time.time()  # the report's UTC times (the incident record's milestones)
        deadline_at = started + self.deadline_s
        previous_deadline = self.client.deadline
        self.client.deadline = deadline_at  # the client starts no retry that would end past it
        tracked: dict = {}
        rounds: list = []
        errors: list = []
        self._first_cancel_at = None
        zero_at = None
        stopped = None
        last: Optional[Listing] = None
        first: Optional[Listing] = None
        needs_confirmation = False
        round_number = 0
        try:
            while True:
                past_deadline = self._clock() >= deadline_at
                round_started = self._clock()
                try:
                    listing = self.filter.list(self.client)
                except CoinbaseError as exc:
                    if isinstance(exc, FATAL_ERRORS):
                        raise
                    # 5xx / 429 / network after the client's retries: try again next round.
                    errors.append({"round": round_number + 1, "during": "list", "error": exc.to_dict()})
                    if past_deadline or round_number >= self.max_rounds:
                        stopped = "list_failed"
                        last = None
                        break
                    self._pause(self.poll_interval, deadline_at)
                    continue
                last = listing
                first = listing if first is None else first
                needs_confirmation = False
                self._initiated_since_listing = 0
                self._note_departures(tracked, listing.orders)
                if past_deadline:
                    stopped = "deadline"
                    break
                if not listing.orders and listing.complete:
                    if zero_at is None:
                        zero_at = self._clock()
                    if self.quiet_period <= 0 or (rounds and rounds[-1].get("quiet_check")):
                        stopped = "empty"
                        break
                    # Stay-empty check: an order a bot was placing as we cancelled may still arrive.
                    rounds.append(self._round_record(round_number, round_started, listing, [], 0, [], quiet_check=True))
                    self._pause(self.quiet_period, deadline_at)
                    continue
                if listing.orders:
                    zero_at = None  # new orders arrived after the book looked empty
                if round_number >= self.max_rounds:
                    stopped = "max_rounds"
                    break
                round_number += 1
                to_send, waiting, exhausted = self._select(tracked, listing.orders)
                if not to_send:
                    if not waiting:
                        # Only orders whose retries are used up remain (or a capped listing we cannot see past).
                        stopped = "retries_exhausted" if exhausted else "incomplete_listing"
                        break
                    rounds.append(self._round_record(round_number, round_started, listing, [], 0, []))
                    self._pause(self.poll_interval, deadline_at)
                    continue
                initiated, failed = self._cancel(tracked, to_send, round_number, errors)
                needs_confirmation = True
                rounds.append(self._round_record(round_number, round_started, listing, to_send, initiated, failed))
                if not initiated:
                    self._pause(self.poll_interval, deadline_at)  # nothing moved: do not hammer
        except FATAL_ERRORS as exc:
            self.fatal = exc
            stopped = "error"
            errors.append({"round": round_number, "during": exc.path or "request", "error": exc.to_dict()})
            # Cancels initiated since the last listing are not confirmed by it.
            needs_confirmation = needs_confirmation or self._initiated_since_listing > 0
        finally:
            self.client.deadline = previous_deadline
        finished = self._clock()
        report = self._report(tracked, rounds, errors, last, needs_confirmation, stopped, started, finished,
                              self._first_cancel_at, zero_at if stopped == "empty" else None)
        report["initial_count"] = len(first.orders) if first is not None else None
        report["initial_by_product"] = count_by(first.orders, "product_id") if first is not None else {}
        return report

    def _pause(self, seconds: float, deadline_at: float) -> None:
        wait = min(seconds, max(0.0, deadline_at - self._clock()))
        if wait > 0:
            self._sleep(wait)

    def _note_departures(self, tracked: dict, working: list) -> None:
        """Orders we knew that no longer list as working: cancelled if we initiated it, else gone."""
        working_ids = {o.get("order_id") for o in working}
        for order_id, item in tracked.items():
            if item.outcome is None and order_id not in working_ids:
                item.outcome = "cancelled" if item.initiated else "gone"
            elif item.outcome is not None and order_id in working_ids:
                item.outcome = None  # listed again (a lagging listing): not done after all
        for order in working:
            item = tracked.get(order.get("order_id"))
            if item is None:
                tracked[order.get("order_id")] = _Tracked(order)
            else:
                item.order = order  # latest status

    def _select(self, tracked: dict, working: list) -> tuple:
        to_send, waiting, exhausted = [], [], []
        for order in working:
            item = tracked[order.get("order_id")]
            failures = len(item.reasons)
            if order.get("status") == CANCEL_QUEUED:
                waiting.append(item)
            elif failures > self.cancel_retries:
                exhausted.append(item)
            else:
                to_send.append(item)
        return to_send, waiting, exhausted

    def _cancel(self, tracked: dict, items: list, round_number: int, errors: list) -> tuple:
        initiated, failed = 0, []
        for start in range(0, len(items), self.batch_size):
            batch = items[start:start + self.batch_size]
            ids = [item.order.get("order_id") for item in batch]
            for item in batch:
                item.attempts += 1
            try:
                results = self.client.cancel_orders(ids)
            except CoinbaseError as exc:
                if isinstance(exc, FATAL_ERRORS):
                    raise
                # The whole batch failed after the client's retries: every order in it is retried next round.
                reason = "REQUEST_FAILED: %s" % exc.message
                errors.append({"round": round_number, "during": "batch_cancel", "orders": len(ids), "error": exc.to_dict()})
                for item in batch:
                    item.reasons.append(reason)
                    item.last_failure = reason
                    failed.append(item.order.get("order_id"))
                continue
            answered = {r.get("order_id"): r for r in results if isinstance(r, dict)}
            for item in batch:
                result = answered.get(item.order.get("order_id"))
                if result is None:
                    reason = "NO_RESULT_FOR_ORDER"
                elif result.get("success") is True:
                    reason = None  # failure_reason is filled even on success: key off success only
                else:
                    reason = result.get("failure_reason") or "UNKNOWN_CANCEL_FAILURE_REASON"
                if reason is None or reason in ALREADY_CANCELLING:
                    item.initiated = True
                    item.last_failure = None
                    initiated += 1
                    self._initiated_since_listing += 1
                    if self._first_cancel_at is None:
                        self._first_cancel_at = self._clock()
                else:
                    item.reasons.append(reason)
                    item.last_failure = reason
                    failed.append(item.order.get("order_id"))
        return initiated, failed

    def _round_record(self, number: int, started: float, listing: Listing, sent: list, initiated: int,
                      failed: list, quiet_check: bool = False) -> dict:
        record = {
            "round": number,
            "listed": len(listing.orders),
            "cancel_queued": sum(1 for o in listing.orders if o.get("status") == CANCEL_QUEUED),
            "sent": len(sent),
            "initiated": initiated,
            "failed": len(failed),
            "listing_capped": listing.capped,
            "elapsed_s": round(self._clock() - started, 3),
        }
        if quiet_check:
            record["quiet_check"] = True
        return record

    def _report(self, tracked: dict, rounds: list, errors: list, last: Optional[Listing], needs_confirmation: bool,
                stopped: Optional[str], started: float, finished: float, first_cancel_at: Optional[float],
                zero_at: Optional[float]) -> dict:
        items = list(tracked.values())
        cancelled = [compact(i.order, self.prefix_rule) for i in items if i.outcome == "cancelled"]
        confirmed = last is not None and not needs_confirmation
        remaining_items = [i for i in items if i.outcome is None]
        failed = [
            dict(compact(i.order, self.prefix_rule), failure_reason=i.last_failure, failure_reasons=i.reasons[-5:], attempts=i.attempts)
            for i in remaining_items if i.last_failure
        ]
        unconfirmed = [i.order.get("order_id") for i in remaining_items if i.initiated and not i.last_failure]
        retried = [
            {"order_id": i.order.get("order_id"), "attempts": i.attempts, "failure_reasons": i.reasons[-5:],
             "outcome": i.outcome or "still_working"}
            for i in items if i.reasons
        ]
        remaining = len(last.orders) if confirmed and last is not None else None
        empty = bool(confirmed and last is not None and not last.orders and last.complete)
        return {
            "initiated": sum(1 for i in items if i.initiated),
            "cancelled": cancelled,
            "cancelled_count": len(cancelled),
            "cancelled_by_product": count_by(cancelled, "product_id"),
            "failed_orders": failed,
            "retried": retried,
            "gone": [compact(i.order, self.prefix_rule) for i in items if i.outcome == "gone"],
            "unconfirmed": unconfirmed,
            "remaining": remaining,
            "remaining_by_product": count_by(last.orders, "product_id") if confirmed and last is not None else {},
            "remaining_orders": [compact(o, self.prefix_rule) for o in last.orders[:100]] if confirmed and last is not None else [],
            "empty": empty,
            "complete": bool(last is not None and last.complete),
            "rounds": rounds,
            "cancel_rounds": sum(1 for r in rounds if r["sent"]),
            "stopped_because": stopped,
            "errors": errors,
            "timings": {
                "time_to_first_cancel_s": round(first_cancel_at - started, 3) if first_cancel_at is not None else None,
                "time_to_zero_s": round(zero_at - started, 3) if zero_at is not None else None,
                "total_s": round(finished - started, 3),
                "deadline_s": self.deadline_s,
                "started_at": iso_utc(self._wall_started, "milliseconds"),
                "empty_at": iso_utc(self._wall_started + (zero_at - started), "milliseconds") if zero_at is not None else None,
            },
        }
