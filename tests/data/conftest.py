"""Fixtures for the data tests: an isolated cache, temporary registry entries, a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from pathlib import Path

import pytest

from pyro_dgm.data import registry
from pyro_dgm.data.cache import DATA_HOME_ENV
from pyro_dgm.data.spec import DatasetSpec

MNIST_IDX_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
"""The project's copies of the four MNIST IDX files (beside the repository); tests skip without them."""

SERVER_LIFETIME_SECONDS = 60.0
"""Watchdog: the local server shuts itself down after this long even if teardown never runs."""

SERVER_POLL_SECONDS = 0.02
"""How often ``serve_forever`` checks for shutdown (the default 0.5 s would dominate test time)."""


@pytest.fixture
def mnist_idx_dir() -> Path:
    if not all((MNIST_IDX_DIR / f"{prefix}-{kind}-ubyte.gz").is_file()
               for prefix in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")):
        pytest.skip(f"MNIST IDX files not found in {MNIST_IDX_DIR}")
    return MNIST_IDX_DIR


@pytest.fixture
def cache_root(tmp_path, monkeypatch) -> Path:
    """An empty cache root, selected through PYRO_DGM_DATA."""
    root = tmp_path / "cache"
    monkeypatch.setenv(DATA_HOME_ENV, str(root))
    return root


@pytest.fixture
def register(monkeypatch):
    """Register a spec for the duration of one test."""

    def _register(spec: DatasetSpec) -> DatasetSpec:
        monkeypatch.setitem(registry.DATASETS, spec.name, spec)
        return spec

    return _register


class _RecordingHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, requests: list[str], **kwargs):
        self._requests = requests
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self._requests.append(self.path)
        super().do_GET()

    def log_message(self, format, *args):  # keep test output clean
        pass


class LocalServer:
    """A file server on 127.0.0.1 serving ``folder``; ``requests`` lists the paths asked for."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.requests: list[str] = []
        handler = functools.partial(_RecordingHandler, directory=str(folder), requests=self.requests)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": SERVER_POLL_SECONDS}, daemon=True
        )
        self._watchdog = threading.Timer(SERVER_LIFETIME_SECONDS, self._server.shutdown)
        self._watchdog.daemon = True

    def url(self, filename: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{filename}"

    def __enter__(self) -> "LocalServer":
        self._thread.start()
        self._watchdog.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._watchdog.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def local_server(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    with LocalServer(folder) as server:
        yield server


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
