#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_position
short_description: Close or reduce CFM futures positions, once per incident, and verify the result
version_added: 0.1.0
description:
  - V(closed) closes positions (the kill switch's C(close_all_positions.py --confirm), SOP 7
    step 4); V(reduced) reduces each by O(percent) (SOP 6, C(reduce_position.py --symbol
    BTC-PERP --percent 50)).
  - Orders go through C(POST /orders/close_position) only, the one reduce-only primitive of
    the Advanced Trade API. The venue takes side and size from the live position, so the order
    can never open or flip a position. The module never sends a plain opposite-side market order.
  - B(Once per incident.) Each order's C(client_order_id) is derived from O(incident_id), the
    product, the action and its target (C(flat), or the percentage) and an attempt number. Before
    sending, the product's recent orders (O(lookback_hours)) are searched for this incident's ids;
    a reduce that already filled is not repeated, a working order is waited for, not
    duplicated, and a close is sent again only while the position is not flat (it cannot
    overshoot). Should the search miss an order, Coinbase answers a repeated C(client_order_id)
    with the existing order instead of placing a second one. Re-running a failed or timed-out
    run with the same O(incident_id) is therefore safe; to reduce the same product again
    by the same percentage, use a new O(incident_id).
  - The product's trading session is checked first (C(fcm_trading_session_details)); a closed
    session, disabled trading or a cancel-only product fails that product with the reason,
    without sending anything. Other products are still handled.
  - After sending, positions are re-read until each is flat (V(closed)) or at or below its
    target on the same side (V(reduced)), for at most O(verify_timeout) seconds.
  - B(Approval.) The SOP's escalation matrix has L2 approve position closures. This module does
    not ask; put it behind an approval (an AWX workflow approval node, or a C(pause) prompt in
    the runbook) and run it in check mode first to show the approver RV(would_close).
author:
  - TradeOps engineering (@tradeops)
extends_documentation_fragment:
  - tradeops.incident_response.coinbase
  - tradeops.incident_response.coinbase.KEY
attributes:
  check_mode:
    support: full
    description: Plans every order and returns it in RV(would_close) with size, side and client_order_id; sends nothing.
  diff_mode:
    support: full
    description: Contracts per product before and (targeted) after.
options:
  state:
    description:
      - V(closed) closes the whole position of each product.
      - V(reduced) closes O(percent) of each position.
    type: str
    required: true
    choices: [closed, reduced]
  product_ids:
    description:
      - The products, as product IDs or names such as C(BTC-PERP) (RV(positions) says what each
        resolved to), or the single word V(all) for every open position.
      - A product without a position is already closed (nothing is sent).
    type: list
    elements: str
    required: true
  percent:
    description:
      - With O(state=reduced), the share of each position to close, more than 0 and at most 100.
    type: float
  rounding:
    description:
      - CFM contracts are whole (the product's C(base_increment)), so a percentage of a position
        is rounded to whole contracts, never beyond the position itself.
      - V(down) closes no more than asked (50 % of 3 contracts closes 1; 50 % of 1 closes nothing
        and says so). V(up) closes at least what was asked (50 % of 3 closes 2; 50 % of 1 closes 1).
    type: str
    choices: [down, up]
    default: down
  incident_id:
    description:
      - The incident's identifier (the ticket number). Every close order's C(client_order_id) is
        derived from it, so a re-run of the same incident never closes twice.
    type: str
    required: true
  lookback_hours:
    description:
      - How far back to search the product's orders for this incident's earlier orders.
    type: float
    default: 24
  verify_timeout:
    description:
      - Seconds to keep re-reading positions until each reached its target.
    type: float
    default: 30
  poll_interval:
    description:
      - Seconds between two reads while verifying.
    type: float
    default: 0.5
notes:
  - The key needs the C(trade) permission; it is checked first.
  - API keys are portfolio-scoped; only the key's portfolio's positions are seen and closed.
  - The order type C(close_position) places is not documented; the module reports the order's
    status and fill as Coinbase lists it.
seealso:
  - module: tradeops.incident_response.coinbase_position_info
  - module: tradeops.incident_response.coinbase_orders
"""

EXAMPLES = r"""
- name: Show the approver what closing everything would do
  tradeops.incident_response.coinbase_position:
    state: closed
    product_ids: all
    incident_id: "{{ incident_id }}"
  check_mode: true
  delegate_to: localhost
  run_once: true
  register: close_plan

- name: L2 approves position closures (SOP escalation matrix)
  ansible.builtin.pause:
    prompt: "Close {{ close_plan.would_close | length }} positions: {{ close_plan.would_close }}? (Enter to go on, Ctrl-C A to abort)"

- name: Close every position, once for this incident, and verify flat
  tradeops.incident_response.coinbase_position:
    state: closed
    product_ids: all
    incident_id: "{{ incident_id }}"
  delegate_to: localhost
  run_once: true

- name: reduce_position.py --symbol BTC-PERP --percent 50 (SOP 6)
  tradeops.incident_response.coinbase_position:
    state: reduced
    product_ids: [BTC-PERP]
    percent: 50
    incident_id: INC-2026-1127-funding
"""

RETURN = r"""
positions:
  description: One entry per product handled.
  returned: always
  type: list
  elements: dict
  contains:
    product_id:
      description: Product ID.
      type: str
      sample: BIP-20DEC30-CDE
    display_name:
      description: The product's display name.
      type: str
      sample: BTC PERP
    requested:
      description: The name given in O(product_ids) (the product ID for V(all)).
      type: str
      sample: BTC-PERP
    action:
      description: V(close) or V(reduce).
      type: str
      sample: reduce
    percent:
      description: O(percent) for a reduce.
      type: float
      sample: 50
    side:
      description: The position's side before, V(LONG) or V(SHORT); null when flat.
      type: str
      sample: LONG
    order_side:
      description: The side of the closing order (V(SELL) closes a long).
      type: str
      sample: SELL
    contracts_before:
      description: Contracts held before.
      type: float
      sample: 3
    size:
      description: Contracts sent in the close order, as a decimal string; V(all) for a whole close.
      type: str
      sample: "1"
    target_contracts:
      description: Contracts that should remain.
      type: float
      sample: 2
    contracts_after:
      description: Contracts held at the last read.
      type: float
      sample: 2
    client_order_id:
      description: The deterministic id of the order sent (or that would be sent).
      type: str
      sample: 2b9c8f0e-3f5d-5a41-9e7b-7c4d2e1f0a93
    attempt:
      description: Which attempt of this incident's action the order is (1 unless an earlier one ended without effect).
      type: int
      sample: 1
    session:
      description: The trading session (C(open), C(is_session_open), C(session_state), C(closed_reason), C(blockers)).
      type: dict
      sample: {"open": true, "is_session_open": true, "session_state": "FCM_TRADING_SESSION_STATE_OPEN",
               "closed_reason": "FCM_TRADING_SESSION_CLOSED_REASON_UNDEFINED", "blockers": []}
    outcome:
      description: >-
        V(closed) / V(reduced) (verified), V(unverified) (sent, target not reached in time, or
        the run stopped before it was verified), V(already_flat), V(already_reduced) (this
        incident's reduce already filled), V(nothing_to_reduce) (rounds to 0 contracts),
        V(blocked) (session closed, trading disabled), V(rejected) (Coinbase refused the order),
        V(error) (the request failed, or the run stopped before sending it; safe to re-run),
        V(to_send) or V(pending) (check mode).
      type: str
      sample: reduced
    reason:
      description: Why, in words, when the outcome is not a plain success.
      type: str
      sample: null
    order_id:
      description: The close order's ID.
      type: str
      sample: 5d7f3c2a-...
    order:
      description: The close order as Coinbase lists it (C(status), C(filled_size), C(average_filled_price), ...).
      type: dict
      sample: {"order_id": "5d7f3c2a-...", "status": "FILLED", "filled_size": "1", "average_filled_price": "94995"}
    earlier_orders:
      description: This incident's earlier orders for the same action on the product.
      type: list
      elements: dict
      sample: []
    verified:
      description: Whether the position reached its target (null when nothing was sent or waited for).
      type: bool
      sample: true
    error:
      description: >-
        The failed request (C(kind), C(status), C(error), C(message), ...) when the outcome is
        V(rejected), V(error) or V(unverified) because of an error, or when the run stopped
        (a refused key, a figure that is not a number) before this product was sent or verified.
      type: dict
      returned: when a request for this product failed or the run stopped early
      sample: {"kind": "unauthenticated", "status": 401, "message": "Unauthorized"}
would_close:
  description: The orders a real run would send (product, display name, side, contracts, size, order side, target, client_order_id).
  returned: in check mode
  type: list
  elements: dict
  sample: [{"product_id": "BIP-20DEC30-CDE", "display_name": "BTC PERP", "action": "reduce", "side": "LONG",
            "contracts": 3, "size": "1", "order_side": "SELL", "target_contracts": 2,
            "client_order_id": "2b9c8f0e-3f5d-5a41-9e7b-7c4d2e1f0a93"}]
verified:
  description: Whether every order sent (or waited for) reached its target.
  returned: when not in check mode
  type: bool
  sample: true
incident_id:
  description: O(incident_id).
  returned: always
  type: str
  sample: INC-2026-1127-funding
can_trade:
  description: Whether the key has the trade permission.
  returned: always
  type: bool
  sample: true
requests:
  description: The requests made (see M(tradeops.incident_response.coinbase_auth_check) for the fields).
  returned: always
  type: dict
  sample: {"requests": 7, "failures": 0, "retries": 0, "waits_s": [], "rate_limit_wait_s": 0.0,
           "alert_ops": false, "failed_attempts": []}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import products as products_mod
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
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.positions import (
    PositionCloser,
    PositionPlan,
    as_number,
    signed_contracts,
    to_decimal,
)

ACTIONS = {"closed": "close", "reduced": "reduce"}


class PositionManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = {"changed": False, "incident_id": module.params["incident_id"], "positions": []}

    def validate(self):
        params, fail = self.params, self.module.fail_json
        if params["state"] == "reduced":
            if params["percent"] is None:
                fail(msg="percent is required with state=reduced (for example percent: 50).")
            if not 0 < params["percent"] <= 100:
                fail(msg="percent must be more than 0 and at most 100, got %s." % params["percent"])
        elif params["percent"] is not None:
            fail(msg="percent only applies to state=reduced; state=closed closes the whole position.")
        if not str(params["incident_id"] or "").strip():
            fail(msg="incident_id must not be empty: use the incident's ticket number.")
        names = [n for n in params["product_ids"] if str(n).strip()]
        if not names:
            fail(msg="product_ids must name at least one product, or be 'all'.")
        if any(n.lower() == "all" for n in names) and len(names) > 1:
            fail(msg="product_ids: 'all' cannot be combined with product names.")
        for name in ("lookback_hours", "verify_timeout", "poll_interval"):
            if params[name] <= 0:
                fail(msg="%s must be greater than 0, got %s." % (name, params[name]))

    def targets(self, client, positions):
        """[(requested, product_id, product)] for the products asked for."""
        catalogue = client.list_products(product_type="FUTURE")
        by_id = {p.get("product_id"): p for p in catalogue}
        names = self.params["product_ids"]
        if len(names) == 1 and names[0].lower() == "all":
            return [(pid, pid, by_id.get(pid) or {"product_id": pid}) for pid in sorted(positions)]
        try:
            resolved = products_mod.resolve(catalogue, names)
        except InputError as exc:
            self.module.fail_json(msg="product_ids: %s" % exc, error=exc.to_dict(), requests=client.summary())
        return [(r["requested"], r["product_id"], r["product"]) for r in resolved]

    def run(self, client):
        params = self.params
        permissions = client.get_key_permissions()
        self.result["can_trade"] = bool(permissions.get("can_trade"))
        if not self.result["can_trade"]:
            message = "The key %s may not trade, so it cannot close positions: use a key with the trade permission." % client.credentials.key_name
            if not self.module.check_mode:
                self.module.fail_json(msg=message, requests=client.summary(), **self.result)
            self.module.warn(message)
        positions = {p.get("product_id"): p for p in client.list_positions() if signed_contracts(p) != 0}
        closer = PositionCloser(client, params["incident_id"], lookback_hours=params["lookback_hours"])
        percent = to_decimal(params["percent"]).normalize() if params["percent"] is not None else None
        plans = []
        for requested, product_id, product in self.targets(client, positions):
            plan = PositionPlan(product_id, product, ACTIONS[params["state"]], requested=requested, percent=percent)
            plans.append(closer.plan(plan, positions.get(product_id), params["rounding"]))
        if self.module.check_mode:
            self.result["would_close"] = [p.would() for p in plans if p.outcome == "to_send"]
        else:
            try:
                for plan in plans:
                    closer.send(plan)
                closer.verify(plans, params["verify_timeout"], params["poll_interval"])
            except (CoinbaseError, ValueError) as exc:
                # A refused key (401/403) or an unreadable figure after some orders went out: the
                # failure must still say which orders were sent, and that something changed.
                self.interrupted(plans, exc)
                raise
            waited = [p for p in plans if p.verified is not None]
            self.result["verified"] = all(p.verified for p in waited)
        self.record(plans)
        return plans

    def record(self, plans):
        self.result["positions"] = [p.as_dict() for p in plans]
        self.result["changed"] = bool(self.result.get("would_close")) or any(p.sent for p in plans)
        self.result["diff"] = {
            "before": {"contracts": {p.product_id: as_number(p.contracts) for p in plans}},
            "after": {"contracts": {p.product_id: as_number(self.after(p)) for p in plans}},
        }

    def interrupted(self, plans, exc):
        """Mark what the stopped run left undone, then record every plan (sent orders included)."""
        error = exc.to_dict() if isinstance(exc, CoinbaseError) else {"kind": "invalid_figure", "message": str(exc)}
        for plan in plans:
            if plan.outcome == "to_send":
                plan.outcome = "error"
                plan.reason = "Not sent: the run stopped: %s" % exc
                plan.error = error
            elif plan.outcome in ("sent", "pending"):
                plan.outcome = "unverified"
                plan.verified = False
                plan.reason = "Not verified: the run stopped: %s" % exc
                plan.error = error
        self.result["verified"] = False
        self.record(plans)

    def after(self, plan):
        if plan.contracts_after is not None:
            return plan.contracts_after
        return plan.target if plan.outcome in ("to_send", "pending") else plan.contracts

    def failure_message(self, plans):
        failed = [p for p in plans if p.failed]
        if not failed:
            return None
        verb = "would fail" if self.module.check_mode else "failed"
        return "%d of %d products %s: %s" % (
            len(failed), len(plans), verb, "; ".join("%s: %s" % (p.product_id, p.reason) for p in failed))


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(
        state=dict(type="str", required=True, choices=list(ACTIONS)),
        product_ids=dict(type="list", elements="str", required=True),
        percent=dict(type="float"),
        rounding=dict(type="str", choices=["down", "up"], default="down"),
        incident_id=dict(type="str", required=True),
        lookback_hours=dict(type="float", default=24.0),
        verify_timeout=dict(type="float", default=30.0),
        poll_interval=dict(type="float", default=0.5),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    check_libraries(module)
    manager = PositionManager(module)
    manager.validate()
    try:
        credentials = load_module_credentials(module)
        client = build_client(module, credentials)
    except (CredentialError, InputError) as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict())
    result = manager.result
    try:
        plans = manager.run(client)
    except CoinbaseError as exc:
        fail_coinbase(module, exc, client, msg="Closing positions failed", **result)
    except ValueError as exc:  # a figure Coinbase sent that is not a decimal number
        module.fail_json(msg="Coinbase sent a figure that is not a number: %s" % exc, requests=client.summary(), **result)
    finally:
        client.close()
    result["requests"] = client.summary()
    message = manager.failure_message(plans)
    if message:
        module.fail_json(msg=message, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
