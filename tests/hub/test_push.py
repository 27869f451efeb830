"""Pushing the hub package (tools/push.py) to a loopback Hub that speaks the Hub's HTTP protocol (LFS, no Xet),
then loading it back with datasets, in a fresh process pointed at the same server."""

import hashlib
import json
import os
import posixpath
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

import imagenet_sketch
from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.hub import export
from support.archives import class_members, write_zip
from support.hub_server import TOKEN, HubServer

REPO = "sketches/imagenet-sketch"
WNIDS = ["n01440764", "n02012849", "n03085013", "n03126707", "n03710637", "n03710721"]


@pytest.fixture
def source(tmp_path):
    return write_zip(tmp_path / "ImageNet-Sketch.zip", class_members(WNIDS, per_class=5))


@pytest.fixture
def package(tmp_path, source):
    """An export of six classes in several shards, and the builder's dataset it came from."""
    built = imagenet_sketch.load(str(source), cache_dir=str(tmp_path / "cache"))
    export.export(built, tmp_path / "pkg", max_shard_size="40KB", progress=False)
    return tmp_path / "pkg", built


def local_files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def push(capfd, *args) -> tuple[int, str]:
    """Run `imagenet-sketch push`; return its exit code and what it said (summary, or the error line)."""
    code = cli.main(["push", *map(str, args)])
    out, err = capfd.readouterr()
    assert TOKEN not in out + err
    errors = [line for line in err.splitlines() if line.startswith("imagenet-sketch: error: ")]
    assert len(errors) == (code != 0)
    return code, errors[0] if errors else out


LOAD = """
import datasets, hashlib, json, sys
rows = {}
for streaming in (False, True):
    ds = datasets.load_dataset(sys.argv[1], split="train", streaming=streaming)
    ds = ds.cast_column("image", datasets.Image(decode=False))
    rows[str(streaming)] = [
        [r["image"]["path"], hashlib.sha256(r["image"]["bytes"]).hexdigest(), r["label"], r["wnid"]] for r in ds
    ]
    rows["names"] = ds.features["label"].names
print(json.dumps(rows))
"""


def load_in_fresh_process(hub: HubServer, tmp_path: Path, repo_id: str) -> dict:
    """load_dataset(repo_id), normal and streaming, in a process whose datasets/huggingface_hub read HF_ENDPOINT."""
    env = dict(os.environ, HF_HOME=str(tmp_path / "reader"), HF_DATASETS_CACHE=str(tmp_path / "reader" / "ds"))
    result = subprocess.run([sys.executable, "-c", LOAD, repo_id], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


def expected_rows(built) -> list:
    undecoded = built.cast_column("image", datasets.Image(decode=False))
    return [
        [posixpath.basename(r["image"]["path"]), hashlib.sha256(r["image"]["bytes"]).hexdigest(), r["label"], r["wnid"]]
        for r in undecoded
    ]


@pytest.mark.slow
def test_push_arrives_byte_identical_and_load_dataset_reads_the_rows(hub, package, tmp_path, capfd):
    directory, built = package
    code, output = push(capfd, directory, "--repo-id", REPO)
    assert code == 0, output
    assert f"pushed {len(local_files(directory))} files" in output
    remote = hub.files(REPO)
    assert remote.pop(".gitattributes")
    assert remote == local_files(directory)
    assert len(hub.lfs_puts) == len(os.listdir(directory / "data")) > 1
    loaded = load_in_fresh_process(hub, tmp_path, REPO)
    assert loaded["False"] == loaded["True"] == expected_rows(built)
    assert loaded["names"] == built.features["label"].names
    assert any(path.endswith(".parquet") for path, _ in hub.ranges)  # streaming reads ranges, no full download


def test_an_interrupted_push_resumes_sending_only_the_missing_shard(hub, package, capfd):
    directory, _ = package
    shards = len(os.listdir(directory / "data"))
    hub.fail_lfs_put(2)
    code, output = push(capfd, directory, "--repo-id", REPO)
    assert code == 1 and "run the same command again to resume" in output
    assert "the push to sketches/imagenet-sketch was interrupted: Error while uploading 'data/train-" in output
    assert set(hub.files(REPO)) == {".gitattributes"}  # nothing committed
    assert len(hub.lfs_puts) == shards - 1
    code, output = push(capfd, directory, "--repo-id", REPO)
    assert code == 0, output
    assert len(hub.lfs_puts) == shards  # exactly one more upload: the shard that failed
    assert len(set(hub.lfs_puts)) == shards
    remote = hub.files(REPO)
    remote.pop(".gitattributes")
    assert remote == local_files(directory)


PUSH_TO_HUB = """
import sys, imagenet_sketch
imagenet_sketch.load(sys.argv[1], cache_dir=sys.argv[2]).push_to_hub(sys.argv[3], max_shard_size="40KB")
"""


def test_datasets_push_to_hub_of_the_same_data_changes_nothing(hub, package, source, tmp_path, capfd):
    directory, _ = package
    assert push(capfd, directory, "--repo-id", REPO)[0] == 0
    head, puts = hub.repos[REPO].branches["main"], len(hub.lfs_puts)
    env = dict(os.environ, HF_HOME=str(tmp_path / "pusher"))
    argv = [sys.executable, "-c", PUSH_TO_HUB, str(source), str(tmp_path / "cache"), REPO]
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(hub.lfs_puts) == puts  # every shard it wrote was already on the hub, byte for byte
    assert hub.repos[REPO].branches["main"] == head  # and the card it computed is the one already there


@pytest.mark.slow
def test_files_that_would_break_loading_stop_the_push_unless_deleting_is_asked(hub, package, tmp_path, capfd):
    directory, built = package
    hub._create(REPO, private=False)
    for name in ("imagenet-sketch.py", "data/train-00000-of-00099.parquet", "data/ImageNet-Sketch.zip", "notes.md"):
        hub.put_file(REPO, name, b"old " + name.encode())
    code, output = push(capfd, directory, "--repo-id", REPO)
    assert code == 1
    assert "imagenet-sketch.py" in output and "--delete-stale" in output and "nothing was sent" in output
    assert hub.lfs_puts == []
    code, output = push(capfd, directory, "--repo-id", REPO, "--delete-stale")
    assert code == 0 and "deleted 2 stale file(s)" in output
    remote = hub.files(REPO)
    assert "imagenet-sketch.py" not in remote and "data/train-00000-of-00099.parquet" not in remote
    assert remote["data/ImageNet-Sketch.zip"] == b"old data/ImageNet-Sketch.zip" and "notes.md" in remote
    assert load_in_fresh_process(hub, tmp_path, REPO)["False"] == expected_rows(built)


def test_pull_request_branch_and_private(hub, package, capfd):
    directory, _ = package
    code, output = push(capfd, directory, "--repo-id", REPO, "--private", "--create-pr")
    assert code == 0 and "pull request: " in output
    assert hub.repos[REPO].private
    assert set(hub.files(REPO)) == {".gitattributes"}
    assert hub.files(REPO, "refs/pr/1").keys() - {".gitattributes"} == local_files(directory).keys()
    assert push(capfd, directory, "--repo-id", REPO, "--revision", "parquet")[0] == 0
    assert hub.files(REPO, "parquet").keys() - {".gitattributes"} == local_files(directory).keys()
    assert hub.lfs_puts and len(set(hub.lfs_puts)) == len(hub.lfs_puts)  # the second push re-sent no shard


def test_bad_inputs_are_one_line_errors(hub, package, tmp_path, monkeypatch, capfd):
    directory, _ = package
    code, output = push(capfd, tmp_path, "--repo-id", REPO)
    assert code == 1 and "is not an exported package" in output
    code, output = push(capfd, directory, "--repo-id", REPO, "--create-pr", "--revision", "dev")
    assert code == 1 and "--create-pr" in output
    monkeypatch.setenv("HF_TOKEN", "hf_wrongtoken")
    code, output = push(capfd, directory, "--repo-id", REPO)
    assert code == 1 and "hf_wrongtoken" not in output
    monkeypatch.delenv("HF_TOKEN")
    code, output = push(capfd, directory, "--repo-id", REPO)
    assert code == 1 and "no Hugging Face token" in output
    assert REPO not in hub.repos
