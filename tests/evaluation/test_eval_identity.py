"""The one reuse rule (`identity.identity`): a file by path, size and modification time, a package by its shards,
a dataset by its fingerprint, a model by its spec or its weights; and a re-exported package with the same row
counts is not taken for the old one."""

from __future__ import annotations

import os
import shutil

import datasets
import fsspec
import pyarrow.parquet as pq
import pytest

from imagenet_sketch_tools.evaluation.identity import identity
from imagenet_sketch_tools.evaluation.spec import parse_spec


def test_a_file_is_its_path_size_and_modification_time(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"weights one")
    os.utime(path, ns=(10**18, 10**18))
    first = identity(path)
    assert identity(str(path)) == first  # a str or a Path: the same file
    path.write_bytes(b"weights two")  # same size, other content, written later
    os.utime(path, ns=(10**18 + 1, 10**18 + 1))
    assert identity(path) != first
    os.utime(path, ns=(10**18, 10**18))
    path.write_bytes(b"weights three")  # another size
    os.utime(path, ns=(10**18, 10**18))
    assert identity(path) != first


def test_shards_are_each_shards_identity_in_order_locally_and_through_fsspec(tmp_path):
    shards = []
    for index in range(2):
        shard = tmp_path / f"train-0000{index}-of-00002.parquet"
        shard.write_bytes(b"x" * (10 + index))
        shards.append(str(shard))
    assert identity(shards) != identity(shards[::-1])
    filesystem = fsspec.filesystem("file")
    remote = identity(shards, filesystem)
    assert remote.startswith("files:") and remote != identity(shards)  # the backend's own facts
    os.utime(shards[1], ns=(10**18, 10**18))
    assert identity(shards, filesystem) != remote
    assert identity(shards[0], filesystem).startswith("file:") and ":10:" in identity(shards[0], filesystem)


def test_a_dataset_is_its_fingerprint_and_a_model_its_spec_or_weights():
    dataset = datasets.Dataset.from_dict({"label": [0, 1]})
    assert identity(dataset) == f"dataset:{dataset._fingerprint}"
    assert identity(dataset.select([1])) != identity(dataset)
    assert identity(parse_spec("resnet50.tv_in1k")) == "spec:timm:resnet50.tv_in1k"
    torch = pytest.importorskip("torch", reason="torch is not installed: no module to digest")
    torch.manual_seed(0)
    one, two = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    assert identity(one) != identity(two) and identity(one).startswith("module:Linear:")
    two.load_state_dict(one.state_dict())
    assert identity(one) == identity(two)
    with pytest.raises(TypeError, match="no identity rule for a float"):
        identity(1.5)


def test_a_reexported_package_with_the_same_row_counts_is_evaluated_again(tmp_path):
    pytest.importorskip("torch", reason="torch is not installed: the model needs it")
    import imagenet_sketch
    from eval_data import CODED, KNOWN, coded_zip_at
    from imagenet_sketch_tools.evaluation import evaluate
    from imagenet_sketch_tools.hub import export

    package, output = tmp_path / "pkg", tmp_path / "out"

    def export_of(coded, name):
        archive = coded_zip_at(tmp_path / f"{name}.zip", coded)
        built = imagenet_sketch.load(str(archive), cache_dir=str(tmp_path / "cache"))
        shutil.rmtree(package, ignore_errors=True)  # export writes a new folder: the old one goes first
        export.export(built, package, progress=False)

    export_of(CODED, "first")
    first = evaluate(KNOWN, str(package), output=output, workers=0)
    counts = [pq.ParquetFile(path).metadata.num_rows for path in sorted((package / "data").iterdir())]
    # the same classes and counts, other images: every image now a top-1 hit
    export_of({wnid: [0] * len(ranks) for wnid, ranks in CODED.items()}, "second")
    assert [pq.ParquetFile(path).metadata.num_rows for path in sorted((package / "data").iterdir())] == counts
    second = evaluate(KNOWN, str(package), output=output, workers=0)
    assert not second.reused and second.computed == 16
    assert (first.scores.top1, second.scores.top1) == (31.25, 100.0)
