"""``crew new-plugin``: the package it writes installs, registers its entry point, and passes its
own tests (the conformance suite included) before anyone changes a line."""

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import crew
import crew.testing
import pytest
from crew import scaffold


def test_names():
    assert scaffold.names("my_cluster") == {
        "name": "my_cluster",
        "Name": "MyCluster",
        "dist": "crew-my-cluster",
        "module": "crew_my_cluster",
        "crew_version": crew.__version__,
    }


@pytest.mark.parametrize("bad", ["", "Big", "with-dash", "9lives", "class", "local", "core", None, "a b"])
def test_bad_names_are_refused(bad):
    with pytest.raises(crew.SettingError, match="plugin name"):
        scaffold.render(bad)


def test_rendered_files():
    files = scaffold.render("mysite")
    assert sorted(files) == [
        "README.md",
        "pyproject.toml",
        "src/crew_mysite/__init__.py",
        "src/crew_mysite/controller.py",
        "src/crew_mysite/launcher.py",
        "src/crew_mysite/monitor.py",
        "tests/test_conformance.py",
        "tests/test_plugin.py",
    ]
    for path, text in files.items():
        assert "$" not in text.replace("${", ""), path  # nothing left unsubstituted
        if path.endswith(".py"):
            compile(text, path, "exec")


def test_rendered_pyproject_exact():
    assert scaffold.render("mysite")["pyproject.toml"] == f"""\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "crew-mysite"
version = "0.1.0"
description = "crew launcher plugin: workers on mysite."
readme = "README.md"
requires-python = ">=3.9"
license = "MIT"
dependencies = ["crew-core=={crew.__version__}", "plumbum>=1.8", "psutil>=5.9"]

[project.optional-dependencies]
test = ["pytest>=7", "tomli>=1.1; python_version < '3.11'"]

[project.entry-points."crew.launchers"]
mysite = "crew_mysite:plugin"

[tool.hatch.build.targets.wheel]
packages = ["src/crew_mysite"]
"""


def test_rendered_conformance_test_exact():
    assert scaffold.render("mysite")["tests/test_conformance.py"] == '''\
"""crew-mysite passes the conformance kit that every crew launcher plugin runs."""

import crew.testing
from crew_mysite import MysiteMonitor, mysite_controller


class TestMysiteConformance(crew.testing.ControllerSuite):
    seconds_timeout = 60

    def make_controller(self, **options):
        return mysite_controller(**options)

    def make_monitor(self):
        return MysiteMonitor()
'''


_LOCAL = pathlib.Path(__file__).resolve().parents[1] / "packages" / "crew-local" / "src" / "crew_local"


@pytest.mark.parametrize("part", ["launcher", "controller", "monitor"])
def test_templates_are_crew_locals_own_files(part):
    """Rendered for the name ``local``, the launcher, controller and monitor templates are
    crew-local's files byte for byte: a change to either must be made to both."""
    rendered = scaffold.render_names(scaffold.names("local", check=False))
    assert rendered[f"src/crew_local/{part}.py"] == (_LOCAL / f"{part}.py").read_text()


def test_names_check_can_be_skipped_only_on_request():
    with pytest.raises(crew.SettingError, match="plugin name"):
        scaffold.names("local")
    assert scaffold.names("local", check=False)["Name"] == "Local"


def test_templates_ship_as_package_data():
    """The templates are files of the installed crew package (hatchling puts src/crew/ in the wheel)."""
    folder = pathlib.Path(crew.__file__).parent / "_templates"
    assert sorted(path.name for path in folder.iterdir() if path.suffix == ".tmpl") == sorted(scaffold.FILES.values())


def test_rendered_helper_takes_the_launchers_options():
    text = scaffold.render("mysite")["src/crew_mysite/controller.py"]
    assert "controller_helper(\n    MysiteLauncher," in text and 'name="mysite_controller"' in text


def test_existing_folder_is_kept(tmp_path):
    target = scaffold.new_plugin("kept", tmp_path)
    (target / "NOTES.md").write_text("mine")
    with pytest.raises(crew.CrewError, match="already exists"):
        scaffold.new_plugin("kept", tmp_path)
    scaffold.new_plugin("kept", tmp_path, force=True)
    assert (target / "NOTES.md").read_text() == "mine"


def _pip_install_target(source, target):
    """Build and install ``source`` (not editable, no dependencies) into the folder ``target``,
    with pip, or with uv where the environment has no pip (a uv-made virtualenv)."""
    if importlib.util.find_spec("pip") is not None:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    elif shutil.which("uv"):
        command = [shutil.which("uv"), "pip", "install", "--quiet", "--python", sys.executable]
    else:
        pytest.fail("neither pip nor uv is available to install a package")
    command += ["--no-deps", "--target", str(target), str(source)]
    if importlib.util.find_spec("hatchling") is not None:
        command.append("--no-build-isolation")  # build offline with the hatchling at hand
    subprocess.run(command, check=True, timeout=300)


def test_generated_plugin_installs_registers_and_passes_its_tests(tmp_path):
    source = scaffold.new_plugin("scaffolded", tmp_path / "packages")
    site = tmp_path / "site"
    _pip_install_target(source, site)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))

    listed = subprocess.run([sys.executable, "-m", "crew", "launchers"], env=env, capture_output=True,
                            text=True, timeout=60, check=True).stdout
    assert any(line.split()[:2] == ["scaffolded", "crew-scaffolded"] for line in listed.splitlines()), listed

    code = ("import crew\n"
            "with crew.controller('scaffolded', workers=1) as c:\n"
            "    print(type(c.launcher).__name__, c.map(pow, iterate={'base': [3], 'exp': [3]})[0].result)\n")
    ran = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["ScaffoldedLauncher", "27"]

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    kit = [name for name in dir(crew.testing.ControllerSuite) if name.startswith("test_")]
    assert len(kit) >= 7, kit  # the kit's checks, then the plugin's own three
    assert f"{len(kit) + 3} passed" in tests.stdout, tests.stdout[-2000:]


# ---------------------------------------------------------------------- docs/site-launchers.md
_DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "site-launchers.md"
_TITLED = re.compile(r'^```(\w+) title="([^"]+)"\n(.*?)^```', re.DOTALL | re.MULTILINE)
_CONSOLE = re.compile(r"^```console\n\$ (crew config[^\n]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _doc_files():
    """The files the page shows, by their title."""
    return {title: text for _, title, text in _TITLED.findall(_DOC.read_text())}


def _slurm_settings(controller):
    launcher = controller.launcher
    return {key: getattr(launcher, key) for key in ("partition", "account", "time_minutes", "script_lines",
                                                    "seconds_idle")}


def test_site_configuration_as_documented(tmp_path, monkeypatch, capsys):
    pytest.importorskip("crew_slurm")
    from crew import cli, discovery

    files = _doc_files()
    system = tmp_path / "etc" / "crew.toml"
    user = tmp_path / "config" / "crew" / "crew.toml"
    for path, title in ((system, "/etc/crew/crew.toml"), (user, "~/.config/crew/crew.toml")):
        path.parent.mkdir(parents=True)
        path.write_text(files[title])
    monkeypatch.setattr(discovery, "SYSTEM_CONFIG", system)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CREW_CONFIG", raising=False)

    controller = crew.controller("slurm", workers=8)
    assert _slurm_settings(controller) == {
        "partition": "long", "account": "physics", "time_minutes": 60,
        "script_lines": ["module load python/3.11"], "seconds_idle": 300,
    }
    assert crew.controller("slurm", workers=8, account="bio").launcher.account == "bio"

    command, shown = _CONSOLE.search(_DOC.read_text()).groups()
    assert cli.main(command.split()[1:]) == 0
    printed = capsys.readouterr().out
    expected = shown.replace("/home/ada/.config/crew/crew.toml", str(user)).replace("/etc/crew/crew.toml", str(system))
    assert printed == expected


def test_site_launcher_package_as_documented(tmp_path):
    pytest.importorskip("crew_slurm")
    files = {title: text for title, text in _doc_files().items() if title.startswith("crew-mysite/")}
    assert sorted(files) == ["crew-mysite/pyproject.toml", "crew-mysite/src/crew_mysite/__init__.py"]
    for title, text in files.items():
        (tmp_path / title).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / title).write_text(text)
    site = tmp_path / "site"
    _pip_install_target(tmp_path / "crew-mysite", site)
    config = tmp_path / "project.toml"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "no-config"),
               PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("CREW_CONFIG", None)

    listed = subprocess.run([sys.executable, "-m", "crew", "launchers"], env=env, capture_output=True,
                            text=True, timeout=60, check=True).stdout
    assert any(line.split() == ["mysite", "crew-mysite", "0.1.0", "crew_mysite:plugin"] for line in listed.splitlines())

    def script(code, **extra):
        ran = subprocess.run([sys.executable, "-c", "import crew\n" + code], env=dict(env, **extra),
                             capture_output=True, text=True, timeout=60, check=False)
        assert ran.returncode == 0, ran.stderr
        return ran.stdout.splitlines()

    lines = script('print(crew.controller("mysite", workers=4).launcher.script(n=4))')
    for line in ("#SBATCH --array=1-4", "#SBATCH --partition=short", "#SBATCH --account=physics",
                 "module load python/3.11", "export OMP_NUM_THREADS=1"):
        assert line in lines, lines
    config.write_text('[launchers.mysite]\npartition = "long"\n')
    lines = script('print(crew.controller("mysite").launcher.script())', CREW_CONFIG=str(config))
    assert "#SBATCH --partition=long" in lines and "#SBATCH --account=physics" in lines
    lines = script('print(crew.controller("mysite", partition="gpu").launcher.script())', CREW_CONFIG=str(config))
    assert "#SBATCH --partition=gpu" in lines
    config.write_text('[launchers.mysite]\npartiton = "long"\n')
    ran = subprocess.run([sys.executable, "-c", 'import crew; crew.controller("mysite")'],
                         env=dict(env, CREW_CONFIG=str(config)), capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 1 and "'partiton' is not an argument of slurm_controller" in ran.stderr
