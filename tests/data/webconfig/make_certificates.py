"""Make the certificates and keys this directory's web config files name (run from anywhere).

Written here with ``cryptography``, valid until 2126 so the checked-in copies do not expire:
a CA (``tls-ca-chain.pem``) and the server certificate it signed for localhost and 127.0.0.1
(``server.crt``, ``server.key``, RSA because the files' cipher suites are ECDHE_RSA ones), and
two self-signed client certificates: ``client_selfsigned`` and ``client2_selfsigned`` (whose
SANs are DNS ``test3``, e-mail ``test3@example.net`` and URI ``spiffe://example.net/test3``).
``web_config_noAuth_tlsInline.good.yml`` is rewritten with the server certificate and key
inline. These keys protect nothing: they exist only for the tests.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = Path(__file__).resolve().parent
START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
END = datetime.datetime(2126, 1, 1, tzinfo=datetime.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _builder(subject: str, issuer: str,
             public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(START).not_valid_after(END))


def main() -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (_builder("clevertap-export-exporter test CA", "clevertap-export-exporter test CA",
                   ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    (HERE / "tls-ca-chain.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = (_builder("localhost", "clevertap-export-exporter test CA", server_key.public_key())
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.SubjectAlternativeName([
                  x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                  critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    server_pem = server.public_bytes(serialization.Encoding.PEM)
    (HERE / "server.crt").write_bytes(server_pem)
    (HERE / "server.key").write_bytes(_pem_key(server_key))

    for stem, sans in (("client_selfsigned", []),
                       ("client2_selfsigned", [x509.DNSName("test3"),
                                               x509.RFC822Name("test3@example.net"),
                                               x509.UniformResourceIdentifier(
                                                   "spiffe://example.net/test3")])):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (_builder(stem, stem, key.public_key())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(key, hashes.SHA256())
        (HERE / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (HERE / f"{stem}.key").write_bytes(_pem_key(key))

    def indented(data: bytes) -> str:
        return "".join(f"    {line}\n" for line in data.decode().splitlines())

    (HERE / "web_config_noAuth_tlsInline.good.yml").write_text(
        "# server.crt and server.key of this directory, inline\n"
        "tls_server_config:\n  cert: |\n" + indented(server_pem)
        + "  key: |\n" + indented(_pem_key(server_key))
        + '  client_auth_type: "VerifyClientCertIfGiven"\n')


if __name__ == "__main__":
    main()
