"""The shape of the code: no import circle in ``src/jararaca`` (function-level imports
included), and the embedded mode imports no driver.

The graph is built from the source's AST, so it sees imports inside functions that a run
would only hit on some path. Imports under ``if TYPE_CHECKING:`` are left out: they never
run. A module depends on the modules it imports and on the packages that contain them
(importing ``a.b.c`` runs ``a/b/__init__.py``); circles are looked for both between modules
and between the top-level parts of the package (``scheduler``, ``worker``, ``backends``...),
where a circle means two parts cannot be understood, or changed, one without the other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = "jararaca"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in (SRC / ROOT).rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _imports_in(child))
            continue
        yield from _imports_in(node)


def _imports_in(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    elif not (isinstance(node, ast.If) and _is_type_checking(node)):
        yield from _imports(node)


def _targets(module: str, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    if isinstance(node, ast.ImportFrom):
        assert node.level == 0, f"{module}: use absolute imports (jararaca.x), not relative ones"
        base = node.module or ""
        names = {base} | {f"{base}.{alias.name}" for alias in node.names}
    else:
        names = {alias.name for alias in node.names}
    found: set[str] = set()
    for name in names:
        if not (name == ROOT or name.startswith(ROOT + ".")):
            continue
        # The module itself (a submodule imported with "from package import module", or the
        # module of "from module import name") and every package on the way to it.
        parts = name.split(".")
        for end in range(2, len(parts) + 1):
            candidate = ".".join(parts[:end])
            if candidate in known:
                found.add(candidate)
    # A module's own packages have run before it, whatever it imports: not a dependency.
    own = module.split(".")
    found -= {".".join(own[:end]) for end in range(1, len(own) + 1)}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        edges: set[str] = set()
        for node in _imports(tree):
            edges |= _targets(module, node, known)
        # The root package re-exports the public names: everything else may import its
        # submodules without that being a dependency on the whole facade.
        edges.discard(ROOT)
        graph[module] = edges
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of the graph as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # engines.make_backend imports the Redis backend inside a function, by URL scheme.
    assert "jararaca.backends.redis" in graph["jararaca.engines"]
    assert "jararaca.backends" in graph["jararaca.engines"]


def test_a_planted_circle_is_found() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_itself_back() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_no_part_of_the_package_imports_itself_back() -> None:
    parts: dict[str, set[str]] = {}
    for module, edges in import_graph().items():
        if module == ROOT:
            continue
        mine = _part(module)
        parts.setdefault(mine, set()).update(_part(e) for e in edges if _part(e) != mine)
    cycle = find_cycle(parts)
    assert cycle is None, "circle between parts of the package: " + " -> ".join(cycle or [])


def test_declarations_never_reach_the_engines() -> None:
    graph = import_graph()
    reached: set[str] = set()
    todo = [m for m in graph if m.startswith("jararaca.declarations")]
    while todo:
        module = todo.pop()
        for nxt in graph[module] - reached:
            reached.add(nxt)
            todo.append(nxt)
    engines = {m for m in reached if m.split(".")[1] in ("backends", "brokers", "engines")}
    assert engines == set(), f"declarations import {sorted(engines)}"


def test_the_embedded_mode_imports_no_driver() -> None:
    code = textwrap.dedent(
        """
        import asyncio, sys
        from datetime import UTC, datetime, timedelta
        import jararaca
        from jararaca import Microservice, ScheduledAction, Scheduler

        ran = asyncio.Event()

        class Jobs:
            @ScheduledAction("* * * * * *")
            async def tick(self) -> None:
                ran.set()

        async def main() -> None:
            stop = asyncio.Event()
            scheduler = Scheduler(Microservice(controllers=[Jobs]), interval=0.2)
            serving = asyncio.create_task(scheduler.serve(stop))
            await asyncio.wait_for(ran.wait(), 5)
            stop.set()
            await serving

        asyncio.run(main())
        drivers = ("redis", "aio_pika", "aiormq", "fastapi", "watchfiles", "prometheus_client")
        print(",".join(sorted(m for m in drivers if m in sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"the embedded mode imported {result.stdout.strip()}"
