"""docs/launcher-plugins.md keeps its promises (issues #12 and #17): it leads with the minimal
launcher, its settings table is the helpers' common arguments, and it covers what plugin authors
missed. (tests/test_docs.py runs its examples.)"""

import pathlib
import re

from crew import scaffold
from crew._build import COMMON_OPTIONS

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "launcher-plugins.md").read_text()
MINIMAL = """class CustomLauncher(crew.Launcher):
    def launch_worker(self, call):
        return subprocess.Popen(shlex.split(call))
"""


def _section(title: str) -> str:
    start = GUIDE.index(f"\n## {title}\n")
    following = GUIDE.find("\n## ", start + 1)
    return GUIDE[start:following if following != -1 else None]


def test_the_guide_leads_with_the_minimal_launcher_and_tests_it():
    first = GUIDE.index("```python")
    assert GUIDE.index(MINIMAL) > first and GUIDE.index(MINIMAL) < GUIDE.index("```python", first + 1)
    smallest = _section("The smallest launcher")
    for name in ("informal_test(controller)", "load_test(controller)", "terminate_workers", "exit_status",
                 "queued", "monitor", "crew.controller_helper", "ControllerSuite"):
        assert name in smallest, name


def test_the_settings_table_is_the_common_arguments_in_order():
    rows = re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)?(?:, `([a-z_]+)`)? \|", _section("The controller helper"), re.M)
    listed = [name for row in rows for name in row if name]
    assert listed == list(COMMON_OPTIONS)
    assert "max_frame_bytes" in _section("The controller helper")


def test_the_gaps_of_issue_17_are_closed():
    for claim in (
        "`pid` | the worker's process id",  # Instance.pid and Instance.host documented
        "`host` | the host name",
        "shared_filesystem = False",
        "`KEY=value` lines",
        "CREW_TLS_CERTIFICATE",
        "multi-line PEM",
        "standard input",  # platforms that forward no environment (SSH)
        "env={**os.environ,",  # Popen's env replaces the environment
        "keeps trying for\n  `seconds_timeout`",  # not "exits at once"
        "`log(id)`",
        "raise `crew.CrewError`",
        "crew.LaunchError",
    ):
        assert claim in GUIDE, claim
    assert "at once when its controller goes away" not in GUIDE
    assert "added to this process's own" not in GUIDE
    assert "from crew._build import controller_helper" not in GUIDE


def test_the_scaffold_writes_the_one_line_helper():
    text = scaffold.render("mysite")["src/crew_mysite/controller.py"]
    assert text.count("controller_helper(") == 1 and "build_controller" not in text
