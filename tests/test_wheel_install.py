"""The wheel installs as users install it and trains from the embedded data, without the source tree.

The test builds a wheel from a copy of the package's files, installs it with ``--no-deps``
into a fresh virtual environment that sees this interpreter's packages
(``--system-site-packages``: torch and pyro are not downloaded again), and runs a
one-epoch ``pyro-dgm train`` from an empty folder. The run must import the installed
copy (not a checkout), find the embedded MNIST subset inside it and write its run folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = REPOSITORY / "pyro_dgm"
BUILD_LEFTOVERS = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "runs", ".venv", ".pytest_cache")
SUBPROCESS_TIMEOUT_SECONDS = 900
"""Generous: a one-epoch run takes seconds, but the machine may be shared."""

pytestmark = pytest.mark.slow


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_SECONDS
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the source tree (so the checkout gains no build folders)."""
    source = tmp_path_factory.mktemp("source") / "pyro_dgm_source"
    shutil.copytree(REPOSITORY, source, ignore=BUILD_LEFTOVERS)
    output = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(output)], source)
    (built,) = output.glob("pyro_dgm-*.whl")
    return built


def test_wheel_holds_every_module_the_embedded_data_and_py_typed(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        path.relative_to(REPOSITORY).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert "pyro_dgm/py.typed" in expected and "pyro_dgm/data/embedded/mnist_subset.npz" in expected
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"


def test_installed_wheel_trains_one_epoch_on_the_embedded_data(wheel, tmp_path):
    environment = tmp_path / "venv"
    venv.create(environment, system_site_packages=True, with_pip=False)
    python = environment / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", str(wheel)], tmp_path)
    workdir = tmp_path / "user"
    workdir.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    located = run([str(python), "-c", "import pyro_dgm; print(pyro_dgm.__file__)"], workdir, env).stdout.strip()
    assert Path(located).is_relative_to(environment), f"imported {located}, not the installed wheel"
    run(
        [str(environment / "bin" / "pyro-dgm"), "train", "--run-dir", "run", "--model", "sbn", "--layers", "20",
         "-k", "2", "--epochs", "1", "--valid-particles", "0", "--no-progress"],
        workdir,
        env,
    )
    metrics = [json.loads(line) for line in (workdir / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in metrics] == [1]
    assert (workdir / "run" / "checkpoint.pt").exists()
    version = run([str(environment / "bin" / "pyro-dgm"), "--version"], workdir, env).stdout
    assert version.startswith("pyro-dgm ")
