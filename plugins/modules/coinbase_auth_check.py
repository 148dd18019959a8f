#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_auth_check
short_description: Check that a Coinbase CDP API key works, and say why not
version_added: 0.1.0
description:
  - The core of the SOP's section 1 (authentication failures), run on the controller.
  - Loads the key and reports its name and type (never the key), mints a token and reports its
    expiry, measures this machine's clock drift against Coinbase's C(GET /time) (drift over
    30 seconds makes Coinbase refuse every token), then calls C(GET /key_permissions) and
    C(GET /accounts) with the SOP's retry policy.
  - Returns whether authentication works, the key's permissions, every attempt made, and a
    diagnosis an on-call engineer can act on (clock, permissions, revoked or wrong key,
    unreachable API).
  - Read-only; check mode runs the same checks.
author:
  - TradeOps engineering (@tradeops)
extends_documentation_fragment:
  - tradeops.incident_response.coinbase
  - tradeops.incident_response.coinbase.KEY
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same checks in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
options:
  required_permissions:
    description:
      - Permissions the key must have for the check to pass.
      - A trading bot's key needs V(view) and V(trade); a key that can V(transfer) is reported
        in RV(diagnosis.warnings) because a trading key should not be able to move funds.
    type: list
    elements: str
    choices: [view, trade, transfer]
    default: [view]
  max_clock_drift:
    description:
      - Largest tolerated difference, in seconds, between this machine's clock and Coinbase's.
      - The SOP names 30 seconds as the point where tokens fail.
    type: float
    default: 30
  fail_on_error:
    description:
      - Fail the task when authentication does not work or a required permission is missing.
      - Set V(false) in runbooks that read RV(diagnosis) to decide the next step; bad input
        (a missing or malformed key) fails regardless.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Check the bot's key from the SOP's environment variables
  tradeops.incident_response.coinbase_auth_check:
    required_permissions: [view, trade]
  delegate_to: localhost
  run_once: true
  register: auth

- name: Check a backup key against the exchange double, and decide in the playbook
  tradeops.incident_response.coinbase_auth_check:
    api_url: https://localhost:8443
    ca_bundle: /var/lib/exchange-double/ca/ca.pem
    api_key_name: "{{ backup_key_name }}"
    private_key_path: /etc/tradeops/keys/backup.pem
    fail_on_error: false
  register: backup_auth

- name: Page when the key is refused for a reason other than the clock
  ansible.builtin.debug:
    msg: "{{ backup_auth.diagnosis.summary }}"
  when: not backup_auth.auth_ok and backup_auth.diagnosis.cause != 'clock'
"""

RETURN = r"""
auth_ok:
  description: Whether an authenticated request succeeded with this key.
  returned: always
  type: bool
  sample: true
key:
  description: The key that was checked, by name and type; never the key itself.
  returned: always
  type: dict
  contains:
    key_name:
      description: The key's name (or id).
      type: str
      sample: organizations/4a7d.../apiKeys/9c1e...
    key_type:
      description: V(ecdsa-p256) or V(ed25519).
      type: str
      sample: ecdsa-p256
    algorithm:
      description: JWT algorithm, V(ES256) or V(EdDSA).
      type: str
      sample: ES256
    source:
      description: Where the key came from (a file path, or V(option)).
      type: str
      sample: /etc/trading-bot/keys/primary.pem
token:
  description: A freshly minted REST token's public facts (the token itself is not returned).
  returned: always
  type: dict
  contains:
    algorithm:
      description: Header C(alg).
      type: str
      sample: ES256
    not_before:
      description: C(nbf) as UTC ISO 8601.
      type: str
      sample: "2026-11-27T03:12:00Z"
    expires_at:
      description: C(exp) as UTC ISO 8601.
      type: str
      sample: "2026-11-27T03:14:00Z"
    lifetime_s:
      description: Seconds between C(nbf) and C(exp) (120 for Coinbase).
      type: int
      sample: 120
    header_fields:
      description: Names of the header fields.
      type: list
      elements: str
      sample: [alg, kid, nonce, typ]
    claim_fields:
      description: Names of the claims.
      type: list
      elements: str
      sample: [exp, iss, nbf, sub, uri]
clock:
  description: This machine's clock against Coinbase's C(GET /time).
  returned: when the API answered C(GET /time)
  type: dict
  contains:
    server_time:
      description: Coinbase's time, UTC ISO 8601.
      type: str
      sample: "2026-11-27T03:12:00.120Z"
    local_time:
      description: This machine's time at the middle of the request, UTC ISO 8601.
      type: str
      sample: "2026-11-27T03:12:00.180Z"
    drift_s:
      description: Local minus server, in seconds, corrected by half the round trip; positive when this machine is ahead.
      type: float
      sample: 0.06
    round_trip_ms:
      description: Round-trip time of the request.
      type: float
      sample: 41.2
    ok:
      description: Whether the drift is within O(max_clock_drift).
      type: bool
      sample: true
permissions:
  description: The key's permissions from C(GET /key_permissions).
  returned: when the key authenticated
  type: dict
  contains:
    can_view:
      description: The key can read.
      type: bool
      sample: true
    can_trade:
      description: The key can place and cancel orders.
      type: bool
      sample: true
    can_transfer:
      description: The key can move funds.
      type: bool
      sample: false
    portfolio_uuid:
      description: The portfolio the key is scoped to; everything it sees and cancels is in it.
      type: str
      sample: 7a3e2d1c-0000-4000-8000-000000000001
    portfolio_type:
      description: The portfolio's type.
      type: str
      sample: DEFAULT
    missing:
      description: Required permissions the key lacks.
      type: list
      elements: str
      sample: []
accounts:
  description: Result of the C(GET /accounts) call.
  returned: when the key authenticated
  type: dict
  contains:
    ok:
      description: Whether the call succeeded.
      type: bool
      sample: true
    count:
      description: Number of accounts listed (every page).
      type: int
      sample: 2
diagnosis:
  description: What is wrong, in words a half-awake engineer can act on.
  returned: always
  type: dict
  contains:
    cause:
      description: >-
        One of V(ok), V(clock), V(revoked_or_wrong_key), V(permissions), V(unreachable),
        V(rate_limited), V(api_error).
      type: str
      sample: revoked_or_wrong_key
    summary:
      description: One sentence.
      type: str
      sample: Coinbase refused the key although this machine's clock is right.
    actions:
      description: What to do next, in order.
      type: list
      elements: str
    warnings:
      description: Things that work but should not be so (a key that can transfer funds, drift close to the limit).
      type: list
      elements: str
requests:
  description: The requests made, for the SOP's "alert ops after 3 failures".
  returned: always
  type: dict
  contains:
    requests:
      description: Number of HTTP attempts.
      type: int
      sample: 3
    failures:
      description: Attempts that failed (connection error, timeout, non-2xx).
      type: int
      sample: 0
    retries:
      description: Attempts that were retries.
      type: int
      sample: 0
    waits_s:
      description: The waits before each retry, in seconds.
      type: list
      elements: float
      sample: [1.0, 2.0]
    rate_limit_wait_s:
      description: Seconds spent waiting on the client-side rate limit.
      type: float
      sample: 0.0
    alert_ops:
      description: True after 3 or more failed attempts (SOP 1).
      type: bool
      sample: false
    failed_attempts:
      description: The last failed attempts (method, path, status, outcome, elapsed_ms, wait_before_s, retry).
      type: list
      elements: dict
"""

import time
from datetime import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    AuthenticationError,
    CoinbaseError,
    CredentialError,
    InputError,
    PermissionDeniedError,
    RateLimitedError,
    TransportError,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.module import (
    COINBASE_MUTUALLY_EXCLUSIVE,
    build_client,
    check_libraries,
    coinbase_argument_spec,
    load_module_credentials,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.timeutil import iso_utc
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.tokens import (
    build_rest_jwt,
    decode_unverified,
)

PERMISSION_FIELDS = {"view": "can_view", "trade": "can_trade", "transfer": "can_transfer"}


def iso(ts):
    return iso_utc(ts, "milliseconds")


def server_epoch(data):
    """Coinbase's /time gives epochMillis / epochSeconds as strings or numbers [U]; fall back to iso."""
    for field, scale in (("epochMillis", 1000.0), ("epochSeconds", 1.0)):
        value = data.get(field)
        try:
            if value is not None:
                return float(value) / scale
        except (TypeError, ValueError):
            pass
    text = data.get("iso")
    if isinstance(text, str):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    raise ValueError("no usable time field")


def describe_token(credentials, client):
    token = build_rest_jwt(credentials, "GET", client.host, "/api/v3/brokerage/key_permissions")
    decoded = decode_unverified(token)
    claims = decoded["claims"]
    return {
        "algorithm": decoded["header"].get("alg"),
        "not_before": iso(claims["nbf"]),
        "expires_at": iso(claims["exp"]),
        "lifetime_s": int(claims["exp"] - claims["nbf"]),
        "header_fields": sorted(decoded["header"]),
        "claim_fields": sorted(claims),
    }


def measure_clock(client, max_drift):
    started = time.time()
    data = client.get_server_time()
    finished = time.time()
    local_mid = (started + finished) / 2.0
    server = server_epoch(data)
    drift = local_mid - server
    return {
        "server_time": iso(server),
        "local_time": iso(local_mid),
        "drift_s": round(drift, 3),
        "round_trip_ms": round((finished - started) * 1000.0, 1),
        "ok": abs(drift) <= max_drift,
    }


class AuthChecker:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.result = {"changed": False, "auth_ok": False}
        self.warnings = []

    def diagnose(self, cause, summary, actions):
        self.result["diagnosis"] = {"cause": cause, "summary": summary, "actions": actions, "warnings": self.warnings}

    def run(self):
        credentials = load_module_credentials(self.module)
        self.result["key"] = credentials.describe()
        client = build_client(self.module, credentials)
        try:
            self.result["token"] = describe_token(credentials, client)
            self.check(client)
        finally:
            self.result["requests"] = client.summary()
            client.close()
        return self.result

    def check(self, client):
        max_drift = self.params["max_clock_drift"]
        try:
            clock = measure_clock(client, max_drift)
        except TransportError as exc:
            return self.diagnose(
                "unreachable",
                "Cannot reach the Coinbase API at %s: %s" % (client.base_url, exc.message),
                [
                    "Check DNS and the network path from the controller to %s." % client.host,
                    "Check for an egress block (iptables -S OUTPUT) left by a containment step.",
                    "Check status.coinbase.com; if Coinbase is down, follow the kill switch runbook if positions are at risk.",
                ],
            )
        except (CoinbaseError, ValueError) as exc:
            clock = None
            self.warnings.append("Could not measure clock drift: %s" % exc)
        else:
            self.result["clock"] = clock
            if clock["ok"] and abs(clock["drift_s"]) > 5:
                self.warnings.append(
                    "Clock drift of %.1f s is within the limit but tokens start at 'now': a clock ahead of Coinbase can be refused." % clock["drift_s"]
                )

        clock_bad = clock is not None and not clock["ok"]
        try:
            permissions = client.get_key_permissions()
        except AuthenticationError:
            if clock_bad:
                return self.diagnose_clock(clock, refused=True)
            return self.diagnose(
                "revoked_or_wrong_key",
                "Coinbase refused the key %s (HTTP 401, also with a fresh token) although this machine's clock is right." % credentials_name(self.result),
                [
                    "The key is revoked or deleted, or the key name does not belong to this private key.",
                    "Check the key in the CDP portal (Settings -> API Keys); compare the key name with the file.",
                    "If the key is revoked or compromised, fail over: ansible-playbook playbooks/key_failover.yml -e key_failover_to=backup.",
                    "Check the key's IP allowlist in the CDP portal against this host's egress address.",
                ],
            )
        except PermissionDeniedError as exc:
            return self.diagnose(
                "permissions",
                "The key authenticated but may not read its permissions: %s" % exc.message,
                ["Give the key the view permission, or check its IP allowlist and portfolio in the CDP portal."],
            )
        except RateLimitedError as exc:
            return self.diagnose("rate_limited", "Coinbase kept answering 429: %s" % exc.message,
                                 ["Stop other clients using this key (the bots) and try again after a minute."])
        except TransportError as exc:
            return self.diagnose("unreachable", "Lost the Coinbase API during the check: %s" % exc.message,
                                 ["Check the network path and any egress block, then run the check again."])
        except CoinbaseError as exc:
            return self.diagnose("api_error", "Coinbase failed the permissions call: %s" % exc.message,
                                 ["Check status.coinbase.com; retry later; contact Coinbase support if it persists (SOP 1, step 4)."])

        required = self.params["required_permissions"]
        missing = [p for p in required if not permissions.get(PERMISSION_FIELDS[p])]
        self.result["permissions"] = {
            "can_view": bool(permissions.get("can_view")),
            "can_trade": bool(permissions.get("can_trade")),
            "can_transfer": bool(permissions.get("can_transfer")),
            "portfolio_uuid": permissions.get("portfolio_uuid"),
            "portfolio_type": permissions.get("portfolio_type"),
            "missing": missing,
        }
        if permissions.get("can_transfer"):
            self.warnings.append("This key can transfer funds; a trading key should have view and trade only.")

        try:
            accounts = client.list_accounts(page_size=250)  # every page, not only the first 250
            self.result["accounts"] = {"ok": True, "count": len(accounts)}
        except PermissionDeniedError as exc:
            self.result["accounts"] = {"ok": False, "count": 0}
            missing = sorted(set(missing) | {"view"}) if exc.missing_scopes else missing
            self.result["permissions"]["missing"] = missing
        except CoinbaseError as exc:
            self.result["accounts"] = {"ok": False, "count": 0}
            self.warnings.append("GET /accounts failed: %s" % exc.message)

        self.result["auth_ok"] = True
        if clock_bad:
            return self.diagnose_clock(clock, refused=False)
        if missing:
            return self.diagnose(
                "permissions",
                "The key works but lacks: %s." % ", ".join(missing),
                ["Create a key with the %s permission(s) in the CDP portal and install it as the standby key." % ", ".join(missing)],
            )
        return self.diagnose("ok", "The key %s authenticates and has the required permissions." % credentials_name(self.result), [])

    def diagnose_clock(self, clock, refused):
        drift = clock["drift_s"]
        self.diagnose(
            "clock",
            "This machine's clock is %.1f s %s Coinbase's (limit %.0f s)%s." % (
                abs(drift), "ahead of" if drift > 0 else "behind", self.params["max_clock_drift"],
                ": that is why the key is refused" if refused else "; tokens will start failing",
            ),
            [
                "Fix time synchronisation on this machine (timedatectl status; chronyc tracking; chronyc makestep).",
                "Run the check again before touching the key: a clock problem looks like a credential problem.",
            ],
        )


def credentials_name(result):
    return (result.get("key") or {}).get("key_name", "?")


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(
        required_permissions=dict(type="list", elements="str", choices=list(PERMISSION_FIELDS), default=["view"]),
        max_clock_drift=dict(type="float", default=30.0),
        fail_on_error=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    check_libraries(module)
    if module.params["max_clock_drift"] <= 0:
        module.fail_json(msg="max_clock_drift must be greater than 0 seconds, got %s." % module.params["max_clock_drift"])

    checker = AuthChecker(module)
    try:
        result = checker.run()
    except (CredentialError, InputError) as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict(), auth_ok=False)
    diagnosis = result["diagnosis"]
    if module.params["fail_on_error"] and diagnosis["cause"] != "ok":
        module.fail_json(msg=diagnosis["summary"], **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
