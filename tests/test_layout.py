"""The package layout is the architecture: imports flow one way, modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

import batchgen

PACKAGE = Path(batchgen.__file__).parent
MAX_LINES = 500

# What each part of the package may import besides itself. cli → run/folder → api → plan/ledger
# → errors; the emulator sees only endpoint specs; fsnames (names no encoding holds) and places
# (dotted names within a payload) are beside errors, for all. The top-level __init__ and
# __main__ are the public face and may import anything.
BASE = frozenset({"errors", "fsnames", "places"})
ALLOWED: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "fsnames": frozenset(),
    "places": frozenset(),
    "version": frozenset(),
    "plan": BASE,
    "ledger": BASE,
    "api": BASE | {"plan", "version"},
    "run": BASE | {"api", "plan", "ledger", "version"},
    "folder": BASE | {"api", "plan", "ledger", "version"},
    "mock": BASE | {"plan", "version"},
    "cli": BASE | {"run", "folder", "api", "plan", "ledger", "mock", "version"},
}
FACADE = frozenset({"__init__", "__main__"})


def part_of(module: Path, root: Path) -> str:
    """The top-level part of the package a module file belongs to (``plan``, ``errors``...)."""
    return module.relative_to(root).parts[0].removesuffix(".py")


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """Every ``batchgen`` module an AST imports, anywhere in it, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("batchgen")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "batchgen":
                found += [(node.lineno, f"batchgen.{a.name}") for a in node.names]
            elif node.module.startswith("batchgen."):
                found.append((node.lineno, node.module))
    return sorted(found)


def violations(root: Path) -> list[str]:
    """``FILE:LINE`` for every import in ``root`` (a package folder) against the layering."""
    found = []
    for module in sorted(root.rglob("*.py")):
        source = part_of(module, root)
        if source in FACADE:
            continue
        allowed = ALLOWED[source] | {source}
        for line, name in imported(ast.parse(module.read_text(encoding="utf-8"))):
            target = name.split(".")[1] if "." in name else "__init__"
            if target not in allowed:
                found.append(f"{module.relative_to(root)}:{line}: {source} imports {name}")
    return found


def test_imports_flow_one_way() -> None:
    """No module imports a part of the package above its own (cli → run/folder → api → plan)."""
    assert violations(PACKAGE) == []


def test_every_part_is_known() -> None:
    """Every module and subpackage has a place in the layering (a new folder must be given one)."""
    parts = {part_of(m, PACKAGE) for m in PACKAGE.rglob("*.py")}
    assert parts - FACADE <= set(ALLOWED)


def test_layering_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The check reports an import against the direction, and a lazy one inside a function."""
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "build.py").write_text(
        "from batchgen.errors import InputError\n"
        "def f():\n    from batchgen.run.runner import Runner\n"
        "import batchgen.ledger.store\n"
    )
    (tmp_path / "mock").mkdir()
    (tmp_path / "mock" / "app.py").write_text("from batchgen import Runner\n")
    assert violations(tmp_path) == [
        "mock/app.py:1: mock imports batchgen.Runner",
        "plan/build.py:3: plan imports batchgen.run.runner",
        "plan/build.py:4: plan imports batchgen.ledger.store",
    ]


def test_modules_stay_small() -> None:
    """Every module is under 500 lines: past that it has more than one job."""
    sizes = {
        str(m.relative_to(PACKAGE)): len(m.read_text(encoding="utf-8").splitlines())
        for m in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n >= MAX_LINES} == {}


def test_subpackages_say_what_they_own() -> None:
    """Each subpackage's __init__ has a docstring naming what it may import."""
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, init
        if init.parent.name in ALLOWED and init.parent.name != "cli":
            assert "import" in doc, init


def test_public_names_are_sorted_and_importable() -> None:
    """``batchgen.__all__`` is sorted and every name in it resolves."""
    assert batchgen.__all__ == sorted(batchgen.__all__)
    for name in batchgen.__all__:
        assert getattr(batchgen, name) is not None
