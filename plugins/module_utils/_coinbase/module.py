# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Ansible side of the client: the shared connection options, the client factory, and
turning a CoinbaseError into a ``fail_json`` that says what to do and carries no secret.

The options are documented once in ``plugins/doc_fragments/coinbase.py``; keep the two in step.
"""

from __future__ import annotations

from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase import (
    client as client_mod,
    credentials as credentials_mod,
    tokens as tokens_mod,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    CoinbaseError,
    InputError,
    redact,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.retry import RetryPolicy


def coinbase_argument_spec(needs_key: bool = True) -> dict:
    """The connection options every Coinbase module takes (``needs_key`` is False for public-only modules)."""
    spec = dict(
        api_url=dict(type="str", default=client_mod.DEFAULT_BASE_URL, fallback=(env_fallback, ["COINBASE_API_BASE_URL"])),
        ca_bundle=dict(type="path", fallback=(env_fallback, ["COINBASE_CA_BUNDLE"])),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="float", default=client_mod.DEFAULT_TIMEOUT),
        max_retries=dict(type="int", default=5),
        retry_max_delay=dict(type="float", default=60.0),
        max_requests_per_second=dict(type="float", default=client_mod.DEFAULT_MAX_REQUESTS_PER_SECOND),
    )
    if needs_key:
        spec.update(
            api_key_name=dict(type="str", fallback=(env_fallback, [credentials_mod.ENV_KEY_NAME])),
            private_key_path=dict(type="path", fallback=(env_fallback, [credentials_mod.ENV_KEY_PATH])),
            private_key=dict(type="str", no_log=True),
            key_file=dict(type="path"),
        )
    return spec


# private_key and key_file have no env fallback, so Ansible can check them; private_key_path
# may come from the environment and then yields to either of them (see load_module_credentials).
COINBASE_MUTUALLY_EXCLUSIVE = [("private_key", "key_file")]


def check_libraries(module: AnsibleModule) -> None:
    for present, name, error in (
        (client_mod.HAS_HTTPX, "httpx", client_mod.HTTPX_IMPORT_ERROR),
        (tokens_mod.HAS_PYJWT, "PyJWT", tokens_mod.PYJWT_IMPORT_ERROR),
        (credentials_mod.HAS_CRYPTOGRAPHY, "cryptography", credentials_mod.CRYPTOGRAPHY_IMPORT_ERROR),
    ):
        if not present:
            module.fail_json(msg=missing_required_lib(name), exception=str(error))


def key_configured(params: dict) -> bool:
    """Whether the task (or the environment) names a private key, for modules that can also run without one."""
    return bool(params.get("private_key") or params.get("private_key_path") or params.get("key_file"))


def load_module_credentials(module: AnsibleModule) -> Any:
    """Credentials from the module's options; a private_key or key_file given to the task beats a path from the environment."""
    params = module.params
    path = None if (params.get("private_key") or params.get("key_file")) else params.get("private_key_path")
    return credentials_mod.load_credentials(
        key_name=params.get("api_key_name"),
        private_key=params.get("private_key"),
        private_key_path=path,
        key_file=params.get("key_file"),
    )


def retry_policy(params: dict, max_retries_cap: Optional[int] = None, max_delay_cap: Optional[float] = None) -> RetryPolicy:
    """The RetryPolicy of the task's max_retries and retry_max_delay (optionally capped lower);
    InputError naming the option when one is negative (RetryPolicy would raise a bare ValueError)."""
    max_retries, max_delay = params["max_retries"], params["retry_max_delay"]
    if max_retries is None or not max_retries >= 0:
        raise InputError("max_retries must be 0 or more, got %s." % (max_retries,))
    if max_delay is None or not max_delay >= 0:  # also refuses NaN
        raise InputError("retry_max_delay must be 0 or more seconds, got %s." % (max_delay,))
    if max_retries_cap is not None:
        max_retries = min(max_retries, max_retries_cap)
    if max_delay_cap is not None:
        max_delay = min(max_delay, max_delay_cap)
    return RetryPolicy(max_retries=max_retries, max_delay=max_delay)


def build_client(module: AnsibleModule, credentials: Any = None, **overrides: Any) -> Any:
    """A CoinbaseClient from the task's options; InputError (naming the option) for a bad one."""
    params = module.params
    retry = retry_policy(params)  # validated even when overridden: a negative value is a mistake either way
    if overrides.get("retry") is not None:
        retry = overrides.pop("retry")
    options = dict(
        base_url=params["api_url"],
        timeout=params["timeout"],
        ca_bundle=params.get("ca_bundle"),
        validate_certs=params["validate_certs"],
        retry=retry,
        max_requests_per_second=params["max_requests_per_second"],
    )
    options.update(overrides)
    return client_mod.CoinbaseClient(credentials, **options)


def fail_coinbase(module: AnsibleModule, exc: CoinbaseError, client: Optional[Any] = None, msg: Optional[str] = None, **result: Any) -> None:
    """fail_json with the API's status and error, the attempts made, and a hint; never a key or token."""
    text = "%s: %s" % (msg, exc) if msg else str(exc)
    if client is not None:
        result.setdefault("requests", client.summary())
    module.fail_json(msg=redact(text), error=exc.to_dict(), **result)


def check_positive(module: AnsibleModule, **values: Any) -> None:
    """Refuse zero or negative numbers with a message naming the option."""
    for name, value in values.items():
        if value is not None and value <= 0:
            module.fail_json(msg="%s must be greater than 0, got %s." % (name, value))
