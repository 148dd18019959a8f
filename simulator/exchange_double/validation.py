"""Turning request values into typed values, and the rules an order must pass.

Two kinds of "no": ``InvalidRequest`` is a malformed request (HTTP 400 INVALID_ARGUMENT),
``Rejection`` is a well-formed order the exchange refuses (HTTP 200 with ``success: false`` and
an ``error_response``), which is how Coinbase answers business failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from exchange_double.models import Product
from exchange_double.util import fmt_decimal, is_multiple_of, parse_rfc3339, to_decimal


class InvalidRequest(ValueError):
    """A malformed request: HTTP 400 INVALID_ARGUMENT."""


class NotFound(LookupError):
    """The thing asked for does not exist (or belongs to another portfolio): HTTP 404."""


class Rejection(Exception):
    """A business rejection of an order: HTTP 200 with ``success: false``."""

    def __init__(
        self,
        error: str,
        message: str,
        *,
        preview_failure_reason: str = "UNKNOWN_PREVIEW_FAILURE_REASON",
        new_order_failure_reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.preview_failure_reason = preview_failure_reason
        self.new_order_failure_reason = new_order_failure_reason or error

    def error_response(self) -> dict[str, str]:
        return {
            "error": self.error,
            "message": self.message,
            "error_details": self.message,
            "preview_failure_reason": self.preview_failure_reason,
            "new_order_failure_reason": self.new_order_failure_reason,
        }


@dataclass(slots=True)
class ParsedConfiguration:
    kind: str
    order_type: str
    time_in_force: str
    base_size: Decimal | None
    quote_size: Decimal | None
    limit_price: Decimal | None
    post_only: bool
    end_time: float | None
    echo: dict[str, Any]


_CONFIGURATIONS = {
    # kind: (order type, time in force, required fields)
    "market_market_ioc": ("MARKET", "IMMEDIATE_OR_CANCEL", ()),
    "sor_limit_ioc": ("LIMIT", "IMMEDIATE_OR_CANCEL", ("base_size", "limit_price")),
    "limit_limit_gtc": ("LIMIT", "GOOD_UNTIL_CANCELLED", ("base_size", "limit_price")),
    "limit_limit_gtd": ("LIMIT", "GOOD_UNTIL_DATE_TIME", ("base_size", "limit_price", "end_time")),
    "limit_limit_fok": ("LIMIT", "FILL_OR_KILL", ("base_size", "limit_price")),
}


def parse_configuration(configuration: dict[str, Any]) -> ParsedConfiguration:
    if len(configuration) != 1:
        raise Rejection("UNSUPPORTED_ORDER_CONFIGURATION", "order_configuration must have exactly one key",
                        preview_failure_reason="PREVIEW_INVALID_ORDER_CONFIG")
    kind, params = next(iter(configuration.items()))
    if kind not in _CONFIGURATIONS or not isinstance(params, dict):
        raise Rejection("UNSUPPORTED_ORDER_CONFIGURATION",
                        f"order configuration {kind!r} is not supported by the exchange double",
                        preview_failure_reason="PREVIEW_INVALID_ORDER_CONFIG")
    order_type, tif, required = _CONFIGURATIONS[kind]
    missing = [name for name in required if params.get(name) in (None, "")]
    has_base, has_quote = params.get("base_size") not in (None, ""), params.get("quote_size") not in (None, "")
    if kind == "market_market_ioc" and has_base == has_quote:
        missing = ["exactly one of base_size / quote_size"]
    if missing:
        raise Rejection("INVALID_ARGUMENT", f"{kind} is missing {', '.join(missing)}",
                        preview_failure_reason="PREVIEW_INVALID_ORDER_CONFIG",
                        new_order_failure_reason="INVALID_REQUEST")

    def number(name: str) -> Decimal | None:
        if params.get(name) in (None, ""):
            return None
        try:
            return to_decimal(params[name])
        except ValueError:
            raise Rejection("INVALID_ARGUMENT", f"{name} {params[name]!r} is not a number",
                            new_order_failure_reason="INVALID_REQUEST") from None

    end_time = None
    if params.get("end_time"):
        try:
            end_time = parse_timestamp(params["end_time"], "end_time")
        except InvalidRequest as exc:
            raise Rejection("INVALID_ARGUMENT", str(exc), new_order_failure_reason="INVALID_REQUEST") from None
    post_only = params.get("post_only", False)
    echo = {name: value for name, value in params.items() if value is not None}
    return ParsedConfiguration(
        kind=kind,
        order_type=order_type,
        time_in_force=tif,
        base_size=number("base_size"),
        quote_size=number("quote_size"),
        limit_price=number("limit_price"),
        post_only=post_only is True or str(post_only).lower() == "true",
        end_time=end_time,
        echo={kind: echo},
    )


def check_size(product: Product, size: Decimal) -> None:
    if size <= 0 or not is_multiple_of(size, product.base_increment):
        step = fmt_decimal(product.base_increment)
        raise Rejection("INVALID_SIZE_PRECISION", f"size {fmt_decimal(size)} must be a positive multiple of {step}",
                        preview_failure_reason="PREVIEW_INVALID_SIZE_PRECISION")
    if size < product.base_min_size:
        raise Rejection("INVALID_SIZE_PRECISION", f"size is below the minimum {fmt_decimal(product.base_min_size)}",
                        preview_failure_reason="PREVIEW_INVALID_BASE_SIZE_TOO_SMALL")
    if size > product.base_max_size:
        raise Rejection("INVALID_SIZE_PRECISION", f"size is above the maximum {fmt_decimal(product.base_max_size)}",
                        preview_failure_reason="PREVIEW_INVALID_BASE_SIZE_TOO_LARGE")


def check_price(product: Product, price: Decimal) -> None:
    if price <= 0:
        raise Rejection("INVALID_LIMIT_PRICE", "limit_price must be positive",
                        preview_failure_reason="PREVIEW_INVALID_LIMIT_PRICE")
    if not is_multiple_of(price, product.quote_increment):
        raise Rejection("INVALID_PRICE_PRECISION",
                        f"limit_price must be a multiple of {fmt_decimal(product.quote_increment)}",
                        preview_failure_reason="PREVIEW_INVALID_PRICE_PRECISION")


def required_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name} is required")
    return value


def parse_decimal(value: Any, name: str) -> Decimal:
    try:
        return to_decimal(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a decimal number, got {value!r}") from None


def parse_timestamp(value: Any, name: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return parse_rfc3339(str(value))
    except ValueError:
        raise InvalidRequest(f"{name} must be RFC 3339 or epoch seconds, got {value!r}") from None


def parse_interval(value: Any) -> int:
    text = str(value).strip().lower().removesuffix("s")
    try:
        seconds = int(float(text))
    except ValueError:
        raise InvalidRequest(f"funding_interval must be seconds like 3600 or '3600s', got {value!r}") from None
    if seconds <= 0:
        raise InvalidRequest("funding_interval must be positive")
    return seconds

