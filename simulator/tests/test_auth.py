"""JWT verification, key revocation, scopes and the exchange clock, over real HTTPS."""

from __future__ import annotations

import time

import pytest
from double_api import Api

from exchange_double.keys import GeneratedKey, generate_key
from exchange_double.testing import DoubleHandle

UNAUTHORIZED = "Unauthorized"


def assert_unauthorized(response, double: DoubleHandle, reason_fragment: str) -> None:
    """401, plain-text body, and the request log names the reason (never the token)."""
    assert response.status_code == 401
    assert response.text == UNAUTHORIZED
    assert response.headers["content-type"].startswith("text/plain")
    entry = double.control.requests(path="/accounts")[-1]
    assert entry["status"] == 401
    assert reason_fragment in entry["auth_error"]


@pytest.mark.parametrize("key_fixture", ["ec_key", "ed_key"])
def test_good_tokens_for_both_algorithms_are_accepted(api: Api, key_fixture: str,
                                                      request: pytest.FixtureRequest) -> None:
    key: GeneratedKey = request.getfixturevalue(key_fixture)
    response = api.request("GET", "/accounts", key=key)
    assert response.status_code == 200
    assert response.json()["accounts"]


def test_uri_is_accepted_with_and_without_the_port(api: Api, double: DoubleHandle, ec_key: GeneratedKey) -> None:
    path = "/api/v3/brokerage/accounts"
    with_port = ec_key.mint_jwt(f"GET localhost:{double.port}{path}")
    without_port = ec_key.mint_jwt(f"GET localhost{path}")
    assert api.request("GET", "/accounts", token=with_port).status_code == 200
    assert api.request("GET", "/accounts", token=without_port).status_code == 200


def test_token_signed_by_another_key_is_refused(api: Api, double: DoubleHandle, ec_key: GeneratedKey) -> None:
    impostor = generate_key("ec")
    token = ec_key.mint_jwt(api.uri("GET", "/accounts"), signing_key=impostor.private_key)
    assert_unauthorized(api.request("GET", "/accounts", token=token), double, "bad signature")


@pytest.mark.parametrize(
    "uri_template",
    [
        "POST localhost:{port}/api/v3/brokerage/accounts",
        "GET localhost:{port}/api/v3/brokerage/orders",
        "GET evil.example:{port}/api/v3/brokerage/accounts",
        "GET https://localhost:{port}/api/v3/brokerage/accounts",
        "GET localhost:{port}/api/v3/brokerage/accounts?limit=1",
    ],
    ids=["method", "path", "host", "scheme", "query"],
)
def test_wrong_uri_claim_is_refused(api: Api, double: DoubleHandle, ec_key: GeneratedKey, uri_template: str) -> None:
    token = ec_key.mint_jwt(uri_template.format(port=double.port))
    assert_unauthorized(api.request("GET", "/accounts", token=token), double, "uri claim")


def test_missing_uri_claim_is_refused_on_rest(api: Api, double: DoubleHandle, ec_key: GeneratedKey) -> None:
    assert_unauthorized(api.request("GET", "/accounts", token=ec_key.mint_jwt(None)), double, "uri claim")


def test_expired_token_is_refused(api: Api, double: DoubleHandle, ec_key: GeneratedKey) -> None:
    token = ec_key.mint_jwt(api.uri("GET", "/accounts"), now=time.time() - 130)
    assert_unauthorized(api.request("GET", "/accounts", token=token), double, "expired")


def test_token_not_yet_valid_is_refused_beyond_the_leeway(api: Api, double: DoubleHandle, ec_key: GeneratedKey) -> None:
    token = ec_key.mint_jwt(api.uri("GET", "/accounts"), now=time.time() + 30)
    assert_unauthorized(api.request("GET", "/accounts", token=token), double, "not valid yet")


def test_small_skew_inside_the_leeway_is_tolerated(api: Api, ec_key: GeneratedKey) -> None:
    token = ec_key.mint_jwt(api.uri("GET", "/accounts"), now=time.time() + 3)
    assert api.request("GET", "/accounts", token=token).status_code == 200


def test_leeway_is_configurable(api: Api, double: DoubleHandle, ec_key: GeneratedKey) -> None:
    double.control.set_config(jwt_leeway=0)
    token = ec_key.mint_jwt(api.uri("GET", "/accounts"), now=time.time() + 3)
    assert_unauthorized(api.request("GET", "/accounts", token=token), double, "not valid yet")


def test_overlong_lifetime_is_refused(api: Api, double: DoubleHandle, ec_key: GeneratedKey) -> None:
    token = ec_key.mint_jwt(api.uri("GET", "/accounts"), lifetime=600)
    assert_unauthorized(api.request("GET", "/accounts", token=token), double, "lifetime")


@pytest.mark.parametrize(
    ("claims", "headers", "reason"),
    [
        ({"iss": "coinbase-cloud"}, None, "iss"),
        ({"sub": "organizations/x/apiKeys/y"}, None, "sub does not equal kid"),
        ({"exp": None}, None, "invalid JWT"),
        (None, {"kid": "organizations/nobody/apiKeys/nothing"}, "unknown key"),
    ],
)
def test_malformed_claims_are_refused(api: Api, double: DoubleHandle, ec_key: GeneratedKey,
                                      claims: dict | None, headers: dict | None, reason: str) -> None:
    token = ec_key.mint_jwt(api.uri("GET", "/accounts"), claims=claims, headers=headers)
    assert_unauthorized(api.request("GET", "/accounts", token=token), double, reason)


def test_missing_or_garbage_authorization_is_refused(api: Api, double: DoubleHandle) -> None:
    bare = api.http.get("/api/v3/brokerage/accounts")
    assert_unauthorized(bare, double, "no Authorization")
    garbage = api.request("GET", "/accounts", token="not.a.jwt")
    assert_unauthorized(garbage, double, "malformed JWT")


def test_revoked_key_gets_the_same_401_and_unrevoke_restores_it(api: Api, double: DoubleHandle,
                                                                ec_key: GeneratedKey) -> None:
    double.control.revoke_key(ec_key.name)
    assert_unauthorized(api.request("GET", "/accounts"), double, "revoked")
    double.control.unrevoke_key(ec_key.name)
    assert api.request("GET", "/accounts").status_code == 200


def test_deleted_key_is_unknown(api: Api, double: DoubleHandle, ec_key: GeneratedKey) -> None:
    double.control.delete_key(ec_key.name)
    assert_unauthorized(api.request("GET", "/accounts"), double, "unknown key")


def test_missing_scope_is_403_with_the_exact_body_the_sdk_matches(api: Api, double: DoubleHandle) -> None:
    view_only = double.new_key("ec", permissions=["view"])
    response = api.request("POST", "/orders/batch_cancel", json={"order_ids": ["x"]}, key=view_only)
    assert response.status_code == 403
    assert '"error_details":"Missing required scopes"' in response.text
    assert response.json() == {
        "error": "PERMISSION_DENIED",
        "error_details": "Missing required scopes",
        "message": "Missing required scopes",
    }
    trade_only = double.new_key("ed25519", permissions="trade")
    assert api.request("GET", "/cfm/positions", key=trade_only).status_code == 403
    assert api.request("GET", "/cfm/positions", key=view_only).status_code == 200


def test_key_permissions_reports_scopes_and_portfolio(api: Api, double: DoubleHandle) -> None:
    key = double.new_key("ec", permissions=["view", "transfer"], portfolio_uuid="11111111-2222-4333-8444-555555555555")
    body = api.ok("GET", "/key_permissions", key=key)
    assert body == {
        "can_view": True,
        "can_trade": False,
        "can_transfer": True,
        "portfolio_uuid": "11111111-2222-4333-8444-555555555555",
        "portfolio_type": "DEFAULT",
    }


def test_time_reports_the_exchange_clock_and_offset_breaks_client_tokens(
    api: Api, public_api: Api, double: DoubleHandle, ec_key: GeneratedKey
) -> None:
    before = public_api.ok("GET", "/time")
    assert abs(int(before["epochSeconds"]) - time.time()) < 5
    assert before["epochMillis"].isdigit() and before["iso"].endswith("Z")

    double.control.set_clock_offset(300)
    shifted = public_api.ok("GET", "/time")
    assert 295 < int(shifted["epochSeconds"]) - time.time() < 305
    # A client whose clock is 5 minutes behind the exchange signs tokens the exchange calls expired.
    assert_unauthorized(api.request("GET", "/accounts"), double, "expired")
    # Signing with the exchange's time (what a skew-aware client does) works again.
    token = ec_key.mint_jwt(api.uri("GET", "/accounts"), now=int(shifted["epochSeconds"]))
    assert api.request("GET", "/accounts", token=token).status_code == 200


def test_public_endpoints_need_no_token(public_api: Api) -> None:
    assert public_api.get("/time").status_code == 200
    assert public_api.get("/market/products").status_code == 200
    assert public_api.get("/market/products/BIP-20DEC30-CDE").status_code == 200
    assert public_api.get("/products").status_code == 401
