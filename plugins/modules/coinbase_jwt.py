#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_jwt
short_description: Mint a Coinbase JWT for one REST request or a WebSocket subscription
version_added: 0.1.0
description:
  - The SOP's section 1, step 2 (C(python scripts/generate_jwt.py)), as a module. Signs a
    token with the configured key exactly as the official SDK does, valid for 120 seconds,
    for one REST request (O(method) and O(path) on the host of O(api_url)), or for WebSocket
    subscribe messages (no C(uri) claim).
  - Returns the token in RV(token) and its public facts (key, algorithm, validity window).
  - "B(The task must set C(no_log: true).) The token is a bearer credential for the next two
    minutes: anyone who reads it can make that request as the key. The module refuses to run
    otherwise, so that the token can only reach the variable registered by the task, never the
    screen or a log, not even at C(-vvvv). Tasks that use the token (for example an
    M(ansible.builtin.uri) call with an C(Authorization) header) need C(no_log: true) as well,
    and the token must never be printed with M(ansible.builtin.debug)."
  - Nothing is sent to Coinbase; minting changes nothing anywhere, so the result is never
    changed.
author:
  - TradeOps engineering (@tradeops)
extends_documentation_fragment:
  - tradeops.incident_response.coinbase
  - tradeops.incident_response.coinbase.KEY
attributes:
  check_mode:
    support: full
    description:
      - Mints the token in check mode too. Signing is local and changes nothing on Coinbase or
        on any host, and the SOP's next step (testing authentication with the new token) needs
        a real token in a check-mode rehearsal as well.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
options:
  kind:
    description:
      - V(rest) mints a token for one REST request (O(method) on O(path)); V(websocket) mints a
        token for the C(jwt) field of WebSocket subscribe messages.
    type: str
    choices: [rest, websocket]
    default: rest
  method:
    description: HTTP method of the request the token is for (O(kind=rest)).
    type: str
    choices: [GET, POST, PUT, DELETE, PATCH]
    default: GET
  path:
    description:
      - Path of the request the token is for (O(kind=rest)), for example C(/accounts) or
        C(/api/v3/brokerage/accounts). A path that does not start with C(/api/) is taken as
        relative to C(/api/v3/brokerage).
      - A query string is allowed and returned in RV(url), but it is not signed (Coinbase's
        C(uri) claim has none).
    type: str
    default: /accounts
notes:
  - The token is bound to the host of O(api_url) (with its port when not 443); a token for
    C(api.coinbase.com) is refused by the exchange double and the other way round.
  - "The no_log guard relies on Ansible telling the module that the task is C(no_log). With
    C(ANSIBLE_NO_TARGET_SYSLOG=true) (C(no_target_syslog) in C(ansible.cfg)) Ansible tells every
    module so, and the guard cannot see a missing C(no_log: true)."
  - O(timeout), O(max_retries), O(retry_max_delay), O(max_requests_per_second), O(ca_bundle)
    and O(validate_certs) are accepted for C(module_defaults) and not used.
"""

EXAMPLES = r"""
- name: Mint a token for GET /accounts (SOP 1, step 2)
  tradeops.incident_response.coinbase_jwt:
    path: /accounts
  delegate_to: localhost
  no_log: true  # required: the result holds a live credential
  register: minted

- name: Test authentication with it (SOP 1, step 3)
  ansible.builtin.uri:
    url: "{{ minted.url }}"
    headers:
      Authorization: "Bearer {{ minted.token }}"
  delegate_to: localhost
  no_log: true  # the request's headers carry the token

- name: Show only its public facts
  ansible.builtin.debug:
    msg: "Token of {{ minted.key_name }} valid until {{ minted.expires_at }}"

- name: A token for WebSocket subscribe messages, from the standby key
  tradeops.incident_response.coinbase_jwt:
    kind: websocket
    private_key_path: /etc/trading-bot/keys/standby.pem
    api_key_name: "{{ standby_key_name }}"
  no_log: true
  register: ws_token
"""

RETURN = r"""
token:
  description:
    - "The JWT. B(A live credential for 120 seconds): register it on a task with C(no_log: true),
      pass it only to tasks with C(no_log: true), never print it."
  returned: success
  type: str
  sample: eyJhbGciOiJFUzI1NiIs...
kind:
  description: V(rest) or V(websocket).
  returned: success
  type: str
  sample: rest
uri:
  description: The token's C(uri) claim, C(<METHOD> <host><path>).
  returned: when O(kind=rest)
  type: str
  sample: GET api.coinbase.com/api/v3/brokerage/accounts
url:
  description: The full URL of the request the token is for, query string included.
  returned: when O(kind=rest)
  type: str
  sample: https://api.coinbase.com/api/v3/brokerage/accounts
method:
  description: The HTTP method the token is for.
  returned: when O(kind=rest)
  type: str
  sample: GET
key_name:
  description: The key that signed it (C(kid) and C(sub)).
  returned: success
  type: str
  sample: organizations/4a7d.../apiKeys/9c1e...
algorithm:
  description: V(ES256) or V(EdDSA).
  returned: success
  type: str
  sample: ES256
not_before:
  description: C(nbf) as UTC ISO 8601 (the moment of minting).
  returned: success
  type: str
  sample: "2026-11-27T03:12:00Z"
expires_at:
  description: C(exp) as UTC ISO 8601.
  returned: success
  type: str
  sample: "2026-11-27T03:14:00Z"
nbf:
  description: C(nbf), epoch seconds.
  returned: success
  type: int
  sample: 1795749120
exp:
  description: C(exp), epoch seconds.
  returned: success
  type: int
  sample: 1795749240
lifetime_s:
  description: Seconds the token is valid (120).
  returned: success
  type: int
  sample: 120
"""

from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.client import API_PREFIX, DEFAULT_BASE_URL
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import CoinbaseError
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.module import (
    COINBASE_MUTUALLY_EXCLUSIVE,
    check_libraries,
    coinbase_argument_spec,
    fail_coinbase,
    load_module_credentials,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.timeutil import iso_utc
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.tokens import (
    build_rest_jwt,
    build_ws_jwt,
    decode_unverified,
    rest_uri,
    signing_host,
)

NO_LOG_REQUIRED = (
    "Set 'no_log: true' on this task: its result holds a live Coinbase token, which would "
    "otherwise be shown on screen (and in logs) by Ansible. Register the result and pass the "
    "token only to tasks that have 'no_log: true' too."
)


def request_target(api_url, path):
    """(base URL, host as signed, full path without query, query) for a path on api_url."""
    parts = urlsplit(api_url or DEFAULT_BASE_URL)
    try:
        host = signing_host(api_url or DEFAULT_BASE_URL)
    except ValueError:  # a port that is not a number
        host = None
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError("api_url must be an https URL such as https://api.coinbase.com, got %r." % api_url)
    path, _sep, query = (path or "").strip().partition("?")
    if not path.startswith("/"):
        raise ValueError("path must start with '/', for example /accounts, got %r." % path)
    if not path.startswith("/api/"):
        path = API_PREFIX + path
    return "%s://%s" % (parts.scheme, parts.netloc), host, path, query


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(
        kind=dict(type="str", choices=["rest", "websocket"], default="rest"),
        method=dict(type="str", choices=["GET", "POST", "PUT", "DELETE", "PATCH"], default="GET"),
        path=dict(type="str", default="/accounts"),
    )
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    check_libraries(module)
    if not module.no_log:
        module.fail_json(msg=NO_LOG_REQUIRED)
    params = module.params

    result = {"changed": False, "kind": params["kind"]}
    if params["kind"] == "rest":
        try:
            base, host, path, query = request_target(params["api_url"], params["path"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        result.update(method=params["method"], uri=rest_uri(params["method"], host, path),
                      url=base + path + ("?" + query if query else ""))
    try:
        credentials = load_module_credentials(module)
        if params["kind"] == "rest":
            token = build_rest_jwt(credentials, params["method"], host, path)
        else:
            token = build_ws_jwt(credentials)
        claims = decode_unverified(token)["claims"]
    except CoinbaseError as exc:
        fail_coinbase(module, exc)
    result.update(
        token=token,
        key_name=credentials.key_name,
        algorithm=credentials.algorithm,
        nbf=claims["nbf"],
        exp=claims["exp"],
        not_before=iso_utc(claims["nbf"]),
        expires_at=iso_utc(claims["exp"]),
        lifetime_s=claims["exp"] - claims["nbf"],
    )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
