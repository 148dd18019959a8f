"""Throwaway CDP-style API keys for tests and drills, and JWTs signed with them.

A generated key looks like one from the CDP portal: a name ``organizations/<uuid>/apiKeys/<uuid>``,
an ECDSA P-256 private key as SEC1 PEM (alg ES256) or an Ed25519 key as raw base64
``seed || public`` (64 bytes, alg EdDSA). Only the public half is ever registered with the
double. The JWT helpers exist so tests can mint tokens that are wrong in exactly one way
(expired, wrong uri, wrong key...) and check the double rejects each.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

KeyType = Literal["ec", "ed25519"]
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def new_key_name() -> str:
    """A key name in the form the CDP portal issues."""
    return f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"


@dataclass(slots=True)
class GeneratedKey:
    """A private key plus everything a test needs to register and use it."""

    name: str
    key_type: KeyType
    private_key: PrivateKey = field(repr=False)

    @property
    def algorithm(self) -> str:
        return "ES256" if self.key_type == "ec" else "EdDSA"

    @property
    def private_pem(self) -> str:
        """SEC1 PEM for EC (as CDP issues it), PKCS#8 PEM for Ed25519."""
        private_format = (
            serialization.PrivateFormat.TraditionalOpenSSL
            if self.key_type == "ec"
            else serialization.PrivateFormat.PKCS8
        )
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, private_format, serialization.NoEncryption()
        ).decode()

    @property
    def public_pem(self) -> str:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @property
    def raw_b64(self) -> str | None:
        """Ed25519 only: base64 of the 32-byte seed followed by the 32-byte public key."""
        if not isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return None
        seed = self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(seed + public).decode()

    @property
    def secret(self) -> str:
        """What goes in the SDK's ``api_secret``: PEM for EC, raw base64 for Ed25519."""
        return self.raw_b64 or self.private_pem

    def key_json(self, pem: bool = False) -> dict[str, str]:
        """The key file the CDP portal offers: ``name`` + PEM for EC, ``id`` + raw for Ed25519."""
        if self.key_type == "ec":
            return {"name": self.name, "privateKey": self.private_pem}
        return {"id": self.name, "privateKey": self.private_pem if pem else self.secret}

    def write_key_file(self, path: Path, pem: bool = False) -> Path:
        """Write the key file with mode 0600 from creation; refuse to overwrite."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(self.key_json(pem=pem), handle, indent=2)
            handle.write("\n")
        os.chmod(path, 0o600)
        return path

    def mint_jwt(
        self,
        uri: str | None = None,
        *,
        now: float | None = None,
        lifetime: int = 120,
        claims: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        signing_key: PrivateKey | None = None,
    ) -> str:
        """Mint a JWT shaped exactly like the official SDK's, with optional overrides.

        ``uri`` is ``"<METHOD> <host><path>"`` for REST and None for WebSocket. ``claims`` and
        ``headers`` replace or add fields (a value of None removes one); ``signing_key`` signs
        with a different key while keeping this key's name, to forge a bad signature.
        """
        issued = int(time.time() if now is None else now)
        payload: dict[str, Any] = {"sub": self.name, "iss": "cdp", "nbf": issued, "exp": issued + lifetime}
        if uri is not None:
            payload["uri"] = uri
        header: dict[str, Any] = {"kid": self.name, "nonce": secrets.token_hex()}
        for target, overrides in ((payload, claims), (header, headers)):
            for field_name, value in (overrides or {}).items():
                if value is None:
                    target.pop(field_name, None)
                else:
                    target[field_name] = value
        key = signing_key if signing_key is not None else self.private_key
        algorithm = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "EdDSA"
        return jwt.encode(payload, key, algorithm=algorithm, headers=header)


def generate_key(key_type: KeyType = "ec", name: str | None = None) -> GeneratedKey:
    """A fresh key pair of ``key_type`` ("ec" or "ed25519") named ``name`` (or a CDP-style name)."""
    private_key: PrivateKey
    if key_type == "ec":
        private_key = ec.generate_private_key(ec.SECP256R1())
    elif key_type == "ed25519":
        private_key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"unknown key type {key_type!r}; use 'ec' or 'ed25519'")
    return GeneratedKey(name=name or new_key_name(), key_type=key_type, private_key=private_key)
