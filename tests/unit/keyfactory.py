"""Throwaway keys for unit tests: generated per test run, never committed."""

from __future__ import annotations

import base64
import json
import os
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def key_name() -> str:
    return "organizations/%s/apiKeys/%s" % (uuid.uuid4(), uuid.uuid4())


def ec_pem(curve=None) -> str:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def ed25519_key():
    return ed25519.Ed25519PrivateKey.generate()


def ed25519_pem(key=None) -> str:
    key = key or ed25519_key()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def ed25519_raw_b64(key=None, with_public=True) -> str:
    key = key or ed25519_key()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed + pub if with_public else seed).decode()


def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def write(path, text: str, mode: int = 0o600) -> str:
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return str(path)


def write_json_key(path, name: str, secret: str, field: str = "name", mode: int = 0o600) -> str:
    return write(path, json.dumps({field: name, "privateKey": secret}), mode)
