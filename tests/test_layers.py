"""The package's layers: every import (module level or inside a function) points down or sideways, never up.

A layer may import from its own layer and the layers below it. Between top-level
units (a subpackage or a module of ``mixrepro``) there is no import circle at all.
Adding a module means naming its layer here, which is the point: the table is the
architecture (CONTRIBUTING.md shows it as a diagram).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mixrepro"

LAYERS = [  # lowest first
    ("foundation", {"mixrepro", "errors", "registry", "io", "_torchvision", "environment", "config", "validation"}),
    ("data, models, store", {"data", "models", "results"}),
    ("mixing", {"mixers", "losses"}),
    ("methods", {"methods"}),
    ("evaluation", {"evaluate", "distributed"}),
    ("training", {"training"}),
    ("runs", {"runs", "plans", "sweep", "parking", "evalrun", "verify"}),
    ("study and book", {"study", "visualize", "book_summary", "book_staging", "book_build", "notebook_runner"}),
    ("command line", {"cli"}),
]
LAYER_OF = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """'mixrepro.training.loop' -> 'training'; 'mixrepro' -> 'mixrepro'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every mixrepro module ``path`` imports, relative imports resolved, function-level ones included."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "mixrepro":
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names if target == "mixrepro")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mixrepro")
    return found


def unit_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        source = unit_of(module_name(path))
        for target in imported_modules(path):
            if target == "mixrepro.__version__":
                continue
            if unit_of(target) != source:
                edges.setdefault(source, set()).add(unit_of(target))
    return edges


def test_every_unit_has_a_layer():
    units = {unit_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert units - set(LAYER_OF) == set(), "name the layer of every new top-level module in LAYERS"


def test_no_import_runs_up_a_layer():
    upward = sorted(f"{source} ({LAYERS[LAYER_OF[source]][0]}) imports {target} ({LAYERS[LAYER_OF[target]][0]})"
                    for source, targets in unit_edges().items() for target in targets
                    if LAYER_OF.get(target, -1) > LAYER_OF.get(source, -1))
    assert upward == []


def test_no_import_circle_between_units():
    edges = unit_edges()

    def reaches(start, goal, seen=()):
        return any(t == goal or (t not in seen and reaches(t, goal, (*seen, t))) for t in edges.get(start, ()))

    circles = sorted(u for u in edges if reaches(u, u))
    assert circles == []


@pytest.mark.parametrize("source, expected", [
    ("from ..training import fit", {"mixrepro.training"}),
    ("from . import checkpoint", {"mixrepro.methods"}),
    ("import mixrepro.study", {"mixrepro.study"}),
])
def test_the_import_reader_resolves_relative_imports(tmp_path, monkeypatch, source, expected):
    # The contract is only as good as its reader: a file inside mixrepro/methods.
    fake = tmp_path / "mixrepro" / "methods" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(source + "\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path / "mixrepro")
    assert imported_modules(fake) == expected


def test_a_module_importing_upwards_is_caught(monkeypatch):
    real = unit_edges()
    monkeypatch.setattr(__import__(__name__), "unit_edges", lambda: {**real, "methods": {"training"}})
    with pytest.raises(AssertionError):
        test_no_import_runs_up_a_layer()
