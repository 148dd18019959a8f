#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_pnl_info
short_description: Today's futures PnL against the daily loss limit (SOP 4)
version_added: 0.1.0
description:
  - The SOP's "Daily Loss Breach" check (section 4, C(verify_pnl.py --detailed)), today's
    realized and unrealized PnL of the CFM futures account, and whether the loss reached
    O(daily_loss_limit) (RV(breached)), with every number it was computed from.
  - B(Sign convention.) PnL figures keep Coinbase's sign, negative is a loss.
    O(daily_loss_limit) is a B(positive) amount, the largest loss tolerated today (V(5000) means
    "halt at a loss of 5,000 USD"). RV(loss) is the loss as a positive amount (0 when in profit);
    the limit is breached when RV(loss) reaches the limit, that is when RV(total) <= -O(daily_loss_limit).
    RV(margin_to_limit) is what may still be lost before the limit (negative once past it).
  - Realized PnL is the balance summary's C(daily_realized_pnl) (account-wide, it includes
    positions closed today, which no longer list); unrealized is the balance summary's
    C(unrealized_pnl). The per-position figures and their sums are returned alongside, as the
    breakdown and a cross-check (RV(unrealized_discrepancy)).
  - Figures are C({value, exact}), a number to compare, and the exact decimal string computed
    without floating point.
  - Read-only; check mode runs the same reads.
author:
  - TradeOps engineering (@tradeops)
extends_documentation_fragment:
  - tradeops.incident_response.coinbase
  - tradeops.incident_response.coinbase.KEY
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same reads in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
options:
  daily_loss_limit:
    description:
      - The largest loss tolerated today, in USD, as a positive number (see the sign convention above).
    type: float
    required: true
  warn_at_percent:
    description:
      - Set RV(warning) when the loss reaches this percentage of O(daily_loss_limit), for an
        early alert before the kill switch (for example V(80)).
    type: float
  include_unrealized:
    description:
      - Count unrealized PnL of open positions towards the limit (mark-to-market). With V(false)
        only realized PnL counts.
    type: bool
    default: true
notes:
  - Coinbase reports PnL gross of fees.
  - API keys are portfolio-scoped; the figures are the key's portfolio's.
seealso:
  - module: tradeops.incident_response.coinbase_position_info
"""

EXAMPLES = r"""
- name: Check today's loss against the limit (SOP 4)
  tradeops.incident_response.coinbase_pnl_info:
    daily_loss_limit: 5000
    warn_at_percent: 80
  delegate_to: localhost
  run_once: true
  register: pnl

- name: Stop here and page on a breach (the kill switch runbook takes over)
  ansible.builtin.fail:
    msg: "Daily loss limit breached: {{ pnl.loss.exact }} USD lost, limit {{ pnl.daily_loss_limit.exact }}"
  when: pnl.breached

- name: Say how close we are
  ansible.builtin.debug:
    msg: >-
      Today {{ pnl.total.exact }} USD (realized {{ pnl.realized_today.exact }}, unrealized
      {{ pnl.unrealized.exact }}); {{ pnl.used_percent.exact }} % of the limit used,
      {{ pnl.margin_to_limit.exact }} USD left.
"""

RETURN = r"""
breached:
  description: Whether today's loss reached O(daily_loss_limit).
  returned: always
  type: bool
  sample: false
warning:
  description: Whether the loss reached O(warn_at_percent) of the limit (always V(false) without O(warn_at_percent)).
  returned: always
  type: bool
  sample: true
realized_today:
  description: PnL realized today (balance summary C(daily_realized_pnl)), C({value, exact}); negative is a loss.
  returned: always
  type: dict
  sample: {"value": -3200.5, "exact": "-3200.50"}
unrealized:
  description: Unrealized PnL of open positions (balance summary C(unrealized_pnl)), C({value, exact}).
  returned: always
  type: dict
  sample: {"value": -900, "exact": "-900.00"}
total:
  description: RV(realized_today) plus RV(unrealized) (when O(include_unrealized)), C({value, exact}).
  returned: always
  type: dict
  sample: {"value": -4100.5, "exact": "-4100.50"}
loss:
  description: The loss as a positive amount (0 when RV(total) is not negative), C({value, exact}).
  returned: always
  type: dict
  sample: {"value": 4100.5, "exact": "4100.50"}
daily_loss_limit:
  description: O(daily_loss_limit), C({value, exact}).
  returned: always
  type: dict
  sample: {"value": 5000, "exact": "5000"}
margin_to_limit:
  description: O(daily_loss_limit) minus RV(loss), what may still be lost today; negative once breached. C({value, exact}).
  returned: always
  type: dict
  sample: {"value": 899.5, "exact": "899.50"}
used_percent:
  description: RV(loss) as a percentage of the limit, two decimals, C({value, exact}).
  returned: always
  type: dict
  sample: {"value": 82.01, "exact": "82.01"}
warn_at_percent:
  description: O(warn_at_percent), C({value, exact}).
  returned: when O(warn_at_percent) is set
  type: dict
  sample: {"value": 80, "exact": "80"}
include_unrealized:
  description: O(include_unrealized).
  returned: always
  type: bool
  sample: true
sources:
  description: Where C(realized) and C(unrealized) came from (V(balance_summary), or V(positions) when the summary lacked the field).
  returned: always
  type: dict
  sample: {"realized": "balance_summary", "unrealized": "balance_summary"}
positions:
  description: Per open position the figures of M(tradeops.incident_response.coinbase_position_info) (C(unrealized_pnl), C(daily_realized_pnl), ...).
  returned: always
  type: list
  elements: dict
  sample: [{"product_id": "BIP-20DEC30-CDE", "display_name": "BTC PERP", "side": "LONG", "contracts": 3,
            "unrealized_pnl": {"value": -900, "exact": "-900.00"}, "daily_realized_pnl": {"value": 0, "exact": "0.00"}}]
positions_realized_today:
  description: Sum of the open positions' daily realized PnL, C({value, exact}) (positions closed today are missing from it).
  returned: always
  type: dict
  sample: {"value": 0, "exact": "0.00"}
positions_unrealized:
  description: Sum of the open positions' unrealized PnL, C({value, exact}).
  returned: always
  type: dict
  sample: {"value": -900, "exact": "-900.00"}
unrealized_discrepancy:
  description: RV(unrealized) minus RV(positions_unrealized), C({value, exact}); far from 0 means the two sources disagree.
  returned: always
  type: dict
  sample: {"value": 0, "exact": "0.00"}
balance_summary:
  description: The balance summary the figures came from (fields as in M(tradeops.incident_response.coinbase_position_info)).
  returned: always
  type: dict
  sample: {"daily_realized_pnl": {"value": -3200.5, "exact": "-3200.50", "currency": "USD"}}
requests:
  description: The requests made (see M(tradeops.incident_response.coinbase_auth_check) for the fields).
  returned: always
  type: dict
  sample: {"requests": 3, "failures": 0, "retries": 0, "waits_s": [], "rate_limit_wait_s": 0.0,
           "alert_ops": false, "failed_attempts": []}
"""

from decimal import Decimal

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
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.positions import (
    daily_pnl,
    describe_balance_summary,
    describe_positions,
    to_decimal,
)


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(
        daily_loss_limit=dict(type="float", required=True),
        warn_at_percent=dict(type="float"),
        include_unrealized=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    check_libraries(module)
    params = module.params
    try:
        limit = to_decimal(params["daily_loss_limit"]).normalize()  # 5000.0 -> 5000
    except ValueError:  # .inf, .nan
        limit = None
    if limit is None or limit <= 0:
        module.fail_json(msg="daily_loss_limit must be a positive amount, the largest loss tolerated today (5000 = halt at a "
                             "5,000 USD loss), got %s." % params["daily_loss_limit"])
    try:
        warn_at = to_decimal(params["warn_at_percent"])
    except ValueError:  # .inf, .nan
        module.fail_json(msg="warn_at_percent must be more than 0 and at most 100, got %s." % params["warn_at_percent"])
    warn_at = warn_at.normalize() if warn_at is not None else None
    if warn_at is not None and not Decimal(0) < warn_at <= Decimal(100):
        module.fail_json(msg="warn_at_percent must be more than 0 and at most 100, got %s." % params["warn_at_percent"])

    try:
        credentials = load_module_credentials(module)
        client = build_client(module, credentials)
    except (CredentialError, InputError) as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict())
    try:
        summary = client.get_balance_summary()
        catalogue = client.list_products(product_type="FUTURE")
        figures = describe_positions(client.list_positions(), catalogue)
        result = daily_pnl(summary, figures, limit, warn_at, params["include_unrealized"])
        balance_summary = describe_balance_summary(summary)
    except CoinbaseError as exc:
        fail_coinbase(module, exc, client, msg="Reading today's PnL failed")
    except ValueError as exc:  # a figure Coinbase sent that is not a decimal number
        module.fail_json(msg="Coinbase sent a figure that is not a number: %s" % exc, requests=client.summary())
    finally:
        client.close()
    result.update(
        changed=False,
        positions=[f.as_dict() for f in figures],
        balance_summary=balance_summary,
        requests=client.summary(),
    )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
