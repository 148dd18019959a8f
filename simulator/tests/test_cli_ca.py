"""The command line and the CA: key files, registration, restarts, shutdown artefacts."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from exchange_double.ca import DEFAULT_SANS
from exchange_double.testing import DoubleHandle, running_double


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exchange_double", *args], capture_output=True, text=True, timeout=60)


def test_keygen_ec_writes_a_0600_key_file_and_prints_no_secret(tmp_path: Path) -> None:
    out = tmp_path / "key.json"
    result = cli("keygen", "--type", "ec", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key_file = json.loads(out.read_text())
    assert key_file["name"].startswith("organizations/") and "/apiKeys/" in key_file["name"]
    assert key_file["privateKey"].startswith("-----BEGIN " + "EC PRIVATE KEY-----")
    printed = result.stdout + result.stderr
    assert key_file["name"] in printed and "PRIVATE" not in printed
    assert key_file["privateKey"].splitlines()[1] not in printed
    public = Path(printed.split("public key: ")[1].strip())
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = cli("keygen", "--type", "ec", "--out", str(out))
    assert again.returncode == 1 and "refusing" in again.stderr


def test_keygen_ed25519_uses_the_portal_format_or_pem(tmp_path: Path) -> None:
    raw_out, pem_out = tmp_path / "raw.json", tmp_path / "pem.json"
    assert cli("keygen", "--type", "ed25519", "--out", str(raw_out), "--name", "my-ed-key").returncode == 0
    raw_file = json.loads(raw_out.read_text())
    assert raw_file["id"] == "my-ed-key" and "name" not in raw_file
    seed_and_public = base64.b64decode(raw_file["privateKey"])
    assert len(seed_and_public) == 64
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed_and_public[:32])
    assert private.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw) == seed_and_public[32:]
    assert cli("keygen", "--type", "ed25519", "--out", str(pem_out), "--pem").returncode == 0
    assert json.loads(pem_out.read_text())["privateKey"].startswith("-----BEGIN " + "PRIVATE KEY-----")
    assert stat.S_IMODE(pem_out.stat().st_mode) == 0o600


def test_register_key_cli_then_sign_with_the_key_file(tmp_path: Path, double: DoubleHandle) -> None:
    key_path = tmp_path / "ops.json"
    cli("keygen", "--type", "ec", "--out", str(key_path))
    key_file = json.loads(key_path.read_text())
    result = cli("register-key", "--url", double.url, "--ca", str(double.ca_path), "--name", key_file["name"],
                 "--public-key", f"{key_path}.pub.pem", "--permissions", "view")
    assert result.returncode == 0, result.stderr
    assert "ES256" in result.stdout and "view" in result.stdout and "trade" not in result.stdout
    private = serialization.load_pem_private_key(key_file["privateKey"].encode(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    path = "/api/v3/brokerage/key_permissions"
    now = int(time.time())
    token = jwt.encode({"sub": key_file["name"], "iss": "cdp", "nbf": now, "exp": now + 120,
                        "uri": f"GET localhost:{double.port}{path}"}, private, algorithm="ES256",
                       headers={"kid": key_file["name"], "nonce": "00"})
    context = ssl.create_default_context(cafile=str(double.ca_path))
    response = httpx.get(double.url + path, headers={"Authorization": f"Bearer {token}"}, verify=context)
    assert response.status_code == 200 and response.json()["can_trade"] is False
    unknown_ca = cli("register-key", "--url", double.url, "--ca", str(tmp_path / "missing.pem"),
                     "--name", "x", "--public-key", f"{key_path}.pub.pem")
    assert unknown_ca.returncode != 0


def _server_cert(port: int, ca_path: Path, hostname: str = "localhost") -> x509.Certificate:
    context = ssl.create_default_context(cafile=str(ca_path))
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with context.wrap_socket(raw, server_hostname=hostname) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_ca_is_reused_across_restarts_and_server_cert_follows_the_sans(tmp_path: Path) -> None:
    ca_dir = tmp_path / "shared-ca"
    with running_double(tmp_path / "one", ca_dir=ca_dir) as first:
        ca_one = first.ca_path.read_bytes()
        cert_one = _server_cert(first.port, first.ca_path)
    with running_double(tmp_path / "two", ca_dir=ca_dir) as second:
        assert second.ca_path.read_bytes() == ca_one
        assert _server_cert(second.port, second.ca_path) == cert_one  # same names: same certificate
    with running_double(tmp_path / "three", ca_dir=ca_dir, sans=["drill-gw.internal"]) as third:
        assert third.ca_path.read_bytes() == ca_one  # hosts that trust the CA keep working
        cert = _server_cert(third.port, third.ca_path, hostname="drill-gw.internal")
        assert cert != cert_one
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = set(names.get_values_for_type(x509.DNSName))
        ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
        assert {"drill-gw.internal", "api.coinbase.com", "advanced-trade-ws-user.coinbase.com"} <= dns
        assert {"127.0.0.1", "10.88.0.1"} <= ips
        assert set(DEFAULT_SANS) <= dns | ips
    assert stat.S_IMODE((ca_dir / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((ca_dir / "server.key").stat().st_mode) == 0o600


def test_ready_file_sigterm_and_snapshot(tmp_path: Path) -> None:
    with running_double(tmp_path, host="0.0.0.0") as handle:
        ready = json.loads((tmp_path / "ready.json").read_text())
        assert ready["url"] == handle.url and ready["port"] == handle.port and ready["pid"] == handle.process.pid
        assert Path(ready["ca_path"]) == handle.ca_path
        assert handle.host_for_fleet == "10.88.0.1"
        assert handle.fleet_base_url == f"https://api.coinbase.com:{handle.port}"
        handle.control.seed_orders(3)
        assert handle.stop() == 0
    output = handle.log_path.read_text()
    assert f"listening on {handle.url}" in output and str(handle.ca_path) in output
    snapshot = json.loads((handle.state_dir / "snapshot.json").read_text())
    assert snapshot["summary"]["orders_by_status"] == {"OPEN": 3} and len(snapshot["orders"]) == 3
    assert not (tmp_path / "ready.json").exists()


def test_startup_failure_is_reported(tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        try:
            with running_double(tmp_path, port=port, startup_timeout=10):
                raise AssertionError("the double started on a port in use")
        except RuntimeError as exc:
            assert "exited" in str(exc) and "Address already in use" in str(exc)
    finally:
        blocker.close()
