# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The trade audit of the key-compromise runbook (SOP 3: ``audit_trades.py --hours 24``).

Turns ``GET /orders/historical/fills`` records into per-product totals, flags reversals,
corrections and fills whose order was not placed by one of our bots, and renders the audit
as CSV and JSON files that change only when their content does.

How trade types count (Coinbase documents the values, not their bookkeeping [U]):

- ``FILL`` and ``SYNTHETIC``: a trade, counted as reported.
- ``REVERSAL``: undoes an earlier trade. It is matched to a fill of the same order in the window
  (same size and price first) and subtracts that trade's contracts, notional and fees on the
  original's side, so the result is the same whether Coinbase reports a reversal with the
  original's side or the opposite one. A reversal whose original is outside the window is
  subtracted on its own side and flagged ``reversal_original_not_in_window``: check it by hand.
- ``CORRECTION``: counted as the adjusting trade it reports (its own side, size and price)
  and always flagged ``correction`` for review.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import stat
import tempfile
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Optional

TRADE_TYPES = ("FILL", "REVERSAL", "CORRECTION", "SYNTHETIC")
ORDER_LOOKUP_BATCH = 50  # order ids per GET /orders/historical/batch (repeated keys keep the URL short)
CSV_COLUMNS = (
    "sequence_timestamp", "trade_time", "product_id", "side", "trade_type", "size", "price", "commission",
    "notional", "order_id", "client_order_id", "trade_id", "entry_id", "liquidity_indicator", "flags",
)
ZERO = Decimal(0)


def dec(value: Any) -> Decimal:
    """A Coinbase decimal string (or number) as Decimal; empty or junk counts as 0."""
    if value in (None, ""):
        return ZERO
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return ZERO
    return result if result.is_finite() else ZERO


def dec_str(value: Decimal) -> str:
    """Plain decimal notation without exponent or trailing zeros, as Coinbase writes numbers."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def contract_multiplier(product: Optional[dict]) -> Decimal:
    """Base units per contract: the futures contract size, 1 for spot (or an unknown product)."""
    details = (product or {}).get("future_product_details") or {}
    size = dec(details.get("contract_size"))
    return size if size > 0 else Decimal(1)


class ProductTotals:
    def __init__(self, product_id: str, multiplier: Decimal) -> None:
        self.product_id = product_id
        self.multiplier = multiplier
        self.records = 0
        self.by_trade_type = {t: 0 for t in TRADE_TYPES}
        self.buy = ZERO
        self.sell = ZERO
        self.notional = ZERO
        self.fees = ZERO

    def add(self, side: str, contracts: Decimal, notional: Decimal, commission: Decimal, sign: int) -> None:
        if side == "BUY":
            self.buy += sign * contracts
        else:
            self.sell += sign * contracts
        self.notional += sign * notional
        self.fees += sign * commission

    def as_dict(self) -> dict:
        volume = self.buy + self.sell
        net = self.buy - self.sell
        return {
            "records": self.records,
            "by_trade_type": dict(self.by_trade_type),
            "contract_size": dec_str(self.multiplier),
            "buy_contracts": dec_str(self.buy),
            "sell_contracts": dec_str(self.sell),
            "volume_contracts": dec_str(volume),
            "volume_base": dec_str(volume * self.multiplier),
            "notional": dec_str(self.notional),
            "fees": dec_str(self.fees),
            "net_contracts": dec_str(net),
            "net_base": dec_str(net * self.multiplier),
        }


def _sort_key(fill: dict) -> tuple:
    return (fill.get("sequence_timestamp") or "", fill.get("trade_time") or "", fill.get("entry_id") or "")


def client_id_matches(client_order_id: Optional[str], prefixes: Iterable[str]) -> bool:
    return bool(client_order_id) and any(client_order_id.startswith(p) for p in prefixes)


def audit_fills(fills: list, catalogue: dict, client_order_ids: Optional[dict] = None,
                expected_prefixes: Optional[list] = None) -> dict:
    """Totals per product and flags per fill.

    ``catalogue`` maps product id to the product (for contract sizes); ``client_order_ids`` maps
    order id to client order id (None: not looked up; a missing id: the order was not found).
    Returns ``fills`` (normalised, oldest first), ``totals`` and ``summary``.
    """
    prefixes = [p for p in (expected_prefixes or []) if p]
    ordered = sorted((f for f in fills if isinstance(f, dict)), key=_sort_key)
    totals: dict = {}
    records = []
    unmatched_originals: dict = {}  # order id -> fills a later reversal may undo
    for raw in ordered:
        product_id = raw.get("product_id") or "UNKNOWN"
        product_totals = totals.get(product_id)
        if product_totals is None:
            product_totals = totals[product_id] = ProductTotals(product_id, contract_multiplier(catalogue.get(product_id)))
        trade_type = str(raw.get("trade_type") or "FILL").upper()
        side = str(raw.get("side") or "").upper()
        price, size, commission = dec(raw.get("price")), dec(raw.get("size")), dec(raw.get("commission"))
        if raw.get("size_in_quote") is True and price > 0:
            size = size / price  # a spot fill sized in quote currency
        notional = price * size * product_totals.multiplier
        order_id = raw.get("order_id") or ""
        flags = []
        if trade_type not in TRADE_TYPES:
            flags.append("unknown_trade_type")
        if side not in ("BUY", "SELL"):
            flags.append("unknown_side")
        product_totals.records += 1
        product_totals.by_trade_type[trade_type] = product_totals.by_trade_type.get(trade_type, 0) + 1

        if trade_type == "REVERSAL":
            flags.append("reversal")
            original = _take_original(unmatched_originals.get(order_id) or [], size, price)
            if original is None:
                flags.append("reversal_original_not_in_window")
                undo_side = side
            else:
                undo_side = original["side"]
                original["flags"].append("reversed")
            if undo_side in ("BUY", "SELL"):
                product_totals.add(undo_side, size, notional, commission, -1)
        else:
            if trade_type == "CORRECTION":
                flags.append("correction")
            if side in ("BUY", "SELL"):
                product_totals.add(side, size, notional, commission, 1)

        record = {
            "entry_id": raw.get("entry_id"),
            "trade_id": raw.get("trade_id"),
            "order_id": order_id,
            "product_id": product_id,
            "side": side,
            "trade_type": trade_type,
            "size": dec_str(size),
            "price": dec_str(price),
            "commission": dec_str(commission),
            "notional": dec_str(notional),
            "sequence_timestamp": raw.get("sequence_timestamp"),
            "trade_time": raw.get("trade_time"),
            "liquidity_indicator": raw.get("liquidity_indicator"),
            "flags": flags,
        }
        if client_order_ids is not None:
            client_order_id = client_order_ids.get(order_id)
            record["client_order_id"] = client_order_id
            if prefixes:
                if client_order_id is None:
                    flags.extend(["unexpected", "order_not_found"])
                elif not client_id_matches(client_order_id, prefixes):
                    flags.append("unexpected")
        if trade_type != "REVERSAL":
            unmatched_originals.setdefault(order_id, []).append(record)
        records.append(record)

    summary = {
        "fills": len(records),
        "products": len(totals),
        "reversals": sum(1 for r in records if r["trade_type"] == "REVERSAL"),
        "corrections": sum(1 for r in records if r["trade_type"] == "CORRECTION"),
        "unexpected": sum(1 for r in records if "unexpected" in r["flags"]),
        "flagged": sum(1 for r in records if r["flags"]),
        "fees": dec_str(sum((t.fees for t in totals.values()), ZERO)),
    }
    return {"fills": records, "totals": {pid: t.as_dict() for pid, t in sorted(totals.items())}, "summary": summary}


def _take_original(candidates: list, size: Decimal, price: Decimal) -> Optional[dict]:
    """The fill a reversal undoes: same size and price first, else the oldest one left."""
    for index, record in enumerate(candidates):
        if dec(record["size"]) == size and dec(record["price"]) == price:
            return candidates.pop(index)
    return candidates.pop(0) if candidates else None


# ---------------------------------------------------------------------- files
def render_csv(records: list) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        row = dict(record, flags=" ".join(record.get("flags") or []))
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in CSV_COLUMNS])
    return out.getvalue()


def render_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def write_if_changed(path: str, content: str, check_mode: bool, mode: int = 0o600) -> dict:
    """Write ``content`` to ``path`` atomically with ``mode``, only when content or mode differ.

    Returns ``path``, ``changed``, ``written`` (False in check mode), ``bytes`` and ``sha256``.
    Raises OSError (with the path) when the directory is missing or not writable.
    """
    data = content.encode("utf-8")
    result = {"path": path, "changed": False, "written": False, "bytes": len(data),
              "sha256": hashlib.sha256(data).hexdigest()}
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OSError("the directory %s does not exist" % directory)
    try:
        with open(path, "rb") as handle:
            same_content = handle.read() == data
        same_mode = stat.S_IMODE(os.stat(path).st_mode) == mode
    except FileNotFoundError:
        same_content = same_mode = False
    if same_content and same_mode:
        return result
    result["changed"] = True
    if check_mode:
        return result
    if same_content:
        os.chmod(path, mode)
    else:
        handle, temp = tempfile.mkstemp(dir=directory, prefix=".%s." % os.path.basename(path))
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, mode)
            os.replace(temp, path)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise
    result["written"] = True
    return result
