"""Certificates, bcrypt hashes and web config files made at test time, for the tests of HTTPS,
client certificates and basic_auth_users (the ``pki`` fixture is in ``tests/conftest.py``)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Pki:
    """A test CA with a server certificate for 127.0.0.1/localhost and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(directory: Path, stem: str, subject: str, issuer: tuple[x509.Name, Key] | None,
          *, ca: bool = False, server: bool = False) -> tuple[Path, Path, Key]:
    """A certificate and key for ``subject``, self-signed when ``issuer`` is None, written to
    ``directory/stem.crt`` and ``.key``; valid from 5 minutes ago for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_name, issuer_key = issuer or (name(subject), key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path, key


def make_pki(directory: Path) -> Pki:
    ca_cert, _, ca_key = issue(directory, "ca", "test CA", None, ca=True)
    issuer = (name("test CA"), ca_key)
    server_cert, server_key, _ = issue(directory, "server", "localhost", issuer, server=True)
    client_cert, client_key, _ = issue(directory, "client", "prometheus", issuer)
    return Pki(ca_cert, server_cert, server_key, client_cert, client_key)


def hashed(password: str, *, prefix: str = "$2b$") -> str:
    """A bcrypt hash at the lowest cost (fast tests), optionally in htpasswd's ``$2y$`` form."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode().replace(
        "$2b$", prefix, 1)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "web-config.yml"
    path.write_text(text)
    return path
