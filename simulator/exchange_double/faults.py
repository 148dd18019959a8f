"""Fault injectors: what goes wrong, where, and how often.

REST faults apply to ``/api/...`` only, never to ``/_control/`` (tests and drills must be able
to steer the double while it misbehaves). Random faults draw from a generator seeded by the
double's seed, and "fail the next N" faults are fully deterministic, for tests that count
retries. Durations use the monotonic clock, so moving the exchange clock never ends a fault.
"""

from __future__ import annotations

import fnmatch
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

BODY_FORMATS = ("json", "text")


@dataclass(slots=True)
class LatencyRule:
    ms: float
    path: str = "*"
    methods: list[str] = field(default_factory=list)
    jitter_ms: float = 0.0


@dataclass(slots=True)
class ErrorRateRule:
    status: int
    rate: float
    path: str = "*"
    methods: list[str] = field(default_factory=list)
    retry_after: float | None = None
    body_format: str = "json"
    message: str | None = None


@dataclass(slots=True)
class FailNextRule:
    status: int
    remaining: int
    path: str = "*"
    methods: list[str] = field(default_factory=list)
    retry_after: float | None = None
    body_format: str = "json"
    message: str | None = None


@dataclass(slots=True)
class RateLimitBurst:
    until: float
    path: str = "*"
    retry_after: float | None = None


@dataclass(slots=True)
class CancelFailureRule:
    reason: str
    order_ids: list[str] = field(default_factory=list)
    rate: float = 0.0
    # How many failures the rule produces (per order id for id rules); None = unlimited.
    times: int | None = None
    used: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class InjectedError:
    status: int
    body_format: str
    message: str | None
    retry_after: float | None
    fault: str


@dataclass(slots=True)
class WsFaults:
    """WebSocket fault state that the hub consults before accepting or sending."""

    refuse_until: float = 0.0
    stall_until: float = 0.0
    stalled_products: dict[str, float] = field(default_factory=dict)

    def refusing(self) -> bool:
        return time.monotonic() < self.refuse_until

    def stalled(self, product_id: str | None = None) -> bool:
        now = time.monotonic()
        if now < self.stall_until:
            return True
        return product_id is not None and now < self.stalled_products.get(product_id, 0.0)


class FaultInjector:
    """All active faults. Each ``add_*`` returns the rule so the control API can echo it."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(f"faults-{seed}")
        self.latency: list[LatencyRule] = []
        self.error_rates: list[ErrorRateRule] = []
        self.fail_next: list[FailNextRule] = []
        self.bursts: list[RateLimitBurst] = []
        self.cancel_failures: list[CancelFailureRule] = []
        self.ws = WsFaults()

    def clear(self, seed: int | None = None) -> None:
        if seed is not None:
            self._random = random.Random(f"faults-{seed}")
        self.latency.clear()
        self.error_rates.clear()
        self.fail_next.clear()
        self.bursts.clear()
        self.cancel_failures.clear()
        self.ws = WsFaults()

    # ---------------------------------------------------------------- REST
    def latency_seconds(self, method: str, path: str) -> float:
        """Added delay for a request: the largest matching rule wins."""
        delay = 0.0
        for rule in self.latency:
            if _matches(rule.path, rule.methods, method, path):
                jitter = self._random.uniform(0, rule.jitter_ms) if rule.jitter_ms else 0.0
                delay = max(delay, (rule.ms + jitter) / 1000)
        return delay

    def error_for(self, method: str, path: str) -> InjectedError | None:
        """The injected failure for this request, if any: fail-next, then bursts, then rates."""
        for rule in self.fail_next:
            if rule.remaining > 0 and _matches(rule.path, rule.methods, method, path):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.fail_next.remove(rule)
                return InjectedError(rule.status, rule.body_format, rule.message, rule.retry_after, "fail_next")
        now = time.monotonic()
        self.bursts[:] = [b for b in self.bursts if b.until > now]
        for burst in self.bursts:
            if _matches(burst.path, [], method, path):
                return InjectedError(429, "json", None, burst.retry_after, "rate_limit_burst")
        for rate_rule in self.error_rates:
            if _matches(rate_rule.path, rate_rule.methods, method, path) and self._random.random() < rate_rule.rate:
                return InjectedError(rate_rule.status, rate_rule.body_format, rate_rule.message,
                                     rate_rule.retry_after, "error_rate")
        return None

    def cancel_failure(self, order_id: str) -> str | None:
        """A failure reason for cancelling ``order_id``, or None to let the cancel proceed."""
        for rule in self.cancel_failures:
            if rule.order_ids:
                if order_id not in rule.order_ids:
                    continue
                count_key = order_id
            else:
                if self._random.random() >= rule.rate:
                    continue
                count_key = "*"
            used = rule.used.get(count_key, 0)
            if rule.times is not None and used >= rule.times:
                continue
            rule.used[count_key] = used + 1
            return rule.reason
        return None

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "latency": [asdict(r) for r in self.latency],
            "error_rates": [asdict(r) for r in self.error_rates],
            "fail_next": [asdict(r) for r in self.fail_next],
            "rate_limit_bursts": [
                {"seconds_left": round(b.until - now, 3), "path": b.path, "retry_after": b.retry_after}
                for b in self.bursts
                if b.until > now
            ],
            "cancel_failures": [asdict(r) for r in self.cancel_failures],
            "ws": {
                "refusing_for_s": round(max(0.0, self.ws.refuse_until - now), 3),
                "stalled_for_s": round(max(0.0, self.ws.stall_until - now), 3),
                "stalled_products": {
                    pid: round(until - now, 3) for pid, until in self.ws.stalled_products.items() if until > now
                },
            },
        }


def _matches(pattern: str, methods: list[str], method: str, path: str) -> bool:
    if methods and method.upper() not in {m.upper() for m in methods}:
        return False
    return fnmatch.fnmatchcase(path, pattern)
