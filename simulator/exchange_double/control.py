"""``DoubleControl``: a small synchronous client for the control API (one method per endpoint).

Standard library only (urllib + ssl), so drill scripts and the stand-in bot can use it without
extra dependencies. Every method returns the decoded JSON; an HTTP error raises ControlError
with the double's message.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


class ControlError(RuntimeError):
    """The control API refused a call (bad input, unknown name) or was unreachable."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


class DoubleControl:
    """Drive a running double: ``DoubleControl("https://localhost:8443", "ca.pem")``."""

    def __init__(self, url: str, ca_path: str | Path, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._ssl = ssl.create_default_context(cafile=str(ca_path))

    # ------------------------------------------------------------------ transport
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              query: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.url}/_control{path}"
        if query:
            url += "?" + urllib.parse.urlencode(_clean(query), doseq=True)
        data = json.dumps(_clean(body)).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._ssl) as response:
                decoded = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            with contextlib.suppress(json.JSONDecodeError, AttributeError):
                detail = json.loads(detail).get("message", detail)
            raise ControlError(f"{method} {path}: HTTP {exc.code}: {detail}", exc.code) from None
        except urllib.error.URLError as exc:
            raise ControlError(f"{method} {path}: {exc.reason}") from None
        if not isinstance(decoded, dict):
            raise ControlError(f"{method} {path}: expected a JSON object, got {type(decoded).__name__}")
        return decoded

    def _items(self, path: str, field: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """GET ``path`` and return its list ``field`` (listing endpoints wrap lists in an object)."""
        items = self._call("GET", path, query=query)[field]
        if not isinstance(items, list):
            raise ControlError(f"GET {path}: {field} is not a list")
        return items

    # ------------------------------------------------------------------ health, reset, config
    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def reset(self, seed: int | None = None, keep_keys: bool = False) -> dict[str, Any]:
        return self._call("POST", "/reset", {"seed": seed, "keep_keys": keep_keys})

    def get_config(self) -> dict[str, Any]:
        return self._call("GET", "/config")

    def set_config(self, **changes: Any) -> dict[str, Any]:
        return self._call("PATCH", "/config", changes)

    # ------------------------------------------------------------------ keys and portfolios
    def register_key(
        self,
        name: str,
        public_key_pem: str,
        permissions: list[str] | str | None = None,
        portfolio_uuid: str | None = None,
        portfolio_type: str | None = None,
        portfolio_name: str | None = None,
    ) -> dict[str, Any]:
        return self._call("POST", "/keys", {
            "name": name,
            "public_key_pem": public_key_pem,
            "permissions": permissions,
            "portfolio_uuid": portfolio_uuid,
            "portfolio_type": portfolio_type,
            "portfolio_name": portfolio_name,
        })

    def list_keys(self) -> list[dict[str, Any]]:
        return self._items("/keys", "keys")

    def revoke_key(self, name: str) -> dict[str, Any]:
        return self._call("POST", "/keys/revoke", {"name": name})

    def unrevoke_key(self, name: str) -> dict[str, Any]:
        return self._call("POST", "/keys/unrevoke", {"name": name})

    def delete_key(self, name: str) -> dict[str, Any]:
        return self._call("POST", "/keys/delete", {"name": name})

    def list_portfolios(self) -> list[dict[str, Any]]:
        return self._items("/portfolios", "portfolios")

    def set_portfolio(
        self,
        portfolio_uuid: str | None = None,
        *,
        key: str | None = None,
        name: str | None = None,
        portfolio_type: str | None = None,
        cfm_usd_balance: str | None = None,
        cbi_usd_balance: str | None = None,
        daily_realized_pnl: str | None = None,
    ) -> dict[str, Any]:
        """Create a portfolio or set its balances / daily realized PnL."""
        return self._call("POST", "/portfolios", {
            "portfolio_uuid": portfolio_uuid, "key": key, "name": name, "portfolio_type": portfolio_type,
            "cfm_usd_balance": cfm_usd_balance, "cbi_usd_balance": cbi_usd_balance,
            "daily_realized_pnl": daily_realized_pnl,
        })

    def set_daily_realized_pnl(self, value: str, portfolio_uuid: str | None = None,
                               key: str | None = None) -> dict[str, Any]:
        return self.set_portfolio(portfolio_uuid, key=key, daily_realized_pnl=value)

    # ------------------------------------------------------------------ market and products
    def list_products(self) -> list[dict[str, Any]]:
        return self._items("/products", "products")

    def set_product(self, product_id: str, **fields: Any) -> dict[str, Any]:
        """price, funding_rate, funding_time, funding_interval, open_interest, session_open,
        session_state, closed_reason, cancel_only, limit_only, post_only, trading_disabled,
        reject_cancels_when_closed, after_hours_order_entry_disabled, margin rates."""
        return self._call("PATCH", f"/products/{urllib.parse.quote(product_id)}", fields)

    def market_step(self, steps: int = 1) -> dict[str, Any]:
        return self._call("POST", "/market/step", {"steps": steps})

    # ------------------------------------------------------------------ orders, positions, fills
    def seed_orders(
        self,
        count: int,
        product_id: str = "BIP-20DEC30-CDE",
        *,
        side: str = "BOTH",
        base_size: str = "1",
        offset_pct: float = 5.0,
        step_pct: float = 0.01,
        client_order_id_prefix: str | None = None,
        status: str = "OPEN",
        portfolio_uuid: str | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        return self._call("POST", "/orders/seed", {
            "count": count, "product_id": product_id, "side": side, "base_size": base_size,
            "offset_pct": offset_pct, "step_pct": step_pct, "client_order_id_prefix": client_order_id_prefix,
            "status": status, "portfolio_uuid": portfolio_uuid, "key": key,
        })

    def list_orders(
        self,
        status: list[str] | str | None = None,
        product_id: str | None = None,
        portfolio_uuid: str | None = None,
        key: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every order of a portfolio (no paging, no cap), newest first."""
        query = {"status": status, "product_id": product_id, "portfolio_uuid": portfolio_uuid, "key": key}
        return self._items("/orders", "orders", query)

    def set_position(
        self,
        product_id: str,
        side: str,
        contracts: str | int,
        entry_price: str | None = None,
        *,
        daily_realized_pnl: str | None = None,
        portfolio_uuid: str | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        return self._call("POST", "/positions", {
            "product_id": product_id, "side": side, "contracts": str(contracts), "entry_price": entry_price,
            "daily_realized_pnl": daily_realized_pnl, "portfolio_uuid": portfolio_uuid, "key": key,
        })

    def inject_fill(
        self,
        product_id: str,
        side: str,
        size: str,
        price: str,
        *,
        trade_type: str = "FILL",
        order_id: str | None = None,
        commission: str = "0",
        trade_time: str | None = None,
        liquidity_indicator: str = "TAKER",
        apply_to_position: bool = False,
        portfolio_uuid: str | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        return self._call("POST", "/fills", {
            "product_id": product_id, "side": side, "size": size, "price": price, "trade_type": trade_type,
            "order_id": order_id, "commission": commission, "trade_time": trade_time,
            "liquidity_indicator": liquidity_indicator, "apply_to_position": apply_to_position,
            "portfolio_uuid": portfolio_uuid, "key": key,
        })

    # ------------------------------------------------------------------ clock
    def get_clock(self) -> dict[str, Any]:
        return self._call("GET", "/clock")

    def set_clock_offset(self, offset_s: float) -> dict[str, Any]:
        return self._call("POST", "/clock", {"offset_s": offset_s})

    # ------------------------------------------------------------------ faults
    def list_faults(self) -> dict[str, Any]:
        return self._call("GET", "/faults")

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")

    def add_latency(self, ms: float, path: str = "*", methods: list[str] | None = None,
                    jitter_ms: float = 0) -> dict[str, Any]:
        return self._call("POST", "/faults/latency", {"ms": ms, "path": path, "methods": methods,
                                                       "jitter_ms": jitter_ms})

    def add_error_rate(self, status: int, rate: float, path: str = "*", methods: list[str] | None = None,
                       retry_after: float | None = None, body_format: str = "json",
                       message: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/faults/error_rate", {
            "status": status, "rate": rate, "path": path, "methods": methods, "retry_after": retry_after,
            "body_format": body_format, "message": message,
        })

    def fail_next(self, status: int, count: int = 1, path: str = "*", methods: list[str] | None = None,
                  retry_after: float | None = None, body_format: str = "json",
                  message: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/faults/fail_next", {
            "status": status, "count": count, "path": path, "methods": methods, "retry_after": retry_after,
            "body_format": body_format, "message": message,
        })

    def rate_limit_burst(self, seconds: float, path: str = "*", retry_after: float | None = None) -> dict[str, Any]:
        return self._call("POST", "/faults/rate_limit_burst", {"seconds": seconds, "path": path,
                                                                "retry_after": retry_after})

    def cancel_failures(self, order_ids: list[str] | None = None, rate: float | None = None,
                        reason: str = "COMMANDER_REJECTED_CANCEL_ORDER", times: int | None = None) -> dict[str, Any]:
        return self._call("POST", "/faults/cancel_failures", {"order_ids": order_ids, "rate": rate,
                                                               "reason": reason, "times": times})

    def ws_drop(self, mode: str = "abort", code: int = 1011) -> dict[str, Any]:
        return self._call("POST", "/faults/ws/drop", {"mode": mode, "code": code})

    def ws_refuse(self, seconds: float) -> dict[str, Any]:
        return self._call("POST", "/faults/ws/refuse", {"seconds": seconds})

    def ws_stall(self, seconds: float, product_ids: list[str] | None = None) -> dict[str, Any]:
        return self._call("POST", "/faults/ws/stall", {"seconds": seconds, "product_ids": product_ids})

    def ws_heartbeat_gap(self, skip: int = 1) -> dict[str, Any]:
        return self._call("POST", "/faults/ws/heartbeat_gap", {"skip": skip})

    def ws_sequence_gap(self, skip: int = 1) -> dict[str, Any]:
        return self._call("POST", "/faults/ws/sequence_gap", {"skip": skip})

    # ------------------------------------------------------------------ observation
    def requests(
        self,
        *,
        since: float | str | None = None,
        after_id: int | None = None,
        path: str | None = None,
        key: str | None = None,
        method: str | None = None,
        client_ip: str | None = None,
        status: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Request-log entries, oldest first; ``path`` matches as a substring."""
        query = {"since": since, "after_id": after_id, "path": path, "key": key, "method": method,
                 "client_ip": client_ip, "status": status, "limit": limit}
        return self._items("/requests", "requests", query)

    def clear_requests(self) -> int:
        return int(self._call("DELETE", "/requests")["cleared"])

    def state(self, portfolio_uuid: str | None = None) -> dict[str, Any]:
        return self._call("GET", "/state", query={"portfolio_uuid": portfolio_uuid})

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts received at /_control/alerts (the drill's stand-in for Slack / PagerDuty)."""
        return self._items("/alerts", "alerts")

    def clear_alerts(self) -> int:
        return int(self._call("DELETE", "/alerts")["cleared"])

    def ws_connections(self) -> list[dict[str, Any]]:
        return self._items("/ws", "connections")
