#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_order_info
short_description: List the working Coinbase orders, with counts per product, status, side and placing host
version_added: 0.1.0
description:
  - Lists every order that can still trade in the key's portfolio, the kill switch's and the
    audit's first question. That is V(OPEN) orders B(and) the queued and pending ones
    (V(PENDING), V(QUEUED), V(CANCEL_QUEUED)), which still trade. Coinbase does not allow
    V(OPEN) in one query with other statuses, so each status is asked for separately, and
    every page is read.
  - Filters by product (names such as C(BTC-PERP) are resolved to product IDs and the result
    says what they resolved to), product type, side and C(client_order_id) prefix.
  - Counts the orders per product, per status, per side and per C(client_order_id) prefix. The
    drill bots' ids are C(<host>-<epoch ms>-<seq>), so the prefix tells which host placed what;
    the rule is the O(client_order_id_pattern) option.
  - Read-only; check mode runs the same listing.
author:
  - TradeOps engineering (@tradeops)
extends_documentation_fragment:
  - tradeops.incident_response.coinbase
  - tradeops.incident_response.coinbase.KEY
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same listing in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
options:
  product_ids:
    description:
      - Only orders of these products. Product IDs (C(BIP-20DEC30-CDE)) or the names people use
        (C(BTC-PERP), C(BTC PERP)); see RV(products) for what each name resolved to.
      - Empty means every product.
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
  statuses:
    description:
      - The working statuses to list. All four can still trade.
    type: list
    elements: str
    choices: [OPEN, PENDING, QUEUED, CANCEL_QUEUED]
    default: [OPEN, PENDING, QUEUED, CANCEL_QUEUED]
  client_order_id_prefix:
    description:
      - Only orders whose C(client_order_id) starts with this, for example one host's C(bot-03-).
      - Applied after listing (the API has no such filter). Coinbase lists at most 1000 V(OPEN)
        orders; when that cap is reached and other orders were filtered out, RV(complete) is
        V(false) because matching orders may be hidden behind the cap.
    type: str
  client_order_id_pattern:
    description:
      - Regular expression that finds the prefix of a C(client_order_id) for RV(by_prefix), namely
        its named group C(prefix), else its first group, else the whole match. Ids that do not
        match are counted under V((none\)).
      - The default takes C(bot-03) from the drill bots' C(bot-03-1732665600000-42).
    type: str
    default: '^(?P<prefix>.+)-\d{10,}-\d+$'
  page_size:
    description:
      - Orders per page when listing (Coinbase allows up to 1000).
    type: int
    default: 1000
  include_orders:
    description:
      - Return every order in RV(orders). Set V(false) when only the counts matter.
    type: bool
    default: true
notes:
  - API keys are portfolio-scoped; only the key's portfolio is listed.
seealso:
  - module: tradeops.incident_response.coinbase_orders
"""

EXAMPLES = r"""
- name: What is still working on the exchange, per host
  tradeops.incident_response.coinbase_order_info:
    product_type: FUTURE
  delegate_to: localhost
  run_once: true
  register: working

- name: Say which hosts still have orders
  ansible.builtin.debug:
    msg: "{{ working.count }} working orders; by host: {{ working.by_prefix }}"

- name: One product by the name people use, counts only
  tradeops.incident_response.coinbase_order_info:
    product_ids: [BTC-PERP]
    include_orders: false
  register: btc

- name: Orders a host with ids like "trader.eu.1-<ms>-<seq>" placed
  tradeops.incident_response.coinbase_order_info:
    client_order_id_prefix: trader.eu.1-
    client_order_id_pattern: '^([^-]+)-'
"""

RETURN = r"""
count:
  description: Number of working orders matching the filters.
  returned: always
  type: int
  sample: 3
by_product:
  description: Orders per product ID.
  returned: always
  type: dict
  sample: {"BIP-20DEC30-CDE": 2, "ETP-20DEC30-CDE": 1}
by_status:
  description: Orders per status.
  returned: always
  type: dict
  sample: {"OPEN": 2, "QUEUED": 1}
by_side:
  description: Orders per side.
  returned: always
  type: dict
  sample: {"BUY": 2, "SELL": 1}
by_prefix:
  description: Orders per C(client_order_id) prefix (see O(client_order_id_pattern)); C((none)) for ids without one.
  returned: always
  type: dict
  sample: {"bot-01": 2, "(none)": 1}
complete:
  description: >-
    False when the V(OPEN) listing reached Coinbase's 1000-order cap while orders were filtered
    out by O(client_order_id_prefix): matching orders may then be missing from the result.
  returned: always
  type: bool
  sample: true
orders:
  description: The orders, newest first within each status.
  returned: when O(include_orders=true)
  type: list
  elements: dict
  contains:
    order_id:
      description: Coinbase's order ID.
      type: str
      sample: 0b0f7c3e-6a55-4f4e-9d0e-3d0a2c6f3f11
    client_order_id:
      description: The id the placer chose.
      type: str
      sample: bot-01-1732665600000-42
    prefix:
      description: The prefix found in C(client_order_id).
      type: str
      sample: bot-01
    product_id:
      description: Product ID.
      type: str
      sample: BIP-20DEC30-CDE
    product_type:
      description: V(FUTURE) or V(SPOT).
      type: str
      sample: FUTURE
    side:
      description: V(BUY) or V(SELL).
      type: str
      sample: BUY
    status:
      description: V(OPEN), V(PENDING), V(QUEUED) or V(CANCEL_QUEUED).
      type: str
      sample: OPEN
    order_type:
      description: V(LIMIT), V(MARKET), ...
      type: str
      sample: LIMIT
    base_size:
      description: Size in contracts (futures) or base units, as the exact decimal string.
      type: str
      sample: "1"
    quote_size:
      description: Size in quote currency, for orders sized that way.
      type: str
      sample: null
    limit_price:
      description: Limit price, as the exact decimal string.
      type: str
      sample: "90250"
    filled_size:
      description: Filled so far.
      type: str
      sample: "0"
    created_time:
      description: When the order was created (RFC 3339).
      type: str
      sample: "2026-11-27T03:12:00.123456Z"
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
  sample: {"product_ids": ["BIP-20DEC30-CDE"], "product_type": null, "order_side": null,
           "client_order_id_prefix": null, "statuses": ["OPEN", "PENDING", "QUEUED", "CANCEL_QUEUED"]}
requests:
  description: The requests made (see M(tradeops.incident_response.coinbase_auth_check) for the fields).
  returned: always
  type: dict
  sample: {"requests": 4, "failures": 0, "retries": 0, "waits_s": [], "rate_limit_wait_s": 0.0,
           "alert_ops": false, "failed_attempts": []}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import WORKING_ORDER_STATUSES
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
    OrderFilter,
    PrefixRule,
    compact,
    resolve_product_names,
    summarize,
)


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(
        product_ids=dict(type="list", elements="str", default=[]),
        product_type=dict(type="str", choices=["FUTURE", "SPOT"]),
        order_side=dict(type="str", choices=["BUY", "SELL"]),
        statuses=dict(type="list", elements="str", choices=list(WORKING_ORDER_STATUSES), default=list(WORKING_ORDER_STATUSES)),
        client_order_id_prefix=dict(type="str"),
        client_order_id_pattern=dict(type="str", default=DEFAULT_PREFIX_PATTERN),
        page_size=dict(type="int", default=1000),
        include_orders=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    check_libraries(module)
    params = module.params
    if not 1 <= params["page_size"] <= 1000:
        module.fail_json(msg="page_size must be between 1 and 1000, got %s." % params["page_size"])
    if not params["statuses"]:
        module.fail_json(msg="statuses must name at least one working status (OPEN, PENDING, QUEUED, CANCEL_QUEUED).")
    try:
        prefix_rule = PrefixRule(params["client_order_id_pattern"])
    except InputError as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict())

    try:
        credentials = load_module_credentials(module)
        client = build_client(module, credentials)
    except (CredentialError, InputError) as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict())
    result = {"changed": False, "products": []}
    try:
        try:
            result["products"] = resolve_product_names(client, params["product_ids"])
        except InputError as exc:
            module.fail_json(msg="product_ids: %s" % exc, error=exc.to_dict(), requests=client.summary())
        order_filter = OrderFilter(
            product_ids=[p["product_id"] for p in result["products"]],
            product_type=params["product_type"],
            order_side=params["order_side"],
            client_order_id_prefix=params["client_order_id_prefix"],
            statuses=params["statuses"],
            page_size=params["page_size"],
        )
        result["filters"] = order_filter.as_dict()
        listing = order_filter.list(client)
    except CoinbaseError as exc:
        fail_coinbase(module, exc, client, msg="Listing the working orders failed", **result)
    finally:
        client.close()
    result.update(summarize(listing.orders, prefix_rule))
    result["complete"] = listing.complete
    if params["include_orders"]:
        result["orders"] = [compact(o, prefix_rule) for o in listing.orders]
    result["requests"] = client.summary()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
