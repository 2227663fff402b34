"""Plugin discovery through the ``crew.launchers`` entry points, ``crew.controller(name)``, and
site configuration (/etc, then the user's file, then CREW_CONFIG; explicit arguments win)."""

import math
import subprocess
import sys
import textwrap

import crew
import pytest
from crew import discovery


@pytest.fixture
def config(tmp_path, monkeypatch):
    """Point the three configuration files into ``tmp_path``; return a writer for them."""
    system = tmp_path / "etc" / "crew.toml"
    user = tmp_path / "home" / "crew" / "crew.toml"
    monkeypatch.setattr(discovery, "SYSTEM_CONFIG", system)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CREW_CONFIG", raising=False)

    def write(which, text):
        path = {"system": system, "user": user}.get(which) or tmp_path / which
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        if which not in ("system", "user"):
            monkeypatch.setenv("CREW_CONFIG", str(path))
        return path

    return write


# ---------------------------------------------------------------------- entry points
def test_installed_lists_the_plugins_without_importing_them():
    code = ("import sys, crew; found = crew.discovery.installed(); "
            "print(sorted(found)); print([m for m in sys.modules if m.startswith('crew_')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    names, imported = out.splitlines()
    assert "local" in names
    assert imported == "[]"


def test_import_crew_imports_no_plugin():
    code = "import sys, crew; print([m for m in sys.modules if m.startswith('crew_')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_installed_entry_describes_its_package():
    local = discovery.installed()["local"]
    assert (local.distribution, local.value, local.version) == ("crew-local", "crew_local:plugin", crew.__version__)


def test_load_returns_the_plugin():
    import crew_local

    assert discovery.load("local") is crew_local.plugin


def test_a_missing_plugin_names_the_package_to_install():
    with pytest.raises(discovery.PluginNotFoundError, match=r"pip install crew-my-site") as caught:
        crew.controller("my_site")
    assert isinstance(caught.value, crew.CrewError) and isinstance(caught.value, LookupError)
    assert "local" in str(caught.value)  # says what is installed


def test_controller_builds_the_plugins_controller(config):
    controller = crew.controller("local", workers=3, seconds_idle=5)
    try:
        assert isinstance(controller, crew.Controller)
        assert type(controller.launcher).__name__ == "LocalLauncher"
        assert (controller.launcher.workers, controller.launcher.seconds_idle) == (3, 5)
    finally:
        controller.terminate()


def test_crew_controller_is_a_function_and_Controller_a_class():
    import inspect

    import crew.discovery

    assert crew.controller is crew.discovery.controller and inspect.isfunction(crew.controller)
    assert inspect.isclass(crew.Controller) and crew.Controller.__module__ == "crew._controller.controller"
    assert "controller" in crew.__all__ and "Controller" in crew.__all__


def test_controller_runs_tasks(config):
    with crew.controller("local", workers=1) as controller:
        assert controller.map(pow, iterate={"base": [2], "exp": [5]})[0].result == 32


def test_unknown_option_is_a_setting_error(config):
    with pytest.raises(crew.SettingError, match="'colour' is not an argument of local_controller"):
        crew.controller("local", colour="red")


# ---------------------------------------------------------------------- site configuration
def test_no_configuration_files(config):
    assert discovery.defaults("local") == {}


def test_files_are_read_in_order_and_explicit_arguments_win(config):
    system = config("system", """
        [defaults]
        seconds_idle = 100
        [launchers.local]
        workers = 2
        seconds_wall = 1000
        tasks_max = 50
    """)
    user = config("user", """
        [launchers.local]
        workers = 3
        seconds_wall = 2000
    """)
    override = config("override.toml", """
        [launchers.local]
        seconds_wall = 3000
    """)
    found = discovery.defaults("local")
    assert found == {
        "seconds_idle": (100, system),
        "workers": (3, user),
        "seconds_wall": (3000, override),
        "tasks_max": (50, system),
    }
    controller = crew.controller("local", tasks_max=7)
    try:
        launcher = controller.launcher
        assert (launcher.seconds_idle, launcher.workers, launcher.seconds_wall, launcher.tasks_max) == (100, 3, 3000, 7)
    finally:
        controller.terminate()


def test_defaults_of_other_launchers_do_not_apply(config):
    config("system", """
        [launchers.slurm]
        partition = "short"
    """)
    assert discovery.defaults("local") == {}
    controller = crew.controller("local")
    try:
        assert controller.launcher.seconds_idle == math.inf
    finally:
        controller.terminate()


@pytest.mark.parametrize("which, text, message", [
    ("user", '[launchers.local]\npartition = "short"\n', "{path}: 'partition' is not an argument of local_controller"),
    ("system", "[launchers.local]\nworkers = 0\n", "workers must be"),  # values: the plugin's own checks
    ("system", "[launchers.local\nworkers = 2\n", "{path} is not valid TOML"),
    ("user", "[launcher.local]\nworkers = 2\n", "{path}: unknown section"),
    ("user", "launchers = 3\n", "{path}: \\[launchers\\] must hold one table per launcher"),
])
def test_bad_configuration_is_reported(config, which, text, message):
    path = config(which, text)
    with pytest.raises(crew.SettingError, match=message.format(path=path)):
        crew.controller("local")


def test_crew_config_must_exist(config, monkeypatch, tmp_path):
    monkeypatch.setenv("CREW_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(crew.SettingError, match="CREW_CONFIG names"):
        discovery.defaults("local")


def test_user_file_under_home_without_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("CREW_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert discovery.config_paths() == [discovery.SYSTEM_CONFIG, tmp_path / ".config" / "crew" / "crew.toml"]


def test_monitor_defaults(config):
    config("system", """
        [monitors.slurm]
        job_name = "crew-lab"
        seconds_timeout = 5
    """)
    pytest.importorskip("crew_slurm")
    monitor = discovery.monitor("slurm", seconds_timeout=9)
    assert (monitor.job_name, monitor.seconds_timeout) == ("crew-lab", 9)
    with pytest.raises(crew.SettingError, match="'colour' is not an argument of SlurmMonitor"):
        discovery.monitor("slurm", colour="red")
