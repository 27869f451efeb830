"""The default source: streamed from the hub as it is, downloaded through the mirror chain for a build."""

from __future__ import annotations

import pytest

import imagenet_sketch
from imagenet_sketch_tools.common.files import file_sha256
from imagenet_sketch_tools.dataset import release, sources
from imagenet_sketch_tools.dataset.sample import sample_members
from imagenet_sketch_tools.fetch import download, locate
from support.loopback import HUB_ZIP_PATH


@pytest.fixture
def hub(http_server, sample_zip, monkeypatch):
    """The loopback server as the hub, serving the sample zip, whose figures stand for the release's."""
    http_server.serve(HUB_ZIP_PATH, sample_zip)
    monkeypatch.setenv("HF_ENDPOINT", http_server.url)
    figures = (sample_zip.stat().st_size, file_sha256(sample_zip))
    monkeypatch.setattr(download, "release_checksum", lambda: figures)
    return http_server


def test_hub_url_follows_hf_endpoint(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert (
        release.hub_url()
        == "https://huggingface.co/datasets/songweig/imagenet_sketch/resolve/main/data/ImageNet-Sketch.zip"
    )
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example/")
    assert release.hub_url() == "http://mirror.example" + HUB_ZIP_PATH
    assert locate.resolve(sources.DEFAULT_SOURCE) == "http://mirror.example" + HUB_ZIP_PATH
    assert locate.resolve("/data/ImageNet-Sketch.zip", streaming=False) == "/data/ImageNet-Sketch.zip"


def test_build_without_source_downloads_verified_then_reads_locally(hub, sample_zip):
    dataset = imagenet_sketch.load()
    assert dataset.num_rows == len(sample_members())
    local = download.default_output()
    assert local.read_bytes() == sample_zip.read_bytes()
    # One whole-file GET: the build read the local copy, not the hub, range by range.
    assert hub.requests == [("GET", HUB_ZIP_PATH, None)]


def test_streaming_without_source_downloads_nothing(hub):
    first = next(iter(imagenet_sketch.load(streaming=True)))
    assert first["wnid"] == min(name.split("/")[1] for name, _ in sample_members())
    assert not download.default_output().exists()
    assert all(range_ is not None for method, _, range_ in hub.requests if method == "GET")
