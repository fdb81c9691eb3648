"""fastlb's layers do not import back up: no import cycle between its modules, nor between
its top-level parts (a subpackage, or a module directly under fastlb/), and the parts
import only downwards in LAYERS.

Reads the source only (``ast``): every import counts, at module level or inside a
function, except those under ``if TYPE_CHECKING:``.  Importing ``fastlb.a.b`` also runs
``fastlb/a/__init__.py``, so from outside ``fastlb.a`` it counts as importing ``fastlb.a``
too.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "fastlb"

# Top-level parts, highest first: a part may import only the parts after it.  Parts on
# one line are one layer: they may not import each other.
LAYERS = (
    ("fastlb.__main__", "fastlb.demo"),
    ("fastlb.cli",),
    ("fastlb.master",),
    ("fastlb.boot", "fastlb.health"),
    ("fastlb.runtime",),
    ("fastlb.mailers",),         # email alerts: the health checker's SMTP client
    ("fastlb.loop",),            # the compiled worker loop (its own imports: http errors/fields)
    ("fastlb.applets",),
    ("fastlb.control",),
    ("fastlb.stats",),
    ("fastlb.config",),
    ("fastlb.http", "fastlb.logformat"),
    ("fastlb.sample",),          # the sample engine: fetches, converters, expressions
    ("fastlb.logsink", "fastlb.lb", "fastlb.limits"),
    ("fastlb.shm", "fastlb.includes"),
    ("fastlb",),                 # fastlb/__init__.py: the version
)
# Upward imports still there, each with its way out (none today);
# test_exceptions_are_still_needed fails once one is gone, so that its entry goes too.
EXCEPTIONS: dict = {}


def module_names() -> dict[str, Path]:
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported(module: str, path: Path, known: set) -> set:
    """The fastlb modules ``module`` imports, with the packages that importing them runs."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()

    def add(name: str) -> None:
        # the module and the packages it is in, except those this module is in already
        while name:
            if name in known and not (module + ".").startswith(name + "."):
                found.add(name)
            name = name.rpartition(".")[0]

    def visit(node) -> None:
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            add(target)
            for alias in node.names:     # "from . import shm": a module, not a name
                add(f"{target}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    found.discard(module)
    return found


def graph() -> dict[str, set]:
    names = module_names()
    known = set(names)
    return {module: imported(module, path, known) for module, path in names.items()}


def part_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def parts_graph(modules: dict[str, set]) -> dict[str, set]:
    parts: dict[str, set] = {}
    for module, targets in modules.items():
        targets = targets - EXCEPTIONS.get(module, set())
        own = part_of(module)
        edges = parts.setdefault(own, set())
        edges.update(part_of(t) for t in targets if part_of(t) != own)
    return parts


def cycles(edges: dict[str, set]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set = set()
    found = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_no_cycle_between_modules():
    assert cycles(graph()) == []


def test_no_cycle_between_top_level_parts():
    assert cycles(parts_graph(graph())) == []


def test_every_part_has_a_layer():
    layered = {part for layer in LAYERS for part in layer}
    assert set(parts_graph(graph())) - layered == set()


def test_parts_import_only_downwards():
    rank = {part: i for i, layer in enumerate(LAYERS) for part in layer}
    upward = sorted((part, target) for part, targets in parts_graph(graph()).items()
                    for target in targets if rank[target] <= rank[part])
    assert upward == []


def test_exceptions_are_still_needed():
    modules = graph()
    gone = {module: names - modules.get(module, set()) for module, names in EXCEPTIONS.items()}
    assert {module: names for module, names in gone.items() if names} == {}


def test_the_checker_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert part_of("fastlb.stats.collect") == "fastlb.stats"
    assert part_of("fastlb.cli") == "fastlb.cli"


def test_the_checker_resolves_imports(tmp_path):
    source = tmp_path / "collect.py"
    source.write_text("from typing import TYPE_CHECKING\n"
                      "from . import fields\n"
                      "from ..shm import words\n"
                      "from .. import limits\n"
                      "if TYPE_CHECKING:\n"
                      "    from ..runtime import tables\n"
                      "def later():\n"
                      "    import fastlb.http.acl\n")
    known = {"fastlb", "fastlb.stats", "fastlb.stats.fields", "fastlb.shm", "fastlb.shm.words",
             "fastlb.limits", "fastlb.runtime", "fastlb.runtime.tables", "fastlb.http",
             "fastlb.http.acl"}
    assert imported("fastlb.stats.collect", source, known) == {
        "fastlb.stats.fields", "fastlb.shm", "fastlb.shm.words", "fastlb.limits",
        "fastlb.http", "fastlb.http.acl"}
