"""API keys and JWT verification, the way Coinbase checks a CDP key.

Coinbase never tells the client *why* a JWT was refused (every failure is a bare 401
``Unauthorized``), which makes drills hard to debug. The double keeps the same outward
behaviour but records the precise reason in its request log (``auth_error``), never the token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from exchange_double.clock import Clock
from exchange_double.config import DoubleConfig

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

# Scopes a key can have, as the CDP portal names them and /key_permissions reports them.
SCOPES = ("view", "trade", "transfer")


class AuthError(Exception):
    """A JWT or key was refused; ``reason`` goes to the request log, never to the client."""

    def __init__(self, reason: str, claimed_key: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.claimed_key = claimed_key


@dataclass(slots=True)
class ApiKey:
    """A registered key: its public half, its scopes and the one portfolio it may touch."""

    name: str
    public_pem: str
    public_key: PublicKey = field(repr=False)
    can_view: bool
    can_trade: bool
    can_transfer: bool
    portfolio_uuid: str
    revoked: bool = False
    created_at: float = field(default_factory=time.time)

    @property
    def algorithm(self) -> str:
        return "ES256" if isinstance(self.public_key, ec.EllipticCurvePublicKey) else "EdDSA"

    def has_scope(self, scope: str) -> bool:
        return {"view": self.can_view, "trade": self.can_trade, "transfer": self.can_transfer}[scope]

    def describe(self) -> dict[str, Any]:
        """What the control API shows about a key (public material only)."""
        return {
            "name": self.name,
            "algorithm": self.algorithm,
            "public_key_pem": self.public_pem,
            "can_view": self.can_view,
            "can_trade": self.can_trade,
            "can_transfer": self.can_transfer,
            "portfolio_uuid": self.portfolio_uuid,
            "revoked": self.revoked,
        }


def load_public_key(pem: str) -> PublicKey:
    """Load a P-256 or Ed25519 public key from PEM; anything else is a ValueError."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from exc
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ValueError("unsupported key type: use ECDSA P-256 (ES256) or Ed25519 (EdDSA)")


class KeyRegistry:
    """Registered keys by name. Revocation keeps the key so it can be un-revoked in a drill."""

    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}

    def register(
        self,
        name: str,
        public_pem: str,
        *,
        can_view: bool,
        can_trade: bool,
        can_transfer: bool,
        portfolio_uuid: str,
    ) -> ApiKey:
        """Add a key, or replace the key of that name (re-registering changes its scopes)."""
        if not name.strip():
            raise ValueError("key name must not be empty")
        key = ApiKey(
            name=name,
            public_pem=public_pem,
            public_key=load_public_key(public_pem),
            can_view=can_view,
            can_trade=can_trade,
            can_transfer=can_transfer,
            portfolio_uuid=portfolio_uuid,
        )
        self._keys[name] = key
        return key

    def get(self, name: str) -> ApiKey | None:
        return self._keys.get(name)

    def set_revoked(self, name: str, revoked: bool) -> ApiKey:
        key = self._require(name)
        key.revoked = revoked
        return key

    def delete(self, name: str) -> None:
        self._require(name)
        del self._keys[name]

    def all(self) -> list[ApiKey]:
        return list(self._keys.values())

    def clear(self) -> None:
        self._keys.clear()

    def _require(self, name: str) -> ApiKey:
        key = self._keys.get(name)
        if key is None:
            raise KeyError(name)
        return key


class JwtVerifier:
    """Checks a bearer JWT against the registered keys and the exchange's clock."""

    def __init__(self, registry: KeyRegistry, clock: Clock, config: DoubleConfig) -> None:
        self._registry = registry
        self._clock = clock
        self._config = config

    def verify(self, token: str, accepted_uris: set[str] | None) -> ApiKey:
        """Return the key that signed ``token``, or raise AuthError.

        ``accepted_uris`` is the set of ``uri`` claims that match this REST request; None
        means a WebSocket JWT, which carries no ``uri``.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed JWT: {exc}") from exc
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("JWT header has no kid")
        key = self._registry.get(kid)
        if key is None:
            raise AuthError("unknown key (kid is not registered)", kid)
        if key.revoked:
            raise AuthError("key is revoked", kid)
        if header.get("alg") != key.algorithm:
            raise AuthError(f"alg {header.get('alg')!r} does not match the key ({key.algorithm})", kid)
        try:
            # Time claims are checked below against the exchange clock, not the host clock.
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[key.algorithm],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "require": ["sub", "iss", "nbf", "exp"],
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise AuthError("bad signature", kid) from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid JWT: {exc}", kid) from exc
        self._check_claims(claims, kid, accepted_uris)
        return key

    def _check_claims(self, claims: dict[str, Any], kid: str, accepted_uris: set[str] | None) -> None:
        if claims.get("sub") != kid:
            raise AuthError("sub does not equal kid", kid)
        if claims.get("iss") != "cdp":
            raise AuthError(f"iss is {claims.get('iss')!r}, expected 'cdp'", kid)
        nbf, exp = claims.get("nbf"), claims.get("exp")
        if not isinstance(nbf, (int, float)) or not isinstance(exp, (int, float)):
            raise AuthError("nbf/exp are not numbers", kid)
        if exp <= nbf:
            raise AuthError("exp is not after nbf", kid)
        if exp - nbf > self._config.jwt_max_lifetime:
            raise AuthError(f"lifetime {exp - nbf}s exceeds {self._config.jwt_max_lifetime}s", kid)
        now, leeway = self._clock.now(), self._config.jwt_leeway
        if nbf > now + leeway:
            raise AuthError(f"not valid yet (nbf is {nbf - now:.1f}s ahead of the exchange clock)", kid)
        if exp <= now - leeway:
            raise AuthError(f"expired {now - exp:.1f}s ago by the exchange clock", kid)
        if accepted_uris is not None:
            uri = claims.get("uri")
            if uri not in accepted_uris:
                raise AuthError(f"uri claim {uri!r} does not match the request", kid)


def rest_uris(method: str, host_header: str, paths: set[str]) -> set[str]:
    """The ``uri`` claims that match a request: with and without the Host header's port.

    The SDK signs ``<host>[:port]`` from its base URL, and clients that sign the bare
    ``api.coinbase.com`` while connecting to a port must also pass.
    """
    host = host_header.strip().lower()
    hosts = {host}
    if host.startswith("["):
        bare = host.split("]")[0] + "]"
    else:
        bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    hosts.add(bare)
    return {f"{method.upper()} {h}{p}" for h in hosts for p in paths}
