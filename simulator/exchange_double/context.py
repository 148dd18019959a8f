"""The running double's parts, wired together once and shared by every layer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from exchange_double.auth import JwtVerifier
from exchange_double.clock import Clock
from exchange_double.config import DoubleConfig
from exchange_double.engine import Exchange
from exchange_double.faults import FaultInjector
from exchange_double.ratelimit import SlidingWindowLimiter
from exchange_double.requestlog import RequestLog
from exchange_double.ws import Hub


@dataclass(eq=False)
class Double:
    """Everything the handlers need; one per server process."""

    config: DoubleConfig
    clock: Clock
    exchange: Exchange
    faults: FaultInjector
    limiter: SlidingWindowLimiter
    request_log: RequestLog
    verifier: JwtVerifier
    state_dir: Path | None
    started_at: float = field(default_factory=time.time)
    hub: Hub = field(init=False)
    # Alerts that drills send to /_control/alerts (a stand-in for Slack / PagerDuty / a webhook).
    alerts: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    ca_path: str = ""

    def __post_init__(self) -> None:
        self.hub = Hub(self)
        self.exchange.listeners.append(self.hub)


DOUBLE = web.AppKey("double", Double)


def create_double(config: DoubleConfig, state_dir: Path | None) -> Double:
    """Build a double; the request log goes to ``state_dir/requests.jsonl`` when given."""
    clock = Clock()
    exchange = Exchange(config, clock)
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
    return Double(
        config=config,
        clock=clock,
        exchange=exchange,
        faults=FaultInjector(config.seed),
        limiter=SlidingWindowLimiter(),
        request_log=RequestLog(config.request_log_max, state_dir / "requests.jsonl" if state_dir else None),
        verifier=JwtVerifier(exchange.keys, clock, config),
        state_dir=state_dir,
    )
