"""Small shared helpers: decimals as Coinbase writes them, RFC 3339 times, compact JSON.

Coinbase sends every money and size field as a decimal string and every time as RFC 3339 in
UTC. Keeping the formatting in one place is what keeps the double's output consistent.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal(0)


def to_decimal(value: Any) -> Decimal:
    """Parse a request value (string or number) as a finite Decimal, or raise ValueError."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a number: {value!r}")
    try:
        # str() first so floats become their shortest repr, not their binary expansion.
        result = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def fmt_decimal(value: Decimal) -> str:
    """Render a Decimal as Coinbase does: plain notation, no exponent, no trailing zeros."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def fmt_money(value: Decimal) -> str:
    """Render a USD amount with exactly two decimals (balances and PnL); never "-0.00"."""
    rounded = value.quantize(CENT, rounding=ROUND_HALF_EVEN)
    return format(rounded if rounded != 0 else abs(rounded), "f")


def quantize_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round ``value`` to the nearest multiple of ``step`` (prices to the quote increment)."""
    return (value / step).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * step


def is_multiple_of(value: Decimal, step: Decimal) -> bool:
    """True when ``value`` is an exact multiple of ``step``."""
    return (value % step) == 0


def rfc3339(ts: float) -> str:
    """Seconds since the epoch as RFC 3339 UTC with microseconds (orders, fills, accounts)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_seconds(ts: float) -> str:
    """Seconds since the epoch as RFC 3339 UTC without fractions (contract expiries)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nanos(ts: float) -> str:
    """RFC 3339 with nanosecond precision, as the WebSocket envelope carries it."""
    whole = int(ts)
    nanos = round((ts - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    base = datetime.fromtimestamp(whole, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_rfc3339(text: str) -> float:
    """Parse an RFC 3339 / ISO 8601 time to epoch seconds; naive times are taken as UTC.

    Python's parser stops at microseconds, and clients send up to nanoseconds, so extra digits
    are cut rather than rejected.
    """
    cleaned = _FRACTION.sub(r"\1", text.strip())
    try:
        parsed = datetime.fromisoformat(cleaned.replace("z", "Z"))
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 time: {text!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def compact_json(data: Any) -> str:
    """JSON without spaces, like Coinbase's gateway.

    This matters: the SDK detects a missing scope by searching the body for the exact text
    ``"error_details":"Missing required scopes"``, which only matches compact JSON.
    """
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def parse_bool(value: str | bool | None, default: bool = False) -> bool:
    """Parse a query-string boolean; the SDK sends Python's ``True``/``False`` spelling."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")
