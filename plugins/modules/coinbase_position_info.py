#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_position_info
short_description: Read the CFM futures positions and the futures balance summary as numbers
version_added: 0.1.0
description:
  - The SOP's "verify positions" step (section 4, C(get_positions.py)) and the kill switch's
    "verify flat", run on the controller.
  - Reads C(GET /cfm/positions) and C(GET /cfm/balance_summary) (buying power, balances,
    margin, liquidation threshold and buffer, unrealized and daily realized PnL), and the
    futures products for each position's display name and contract size.
  - Coinbase sends money and sizes as decimal strings. Every figure is returned as
    C({value, exact}), C(value) a number to compare in a playbook, C(exact) the decimal string
    computed without floating point (keep it for records). Contract counts are plain numbers.
  - Each position carries its side, contracts, entry and current price, unrealized and daily
    realized PnL and its notional (contracts x contract size x current price); RV(totals) sums them.
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
  product_ids:
    description:
      - Only positions in these products, given as product IDs or names such as C(BTC-PERP) (see RV(products)).
      - Empty means every position. RV(balance_summary) is account-wide either way.
    type: list
    elements: str
    default: []
  include_balance_summary:
    description:
      - Also read C(GET /cfm/balance_summary).
    type: bool
    default: true
notes:
  - API keys are portfolio-scoped; only the key's portfolio is read.
  - Coinbase reports PnL gross of fees; negative figures are losses.
seealso:
  - module: tradeops.incident_response.coinbase_pnl_info
  - module: tradeops.incident_response.coinbase_position
"""

EXAMPLES = r"""
- name: Verify positions (SOP 4, step 1)
  tradeops.incident_response.coinbase_position_info:
  delegate_to: localhost
  run_once: true
  register: book

- name: Say whether we are flat
  ansible.builtin.debug:
    msg: >-
      {{ book.totals.positions }} open positions, unrealized {{ book.totals.unrealized_pnl.exact }} USD,
      liquidation buffer {{ book.balance_summary.liquidation_buffer_percentage.exact }} %

- name: Fail the drill step unless flat
  ansible.builtin.assert:
    that: book.totals.positions == 0
    fail_msg: "Still open: {{ book.positions | map(attribute='display_name') | list }}"

- name: One product, by the name people use
  tradeops.incident_response.coinbase_position_info:
    product_ids: [BTC-PERP]
    include_balance_summary: false
"""

RETURN = r"""
positions:
  description: Open positions (zero-contract entries are left out).
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
    side:
      description: V(LONG) or V(SHORT).
      type: str
      sample: LONG
    contracts:
      description: Number of contracts, unsigned.
      type: float
      sample: 3
    signed_contracts:
      description: Contracts, negative when short.
      type: float
      sample: 3
    entry_price:
      description: Average entry price, C({value, exact}).
      type: dict
      sample: {"value": 94000, "exact": "94000"}
    current_price:
      description: Current price, C({value, exact}).
      type: dict
      sample: {"value": 95000, "exact": "95000"}
    unrealized_pnl:
      description: Unrealized PnL in USD, C({value, exact}); negative is a loss.
      type: dict
      sample: {"value": 30.0, "exact": "30.00"}
    daily_realized_pnl:
      description: PnL realized today in this product, C({value, exact}).
      type: dict
      sample: {"value": 0, "exact": "0.00"}
    contract_size:
      description: Units of the underlying per contract (from the product), C({value, exact}); null values when unknown.
      type: dict
      sample: {"value": 0.01, "exact": "0.01"}
    notional:
      description: contracts x contract_size x current price in USD, C({value, exact}).
      type: dict
      sample: {"value": 2850.0, "exact": "2850.00"}
    expiration_time:
      description: Contract expiry (a placeholder 2030 date for perpetual-style products).
      type: str
      sample: "2030-12-20T16:00:00Z"
totals:
  description: Sums over RV(positions).
  returned: always
  type: dict
  contains:
    positions:
      description: Number of open positions.
      type: int
      sample: 1
    long_contracts:
      description: Contracts held long.
      type: float
      sample: 3
    short_contracts:
      description: Contracts held short.
      type: float
      sample: 0
    unrealized_pnl:
      description: Sum of unrealized PnL, C({value, exact}).
      type: dict
      sample: {"value": 30.0, "exact": "30.00"}
    daily_realized_pnl:
      description: Sum of the open positions' daily realized PnL, C({value, exact}) (positions closed today are not listed; see RV(balance_summary)).
      type: dict
      sample: {"value": 0, "exact": "0.00"}
    gross_notional:
      description: Long plus short notional, C({value, exact}).
      type: dict
      sample: {"value": 2850.0, "exact": "2850.00"}
    net_notional:
      description: Long minus short notional, C({value, exact}).
      type: dict
      sample: {"value": 2850.0, "exact": "2850.00"}
    notional_complete:
      description: False when a product's contract size was unknown, so its notional is missing from the sums.
      type: bool
      sample: true
balance_summary:
  description: >-
    The futures balance summary, each money field as C({value, exact, currency}):
    C(futures_buying_power), C(total_usd_balance), C(cbi_usd_balance), C(cfm_usd_balance),
    C(total_open_orders_hold_amount), C(unrealized_pnl), C(daily_realized_pnl),
    C(initial_margin), C(available_margin), C(liquidation_threshold),
    C(liquidation_buffer_amount); and C(liquidation_buffer_percentage) as C({value, exact}).
  returned: when O(include_balance_summary=true)
  type: dict
  sample: {"futures_buying_power": {"value": 249715.0, "exact": "249715.00", "currency": "USD"},
           "liquidation_buffer_percentage": {"value": 99.94, "exact": "99.94"}}
products:
  description: What each name in O(product_ids) resolved to.
  returned: always
  type: list
  elements: dict
  sample: [{"requested": "BTC-PERP", "product_id": "BIP-20DEC30-CDE", "display_name": "BTC PERP"}]
requests:
  description: The requests made (see M(tradeops.incident_response.coinbase_auth_check) for the fields).
  returned: always
  type: dict
  sample: {"requests": 3, "failures": 0, "retries": 0, "waits_s": [], "rate_limit_wait_s": 0.0,
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
    describe_balance_summary,
    describe_positions,
    position_totals,
)


def read_positions(module, client):
    params = module.params
    result = {"changed": False, "products": []}
    catalogue = client.list_products(product_type="FUTURE")
    wanted = None
    if params["product_ids"]:
        try:
            resolved = products_mod.resolve(catalogue, params["product_ids"])
        except InputError as exc:
            module.fail_json(msg="product_ids: %s" % exc, error=exc.to_dict(), requests=client.summary())
        result["products"] = [{"requested": r["requested"], "product_id": r["product_id"], "display_name": r["display_name"]} for r in resolved]
        wanted = {r["product_id"] for r in resolved}
    positions = [p for p in client.list_positions() if wanted is None or p.get("product_id") in wanted]
    figures = describe_positions(positions, catalogue)
    result["positions"] = [f.as_dict() for f in figures]
    result["totals"] = position_totals(figures)
    if params["include_balance_summary"]:
        result["balance_summary"] = describe_balance_summary(client.get_balance_summary())
    return result


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(
        product_ids=dict(type="list", elements="str", default=[]),
        include_balance_summary=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    check_libraries(module)
    try:
        credentials = load_module_credentials(module)
        client = build_client(module, credentials)
    except (CredentialError, InputError) as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict())
    try:
        result = read_positions(module, client)
    except CoinbaseError as exc:
        fail_coinbase(module, exc, client, msg="Reading the futures positions failed")
    except ValueError as exc:  # a figure Coinbase sent that is not a decimal number
        module.fail_json(msg="Coinbase sent a figure that is not a number: %s" % exc, requests=client.summary())
    finally:
        client.close()
    result["requests"] = client.summary()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
