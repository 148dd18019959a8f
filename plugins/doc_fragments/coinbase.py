# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The connection options of every Coinbase module (plugins/module_utils/_coinbase/module.py).
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the Coinbase Advanced Trade API, without the C(/api/v3/brokerage) prefix.
      - Point it at the exchange double for drills and tests, for example C(https://localhost:8443).
      - If not set, the environment variable E(COINBASE_API_BASE_URL) is used.
    type: str
    default: https://api.coinbase.com
  ca_bundle:
    description:
      - A PEM file of CA certificates to trust for O(api_url), for example the exchange double's CA.
      - TLS verification stays on; system CAs are not used when this is set.
      - If not set, the environment variable E(COINBASE_CA_BUNDLE) is used.
    type: path
  validate_certs:
    description:
      - Verify the API's TLS certificate. Never set this to V(false) against production.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each HTTP request (connect, read, write) before it counts as failed.
    type: float
    default: 10
  max_retries:
    description:
      - Retries after a connection error, a timeout, HTTP 429 or 5xx (the SOP's backoff
        strategy, section 1). The first retry waits 1 s, each further one twice as long, up
        to O(retry_max_delay); a C(Retry-After) header from the API replaces the computed wait.
      - A 401 is retried once with a fresh token regardless of this setting.
    type: int
    default: 5
  retry_max_delay:
    description:
      - The longest wait between two retries, in seconds (the SOP caps it at 60).
    type: float
    default: 60
  max_requests_per_second:
    description:
      - Client-side limit on requests in any one-second window, kept below Coinbase's
        30 per second per key so bursts (a kill switch) do not earn HTTP 429.
      - V(0) disables the limit.
    type: float
    default: 25
notes:
  - Runs on the controller (C(delegate_to=localhost) and C(run_once) in fleet playbooks); fleet
    hosts never need the Coinbase Python stack.
  - Requests go through httpx; proxies are taken from E(HTTPS_PROXY) and E(NO_PROXY).
  - Every request carries a fresh JWT valid for 120 seconds, built as the official
    C(coinbase-advanced-py) SDK builds it. Tokens and keys never appear in results or errors.
requirements:
  - python >= 3.9
  - httpx
  - PyJWT
  - cryptography
"""

    # Key options, for modules that call authenticated endpoints.
    KEY = r"""
options:
  api_key_name:
    description:
      - The CDP API key name, for example C(organizations/<org>/apiKeys/<id>), or the key id of
        a newer Ed25519 key.
      - If not set, the environment variable E(COINBASE_CDP_API_KEY) is used (the SOP's name).
      - Not needed with O(key_file), which contains it.
    type: str
  private_key_path:
    description:
      - A file with the private key, readable only by its owner (mode 0400 or 0600, as the SOP
        requires; a file others can read is refused as possibly leaked).
      - An ECDSA P-256 PEM (ES256), an Ed25519 PKCS#8 PEM or the Ed25519 base64 secret of
        32 or 64 bytes (EdDSA). A CDP JSON key file is accepted too.
      - If not set, the environment variable E(COINBASE_CDP_PRIVATE_KEY_PATH) is used (the
        SOP's name). O(private_key) or O(key_file) given to the task take precedence.
    type: path
  private_key:
    description:
      - The private key itself (PEM or base64), for example from Ansible Vault or an AWX
        credential. Literal C(\n) sequences are turned into newlines.
      - Mutually exclusive with O(key_file).
    type: str
  key_file:
    description:
      - A CDP JSON key file as downloaded from the portal, with C(name) (or C(id)) and
        C(privateKey). Same file-mode rule as O(private_key_path).
      - Mutually exclusive with O(private_key).
    type: path
"""
