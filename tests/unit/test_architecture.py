"""The direction of imports, read from the source (every ``import``, at module level or inside a function):

- the command line is the edge: nothing in the library imports ``ltk.cli`` or ``ltk.commands``
  (``__main__`` modules are entry points, they may);
- the data stages (corpus, translation, instructions) never import training or evaluation;
- translation does not import instructions (``ltk translate``'s file handling lives in instructions);
- modules the Axolotl plugin loads in Axolotl's own environment import only ltk's light modules;
- no two modules import each other at module level (an import cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "ltk"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(every ltk module imported anywhere in the file, those imported at module level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    everywhere: set[str] = set()
    top: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]

    def add(name: str, at_top: bool) -> None:
        if name == "ltk" or name.startswith("ltk."):
            everywhere.add(name)
            if at_top:
                top.add(name)

    def visit(node: ast.AST, at_top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = at_top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, at_top)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + [base])
                for alias in child.names:
                    # `from ltk.corpus import stage` imports the module ltk.corpus.stage
                    candidate = f"{base}.{alias.name}"
                    add(
                        candidate
                        if (SRC.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                        else base,
                        at_top,
                    )
            visit(child, nested)

    visit(tree, True)
    return everywhere, top


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def _under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_library_never_imports_the_command_line(name: str) -> None:
    if _under(name, "ltk.cli", "ltk.commands") or name.endswith("__main__"):
        return
    wrong = sorted(i for i in GRAPH[name][0] if _under(i, "ltk.cli", "ltk.commands"))
    assert not wrong, f"{name} imports the command line: {wrong}"


@pytest.mark.parametrize(
    "name", sorted(n for n in MODULES if _under(n, "ltk.corpus", "ltk.translation", "ltk.instructions"))
)
def test_data_stages_never_import_training_or_evaluation(name: str) -> None:
    wrong = sorted(
        i
        for i in GRAPH[name][0]
        if _under(i, "ltk.train", "ltk.evaluate", "ltk.quickstart", "ltk.experiment")
    )
    assert not wrong, f"{name} imports {wrong}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _under(n, "ltk.translation")))
def test_translation_does_not_import_instructions(name: str) -> None:
    wrong = sorted(i for i in GRAPH[name][0] if _under(i, "ltk.instructions"))
    assert not wrong, f"{name} imports {wrong}"


# What the Axolotl plugin imports inside Axolotl's environment (ltk is installed there without its
# dependencies): each may import only these light modules at module level.
LIGHT = {
    "ltk",
    "ltk.errors",
    "ltk.validation",
    "ltk.io",
    "ltk.log",
    "ltk.assets",
    "ltk.recipe",
    "ltk.recipe.schema",
    "ltk.train",
    "ltk.train.mix",
    "ltk.corpus",
    "ltk.corpus.mix",
    "ltk.recipe.load",
    "ltk.train.preflight",
    "ltk.train.axolotl_backend",
    "ltk.train.weights",
    "ltk.train.chat",
}


@pytest.mark.parametrize("name", sorted(LIGHT))
def test_modules_the_axolotl_plugin_loads_stay_light(name: str) -> None:
    heavy = sorted(GRAPH[name][1] - LIGHT)
    assert not heavy, f"{name} imports {heavy} at module level"


def test_no_import_cycles_at_module_level() -> None:
    top = {name: {i for i in deps[1] if i in MODULES and i != name} for name, deps in GRAPH.items()}
    # A package's __init__ importing its own submodules is how a package exposes its API, not a cycle.
    edges = {
        n: {d for d in deps if not (d.startswith(n + ".") and MODULES[n].name == "__init__.py")}
        for n, deps in top.items()
    }
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)


def test_the_checker_sees_real_imports() -> None:
    """The graph is not empty by mistake (a test that could not fail would prove nothing)."""
    assert "ltk.corpus.stage" in GRAPH["ltk.pipeline"][0]
    assert "ltk.commands.build" in GRAPH["ltk.cli"][1]
    assert "ltk.validation" in GRAPH["ltk.recipe.schema"][1]
