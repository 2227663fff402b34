"""tools/nox.py, the README's first command: a virtualenv for nox made from nothing but python3,
also on a Python without ensurepip (stock Debian), where pip's wheel comes from the package index.

The index is a stand-in on 127.0.0.1 serving the pip wheel this Python bundles."""

import hashlib
import http.server
import importlib.util
import json
import pathlib
import subprocess
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _bundled_pip():
    import ensurepip

    wheels = sorted((pathlib.Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    if not wheels:
        pytest.fail("this Python bundles no pip wheel")
    return wheels[-1]


@pytest.fixture
def index():
    """A package index's JSON API with one project, pip; yields (url, served) where served lists the paths asked."""
    wheel = _bundled_pip()
    data = wheel.read_bytes()
    state = {"sha256": hashlib.sha256(data).hexdigest(), "served": []}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            state["served"].append(self.path)
            if self.path == "/pypi/pip/json":
                host = f"http://127.0.0.1:{server.server_port}"
                body = json.dumps({"urls": [{"filename": wheel.name, "url": f"{host}/files/{wheel.name}",
                                             "digests": {"sha256": state["sha256"]}}]}).encode()
            elif self.path == f"/files/{wheel.name}":
                body = data
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/pypi", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _load(monkeypatch, url):
    monkeypatch.setenv("CREW_BOOTSTRAP_INDEX", url)
    monkeypatch.setenv("CREW_BOOTSTRAP_NO_ENSUREPIP", "1")
    spec = importlib.util.spec_from_file_location("crew_tools_nox", ROOT / "tools" / "nox.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_virtualenv_without_ensurepip_gets_pip_from_the_index(monkeypatch, tmp_path, index):
    url, state = index
    bootstrap = _load(monkeypatch, url)
    python = bootstrap.ensure(tmp_path / "venv", [])
    assert state["served"][0] == "/pypi/pip/json" and state["served"][1].startswith("/files/pip-")
    done = subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and str(tmp_path / "venv") in done.stdout
    # A second run reuses the virtualenv: nothing more is fetched.
    served = len(state["served"])
    assert bootstrap.ensure(tmp_path / "venv", []) == python and len(state["served"]) == served


def test_a_wheel_that_does_not_match_the_index_is_refused(monkeypatch, tmp_path, index):
    url, state = index
    state["sha256"] = "0" * 64
    bootstrap = _load(monkeypatch, url)
    with pytest.raises(SystemExit, match="does not match the index's SHA-256"):
        bootstrap.ensure(tmp_path / "venv", [])
    assert not (tmp_path / "venv" / "bin" / "pip").exists()


def test_readme_commands_use_it():
    readme = (ROOT / "README.md").read_text()
    assert "python3 tools/nox.py -s demo" in readme and "bash tests/run.sh" in readme
    assert "pip install nox" not in readme
    assert "tools/nox.py" in (ROOT / "tests" / "run.sh").read_text()
