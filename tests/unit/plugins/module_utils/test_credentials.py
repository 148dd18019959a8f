"""Key loading: every accepted format, and every refusal names the problem without echoing the key."""

from __future__ import annotations

import builtins

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import keyfactory as kf
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.credentials import (
    credentials_from_env,
    load_credentials,
)
from ansible_collections.tradeops.incident_response.plugins.module_utils._coinbase.errors import CredentialError


def assert_no_key_material(exc: Exception, secret: str) -> None:
    text = str(exc) + repr(exc.to_dict())
    body = "".join(line for line in secret.splitlines() if not line.startswith("-----"))
    assert body[:24] not in text
    assert "PRIVATE KEY-----" not in text


def test_ec_pem_file_gives_es256(tmp_path):
    name = kf.key_name()
    creds = load_credentials(key_name=name, private_key_path=kf.write(tmp_path / "k.pem", kf.ec_pem()))
    assert (creds.key_name, creds.algorithm, creds.key_type) == (name, "ES256", "ecdsa-p256")
    assert "PRIVATE" not in repr(creds) and "PRIVATE" not in str(creds.describe())


def test_ed25519_pem_gives_eddsa():
    creds = load_credentials(key_name=kf.key_name(), private_key=kf.ed25519_pem())
    assert (creds.algorithm, creds.key_type) == ("EdDSA", "ed25519")


@pytest.mark.parametrize("with_public", [True, False], ids=["64-byte", "32-byte"])
def test_ed25519_raw_base64_uses_the_seed(with_public):
    key = kf.ed25519_key()
    creds = load_credentials(key_name="c7a1d0e2-bare-uuid", private_key=kf.ed25519_raw_b64(key, with_public))
    assert creds.public_key_pem() == load_credentials(key_name="x", private_key=kf.ed25519_pem(key)).public_key_pem()


def test_literal_backslash_n_in_pem_is_accepted():
    pem = kf.ec_pem().replace("\n", "\\n")
    assert load_credentials(key_name="k", private_key=pem).algorithm == "ES256"


@pytest.mark.parametrize("field", ["name", "id"])
def test_cdp_json_key_file_name_or_id(tmp_path, field):
    name = kf.key_name()
    path = kf.write_json_key(tmp_path / "cdp_api_key.json", name, kf.ec_pem(), field=field)
    creds = load_credentials(key_file=path)
    assert creds.key_name == name and creds.source == path


def test_json_key_file_also_accepted_as_private_key_path(tmp_path):
    name = kf.key_name()
    path = kf.write_json_key(tmp_path / "k.json", name, kf.ed25519_raw_b64())
    assert load_credentials(private_key_path=path).key_name == name


def test_key_name_that_contradicts_the_key_file_is_refused(tmp_path):
    path = kf.write_json_key(tmp_path / "k.json", kf.key_name(), kf.ec_pem())
    with pytest.raises(CredentialError, match="not the name in the key file"):
        load_credentials(key_name="organizations/other/apiKeys/other", key_file=path)


def test_env_uses_the_sop_variable_names(tmp_path):
    name = kf.key_name()
    path = kf.write(tmp_path / "k.pem", kf.ec_pem(), 0o400)
    creds = credentials_from_env({"COINBASE_CDP_API_KEY": name, "COINBASE_CDP_PRIVATE_KEY_PATH": path})
    assert creds.key_name == name


@pytest.mark.parametrize(
    "make_secret, expected",
    [
        (kf.rsa_pem, "an RSA key"),
        (lambda: kf.ec_pem(ec.SECP384R1()), "curve secp384r1"),
        (lambda: kf.ec_pem()[:120], "truncated"),
        (lambda: kf.ec_pem().replace("-----END EC PRIVATE KEY-----", "") + "-----END EC PRIVATE KEY-----".replace("EC", "XX"), "malformed PEM"),
        (lambda: "not a key at all!", "neither PEM nor base64"),
        (lambda: "QUJDRA==", "decodes to 4 bytes"),
    ],
    ids=["rsa", "p384", "truncated", "corrupt", "garbage", "short-base64"],
)
def test_wrong_keys_are_refused_with_the_reason_and_without_the_key(make_secret, expected):
    secret = make_secret()
    with pytest.raises(CredentialError) as info:
        load_credentials(key_name="k", private_key=secret)
    assert expected in str(info.value)
    assert_no_key_material(info.value, secret)


def test_encrypted_pem_is_refused():
    from cryptography.hazmat.primitives import serialization

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"passphrase")).decode()
    with pytest.raises(CredentialError, match="encrypted"):
        load_credentials(key_name="k", private_key=pem)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_readable_by_others_is_refused(tmp_path, mode):
    secret = kf.ec_pem()
    path = kf.write(tmp_path / "k.pem", secret, mode)
    with pytest.raises(CredentialError) as info:
        load_credentials(key_name="k", private_key_path=path)
    assert "%04o" % mode in str(info.value) and "chmod 600" in str(info.value)
    assert_no_key_material(info.value, secret)


@pytest.mark.parametrize("mode", [0o400, 0o600])
def test_sop_modes_are_accepted(tmp_path, mode):
    assert load_credentials(key_name="k", private_key_path=kf.write(tmp_path / "k.pem", kf.ec_pem(), mode))


def test_missing_and_unreadable_files(tmp_path, monkeypatch):
    with pytest.raises(CredentialError, match="does not exist"):
        load_credentials(key_name="k", private_key_path=str(tmp_path / "nope.pem"))
    with pytest.raises(CredentialError, match="not a regular file"):
        load_credentials(key_name="k", private_key_path=str(tmp_path))
    path = kf.write(tmp_path / "k.pem", kf.ec_pem())
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if str(file) == path:
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    with pytest.raises(CredentialError, match="permission denied"):
        load_credentials(key_name="k", private_key_path=path)


def test_no_key_or_two_sources_or_no_name(tmp_path):
    with pytest.raises(CredentialError, match="No private key"):
        load_credentials(key_name="k")
    with pytest.raises(CredentialError, match="only one"):
        load_credentials(key_name="k", private_key=kf.ec_pem(), key_file=str(tmp_path / "x"))
    with pytest.raises(CredentialError, match="No API key name"):
        load_credentials(private_key=kf.ec_pem())


def test_key_material_given_as_key_name_is_refused_without_echo():
    secret = kf.ec_pem()
    with pytest.raises(CredentialError) as info:
        load_credentials(key_name=secret, private_key=kf.ec_pem())
    assert_no_key_material(info.value, secret)
