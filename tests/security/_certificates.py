"""Keys and certificates made in the tests with ``cryptography``: a CA, certificates it signs,
self-signed ones, written as PEM files."""

from __future__ import annotations

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Authority", "self_signed_pem", "write_key"]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alternative(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _certificate(subject: str, hosts, public_key, issuer: x509.Name, signer, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_alternative(h) for h in hosts]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


class Authority:
    """A certificate authority that issues server certificates."""

    def __init__(self, name: str = "crew test CA"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = _certificate(name, (), self.key.public_key(), _name(name), self.key, ca=True)

    def issue(self, hosts=("127.0.0.1",)) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
        """A new key and its certificate chain (leaf then this CA) as PEM."""
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = _certificate(hosts[0], hosts, key.public_key(), self.certificate.subject, self.key, ca=False)
        return key, _pem(leaf) + _pem(self.certificate)


def self_signed_pem(host: str = "127.0.0.1") -> str:
    """A self-signed certificate for ``host`` (of a key nobody keeps) as PEM text."""
    key = ec.generate_private_key(ec.SECP256R1())
    return _pem(_certificate(host, (host,), key.public_key(), _name(host), key, ca=True)).decode()


def write_key(path: str | os.PathLike, key, password: str | None = None) -> str:
    """Write ``key`` as PKCS#8 PEM (encrypted with ``password`` if given); return the path."""
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    with open(path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return os.fspath(path)
