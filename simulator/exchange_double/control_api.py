"""The control API under ``/_control/``: how tests, drills and operators steer the double.

JSON in, JSON out, no authentication (the double listens on a drill network only), and never
touched by injected faults or rate limits. ``exchange_double.control.DoubleControl`` has one
method per endpoint; the README lists them side by side.

Where a body names a portfolio it may give ``portfolio_uuid``, or ``key`` (a registered key
name, meaning that key's portfolio); with neither, the default portfolio is used.
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any, Awaitable, Callable

from aiohttp import web

from exchange_double import __version__, statedump, views
from exchange_double.auth import SCOPES
from exchange_double.context import DOUBLE, Double
from exchange_double.errors import json_error, json_response
from exchange_double.faults import (
    BODY_FORMATS,
    CancelFailureRule,
    ErrorRateRule,
    FailNextRule,
    LatencyRule,
    RateLimitBurst,
)
from exchange_double.models import Portfolio
from exchange_double.requestlog import LogFilter
from exchange_double.util import parse_rfc3339, rfc3339
from exchange_double.validation import InvalidRequest, NotFound

PREFIX = "/_control"
Handler = Callable[[web.Request], Awaitable[web.Response]]
_ROUTES: list[tuple[str, str, Handler]] = []


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    """Register a control handler; map bad input to 400 and unknown names to 404."""

    def register(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.Response:
            try:
                return await handler(request)
            except NotFound as exc:
                return json_error(404, str(exc))
            except KeyError as exc:
                return json_error(404, f"not found: {exc.args[0]}")
            except (InvalidRequest, ValueError, TypeError) as exc:
                return json_error(400, str(exc))

        _ROUTES.append((method, PREFIX + path, guarded))
        return guarded

    return register


def add_routes(app: web.Application) -> None:
    for method, path, handler in _ROUTES:
        app.router.add_route(method, path, handler)


# ---------------------------------------------------------------------- helpers
def _double(request: web.Request) -> Double:
    return request.app[DOUBLE]


async def _body(request: web.Request) -> dict[str, Any]:
    text = await request.text()
    try:
        body = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        raise InvalidRequest("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    return body


def _portfolio(double: Double, source: Any) -> Portfolio:
    uuid, key_name = source.get("portfolio_uuid"), source.get("key")
    if uuid:
        return double.exchange.portfolio(uuid)
    if key_name:
        key = double.exchange.keys.get(key_name)
        if key is None:
            raise NotFound(f"key {key_name} is not registered")
        return double.exchange.portfolio(key.portfolio_uuid)
    return double.exchange.default_portfolio


def _number(body: dict[str, Any], name: str, default: float | None = None, *, minimum: float | None = None) -> float:
    value = body.get(name, default)
    if value is None or isinstance(value, bool):
        raise InvalidRequest(f"{name} is required (a number)")
    number = float(value)
    if minimum is not None and number < minimum:
        raise InvalidRequest(f"{name} must be at least {minimum}")
    return number


def _optional_number(body: dict[str, Any], name: str) -> float | None:
    return None if body.get(name) is None else _number(body, name)


def _status(body: dict[str, Any]) -> int:
    status = int(_number(body, "status"))
    if not 400 <= status <= 599:
        raise InvalidRequest("status must be an HTTP error status (400-599)")
    return status


def _body_format(body: dict[str, Any]) -> str:
    body_format = str(body.get("body_format", "json"))
    if body_format not in BODY_FORMATS:
        raise InvalidRequest(f"body_format must be one of {', '.join(BODY_FORMATS)}")
    return body_format


def _methods(body: dict[str, Any]) -> list[str]:
    methods = body.get("methods") or []
    if isinstance(methods, str):
        methods = [methods]
    return [str(m).upper() for m in methods]


def _scopes(permissions: Any) -> dict[str, bool]:
    if permissions is None:
        permissions = ["view", "trade"]
    if isinstance(permissions, str):
        permissions = [p for p in permissions.split(",") if p.strip()]
    names = {str(p).strip().lower() for p in permissions}
    unknown = names - set(SCOPES)
    if unknown:
        raise InvalidRequest(f"unknown permissions {sorted(unknown)}; use {', '.join(SCOPES)}")
    return {f"can_{scope}": scope in names for scope in SCOPES}


# ---------------------------------------------------------------------- health, reset, config
@route("GET", "/health")
async def health(request: web.Request) -> web.Response:
    double = _double(request)
    return json_response(
        {
            "status": "ok",
            "version": __version__,
            "url": double.url,
            "ca_path": double.ca_path,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - double.started_at, 3),
            "seed": double.config.seed,
        }
    )


@route("POST", "/reset")
async def reset(request: web.Request) -> web.Response:
    """Fresh exchange (seeded), no faults, clock offset 0, empty request log, sockets dropped."""
    double = _double(request)
    body = await _body(request)
    seed = body.get("seed")
    double.exchange.reset(int(seed) if seed is not None else None, keep_keys=bool(body.get("keep_keys", False)))
    double.faults.clear(seed=double.config.seed)
    double.limiter.reset()
    double.clock.offset = 0.0
    double.request_log.clear()
    double.alerts.clear()
    dropped = await double.hub.drop_all(mode="close", code=1012)
    return json_response(
        {
            "seed": double.config.seed,
            "default_portfolio_uuid": double.exchange.default_portfolio.uuid,
            "keys": len(double.exchange.keys.all()),
            "websocket_connections_dropped": dropped,
        }
    )


@route("GET", "/config")
async def get_config(request: web.Request) -> web.Response:
    return json_response(_double(request).config.as_dict())


@route("PATCH", "/config")
async def patch_config(request: web.Request) -> web.Response:
    double = _double(request)
    changed = double.config.update(await _body(request))
    if "request_log_max" in changed:
        double.request_log.resize(double.config.request_log_max)
    return json_response({"changed": changed, "config": double.config.as_dict()})


# ---------------------------------------------------------------------- keys and portfolios
@route("GET", "/keys")
async def list_keys(request: web.Request) -> web.Response:
    return json_response({"keys": [k.describe() for k in _double(request).exchange.keys.all()]})


@route("POST", "/keys")
async def register_key(request: web.Request) -> web.Response:
    """Register (or replace) a key by name with its public key, scopes and portfolio."""
    double = _double(request)
    body = await _body(request)
    name, pem = body.get("name"), body.get("public_key_pem")
    if not isinstance(name, str) or not isinstance(pem, str):
        raise InvalidRequest("name and public_key_pem are required strings")
    scopes = _scopes(body.get("permissions"))
    portfolio = double.exchange.ensure_portfolio(
        body.get("portfolio_uuid") or double.exchange.default_portfolio.uuid,
        name=body.get("portfolio_name"),
        portfolio_type=str(body.get("portfolio_type", "DEFAULT")),
    )
    key = double.exchange.keys.register(name, pem, portfolio_uuid=portfolio.uuid, **scopes)
    return json_response(key.describe(), status=201)


async def _key_state(request: web.Request, revoked: bool) -> web.Response:
    body = await _body(request)
    key = _double(request).exchange.keys.set_revoked(str(body.get("name")), revoked)
    return json_response(key.describe())


@route("POST", "/keys/revoke")
async def revoke_key(request: web.Request) -> web.Response:
    return await _key_state(request, True)


@route("POST", "/keys/unrevoke")
async def unrevoke_key(request: web.Request) -> web.Response:
    return await _key_state(request, False)


@route("POST", "/keys/delete")
async def delete_key(request: web.Request) -> web.Response:
    body = await _body(request)
    _double(request).exchange.keys.delete(str(body.get("name")))
    return json_response({"deleted": body.get("name")})


@route("GET", "/portfolios")
async def list_portfolios(request: web.Request) -> web.Response:
    double = _double(request)
    return json_response(
        {"portfolios": [statedump.portfolio_summary(double, p) for p in double.exchange.portfolios.values()]}
    )


@route("POST", "/portfolios")
async def upsert_portfolio(request: web.Request) -> web.Response:
    """Set a portfolio's balances / daily realized PnL; an unknown ``portfolio_uuid`` is created."""
    double = _double(request)
    body = await _body(request)
    exchange = double.exchange
    if body.get("portfolio_uuid"):
        portfolio = exchange.ensure_portfolio(
            body["portfolio_uuid"], name=body.get("name"), portfolio_type=str(body.get("portfolio_type", "DEFAULT"))
        )
    else:
        portfolio = _portfolio(double, body)
    exchange.set_balances(portfolio, body.get("cfm_usd_balance"), body.get("cbi_usd_balance"))
    if body.get("daily_realized_pnl") is not None:
        exchange.set_daily_realized_pnl(portfolio, body["daily_realized_pnl"])
    return json_response(statedump.portfolio_summary(double, portfolio))


# ---------------------------------------------------------------------- market and products
@route("GET", "/products")
async def list_products(request: web.Request) -> web.Response:
    exchange = _double(request).exchange
    return json_response({"products": [views.product(p, exchange) for p in exchange.products.values()]})


@route("PATCH", "/products/{product_id}")
async def patch_product(request: web.Request) -> web.Response:
    exchange = _double(request).exchange
    product = exchange.set_product(request.match_info["product_id"], await _body(request))
    return json_response(views.product(product, exchange))


@route("POST", "/market/step")
async def market_step(request: web.Request) -> web.Response:
    exchange = _double(request).exchange
    body = await _body(request)
    exchange.step_market(int(_number(body, "steps", 1, minimum=1)))
    return json_response({p.product_id: views.product(p, exchange)["price"] for p in exchange.products.values()})


# ---------------------------------------------------------------------- orders, positions, fills
@route("POST", "/orders/seed")
async def seed_orders(request: web.Request) -> web.Response:
    double = _double(request)
    body = await _body(request)
    portfolio = _portfolio(double, body)
    orders = double.exchange.seed_orders(
        portfolio,
        product_id=str(body.get("product_id", "BIP-20DEC30-CDE")),
        count=int(_number(body, "count")),
        side=str(body.get("side", "BOTH")),
        base_size=body.get("base_size", "1"),
        offset_pct=_number(body, "offset_pct", 5.0, minimum=0),
        step_pct=_number(body, "step_pct", 0.01, minimum=0),
        client_order_id_prefix=body.get("client_order_id_prefix"),
        status=str(body.get("status", "OPEN")),
    )
    return json_response(
        {
            "portfolio_uuid": portfolio.uuid,
            "count": len(orders),
            "order_ids": [o.order_id for o in orders],
            "client_order_ids": [o.client_order_id for o in orders],
        },
        status=201,
    )


@route("GET", "/orders")
async def list_orders(request: web.Request) -> web.Response:
    """All orders of a portfolio (no paging, no cap), newest first: for assertions."""
    double = _double(request)
    portfolio = _portfolio(double, request.query)
    statuses = [s for raw in request.query.getall("status", []) for s in raw.upper().split(",") if s]
    product_id = request.query.get("product_id")
    orders = double.exchange.orders_of(portfolio, statuses)
    if product_id:
        orders = [o for o in orders if o.product_id == product_id]
    return json_response({"orders": [views.order(o, double.exchange) for o in orders]})


@route("POST", "/positions")
async def set_position(request: web.Request) -> web.Response:
    double = _double(request)
    body = await _body(request)
    portfolio = _portfolio(double, body)
    position = double.exchange.set_position(
        portfolio,
        product_id=str(body.get("product_id")),
        side=str(body.get("side", "LONG")),
        contracts=body.get("contracts"),
        entry_price=body.get("entry_price"),
        daily_realized_pnl=body.get("daily_realized_pnl"),
    )
    return json_response({"portfolio_uuid": portfolio.uuid, "position": views.position(position, double.exchange)})


@route("POST", "/fills")
async def inject_fill(request: web.Request) -> web.Response:
    double = _double(request)
    body = await _body(request)
    portfolio = _portfolio(double, body)
    fill = double.exchange.inject_fill(
        portfolio,
        product_id=str(body.get("product_id")),
        side=str(body.get("side", "BUY")),
        size=body.get("size"),
        price=body.get("price"),
        trade_type=str(body.get("trade_type", "FILL")),
        order_id=body.get("order_id"),
        commission=body.get("commission", "0"),
        trade_time=body.get("trade_time"),
        liquidity_indicator=str(body.get("liquidity_indicator", "TAKER")),
        apply_to_position=bool(body.get("apply_to_position", False)),
    )
    return json_response(views.fill(fill, double.exchange), status=201)


# ---------------------------------------------------------------------- clock
def _clock_view(double: Double) -> dict[str, Any]:
    now = double.clock.now()
    return {"offset_s": double.clock.offset, "now": rfc3339(now), "epoch": now}


@route("GET", "/clock")
async def get_clock(request: web.Request) -> web.Response:
    return json_response(_clock_view(_double(request)))


@route("POST", "/clock")
async def set_clock(request: web.Request) -> web.Response:
    double = _double(request)
    double.clock.offset = _number(await _body(request), "offset_s")
    return json_response(_clock_view(double))


# ---------------------------------------------------------------------- faults
@route("GET", "/faults")
async def list_faults(request: web.Request) -> web.Response:
    return json_response(_double(request).faults.describe())


@route("DELETE", "/faults")
async def clear_faults(request: web.Request) -> web.Response:
    double = _double(request)
    double.faults.clear()
    return json_response(double.faults.describe())


@route("POST", "/faults/latency")
async def add_latency(request: web.Request) -> web.Response:
    body = await _body(request)
    rule = LatencyRule(
        ms=_number(body, "ms", minimum=0),
        path=str(body.get("path", "*")),
        methods=_methods(body),
        jitter_ms=_number(body, "jitter_ms", 0, minimum=0),
    )
    _double(request).faults.latency.append(rule)
    return json_response(_double(request).faults.describe(), status=201)


@route("POST", "/faults/error_rate")
async def add_error_rate(request: web.Request) -> web.Response:
    body = await _body(request)
    rate = _number(body, "rate", minimum=0)
    if rate > 1:
        raise InvalidRequest("rate is a probability between 0 and 1")
    rule = ErrorRateRule(
        status=_status(body),
        rate=rate,
        path=str(body.get("path", "*")),
        methods=_methods(body),
        retry_after=_optional_number(body, "retry_after"),
        body_format=_body_format(body),
        message=body.get("message"),
    )
    _double(request).faults.error_rates.append(rule)
    return json_response(_double(request).faults.describe(), status=201)


@route("POST", "/faults/fail_next")
async def add_fail_next(request: web.Request) -> web.Response:
    body = await _body(request)
    rule = FailNextRule(
        status=_status(body),
        remaining=int(_number(body, "count", 1, minimum=1)),
        path=str(body.get("path", "*")),
        methods=_methods(body),
        retry_after=_optional_number(body, "retry_after"),
        body_format=_body_format(body),
        message=body.get("message"),
    )
    _double(request).faults.fail_next.append(rule)
    return json_response(_double(request).faults.describe(), status=201)


@route("POST", "/faults/rate_limit_burst")
async def add_rate_limit_burst(request: web.Request) -> web.Response:
    body = await _body(request)
    burst = RateLimitBurst(
        until=time.monotonic() + _number(body, "seconds", minimum=0),
        path=str(body.get("path", "*")),
        retry_after=_optional_number(body, "retry_after"),
    )
    _double(request).faults.bursts.append(burst)
    return json_response(_double(request).faults.describe(), status=201)


@route("POST", "/faults/cancel_failures")
async def add_cancel_failures(request: web.Request) -> web.Response:
    body = await _body(request)
    order_ids = body.get("order_ids") or []
    rate = _number(body, "rate", 0, minimum=0)
    if not order_ids and not 0 < rate <= 1:
        raise InvalidRequest("give order_ids, or a rate between 0 and 1")
    times = body.get("times")
    rule = CancelFailureRule(
        reason=str(body.get("reason", "COMMANDER_REJECTED_CANCEL_ORDER")),
        order_ids=[str(i) for i in order_ids],
        rate=rate,
        times=int(times) if times is not None else None,
    )
    _double(request).faults.cancel_failures.append(rule)
    return json_response(_double(request).faults.describe(), status=201)


@route("POST", "/faults/ws/drop")
async def ws_drop(request: web.Request) -> web.Response:
    body = await _body(request)
    mode = str(body.get("mode", "abort"))
    if mode not in ("abort", "close"):
        raise InvalidRequest("mode must be abort (TCP reset) or close (close frame)")
    dropped = await _double(request).hub.drop_all(mode=mode, code=int(_number(body, "code", 1011)))
    return json_response({"dropped": dropped})


@route("POST", "/faults/ws/refuse")
async def ws_refuse(request: web.Request) -> web.Response:
    double = _double(request)
    double.faults.ws.refuse_until = time.monotonic() + _number(await _body(request), "seconds", minimum=0)
    return json_response(double.faults.describe(), status=201)


@route("POST", "/faults/ws/stall")
async def ws_stall(request: web.Request) -> web.Response:
    double = _double(request)
    body = await _body(request)
    until = time.monotonic() + _number(body, "seconds", minimum=0)
    product_ids = body.get("product_ids") or []
    if product_ids:
        for product_id in product_ids:
            double.exchange.product(str(product_id))
            double.faults.ws.stalled_products[str(product_id)] = until
    else:
        double.faults.ws.stall_until = until
    return json_response(double.faults.describe(), status=201)


@route("POST", "/faults/ws/heartbeat_gap")
async def ws_heartbeat_gap(request: web.Request) -> web.Response:
    double = _double(request)
    skip = int(_number(await _body(request), "skip", 1, minimum=1))
    double.hub.heartbeat_gap(skip)
    return json_response({"skip": skip, "next_counter_after": double.hub.heartbeat_counter})


@route("POST", "/faults/ws/sequence_gap")
async def ws_sequence_gap(request: web.Request) -> web.Response:
    skip = int(_number(await _body(request), "skip", 1, minimum=1))
    return json_response({"skip": skip, "connections": _double(request).hub.sequence_gap(skip)})


# ---------------------------------------------------------------------- observation
@route("GET", "/requests")
async def list_requests(request: web.Request) -> web.Response:
    query = request.query
    since = query.get("since")
    log_filter = LogFilter(
        since=(float(since) if _is_number(since) else parse_rfc3339(since)) if since else None,
        after_id=int(query["after_id"]) if query.get("after_id") else None,
        path=query.get("path") or None,
        key=query.get("key") or None,
        method=query.get("method") or None,
        client_ip=query.get("client_ip") or None,
        status=int(query["status"]) if query.get("status") else None,
        limit=int(query["limit"]) if query.get("limit") else None,
    )
    entries = _double(request).request_log.query(log_filter)
    return json_response({"requests": [e.as_dict() for e in entries]})


@route("DELETE", "/requests")
async def clear_requests(request: web.Request) -> web.Response:
    return json_response({"cleared": _double(request).request_log.clear()})


@route("GET", "/state")
async def state(request: web.Request) -> web.Response:
    double = _double(request)
    return json_response(statedump.state_summary(double, request.query.get("portfolio_uuid") or None))


# ---------------------------------------------------------------------- alert sink
ALERTS_KEPT = 1000


@route("POST", "/alerts")
async def receive_alert(request: web.Request) -> web.Response:
    """A webhook receiver for drills: incident_notify (kind webhook or slack) posts here."""
    double = _double(request)
    body = await _body(request)
    double.alerts.append({"received_at": rfc3339(time.time()), "payload": body})
    del double.alerts[:-ALERTS_KEPT]
    return json_response({"ok": True, "count": len(double.alerts)})


@route("GET", "/alerts")
async def list_alerts(request: web.Request) -> web.Response:
    return json_response({"alerts": _double(request).alerts})


@route("DELETE", "/alerts")
async def clear_alerts(request: web.Request) -> web.Response:
    double = _double(request)
    cleared = len(double.alerts)
    double.alerts.clear()
    return json_response({"cleared": cleared})


@route("GET", "/ws")
async def ws_connections(request: web.Request) -> web.Response:
    return json_response({"connections": _double(request).hub.describe()})


def _is_number(text: str | None) -> bool:
    try:
        float(text or "")
    except ValueError:
        return False
    return True
