"""TLS settings for the connection between a controller and its workers."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

from . import validate
from .errors import SettingError

__all__ = ["TLS"]


@dataclass(frozen=True)
class TLS:
    """How workers and the controller encrypt their connection.

    Arguments:
        mode: ``"none"`` (plain TCP; tasks are still authenticated by the controller's secret),
            ``"automatic"`` (a fresh self-signed certificate per controller, which workers
            verify) or ``"custom"`` (your own key and certificate files).
        key: with ``"custom"``, the path of the PEM private key.
        certificates: with ``"custom"``, the path of the PEM certificate (chain).
        password: with ``"custom"``, the key's password, if it has one.
    """

    mode: str = "none"
    key: str | None = None
    certificates: str | None = None
    password: str | None = None

    def __post_init__(self):
        validate.choice("mode", self.mode, ("none", "automatic", "custom"))
        if self.mode == "custom":
            object.__setattr__(self, "key", validate.path("key", self.key))
            object.__setattr__(self, "certificates", validate.path("certificates", self.certificates))
            for name in ("key", "certificates"):
                if not os.path.isfile(getattr(self, name)):
                    raise SettingError(f"{name} must name a readable PEM file, not {getattr(self, name)!r}")
        elif self.key is not None or self.certificates is not None:
            raise SettingError(f"key and certificates go with mode='custom', not mode={self.mode!r}")
        validate.text("password", self.password, allow_none=True, allow_empty=True)

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def _materials(self, host: str) -> tuple[str, str]:
        """(private key PEM, certificate PEM) for the controller's listener."""
        if self.mode == "custom":
            with open(self.key) as handle:
                key = handle.read()
            with open(self.certificates) as handle:
                cert = handle.read()
            return key, cert
        return _self_signed(host)


def _self_signed(host: str) -> tuple[str, str]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        alt = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()
