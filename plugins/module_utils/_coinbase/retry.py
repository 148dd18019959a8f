# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The SOP's retry policy (section 1, "Backoff Strategy").

First retry after 1 s, doubling (2^n), capped at 60 s, at most 5 retries; on connection errors,
timeouts, 429 and 5xx. A ``Retry-After`` header replaces the computed wait when the server sends
one (clamped, so a hostile or broken header cannot park an incident run for an hour).
"""

from __future__ import annotations

import email.utils
import time
from typing import Optional

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
ALERT_AFTER_FAILURES = 3  # SOP: "Alert ops after 3 failures"


class RetryPolicy:
    def __init__(
        self,
        max_retries: int = 5,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
        factor: float = 2.0,
        retry_after_cap: float = 60.0,
    ) -> None:
        if max_retries < 0 or initial_delay < 0 or max_delay < 0 or factor < 1:
            raise ValueError("retry policy needs max_retries >= 0, delays >= 0 and factor >= 1")
        self.max_retries = max_retries
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.factor = factor
        self.retry_after_cap = retry_after_cap

    def delay(self, retry_number: int, retry_after: Optional[float] = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_cap))
        return min(self.initial_delay * (self.factor ** (retry_number - 1)), self.max_delay)

    def schedule(self) -> list:
        """The waits of a run that fails every time: [1, 2, 4, 8, 16] with the defaults."""
        return [self.delay(n) for n in range(1, self.max_retries + 1)]

    def as_dict(self) -> dict:
        return {
            "max_retries": self.max_retries,
            "initial_delay": self.initial_delay,
            "max_delay": self.max_delay,
            "factor": self.factor,
        }


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
