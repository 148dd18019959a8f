# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every failure the Coinbase client raises.

Messages say what failed, why, and what to do. They carry the API's status and error body,
never key material or a token (bodies are passed through ``redact`` first).
"""

from __future__ import annotations

import re
from typing import Any, Optional

# A JWT is three base64url parts; PEM blocks are obvious. Either must never reach a message.
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_PEM_RE = re.compile(r"-----BEGIN [A-Z ]+-----.*?(-----END [A-Z ]+-----|$)", re.S)
_BEARER_RE = re.compile(r"(Bearer\s+)\S+", re.I)
# Webhook URLs are credentials (whoever has one can post): a Slack hook's path is its secret.
_SLACK_HOOK_RE = re.compile(r"https?://hooks\.slack\.com/(services|workflows|triggers)/[^\s\"'<>]+", re.I)
# user:password@ in any URL.
_URL_USERINFO_RE = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
# Query parameters named like secrets: token=, api_key=, routing_key=, sig=, signature=, secret=, password=.
_SECRET_PARAM_RE = re.compile(r"([?&;][A-Za-z0-9_.-]*(?:token|key|sig|signature|secret|password|passwd))=[^&;#\s\"'<>]+", re.I)


def redact(text: Any) -> Any:
    """Remove anything that looks like a token, a private key or a webhook secret from a string (or leave non-strings).

    By content: PEM blocks, JWTs, bearer tokens, Slack webhook URLs, ``user:password@`` in URLs
    and secret-named query parameters (``token=``, ``key=``, ``sig=``, ``signature=``,
    ``secret=``, ``password=``, also with a prefix such as ``api_key=``).
    """
    if not isinstance(text, str):
        return text
    text = _PEM_RE.sub("[REDACTED KEY]", text)
    text = _JWT_RE.sub("[REDACTED TOKEN]", text)
    text = _BEARER_RE.sub(r"\1[REDACTED]", text)
    text = _SLACK_HOOK_RE.sub("https://hooks.slack.com/[REDACTED]", text)
    text = _URL_USERINFO_RE.sub(r"\1[REDACTED]@", text)
    return _SECRET_PARAM_RE.sub(r"\1=[REDACTED]", text)


class CoinbaseError(Exception):
    """Base class. ``to_dict()`` is safe to return from a module."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        error: Optional[str] = None,
        details: Optional[str] = None,
        body: Any = None,
        attempts: Optional[list] = None,
        hint: Optional[str] = None,
        method: Optional[str] = None,
        path: Optional[str] = None,
    ) -> None:
        super().__init__(redact(message))
        self.message = redact(message)
        self.status = status
        self.error = redact(error)
        self.details = redact(details)
        self.body = redact(body) if isinstance(body, str) else body
        self.attempts = attempts or []
        self.hint = hint
        self.method = method
        self.path = path

    def __str__(self) -> str:
        parts = [self.message]
        if self.hint:
            parts.append(self.hint)
        return " ".join(parts)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "message": self.message,
            "status": self.status,
            "error": self.error,
            "details": self.details,
            "hint": self.hint,
            "method": self.method,
            "path": self.path,
        }


class InputError(CoinbaseError):
    """Bad arguments given to the client (not the API's doing)."""

    kind = "input"


class CredentialError(CoinbaseError):
    """The key is missing, unreadable, of the wrong type, malformed, or stored unsafely."""

    kind = "credentials"


class TransportError(CoinbaseError):
    """The API could not be reached: DNS, connection refused, timeout, TLS."""

    kind = "unreachable"


class AuthenticationError(CoinbaseError):
    """HTTP 401. Coinbase does not say why: expired or future token, wrong or revoked key, bad signature."""

    kind = "unauthenticated"


class PermissionDeniedError(CoinbaseError):
    """HTTP 403; ``missing_scopes`` when the body says "Missing required scopes"."""

    kind = "forbidden"

    def __init__(self, message: str, *, missing_scopes: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.missing_scopes = missing_scopes

    def to_dict(self) -> dict:
        data = super().to_dict()
        data["missing_scopes"] = self.missing_scopes
        return data


class RateLimitedError(CoinbaseError):
    """HTTP 429 after every retry."""

    kind = "rate_limited"


class ServerError(CoinbaseError):
    """HTTP 5xx after every retry."""

    kind = "server_error"


class RequestRejectedError(CoinbaseError):
    """Any other 4xx: the request itself is wrong (bad argument, unknown resource)."""

    kind = "rejected"


class BusinessRejectError(CoinbaseError):
    """HTTP 200 with ``success: false``: the exchange refused the action and said why."""

    kind = "business_reject"
