"""Fixtures for every test: isolated caches, archives in the release layout, loopback servers (in support/); and,
under CI (the environment variable CI set, as .ci/run does), a skipped test fails the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagenet_sketch_tools.dataset.sample import sample_members
from support.archives import write_zip
from support.hub_server import TOKEN, HubServer
from support.loopback import RangeServer


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path_factory, monkeypatch):
    """Keep every cache (datasets, hub, sample) inside the test's temporary folders, and stay offline."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", os.environ.get("HF_HUB_OFFLINE", "1"))
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")


@pytest.fixture
def sample_zip(tmp_path) -> Path:
    return write_zip(tmp_path / "ImageNet-Sketch.zip", sample_members())


@pytest.fixture
def http_server():
    server = RangeServer()
    yield server
    server.close()


@pytest.fixture
def hub(monkeypatch):
    """A loopback Hub (HTTP API, LFS, no Xet) that huggingface_hub and datasets in this process talk to."""
    import huggingface_hub.constants
    from huggingface_hub import HfFileSystem

    server = HubServer(token=TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", server.url)
    template = server.url + "/{repo_id}/resolve/{revision}/{filename}"  # made from ENDPOINT at import time
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    HfFileSystem.clear_instance_cache()  # an instance made earlier would keep the endpoint it was made with
    yield server
    HfFileSystem.clear_instance_cache()
    server.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """CI installs every extra and chromium, so there a skip means something is missing: the run fails."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter:
            reporter.write_line("")
            reporter.write_sep("=", f"CI skips nothing, and {skipped} test(s) skipped: see why below", red=True)
