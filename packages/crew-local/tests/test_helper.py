"""local_controller is made by crew's controller_helper from LocalLauncher: one declaration per
option, a real signature, unknown arguments refused by name, and a defaults hook."""

import inspect
import math

import crew
import pytest
from crew._build import COMMON_OPTIONS, controller_helper
from crew_local import LocalLauncher, local_controller


def test_signature_is_the_union_in_a_stable_order_with_real_defaults():
    parameters = inspect.signature(local_controller).parameters
    assert list(parameters) == [*COMMON_OPTIONS, "log_directory"]
    assert parameters["log_directory"].kind is inspect.Parameter.KEYWORD_ONLY
    assert all(parameters[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for name in COMMON_OPTIONS)
    defaults = {name: item.default for name, item in parameters.items()}
    assert defaults["host"] == "127.0.0.1"  # the helper's default (Client's is None)
    assert defaults["seconds_launch"] == 30.0  # LocalLauncher's declaration, over crew.Launcher's 60
    assert (defaults["seconds_idle"], defaults["crashes_max"], defaults["port"]) == (math.inf, 5, None)
    assert inspect.signature(LocalLauncher).parameters["seconds_launch"].default == 30.0


def test_unknown_argument_names_itself_and_the_helper():
    with pytest.raises(crew.SettingError, match="'colour' is not an argument of local_controller"):
        local_controller(colour="red")


def test_positional_arguments_keep_their_places():
    controller = local_controller("positional", 3)
    assert (controller.launcher.name, controller.launcher.workers) == ("positional", 3)
    with pytest.raises(TypeError, match="local_controller"):
        local_controller(*range(len(COMMON_OPTIONS) + 1))


def test_options_reach_their_parts(tmp_path):
    controller = local_controller(workers=2, seconds_timeout=9, crashes_max=1, log_directory=tmp_path, port=0)
    assert (controller.launcher.workers, controller.launcher.seconds_timeout) == (2, 9)
    assert (controller.client.seconds_timeout, controller.crashes_max) == (9, 1)
    assert controller.launcher.log_directory == str(tmp_path)
    with pytest.raises(crew.SettingError, match="log_directory"):
        local_controller(log_directory=42)


def test_defaults_hook_changes_one_default_and_is_checked():
    helper = controller_helper(LocalLauncher, name="idle_controller", defaults={"seconds_idle": 300})
    assert inspect.signature(helper).parameters["seconds_idle"].default == 300
    assert helper().launcher.seconds_idle == 300
    assert (helper.__name__, helper.__module__, helper.launcher) == ("idle_controller", __name__, LocalLauncher)
    with pytest.raises(crew.SettingError, match="'seconds_idel'"):
        controller_helper(LocalLauncher, name="typo_controller", defaults={"seconds_idel": 300})


def test_docstring_names_each_option_and_its_class():
    doc = local_controller.__doc__
    assert doc.startswith("A validated controller (not started)")
    for owner, option in [("LocalLauncher", "log_directory"), ("crew.client.Client", "serializer"),
                          ("crew.launcher.Launcher", "tasks_timers")]:
        assert owner in doc and f"``{option}``" in doc
    assert "Controller" in doc and "``crashes_max``" in doc
