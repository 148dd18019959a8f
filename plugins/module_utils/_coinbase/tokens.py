# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""JWTs exactly as the official SDK (coinbase-advanced-py 1.8.4) makes them.

Header: ``alg`` (ES256 or EdDSA), ``kid`` (key name), ``nonce`` (64 hex chars), ``typ`` (JWT,
added by PyJWT). Claims: ``sub`` (key name), ``iss`` = ``cdp``, ``nbf`` = now, ``exp`` = now +
120, and for REST only ``uri`` = ``"<METHOD> <host><path>"`` (no scheme, no query string).
Mint one per request: Coinbase documents a fresh token per request, valid two minutes.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Optional
from urllib.parse import urlsplit

try:
    import jwt

    HAS_PYJWT = True
    PYJWT_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by module.py through missing_required_lib
    HAS_PYJWT = False
    PYJWT_IMPORT_ERROR = exc

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    CredentialError,
    InputError,
)

TOKEN_LIFETIME_SECONDS = 120
ISSUER = "cdp"


def signing_host(api_url: Optional[str]) -> Optional[str]:
    """The host a REST token for ``api_url`` names in its ``uri`` claim: the host name, with the
    port only when it is not the scheme's default (as the SDK signs it); None without a host.

    ``https://api.coinbase.com`` and ``https://api.coinbase.com:443`` give ``api.coinbase.com``;
    ``https://localhost:8443`` gives ``localhost:8443``. ValueError for a port that is not a number.
    """
    parts = urlsplit(api_url or "")
    if not parts.hostname:
        return None
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port
    return parts.hostname if port in (None, default_port) else "%s:%d" % (parts.hostname, port)


def rest_uri(method: str, host: str, path: str) -> str:
    """The ``uri`` claim: method, host (with port if the base URL has one, as the SDK signs it), path without query."""
    return "%s %s%s" % (method.upper(), host, path.split("?", 1)[0])


def _mint(credentials: Any, uri: Optional[str], now: Optional[float]) -> str:
    if not HAS_PYJWT:
        raise CredentialError(
            "The Python library 'PyJWT' is not installed on the controller.",
            hint="Install the collection's requirements.txt (pip install -r requirements.txt).",
        )
    issued = int(time.time() if now is None else now)
    claims = {"sub": credentials.key_name, "iss": ISSUER, "nbf": issued, "exp": issued + TOKEN_LIFETIME_SECONDS}
    if uri:
        claims["uri"] = uri
    return jwt.encode(
        claims,
        credentials.private_key,
        algorithm=credentials.algorithm,
        headers={"kid": credentials.key_name, "nonce": secrets.token_hex()},
    )


def build_rest_jwt(credentials: Any, method: str, host: str, path: str, now: Optional[float] = None) -> str:
    """A token for one REST request, e.g. ``build_rest_jwt(creds, "GET", "api.coinbase.com", "/api/v3/brokerage/accounts")``."""
    if not method or not host or not path.startswith("/"):
        raise InputError("A REST token needs a method, a host and a path starting with '/'.")
    if "://" in host:
        raise InputError("The host of a REST token has no scheme: give api.coinbase.com, not https://api.coinbase.com.")
    return _mint(credentials, rest_uri(method, host, path), now)


def build_ws_jwt(credentials: Any, now: Optional[float] = None) -> str:
    """A token for a WebSocket subscribe message (no ``uri`` claim)."""
    return _mint(credentials, None, now)


def decode_unverified(token: str, now: Optional[float] = None) -> dict:
    """Read a token's header and claims without checking the signature (SOP 1, step 1: check expiry).

    Returns ``header``, ``claims``, ``expires_in`` (seconds, negative when expired),
    ``not_before_in`` and ``expired``; never the signature.
    """
    if not HAS_PYJWT:
        raise CredentialError("The Python library 'PyJWT' is not installed on the controller.")
    token = (token or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": False, "verify_nbf": False})
    except jwt.PyJWTError:
        raise InputError(
            "The token is not a well-formed JWT (three base64url parts with a JSON header and claims).",
            hint="Pass the token itself, or 'Bearer <token>'.",
        ) from None
    current = time.time() if now is None else now
    exp = claims.get("exp")
    nbf = claims.get("nbf")
    return {
        "header": header,
        "claims": claims,
        "expires_in": _seconds_from(exp, current),
        "not_before_in": _seconds_from(nbf, current),
        "expired": bool(_is_number(exp) and exp <= current),
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds_from(value: Any, current: float) -> Optional[float]:
    """``value - current`` for a numeric claim; None when absent, not a number, or too large for a float (exp: 1e400)."""
    if not _is_number(value):
        return None
    try:
        return value - current
    except OverflowError:
        return None
