"""The default source: streamed from the hub as it is, downloaded through the mirror chain for a build."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import datasets
import pytest

import imagenet_sketch
from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.common.files import file_sha256
from imagenet_sketch_tools.dataset import release, sources
from imagenet_sketch_tools.dataset.sample import sample_members
from imagenet_sketch_tools.fetch import download, locate, mirrors
from support.archives import class_members, write_zip
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


RELEASE_WNIDS = ["n01443537", "n01484850", "n01491361"]  # none of the sample's classes


@pytest.fixture
def release_zip(http_server, tmp_path_factory, monkeypatch):
    """The loopback server as the hub, serving a 9-row zip whose figures stand for the release's."""
    archive = write_zip(tmp_path_factory.mktemp("release") / "ImageNet-Sketch.zip", class_members(RELEASE_WNIDS))
    http_server.serve(HUB_ZIP_PATH, archive)
    monkeypatch.setenv("HF_ENDPOINT", http_server.url)
    figures = (archive.stat().st_size, file_sha256(archive))
    monkeypatch.setattr(download, "release_checksum", lambda: figures)
    return archive


def load_dataset_offline(cache: Path, *config: str) -> int:
    """Rows of `datasets.load_dataset("imagenet_sketch", *config)` in a fresh offline process, as a user runs it."""
    arguments = ", ".join(repr(value) for value in ["imagenet_sketch", *config])
    script = (
        f"import datasets; print(datasets.load_dataset({arguments}, cache_dir={str(cache)!r}, split='train').num_rows)"
    )
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", script], cwd=cache.parent, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1])


@pytest.mark.slow
def test_the_sample_never_stands_in_for_the_release(release_zip, tmp_path, capsys):
    cache = tmp_path / "cache"
    where = ["--cache-dir", str(cache)]
    assert cli.main(["build", "--sample", *where]) == 0 and capsys.readouterr().out.startswith("built 31 rows")
    assert imagenet_sketch.load(cache_dir=str(cache)).num_rows == 9  # no release prepared yet: downloaded
    assert cli.main(["build", "--sample", *where]) == 0  # the sample again, after the release, as README invites
    assert capsys.readouterr().out.startswith("built 31 rows")
    assert imagenet_sketch.load(cache_dir=str(cache)).num_rows == 9
    assert imagenet_sketch.load(name="sample", cache_dir=str(cache)).num_rows == 31
    assert cli.main(["build", *where]) == 0 and capsys.readouterr().out.startswith("built 9 rows")
    assert cli.main(["info", *where]) == 0 and "9 rows: not the full release" in capsys.readouterr().out
    assert load_dataset_offline(cache) == 9
    assert load_dataset_offline(cache, "default") == 9
    assert load_dataset_offline(cache, "sample") == 31


def test_kaggle_s_extracted_copy_is_a_copy_of_its_own(release_zip, http_server, tmp_path, monkeypatch, capsys):
    """Kaggle serves the release extracted: not checkable against the zip's sha256, so never keyed as the zip."""
    import kagglehub

    extracted = tmp_path / "kaggle"
    with zipfile.ZipFile(release_zip) as archive:
        archive.extractall(extracted)
    http_server.files.pop(HUB_ZIP_PATH)  # the hub has no file: the chain moves on
    monkeypatch.setenv(mirrors.GDRIVE_ENDPOINT_VARIABLE, http_server.url)  # Drive answers 404 as well
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret")
    monkeypatch.setattr(kagglehub, "dataset_download", lambda handle, *args, **kwargs: str(extracted))
    cache = str(tmp_path / "cache")
    from_kaggle = prepared_folder(cache)
    said = capsys.readouterr().err
    assert "Kaggle's copy" in said and "not checked against the zip's sha256" in said

    http_server.serve(HUB_ZIP_PATH, release_zip)
    from_zip = prepared_folder(cache)
    assert from_zip != from_kaggle  # the verified zip was downloaded and prepared, not served from Kaggle's copy
    assert download.default_output().read_bytes() == release_zip.read_bytes()


def prepared_folder(cache: str) -> Path:
    builder = imagenet_sketch.ImagenetSketch(cache_dir=cache)
    builder.download_and_prepare()
    dataset = builder.as_dataset("train")
    assert isinstance(dataset, datasets.Dataset)
    return Path(dataset.cache_files[0]["filename"]).parent
