"""Our tokens carry exactly the header fields and claim names of the official SDK's, and verify with the public key."""

from __future__ import annotations

import jwt
import pytest
from coinbase import jwt_generator

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.credentials import load_credentials
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.tokens import build_rest_jwt, build_ws_jwt
from exchange_double.keys import generate_key


@pytest.fixture(params=["ec", "ed25519"])
def key(request):
    return generate_key(request.param)


def _secret(key):
    return key.secret  # what the SDK takes as api_secret: PEM for EC, raw base64 for Ed25519


def test_rest_token_matches_the_sdk(key):
    ours_creds = load_credentials(key_name=key.name, private_key=_secret(key))
    ours = build_rest_jwt(ours_creds, "GET", "api.coinbase.com", "/api/v3/brokerage/accounts")
    sdk = jwt_generator.build_rest_jwt(jwt_generator.format_jwt_uri("GET", "/api/v3/brokerage/accounts"), key.name, _secret(key))
    assert jwt.get_unverified_header(ours).keys() == jwt.get_unverified_header(sdk).keys()
    assert jwt.get_unverified_header(ours)["alg"] == jwt.get_unverified_header(sdk)["alg"]
    ours_claims = jwt.decode(ours, key.public_pem, algorithms=[ours_creds.algorithm])
    sdk_claims = jwt.decode(sdk, key.public_pem, algorithms=[ours_creds.algorithm])
    assert ours_claims.keys() == sdk_claims.keys()
    assert ours_claims["uri"] == sdk_claims["uri"] and ours_claims["iss"] == sdk_claims["iss"] == "cdp"
    assert ours_claims["exp"] - ours_claims["nbf"] == sdk_claims["exp"] - sdk_claims["nbf"] == 120


def test_ws_token_matches_the_sdk(key):
    creds = load_credentials(key_name=key.name, private_key=_secret(key))
    ours = jwt.decode(build_ws_jwt(creds), key.public_pem, algorithms=[creds.algorithm])
    sdk = jwt.decode(jwt_generator.build_ws_jwt(key.name, _secret(key)), key.public_pem, algorithms=[creds.algorithm])
    assert ours.keys() == sdk.keys() and "uri" not in ours
