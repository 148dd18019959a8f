# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""UTC times as Coinbase writes them (RFC 3339) and as the collection reports them (ISO 8601, ``Z``)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Optional

# Coinbase sends up to nanoseconds; Python's datetime takes exactly 6 digits (3.9 and 3.10 are strict).
_FRACTION = re.compile(r"\.(\d+)")


def iso_utc(ts: float, timespec: str = "seconds") -> str:
    """Epoch seconds as ``2026-11-27T03:12:00Z`` (or with ``milliseconds``)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_rfc3339(text: Any) -> float:
    """Epoch seconds from an RFC 3339 time (``Z`` or an offset, any fraction); ValueError otherwise.

    A time without an offset is refused rather than guessed: an audit window in the wrong time
    zone is off by hours.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("not a time: %r" % (text,))
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text.strip().replace(" ", "T", 1), count=1)
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("%r has no time zone; add Z for UTC" % text)
    return moment.timestamp()


def parse_optional_rfc3339(text: Any) -> Optional[float]:
    """Like parse_rfc3339, but None (or an empty string) is None, and junk is None too."""
    if text in (None, ""):
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None
