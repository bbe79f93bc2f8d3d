"""The house keeps its plan: no import circles, plugins use only the SDK, modules stay small.

Read from the source with ``ast`` (every import, including those inside functions, except
those under ``if TYPE_CHECKING:``, which never run), so a circle dodged by a function-level
import still counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
PLUGINS = ROOT / "plugins"
MAX_CORE_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for base in (CORE, PLUGINS):
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of imports under ``if TYPE_CHECKING:``."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    return lines


def imports_of(name: str) -> set[str]:
    """Modules of this repository that ``name`` imports (a package's submodule by name)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back_through_others() -> None:
    assert _cycles(GRAPH) == []


def _allowed(name: str) -> tuple[str, ...]:
    """What a plugin module may import from core Tether."""
    if ".sandbox" in name:
        return ("tether.sdk", "tether.sandbox")
    if name.endswith(".conformance"):
        return ("tether.sdk", "tether.sandbox", "tether.testing")
    return ("tether.sdk",)


@pytest.mark.parametrize("plugin", sorted(p.name for p in PLUGINS.iterdir()
                                          if (p / "__init__.py").is_file()))
def test_plugins_import_nothing_from_core_but_the_sdk(plugin: str) -> None:
    wrong = []
    for name in sorted(m for m in MODULES if m.split(".")[0] == plugin):
        allowed = _allowed(name)
        for target in sorted(GRAPH[name]):
            if target.split(".")[0] == "tether" and not any(
                    target == a or target.startswith(a + ".") for a in allowed):
                wrong.append(f"{name} imports {target}")
            if target.split(".")[0] not in (plugin, "tether"):
                wrong.append(f"{name} imports another plugin: {target}")
    assert wrong == []


def test_the_sdk_lists_every_name_it_offers() -> None:
    import tether.sdk

    offered = {n for n in vars(tether.sdk) if not n.startswith("_") and n != "annotations"}
    assert offered == set(tether.sdk.__all__)


def test_every_core_module_stays_readable_in_one_sitting() -> None:
    long = {str(p.relative_to(ROOT)): n for p in CORE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) >= MAX_CORE_LINES}
    assert long == {}


def test_core_names_no_tracker() -> None:
    trackers = ("tether_jira", "tether_github", "tether_asana", "tether_files")
    named = [f"{m} imports {t}" for m in MODULES if m.split(".")[0] == "tether"
             for t in GRAPH[m] if t.split(".")[0] in trackers]
    assert named == []


def test_every_package_says_what_it_holds() -> None:
    silent = [str(p.relative_to(ROOT)) for base in (CORE, PLUGINS)
              for p in base.rglob("__init__.py") if ast.get_docstring(ast.parse(p.read_text())) is None]
    assert silent == []
