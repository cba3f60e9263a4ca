"""``docs/architecture.md`` draws the layers that ``tests/test_import_layers.py`` checks, and names only real files.

The page is the map a newcomer reads first; these checks keep it from drifting when a
module moves, a package is added or the stack changes.
"""

from __future__ import annotations

import ast
import re

from pyro_dgm.infer._moved_modules import MOVED_MODULES
from tests.test_import_layers import LAYERS, PACKAGE, PACKAGE_DIR, module_names

REPOSITORY = PACKAGE_DIR.parent
PAGE = REPOSITORY / "docs" / "architecture.md"
COLUMNS = re.compile(r"\s{2,}")
"""The stack's lines are ``names  paths``: two spaces or more between the columns."""


def stack_lines() -> list[str]:
    """The lines of the first ``text`` block after the heading "The layers", top first."""
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("## The layers"):]
    block = section[section.index("```text\n") + len("```text\n"):]
    return block[: block.index("```")].splitlines()


def short_name(entry: str) -> str:
    return entry if entry == PACKAGE else entry.removeprefix(f"{PACKAGE}.")


def test_the_page_draws_the_checked_stack_top_first():
    drawn = [COLUMNS.split(line.strip())[0].split(" | ") for line in stack_lines()]
    assert drawn == [[short_name(entry) for entry in layer] for layer in reversed(LAYERS)]


def test_every_path_on_the_page_exists():
    text = PAGE.read_text(encoding="utf-8")
    paths = set(re.findall(rf"{PACKAGE}/[\w/]*\w(?:\.py|/)", text))
    assert paths, "the page names no files"
    missing = sorted(path for path in paths if not (REPOSITORY / path).exists())
    assert not missing, missing


def test_every_dotted_module_on_the_page_exists_or_is_a_listed_old_path():
    text = PAGE.read_text(encoding="utf-8")
    known = set(module_names(PACKAGE_DIR)) | set(MOVED_MODULES)
    named = set(re.findall(rf"`({PACKAGE}(?:\.\w+)+)`", text))
    assert not named - known, sorted(named - known)


def test_every_package_has_a_row():
    text = PAGE.read_text(encoding="utf-8")
    packages = sorted(
        path.parent.relative_to(REPOSITORY).as_posix() + "/" for path in PACKAGE_DIR.rglob("__init__.py")
    )
    unnamed = [package for package in packages if package != f"{PACKAGE}/" and f"`{package}`" not in text]
    assert not unnamed, f"docs/architecture.md says nothing of {unnamed}"


def test_every_package_docstring_says_what_it_may_import():
    for init in sorted(PACKAGE_DIR.rglob("__init__.py")):
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "May import" in docstring, f"{init.relative_to(REPOSITORY)}: the docstring does not say what it may import"
