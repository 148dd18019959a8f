"""The REST API under ``/api/v3/brokerage``: one handler per endpoint the collection uses.

Each handler is declared with its auth requirement (public, any valid key, or a scope); the
gateway middleware in ``server.py`` enforces it before the handler runs. Handlers parse the
query exactly as the SDK sends it (repeated keys for lists, Python ``True``/``False`` for
booleans, a ``{}`` body even on GET) and render with ``views``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from aiohttp import web

from exchange_double import listing, views
from exchange_double.auth import ApiKey
from exchange_double.context import DOUBLE, Double
from exchange_double.errors import json_error, json_response
from exchange_double.indexes import decode_cursor, encode_cursor
from exchange_double.listing import FillQuery, OrderQuery
from exchange_double.models import Portfolio
from exchange_double.util import parse_bool, parse_rfc3339, rfc3339
from exchange_double.validation import InvalidRequest, NotFound, Rejection

PREFIX = "/api/v3/brokerage"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How an endpoint is guarded: public (per-IP limit) or a key with ``scope`` (None = any)."""

    method: str
    path: str
    handler: Handler
    public: bool = False
    scope: str | None = None


# In registration order, which matters: static paths (batch, fills) before /orders/historical/{id}.
_ENDPOINTS: dict[Handler, Endpoint] = {}


def endpoint(method: str, path: str, *, public: bool = False, scope: str | None = None) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _ENDPOINTS[handler] = Endpoint(method, PREFIX + path, handler, public, scope)
        return handler

    return register


def spec_for(handler: Any) -> Endpoint | None:
    """How ``handler`` is guarded; None for routes that are not REST endpoints."""
    return _ENDPOINTS.get(handler)


def add_routes(app: web.Application) -> None:
    for spec in _ENDPOINTS.values():
        app.router.add_route(spec.method, spec.path, spec.handler)


# ---------------------------------------------------------------------- request helpers
def _double(request: web.Request) -> Double:
    return request.app[DOUBLE]


def _key(request: web.Request) -> ApiKey:
    key: ApiKey = request["api_key"]
    return key


def _portfolio(request: web.Request) -> Portfolio:
    return _double(request).exchange.portfolio(_key(request).portfolio_uuid)


def _list_param(request: web.Request, name: str) -> list[str]:
    """Repeated keys (``a=1&a=2``, what the SDK sends) and comma lists (``a=1,2``) alike."""
    values: list[str] = []
    for raw in request.query.getall(name, []):
        values.extend(part.strip() for part in raw.split(",") if part.strip())
    return values


def _text_param(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    return value.strip() if value and value.strip() else None


def _int_param(request: web.Request, name: str) -> int | None:
    value = _text_param(request, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer, got {value!r}") from None


def _time_param(request: web.Request, name: str) -> float | None:
    value = _text_param(request, name)
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be an RFC 3339 time, got {value!r}") from None


def _bool_param(request: web.Request, name: str) -> bool:
    try:
        return parse_bool(request.query.get(name))
    except ValueError:
        raise InvalidRequest(f"{name} must be true or false") from None


async def _json_body(request: web.Request) -> dict[str, Any]:
    text = await request.text()
    try:
        body = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        raise InvalidRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


# ---------------------------------------------------------------------- public
@endpoint("GET", "/time", public=True)
async def get_time(request: web.Request) -> web.Response:
    now = _double(request).clock.now()
    iso = rfc3339(now)[:-4] + "Z"  # millisecond precision, like the live API
    return json_response({"iso": iso, "epochSeconds": str(int(now)), "epochMillis": str(int(now * 1000))})


@endpoint("GET", "/market/products", public=True)
async def list_public_products(request: web.Request) -> web.Response:
    return _products_response(request)


@endpoint("GET", "/market/products/{product_id}", public=True)
async def get_public_product(request: web.Request) -> web.Response:
    double = _double(request)
    product = double.exchange.product(request.match_info["product_id"])
    return json_response(views.product(product, double.exchange))


# ---------------------------------------------------------------------- keys and accounts
@endpoint("GET", "/key_permissions")
async def key_permissions(request: web.Request) -> web.Response:
    key = _key(request)
    portfolio = _portfolio(request)
    return json_response(
        {
            "can_view": key.can_view,
            "can_trade": key.can_trade,
            "can_transfer": key.can_transfer,
            "portfolio_uuid": portfolio.uuid,
            "portfolio_type": portfolio.portfolio_type,
        }
    )


@endpoint("GET", "/accounts", scope="view")
async def list_accounts(request: web.Request) -> web.Response:
    double = _double(request)
    portfolio = _portfolio(request)
    config = double.config
    limit = _int_param(request, "limit")
    limit = config.accounts_default_limit if not limit or limit <= 0 else min(limit, config.accounts_max_limit)
    accounts = list(portfolio.accounts.values())
    start = 0
    cursor = _text_param(request, "cursor")
    if cursor:
        try:
            after = decode_cursor(cursor)["after"]
        except (ValueError, KeyError):
            raise InvalidRequest("invalid cursor") from None
        positions = [i for i, a in enumerate(accounts) if a.uuid == after]
        if not positions:
            raise InvalidRequest("invalid cursor")
        start = positions[0] + 1
    page = accounts[start:start + limit]
    has_next = start + limit < len(accounts)
    return json_response(
        {
            "accounts": [views.account(a, portfolio) for a in page],
            "has_next": has_next,
            "cursor": encode_cursor({"after": page[-1].uuid}) if has_next and page else "",
            "size": len(page),
        }
    )


@endpoint("GET", "/accounts/{account_uuid}", scope="view")
async def get_account(request: web.Request) -> web.Response:
    portfolio = _portfolio(request)
    wanted = request.match_info["account_uuid"]
    for account in portfolio.accounts.values():
        if account.uuid == wanted:
            return json_response({"account": views.account(account, portfolio)})
    raise NotFound(f"account {wanted} not found")


# ---------------------------------------------------------------------- products
def _products_response(request: web.Request) -> web.Response:
    double = _double(request)
    _bool_param(request, "get_all_products")  # accepted; the catalogue is always complete
    _bool_param(request, "get_tradability_status")
    products = double.exchange.list_products(
        _text_param(request, "product_type"),
        _list_param(request, "product_ids"),
        _text_param(request, "contract_expiry_type"),
    )
    offset = max(0, _int_param(request, "offset") or 0)
    limit = _int_param(request, "limit")
    page = products[offset:] if not limit or limit <= 0 else products[offset:offset + limit]
    return json_response(
        {"products": [views.product(p, double.exchange) for p in page], "num_products": len(products)}
    )


@endpoint("GET", "/products", scope="view")
async def list_products(request: web.Request) -> web.Response:
    return _products_response(request)


@endpoint("GET", "/products/{product_id}", scope="view")
async def get_product(request: web.Request) -> web.Response:
    double = _double(request)
    product = double.exchange.product(request.match_info["product_id"])
    return json_response(views.product(product, double.exchange))


# ---------------------------------------------------------------------- orders
@endpoint("GET", "/orders/historical/batch", scope="view")
async def list_orders(request: web.Request) -> web.Response:
    double = _double(request)
    query = OrderQuery(
        order_ids=_list_param(request, "order_ids"),
        product_ids=_list_param(request, "product_ids"),
        statuses=_list_param(request, "order_status"),
        limit=_int_param(request, "limit"),
        cursor=_text_param(request, "cursor") or "",
        start_date=_time_param(request, "start_date"),
        end_date=_time_param(request, "end_date"),
        product_type=_text_param(request, "product_type"),
        order_side=_text_param(request, "order_side"),
        order_types=_list_param(request, "order_types"),
        contract_expiry_type=_text_param(request, "contract_expiry_type"),
        order_placement_source=_text_param(request, "order_placement_source"),
        time_in_forces=_list_param(request, "time_in_forces"),
        sort_by=_text_param(request, "sort_by"),
    )
    page = listing.list_orders(double.exchange, _portfolio(request), query)
    return json_response(
        {
            "orders": [views.order(o, double.exchange) for o in page.items],
            "sequence": str(double.exchange.sequence),
            "has_next": page.has_next,
            "cursor": page.cursor,
        }
    )


@endpoint("GET", "/orders/historical/fills", scope="view")
async def list_fills(request: web.Request) -> web.Response:
    double = _double(request)
    query = FillQuery(
        order_ids=_list_param(request, "order_ids"),
        trade_ids=_list_param(request, "trade_ids"),
        product_ids=_list_param(request, "product_ids"),
        start=_time_param(request, "start_sequence_timestamp"),
        end=_time_param(request, "end_sequence_timestamp"),
        limit=_int_param(request, "limit"),
        cursor=_text_param(request, "cursor") or "",
        sort_by=_text_param(request, "sort_by"),
    )
    page = listing.list_fills(double.exchange, _portfolio(request), query)
    return json_response({"fills": [views.fill(f, double.exchange) for f in page.items], "cursor": page.cursor})


@endpoint("GET", "/orders/historical/{order_id}", scope="view")
async def get_order(request: web.Request) -> web.Response:
    double = _double(request)
    order = double.exchange.get_order(_portfolio(request), request.match_info["order_id"])
    return json_response({"order": views.order(order, double.exchange)})


@endpoint("POST", "/orders", scope="trade")
async def create_order(request: web.Request) -> web.Response:
    double = _double(request)
    body = await _json_body(request)
    request["client_order_id"] = body.get("client_order_id")
    try:
        order = double.exchange.place_order(_portfolio(request), body)
    except Rejection as rejection:
        request["rejection"] = rejection.error
        return json_response(views.create_order_failure(rejection, body.get("order_configuration")))
    return json_response(views.create_order_success(order))


@endpoint("POST", "/orders/batch_cancel", scope="trade")
async def batch_cancel(request: web.Request) -> web.Response:
    double = _double(request)
    body = await _json_body(request)
    order_ids = body.get("order_ids")
    if not isinstance(order_ids, list) or not order_ids or not all(isinstance(i, str) for i in order_ids):
        raise InvalidRequest("order_ids must be a non-empty list of order id strings")
    if len(order_ids) > double.config.batch_cancel_max:
        raise InvalidRequest(f"too many order_ids: {len(order_ids)} (at most {double.config.batch_cancel_max})")
    results = double.exchange.cancel_orders(_portfolio(request), order_ids, double.faults.cancel_failure)
    return json_response({"results": results})


@endpoint("POST", "/orders/close_position", scope="trade")
async def close_position(request: web.Request) -> web.Response:
    double = _double(request)
    body = await _json_body(request)
    request["client_order_id"] = body.get("client_order_id")
    try:
        order = double.exchange.close_position(_portfolio(request), body)
    except Rejection as rejection:
        request["rejection"] = rejection.error
        return json_response(views.create_order_failure(rejection, None))
    return json_response(views.create_order_success(order))


# ---------------------------------------------------------------------- CFM futures
@endpoint("GET", "/cfm/balance_summary", scope="view")
async def balance_summary(request: web.Request) -> web.Response:
    double = _double(request)
    return json_response({"balance_summary": views.balance_summary(_portfolio(request), double.exchange)})


@endpoint("GET", "/cfm/positions", scope="view")
async def list_positions(request: web.Request) -> web.Response:
    double = _double(request)
    positions = double.exchange.open_positions(_portfolio(request))
    return json_response({"positions": [views.position(p, double.exchange) for p in positions]})


@endpoint("GET", "/cfm/positions/{product_id}", scope="view")
async def get_position(request: web.Request) -> web.Response:
    double = _double(request)
    position = double.exchange.position(_portfolio(request), request.match_info["product_id"])
    return json_response({"position": views.position(position, double.exchange)})


def error_for_exception(exc: Exception) -> web.Response | None:
    """Map engine exceptions to HTTP errors (used by the gateway and the control API)."""
    if isinstance(exc, InvalidRequest):
        return json_error(400, str(exc))
    if isinstance(exc, NotFound):
        return json_error(404, str(exc))
    return None
