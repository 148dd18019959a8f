# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Funding rates on the SOP's 8-hour basis, spikes, and what funding costs a position (SOP 6).

- Coinbase gives the rate for one funding interval as a fraction (``"0.000011"``) and the
  interval as a protobuf duration (``"3600s"``) [U: units inferred, not documented]. Normalised:
  ``rate_8h = rate * 28800 / interval_s``.
- A spike is ``|rate_8h| > threshold`` (the SOP: 0.1 % per 8 hours, both signs).
- Impact: ``notional = contracts * contract_size * price``; a position pays
  ``side * notional * rate`` per interval, where side is +1 long and -1 short (longs pay
  shorts when the rate is positive). Per day: times ``86400 / interval_s``.
"""

from __future__ import annotations

import re
from typing import Any, Optional

BASIS_SECONDS = 8 * 3600  # the SOP's thresholds are per 8 hours
DAY_SECONDS = 86400
DEFAULT_INTERVAL_S = 3600.0  # CFM perp-style futures fund hourly [U]; used only when Coinbase sends none

_ISO_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$", re.I)


def parse_interval(value: Any) -> Optional[float]:
    """Seconds from a funding interval: ``"3600s"`` (protobuf Duration JSON), ``3600``,
    ``"3600"`` or ISO 8601 ``"PT1H"``. None when missing, zero or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        match = _ISO_DURATION.match(text) if text[:1] in ("P", "p") else None
        if match and any(match.groups()):
            days, hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
            seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
        else:
            if text[-1:] in ("s", "S"):
                text = text[:-1]
            try:
                seconds = float(text)
            except ValueError:
                return None
    return seconds if seconds > 0 else None


def to_float(value: Any) -> Optional[float]:
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def normalise(rate: float, interval_s: float) -> float:
    """The rate per 8 hours."""
    return rate * BASIS_SECONDS / interval_s


def impact(contracts: float, contract_size: float, price: float, rate: float, interval_s: float) -> dict:
    """What a signed position (contracts > 0 long, < 0 short) pays; a negative amount is received."""
    notional = abs(contracts) * contract_size * price
    side = 1.0 if contracts > 0 else -1.0 if contracts < 0 else 0.0
    per_period = side * notional * rate
    return {
        "contracts": contracts,
        "side": "LONG" if side > 0 else "SHORT" if side < 0 else "FLAT",
        "notional": round(notional, 2),
        "payment_per_period": round(per_period, 6),
        "payment_per_8h": round(per_period * BASIS_SECONDS / interval_s, 6),
        "payment_per_day": round(per_period * DAY_SECONDS / interval_s, 6),
    }
