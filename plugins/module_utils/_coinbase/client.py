# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Coinbase Advanced Trade REST client: the only place the collection speaks HTTP to Coinbase.

- httpx, with a timeout on every request, TLS verification on (optionally against a CA bundle,
  such as the exchange double's), and proxies from the environment (HTTPS_PROXY, NO_PROXY).
- A fresh JWT for every attempt (tokens.py).
- The SOP's retry policy (retry.py); a 401 is retried once with a fresh token, because
  correctly signed tokens are occasionally refused.
- A client-side rate limit below Coinbase's 30 requests per second, as a sliding one-second
  window, so a burst of cancels cannot earn a 429 in the middle of a kill switch.
- Every attempt is recorded in ``attempts`` so playbooks can alert after 3 failures (SOP 1).
- One method per endpoint the collection uses; pagination by cursor and ``has_next`` (cursor
  only for fills, offset for products).
"""

from __future__ import annotations

import collections
import json
import ssl
import time
from typing import Any, Callable, Iterable, Optional
from urllib.parse import urlsplit

try:
    import httpx

    HAS_HTTPX = True
    HTTPX_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by module.py through missing_required_lib
    HAS_HTTPX = False
    HTTPX_IMPORT_ERROR = exc

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    AuthenticationError,
    BusinessRejectError,
    CoinbaseError,
    InputError,
    PermissionDeniedError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    TransportError,
    redact,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.retry import (
    ALERT_AFTER_FAILURES,
    RETRYABLE_STATUSES,
    RetryPolicy,
    parse_retry_after,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.tokens import (
    build_rest_jwt,
    signing_host,
)

DEFAULT_BASE_URL = "https://api.coinbase.com"
API_PREFIX = "/api/v3/brokerage"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_REQUESTS_PER_SECOND = 25.0  # Coinbase allows ~30/s per key [U]; keep headroom
MAX_CANCEL_BATCH = 100  # batch_cancel refuses more than 100 ids
WORKING_ORDER_STATUSES = ("OPEN", "PENDING", "QUEUED", "CANCEL_QUEUED")  # all of these can still trade
_MAX_ERROR_BODY = 500
_MISSING_SCOPES = "Missing required scopes"
CLIENT_VERSION = "0.1.0"
ATTEMPTS_KEPT = 500  # the newest attempts, for reports; the totals count every one (a bot runs for weeks)


class SlidingWindowLimiter:
    """At most ``rate`` requests per second over any window (a token bucket would allow 2x bursts).

    The window is one second, or ``1 / rate`` seconds for rates below one (0.5 = one request in
    any two seconds); fractional rates above one round down, which only errs on the slow side.
    """

    def __init__(self, rate: float, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        self.enabled = bool(rate and rate > 0)
        self.window = max(1.0, 1.0 / rate) if self.enabled else 1.0
        self.capacity = max(1, int(rate * self.window)) if self.enabled else 0
        self._sleep = sleep
        self._clock = clock
        self._sent: collections.deque = collections.deque()
        self.waited = 0.0

    def acquire(self) -> None:
        if not self.enabled:
            return
        now = self._clock()
        while self._sent and now - self._sent[0] >= self.window:
            self._sent.popleft()
        if len(self._sent) >= self.capacity:
            wait = self.window - (now - self._sent[0])
            if wait > 0:
                self._sleep(wait)
                self.waited += wait
            now = self._clock()
            self._sent.popleft()
        self._sent.append(now)


def _parse_error_body(response: Any) -> tuple:
    """(error, message, details, body) from a JSON error body or a plain-text one (401 says 'Unauthorized')."""
    text = response.text or ""
    try:
        data = json.loads(text) if text.strip().startswith("{") else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        details = data.get("error_details")
        if isinstance(details, (list, dict)):
            details = json.dumps(details)[:_MAX_ERROR_BODY]
        return data.get("error"), data.get("message"), details, data
    text = text.strip()[:_MAX_ERROR_BODY]
    return None, text or None, None, text or None


def _business_reason(data: dict) -> tuple:
    err = data.get("error_response") if isinstance(data.get("error_response"), dict) else {}
    reason = (
        data.get("failure_reason")
        or err.get("error")
        or err.get("new_order_failure_reason")
        or err.get("preview_failure_reason")
        or "UNKNOWN_FAILURE_REASON"
    )
    message = err.get("message") or err.get("error_details") or reason
    return reason, message, err.get("error_details")


class CoinbaseClient:
    def __init__(
        self,
        credentials: Any = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        ca_bundle: Optional[str] = None,
        validate_certs: bool = True,
        retry: Optional[RetryPolicy] = None,
        max_requests_per_second: float = DEFAULT_MAX_REQUESTS_PER_SECOND,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: Any = None,
        user_agent: Optional[str] = None,
    ) -> None:
        if not HAS_HTTPX:
            raise CoinbaseError(
                "The Python library 'httpx' is not installed on the controller.",
                hint="Install the collection's requirements.txt (pip install -r requirements.txt).",
            )
        parts = urlsplit(base_url or DEFAULT_BASE_URL)
        try:
            host = signing_host(base_url or DEFAULT_BASE_URL)
        except ValueError:
            host = None
        if parts.scheme not in ("https", "http") or not host:
            raise InputError("api_url must be an https URL such as https://api.coinbase.com, got %r." % base_url)
        if timeout is None or timeout <= 0:
            raise InputError("timeout must be a positive number of seconds.")
        self.credentials = credentials
        self.base_url = "%s://%s" % (parts.scheme, parts.netloc)
        # The JWT's uri carries host[:port] the way the SDK signs it; a default port is not written.
        self.host = host
        self.timeout = float(timeout)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self.limiter = SlidingWindowLimiter(max_requests_per_second, sleep, clock)
        self.attempts: list = []
        self.totals = {"requests": 0, "failures": 0, "retries": 0}
        self.deadline: Optional[float] = None  # absolute clock() value after which no retry is started
        verify: Any = True
        if not validate_certs:
            verify = False
        elif ca_bundle:
            try:
                verify = ssl.create_default_context(cafile=ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise InputError("The CA bundle %s cannot be loaded: %s." % (ca_bundle, exc)) from None
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(self.timeout),
            verify=verify,
            trust_env=True,
            transport=transport,
            headers={
                "User-Agent": user_agent or "tradeops-incident-response/%s" % CLIENT_VERSION,
                "Accept": "application/json",
            },
        )

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "CoinbaseClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def summary(self) -> dict:
        """What a module returns about the requests it made: counts, failures, waits, the SOP's alert flag."""
        failures = [a for a in self.attempts if a["outcome"] != "ok"]
        return {
            "requests": self.totals["requests"],
            "failures": self.totals["failures"],
            "retries": self.totals["retries"],
            "waits_s": [a["wait_before_s"] for a in self.attempts if a["wait_before_s"]],
            "rate_limit_wait_s": round(self.limiter.waited, 3),
            "alert_ops": self.totals["failures"] >= ALERT_AFTER_FAILURES,
            "failed_attempts": failures[-20:],
        }

    def _record(self, method: str, path: str, status: Optional[int], outcome: str, started: float, wait: float, retry: bool) -> None:
        self.totals["requests"] += 1
        self.totals["failures"] += outcome != "ok"
        self.totals["retries"] += retry
        if len(self.attempts) >= ATTEMPTS_KEPT:
            del self.attempts[: len(self.attempts) - ATTEMPTS_KEPT + 1]
        self.attempts.append(
            {
                "method": method,
                "path": path,
                "status": status,
                "outcome": outcome,
                "elapsed_ms": round((self._clock() - started) * 1000.0, 1),
                "wait_before_s": wait,
                "retry": retry,
            }
        )

    def _headers(self, method: str, path: str, auth: bool) -> dict:
        headers = {}
        if auth:
            if self.credentials is None:
                raise InputError("This request needs an API key, and none was given.")
            headers["Authorization"] = "Bearer " + build_rest_jwt(self.credentials, method, self.host, path)
        return headers

    @staticmethod
    def _clean(params: Optional[dict]) -> Optional[dict]:
        if not params:
            return None
        clean = {}
        for key, value in params.items():
            if value is None or value == [] or value == ():
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            clean[key] = list(value) if isinstance(value, (list, tuple, set)) else value
        return clean or None

    def _transport_error(self, exc: Exception, method: str, path: str) -> TransportError:
        text = str(exc)
        if isinstance(exc, httpx.TimeoutException):
            message = "No answer from %s within %.0f s (%s)." % (self.base_url, self.timeout, type(exc).__name__)
            hint = "The API is slow or unreachable, or egress to it is blocked on this machine."
        elif "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            message = "TLS verification of %s failed: %s." % (self.base_url, text)
            hint = "Against the exchange double set ca_bundle to the double's CA; never disable validate_certs against production."
        else:
            message = "Cannot reach %s: %s." % (self.base_url, text or type(exc).__name__)
            hint = "Check DNS, the network path and any egress block (iptables) on this machine."
        return TransportError(message, hint=hint, attempts=self.attempts, method=method, path=path)

    def request(self, method: str, path: str, params: Optional[dict] = None, body: Optional[dict] = None, auth: bool = True) -> dict:
        """One API call with the retry policy. ``path`` is relative to /api/v3/brokerage."""
        method = method.upper()
        full_path = path if path.startswith(API_PREFIX) else API_PREFIX + path
        query = self._clean(params)
        payload = None if body is None else {k: v for k, v in body.items() if v is not None}
        retries_left = self.retry.max_retries
        retried_401 = False
        wait = 0.0
        retry_number = 0
        tries = 0
        is_retry = False
        while True:
            tries += 1
            if wait:
                self._sleep(wait)
            self.limiter.acquire()
            started = self._clock()
            headers = self._headers(method, full_path, auth)
            status: Optional[int] = None
            try:
                response = self._http.request(method, full_path, params=query, json=payload, headers=headers)
            except httpx.TransportError as exc:  # includes timeouts, DNS, refused, TLS
                outcome = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
                self._record(method, full_path, None, outcome, started, wait, is_retry)
                failure: CoinbaseError = self._transport_error(exc, method, full_path)
                retry_after = None
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self._record(method, full_path, status, "ok", started, wait, is_retry)
                    return self._decode(response, method, full_path)
                error, message, details, data = _parse_error_body(response)
                self._record(method, full_path, status, "http_%d" % status, started, wait, is_retry)
                common = dict(status=status, error=error, details=details, body=data, attempts=self.attempts, method=method, path=full_path)
                described = "%s %s answered HTTP %d%s" % (method, full_path, status, (": %s" % (details or message)) if (details or message) else "")
                if status == 401:
                    if not retried_401:
                        # Coinbase refuses correctly signed tokens now and then: one retry, fresh token.
                        retried_401, wait, is_retry = True, 0.0, True
                        continue
                    raise AuthenticationError(
                        described + ".",
                        hint="The key was refused: it may be revoked or wrong, the token expired, or this machine's clock is off (compare with GET /time).",
                        **common
                    )
                if status == 403:
                    missing = _MISSING_SCOPES.lower() in json.dumps(data).lower() if data is not None else False
                    raise PermissionDeniedError(
                        described + ".",
                        missing_scopes=missing,
                        hint=(
                            "The key lacks a permission this action needs (view / trade / transfer): create a key with it in the CDP portal."
                            if missing
                            else "The key is not allowed to do this: check its permissions, portfolio and IP allowlist in the CDP portal."
                        ),
                        **common
                    )
                if status not in RETRYABLE_STATUSES:
                    raise RequestRejectedError(described + ".", **common)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if status == 429:
                    failure = RateLimitedError(described + ".", hint="Coinbase's rate limit was hit and stayed hit through every retry.", **common)
                else:
                    failure = ServerError(described + ".", hint="Coinbase is failing; check status.coinbase.com and retry later.", **common)
            if retries_left <= 0:
                failure.message = "%s (gave up after %d attempts)." % (failure.message.rstrip("."), tries)
                raise failure
            retries_left -= 1
            retry_number += 1
            wait = self.retry.delay(retry_number, retry_after)
            if self.deadline is not None and self._clock() + wait > self.deadline:
                failure.message = "%s (the deadline leaves no time for another retry)." % failure.message.rstrip(".")
                raise failure
            is_retry = True

    def _decode(self, response: Any, method: str, path: str) -> dict:
        try:
            data = response.json() if response.content else {}
        except ValueError:
            raise ServerError(
                "%s %s answered HTTP %d with a body that is not JSON: %s" % (method, path, response.status_code, redact(response.text[:200])),
                status=response.status_code,
                attempts=self.attempts,
                method=method,
                path=path,
            ) from None
        if not isinstance(data, dict):
            # Every endpoint the client uses answers an object; a list or a string is a proxy or a broken API.
            raise ServerError(
                "%s %s answered HTTP %d with JSON that is not an object (%s)." % (method, path, response.status_code, type(data).__name__),
                status=response.status_code,
                attempts=self.attempts,
                method=method,
                path=path,
                hint="Something between this machine and Coinbase (a proxy, a captive portal) may be answering instead of the API.",
            )
        if data.get("success") is False:
            reason, message, details = _business_reason(data)
            raise BusinessRejectError(
                "%s %s was refused by the exchange: %s." % (method, path, message),
                status=response.status_code,
                error=reason,
                details=details,
                body=data,
                attempts=self.attempts,
                method=method,
                path=path,
            )
        return data

    def paginate(self, path: str, items_key: str, params: Optional[dict] = None, cursor_only: bool = False, max_pages: int = 1000) -> list:
        """Every item of a cursor-paginated list. ``cursor_only`` for endpoints without ``has_next`` (fills)."""
        items: list = []
        cursor = None
        seen = set()
        for _page in range(max_pages):
            query = dict(params or {})
            if cursor:
                query["cursor"] = cursor
            data = self.request("GET", path, params=query)
            page = data.get(items_key)
            page = page if isinstance(page, list) else []
            items.extend(item for item in page if isinstance(item, dict))  # callers .get() on each item
            cursor = data.get("cursor") or None
            more = bool(cursor) and bool(page) if cursor_only else bool(data.get("has_next")) and bool(cursor)
            if not more:
                return items
            if cursor in seen:
                raise ServerError("%s returned the same cursor twice; stopping to avoid an endless loop." % path, path=path)
            seen.add(cursor)
        raise ServerError("%s still had more pages after %d; stopping." % (path, max_pages), path=path)

    # ------------------------------------------------------------------ endpoints
    def get_server_time(self) -> dict:
        return self.request("GET", "/time", auth=False)

    def get_key_permissions(self) -> dict:
        return self.request("GET", "/key_permissions")

    def list_accounts(self, page_size: Optional[int] = None) -> list:
        return self.paginate("/accounts", "accounts", {"limit": page_size})

    def list_products(self, product_type: Optional[str] = None, product_ids: Optional[Iterable[str]] = None,
                      contract_expiry_type: Optional[str] = None, public: bool = False) -> list:
        """Offset-paged, unlike the rest."""
        path = "/market/products" if public else "/products"
        products: list = []
        offset = 0
        while True:
            data = self.request(
                "GET",
                path,
                params={"product_type": product_type, "product_ids": list(product_ids or []),
                        "contract_expiry_type": contract_expiry_type, "offset": offset or None},
                auth=not public,
            )
            page = data.get("products")
            page = page if isinstance(page, list) else []
            products.extend(item for item in page if isinstance(item, dict))
            total = data.get("num_products")
            offset += len(page)
            if not page or not isinstance(total, int) or offset >= total:
                return products

    def get_product(self, product_id: str, public: bool = False) -> dict:
        path = "/market/products/%s" if public else "/products/%s"
        return self.request("GET", path % product_id, auth=not public)

    def list_orders(self, order_status: Optional[Iterable[str]] = None, product_ids: Optional[Iterable[str]] = None,
                    product_type: Optional[str] = None, order_side: Optional[str] = None,
                    page_size: Optional[int] = None, **extra: Any) -> list:
        params = {"order_status": list(order_status or []), "product_ids": list(product_ids or []),
                  "product_type": product_type, "order_side": order_side, "limit": page_size}
        params.update(extra)
        return self.paginate("/orders/historical/batch", "orders", params)

    def list_working_orders(self, product_ids: Optional[Iterable[str]] = None, product_type: Optional[str] = None,
                            order_side: Optional[str] = None, statuses: Iterable[str] = WORKING_ORDER_STATUSES,
                            page_size: Optional[int] = None) -> list:
        """Every order that can still trade. OPEN cannot be combined with other statuses in one query, so each is asked separately."""
        seen: dict = {}
        for status in statuses:
            for order in self.list_orders([status], product_ids, product_type, order_side, page_size):
                seen.setdefault(order.get("order_id"), order)
        return list(seen.values())

    def get_order(self, order_id: str) -> dict:
        return self.request("GET", "/orders/historical/%s" % order_id).get("order") or {}

    def create_order(self, client_order_id: str, product_id: str, side: str, order_configuration: dict,
                     leverage: Optional[str] = None, margin_type: Optional[str] = None) -> dict:
        return self.request("POST", "/orders", body={
            "client_order_id": client_order_id, "product_id": product_id, "side": side,
            "order_configuration": order_configuration, "leverage": leverage, "margin_type": margin_type,
        })

    def cancel_orders(self, order_ids: list) -> list:
        """One batch_cancel call; ``results`` says per order whether the cancel was initiated."""
        if len(order_ids) > MAX_CANCEL_BATCH:
            raise InputError("batch_cancel takes at most %d order ids, got %d." % (MAX_CANCEL_BATCH, len(order_ids)))
        if not order_ids:
            return []
        return self.request("POST", "/orders/batch_cancel", body={"order_ids": list(order_ids)}).get("results") or []

    def close_position(self, client_order_id: str, product_id: str, size: Optional[str] = None) -> dict:
        return self.request("POST", "/orders/close_position", body={
            "client_order_id": client_order_id, "product_id": product_id, "size": size,
        })

    def list_positions(self) -> list:
        return self.request("GET", "/cfm/positions").get("positions") or []

    def get_position(self, product_id: str) -> dict:
        return self.request("GET", "/cfm/positions/%s" % product_id).get("position") or {}

    def get_balance_summary(self) -> dict:
        return self.request("GET", "/cfm/balance_summary").get("balance_summary") or {}

    def list_fills(self, start: Optional[str] = None, end: Optional[str] = None,
                   product_ids: Optional[Iterable[str]] = None, order_ids: Optional[Iterable[str]] = None,
                   page_size: Optional[int] = None) -> list:
        """Fills between two RFC 3339 times (``start_sequence_timestamp`` / ``end_sequence_timestamp``)."""
        return self.paginate("/orders/historical/fills", "fills", {
            "start_sequence_timestamp": start, "end_sequence_timestamp": end,
            "product_ids": list(product_ids or []), "order_ids": list(order_ids or []), "limit": page_size,
        }, cursor_only=True)
