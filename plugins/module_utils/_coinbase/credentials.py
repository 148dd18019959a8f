# -*- coding: utf-8 -*-
# Copyright: TradeOps engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Loading and checking CDP API keys.

Accepted, as the official SDK (1.8.4) accepts them:
- ECDSA P-256 PEM (SEC1 ``EC PRIVATE KEY`` or PKCS#8 ``PRIVATE KEY``) -> ES256
- Ed25519 PKCS#8 PEM, or raw base64 of 32 bytes (seed) or 64 bytes (seed + public key) -> EdDSA
- a CDP key JSON file: ``name`` (or ``id`` in newer Ed25519 files) and ``privateKey``
Literal ``\\n`` sequences in a PEM string (as Ansible variables and env files often carry
them) become newlines. Every refusal names the problem; none repeats the key.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from typing import Any, Mapping, Optional

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by module.py through missing_required_lib
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc

from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import (
    CredentialError,
)

ENV_KEY_NAME = "COINBASE_CDP_API_KEY"
ENV_KEY_PATH = "COINBASE_CDP_PRIVATE_KEY_PATH"

_KEY_FILE_MAX_BYTES = 64 * 1024  # a key file is a few hundred bytes; refuse to slurp anything big


class Credentials:
    """A loaded key. ``repr`` and ``describe()`` never show the private key."""

    def __init__(self, key_name: str, private_key: Any, source: str) -> None:
        self.key_name = key_name
        self._private_key = private_key
        self.source = source
        if isinstance(private_key, ed25519.Ed25519PrivateKey):
            self.algorithm = "EdDSA"
            self.key_type = "ed25519"
        else:
            self.algorithm = "ES256"
            self.key_type = "ecdsa-p256"

    @property
    def private_key(self) -> Any:
        return self._private_key

    def public_key_pem(self) -> str:
        return (
            self._private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    def describe(self) -> dict:
        return {
            "key_name": self.key_name,
            "key_type": self.key_type,
            "algorithm": self.algorithm,
            "source": self.source,
        }

    def __repr__(self) -> str:
        return "Credentials(key_name=%r, key_type=%r, source=%r)" % (self.key_name, self.key_type, self.source)


def _require_cryptography() -> None:
    if not HAS_CRYPTOGRAPHY:
        raise CredentialError(
            "The Python library 'cryptography' is not installed on the controller.",
            hint="Install the collection's requirements.txt (pip install -r requirements.txt).",
        )


def _check_key_name(key_name: Any) -> str:
    if not isinstance(key_name, str) or not key_name.strip():
        raise CredentialError(
            "No API key name was given.",
            hint="Set api_key_name (or %s) to the key's name, e.g. organizations/<org>/apiKeys/<id>." % ENV_KEY_NAME,
        )
    key_name = key_name.strip()
    if any(c.isspace() for c in key_name) or key_name.startswith("-----BEGIN"):
        raise CredentialError(
            "The API key name is not a key name (it contains whitespace or looks like key material).",
            hint="api_key_name takes the key's name; the private key goes in private_key or private_key_path.",
        )
    return key_name


def _describe_unsupported(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "an RSA key; Coinbase CDP keys are ECDSA P-256 (ES256) or Ed25519 (EdDSA)"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "an EC key on curve %s; Coinbase CDP ECDSA keys use P-256 (secp256r1)" % key.curve.name
    return "a %s key; Coinbase CDP keys are ECDSA P-256 (ES256) or Ed25519 (EdDSA)" % type(key).__name__


def parse_private_key(material: str, where: str) -> Any:
    """Turn PEM or raw-base64 text into a signing key, or raise CredentialError naming the problem."""
    _require_cryptography()
    text = material.replace("\\r", "").replace("\\n", "\n").strip()
    if not text:
        raise CredentialError("The private key from %s is empty." % where)
    if text.startswith("-----BEGIN"):
        if "ENCRYPTED" in text.split("\n", 1)[0]:
            raise CredentialError(
                "The private key from %s is encrypted with a passphrase." % where,
                hint="Store it decrypted with mode 0400/0600 (and in Ansible Vault or an AWX credential).",
            )
        if "-----END" not in text:
            raise CredentialError(
                "The private key from %s is not a complete PEM block (no END line): it looks truncated." % where,
                hint="Copy the whole key, from -----BEGIN to -----END.",
            )
        try:
            key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
        except TypeError:
            raise CredentialError("The private key from %s is encrypted with a passphrase." % where) from None
        except (ValueError, UnicodeError):
            raise CredentialError(
                "The private key from %s is malformed PEM: it could not be parsed (truncated or corrupted?)." % where,
                hint="Download the key again from the CDP portal or restore it from the secrets store.",
            ) from None
        except Exception:  # cryptography raises UnsupportedAlgorithm for exotic key types
            raise CredentialError("The private key from %s is of a type that cannot be loaded." % where) from None
    else:
        try:
            raw = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise CredentialError(
                "The private key from %s is neither PEM nor base64." % where,
                hint="Give an ECDSA P-256 PEM, an Ed25519 PEM, or the Ed25519 base64 secret from the CDP portal.",
            ) from None
        if len(raw) not in (32, 64):
            raise CredentialError(
                "The base64 private key from %s decodes to %d bytes; an Ed25519 key is 32 or 64 bytes." % (where, len(raw)),
                hint="It may be truncated: copy the whole secret.",
            )
        key = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise CredentialError("The private key from %s is %s." % (where, _describe_unsupported(key)))


def read_key_file(path: str, check_mode_bits: bool = True) -> str:
    """Read a key file after checking it is a regular file readable only by its owner (SOP: 400/600)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CredentialError("The key file %s does not exist." % path) from None
    except PermissionError:
        raise CredentialError("The key file %s cannot be read: permission denied." % path) from None
    except OSError as exc:
        raise CredentialError("The key file %s cannot be read: %s." % (path, exc.strerror)) from None
    if not stat.S_ISREG(info.st_mode):
        raise CredentialError("The key file %s is not a regular file." % path)
    if check_mode_bits and info.st_mode & 0o077:
        raise CredentialError(
            "The key file %s has mode %04o: other users can read it." % (path, stat.S_IMODE(info.st_mode)),
            hint="A key that others can read must be treated as leaked. Run: chmod 600 %s (the SOP allows 400 or 600)." % path,
        )
    if info.st_size > _KEY_FILE_MAX_BYTES:
        raise CredentialError("The key file %s is %d bytes: that is not a key file." % (path, info.st_size))
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except PermissionError:
        raise CredentialError("The key file %s cannot be read: permission denied." % path) from None
    except UnicodeDecodeError:
        raise CredentialError("The key file %s is not text (binary content)." % path) from None
    except OSError as exc:
        raise CredentialError("The key file %s cannot be read: %s." % (path, exc.strerror)) from None


def _parse_key_json(text: str, where: str) -> tuple:
    try:
        data = json.loads(text)
    except ValueError:
        raise CredentialError("The key file %s is not valid JSON." % where) from None
    if not isinstance(data, dict):
        raise CredentialError("The key file %s is JSON but not an object with name and privateKey." % where)
    name = data.get("name") or data.get("id")
    secret = data.get("privateKey")
    if not isinstance(secret, str) or not secret.strip():
        raise CredentialError("The key file %s has no privateKey field." % where)
    return name, secret


def load_credentials(
    key_name: Optional[str] = None,
    private_key: Optional[str] = None,
    private_key_path: Optional[str] = None,
    key_file: Optional[str] = None,
    check_file_mode: bool = True,
) -> Credentials:
    """Load a key from exactly one source.

    ``key_file`` is a CDP JSON key file (name or id, and privateKey). ``private_key_path`` is a
    PEM or base64 file (a JSON key file there is accepted too). ``private_key`` is the material
    itself (PEM, possibly with literal ``\\n``, or base64).
    """
    _require_cryptography()
    given = [n for n, v in (("private_key", private_key), ("private_key_path", private_key_path), ("key_file", key_file)) if v]
    if not given:
        raise CredentialError(
            "No private key was given.",
            hint="Set private_key_path (or %s), key_file, or private_key (from a vault or an AWX credential)." % ENV_KEY_PATH,
        )
    if len(given) > 1:
        raise CredentialError("Give only one of %s, not %s." % (", ".join(("private_key", "private_key_path", "key_file")), " and ".join(given)))

    file_name = None
    if private_key:
        material, where, source = private_key, "private_key", "option"
    else:
        path = private_key_path or key_file
        text = read_key_file(path, check_mode_bits=check_file_mode)
        where, source = path, path
        if text.lstrip().startswith("{"):
            file_name, material = _parse_key_json(text, path)
        elif key_file:
            raise CredentialError("The key file %s is not a CDP JSON key file (name and privateKey)." % path)
        else:
            material = text

    if file_name and key_name and file_name.strip() != key_name.strip():
        raise CredentialError(
            "The key name given (%s) is not the name in the key file %s (%s)." % (key_name, where, file_name),
            hint="Remove api_key_name, or point to the right key file.",
        )
    name = _check_key_name(file_name or key_name)
    return Credentials(name, parse_private_key(material, where), source)


def credentials_from_env(environ: Optional[Mapping[str, str]] = None, check_file_mode: bool = True) -> Credentials:
    """The SOP's variables: COINBASE_CDP_API_KEY and COINBASE_CDP_PRIVATE_KEY_PATH (a PEM, base64 or CDP JSON key file)."""
    env = os.environ if environ is None else environ
    return load_credentials(
        key_name=env.get(ENV_KEY_NAME) or None,
        private_key_path=env.get(ENV_KEY_PATH) or None,
        check_file_mode=check_file_mode,
    )
