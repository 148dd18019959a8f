"""Bad key files for the bad-input tests (generated per run, never committed)."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def _pem(key, fmt):
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def write_bad_keys(directory) -> dict:
    rsa_pem = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048), serialization.PrivateFormat.PKCS8)
    ec_pem = _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.TraditionalOpenSSL)
    files = {}
    for name, text, mode in (("rsa", rsa_pem, 0o600), ("malformed", ec_pem[:150], 0o600), ("world_readable", ec_pem, 0o644)):
        path = os.path.join(str(directory), name + ".pem")
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, mode)
        files[name] = (path, text)
    files["missing"] = (None, None)
    files["no_such_file"] = (os.path.join(str(directory), "absent.pem"), None)
    return files


@pytest.fixture
def bad_keys(tmp_path):
    return write_bad_keys(tmp_path)
