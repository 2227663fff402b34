"""TLS between workers and their controller: end to end with local workers ("automatic" and
"custom" with a CA-signed chain), and the connections that must fail: a plain TCP peer, a
worker that does not trust the controller's certificate, a certificate for another host."""

import re

import crew
import pytest
from _certificates import Authority, self_signed_pem, write_key
from _crewfaults import eventually, pids_alive
from _peers import Peer, call_by_hand, gated_controller, open_gate

AUTOMATIC = crew.TLS(mode="automatic")


def test_automatic_tls_end_to_end(workers):
    controller = workers.controller(workers=2, tls=AUTOMATIC)
    with controller:
        assert controller.client.url.startswith("tls+tcp://127.0.0.1:")
        results = controller.map("index * 3", {"index": list(range(50))})
    assert [result.result for result in results] == [3 * index for index in range(50)]
    assert {result.pid for result in results} <= set(workers.pids)


def test_a_plain_tcp_peer_gets_no_challenge(workers, tmp_path):
    controller = gated_controller(workers, tmp_path, tls=AUTOMATIC)
    with Peer(controller.client.url.replace("tls+tcp://", "tcp://"), seconds=2) as peer:
        assert peer.recv() is None
    assert not peer.received
    open_gate(controller, tmp_path)


WRONG = {
    "another certificate": {"CREW_TLS_CERTIFICATE": self_signed_pem("127.0.0.1")},
    "no certificate": {},
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_a_worker_that_does_not_trust_the_certificate_cannot_connect(workers, tmp_path, case):
    controller = gated_controller(workers, tmp_path, tls=AUTOMATIC)
    environment = {"CREW_SECRET": controller.launcher.environment["CREW_SECRET"], **WRONG[case]}
    call = re.sub(r" --secret-file \S+", "", call_by_hand(controller, launch="by-hand"))  # the file holds the right one
    worker = workers.spawn(call.replace("--seconds-timeout 60", "--seconds-timeout 2"), environment)
    code = worker.wait(timeout=30)
    output = worker.stdout.read().decode()
    assert code == 3 and "no controller at tls+tcp://" in output, output  # it never got through
    assert controller.resolved() == 0 and controller.unresolved() == 3
    open_gate(controller, tmp_path)


def _custom(folder, hosts=("127.0.0.1",), password=None) -> crew.TLS:
    key, chain = Authority().issue(hosts)
    (folder / "chain.pem").write_bytes(chain)
    return crew.TLS(mode="custom", key=write_key(folder / "key.pem", key, password),
                    certificates=str(folder / "chain.pem"), password=password)


def test_custom_tls_with_a_ca_signed_chain(workers, tmp_path):
    controller = workers.controller(workers=1, tls=_custom(tmp_path))
    with controller:
        results = controller.map("index + 1", {"index": list(range(10))})
    assert [result.result for result in results] == list(range(1, 11))


def test_custom_tls_with_a_password_protected_key(workers, tmp_path):
    controller = workers.controller(workers=1, tls=_custom(tmp_path, password="open sesame"))
    with controller:
        results = controller.map("index + 1", {"index": list(range(3))})
    assert [result.result for result in results] == [1, 2, 3]


def test_custom_tls_names_a_wrong_password(tmp_path):
    _custom(tmp_path, password="open sesame")
    with pytest.raises(crew.SettingError, match="key .*password"):
        crew.TLS(mode="custom", key=str(tmp_path / "key.pem"), certificates=str(tmp_path / "chain.pem"),
                 password="open barley")


def test_custom_tls_rejects_a_key_that_does_not_match(tmp_path):
    _, chain = Authority().issue()
    other, _ = Authority().issue()
    (tmp_path / "chain.pem").write_bytes(chain)
    with pytest.raises(crew.SettingError, match="does not belong"):
        crew.TLS(mode="custom", key=write_key(tmp_path / "key.pem", other), certificates=str(tmp_path / "chain.pem"))


def test_a_certificate_for_another_host_is_refused(workers, tmp_path):
    """Workers check the controller's name: a certificate for example.org does not do for 127.0.0.1."""
    controller = workers.controller(workers=1, tls=_custom(tmp_path, hosts=("example.org",)), seconds_timeout=2)
    controller.start()
    controller.push("1", name="never")
    first = eventually(lambda: workers.processes, 30)[0]
    assert first.wait(timeout=30) != 0
    assert controller.resolved() == 0
    controller.terminate()
    assert not pids_alive(workers.pids) or eventually(lambda: not pids_alive(workers.pids), 30)
