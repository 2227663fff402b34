"""The ``crew`` command: installed launchers, their workers and logs, the demo, a plugin skeleton.

Run ``crew --help`` (or ``python -m crew --help``). Exit codes: 0 success, 1 the command failed
(its reason on stderr), 2 the command line was wrong, 130 interrupted.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from . import discovery
from .errors import CrewError, SettingError

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_EPILOG = """\
examples:
  crew launchers
  crew workers --launcher slurm
  crew workers --launcher slurm -o job_name=crew-analysis --json
  crew terminate --launcher slurm 1234_1 1234_2
  crew terminate --launcher local --orphans
  crew terminate --launcher local --controller 3f2a9c0d1e4b5a69
  crew logs --launcher slurm 1234_1
  crew demo --workers 2
  crew new-plugin mycluster

exit codes: 0 success, 1 the command failed (reason on stderr), 2 bad command line, 130 interrupted.
Site defaults come from /etc/crew/crew.toml, ~/.config/crew/crew.toml and $CREW_CONFIG
(see `crew config`).
"""


class _Failure(Exception):
    """A failure the user should read; printed on stderr, exit code 1."""


def _option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE in TOML syntax (42, true, "x", [1, 2]), else taken as a string."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = discovery._toml_loads(f"value = {value}")["value"]
    except ValueError:
        parsed = value
    return key, parsed


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (exposed for documentation and tests)."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="crew",
        description="crew: run Python tasks on auto-scaling workers.\n"
                    "Inspect installed launcher plugins, list and end their workers, read worker logs,\n"
                    "run the demo, and start a new launcher plugin.",
        epilog=_EPILOG,
        formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(prog, max_help_position=24, width=100),
    )
    parser.add_argument("--version", action="version", version=f"crew {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND [ARGS]", title="commands")
    commands.required = True

    def command(name: str, help: str, handler: Callable[[argparse.Namespace, TextIO], int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        sub.set_defaults(handler=handler, parser=sub)
        return sub

    sub = command("launchers", "list the installed launcher plugins", _launchers)
    sub.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sub = command("workers", "list a launcher's worker jobs (through its monitor)", _workers)
    _launcher_options(sub)
    sub.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sub = command("terminate", "end a launcher's worker jobs: by id, by controller, or all of them", _terminate)
    _launcher_options(sub)
    _terminate_arguments(sub)

    sub = command("logs", "print what a worker wrote to its log", _logs)
    _launcher_options(sub)
    sub.add_argument("id", metavar="ID", help="a job id as `crew workers` shows it")

    sub = command("demo", "run tasks on local workers and print the summary (needs crew-local)", _demo)
    sub.add_argument("--workers", type=int, default=2, help="how many local workers (default 2)")
    sub.add_argument("--tasks", type=int, default=200, help="how many tasks (default 200)")

    sub = command("new-plugin", "create a launcher plugin package, crew-NAME, shaped like crew-local", _new_plugin)
    sub.add_argument("name", metavar="NAME", help="the launcher's name: lower case letters, digits, _ (e.g. mycluster)")
    sub.add_argument("--directory", "-d", default=None,
                     help="where to create crew-NAME/ (default: ./packages if it exists, else .)")
    sub.add_argument("--force", action="store_true", help="overwrite files in an existing crew-NAME/")

    sub = command("config", "show the site configuration files and the defaults they set", _config)
    sub.add_argument("--launcher", "-l", metavar="NAME", help="only this launcher's defaults")
    return parser


def _launcher_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--launcher", "-l", required=True, metavar="NAME",
                     help="the launcher plugin (see `crew launchers`), e.g. local or slurm")
    sub.add_argument("--option", "-o", action="append", type=_option, default=[], metavar="KEY=VALUE",
                     help="an argument of the plugin's monitor (repeatable); VALUE in TOML syntax")


def _terminate_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("ids", nargs="*", metavar="ID", help="job ids as `crew workers` shows them")
    sub.add_argument("--controller", metavar="CONTROLLER",
                     help="end the workers of this controller (its id in the CONTROLLER column of `crew workers`)")
    sub.add_argument("--orphans", action="store_true",
                     help="end the workers whose controller is no longer running")
    sub.add_argument("--all", action="store_true",
                     help="end every pending or running crew worker job of this user, other programs' "
                          "included (asks first)")
    sub.add_argument("--yes", "-y", action="store_true", help="do not ask before --all")


# ---------------------------------------------------------------------- commands
def _launchers(args: argparse.Namespace, out: TextIO) -> int:
    found = discovery.installed()
    rows = [{"name": p.name, "package": p.distribution or "?", "version": p.version or "?", "entry_point": p.value}
            for p in found.values()]
    if args.json:
        print(json.dumps(rows, indent=2), file=out)
    elif rows:
        _table(rows, ("name", "package", "version", "entry_point"), out)
    else:
        print("no launcher plugin is installed; install one, e.g.: pip install crew-local", file=out)
    return EXIT_OK


def _monitor(args: argparse.Namespace) -> Any:
    options = dict(args.option)
    _require_arguments(args.launcher, options)
    return discovery.monitor(args.launcher, **options)


def _require_arguments(name: str, options: dict[str, Any]) -> None:
    """The monitor's required arguments must come from ``-o`` or the site configuration."""
    plugin = discovery.load(name)
    if plugin.monitor is None:
        return  # discovery.monitor says so
    try:
        parameters = inspect.signature(plugin.monitor).parameters.values()
    except (TypeError, ValueError):
        return
    given = set(options) | set(discovery.defaults(name, "monitors"))
    missing = [p.name for p in parameters if p.default is inspect.Parameter.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in given]
    if missing:
        flags = " ".join(f"-o {key}=VALUE" for key in missing)
        raise _Failure(f"the {name} monitor needs {', '.join(missing)}: pass {flags}, "
                       f"or set it under [monitors.{name}] in a crew.toml (see `crew config`)")


_COLUMNS = ("id", "array_index", "name", "state", "reason", "node", "start_time")


def _workers(args: argparse.Namespace, out: TextIO) -> int:
    jobs = _monitor(args).jobs()
    if args.json:
        print(json.dumps(jobs, indent=2, default=str), file=out)
    elif jobs:
        extra = ("controller", "controller_alive") if any("controller" in row for row in jobs) else ()
        _table(jobs, (*_COLUMNS, *extra), out)
    else:
        print(f"no {args.launcher} worker jobs", file=out)
    return EXIT_OK


def _chosen(args: argparse.Namespace, monitor: Any) -> list[str]:
    """The ids that ``--controller``, ``--orphans`` or ``--all`` choose among the running jobs."""
    jobs = [row for row in monitor.jobs() if row.get("state") in ("pending", "running")]
    if args.all:
        return [str(row["id"]) for row in jobs]
    if jobs and not all("controller" in row for row in jobs):
        raise _Failure(f"the {args.launcher} monitor does not tell which controller a worker serves; "
                       "pass job ids, or --all")
    if args.orphans:
        return [str(row["id"]) for row in jobs if not row.get("controller_alive", True)]
    return [str(row["id"]) for row in jobs if row.get("controller") == args.controller]


def _confirm(args: argparse.Namespace, ids: list[str]) -> None:
    """Ask before ``--all`` ends jobs (``--yes`` skips the question)."""
    if args.yes or not ids:
        return
    question = (f"end all {len(ids)} {args.launcher} crew worker job(s) of this user, "
                f"including those of other running programs? [y/N] ")
    if not sys.stdin.isatty():
        raise _Failure(f"--all would end {len(ids)} job(s), other programs' included; "
                       "confirm with --yes (no terminal to ask on)")
    print(question, end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise _Failure("nothing ended")


def _terminate(args: argparse.Namespace, out: TextIO) -> int:
    scopes = sum((bool(args.ids), bool(args.all), bool(args.orphans), args.controller is not None))
    if scopes != 1:
        raise _Usage("terminate needs exactly one of: job ids, --controller ID, --orphans, --all")
    if args.yes and not args.all:
        raise _Usage("--yes only applies to --all")
    monitor = _monitor(args)
    if args.ids:
        ended = monitor.terminate(ids=list(args.ids))
    else:
        chosen = _chosen(args, monitor)
        if args.all:
            _confirm(args, chosen)
        ended = monitor.terminate(ids=chosen) if chosen else []
    ended_text = {str(job) for job in ended}
    print(f"terminated {len(ended)} job(s)" + (": " + " ".join(str(job) for job in ended) if ended else ""), file=out)
    missing = [job for job in args.ids if job not in ended_text]
    if missing:
        raise _Failure(f"not found among the {args.launcher} worker jobs: {' '.join(missing)}")
    return EXIT_OK


def _logs(args: argparse.Namespace, out: TextIO) -> int:
    try:
        text = _monitor(args).log(args.id)
    except NotImplementedError as error:
        raise _Failure(str(error)) from None
    if not text:
        print(f"(job {args.id} wrote nothing to its log)", file=sys.stderr)
    out.write(text if text.endswith("\n") or not text else text + "\n")
    return EXIT_OK


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    if args.workers < 1 or args.tasks < 2:
        raise _Usage("demo needs --workers >= 1 and --tasks >= 2")
    try:
        from crew_local.demo import main as demo
    except ImportError:
        raise _Failure("crew demo runs local workers and needs crew-local: pip install crew-local") from None
    return demo(workers=args.workers, tasks=args.tasks)


def _new_plugin(args: argparse.Namespace, out: TextIO) -> int:
    from pathlib import Path

    from .scaffold import new_plugin

    if args.directory is None:
        directory = Path("packages") if Path("packages").is_dir() else Path(".")
    else:
        directory = Path(args.directory)
    try:
        target = new_plugin(args.name, directory, force=args.force)
    except SettingError as error:  # a bad NAME
        raise _Usage(str(error)) from None
    print(f"created {target}", file=out)
    print(f"next: pip install -e {target}[test] && pytest {target / 'tests'}", file=out)
    return EXIT_OK


def _config(args: argparse.Namespace, out: TextIO) -> int:
    for path in discovery.config_paths():
        print(f"{path}: {'read' if path.is_file() else 'absent'}", file=out)
    names = [args.launcher] if args.launcher else sorted(set(discovery.installed()) | _configured())
    for name in names:
        for kind in ("launchers", "monitors"):
            values = discovery.defaults(name, kind)
            if values:
                print(f"\n[{kind}.{name}]", file=out)
                for key, (value, path) in values.items():
                    print(f"{key} = {json.dumps(value, default=str)}  # {path}", file=out)
    return EXIT_OK


def _configured() -> set[str]:
    names: set[str] = set()
    for path in discovery.config_paths():
        if path.is_file():
            config = discovery.read_config(path)
            names.update(config["launchers"], config["monitors"])
    return names


# ---------------------------------------------------------------------- output and entry point
class _Usage(Exception):
    """A command-line mistake found after parsing: exit code 2."""


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    cells = [[("" if row.get(column) is None else str(row.get(column))) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[index]) for line in cells)) for index, column in enumerate(columns)]
    print("  ".join(column.upper().ljust(width) for column, width in zip(columns, widths)).rstrip(), file=out)
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip(), file=out)


def _one_line(error: BaseException) -> str:
    """The error's message on one line: a scheduler's many lines of output are cut to their first."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if len(lines) == 1:
        return lines[0]
    return f"{lines[0]} [{len(lines) - 1} more line(s) of output not shown]"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``crew`` command with ``argv`` (default: the process's arguments); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error (already printed)
        return int(exit_.code or 0)
    handler: Callable[[argparse.Namespace, TextIO], int] = args.handler
    try:
        return handler(args, sys.stdout)
    except _Usage as error:
        args.parser.print_usage(sys.stderr)
        print(f"crew {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except (_Failure, CrewError, OSError) as error:
        print(f"crew {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("crew: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
