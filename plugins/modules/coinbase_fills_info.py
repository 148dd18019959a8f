#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_fills_info
short_description: Audit the fills of a time window, flag reversals, corrections and unexpected trades
version_added: 0.1.0
description:
  - The trade audit of the SOP's key-compromise runbook (section 3, step 5,
    C(audit_trades.py --hours 24)) and of its post-incident "audit all trades in compromise
    window".
  - Lists every fill in the window from C(GET /orders/historical/fills) (by
    C(start_sequence_timestamp) / C(end_sequence_timestamp), following the cursor to the last
    page), optionally only for some products (names such as C(BTC-PERP) are resolved to product
    IDs), and reports per-product totals, reversals and corrections, and fills whose order was
    not placed by one of our bots.
  - "Totals per product: fill records per trade type; bought, sold and traded contracts;
    volume in base units (contracts times the contract size; spot fills count 1 per unit);
    notional (price times size times contract size, in the quote currency); fees; net position
    change (bought minus sold), in contracts and base units."
  - "How trade types count (Coinbase documents the values, not their bookkeeping): V(FILL) and
    V(SYNTHETIC) count as reported. A V(REVERSAL) undoes an earlier trade: it is matched to a
    fill of the same order in the window (same size and price first) and subtracts that trade's
    contracts, notional and fees on the original's side, so the totals are right whichever side
    Coinbase reports the reversal with; the original is flagged V(reversed). A reversal whose
    original is outside the window is subtracted on its own side and flagged
    V(reversal_original_not_in_window) for a human to check. A V(CORRECTION) counts as the
    adjusting trade it reports (its own side, size and price) and is always flagged
    V(correction)."
  - With O(expected_client_order_id_prefixes), the client order id of every fill's order is
    looked up (C(GET /orders/historical/batch) by C(order_ids), 50 per request) and fills whose
    order's id starts with none of the prefixes are flagged V(unexpected), as possibly placed
    with a leaked key; an order the key cannot find is flagged V(unexpected) and
    V(order_not_found) (Coinbase may leave out orders placed in the web UI [U]).
  - Optionally writes the audit to a CSV file (one row per fill) and a JSON file (window,
    totals, summary, fills), mode 0600, atomically, and only when the content differs.
author:
  - TradeOps engineering (@tradeops)
extends_documentation_fragment:
  - tradeops.incident_response.coinbase
  - tradeops.incident_response.coinbase.KEY
attributes:
  check_mode:
    support: full
    description:
      - Reads the same in check mode, writes no file, and reports in RV(files) which files would
        change.
  diff_mode:
    support: none
    description: The audit files can hold thousands of rows; RV(files) says whether each changed.
options:
  hours:
    description:
      - Length of the window in hours, ending now (or at O(end)).
      - Mutually exclusive with O(start).
    type: float
    default: 24
  start:
    description:
      - Start of the window, RFC 3339 with a time zone, for example C(2026-11-27T01:00:00Z).
      - The window is O(start) to O(end) (or now); use it for reproducible audits of a known
        compromise window.
    type: str
  end:
    description:
      - End of the window, RFC 3339 with a time zone. Defaults to now.
    type: str
  products:
    description:
      - Only fills of these products, given as product IDs (C(BIP-20DEC30-CDE)) or as names
        people say (C(BTC-PERP), C(BTC PERP)). RV(product_ids) says what each name resolved to.
      - All products when empty.
    type: list
    elements: str
    default: []
  expected_client_order_id_prefixes:
    description:
      - Client order id prefixes our bots and runbooks use, for example the bots' C(BOT_ID)s
        (the bot writes C(<BOT_ID>-<epoch ms>-<seq>)) and the kill switch's close-position
        prefix. Fills of orders whose client order id starts with none of them are flagged
        V(unexpected).
      - No lookup and no such flag when empty.
    type: list
    elements: str
    default: []
  csv_path:
    description: Write one CSV row per fill here (mode 0600). The directory must exist.
    type: path
  json_path:
    description:
      - Write the whole audit here as JSON (mode 0600). The directory must exist.
      - The window is part of the content, so with O(hours) the file changes on every run; give
        O(start) and O(end) for a file that changes only when the fills do.
    type: path
  include_fills:
    description:
      - Return every fill in RV(fills). Flagged fills are always returned in RV(flagged_fills);
        a day of a busy bot's fills is better read from O(csv_path) than from the task result.
    type: bool
    default: false
  page_size:
    description: Fills per page (the API's C(limit)); the API's default (100) when not set.
    type: int
"""

EXAMPLES = r"""
- name: Audit the last 24 hours of trades after a key compromise (SOP 3, step 5)
  tradeops.incident_response.coinbase_fills_info:
    hours: 24
    expected_client_order_id_prefixes: "{{ groups['trading_bots'] + ['ks-'] }}"
    csv_path: "{{ incident_dir }}/compromise_audit.csv"
    json_path: "{{ incident_dir }}/compromise_audit.json"
  delegate_to: localhost
  run_once: true
  register: audit

- name: Stop and escalate when trades were not ours
  ansible.builtin.fail:
    msg: "{{ audit.summary.unexpected }} fills were not placed by our bots: {{ audit.unexpected_fills | map(attribute='order_id') | unique }}"
  when: audit.summary.unexpected > 0

- name: A fixed window for one product, reproducibly
  tradeops.incident_response.coinbase_fills_info:
    start: "2026-11-27T01:00:00Z"
    end: "2026-11-27T04:00:00Z"
    products: [BTC-PERP]
    json_path: /var/lib/tradeops/audit-20261127.json
"""

RETURN = r"""
window:
  description: The window audited.
  returned: always
  type: dict
  contains:
    start:
      description: Start, RFC 3339 UTC.
      type: str
      sample: "2026-11-26T03:12:00.000Z"
    end:
      description: End, RFC 3339 UTC.
      type: str
      sample: "2026-11-27T03:12:00.000Z"
    hours:
      description: Length in hours.
      type: float
      sample: 24.0
product_ids:
  description: What each name in O(products) resolved to.
  returned: when O(products) is set
  type: list
  elements: dict
  sample: [{"requested": "BTC-PERP", "product_id": "BIP-20DEC30-CDE", "display_name": "BTC PERP"}]
summary:
  description: Counts over the whole window.
  returned: always
  type: dict
  contains:
    fills:
      description: Fill records in the window (all trade types).
      type: int
      sample: 412
    products:
      description: Products with fills.
      type: int
      sample: 2
    reversals:
      description: V(REVERSAL) records.
      type: int
      sample: 0
    corrections:
      description: V(CORRECTION) records.
      type: int
      sample: 0
    unexpected:
      description: Fills flagged V(unexpected) (0 without O(expected_client_order_id_prefixes)).
      type: int
      sample: 0
    flagged:
      description: Fills with any flag.
      type: int
      sample: 0
    fees:
      description: Fees of all products, decimal string (quote currency; USD for CFM futures).
      type: str
      sample: "12.4"
totals:
  description: >-
    Per product ID. Amounts are decimal strings (exact, as Coinbase writes them); reversals are
    already subtracted.
  returned: always
  type: dict
  sample:
    BIP-20DEC30-CDE:
      records: 3
      by_trade_type: {FILL: 2, REVERSAL: 1, CORRECTION: 0, SYNTHETIC: 0}
      contract_size: "0.01"
      buy_contracts: "2"
      sell_contracts: "1"
      volume_contracts: "3"
      volume_base: "0.03"
      notional: "2850"
      fees: "1.425"
      net_contracts: "1"
      net_base: "0.01"
flagged_fills:
  description: >-
    Fills with a flag: V(reversal), V(reversed), V(reversal_original_not_in_window),
    V(correction), V(unexpected), V(order_not_found), V(unknown_trade_type), V(unknown_side).
    Same fields as RV(fills).
  returned: always
  type: list
  elements: dict
unexpected_fills:
  description: The fills flagged V(unexpected).
  returned: always
  type: list
  elements: dict
fills:
  description: Every fill, oldest first.
  returned: when O(include_fills=true)
  type: list
  elements: dict
  contains:
    entry_id:
      description: The fill's entry id.
      type: str
    trade_id:
      description: The trade id.
      type: str
    order_id:
      description: The order it filled.
      type: str
    client_order_id:
      description: The order's client order id (None when the order was not found).
      type: str
      returned: when O(expected_client_order_id_prefixes) is set
    product_id:
      description: Product ID.
      type: str
    side:
      description: V(BUY) or V(SELL).
      type: str
    trade_type:
      description: V(FILL), V(REVERSAL), V(CORRECTION) or V(SYNTHETIC).
      type: str
    size:
      description: Contracts (futures) or base units (spot), decimal string.
      type: str
    price:
      description: Price, decimal string.
      type: str
    commission:
      description: Fee, decimal string.
      type: str
    notional:
      description: Price times size times contract size, decimal string.
      type: str
    sequence_timestamp:
      description: When Coinbase sequenced the fill (the window is on this time).
      type: str
    trade_time:
      description: When the trade happened.
      type: str
    liquidity_indicator:
      description: V(MAKER), V(TAKER) or unknown.
      type: str
    flags:
      description: Flags (see RV(flagged_fills)).
      type: list
      elements: str
files:
  description: The files written (or, in check mode, that would be written).
  returned: when O(csv_path) or O(json_path) is set
  type: dict
  contains:
    csv:
      description: C(path), C(changed), C(written) (false in check mode), C(bytes), C(sha256).
      type: dict
      returned: when O(csv_path) is set
    json:
      description: Same for the JSON file.
      type: dict
      returned: when O(json_path) is set
requests:
  description: The requests made (see M(tradeops.incident_response.coinbase_auth_check)).
  returned: always
  type: dict
"""

import math
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import products as products_mod
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.audit import (
    ORDER_LOOKUP_BATCH,
    audit_fills,
    render_csv,
    render_json,
    write_if_changed,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import CoinbaseError, CredentialError, InputError
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.module import (
    COINBASE_MUTUALLY_EXCLUSIVE,
    build_client,
    check_libraries,
    check_positive,
    coinbase_argument_spec,
    fail_coinbase,
    load_module_credentials,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.timeutil import iso_utc, parse_rfc3339


class AuditParameters:
    """The window and filters, checked; every refusal names its option."""

    def __init__(self, module, now):
        params = module.params
        self.module = module
        check_positive(module, hours=params["hours"], page_size=params["page_size"])
        # The window is sent in milliseconds: "now" rounds up, or a fill sequenced in the last
        # millisecond before the run would fall outside the audit.
        end = self._time("end", params["end"]) if params["end"] else math.ceil(now * 1000.0) / 1000.0
        if params["start"]:
            start = self._time("start", params["start"])
        else:
            start = end - params["hours"] * 3600.0
        if start >= end:
            module.fail_json(msg="start must be before end: the window %s .. %s is empty." % (iso_utc(start), iso_utc(end)))
        self.start, self.end = start, end
        self.products = [p.strip() for p in params["products"] if p and p.strip()]
        self.prefixes = [p for p in params["expected_client_order_id_prefixes"] if p]
        self.csv_path, self.json_path = params["csv_path"], params["json_path"]
        if self.csv_path and self.csv_path == self.json_path:
            module.fail_json(msg="csv_path and json_path must be different files, both are %s." % self.csv_path)

    def _time(self, name, text):
        try:
            return parse_rfc3339(text)
        except ValueError as exc:
            self.module.fail_json(msg="%s must be an RFC 3339 time with a time zone, such as 2026-11-27T01:00:00Z: %s." % (name, exc))

    def window(self):
        return {
            "start": iso_utc(self.start, "milliseconds"),
            "end": iso_utc(self.end, "milliseconds"),
            "hours": round((self.end - self.start) / 3600.0, 6),
        }


def lookup_client_order_ids(client, order_ids):
    """order id -> client order id, by batch listing (an id the key cannot see is left out)."""
    found = {}
    unique = sorted(set(i for i in order_ids if i))
    for first in range(0, len(unique), ORDER_LOOKUP_BATCH):
        chunk = unique[first:first + ORDER_LOOKUP_BATCH]
        for order in client.list_orders(page_size=len(chunk), order_ids=chunk):
            if order.get("order_id") in chunk:
                found[order["order_id"]] = order.get("client_order_id")
    return found


class FillsAuditor:
    def __init__(self, module, params):
        self.module = module
        self.params = params
        self.result = {"changed": False, "window": params.window()}

    def run(self, client):
        catalogue = {p["product_id"]: p for p in client.list_products() if p.get("product_id")}
        product_ids = []
        if self.params.products:
            resolved = products_mod.resolve(catalogue.values(), self.params.products)
            self.result["product_ids"] = [{k: r[k] for k in ("requested", "product_id", "display_name")} for r in resolved]
            product_ids = sorted(set(r["product_id"] for r in resolved))
        window = self.result["window"]
        fills = client.list_fills(start=window["start"], end=window["end"], product_ids=product_ids,
                                  page_size=self.module.params["page_size"])
        client_order_ids = None
        if self.params.prefixes:
            client_order_ids = lookup_client_order_ids(client, [f.get("order_id") for f in fills])
        audit = audit_fills(fills, catalogue, client_order_ids, self.params.prefixes)
        self.result.update(
            summary=audit["summary"],
            totals=audit["totals"],
            flagged_fills=[f for f in audit["fills"] if f["flags"]],
            unexpected_fills=[f for f in audit["fills"] if "unexpected" in f["flags"]],
        )
        if self.module.params["include_fills"]:
            self.result["fills"] = audit["fills"]
        self.write_files(audit)
        return self.result

    def write_files(self, audit):
        report = {
            "window": self.result["window"],
            "product_ids": self.result.get("product_ids", []),
            "expected_client_order_id_prefixes": self.params.prefixes,
            "summary": audit["summary"],
            "totals": audit["totals"],
            "fills": audit["fills"],
        }
        files = {}
        for kind, path, render in (("csv", self.params.csv_path, lambda: render_csv(audit["fills"])),
                                   ("json", self.params.json_path, lambda: render_json(report))):
            if not path:
                continue
            try:
                files[kind] = write_if_changed(path, render(), self.module.check_mode)
            except OSError as exc:
                self.module.fail_json(msg="%s_path: cannot write %s: %s." % (kind, path, exc.strerror or exc), **self.result)
        if files:
            self.result["files"] = files
            self.result["changed"] = any(f["changed"] for f in files.values())
            if self.module.check_mode and self.result["changed"]:
                self.module.warn("Check mode: no file was written; files.*.changed says which would change.")


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(
        hours=dict(type="float", default=24.0),
        start=dict(type="str"),
        end=dict(type="str"),
        products=dict(type="list", elements="str", default=[]),
        expected_client_order_id_prefixes=dict(type="list", elements="str", default=[], no_log=False),
        csv_path=dict(type="path"),
        json_path=dict(type="path"),
        include_fills=dict(type="bool", default=False),
        page_size=dict(type="int"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE + [("hours", "start")],
        supports_check_mode=True,
    )
    check_libraries(module)
    params = AuditParameters(module, time.time())
    auditor = FillsAuditor(module, params)
    client = None
    try:
        credentials = load_module_credentials(module)
        client = build_client(module, credentials)
        result = auditor.run(client)
    except (CredentialError, InputError) as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict(), **auditor.result)
    except CoinbaseError as exc:
        fail_coinbase(module, exc, client, msg="The fills audit failed", **auditor.result)
    finally:
        if client is not None:
            auditor.result["requests"] = client.summary()
            client.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
