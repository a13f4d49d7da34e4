"""The import layering of topo/: no cycles, and no import against the layers' direction.

Layers, top to bottom (README, "Architecture"):

    topo (the lazy facade), topo.__main__
    topo.cli                                  parse -> call the API -> print
    topo.integrations                         framework callbacks around the recorder
    topo.record, topo.train                   (the trainer may use the recorder's parts)
    topo.io, topo.plot, topo.examples
    analyses: distance, overlap, comparison, persistence, interactions, evolution, pairwise,
              activity
    topo.graph                                the data model
    topo.structure, topo.layer_arrays         sparse-structure primitives
    topo.errors

Every ``import`` of a ``topo`` module is read from the source (abstract syntax tree), also
the ones inside functions; imports under ``if TYPE_CHECKING:`` never run and count only for
the layering, not for cycles. A function-level import of a module's own package (e.g.
``topo.io.sequence`` reading ``topo.io.load`` when called) runs after that package has been
initialised and is not an edge of the cycle check.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "topo"

# With -n, the tests of this file run on one worker: topo's sources are parsed once.
pytestmark = pytest.mark.xdist_group("architecture")

ANALYSES = ("topo.distance", "topo.distance_chance", "topo.assignment", "topo.canonical",
            "topo.unit_sets",
            "topo.overlap", "topo.comparison", "topo.persistence",
            "topo.interactions", "topo.evolution", "topo.pairwise", "topo.activity")
#: the recorder of users' own loops and its framework callbacks
RECORDING = ("topo.record", "topo.integrations")
#: module (or package prefix) -> module prefixes it must not import
FORBIDDEN = {
    "topo.errors": ("topo",),
    "topo.structure": ("topo",),
    "topo.layer_arrays": ("topo",),
    "topo.graph": ("topo.io", "topo.cli", "topo.train", "topo.plot", "topo.examples",
                   "topo.graph.", *ANALYSES, *RECORDING),
    **{name: ("topo.io", "topo.cli", "topo.train", "topo.plot", "topo.examples", *RECORDING)
       for name in ANALYSES},
    "topo.io": ("topo.cli", "topo.train", "topo.plot", "topo.examples", *RECORDING),
    "topo.plot": ("topo.io", "topo.cli", "topo.train", "topo.examples", *RECORDING),
    "topo.train": ("topo.cli", "topo.plot", "topo.examples", "topo.integrations"),
    "topo.record": ("topo.cli", "topo.train", "topo.plot", "topo.examples",
                    "topo.integrations"),
    "topo.integrations": ("topo.cli", "topo.train", "topo.plot", "topo.examples"),
    "topo.examples": ("topo.io", "topo.cli", "topo.train", "topo.plot", *ANALYSES,
                      *RECORDING),
}
#: modules allowed to use importlib: the command line discovers its sub-commands
IMPORTLIB_ALLOWED = {"topo.cli"}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    in_function: bool
    type_checking: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str, known: dict[str, Path]) -> str:
    """The module an imported name lives in: the longest known module prefix of ``name``."""
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


@functools.cache
def parsed(path: Path) -> ast.Module:
    """The syntax tree of one source file (parsed once for all the tests of this file)."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[Import]:
    tree = parsed(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, in_function, True)
            for child in node.orelse:
                visit(child, in_function, type_checking)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_function = True
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target == "topo" or target.startswith("topo."):
                found.append(Import(name, resolve(target, known), node.lineno, in_function,
                                    type_checking))
        for child in ast.iter_child_nodes(node):
            # imports are statements, and expressions hold no statements (a lambda's body is
            # an expression): only statements and the clauses holding them are walked
            if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                visit(child, in_function, type_checking)

    visit(tree, False, False)
    return found


@functools.cache
def all_imports() -> list[Import]:
    known = modules()
    return [imp for name, path in known.items() for imp in imports_of(name, path, known)]


def edges_for_cycles(imports: list[Import]) -> dict[str, set[str]]:
    """Import edges that execute code, with the package ``__init__`` that each one runs."""
    edges: dict[str, set[str]] = {}
    for imp in imports:
        if imp.type_checking or imp.target == imp.source:
            continue
        own_package = imp.source.startswith(imp.target + ".")
        if imp.in_function and own_package:
            continue
        targets = {imp.target}
        # importing topo.io.run runs topo/io/__init__.py first (the root topo is a lazy facade)
        parts = imp.target.split(".")
        targets |= {".".join(parts[:k]) for k in range(2, len(parts))}
        edges.setdefault(imp.source, set()).update(t for t in targets if t != imp.source
                                                   and not imp.source.startswith(t + "."))
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def rule_for(module: str) -> tuple[str, ...]:
    for prefix, forbidden in FORBIDDEN.items():
        if module == prefix or module.startswith(prefix + "."):
            return forbidden
    return ()


def violations(imports: list[Import]) -> list[str]:
    found = []
    for imp in imports:
        for forbidden in rule_for(imp.source):
            hit = (imp.target == forbidden or imp.target.startswith(forbidden + ".")
                   or (forbidden.endswith(".") and imp.target.startswith(forbidden)))
            if hit and imp.target != imp.source:
                found.append(f"{imp.source}:{imp.line} imports {imp.target}")
    return found


# ----------------------------------------------------------------------------- tests
def test_the_walker_sees_module_and_function_level_imports():
    imports = all_imports()
    pairs = {(i.source, i.target, i.in_function) for i in imports}
    # module level: evolution reads NNSTD; function level: the facade's lazy names
    assert ("topo.evolution", "topo.distance", False) in pairs
    assert ("topo", "topo.io", True) in pairs
    assert ("topo.cli.compare", "topo.io", True) in pairs


def test_the_cycle_finder_finds_a_planted_cycle():
    edges = {"topo.a": {"topo.b"}, "topo.b": {"topo.c"}, "topo.c": {"topo.a"}, "topo.d": set()}
    assert find_cycle(edges) == ["topo.a", "topo.b", "topo.c", "topo.a"]
    assert find_cycle({"topo.a": {"topo.b"}, "topo.b": set()}) is None


def test_the_layer_rules_catch_an_upward_import():
    planted = [Import("topo.overlap", "topo.io", 3, True, False),
               Import("topo.structure", "topo.graph", 5, False, False),
               Import("topo.cli.compare", "topo.io", 7, True, False)]
    assert violations(planted) == ["topo.overlap:3 imports topo.io",
                                   "topo.structure:5 imports topo.graph"]


def test_no_import_cycle_in_topo():
    cycle = find_cycle(edges_for_cycles(all_imports()))
    assert cycle is None, " -> ".join(cycle)


def test_no_import_against_the_layers():
    assert violations(all_imports()) == []


@pytest.mark.parametrize("module", ["topo.distance", "topo.overlap", "topo.evolution",
                                    "topo.pairwise", "topo.graph", "topo.structure"])
def test_analyses_never_open_files_through_io(module):
    targets = {i.target for i in all_imports() if i.source == module}
    assert not {t for t in targets if t.startswith("topo.io") or t == "topo"}


def test_importlib_only_for_the_command_discovery():
    users = set()
    for name, path in modules().items():
        for node in ast.walk(parsed(path)):
            named = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            # importlib.metadata reads the installed version; it imports nothing
            if any(n == "importlib" or n.startswith("importlib.") and n != "importlib.metadata"
                   for n in named):
                users.add(name)
            if isinstance(node, ast.Name) and node.id == "__import__":
                users.add(name)
    assert users <= IMPORTLIB_ALLOWED, users - IMPORTLIB_ALLOWED
