# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Resolving the names people say (``BTC-PERP``, ``BTC PERP``) to Coinbase product IDs (``BIP-20DEC30-CDE``).

US perpetual-style futures are CFM products listed as EXPIRING with a placeholder expiry, a
funding interval and a "PERP" display name; the funding fields sit at the top level of
``future_product_details`` (``perpetual_details`` was only filled for INTX perps).
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import InputError


def _norm(text: Any) -> str:
    return re.sub(r"[^A-Z0-9]", "", str(text or "").upper())


def details(product: dict) -> dict:
    return product.get("future_product_details") or {}


def is_perpetual_style(product: dict) -> bool:
    d = details(product)
    perp = d.get("perpetual_details") or {}
    return bool(
        d.get("contract_expiry_type") == "PERPETUAL"
        or d.get("funding_interval") or d.get("funding_rate") not in (None, "")
        or perp.get("funding_rate") not in (None, "")
        or "PERP" in str(product.get("display_name") or d.get("display_name") or "").upper()
    )


def funding(product: dict) -> dict:
    """Funding fields, top level first (CFM perp-style), then perpetual_details (legacy INTX)."""
    d = details(product)
    perp = d.get("perpetual_details") or {}
    return {
        "funding_rate": d.get("funding_rate") if d.get("funding_rate") not in (None, "") else perp.get("funding_rate"),
        "funding_time": d.get("funding_time") or perp.get("funding_time"),
        "funding_interval": d.get("funding_interval"),
        "open_interest": d.get("open_interest") or perp.get("open_interest"),
    }


def _aliases(product: dict) -> set:
    d = details(product)
    names = {product.get("product_id"), product.get("display_name"), d.get("display_name"),
             d.get("contract_display_name"), d.get("group_short_description")}
    root = d.get("contract_root_unit") or product.get("base_currency_id") or product.get("base_display_symbol")
    if root and is_perpetual_style(product):
        names.update({"%s-PERP" % root, "%s PERP" % root, "%s-PERP-INTX" % root, "%s-USD-PERP" % root})
    return {_norm(n) for n in names if n}


def resolve(products: Iterable[dict], requested: Iterable[str]) -> list:
    """Map each requested name to exactly one product, or raise InputError saying what is available."""
    catalogue = [p for p in products if p.get("product_id")]
    by_id = {p["product_id"]: p for p in catalogue}
    resolved = []
    for name in requested:
        if name in by_id:
            matches = [by_id[name]]
        else:
            wanted = _norm(name)
            matches = [p for p in catalogue if wanted in _aliases(p)]
            # Several listings can share a root (a perp-style product and dated futures): prefer the perp.
            if len(matches) > 1 and "PERP" in wanted:
                perps = [p for p in matches if is_perpetual_style(p)]
                matches = perps or matches
        if len(matches) != 1:
            known = sorted("%s (%s)" % (p["product_id"], p.get("display_name") or details(p).get("display_name") or "")
                           for p in catalogue if is_perpetual_style(p))
            problem = "matches no product" if not matches else "is ambiguous: %s" % ", ".join(sorted(p["product_id"] for p in matches))
            raise InputError(
                "The product %r %s." % (name, problem),
                hint="Use a product ID. Perpetual-style products available: %s." % (", ".join(known) or "none"),
            )
        product = matches[0]
        resolved.append({
            "requested": name,
            "product_id": product["product_id"],
            "display_name": product.get("display_name") or details(product).get("display_name"),
            "product": product,
        })
    return resolved
