"""harness is layered: core (the contract and the runner) < study (sweeps, tuning, scoring, boards)
< commands (commands and reports). A module imports its own layer or lower ones, never a higher one,
and imports at module level only, except the optional or heavy libraries named in LAZY."""

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "harness"
LAYERS = ("core", "study", "commands")
#: the module at harness's top, outside the layers: it imports no harness layer at all
TOP_LEVEL = {"__init__.py"}

#: imports allowed inside a function, by top-level package, each with its reason
LAZY = {
    "jax": "the jax extra is optional; provenance records its version for framework=jax trials only",
    "optax": "ships with the optional jax extra (provenance, as for jax)",
    "wandb": "the wandb logger is optional at run time and wandb is slow to import (loggers.WandbLogger)",
    "matplotlib": "report figures only: the Agg backend must be chosen before pyplot is imported",
}

MODULES = sorted(HARNESS.rglob("*.py"))


def rank_of_file(path: Path) -> int:
    """-1 for the top-level modules (below every layer), else the index of the path's layer."""
    parts = path.relative_to(HARNESS).parts
    return -1 if len(parts) == 1 else LAYERS.index(parts[0])


def imported_modules(node: ast.Import | ast.ImportFrom, path: Path) -> list[str]:
    """The dotted names a statement imports (for `from X import a, b`: X.a and X.b, since a and b
    may be modules), relative imports resolved against the file's package."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = ("harness",) + path.relative_to(HARNESS).parts[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ((base,) if base else ()))
    return [f"{base}.{alias.name}" for alias in node.names]


def harness_rank(name: str) -> int | None:
    """The layer rank of a harness module name; None for a name outside harness."""
    parts = name.split(".")
    if parts[0] != "harness":
        return None
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return -1


def function_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements anywhere inside a function or method body (nested ones once)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    found[id(inner)] = inner
    return sorted(found.values(), key=lambda node: node.lineno)


def test_the_modules_live_in_the_layers():
    assert len(MODULES) > 30
    flat = {p.name for p in HARNESS.glob("*.py")}
    assert flat == TOP_LEVEL, f"modules outside harness/{{{','.join(LAYERS)}}}/: {sorted(flat - TOP_LEVEL)}"
    assert {p.name for p in HARNESS.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(HARNESS)))
def test_no_module_imports_a_higher_layer(path):
    own = rank_of_file(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    upward = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for name in imported_modules(node, path):
                rank = harness_rank(name)
                if rank is not None and rank > own:
                    upward.append(f"line {node.lineno}: {name}")
    assert not upward, f"{path.relative_to(HARNESS)} ({'top level' if own < 0 else LAYERS[own]}) imports upward: {upward}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(HARNESS)))
def test_imports_are_at_module_level(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    lazy = []
    for node in function_imports(tree):
        relative = isinstance(node, ast.ImportFrom) and node.level > 0
        for name in [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or "."]:
            if relative or name.split(".")[0] not in LAZY:
                lazy.append(f"line {node.lineno}: {name}")
    assert not lazy, f"{path.relative_to(HARNESS)} imports inside a function: {lazy} (allowed there: {sorted(LAZY)})"


def test_the_check_sees_an_upward_and_a_lazy_import(tmp_path):
    """The two checks above catch what they are for (a core module importing study, a function
    importing a harness module)."""
    source = "from harness.study import sweep\n\ndef f():\n    from harness.core import runner\n    import jax\n"
    fake = HARNESS / "core" / "fake.py"
    tree = ast.parse(source)
    names = [n for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
             for n in imported_modules(node, fake)]
    assert [harness_rank(n) for n in names] == [1, 0, None]
    assert rank_of_file(fake) == 0
    assert [node.lineno for node in function_imports(tree)] == [4, 5]
    relative = ast.parse("from ..study import sweep\nfrom . import spec\n").body
    assert [imported_modules(node, fake) for node in relative] == [["harness.study.sweep"], ["harness.core.spec"]]
