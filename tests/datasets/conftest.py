"""Every data set test runs with its own empty cache and HOME, and with every download mirror
pointed at a local port where nothing listens, so no test can reach the real network."""

from __future__ import annotations

import pytest

from gpunet.datasets import registry
from tests.datasets.synth import dead_url, start_server


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    dead = dead_url()
    for name, var in registry.MIRROR_ENV.items():
        monkeypatch.setitem(registry.MIRRORS, name, [dead])
        monkeypatch.setenv(var, dead)


@pytest.fixture
def no_data_env(monkeypatch):
    """GPUNET_DATA unset (use after `shared_data` when both are needed)."""
    monkeypatch.delenv("GPUNET_DATA", raising=False)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "xdg-cache" / "gpunet"


@pytest.fixture
def server():
    state, httpd = start_server()
    yield state
    httpd.shutdown()
    httpd.server_close()
