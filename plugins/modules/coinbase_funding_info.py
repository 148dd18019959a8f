#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_funding_info
short_description: Funding rates on the SOP's 8-hour basis, spikes, and their cost to a position
version_added: 0.1.0
description:
  - The SOP's section 6 (funding rate spike), steps 1 and 2 (C(get_funding_rates.py),
    C(funding_impact.py --position-size $SIZE)) and the input of its decision tree.
  - Reads each product's next funding rate, next funding time and funding interval, resolves
    names such as C(BTC-PERP) to product IDs (and says which), normalises the rate to the SOP's
    8-hour basis, and flags a spike beyond the SOP's +/-0.1 % per 8 hours.
  - "Normalisation: C(rate_8h = funding_rate * 28800 / interval_s). Coinbase sends the rate per
    funding interval as a fraction (C(0.000011) = 0.0011 %) and the interval as a protobuf
    duration (C(3600s)); C(3600), C(\"3600\") and ISO 8601 (C(PT1H)) are read too. A product
    without a readable interval is taken to fund every O(assumed_funding_interval) seconds
    (hourly, as Coinbase's US perp-style futures do [U]) and is marked C(interval_assumed)."
  - "Impact of a position: C(notional = contracts * contract_size * price); per funding
    interval the position pays C(side * notional * funding_rate), side +1 long and -1 short, so
    longs pay when the rate is positive and receive when it is negative (a negative payment is
    money received). Per day: times C(86400 / interval_s). The decision tree's
    C(FUNDING_IMPACT -gt DAILY_TARGET) is C(payment_per_day > daily_target)."
  - "Public or authenticated: without a key (no O(private_key), O(private_key_path) or
    O(key_file)), the public C(/market/products) endpoints are used, so the check works from
    any laptop; with a key, the authenticated C(/products) ones (same fields, not served from
    Coinbase's one-second public cache). O(read_positions) needs a key."
  - Read-only.
author:
  - TradeOps engineering (@tradeops)
extends_documentation_fragment:
  - tradeops.incident_response.coinbase
  - tradeops.incident_response.coinbase.KEY
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
options:
  products:
    description:
      - Product IDs (C(BIP-20DEC30-CDE)) or names (C(BTC-PERP), C(BTC PERP)).
      - Every perp-style product when empty (plus, with O(read_positions), every product with a position).
    type: list
    elements: str
    default: []
  spike_threshold_pct:
    description:
      - The spike threshold in percent per 8 hours; a rate beyond it on either side is a spike
        (the SOP says 0.1, that is C(rate_8h > 0.001) or C(rate_8h < -0.001)).
    type: float
    default: 0.1
  position_size:
    description:
      - A position in contracts to price the funding of, positive long and negative short, for
        example the SOP's C($SIZE). Applied to every product in O(products).
      - Cannot be combined with O(read_positions=true).
    type: float
  read_positions:
    description:
      - Price the funding of the account's current positions (C(GET /cfm/positions)). Needs a key.
    type: bool
    default: false
  daily_target:
    description:
      - The desk's daily funding budget in USD (the SOP's C($DAILY_TARGET)). A position whose
        C(payment_per_day) is above it is flagged RV(products[].position.exceeds_daily_target);
        the SOP's decision tree then reduces or closes it. Received funding never exceeds it.
    type: float
  assumed_funding_interval:
    description:
      - Seconds between fundings assumed for a product whose interval Coinbase does not send or
        that cannot be read.
    type: float
    default: 3600
"""

EXAMPLES = r"""
- name: Check current funding (SOP 6, step 1)
  tradeops.incident_response.coinbase_funding_info:
    products: [BTC-PERP, ETH-PERP]
  delegate_to: localhost
  run_once: true
  register: funding

- name: Calculate the impact of the current positions against the daily target (SOP 6, steps 2-3)
  tradeops.incident_response.coinbase_funding_info:
    read_positions: true
    daily_target: 250
  register: impact

- name: Reduce what costs too much (SOP 6 decision tree)
  ansible.builtin.debug:
    msg: "Reduce {{ item.product_id }} by 50 %: funding costs {{ item.position.payment_per_day }} USD a day"
  loop: "{{ impact.products | selectattr('position.exceeds_daily_target', 'defined') | selectattr('position.exceeds_daily_target') }}"
  loop_control:
    label: "{{ item.product_id }}"
"""

RETURN = r"""
source:
  description: V(public) (C(/market/products), no key) or V(authenticated) (C(/products)).
  returned: always
  type: str
  sample: public
threshold_pct:
  description: The spike threshold used, percent per 8 hours.
  returned: always
  type: float
  sample: 0.1
spike:
  description: Whether any product's funding is beyond the threshold.
  returned: always
  type: bool
  sample: false
spikes:
  description: Product IDs with a spike.
  returned: always
  type: list
  elements: str
  sample: []
exceeds_daily_target:
  description: Whether any position's daily funding payment is above O(daily_target).
  returned: always
  type: bool
  sample: false
total_payment_per_day:
  description: Sum of the positions' daily funding payments in USD (negative = received).
  returned: when a position was priced
  type: float
  sample: 12.35
products:
  description: One entry per product.
  returned: always
  type: list
  elements: dict
  contains:
    requested:
      description: The name asked for (the product ID when all products were listed).
      type: str
      sample: BTC-PERP
    product_id:
      description: The product it resolved to.
      type: str
      sample: BIP-20DEC30-CDE
    display_name:
      description: Coinbase's display name.
      type: str
      sample: BTC PERP
    funding_rate:
      description: The next funding rate per interval, as a fraction (None when the product has no funding).
      type: float
      sample: 0.000011
    funding_interval:
      description: The interval as Coinbase sent it.
      type: str
      sample: 3600s
    interval_s:
      description: The interval in seconds used for normalising.
      type: float
      sample: 3600.0
    interval_assumed:
      description: Whether O(assumed_funding_interval) was used because Coinbase sent none (or an unreadable one).
      type: bool
      sample: false
    rate_8h:
      description: The rate per 8 hours, as a fraction.
      type: float
      sample: 0.000088
    rate_8h_pct:
      description: The rate per 8 hours in percent.
      type: float
      sample: 0.0088
    annualized_pct:
      description: C(rate_8h_pct) times 3 times 365 (simple, not compounded).
      type: float
      sample: 9.636
    spike:
      description: Whether C(|rate_8h_pct|) is above the threshold.
      type: bool
      sample: false
    direction:
      description: V(longs_pay), V(shorts_pay) or V(none).
      type: str
      sample: longs_pay
    next_funding_time:
      description: Next funding time, as Coinbase sent it (RFC 3339).
      type: str
      sample: "2026-11-27T04:00:00Z"
    seconds_to_next_funding:
      description: Seconds from now to the next funding.
      type: float
      sample: 1432.5
    price:
      description: The product's price used for the notional.
      type: float
      sample: 95000.0
    contract_size:
      description: Base units per contract.
      type: float
      sample: 0.01
    open_interest:
      description: Open interest as sent.
      type: str
      sample: "25000"
    position:
      description: The funding of a position in this product.
      type: dict
      returned: when O(position_size) is set, or with O(read_positions)
      contains:
        contracts:
          description: Contracts, positive long, negative short.
          type: float
          sample: 10.0
        side:
          description: V(LONG), V(SHORT) or V(FLAT).
          type: str
          sample: LONG
        source:
          description: V(option) (O(position_size)) or V(account) (O(read_positions)).
          type: str
          sample: account
        notional:
          description: Contracts times contract size times price, USD.
          type: float
          sample: 9500.0
        payment_per_period:
          description: USD paid per funding interval (negative = received).
          type: float
          sample: 0.1045
        payment_per_8h:
          description: USD paid per 8 hours.
          type: float
          sample: 0.836
        payment_per_day:
          description: USD paid per day.
          type: float
          sample: 2.508
        exceeds_daily_target:
          description: C(payment_per_day > daily_target).
          type: bool
          returned: when O(daily_target) is set
          sample: false
requests:
  description: The requests made (see M(tradeops.incident_response.coinbase_auth_check)).
  returned: always
  type: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import funding as funding_mod
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import products as products_mod
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import CoinbaseError, CredentialError, InputError
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.module import (
    COINBASE_MUTUALLY_EXCLUSIVE,
    build_client,
    check_libraries,
    check_positive,
    coinbase_argument_spec,
    key_configured,
    fail_coinbase,
    load_module_credentials,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.positions import signed_contracts
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.timeutil import parse_optional_rfc3339


class FundingReport:
    def __init__(self, module, public):
        self.module = module
        self.params = module.params
        self.public = public
        self.threshold = self.params["spike_threshold_pct"]
        self.result = {"changed": False, "source": "public" if public else "authenticated", "threshold_pct": self.threshold,
                       "spike": False, "spikes": [], "exceeds_daily_target": False, "products": []}

    def run(self, client, now):
        catalogue = client.list_products(product_type="FUTURE", public=self.public)
        positions = {}
        if self.params["read_positions"]:
            for position in client.list_positions():
                # the same reading of side and size as every other position module (Decimal, exact);
                # float for the funding arithmetic, and "or 0.0" so a flat short is not -0.0
                positions[position.get("product_id")] = float(signed_contracts(position)) or 0.0
        if self.params["products"]:
            wanted = products_mod.resolve(catalogue, self.params["products"])
        else:
            by_id = {p["product_id"]: p for p in catalogue if p.get("product_id")}
            ids = [pid for pid, p in sorted(by_id.items()) if products_mod.is_perpetual_style(p)]
            ids += sorted(pid for pid in positions if pid in by_id and pid not in ids)
            wanted = [{"requested": pid, "product_id": pid, "display_name": by_id[pid].get("display_name"), "product": by_id[pid]} for pid in ids]
        seen = set()
        for entry in wanted:
            if entry["product_id"] in seen:
                continue
            seen.add(entry["product_id"])
            self.result["products"].append(self.describe(entry, positions, now))
        priced = [p["position"] for p in self.result["products"] if "position" in p]
        if priced:
            self.result["total_payment_per_day"] = round(sum(p["payment_per_day"] for p in priced), 6)
        return self.result

    def describe(self, entry, positions, now):
        product = entry["product"]
        fields = products_mod.funding(product)
        details = products_mod.details(product)
        rate = funding_mod.to_float(fields["funding_rate"])
        interval = funding_mod.parse_interval(fields["funding_interval"])
        assumed = interval is None
        if assumed:
            interval = self.params["assumed_funding_interval"]
        info = {
            "requested": entry["requested"],
            "product_id": entry["product_id"],
            "display_name": entry["display_name"],
            "funding_rate": rate,
            "funding_interval": fields["funding_interval"],
            "interval_s": interval,
            "interval_assumed": assumed,
            "next_funding_time": fields["funding_time"],
            "price": funding_mod.to_float(product.get("price")),
            "contract_size": funding_mod.to_float(details.get("contract_size")) or 1.0,
            "open_interest": fields["open_interest"],
            "spike": False,
            "direction": "none",
        }
        next_time = parse_optional_rfc3339(fields["funding_time"])
        if next_time is not None:
            info["seconds_to_next_funding"] = round(next_time - now, 1)
        if rate is None:
            self.module.warn("%s has no funding rate (not a perp-style product?); nothing to check." % entry["product_id"])
            return info
        if assumed and fields["funding_interval"] not in (None, ""):
            self.module.warn("%s: funding interval %r is unreadable; assumed %g s." % (entry["product_id"], fields["funding_interval"], interval))
        elif assumed:
            self.module.warn("%s: Coinbase sent no funding interval; assumed %g s." % (entry["product_id"], interval))
        rate_8h = funding_mod.normalise(rate, interval)
        info.update(
            rate_8h=rate_8h,
            rate_8h_pct=round(rate_8h * 100, 8),
            annualized_pct=round(rate_8h * 100 * 3 * 365, 6),
            spike=abs(rate_8h * 100) > self.threshold,
            direction="longs_pay" if rate > 0 else "shorts_pay" if rate < 0 else "none",
        )
        if info["spike"]:
            self.result["spike"] = True
            self.result["spikes"].append(entry["product_id"])
        contracts, source = self.position_for(entry["product_id"], positions)
        if contracts is not None:
            if info["price"] is None:
                self.module.warn("%s has no price; its funding impact cannot be computed." % entry["product_id"])
            else:
                position = funding_mod.impact(contracts, info["contract_size"], info["price"], rate, interval)
                position["source"] = source
                target = self.params["daily_target"]
                if target is not None:
                    position["exceeds_daily_target"] = position["payment_per_day"] > target
                    self.result["exceeds_daily_target"] |= position["exceeds_daily_target"]
                info["position"] = position
        return info

    def position_for(self, product_id, positions):
        if self.params["position_size"] is not None:
            return self.params["position_size"], "option"
        if self.params["read_positions"]:
            return positions.get(product_id, 0.0), "account"
        return None, None


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(
        products=dict(type="list", elements="str", default=[]),
        spike_threshold_pct=dict(type="float", default=0.1),
        position_size=dict(type="float"),
        read_positions=dict(type="bool", default=False),
        daily_target=dict(type="float"),
        assumed_funding_interval=dict(type="float", default=funding_mod.DEFAULT_INTERVAL_S),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE,
        supports_check_mode=True,
    )
    check_libraries(module)
    params = module.params
    check_positive(module, spike_threshold_pct=params["spike_threshold_pct"], daily_target=params["daily_target"],
                   assumed_funding_interval=params["assumed_funding_interval"])
    if params["position_size"] is not None and params["read_positions"]:
        module.fail_json(msg="position_size and read_positions are mutually exclusive: price either a given size or the account's positions.")
    public = not key_configured(params)
    if public and params["read_positions"]:
        module.fail_json(msg="read_positions needs an API key: set private_key_path (or COINBASE_CDP_PRIVATE_KEY_PATH), key_file or private_key.")

    report = FundingReport(module, public)
    client = None
    try:
        credentials = None if public else load_module_credentials(module)
        client = build_client(module, credentials)
        result = report.run(client, time.time())
    except (CredentialError, InputError) as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict(), **report.result)
    except CoinbaseError as exc:
        fail_coinbase(module, exc, client, msg="Reading funding failed", **report.result)
    except ValueError as exc:  # a position size Coinbase sent that is not a decimal number
        module.fail_json(msg="Coinbase sent a figure that is not a number: %s" % exc,
                         requests=client.summary() if client is not None else None, **report.result)
    result["requests"] = client.summary()
    client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
