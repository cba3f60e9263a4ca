"""The package's imports point downward through its layers, and no modules import each other in a cycle.

The layers, bottom first, are :data:`LAYERS` (``docs/architecture.md`` draws them): a
module may import modules of its own layer and of any layer below, never above; the
packages of one layer are independent of each other. Every ``import`` statement counts,
including those inside functions and under ``if TYPE_CHECKING:``, since each one is a
dependency a reader has to follow. The graph is read from the source with :mod:`ast`,
so no module is imported to check it.

import-linter would express the layers too, but its current release (2.17) needs
Python >= 3.11 and this package supports 3.10; an ``ast`` walk needs nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "pyro_dgm"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE

LAYERS: tuple[tuple[str, ...], ...] = (
    (f"{PACKAGE}", f"{PACKAGE}.compilation", f"{PACKAGE}.data"),
    (f"{PACKAGE}.distributions",),
    (f"{PACKAGE}.nn",),
    (f"{PACKAGE}.models",),
    (f"{PACKAGE}.infer.validation",),
    (f"{PACKAGE}.infer.importance",),
    (f"{PACKAGE}.infer.objectives",),
    (f"{PACKAGE}.infer.estimators",),
    (f"{PACKAGE}.infer",),
    (f"{PACKAGE}.bihm", f"{PACKAGE}.diagnostics"),
    (f"{PACKAGE}.cli",),
)
"""Bottom first. A module belongs to the longest entry that is its name or a prefix of it
(``pyro_dgm.infer`` itself is the façade re-exporting objectives and estimators; the
top-level ``pyro_dgm`` holds only the version)."""

ROOT_FACADES = (PACKAGE,)
"""Entries that hold a module only by their exact name, not as a prefix of others."""


@dataclass(frozen=True)
class Import:
    """One ``import`` statement of the package: who imports whom, and where."""

    importer: str
    imported: str
    location: str
    """``path:line`` of the statement, the path relative to the package's parent folder."""

    def __str__(self) -> str:
        return f"{self.location}: {self.importer} imports {self.imported}"


def module_names(package_dir: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted name of every module of the package (``pkg.sub`` for ``pkg/sub/__init__.py``)."""
    names = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join((package, *parts))] = path
    return names


def _imported_modules(node: ast.AST, importer: str, is_package: bool, modules: dict[str, Path]) -> Iterable[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative: resolved against the importer's package
            base = importer.split(".") if is_package else importer.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:  # ``from pkg import submodule`` imports the submodule
            submodule = f"{source}.{alias.name}"
            yield submodule if submodule in modules else source


def package_imports(package_dir: Path = PACKAGE_DIR, package: str = PACKAGE) -> list[Import]:
    """Every import of one of the package's modules by another, at any depth of the source."""
    modules = module_names(package_dir, package)
    found = []
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for imported in _imported_modules(node, importer, path.name == "__init__.py", modules):
                if imported == package or imported.startswith(package + "."):
                    location = f"{path.relative_to(package_dir.parent).as_posix()}:{node.lineno}"
                    found.append(Import(importer, imported, location))
    return found


def layer_of(module: str, layers: tuple[tuple[str, ...], ...] = LAYERS) -> tuple[int, str]:
    """``(layer index, entry)`` of the longest :data:`LAYERS` entry holding ``module``."""
    holders = [
        (len(entry), index, entry)
        for index, layer in enumerate(layers)
        for entry in layer
        if module == entry or (entry not in ROOT_FACADES and module.startswith(entry + "."))
    ]
    if not holders:
        raise LookupError(f"{module} is in no layer: add it (or its package) to LAYERS")
    _, index, entry = max(holders)
    return index, entry


def upward_imports(imports: Iterable[Import], layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[str]:
    """The imports of a higher layer, or of a sibling package of the same layer, with why."""
    wrong = []
    for found in imports:
        (importer_layer, importer_entry), (imported_layer, imported_entry) = (
            layer_of(found.importer, layers), layer_of(found.imported, layers))
        if imported_layer > importer_layer:
            wrong.append(f"{found}: {imported_entry} is in a layer above {importer_entry}")
        elif imported_layer == importer_layer and imported_entry != importer_entry:
            wrong.append(f"{found}: {imported_entry} and {importer_entry} are siblings and stay independent")
    return wrong


def import_cycle(imports: Iterable[Import]) -> list[str] | None:
    """One cycle of the module import graph, as ``[a, b, ..., a]``, or ``None``."""
    graph: dict[str, set[str]] = {}
    for found in imports:
        if found.imported != found.importer:
            graph.setdefault(found.importer, set()).add(found.imported)
    finished, on_path = set(), []

    def visit(module: str) -> list[str] | None:
        if module in on_path:
            return on_path[on_path.index(module):] + [module]
        if module in finished:
            return None
        on_path.append(module)
        for imported in sorted(graph.get(module, ())):
            cycle = visit(imported)
            if cycle:
                return cycle
        on_path.pop()
        finished.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


def test_every_module_has_a_layer():
    for module in module_names(PACKAGE_DIR):
        layer_of(module)


def test_imports_point_downward_through_the_layers():
    wrong = upward_imports(package_imports())
    assert not wrong, "\n".join(wrong)


def test_no_modules_import_each_other_in_a_cycle():
    cycle = import_cycle(package_imports())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def write_module(root: Path, name: str, source: str) -> None:
    path = root.joinpath(*name.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)


def test_the_checks_see_an_upward_import_a_sibling_import_and_a_cycle(tmp_path):
    layers = (("toy.low",), ("toy.left", "toy.right"), ("toy.top",))
    write_module(tmp_path, "toy.__init__", "")
    write_module(tmp_path, "toy.low.__init__", "")
    write_module(tmp_path, "toy.low.a", "from toy.low import b\n")
    write_module(tmp_path, "toy.low.b", "def f():\n    from toy.top import c  # nested: still a dependency\n")
    write_module(tmp_path, "toy.left", "from . import low\nfrom .right import x\n")
    write_module(tmp_path, "toy.right", "import toy.low.a\n")
    write_module(tmp_path, "toy.top.__init__", "")
    write_module(tmp_path, "toy.top.c", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy.low.a import y\n")
    imports = package_imports(tmp_path / "toy", "toy")
    wrong = upward_imports(imports, layers)
    assert wrong == [
        "toy/left.py:2: toy.left imports toy.right: toy.right and toy.left are siblings and stay independent",
        "toy/low/b.py:2: toy.low.b imports toy.top.c: toy.top is in a layer above toy.low",
    ]
    assert import_cycle(imports) == ["toy.low.a", "toy.low.b", "toy.top.c", "toy.low.a"]
    with pytest.raises(LookupError, match="toy.elsewhere is in no layer"):
        layer_of("toy.elsewhere", layers)
