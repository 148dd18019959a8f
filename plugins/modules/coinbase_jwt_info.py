#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: coinbase_jwt_info
short_description: Read a Coinbase JWT's expiry and claims without verifying it
version_added: 0.1.0
description:
  - >-
    The SOP's section 1, step 1 ("check token expiry"), as a module. Decodes a token the way
    the SOP's snippet does (C(jwt.decode(token, options={'verify_signature': False}))) and
    reports when it became valid, when it expires, how many seconds are left, the key that
    signed it (C(kid) / C(sub)), the algorithm, the issuer and, for a REST token, the request
    it was minted for (C(uri)).
  - Names what would make Coinbase refuse the token, as far as can be seen without the key
    (expired, not yet valid, a lifetime over 120 s, an issuer other than C(cdp), C(kid) and
    C(sub) that disagree, a C(uri) for another host than O(api_url), a key other than
    O(api_key_name)).
  - The signature is not checked, so a token that passes here may still be refused; use
    M(tradeops.incident_response.coinbase_auth_check) to test a key against Coinbase.
  - Read-only and offline; no request is made and no key is loaded.
author:
  - TradeOps engineering (@tradeops)
extends_documentation_fragment:
  - tradeops.incident_response.coinbase
  - tradeops.incident_response.coinbase.KEY
attributes:
  check_mode:
    support: full
    description: Only reads the token; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to diff.
options:
  token:
    description:
      - The token, or C(Bearer <token>) as copied from an C(Authorization) header.
      - It is a credential while it lives; it is never returned and is masked in logs.
    type: str
    required: true
notes:
  - The connection and key options are accepted so that C(module_defaults) for the
    C(group/tradeops.incident_response.coinbase) action group apply. Only O(api_url) (the
    host the C(uri) claim should name) and O(api_key_name) (the key the token should name)
    are used; no private key is loaded and no request is made.
"""

EXAMPLES = r"""
- name: Check the token the bot last used (SOP 1, step 1)
  tradeops.incident_response.coinbase_jwt_info:
    token: "{{ lookup('ansible.builtin.env', 'CURRENT_JWT') }}"
  delegate_to: localhost
  register: current_jwt

- name: Say when it expired
  ansible.builtin.debug:
    msg: "Token of {{ current_jwt.key_name }} expired {{ current_jwt.expires_in_s | abs }} s ago"
  when: current_jwt.expired

- name: Check that a token was minted by the standby key for the double
  tradeops.incident_response.coinbase_jwt_info:
    token: "{{ minted.token }}"
    api_url: https://localhost:8443
    api_key_name: "{{ standby_key_name }}"
  register: checked
  failed_when: checked.problems | length > 0
"""

RETURN = r"""
kind:
  description: V(rest) when the token has a C(uri) claim (one REST request), V(websocket) otherwise.
  returned: always
  type: str
  sample: rest
key_name:
  description: The key that signed the token, from the header's C(kid) (or the C(sub) claim).
  returned: always
  type: str
  sample: organizations/4a7d.../apiKeys/9c1e...
algorithm:
  description: The header's C(alg) (V(ES256) or V(EdDSA) for Coinbase keys).
  returned: always
  type: str
  sample: ES256
issuer:
  description: The C(iss) claim (V(cdp) for tokens made as the official SDK makes them).
  returned: always
  type: str
  sample: cdp
uri:
  description: The C(uri) claim, C(<METHOD> <host><path>), of a REST token.
  returned: when the token has one
  type: str
  sample: GET api.coinbase.com/api/v3/brokerage/accounts
request:
  description: The C(uri) claim taken apart.
  returned: when the token has a C(uri) claim
  type: dict
  contains:
    method:
      description: HTTP method.
      type: str
      sample: GET
    host:
      description: Host (with port when not 443).
      type: str
      sample: api.coinbase.com
    path:
      description: Path, without query string.
      type: str
      sample: /api/v3/brokerage/accounts
not_before:
  description: C(nbf) as UTC ISO 8601.
  returned: when the token has C(nbf)
  type: str
  sample: "2026-11-27T03:12:00Z"
expires_at:
  description: C(exp) as UTC ISO 8601.
  returned: when the token has C(exp)
  type: str
  sample: "2026-11-27T03:14:00Z"
nbf:
  description: C(nbf), epoch seconds.
  returned: when the token has C(nbf)
  type: int
  sample: 1795749120
exp:
  description: C(exp), epoch seconds.
  returned: when the token has C(exp)
  type: int
  sample: 1795749240
expires_in_s:
  description: Seconds left until C(exp) by this machine's clock; negative once expired.
  returned: when the token has C(exp)
  type: float
  sample: 87.4
lifetime_s:
  description: C(exp) minus C(nbf) (Coinbase tokens live 120 s).
  returned: when the token has both
  type: int
  sample: 120
expired:
  description: Whether C(exp) has passed by this machine's clock.
  returned: always
  type: bool
  sample: false
not_yet_valid:
  description: Whether C(nbf) is still in the future by this machine's clock (a clock ahead of the minting machine's).
  returned: always
  type: bool
  sample: false
header_fields:
  description: Names of the header fields (the nonce's value is not returned).
  returned: always
  type: list
  elements: str
  sample: [alg, kid, nonce, typ]
claims:
  description: All claims of the token (they are not secret; the signature is never returned).
  returned: always
  type: dict
  sample: {"sub": "organizations/.../apiKeys/...", "iss": "cdp", "nbf": 1795749120, "exp": 1795749240}
problems:
  description: What would make Coinbase refuse the token, as far as visible without the key; empty when none.
  returned: always
  type: list
  elements: str
  sample: ["expired 35 s ago (exp 2026-11-27T03:14:00Z)"]
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import CoinbaseError
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.module import (
    COINBASE_MUTUALLY_EXCLUSIVE,
    check_libraries,
    coinbase_argument_spec,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.timeutil import iso_utc
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.tokens import (
    ISSUER,
    TOKEN_LIFETIME_SECONDS,
    decode_unverified,
    signing_host,
)


def api_host(api_url):
    """The host[:port] a token for ``api_url`` names in its uri claim (tokens.signing_host); None when unreadable."""
    try:
        return signing_host(api_url)
    except ValueError:  # a port that is not a number
        return None


def split_uri(uri):
    method, _sep, rest = uri.partition(" ")
    host, slash, path = rest.partition("/")
    return {"method": method, "host": host, "path": slash + path}


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def usable_time(value):
    """A numeric claim as epoch seconds, when it is finite and a UTC date can show it; None otherwise (1e20, NaN, inf)."""
    if not is_number(value):
        return None
    try:
        seconds = float(value)
        iso_utc(seconds)
    except (OverflowError, OSError, ValueError):
        return None
    return seconds


def describe(decoded, api_url, expected_key, now):
    header, claims = decoded["header"], decoded["claims"]
    key_name = header.get("kid") or claims.get("sub")
    problems = []
    exp_claim, nbf_claim = claims.get("exp"), claims.get("nbf")
    exp, nbf = usable_time(exp_claim), usable_time(nbf_claim)
    result = {
        "changed": False,
        "key_name": key_name,
        "algorithm": header.get("alg"),
        "issuer": claims.get("iss"),
        "kind": "rest" if claims.get("uri") else "websocket",
        "header_fields": sorted(header),
        "claims": claims,
        "expired": decoded["expired"],
        "not_yet_valid": bool(nbf is not None and nbf > now),
    }
    if exp is not None:
        result.update(exp=int(exp), expires_at=iso_utc(exp), expires_in_s=round(exp - now, 1))
        if decoded["expired"]:
            problems.append("expired %.0f s ago (exp %s)" % (now - exp, iso_utc(exp)))
    elif is_number(exp_claim):
        problems.append("exp %.40s is not a usable time (out of range): Coinbase tokens expire %d s after nbf"
                        % (exp_claim, TOKEN_LIFETIME_SECONDS))
    else:
        problems.append("no exp claim: Coinbase tokens carry one")
    if nbf is not None:
        result.update(nbf=int(nbf), not_before=iso_utc(nbf))
        if result["not_yet_valid"]:
            problems.append("not valid for another %.0f s (nbf %s): the minting machine's clock is ahead of this one" % (nbf - now, iso_utc(nbf)))
    elif is_number(nbf_claim):
        problems.append("nbf %.40s is not a usable time (out of range)" % (nbf_claim,))
    if exp is not None and nbf is not None:
        result["lifetime_s"] = int(exp - nbf)
        if exp - nbf > TOKEN_LIFETIME_SECONDS:
            problems.append("lifetime of %d s: Coinbase accepts at most %d s" % (exp - nbf, TOKEN_LIFETIME_SECONDS))
    if result["issuer"] != ISSUER:
        problems.append("issuer %r: the official SDK signs with %r" % (result["issuer"], ISSUER))
    if header.get("kid") and claims.get("sub") and header["kid"] != claims["sub"]:
        problems.append("the header's kid and the sub claim name different keys")
    if expected_key and key_name != expected_key.strip():
        problems.append("signed by %s, not by api_key_name %s" % (key_name, expected_key.strip()))
    uri = claims.get("uri")
    if uri and not isinstance(uri, str):
        problems.append("the uri claim is a %s, not a string such as 'GET api.coinbase.com/api/v3/brokerage/accounts'" % type(uri).__name__)
    elif uri:
        result["uri"] = uri
        result["request"] = split_uri(uri)
        host = api_host(api_url)
        if host and result["request"]["host"] != host:
            problems.append("minted for host %s, but api_url is %s: Coinbase refuses a token for another host" % (result["request"]["host"], host))
    result["problems"] = problems
    return result


def main():
    argument_spec = coinbase_argument_spec()
    argument_spec.update(token=dict(type="str", required=True, no_log=True))
    module = AnsibleModule(argument_spec=argument_spec, mutually_exclusive=COINBASE_MUTUALLY_EXCLUSIVE, supports_check_mode=True)
    check_libraries(module)
    now = time.time()
    try:
        decoded = decode_unverified(module.params["token"], now=now)
    except CoinbaseError as exc:
        module.fail_json(msg="token: %s" % exc, error=exc.to_dict())
    module.exit_json(**describe(decoded, module.params["api_url"], module.params["api_key_name"], now))


if __name__ == "__main__":
    main()
