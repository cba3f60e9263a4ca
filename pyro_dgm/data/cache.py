"""Where downloaded datasets are kept.

The cache root is, in order of precedence,

1. the environment variable ``PYRO_DGM_DATA`` (an explicit choice always wins);
2. the user cache folder that :mod:`platformdirs` reports for ``pyro_dgm``,
   when :mod:`platformdirs` is installed (``~/.cache/pyro_dgm`` on Linux,
   ``~/Library/Caches/pyro_dgm`` on macOS, ``%LOCALAPPDATA%\\pyro_dgm\\Cache`` on Windows);
3. ``~/.cache/pyro_dgm``.

Each dataset has its own sub-folder (``<root>/<dataset name>/``), so datasets whose
files share names (MNIST and Fashion-MNIST both ship ``train-images-idx3-ubyte.gz``)
never collide. Nothing here creates folders: the downloader does, when it writes.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_HOME_ENV = "PYRO_DGM_DATA"
"""Environment variable that overrides the cache root."""

CACHE_APP_NAME = "pyro_dgm"
"""Folder name under the user cache directory."""


def data_home() -> Path:
    """The cache root (see the module docstring for the order of precedence)."""
    from_env = os.environ.get(DATA_HOME_ENV)
    if from_env:
        return Path(from_env).expanduser()
    try:
        import platformdirs
    except ImportError:
        return Path.home() / ".cache" / CACHE_APP_NAME
    return Path(platformdirs.user_cache_dir(CACHE_APP_NAME, appauthor=False))


def dataset_cache_dir(name: str) -> Path:
    """The folder that holds the files of dataset ``name`` (``<data_home()>/<name>``)."""
    return data_home() / name
