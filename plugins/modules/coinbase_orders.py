#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_orders
short_description: Cancel every working Coinbase order matching filters, and prove none remain
version_added: 0.1.0
description:
  - The kill switch's "cancel all open orders" (SOP section 7, step 2; SOP section 4, "open
    orders cancelled"). Advanced Trade has no cancel-all endpoint, so this module lists the
    working orders (V(OPEN), V(PENDING), V(QUEUED), V(CANCEL_QUEUED); all of them can still
    trade), cancels them with C(batch_cancel) in batches of at most 100, and B(re-lists until
    none remain) or O(deadline) passes.
  - Coinbase's C(success) on a cancel means the cancel was I(initiated); an order counts as
    cancelled only when a later listing no longer shows it working. Orders in V(CANCEL_QUEUED)
    are re-checked, not cancelled twice.
  - Per-order failures (for example C(COMMANDER_REJECTED_CANCEL_ORDER)) are retried in the next
    round, at most O(cancel_retries) times per order; whatever still fails is returned per order
    with its C(failure_reason).
  - Bots may still be placing orders while this runs (stop them first; the runbook sets
    REDUCE_ONLY and stops C(trading-bot-orders) before this step). After the first empty
    listing the module waits O(quiet_period) and lists once more, so an order that was in
    flight is caught too.
  - The key needs the C(trade) permission; it is checked first (C(GET /key_permissions)), so a
    view-only key fails before anything is listed or sent.
author:
  - TradeOps engineering (@tradeops)
extends_documentation_fragment:
  - tradeops.incident_response.coinbase
  - tradeops.incident_response.coinbase.KEY
attributes:
  check_mode:
    support: full
    description: >-
      Lists the matching working orders and returns them as RV(would_cancel); sends no cancel.
      Reports changed when at least one order would be cancelled.
  diff_mode:
    support: full
    description: Working orders per product before and after.
options:
  state:
    description:
      - V(cancelled) cancels every working order that matches the filters.
    type: str
    required: true
    choices: [cancelled]
  product_ids:
    description:
      - Only orders of these products. Product IDs or the names people use (C(BTC-PERP));
        RV(products) says what each name resolved to.
      - Empty (the default) means B(every product) in the key's portfolio.
    type: list
    elements: str
    default: []
  product_type:
    description:
      - Only orders of this product type.
    type: str
    choices: [FUTURE, SPOT]
  order_side:
    description:
      - Only orders on this side.
    type: str
    choices: [BUY, SELL]
  client_order_id_prefix:
    description:
      - Only orders whose C(client_order_id) starts with this, for example one host's C(bot-03-).
      - Applied after listing. Coinbase lists at most 1000 V(OPEN) orders; if that cap is hit
        and other orders are filtered out, matching orders may hide behind the cap and the book
        cannot be proved empty (RV(complete) is V(false), the module fails).
    type: str
  client_order_id_pattern:
    description:
      - Regular expression that finds the placing host in a C(client_order_id), as in
        M(tradeops.incident_response.coinbase_order_info); returned as C(prefix) on each order.
    type: str
    default: '^(?P<prefix>.+)-\d{10,}-\d+$'
  deadline:
    description:
      - Seconds the whole sweep may take. No new round starts after it, and the client starts
        no retry that would end after it; one last listing then says what remains.
      - O(timeout) is the limit for each single HTTP request.
    type: float
    default: 60
  max_rounds:
    description:
      - Most list-and-cancel rounds.
    type: int
    default: 50
  cancel_retries:
    description:
      - How often an order whose cancel failed is sent again, in later rounds.
    type: int
    default: 5
  batch_size:
    description:
      - Order IDs per C(batch_cancel) request (Coinbase takes at most 100).
    type: int
    default: 100
  page_size:
    description:
      - Orders per page when listing (Coinbase allows up to 1000).
    type: int
    default: 1000
  poll_interval:
    description:
      - Seconds to wait before listing again when a round initiated no cancel (only
        V(CANCEL_QUEUED) orders left, or every cancel failed).
    type: float
    default: 0.5
  quiet_period:
    description:
      - After the first empty listing, wait this many seconds and list again; only a second
        empty listing ends the sweep. V(0) ends at the first empty listing.
    type: float
    default: 1.0
  fail_on_remaining:
    description:
      - Fail the task when working orders remain (or cannot be proved absent) at the end.
      - With V(false) the result still says so in RV(empty) and RV(remaining).
    type: bool
    default: true
notes:
  - API keys are portfolio-scoped; only the key's portfolio is swept (RV(portfolio_uuid)).
  - An order that leaves the working set although no cancel of ours was initiated for it (it
    filled, or someone else cancelled it) is returned in RV(gone), not in RV(cancelled). A fill
    racing an initiated cancel is counted as cancelled; the fills audit tells the two apart.
  - Requests are sent one at a time, under the client's rate limit (O(max_requests_per_second)).
    Measured against the exchange double with 20 ms injected latency, 1,000 open orders are
    cancelled and confirmed gone in well under two seconds, O(quiet_period) aside.
seealso:
  - module: tradeops.incident_response.coinbase_order_info
"""

EXAMPLES = r"""
- name: Kill switch - cancel every working order and prove the book is empty
  tradeops.incident_response.coinbase_orders:
    state: cancelled
    deadline: 60
  delegate_to: localhost
  run_once: true
  register: cancel_all

- name: Record what was cancelled
  ansible.builtin.debug:
    msg: >-
      cancelled {{ cancel_all.cancelled_count }} in {{ cancel_all.cancel_rounds }} rounds,
      empty={{ cancel_all.empty }}, time to zero {{ cancel_all.timings.time_to_zero_s }} s

- name: Only one host's futures orders on BTC (check mode shows what would go)
  tradeops.incident_response.coinbase_orders:
    state: cancelled
    product_ids: [BTC-PERP]
    client_order_id_prefix: bot-03-
  check_mode: true
  register: preview

- name: Best effort during a drill, never failing the play
  tradeops.incident_response.coinbase_orders:
    state: cancelled
    product_type: FUTURE
    deadline: 20
    fail_on_remaining: false
"""

RETURN = r"""
cancelled:
  description: Orders whose cancel was initiated and that a later listing no longer shows working.
  returned: when not in check mode
  type: list
  elements: dict
  sample: [{"order_id": "0b0f7c3e-...", "client_order_id": "bot-01-1732665600000-42", "prefix": "bot-01",
            "product_id": "BIP-20DEC30-CDE", "product_type": "FUTURE", "side": "BUY", "status": "OPEN",
            "order_type": "LIMIT", "base_size": "1", "quote_size": null, "limit_price": "90250",
            "filled_size": "0", "created_time": "2026-11-27T03:12:00.123456Z"}]
cancelled_count:
  description: Number of RV(cancelled) orders.
  returned: when not in check mode
  type: int
  sample: 1000
cancelled_by_product:
  description: RV(cancelled) per product.
  returned: when not in check mode
  type: dict
  sample: {"BIP-20DEC30-CDE": 1000}
initiated:
  description: Orders for which a cancel was initiated (C(success) or C(DUPLICATE_CANCEL_REQUEST)).
  returned: when not in check mode
  type: int
  sample: 1000
failed_orders:
  description: >-
    Orders still working whose last cancel failed, with the last C(failure_reason), the recent
    reasons and the number of attempts (the order fields as in RV(cancelled)).
  returned: when not in check mode
  type: list
  elements: dict
  sample: [{"order_id": "0b0f7c3e-...", "product_id": "BIP-20DEC30-CDE", "failure_reason": "INVALID_CANCEL_FCM_TRADING_SESSION",
            "failure_reasons": ["INVALID_CANCEL_FCM_TRADING_SESSION"], "attempts": 6}]
retried:
  description: Every order whose cancel failed at least once, and how it ended (V(cancelled), V(gone) or V(still_working)).
  returned: when not in check mode
  type: list
  elements: dict
  sample: [{"order_id": "0b0f7c3e-...", "attempts": 2, "failure_reasons": ["COMMANDER_REJECTED_CANCEL_ORDER"], "outcome": "cancelled"}]
gone:
  description: Orders that stopped working without a cancel of ours being initiated (filled, or cancelled elsewhere).
  returned: when not in check mode
  type: list
  elements: dict
  sample: []
unconfirmed:
  description: IDs of orders whose cancel was initiated but that still list as working (for example V(CANCEL_QUEUED) at the deadline).
  returned: when not in check mode
  type: list
  elements: str
  sample: []
remaining:
  description: Working orders matching the filters at the last listing; null when the last listing failed.
  returned: when not in check mode
  type: int
  sample: 0
remaining_by_product:
  description: RV(remaining) per product.
  returned: when not in check mode
  type: dict
  sample: {}
remaining_orders:
  description: The first 100 remaining orders.
  returned: when not in check mode
  type: list
  elements: dict
  sample: []
empty:
  description: Whether the last listing proved that no matching working order remains.
  returned: when not in check mode
  type: bool
  sample: true
complete:
  description: Whether the last listing could prove absence (see O(client_order_id_prefix)).
  returned: always
  type: bool
  sample: true
initial_count:
  description: Matching working orders at the first listing (Coinbase lists at most 1000 V(OPEN) orders at a time; later rounds find the rest).
  returned: when not in check mode
  type: int
  sample: 1000
initial_by_product:
  description: RV(initial_count) per product.
  returned: when not in check mode
  type: dict
  sample: {"BIP-20DEC30-CDE": 1000}
rounds:
  description: >-
    One entry per round: C(round), C(listed), C(cancel_queued), C(sent), C(initiated), C(failed),
    C(listing_capped), C(elapsed_s); C(quiet_check) marks the listings after the book looked empty.
  returned: when not in check mode
  type: list
  elements: dict
  sample: [{"round": 1, "listed": 1000, "cancel_queued": 0, "sent": 1000, "initiated": 1000, "failed": 0,
            "listing_capped": true, "elapsed_s": 0.61}]
cancel_rounds:
  description: Rounds that sent at least one cancel.
  returned: when not in check mode
  type: int
  sample: 1
stopped_because:
  description: >-
    V(empty), V(deadline), V(max_rounds), V(retries_exhausted) (only orders whose retries are
    used up remain), V(incomplete_listing), V(list_failed) or V(error) (a refused key or permission).
  returned: when not in check mode
  type: str
  sample: empty
errors:
  description: Requests that failed after the client's retries (the sweep went on where it could).
  returned: when not in check mode
  type: list
  elements: dict
  sample: []
timings:
  description: Seconds from the start of the sweep.
  returned: when not in check mode
  type: dict
  contains:
    time_to_first_cancel_s:
      description: Until the first cancel was initiated.
      type: float
      sample: 0.21
    time_to_zero_s:
      description: Until the first listing of the final empty streak; null unless RV(empty).
      type: float
      sample: 0.62
    total_s:
      description: The whole sweep, including O(quiet_period).
      type: float
      sample: 1.65
    deadline_s:
      description: O(deadline).
      type: float
      sample: 60.0
    started_at:
      description: When the sweep started, UTC ISO 8601 (for the incident record's milestones).
      type: str
      sample: "2026-11-27T03:12:00.120Z"
    empty_at:
      description: When the book was first seen empty (the moment of RV(timings.time_to_zero_s)), UTC; null unless RV(empty).
      type: str
      sample: "2026-11-27T03:12:00.740Z"
would_cancel:
  description: What a real run would cancel first (new orders arriving later would be cancelled too).
  returned: in check mode
  type: dict
  contains:
    count:
      description: Number of orders.
      type: int
      sample: 12
    order_ids:
      description: Their IDs.
      type: list
      elements: str
    by_product:
      description: Count per product.
      type: dict
      sample: {"BIP-20DEC30-CDE": 12}
    by_status:
      description: Count per status.
      type: dict
      sample: {"OPEN": 12}
    complete:
      description: Whether the listing could prove it saw every matching order.
      type: bool
      sample: true
    orders:
      description: The orders (fields as in RV(cancelled)).
      type: list
      elements: dict
can_trade:
  description: Whether the key has the trade permission (from C(GET /key_permissions)).
  returned: always
  type: bool
  sample: true
portfolio_uuid:
  description: The key's portfolio, the only one swept.
  returned: always
  type: str
  sample: 7a3e2d1c-0000-4000-8000-000000000001
products:
  description: What each name in O(product_ids) resolved to.
  returned: always
  type: list
  elements: dict
  sample: [{"requested": "BTC-PERP", "product_id": "BIP-20DEC30-CDE", "display_name": "BTC PERP"}]
filters:
  description: The filters applied, with product names resolved.
  returned: always
  type: dict
  sample: {"product_ids": [], "product_type": "FUTURE", "order_side": null, "client_order_id_prefix": null,
           "statuses": ["OPEN", "PENDING", "QUEUED", "CANCEL_QUEUED"]}
requests:
  description: The requests made (see M(tradeops.incident_response.coinbase_auth_check) for the fields).
  returned: always
  type: dict
  sample: {"requests": 16, "failures": 0, "retries": 0, "waits_s": [], "rate_limit_wait_s": 0.0,
           "alert_ops": false, "failed_attempts": []}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    CoinbaseError,
    CredentialError,
    InputError,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.module import (
    COINBASE_MUTUALLY_EXCLUSIVE,
    build_client,
    check_libraries,
    coinbase_argument_spec,
    fail_coinbase,
    load_module_credentials,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.orders import (
    DEFAULT_PREFIX_PATTERN,
    CancelAll,
    OrderFilter,
    PrefixRule,
    resolve_product_names,
)


class OrderCanceller:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = {"changed": False, "products": []}

    def validate(self):
        params = self.params
        if not 1 <= params["batch_size"] <= 100:
            self.module.fail_json(msg="batch_size must be between 1 and 100 (batch_cancel takes at most 100 ids), got %s." % params["batch_size"])
        if not 1 <= params["page_size"] <= 1000:
            self.module.fail_json(msg="page_size must be between 1 and 1000, got %s." % params["page_size"])
        for name in ("deadline", "max_rounds"):
            if params[name] <= 0:
                self.module.fail_json(msg="%s must be greater than 0, got %s." % (name, params[name]))
        for name in ("cancel_retries", "poll_interval", "quiet_period"):
            if params[name] < 0:
                self.module.fail_json(msg="%s must not be negative, got %s." % (name, params[name]))
        try:
            return PrefixRule(params["client_order_id_pattern"])
        except InputError as exc:
            self.module.fail_json(msg=str(exc), error=exc.to_dict())

    def run(self, client, prefix_rule):
        params = self.params
        permissions = client.get_key_permissions()
        self.result["can_trade"] = bool(permissions.get("can_trade"))
        self.result["portfolio_uuid"] = permissions.get("portfolio_uuid")
        if not self.result["can_trade"]:
            message = ("The key %s may not trade, so it cannot cancel orders: give the kill switch a key with the "
                       "trade permission (SOP 3: switch to the standby key)." % client.credentials.key_name)
            if not self.module.check_mode:
                self.module.fail_json(msg=message, requests=client.summary(), **self.result)
            self.module.warn(message)
        try:
            self.result["products"] = resolve_product_names(client, params["product_ids"])
        except InputError as exc:
            self.module.fail_json(msg="product_ids: %s" % exc, error=exc.to_dict(), requests=client.summary())
        order_filter = OrderFilter(
            product_ids=[p["product_id"] for p in self.result["products"]],
            product_type=params["product_type"],
            order_side=params["order_side"],
            client_order_id_prefix=params["client_order_id_prefix"],
            page_size=params["page_size"],
        )
        self.result["filters"] = order_filter.as_dict()
        engine = CancelAll(
            client, order_filter,
            deadline=params["deadline"], max_rounds=params["max_rounds"], cancel_retries=params["cancel_retries"],
            batch_size=params["batch_size"], poll_interval=params["poll_interval"], quiet_period=params["quiet_period"],
            prefix_rule=prefix_rule,
        )
        if self.module.check_mode:
            preview = engine.preview()
            self.result["would_cancel"] = preview
            self.result["complete"] = preview["complete"]
            # Check mode reports changed when a real run would change something.
            self.result["changed"] = preview["count"] > 0
            self.result["diff"] = {"before": {"working_orders": preview["by_product"]}, "after": {"working_orders": {}}}
            return None
        report = engine.run()
        self.result.update(report)
        self.result["changed"] = report["initiated"] > 0
        self.result["diff"] = {
            "before": {"working_orders": report["initial_by_product"]},
            "after": {"working_orders": report["remaining_by_product"]},
        }
        return engine.fatal

    def failure_message(self):
        """Why the book is not proved empty, in one sentence; None when it is."""
        result = self.result
        if result["empty"]:
            return None
        if result["remaining"] is None:
            return "Could not confirm the book after cancelling (%s): the last listing failed; run again." % result["stopped_because"]
        reasons = sorted({f["failure_reason"] for f in result["failed_orders"]})
        if not result["complete"] and not result["remaining"]:
            return ("Coinbase listed 1000 OPEN orders (its cap), none matching client_order_id_prefix %r: matching orders may "
                    "be hidden behind the cap; cancel without the prefix filter." % self.params["client_order_id_prefix"])
        return "%d working orders remain after %d rounds (stopped: %s)%s." % (
            result["remaining"], result["cancel_rounds"], result["stopped_because"],
            "; failures: %s" % ", ".join(reasons) if reasons else "")


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(
        state=dict(type="str", required=True, choices=["cancelled"]),
        product_ids=dict(type="list", elements="str", default=[]),
        product_type=dict(type="str", choices=["FUTURE", "SPOT"]),
        order_side=dict(type="str", choices=["BUY", "SELL"]),
        client_order_id_prefix=dict(type="str"),
        client_order_id_pattern=dict(type="str", default=DEFAULT_PREFIX_PATTERN),
        deadline=dict(type="float", default=60.0),
        max_rounds=dict(type="int", default=50),
        cancel_retries=dict(type="int", default=5),
        batch_size=dict(type="int", default=100),
        page_size=dict(type="int", default=1000),
        poll_interval=dict(type="float", default=0.5),
        quiet_period=dict(type="float", default=1.0),
        fail_on_remaining=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    check_libraries(module)
    canceller = OrderCanceller(module)
    prefix_rule = canceller.validate()
    try:
        credentials = load_module_credentials(module)
        client = build_client(module, credentials)
    except (CredentialError, InputError) as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict())
    result = canceller.result
    try:
        fatal = canceller.run(client, prefix_rule)
    except CoinbaseError as exc:
        fail_coinbase(module, exc, client, msg="Cancelling the working orders failed before any cancel was sent", **result)
    finally:
        client.close()
    result["requests"] = client.summary()
    if fatal is not None:
        fail_coinbase(module, fatal, msg="The sweep stopped after %d cancels were initiated" % result["initiated"], **result)
    if not module.check_mode and module.params["fail_on_remaining"]:
        message = canceller.failure_message()
        if message:
            module.fail_json(msg=message, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
