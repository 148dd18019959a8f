"""A minimal signed REST client for the double's tests (the SDK is exercised in tests/conformance).

Named ``double_api`` rather than living in conftest so that importing it never collides with
another suite's conftest when several test directories run in one pytest session.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from exchange_double.keys import GeneratedKey
from exchange_double.testing import DoubleHandle

PREFIX = "/api/v3/brokerage"
BTC_PERP = "BIP-20DEC30-CDE"
ETH_PERP = "ETP-20DEC30-CDE"


class Api:
    """A minimal signed REST client for tests (the SDK is exercised in tests/conformance)."""

    def __init__(self, double: DoubleHandle, key: GeneratedKey | None) -> None:
        self.double = double
        self.key = key
        self.http = httpx.Client(base_url=double.url, verify=ssl.create_default_context(cafile=str(double.ca_path)),
                                 timeout=30)

    def uri(self, method: str, path: str) -> str:
        return f"{method} localhost:{self.double.port}{PREFIX}{path}"

    def request(self, method: str, path: str, *, params: Any = None, json: Any = None,
                token: str | None = None, key: GeneratedKey | None = None, headers: dict[str, str] | None = None,
                ) -> httpx.Response:
        signer = key or self.key
        all_headers = dict(headers or {})
        if token is None and signer is not None:
            token = signer.mint_jwt(self.uri(method, path))
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, PREFIX + path, params=params, json=json, headers=all_headers)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.request("POST", path, json=body)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def limit_order(self, client_order_id: str, side: str, price: str, size: str = "1",
                    product_id: str = BTC_PERP) -> dict[str, Any]:
        body = {"client_order_id": client_order_id, "product_id": product_id, "side": side,
                "order_configuration": {"limit_limit_gtc": {"base_size": size, "limit_price": price}}}
        return self.ok("POST", "/orders", json=body)

    def market_order(self, client_order_id: str, side: str, size: str, product_id: str = BTC_PERP) -> dict[str, Any]:
        body = {"client_order_id": client_order_id, "product_id": product_id, "side": side,
                "order_configuration": {"market_market_ioc": {"base_size": size}}}
        return self.ok("POST", "/orders", json=body)
