"""coinbase_jwt and coinbase_jwt_info: minted tokens work on the double; decoding names what would fail."""

from __future__ import annotations

import json
import ssl
import time

import httpx
import jwt
import pytest

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.credentials import load_credentials
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.tokens import build_rest_jwt, build_ws_jwt


def mint(run_module, args, check_mode=False, no_log=True):
    return run_module("coinbase_jwt", dict(args, _ansible_no_log=no_log), check_mode=check_mode)


def test_rest_token_is_accepted_by_the_double_for_that_request_only(make_key, connection, run_module, clean_double):
    key = make_key("ec", permissions="view")
    result = mint(run_module, connection(key, path="/accounts?limit=5"))
    assert result["failed"] is False and result["changed"] is False
    assert result["uri"] == "GET localhost:%d/api/v3/brokerage/accounts" % clean_double.port
    assert result["url"] == "%s/api/v3/brokerage/accounts?limit=5" % clean_double.url
    assert result["key_name"] == key.name and result["algorithm"] == "ES256" and result["lifetime_s"] == 120
    assert result["exp"] - result["nbf"] == 120 and abs(result["nbf"] - time.time()) < 5
    with httpx.Client(verify=ssl.create_default_context(cafile=str(clean_double.ca_path))) as http:
        ok = http.get(result["url"], headers={"Authorization": "Bearer " + result["token"]})
        other = http.get(clean_double.url + "/api/v3/brokerage/key_permissions", headers={"Authorization": "Bearer " + result["token"]})
    assert ok.status_code == 200 and "accounts" in ok.json()
    assert other.status_code == 401  # the uri claim binds it to GET /accounts


def test_websocket_token_has_no_uri_and_verifies_with_the_public_key(make_key, connection, run_module):
    key = make_key("ed25519")
    result = mint(run_module, connection(key, kind="websocket"))
    assert result["kind"] == "websocket" and "uri" not in result and result["algorithm"] == "EdDSA"
    claims = jwt.decode(result["token"], key.public_pem, algorithms=["EdDSA"])
    assert claims["sub"] == key.name and claims["iss"] == "cdp" and "uri" not in claims


def test_check_mode_mints_too(make_key, connection, run_module):
    result = mint(run_module, connection(make_key()), check_mode=True)
    assert result["failed"] is False and result["changed"] is False and result["token"].count(".") == 2


def test_refuses_to_run_without_no_log_and_returns_no_token(make_key, connection, run_module):
    result = mint(run_module, connection(make_key()), no_log=False)
    assert result["failed"] and "no_log: true" in result["msg"]
    assert "token" not in result and "eyJ" not in json.dumps(result)


@pytest.mark.parametrize("extra, expected", [
    ({"path": "accounts"}, "path must start with '/'"),
    ({"api_url": "ftp://x"}, "api_url must be an https URL"),
    ({"method": "FETCH"}, "method"),
])
def test_bad_arguments_name_the_argument(make_key, connection, run_module, extra, expected):
    result = mint(run_module, connection(make_key(), **extra))
    assert result["failed"] and expected in result["msg"]


def test_missing_key_is_a_clear_failure(connection, run_module):
    result = mint(run_module, connection(None, api_key_name="organizations/x/apiKeys/y"))
    assert result["failed"] and "No private key was given" in result["msg"] and "Traceback" not in json.dumps(result)


# ---------------------------------------------------------------------- coinbase_jwt_info
def credentials_of(key):
    return load_credentials(key_name=key.name, private_key_path=key.path)


def info(run_module, token, **extra):
    return run_module("coinbase_jwt_info", dict(extra, token=token))


def test_info_reads_a_fresh_rest_token(make_key, run_module, clean_double):
    key = make_key()
    host = "localhost:%d" % clean_double.port
    token = build_rest_jwt(credentials_of(key), "POST", host, "/api/v3/brokerage/orders/batch_cancel")
    result = info(run_module, "Bearer " + token, api_url=clean_double.url, api_key_name=key.name)
    assert result["failed"] is False and result["changed"] is False
    assert result["kind"] == "rest" and result["key_name"] == key.name and result["algorithm"] == "ES256"
    assert result["issuer"] == "cdp" and result["lifetime_s"] == 120 and not result["expired"]
    assert 110 < result["expires_in_s"] <= 120
    assert result["request"] == {"method": "POST", "host": host, "path": "/api/v3/brokerage/orders/batch_cancel"}
    assert result["header_fields"] == ["alg", "kid", "nonce", "typ"] and result["problems"] == []
    assert token not in json.dumps(result) and token.split(".")[2] not in json.dumps(result)


def test_info_names_expiry_clock_host_and_key_problems(make_key, run_module):
    key = make_key()
    creds = credentials_of(key)
    expired = info(run_module, build_rest_jwt(creds, "GET", "api.coinbase.com", "/api/v3/brokerage/accounts", now=time.time() - 200))
    assert expired["expired"] and expired["expires_in_s"] < -70
    assert any(p.startswith("expired ") for p in expired["problems"])

    future = info(run_module, build_ws_jwt(creds, now=time.time() + 60))
    assert future["kind"] == "websocket" and future["not_yet_valid"] and not future["expired"]
    assert any("clock is ahead" in p for p in future["problems"])

    wrong = info(run_module, build_rest_jwt(creds, "GET", "api.coinbase.com", "/api/v3/brokerage/accounts"),
                 api_url="https://localhost:8443", api_key_name="organizations/o/apiKeys/other")
    assert any("minted for host api.coinbase.com, but api_url is localhost:8443" in p for p in wrong["problems"])
    assert any("not by api_key_name" in p for p in wrong["problems"])


def test_info_flags_a_non_sdk_token(run_module):
    token = jwt.encode({"sub": "a", "iss": "coinbase-cloud", "nbf": int(time.time()), "exp": int(time.time()) + 600},
                       "not-a-coinbase-key-but-hs256-is-fine-here", algorithm="HS256", headers={"kid": "b"})
    result = info(run_module, token)
    problems = " | ".join(result["problems"])
    assert "lifetime of 600 s" in problems and "issuer 'coinbase-cloud'" in problems and "different keys" in problems


@pytest.mark.parametrize("token", ["not-a-token", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", ""])
def test_info_refuses_a_malformed_token_without_echoing_it(run_module, token):
    result = info(run_module, token)
    assert result["failed"] and result["msg"].startswith("token")
    if token:
        assert token not in json.dumps(result)
