"""The double's own certificate authority and its server certificate.

The official SDK only speaks https, and fleet hosts must trust the double as if it were
``api.coinbase.com``. So the double keeps a local CA in a CA directory: generated once, reused
on every restart (hosts that trust it keep working), and a server certificate that is
re-issued only when the requested names change, the CA changed, or it nears expiry.

Files in the CA directory: ``ca.pem`` (distribute this), ``ca.key`` (0600), ``server.pem``,
``server.key`` (0600), ``server-sans.json`` (the names the server certificate was issued for).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import json
import os
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Names a fleet host or a test may use for the double. 10.88.0.1 is podman's default bridge
# gateway: the drill fleet reaches this machine there.
DEFAULT_SANS: tuple[str, ...] = (
    "api.coinbase.com",
    "advanced-trade-ws.coinbase.com",
    "advanced-trade-ws-user.coinbase.com",
    "localhost",
    "127.0.0.1",
    "10.88.0.1",
    "host.containers.internal",
)

CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class ServerCredentials:
    """Paths the TLS server and its clients need."""

    ca_path: Path
    cert_path: Path
    key_path: Path
    sans: tuple[str, ...]

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        # No TLS 1.3 session tickets: they arrive after the handshake, and a client that reads
        # in one thread while writing its HTTP request in another (websockets' sync client)
        # can lose that request to the race, about 1 connection in 100. Nothing here resumes
        # sessions anyway.
        context.num_tickets = 0
        return context


def requested_sans(extra: list[str] | tuple[str, ...] = ()) -> tuple[str, ...]:
    """The default names plus ``extra``, de-duplicated, order kept (stable comparisons)."""
    seen: dict[str, None] = {}
    for name in (*DEFAULT_SANS, *extra):
        name = name.strip()
        if name:
            seen.setdefault(name.lower() if not _is_ip(name) else name, None)
    return tuple(seen)


def ensure_server_credentials(ca_dir: Path, extra_sans: list[str] | tuple[str, ...] = ()) -> ServerCredentials:
    """Load or create the CA, and load or (re)issue the server certificate.

    Guarded by a lock file because parallel test processes may share one CA directory.
    """
    ca_dir.mkdir(parents=True, exist_ok=True)
    sans = requested_sans(extra_sans)
    with _locked(ca_dir / ".lock"):
        ca_key, ca_cert = _load_or_create_ca(ca_dir)
        cert_path, key_path = ca_dir / "server.pem", ca_dir / "server.key"
        if not _server_cert_is_current(ca_dir, ca_cert, sans):
            _issue_server_cert(ca_dir, ca_key, ca_cert, sans)
    return ServerCredentials(ca_dir / "ca.pem", cert_path, key_path, sans)


def ca_fingerprint(ca_path: Path) -> str:
    """SHA-256 fingerprint of a CA certificate (shown to operators, compared by tests)."""
    cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key with mode 0600 from the first byte (no window where it is 0644)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_or_create_ca(ca_dir: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    cert_path, key_path = ca_dir / "ca.pem", ca_dir / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not an EC private key")
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tradeops exchange double"),
            x509.NameAttribute(NameOID.COMMON_NAME, "exchange-double local CA"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _server_cert_is_current(ca_dir: Path, ca_cert: x509.Certificate, sans: tuple[str, ...]) -> bool:
    cert_path, key_path, sans_path = ca_dir / "server.pem", ca_dir / "server.key", ca_dir / "server-sans.json"
    if not (cert_path.exists() and key_path.exists() and sans_path.exists()):
        return False
    try:
        if tuple(json.loads(sans_path.read_text())) != sans:
            return False
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (ValueError, json.JSONDecodeError):
        return False
    if cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > RENEW_BEFORE


def _issue_server_cert(
    ca_dir: Path, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, sans: tuple[str, ...]
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    alt_names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in sans
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(ca_dir / "server.key", _key_pem(key))
    _write_public(ca_dir / "server.pem", cert.public_bytes(serialization.Encoding.PEM))
    _write_public(ca_dir / "server-sans.json", json.dumps(list(sans)).encode())
