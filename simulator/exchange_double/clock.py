"""The exchange's clock: real time plus an offset that the control API sets.

Moving the exchange's clock is how a drill simulates a client host whose clock is wrong: the
client signs ``nbf = its now``, the double judges it against *its* now, and the JWT fails
exactly as it would against Coinbase. ``GET /time`` reports this clock so the client can
measure the skew.
"""

from __future__ import annotations

import time


class Clock:
    """Wall-clock seconds shifted by ``offset`` seconds."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset
