"""JWTs shaped exactly as the official SDK shapes them, verifiable with the key's public half."""

from __future__ import annotations

import re

import jwt
import pytest

import keyfactory as kf
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.credentials import load_credentials
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import InputError
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.tokens import (
    build_rest_jwt,
    build_ws_jwt,
    decode_unverified,
)


@pytest.fixture(params=["ec", "ed25519"])
def creds(request):
    secret = kf.ec_pem() if request.param == "ec" else kf.ed25519_raw_b64()
    return load_credentials(key_name=kf.key_name(), private_key=secret)


def test_rest_token_header_and_claims(creds):
    token = build_rest_jwt(creds, "get", "api.coinbase.com", "/api/v3/brokerage/orders/historical/batch?order_status=OPEN", now=1_800_000_000)
    header = jwt.get_unverified_header(token)
    assert set(header) == {"alg", "kid", "nonce", "typ"}
    assert header["alg"] == creds.algorithm and header["kid"] == creds.key_name and header["typ"] == "JWT"
    assert re.fullmatch(r"[0-9a-f]{64}", header["nonce"])
    claims = jwt.decode(token, creds.public_key_pem(), algorithms=[creds.algorithm], options={"verify_exp": False, "verify_nbf": False})
    assert claims == {
        "sub": creds.key_name,
        "iss": "cdp",
        "nbf": 1_800_000_000,
        "exp": 1_800_000_120,
        "uri": "GET api.coinbase.com/api/v3/brokerage/orders/historical/batch",
    }


def test_ws_token_has_no_uri(creds):
    claims = decode_unverified(build_ws_jwt(creds))["claims"]
    assert "uri" not in claims and claims["iss"] == "cdp" and claims["exp"] - claims["nbf"] == 120


def test_every_token_is_fresh(creds):
    one = build_rest_jwt(creds, "GET", "api.coinbase.com", "/api/v3/brokerage/accounts")
    two = build_rest_jwt(creds, "GET", "api.coinbase.com", "/api/v3/brokerage/accounts")
    assert jwt.get_unverified_header(one)["nonce"] != jwt.get_unverified_header(two)["nonce"]


def test_host_with_scheme_is_refused(creds):
    with pytest.raises(InputError, match="no scheme"):
        build_rest_jwt(creds, "GET", "https://api.coinbase.com", "/api/v3/brokerage/accounts")


def test_decode_reports_expiry_without_verifying(creds):
    token = build_rest_jwt(creds, "GET", "api.coinbase.com", "/x", now=1000)
    decoded = decode_unverified("Bearer " + token, now=1100)
    assert decoded["expires_in"] == 20 and not decoded["expired"]
    assert decode_unverified(token, now=1121)["expired"]


def test_decode_refuses_garbage_without_echoing_it():
    with pytest.raises(InputError) as info:
        decode_unverified("eyJhbGciOi.not-a-token")
    assert "eyJhbGciOi" not in str(info.value)
