"""Error responses, shaped like Coinbase's gateway.

* 401 is always the plain text ``Unauthorized`` (clients must not expect JSON there).
* 403 for a missing scope is the exact JSON the SDK string-matches.
* 429 is ``{"error":"RATE_LIMIT_EXCEEDED","message":"Too many requests"}``.
* Everything else is JSON ``{"error","code","message","error_details"}`` with the gRPC
  status name and number, as grpc-gateway writes them.
"""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web

from exchange_double.util import compact_json

# HTTP status -> (gRPC status name, gRPC code), the mapping grpc-gateway uses.
GRPC_STATUS: dict[int, tuple[str, int]] = {
    400: ("INVALID_ARGUMENT", 3),
    401: ("UNAUTHENTICATED", 16),
    403: ("PERMISSION_DENIED", 7),
    404: ("NOT_FOUND", 5),
    405: ("UNIMPLEMENTED", 12),
    408: ("DEADLINE_EXCEEDED", 4),
    409: ("ABORTED", 10),
    429: ("RESOURCE_EXHAUSTED", 8),
    500: ("INTERNAL", 13),
    501: ("UNIMPLEMENTED", 12),
    502: ("UNAVAILABLE", 14),
    503: ("UNAVAILABLE", 14),
    504: ("DEADLINE_EXCEEDED", 4),
}

# What a proxy in front of the API says when the body is not JSON (the ``text`` fault format).
_TEXT_BODIES = {
    502: "Bad Gateway",
    503: "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
    504: "upstream request timeout",
}


def json_response(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A compact-JSON response (see util.compact_json for why compact)."""
    return web.Response(text=compact_json(data), status=status, content_type="application/json", headers=headers)


def json_error(
    status: int,
    message: str,
    *,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    name, code = GRPC_STATUS.get(status, ("UNKNOWN", 2))
    body = {"error": error or name, "code": code, "message": message, "error_details": message}
    return json_response(body, status=status, headers=headers)


def unauthorized() -> web.Response:
    return web.Response(text="Unauthorized", status=401, content_type="text/plain")


def missing_scopes() -> web.Response:
    body = {
        "error": "PERMISSION_DENIED",
        "error_details": "Missing required scopes",
        "message": "Missing required scopes",
    }
    return json_response(body, status=403)


def rate_limited(retry_after: float | None = None) -> web.Response:
    headers = {"Retry-After": _seconds(retry_after)} if retry_after is not None else None
    return json_response({"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests"}, 429, headers)


def injected_error(
    status: int, body_format: str, message: str | None, retry_after: float | None
) -> web.Response:
    """The response of a fault injector: the same shapes as the real failures."""
    headers = {"Retry-After": _seconds(retry_after)} if retry_after is not None else None
    if status == 401:
        response = unauthorized()
    elif status == 403:
        response = missing_scopes()
    elif status == 429 and message is None and body_format == "json":
        return rate_limited(retry_after)
    elif body_format == "text":
        text = message or _TEXT_BODIES.get(status) or _reason(status)
        response = web.Response(text=text, status=status, content_type="text/plain")
    else:
        response = json_error(status, message or _reason(status))
    if headers:
        response.headers.update(headers)
    return response


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
