"""Every code block of README.md and docs/**/*.md runs as written, against the installed package.

Fenced blocks must say what they are: ``python`` blocks run, in order, in one namespace
per file (a later block may use an earlier one's names), from an empty working folder,
with :mod:`pyro_dgm.compilation` off (the kernels run eagerly: the same results, without
paying Inductor's first compilation here);
``bash`` (shell commands) and ``text`` (output, formulas, diagrams) are skipped. A block
without a label fails the test, so nothing is skipped by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pyro
import pytest
import torch

from pyro_dgm import compilation

REPOSITORY = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([REPOSITORY / "README.md", *(REPOSITORY / "docs").rglob("*.md")])
RUN_LABELS = ("python",)
SKIP_LABELS = ("bash", "text")
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class CodeBlock:
    label: str
    first_line: int
    source: str


def code_blocks(path: Path) -> list[CodeBlock]:
    """The fenced blocks of a markdown file, with their labels and the line each starts on."""
    try:
        return code_blocks_of_text(path.read_text(encoding="utf-8"))
    except AssertionError as error:
        raise AssertionError(f"{path}{error}") from None


def code_blocks_of_text(text: str) -> list[CodeBlock]:
    """The fenced blocks of markdown ``text``; an unclosed block raises AssertionError(':<line>: ...')."""
    blocks, opened, body = [], None, []
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if opened is None:
            if match:
                opened, body = (match.group(1), number), []
        elif line.rstrip() == "```":
            blocks.append(CodeBlock(opened[0], opened[1], "\n".join(body) + "\n"))
            opened = None
        else:
            body.append(line)
    if opened is not None:
        raise AssertionError(f":{opened[1]}: the code block is never closed")
    return blocks


def test_code_blocks_are_found_and_labelled():
    blocks = {path: code_blocks(path) for path in DOCUMENTS}
    assert sum(block.label in RUN_LABELS for found in blocks.values() for block in found) > 0
    unlabelled = [
        f"{path.relative_to(REPOSITORY)}:{block.first_line} ('{block.label}')"
        for path, found in blocks.items()
        for block in found
        if block.label not in RUN_LABELS + SKIP_LABELS
    ]
    assert not unlabelled, f"label these blocks {RUN_LABELS + SKIP_LABELS}: {unlabelled}"


def test_a_failing_block_names_its_file_and_line(tmp_path):
    document = tmp_path / "example.md"
    document.write_text("text\n\n```python\nx = 1\n```\n\n```python\nraise ValueError(x)\n```\n")
    with pytest.raises(AssertionError, match=r"example.md:7"):
        run_python_blocks(document)


def run_python_blocks(path: Path) -> None:
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in code_blocks(path):
        if block.label not in RUN_LABELS:
            continue
        try:
            exec(compile(block.source, f"{path.name}:{block.first_line}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{path}:{block.first_line}: the python block fails: {error!r}") from error


PYTHON_DOCUMENTS = [path for path in DOCUMENTS if any(block.label in RUN_LABELS for block in code_blocks(path))]


@pytest.mark.parametrize("path", PYTHON_DOCUMENTS, ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_python_blocks_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # files the examples write land here
    monkeypatch.setattr(compilation, "_compilation_enabled", False)
    matplotlib.use("Agg")
    default_dtype = torch.get_default_dtype()
    try:
        run_python_blocks(path)
    finally:  # an example may set global state (docs/distributions/smoothing.md uses float64): not for the next
        torch.set_default_dtype(default_dtype)
        pyro.clear_param_store()


def test_ci_runs_the_readme_test_block_verbatim():
    """.ci/run must run exactly the README Quickstart's second block (install the test extra, run the suite)."""
    quickstart = (REPOSITORY / "README.md").read_text(encoding="utf-8").split("## Quickstart", 1)[1]
    shell_blocks = [block for block in code_blocks_of_text(quickstart) if block.label == "bash"]
    ci_lines = (REPOSITORY / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    test_block = [line for line in shell_blocks[1].source.splitlines() if line.strip()]
    start = ci_lines.index(test_block[0])
    assert ci_lines[start: start + len(test_block)] == test_block
