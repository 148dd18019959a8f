"""coinbase_auth_check against the exchange double: healthy, revoked, missing scope, clock drift, unreachable, bad input."""

from __future__ import annotations

import json

import pytest



def test_healthy_key_reports_permissions_and_token(make_key, connection, run_module):
    key = make_key("ec", permissions="view,trade")
    result = run_module("coinbase_auth_check", connection(key, required_permissions=["view", "trade"]))
    assert result["failed"] is False and result["auth_ok"] is True and result["changed"] is False
    assert result["diagnosis"]["cause"] == "ok"
    assert result["key"] == {"key_name": key.name, "key_type": "ecdsa-p256", "algorithm": "ES256", "source": key.path}
    assert result["permissions"]["can_trade"] is True and result["permissions"]["can_transfer"] is False
    assert result["token"]["lifetime_s"] == 120 and result["token"]["header_fields"] == ["alg", "kid", "nonce", "typ"]
    assert abs(result["clock"]["drift_s"]) < 2 and result["clock"]["ok"]
    assert result["accounts"]["ok"] is True


def test_ed25519_json_key_file(make_key, connection, run_module):
    key = make_key("ed25519", as_json=True)
    args = connection()
    args["key_file"] = key.path
    result = run_module("coinbase_auth_check", args)
    assert result["auth_ok"] and result["key"]["algorithm"] == "EdDSA" and result["key"]["key_name"] == key.name


def test_revoked_key_is_diagnosed_as_such(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.revoke_key(key.name)
    result = run_module("coinbase_auth_check", connection(key))
    assert result["failed"] and result["auth_ok"] is False
    assert result["diagnosis"]["cause"] == "revoked_or_wrong_key"
    assert "key_failover.yml" in " ".join(result["diagnosis"]["actions"])
    # the 401 was retried once with a fresh token before the verdict
    statuses = [r["status"] for r in clean_double.control.requests(path="/api/v3/brokerage/key_permissions")]
    assert statuses == [401, 401]


def test_missing_scope_is_a_permissions_diagnosis(make_key, connection, run_module):
    key = make_key(permissions="trade")
    result = run_module("coinbase_auth_check", connection(key, fail_on_error=False))
    assert result["failed"] is False and result["auth_ok"] is True
    assert result["diagnosis"]["cause"] == "permissions" and "view" in result["permissions"]["missing"]


def test_transfer_permission_is_warned_about(make_key, connection, run_module):
    result = run_module("coinbase_auth_check", connection(make_key(permissions="view,trade,transfer")))
    assert result["auth_ok"] and any("transfer funds" in w for w in result["diagnosis"]["warnings"])


# Moving the double's clock makes ours look off: ahead of Coinbase (offset < 0) puts nbf in the
# future and the token is refused; behind by less than the token's 120 s still works, but the
# check names the clock before it breaks; behind by more, exp is already past.
@pytest.mark.parametrize("offset, refused", [(-45, True), (45, False), (150, True)])
def test_clock_drift_over_30s_is_named_as_the_cause(make_key, connection, run_module, clean_double, offset, refused):
    key = make_key()
    clean_double.control.set_clock_offset(offset)
    result = run_module("coinbase_auth_check", connection(key, fail_on_error=False))
    assert result["diagnosis"]["cause"] == "clock"
    assert abs(abs(result["clock"]["drift_s"]) - abs(offset)) < 2
    assert result["auth_ok"] is (not refused)
    assert ("why the key is refused" in result["diagnosis"]["summary"]) is refused


def test_5xx_then_recovery_reports_attempts_and_alert(make_key, connection, run_module, clean_double):
    key = make_key()
    clean_double.control.fail_next(503, count=3, path="/api/v3/brokerage/key_permissions")
    result = run_module("coinbase_auth_check", connection(key, retry_max_delay=0.2))
    assert result["auth_ok"] and result["requests"]["failures"] == 3 and result["requests"]["alert_ops"] is True
    assert result["requests"]["waits_s"] == [0.2, 0.2, 0.2]


def test_unreachable_url_is_a_clear_failure(make_key, connection, run_module):
    key = make_key()
    args = connection(key, api_url="https://127.0.0.1:9", max_retries=1, retry_max_delay=0.1, timeout=2)
    result = run_module("coinbase_auth_check", args)
    assert result["failed"] and result["diagnosis"]["cause"] == "unreachable"
    assert "Cannot reach" in result["msg"]


@pytest.mark.parametrize("which, expected", [
    ("missing", "No private key was given"),
    ("rsa", "an RSA key"),
    ("malformed", "truncated"),
    ("world_readable", "other users can read it"),
    ("no_such_file", "does not exist"),
])
def test_bad_input_fails_clearly_without_key_material(which, expected, connection, run_module, bad_keys):
    args = connection(None, api_key_name="organizations/x/apiKeys/y")
    path, secret = bad_keys[which]
    if path:
        args["private_key_path"] = path
    result = run_module("coinbase_auth_check", args)
    assert result["failed"] and expected in result["msg"]
    blob = json.dumps(result)
    assert "Traceback" not in blob
    if secret:
        assert secret.splitlines()[1][:20] not in blob
