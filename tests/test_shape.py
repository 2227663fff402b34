"""The shape of the source, read with ``ast`` (nothing of the product is imported).

- no source file under ``packages/*/src`` is longer than 500 lines;
- no function or method is longer than 60 lines (from its ``def`` line to the last line of its
  body; decorators excluded);
- crew-core's modules import one another without a cycle (imports inside functions count,
  imports under ``if TYPE_CHECKING:`` do not);
- every package ships a ``py.typed`` marker in its import package, and its wheel includes it.

The checkers are plain functions over source text, tested on synthetic source at the end.
"""

from __future__ import annotations

import ast
import fnmatch
import sys
import textwrap
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python < 3.11: crew-core depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(path.parent for path in ROOT.glob("packages/*/pyproject.toml"))
CORE_SOURCE = ROOT / "packages" / "crew-core" / "src"

FILE_LINES_MAX = 500
FUNCTION_LINES_MAX = 60


def _relative(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def _sources(package: Path) -> list[Path]:
    return sorted(path for path in (package / "src").rglob("*.py") if "__pycache__" not in path.parts)


# ---------------------------------------------------------------------- the checkers
def file_length(text: str) -> int:
    """The number of lines in a source file."""
    return len(text.splitlines())


def long_functions(text: str, label: str, limit: int = FUNCTION_LINES_MAX) -> list[tuple[str, int]]:
    """``(label:line, length)`` of every function or method (nested ones too) longer than ``limit``
    lines, counted from the ``def`` line to the last line of the body, decorators excluded."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # Since Python 3.8, lineno is the line of `def` (after any decorators).
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                found.append((node.lineno, f"{label}:{node.lineno} {node.name}()", length))
    return [(where, length) for _, where, length in sorted(found)]


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (or any ``<module>.TYPE_CHECKING``)."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth (in functions and classes too), except
    those in the body of ``if TYPE_CHECKING:`` (its ``else:`` branch runs, so it counts)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(reversed(node.orelse))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _resolve(name: str, modules: Mapping[str, str]) -> str | None:
    """The module ``name`` is, or the nearest enclosing one that is ours."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _import_targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, package: str,
                    modules: Mapping[str, str]) -> list[str | None]:
    """The modules of ``package`` that one import statement in ``module`` loads."""
    if isinstance(node, ast.Import):
        return [_resolve(alias.name, modules) for alias in node.names
                if alias.name == package or alias.name.startswith(package + ".")]
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        if node.level > 1:
            parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if not (base == package or base.startswith(package + ".")):
        return []
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else _resolve(base, modules)
            for alias in node.names]


def import_graph(modules: Mapping[str, str], package: str) -> dict[str, dict[str, int]]:
    """The imports among the modules of ``package``: ``{module: {imported module: line}}``.

    ``modules`` maps dotted module names (``crew``, ``crew.errors``; a package is named by its
    ``__init__``, without ``.__init__``) to their source text. Absolute (``crew.x``) and relative
    (``.x``, ``..x``) imports count; ``from pkg import name`` points at the submodule ``pkg.name``
    when there is one, else at ``pkg`` itself.
    """
    packages = {name for name in modules if any(other.startswith(name + ".") for other in modules)}
    packages.add(package)
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}

    for module, text in modules.items():
        edges = graph[module]
        for node in _runtime_imports(ast.parse(text)):
            for target in _import_targets(node, module, module in packages, package, modules):
                if target is not None and target != module:
                    edges[target] = min(node.lineno, edges.get(target, node.lineno))
    return graph


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _cycle_in(component: list[str], graph: Mapping[str, Mapping[str, int]]) -> list[str]:
    """One cycle through the first module of a strongly connected component, as a path that ends
    where it starts (shortest, by breadth-first search inside the component)."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return component  # not reached for a component of two or more modules


def import_cycles(graph: Mapping[str, Mapping[str, int]]) -> list[str]:
    """One line per import cycle: ``a -> b (line 3) -> a (line 7)``, plus the component's members."""
    described = []
    for component in strongly_connected(graph):
        if len(component) < 2:
            continue
        cycle = _cycle_in(component, graph)
        steps = [cycle[0]] + [f"{target} (line {graph[source][target]} of {source})"
                              for source, target in zip(cycle, cycle[1:])]
        described.append(" -> ".join(steps) + f"; modules in the cycle(s): {', '.join(component)}")
    return described


def package_modules(source: Path, package: str) -> dict[str, str]:
    """``{dotted module name: source text}`` for every module of the import package ``source/package``."""
    modules = {}
    for path in sorted((source / package).rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(source).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path.read_text()
    return modules


def wheel_marker_problems(pyproject: Mapping[str, Any], package_dir: Path) -> list[str]:
    """Why the wheel built from this pyproject (hatchling) would lack a package's ``py.typed``."""
    problems = []
    backend = pyproject.get("build-system", {}).get("build-backend")
    if backend != "hatchling.build":
        return [f"build backend is {backend!r}, not hatchling.build (this check reads hatch's configuration)"]
    hatch = pyproject.get("tool", {}).get("hatch", {}).get("build", {})
    wheel = hatch.get("targets", {}).get("wheel", {})
    declared = wheel.get("packages", [])
    imports = sorted(path.parent for path in (package_dir / "src").glob("*/__init__.py"))
    if not imports:
        problems.append("no import package under src/")
    for folder in imports:
        relative = folder.relative_to(package_dir).as_posix()
        if not (folder / "py.typed").is_file():
            problems.append(f"{relative}/py.typed is missing")
        if relative not in declared:
            problems.append(f"{relative} is not in [tool.hatch.build.targets.wheel] packages = {declared}")
        marker = f"{relative}/py.typed"
        for where, patterns in (("tool.hatch.build", hatch.get("exclude", [])),
                                ("tool.hatch.build.targets.wheel", wheel.get("exclude", []))):
            for pattern in patterns:
                if any(fnmatch.fnmatch(candidate, pattern.strip("/")) or fnmatch.fnmatch(candidate, f"*/{pattern}")
                       for candidate in (marker, "py.typed")):
                    problems.append(f"[{where}] exclude = {pattern!r} leaves {marker} out of the wheel")
        for where, patterns in (("tool.hatch.build", hatch.get("only-include")),
                                ("tool.hatch.build.targets.wheel", wheel.get("only-include"))):
            if patterns is not None and not any(marker.startswith(p.strip("/") + "/") or marker == p for p in patterns):
                problems.append(f"[{where}] only-include = {patterns} leaves {marker} out of the wheel")
    return problems


def _ignored_by_git(name: str) -> list[str]:
    """The root .gitignore patterns (hatch honours them) that would leave a file called ``name`` out."""
    ignore = ROOT / ".gitignore"
    if not ignore.is_file():
        return []
    patterns = [line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [pattern for pattern in patterns if not pattern.startswith("!") and fnmatch.fnmatch(name, pattern.strip("/"))]


# ---------------------------------------------------------------------- the checks on this repository
def test_packages_found():
    assert {path.name for path in PACKAGES} >= {"crew-core", "crew-local", "crew-slurm", "crew-sge", "crew-aws-batch"}
    assert all(_sources(package) for package in PACKAGES)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: path.name)
def test_no_long_files(package):
    long = [(_relative(path), file_length(path.read_text())) for path in _sources(package)]
    long = [(path, lines) for path, lines in long if lines > FILE_LINES_MAX]
    assert not long, f"source files longer than {FILE_LINES_MAX} lines:\n" + "\n".join(
        f"  {path}: {lines} lines" for path, lines in long)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: path.name)
def test_no_long_functions(package):
    long = [found for path in _sources(package) for found in long_functions(path.read_text(), _relative(path))]
    assert not long, f"functions longer than {FUNCTION_LINES_MAX} lines (def line to end of body):\n" + "\n".join(
        f"  {where}: {lines} lines" for where, lines in long)


def test_no_import_cycles_in_crew_core():
    modules = package_modules(CORE_SOURCE, "crew")
    assert "crew" in modules and len(modules) > 1, sorted(modules)
    graph = import_graph(modules, "crew")
    cycles = import_cycles(graph)
    assert not cycles, "import cycles among crew-core's modules:\n" + "\n".join(f"  {cycle}" for cycle in cycles)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: path.name)
def test_py_typed_in_wheel(package):
    pyproject = tomllib.loads((package / "pyproject.toml").read_text())
    problems = wheel_marker_problems(pyproject, package)
    problems += [f".gitignore pattern {pattern!r} (honoured by hatch) leaves py.typed out"
                 for pattern in _ignored_by_git("py.typed")]
    assert not problems, f"{package.name}: " + "; ".join(problems)


# ---------------------------------------------------------------------- the checkers on synthetic source
def _function(name: str, lines: int, decorators: int = 0) -> str:
    """Source of a function ``lines`` long from ``def`` to its last line, after ``decorators`` lines."""
    body = "\n".join(f"    x{index} = {index}" for index in range(lines - 1))
    return "@decorator\n" * decorators + f"def {name}():\n{body}\n"


def test_checker_file_length():
    assert file_length("a = 1\n" * FILE_LINES_MAX) == FILE_LINES_MAX
    assert file_length("a = 1\n" * (FILE_LINES_MAX + 1)) == FILE_LINES_MAX + 1


def test_checker_long_functions():
    assert long_functions(_function("short", 60), "m.py") == []
    assert long_functions(_function("long", 61), "m.py") == [("m.py:1 long()", 61)]
    # Decorators do not count; the reported line is the `def` line.
    assert long_functions(_function("decorated", 60, decorators=3), "m.py") == []
    assert long_functions("\n" + _function("decorated", 61, decorators=2), "m.py") == [("m.py:4 decorated()", 61)]
    # Methods, async functions and nested functions are each checked.
    method = "class C:\n" + textwrap.indent(_function("method", 61).replace("def ", "async def "), "    ")
    assert long_functions(method, "m.py") == [("m.py:2 method()", 61)]
    nested = "def outer():\n" + textwrap.indent(_function("inner", 61), "    ")
    assert long_functions(nested, "m.py") == [("m.py:1 outer()", 62), ("m.py:2 inner()", 61)]


def test_checker_import_cycle_found():
    modules = {"pkg": "", "pkg.a": "from . import b\n", "pkg.b": "import pkg.a\n"}
    graph = import_graph(modules, "pkg")
    assert graph == {"pkg": {}, "pkg.a": {"pkg.b": 1}, "pkg.b": {"pkg.a": 1}}
    cycles = import_cycles(graph)
    assert len(cycles) == 1
    assert cycles[0].startswith("pkg.a -> pkg.b (line 1 of pkg.a) -> pkg.a (line 1 of pkg.b)"), cycles


def test_checker_import_cycle_through_function_and_longer_path():
    modules = {
        "pkg": "",
        "pkg.a": "from .b import thing\n",
        "pkg.b": "from pkg.c import other\n",
        "pkg.c": "def late():\n    from .a import x\n    return x\n",
        "pkg.d": "from . import a\n",
    }
    graph = import_graph(modules, "pkg")
    assert graph["pkg.c"] == {"pkg.a": 2}
    (cycle,) = import_cycles(graph)
    assert cycle.startswith("pkg.a -> pkg.b (line 1 of pkg.a) -> pkg.c (line 1 of pkg.b) -> pkg.a (line 2 of pkg.c)")
    assert "pkg.d" not in cycle


def test_checker_type_checking_imports_not_counted():
    modules = {
        "pkg": "",
        "pkg.a": "from .b import B\n",
        "pkg.b": ("from typing import TYPE_CHECKING\nimport typing\n"
                  "if TYPE_CHECKING:\n    from .a import A\n"
                  "if typing.TYPE_CHECKING:\n    import pkg.a\n"),
    }
    graph = import_graph(modules, "pkg")
    assert graph["pkg.b"] == {}
    assert import_cycles(graph) == []
    # The else branch of `if TYPE_CHECKING:` runs, so its imports count.
    modules["pkg.b"] = "if TYPE_CHECKING:\n    pass\nelse:\n    from . import a\n"
    assert import_cycles(import_graph(modules, "pkg"))


def test_checker_import_targets():
    modules = {
        "pkg": "from . import sub\n",
        "pkg.sub": "from .. import helper\nfrom . import leaf\n",  # package: `.` is pkg.sub itself
        "pkg.sub.leaf": "from .. import __version__\nfrom pkg import sub\nimport os\nfrom os import path\n",
        "pkg.helper": "from pkg.sub.leaf import name\nfrom . import something_not_a_module\nimport pkg\n",
    }
    graph = import_graph(modules, "pkg")
    assert graph["pkg"] == {"pkg.sub": 1}
    assert graph["pkg.sub"] == {"pkg.helper": 1, "pkg.sub.leaf": 2}
    # A name that is not a submodule points at the package's __init__.
    assert graph["pkg.sub.leaf"] == {"pkg": 1, "pkg.sub": 2}
    assert graph["pkg.helper"] == {"pkg.sub.leaf": 1, "pkg": 2}
    # pkg -> pkg.sub -> pkg.sub.leaf -> pkg.sub ...: one cycle naming its modules.
    (cycle,) = import_cycles(graph)
    assert "pkg.sub.leaf" in cycle and "pkg.helper" in cycle


def test_checker_wheel_marker(tmp_path):
    (tmp_path / "src" / "mine").mkdir(parents=True)
    (tmp_path / "src" / "mine" / "__init__.py").write_text("")
    pyproject = {
        "build-system": {"build-backend": "hatchling.build"},
        "tool": {"hatch": {"build": {"targets": {"wheel": {"packages": ["src/mine"]}}}}},
    }
    assert wheel_marker_problems(pyproject, tmp_path) == ["src/mine/py.typed is missing"]
    (tmp_path / "src" / "mine" / "py.typed").write_text("")
    assert wheel_marker_problems(pyproject, tmp_path) == []
    pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["exclude"] = ["py.typed"]
    assert wheel_marker_problems(pyproject, tmp_path) == [
        "[tool.hatch.build.targets.wheel] exclude = 'py.typed' leaves src/mine/py.typed out of the wheel"]
    pyproject["tool"]["hatch"]["build"]["targets"]["wheel"] = {"packages": ["src/other"]}
    assert wheel_marker_problems(pyproject, tmp_path) == [
        "src/mine is not in [tool.hatch.build.targets.wheel] packages = ['src/other']"]
