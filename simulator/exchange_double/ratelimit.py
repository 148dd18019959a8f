"""Sliding-window rate limits: per API key for private endpoints, per client IP for public.

A true sliding window (timestamps of the accepted requests in the last second), not a fixed
bucket, so a client that paces itself at the advertised rate never gets a 429 from a window
boundary, and one that bursts always does. Refused requests do not count.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

WINDOW_S = 1.0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until the oldest request in the window leaves it (a slot frees up).
    reset_after: float


class SlidingWindowLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = {}
        self._last_prune = time.monotonic()

    def check(self, identity: str, limit: int) -> Decision:
        now = time.monotonic()
        window = self._windows.get(identity)
        if window is None:
            window = self._windows[identity] = deque()
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        if len(window) >= limit:
            return Decision(False, limit, 0, max(0.0, window[0] + WINDOW_S - now))
        window.append(now)
        self._prune(now)
        return Decision(True, limit, limit - len(window), max(0.0, window[0] + WINDOW_S - now))

    def reset(self) -> None:
        self._windows.clear()

    def _prune(self, now: float) -> None:
        # Forget idle identities now and then, so a long drill does not accumulate them.
        if now - self._last_prune < 10:
            return
        self._last_prune = now
        idle = [k for k, w in self._windows.items() if not w or w[-1] <= now - WINDOW_S]
        for key in idle:
            del self._windows[key]
