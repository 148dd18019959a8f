"""Tunable behaviour of the double, in one place.

Every field is a ``serve`` flag (``--jwt-leeway 5``), a ``running_double(jwt_leeway=5)``
option and a key of ``PATCH /_control/config``, generated from this dataclass so the three never
drift apart. The defaults are the double's documented choices for what Coinbase leaves
uncertain (see README, "Choices for the uncertain").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def _opt(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(slots=True)
class DoubleConfig:
    """Knobs that tests, drills and operators turn; all changeable at run time."""

    seed: int = _opt(1, "seed for the random walk, generated ids and random faults (applies at reset)")
    tick_interval: float = _opt(1.0, "seconds between market price steps")
    market_frozen: bool = _opt(False, "stop the random walk (prices change only by control)")
    volatility: float = _opt(0.0005, "standard deviation of one price step, as a fraction")
    spread_ticks: int = _opt(1, "best bid/ask are this many quote increments from the price")
    jwt_leeway: float = _opt(5.0, "seconds of clock tolerance around a JWT's nbf and exp")
    jwt_max_lifetime: int = _opt(120, "largest accepted exp - nbf, in seconds")
    rate_limit_enabled: bool = _opt(True, "enforce the REST rate limits")
    private_rps: int = _opt(30, "authenticated requests per second per key (sliding 1 s window)")
    public_rps: int = _opt(10, "public requests per second per client IP")
    ws_subscribe_timeout: float = _opt(5.0, "seconds a WebSocket may stay open without subscribing")
    heartbeat_interval: float = _opt(1.0, "seconds between heartbeats messages")
    orders_default_limit: int = _opt(100, "page size of list orders when no limit is given")
    orders_max_limit: int = _opt(1000, "largest page size of list orders")
    open_orders_cap: int = _opt(1000, "most OPEN orders list orders returns across all pages")
    fills_default_limit: int = _opt(100, "page size of list fills when no limit is given")
    fills_max_limit: int = _opt(1000, "largest page size of list fills")
    accounts_default_limit: int = _opt(49, "page size of list accounts when no limit is given")
    accounts_max_limit: int = _opt(250, "largest page size of list accounts")
    batch_cancel_max: int = _opt(100, "most order ids one batch_cancel accepts")
    cancel_queued_delay: float = _opt(0.0, "seconds an order stays CANCEL_QUEUED before CANCELLED")
    taker_fee_rate: str = _opt("0.0005", "commission on taker fills, fraction of notional")
    maker_fee_rate: str = _opt("0.0002", "commission on maker fills, fraction of notional")
    starting_cfm_usd: str = _opt("250000", "futures (CFM) USD balance of a new portfolio")
    starting_cbi_usd: str = _opt("25000", "spot (CBI) USD balance of a new portfolio")
    request_log_max: int = _opt(100000, "request-log entries kept in memory (the JSONL file keeps all)")

    def update(self, changes: dict[str, Any]) -> list[str]:
        """Apply ``changes`` (already-typed or string values); return the names changed.

        Unknown names and values of the wrong type raise ValueError, so a typo in a drill's
        control call fails loudly instead of silently changing nothing.
        """
        known = {f.name: f for f in dataclasses.fields(self)}
        typed: dict[str, Any] = {}
        for name, raw in changes.items():
            if name not in known:
                raise ValueError(f"unknown config option: {name}")
            typed[name] = coerce(known[name].type, raw, name)
        for name, value in typed.items():
            setattr(self, name, value)
        return sorted(typed)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def coerce(type_name: Any, raw: Any, name: str) -> Any:
    """Convert ``raw`` to the field's type (annotations are strings under PEP 563)."""
    type_name = type_name if isinstance(type_name, str) else type_name.__name__
    try:
        if type_name == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0", "yes", "no"):
                return raw.lower() in ("true", "1", "yes")
            raise ValueError(raw)
        if type_name == "int":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if type_name == "float":
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad value for {name} ({type_name}): {raw!r}") from exc


def config_fields() -> list[dataclasses.Field[Any]]:
    """The fields, in declaration order (the CLI builds its flags from them)."""
    return list(dataclasses.fields(DoubleConfig))
