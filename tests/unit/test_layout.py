"""The house rules of the package, checked on its source: a folder per concern, each saying what
it may import; layers that only point down; no import circle; no module over 400 lines; no
``# fmt: skip`` but for aligned tables; no issue numbers in the code.

Imports are read with ``ast``, wherever they stand (inside functions and under ``TYPE_CHECKING``
too). A failing check says each offending place with its line number.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

import globus_autosync

PKG = Path(globus_autosync.__file__).parent
NAME = "globus_autosync"
MAX_LINES = 400

# Bottom to top. A module may import from its own folder or from a lower layer; folders on one
# layer (cleanup, actions) do not import each other. The package's __init__ (its version) is
# below everything; __main__ above everything.
LAYERS: dict[str, int] = {
    "__init__": -1,
    "errors": 0,
    "config": 1,
    "model": 2,
    "store": 3,
    "globus": 4,
    "transports": 5,
    "sources": 6,
    "cleanup": 7,
    "actions": 7,
    "monitoring": 8,
    "engine": 9,
    "verify": 10,  # the destination audit: cli's `verify`
    "web": 10,  # the status page: cli's `serve` and `watch --http` start it
    "cli": 11,
    "__main__": 12,
}
ROOT_MODULES = {"__init__.py", "__main__.py", "config.py", "errors.py"}
ROOT_DATA = {"py.typed", "example.toml"}  # package data, not modules

# Aligned tables that read better than ruff's layout: (module, the stripped line with the mark).
FMT_SKIP_TABLES = {
    ("cli/app.py", "}  # fmt: skip"),  # COMMANDS: the commands grouped by the module defining them
    ("config/keys.py", ")  # fmt: skip"),  # KEYS: the table of configuration keys, one key a row
}
ISSUE_REF = re.compile(r"\bissues?\s*(?:#\s*)?\d+|\bgh-\d+\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ImportEdge:
    """One import statement's target, resolved to a module of the package."""

    line: int
    target: str  # dotted, e.g. globus_autosync.store.health
    type_only: bool


def _rel(path: Path) -> str:
    return path.relative_to(PKG).as_posix()


def _dotted(rel: str) -> str:
    parts = rel.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([NAME, *parts])


@cache
def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {_dotted(_rel(p)): p for p in sorted(PKG.rglob("*.py")) if "__pycache__" not in p.parts}


def module_files() -> list[str]:
    return sorted(_rel(p) for p in modules().values())


def _resolve(name: str) -> str | None:
    """The package's module for a dotted name (a name inside a module: that module)."""
    known = modules()
    while name.startswith(NAME):
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


@cache
def imports(rel: str) -> tuple[ImportEdge, ...]:
    """What one module imports from the package, wherever the import stands."""
    path = PKG / rel
    tree = ast.parse(path.read_text("utf-8"), str(path))
    here = _dotted(rel)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    type_only = _type_checking_lines(tree)
    out: list[ImportEdge] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names = [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != here:
                out.append(ImportEdge(node.lineno, target, node.lineno in type_only))
    return tuple(sorted(set(out), key=lambda e: (e.line, e.target)))


def _folder(dotted: str) -> str:
    """The top folder (or root module) a module belongs to: store, sources, config, ..."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _show(dotted: str) -> str:
    return dotted.removeprefix(NAME + ".") if dotted != NAME else NAME


def _fail(problems: list[str]) -> None:
    if problems:
        text = "\n".join(problems)
        print(text)
        pytest.fail(text, pytrace=False)


# -- the package's root and its folders ---------------------------------------------------------


def test_the_root_holds_only_the_shared_modules_and_folders_of_known_layers() -> None:
    problems = []
    for entry in sorted(PKG.iterdir()):
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            if entry.name not in LAYERS:
                problems.append(f"{entry.name}/: a folder with no layer in LAYERS")
            elif not (entry / "__init__.py").exists():
                problems.append(f"{entry.name}/: no __init__.py")
        elif entry.name not in ROOT_MODULES | ROOT_DATA:
            problems.append(f"{entry.name}: at the package root (only {sorted(ROOT_MODULES)})")
    _fail(problems)


def _folders() -> list[str]:
    return sorted(
        _rel(p)
        for p in PKG.rglob("__init__.py")
        if p.parent != PKG and "__pycache__" not in p.parts
    )


@pytest.mark.parametrize("rel", _folders())
def test_each_folder_says_what_it_is_and_what_it_may_import(rel: str) -> None:
    doc = ast.get_docstring(ast.parse((PKG / rel).read_text("utf-8"))) or ""
    problems = []
    if not doc:
        problems.append(f"{rel}: no docstring")
    elif not re.search(r"\bmay import\b", doc, re.IGNORECASE):
        problems.append(f"{rel}: the docstring does not say what the folder may import")
    _fail(problems)


# -- modules ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", module_files())
def test_no_module_over_400_lines(rel: str) -> None:
    count = len((PKG / rel).read_text("utf-8").splitlines())
    _fail([f"{rel}: {count} lines (at most {MAX_LINES})"] if count > MAX_LINES else [])


@pytest.mark.parametrize("rel", module_files())
def test_imports_point_only_down(rel: str) -> None:
    here = _folder(_dotted(rel))
    problems = []
    for edge in imports(rel):
        there = _folder(edge.target)
        if there == here or LAYERS[there] < LAYERS[here]:
            continue
        how = " (under TYPE_CHECKING)" if edge.type_only else ""
        problems.append(
            f"{rel}:{edge.line}: imports {_show(edge.target)}{how}: {there} is not below {here}"
        )
    _fail(problems)


def _cycles() -> dict[str, list[str]]:
    """Each module in an import circle -> the modules of its circle (Tarjan's components)."""
    graph = {name: [e.target for e in imports(_rel(path))] for name, path in modules().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: dict[str, list[str]] = {}

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                for member in component:
                    found[member] = sorted(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("rel", module_files())
def test_no_import_circle(rel: str) -> None:
    here = _dotted(rel)
    circle = _cycles().get(here)
    problems = []
    if circle:
        members = set(circle)
        problems.append(f"{rel}: in an import circle with {', '.join(map(_show, circle))}")
        problems += [
            f"  {rel}:{e.line}: imports {_show(e.target)}"
            for e in imports(rel)
            if e.target in members
        ]
    _fail(problems)


@pytest.mark.parametrize("rel", module_files())
def test_fmt_skip_only_for_aligned_tables(rel: str) -> None:
    problems = [
        f"{rel}:{n}: {line.strip()}"
        for n, line in enumerate((PKG / rel).read_text("utf-8").splitlines(), 1)
        if "# fmt: skip" in line and (rel, line.strip()) not in FMT_SKIP_TABLES
    ]
    _fail(problems)


@pytest.mark.parametrize("rel", module_files())
def test_no_issue_numbers_in_the_code(rel: str) -> None:
    problems = [
        f"{rel}:{n}: {line.strip()}"
        for n, line in enumerate((PKG / rel).read_text("utf-8").splitlines(), 1)
        if ISSUE_REF.search(line)
    ]
    _fail(problems)


def test_type_names_are_unique_across_the_package() -> None:
    """A class name says one thing: two classes of one name (a Task of the walk and one of the
    transport) make a newcomer open both to know which is meant."""
    where: dict[str, list[str]] = {}
    for rel in module_files():
        tree = ast.parse((PKG / rel).read_text("utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(f"{rel}:{node.lineno}")
    _fail(
        [f"class {name}: {', '.join(places)}" for name, places in where.items() if len(places) > 1]
    )


def test_no_test_module_imports_another_or_a_conftest() -> None:
    """Shared test code lives in fixtures (conftest.py) and helper modules, never in a test
    module or imported from a conftest: a test module stays free to change."""
    tests = Path(__file__).resolve().parents[1]
    problems = []
    for path in sorted(tests.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
                last = [n.rpartition(".")[2] for n in names]
                if any(n.startswith("test_") or n == "conftest" for n in last):
                    problems.append(f"{path.relative_to(tests)}:{node.lineno}")
    _fail(problems)


# -- the checks themselves ----------------------------------------------------------------------


def test_the_import_reader_sees_every_kind_of_import() -> None:
    """Top-level, relative, inside a function and under TYPE_CHECKING: all are edges."""
    targets = {e.target: e for e in imports("cli/sync.py")}
    assert f"{NAME}.cli.context" in targets  # at the top
    assert f"{NAME}.engine.watch" in targets  # inside a function
    typed = {e.target for e in imports("cli/actions.py") if e.type_only}
    assert typed >= {f"{NAME}.config"}
    assert _resolve(f"{NAME}.store.Store") == f"{NAME}.store"
    assert _resolve(f"{NAME}.monitoring.health") == f"{NAME}.monitoring.health"
