"""Fixtures: archives in the release layout made at test time, and a loopback HTTP server with Range support."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from hub_server import TOKEN, HubServer
from imagenet_sketch_tools.sample import sample_members, sketch_jpeg
from loopback import RangeServer


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


def write_zip(path: Path, members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip with exactly these members, in this order (unlike the packager, which sorts)."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return path


def class_members(wnids: list[str], per_class: int = 3, top: str = "sketch") -> list[tuple[str, bytes]]:
    """`per_class` small sketches per wnid, named like the release."""
    return [
        (
            f"{top}/{wnid}/sketch_{n}.JPEG",
            sketch_jpeg(seed=i * 100 + n, mode="RGB" if n % 2 else "L", size=(48, 40)),
        )
        for i, wnid in enumerate(wnids)
        for n in range(per_class)
    ]


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
