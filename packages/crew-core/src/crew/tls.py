"""TLS settings for the connection between a controller and its workers."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field

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
    password: str | None = field(default=None, repr=False)  # never printed

    def __post_init__(self) -> None:
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
        if self.mode == "custom":
            _check_pair(*self._custom_files(), self.password)

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def _materials(self, host: str) -> tuple[str, str]:
        """(private key PEM, certificate PEM) for the controller's listener."""
        if self.mode == "custom":
            key_path, certificates_path = self._custom_files()
            with open(key_path) as handle:
                key = handle.read()
            with open(certificates_path) as handle:
                cert = handle.read()
            return key, cert
        return _self_signed(host)

    def _custom_files(self) -> tuple[str, str]:
        """(key path, certificates path) of ``mode="custom"``, which ``__post_init__`` made sure are set."""
        assert self.key is not None and self.certificates is not None
        return self.key, self.certificates


def _check_pair(key_path: str, certificates_path: str, password: str | None) -> None:
    """Fail early, naming the argument, when the key cannot be read or does not belong to the
    first certificate, or that certificate is not valid now."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(key_path, "rb") as handle:
        key_bytes = handle.read()
    with open(certificates_path, "rb") as handle:
        cert_bytes = handle.read()
    try:
        key = serialization.load_pem_private_key(key_bytes, password=password.encode() if password else None)
    except (TypeError, ValueError) as error:
        raise SettingError(f"key {key_path!r} cannot be read (wrong or missing password?): {error}") from None
    try:
        leaf = x509.load_pem_x509_certificates(cert_bytes)[0]
    except ValueError as error:
        raise SettingError(f"certificates {certificates_path!r} holds no PEM certificate: {error}") from None
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise SettingError(f"key {key_path!r} does not belong to the first certificate in certificates={certificates_path!r}")
    now = datetime.datetime.now(datetime.timezone.utc)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise SettingError(
            f"certificates: the first certificate in {certificates_path!r} is valid from "
            f"{leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d}, not now"
        )


def _self_signed(host: str) -> tuple[str, str]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    alt: x509.GeneralName
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
