"""crew.TLS settings and crew.Client: where a controller listens, and the errors when it cannot."""

import datetime
import ipaddress
import os
import socket

import crew
import psutil
import pytest
from crew_local import local_controller


# ---------------------------------------------------------------------------- TLS settings
def test_tls_default_is_plain():
    tls = crew.TLS()
    assert tls.mode == "none" and not tls.enabled


def test_tls_automatic_is_enabled():
    assert crew.TLS(mode="automatic").enabled


def test_tls_rejects_unknown_mode():
    with pytest.raises(crew.SettingError, match=r"^mode must be one of 'none', 'automatic', 'custom'"):
        crew.TLS(mode="on")


def test_tls_custom_needs_key_and_certificates():
    with pytest.raises(crew.SettingError, match="^key must be"):
        crew.TLS(mode="custom")
    with pytest.raises(crew.SettingError, match="^certificates must be"):
        crew.TLS(mode="custom", key=__file__)


def test_tls_custom_needs_existing_files(tmp_path):
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(crew.SettingError, match="^key must name a readable PEM file"):
        crew.TLS(mode="custom", key=missing, certificates=__file__)


def test_tls_files_only_with_custom():
    with pytest.raises(crew.SettingError, match="mode='custom'"):
        crew.TLS(mode="automatic", key=__file__, certificates=__file__)


def test_tls_password_must_be_text():
    with pytest.raises(crew.SettingError, match="^password must be"):
        crew.TLS(password=1234)


def _write_certificate(folder) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 as PEM files; returns (key path, certificate path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)  # datetime.UTC is 3.11+
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, certificate_path = os.path.join(folder, "key.pem"), os.path.join(folder, "cert.pem")
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(certificate_path, "wb") as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, certificate_path


@pytest.mark.parametrize("mode", ["automatic", "custom"])
def test_tasks_run_over_tls(mode, tmp_path):
    if mode == "custom":
        key, certificates = _write_certificate(tmp_path)
        tls = crew.TLS(mode="custom", key=key, certificates=certificates)
    else:
        tls = crew.TLS(mode="automatic")
    with local_controller(tls=tls) as controller:
        assert controller.client.url.startswith("tls+tcp://127.0.0.1:")
        assert set(controller.launcher.environment) == {"CREW_SECRET", "CREW_TLS_CERTIFICATE"}
        assert "BEGIN CERTIFICATE" in controller.launcher.environment["CREW_TLS_CERTIFICATE"]
        assert controller.launcher.environment["CREW_TLS_CERTIFICATE"] not in controller.launcher.call()
        controller.push("6 * 7", name="answer")
        assert controller.wait(seconds_timeout=30)
        result = controller.pop()
    assert (result.status, result.result) == ("success", 42), result


# ---------------------------------------------------------------------------- Client
def _loopback_interface() -> str:
    """The name of the interface that holds 127.0.0.1, as psutil reports it (``lo`` on Linux)."""
    for name, entries in psutil.net_if_addrs().items():
        if any(entry.family == socket.AF_INET and entry.address == "127.0.0.1" for entry in entries):
            return name
    pytest.skip("no interface holds 127.0.0.1")


@pytest.fixture
def started():
    """Start clients and stop them after the test."""
    clients = []

    def start(**options):
        client = crew.Client(**options)
        clients.append(client)
        client.start()
        return client

    yield start
    for client in clients:
        client.stop()


def test_client_resolves_an_interface_name(started):
    client = started(host=_loopback_interface())
    assert client.url == f"tcp://127.0.0.1:{client.port}"
    assert client.port > 0


@pytest.mark.parametrize("host, address", [("127.0.0.1", "127.0.0.1"), ("localhost", "127.0.0.1"), ("::1", "[::1]")])
def test_client_listens_on_an_address_or_host_name(started, host, address):
    client = started(host=host, port=0)
    assert client.url == f"tcp://{address}:{client.port}"


def test_client_default_host_is_the_first_non_loopback_address():
    client = crew.Client()
    assert client.host is None  # resolved when it starts; nothing listens on other networks here
    first = crew.client.local_address()
    addresses = [entry.address for entries in psutil.net_if_addrs().values() for entry in entries
                 if entry.family == socket.AF_INET and not entry.address.startswith("127.")]
    assert first == (addresses[0] if addresses else "127.0.0.1")


def test_client_rejects_an_unknown_host_listing_the_interfaces():
    client = crew.Client(host="no-such-interface-or-host.invalid")
    with pytest.raises(crew.SettingError) as caught:
        client.start()
    message = str(caught.value)
    assert message.startswith("host must be") and "'no-such-interface-or-host.invalid'" in message
    assert _loopback_interface() in message
    assert not client.started


def test_client_port_in_use_names_the_port(started):
    first = started(host="127.0.0.1")
    second = crew.Client(host="127.0.0.1", port=first.port)
    with pytest.raises(crew.CrewError, match=f"port {first.port} is already in use"):
        second.start()
    assert not second.started


def test_controller_start_reports_a_port_in_use(started):
    first = started(host="127.0.0.1")
    controller = local_controller(port=first.port)
    with pytest.raises(crew.CrewError, match=f"port {first.port} is already in use"):
        controller.start()
    controller.terminate()


@pytest.mark.parametrize("option, value", [("port", -1), ("port", 70000), ("port", "5555"), ("host", ""),
                                           ("seconds_interval", 0), ("seconds_timeout", -1), ("tls", "automatic"),
                                           ("serializer", "no_such_module_for_crew")])
def test_client_rejects_bad_settings(option, value):
    with pytest.raises(crew.SettingError, match=f"^{option} must"):
        crew.Client(**{option: value})


def test_client_url_needs_a_started_client():
    with pytest.raises(crew.CrewError, match="not started"):
        _ = crew.Client(host="127.0.0.1").url


def test_client_stop_is_idempotent():
    client = crew.Client(host="127.0.0.1")
    client.start()
    port = client.port
    client.stop()
    client.stop()
    assert not client.started
    with socket.socket() as probe:  # the port is free again
        probe.bind(("127.0.0.1", port))
