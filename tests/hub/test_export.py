"""The hub package export (tools/export.py): shards as push_to_hub writes them, round trip through load_dataset."""

import os
import posixpath
import re
import signal
import time

import datasets
import duckdb
import pyarrow.parquet as pq
import pytest

import imagenet_sketch
from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.hub import card, export
from support.archives import class_members, write_zip
from support.interrupts import (
    assert_interrupted,
    assert_terminated,
    interrupt,
    start_cli,
    start_python,
    stop_if_running,
    terminate,
    worker_pids,
)

WNIDS = ["n01440764", "n02012849", "n03085013", "n03126707", "n03710637", "n03710721"]


@pytest.fixture
def built(tmp_path):
    """The builder's train split for a generated archive of six classes, five images each."""
    source = write_zip(tmp_path / "ImageNet-Sketch.zip", class_members(WNIDS, per_class=5))
    return imagenet_sketch.load(str(source), cache_dir=str(tmp_path / "cache"))


def raw_rows(dataset):
    undecoded = dataset.cast_column("image", datasets.Image(decode=False))
    return [(row["image"]["path"], row["image"]["bytes"], row["label"], row["wnid"]) for row in undecoded]


def expected_rows(built):
    """The builder's rows as push_to_hub stores them: bytes untouched, the path reduced to its file name."""
    return [(posixpath.basename(path), content, label, wnid) for path, content, label, wnid in raw_rows(built)]


def test_shards_are_named_sized_and_chunked_as_push_to_hub(tmp_path, built):
    plan = export.plan_shards(built, "40KB")
    summary = export.export(built, tmp_path / "pkg", max_shard_size="40KB", progress=False)
    files = sorted(os.listdir(tmp_path / "pkg" / "data"))
    assert summary.shards == plan.num_shards == int(built._estimate_nbytes() / 40_000) + 1 > 1
    assert files == [f"train-{i:05d}-of-{plan.num_shards:05d}.parquet" for i in range(plan.num_shards)]
    assert summary.download_size == sum(os.path.getsize(tmp_path / "pkg" / "data" / name) for name in files)
    lengths = []
    for name in files:
        metadata = pq.ParquetFile(tmp_path / "pkg" / "data" / name).metadata
        assert b"content_defined_chunking" in metadata.metadata and b"huggingface" in metadata.metadata
        assert all(metadata.row_group(i).num_rows <= plan.writer_batch_size for i in range(metadata.num_row_groups))
        lengths.append(metadata.num_rows)
    # contiguous shards, sizes as Dataset.shard(contiguous=True) splits them
    assert lengths == [len(built.shard(plan.num_shards, i, contiguous=True)) for i in range(plan.num_shards)]


def test_load_dataset_gives_the_builders_rows_and_features(tmp_path, built):
    export.export(built, tmp_path / "pkg", max_shard_size="40KB", progress=False)
    loaded = datasets.load_dataset(str(tmp_path / "pkg"), split="train")
    assert loaded.features == built.features
    assert loaded.features["label"].names == built.features["label"].names
    assert raw_rows(loaded) == expected_rows(built)


def test_streaming_gives_the_builders_rows(tmp_path, built):
    export.export(built, tmp_path / "pkg", max_shard_size="40KB", progress=False)
    streamed = datasets.load_dataset(str(tmp_path / "pkg"), split="train", streaming=True)
    streamed = streamed.cast_column("image", datasets.Image(decode=False))
    assert streamed.features == built.features.copy() | {"image": datasets.Image(decode=False)}
    rows = [(row["image"]["path"], row["image"]["bytes"], row["label"], row["wnid"]) for row in streamed]
    assert rows == expected_rows(built)


def test_parquet_reads_without_datasets(tmp_path, built):
    export.export(built, tmp_path / "pkg", max_shard_size="40KB", progress=False)
    table = pq.read_table(tmp_path / "pkg" / "data")
    expected = expected_rows(built)
    assert table.num_rows == len(expected)
    assert [image["bytes"] for image in table.column("image").to_pylist()] == [row[1] for row in expected]
    pattern = str(tmp_path / "pkg" / "data" / "*.parquet")
    counts = duckdb.execute(
        f"SELECT wnid, label, count(*) FROM read_parquet('{pattern}') GROUP BY ALL ORDER BY wnid"
    ).fetchall()
    assert counts == sorted({(wnid, label, 5) for _, _, label, wnid in expected})
    sizes = duckdb.execute(f"SELECT sum(octet_length(image.bytes)) FROM read_parquet('{pattern}')").fetchall()[0][0]
    assert sizes == sum(len(row[1]) for row in expected)


@pytest.mark.slow
def test_parallel_export_writes_the_same_bytes(tmp_path, built):
    export.export(built, tmp_path / "one", max_shard_size="40KB", progress=False)
    export.export(built, tmp_path / "two", max_shard_size="40KB", num_proc=2, progress=False)
    for name in ["README.md", "dataset_infos.json", *(f"data/{f}" for f in os.listdir(tmp_path / "one" / "data"))]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_an_interrupted_export_leaves_nothing_that_looks_complete(tmp_path, built, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(card, "write_package_metadata", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.export(built, tmp_path / "pkg", progress=False)
    assert sorted(os.listdir(tmp_path)) == ["ImageNet-Sketch.zip", "cache"]


def test_refuses_to_write_into_a_folder_with_files(tmp_path, built):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mine.txt").write_text("keep me")
    with pytest.raises(UserError, match="already exists"):
        export.export(built, tmp_path / "pkg", progress=False)
    assert os.listdir(tmp_path / "pkg") == ["mine.txt"]


def test_command_exports_with_audit_and_reports_a_summary(tmp_path, capsys):
    source = write_zip(tmp_path / "ImageNet-Sketch.zip", class_members(WNIDS[:2], per_class=3))
    (tmp_path / "audit.csv").write_text("path,flag\nn01440764/sketch_0.JPEG,ok\n")
    argv = [
        "export",
        "--source",
        str(source),
        "--output",
        str(tmp_path / "pkg"),
        "--audit",
        str(tmp_path / "audit.csv"),
    ]
    assert cli.main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"exported 6 rows in 1 shard\(s\), [\d.]+ MB of parquet .* in [\d.]+ s", out)
    assert (tmp_path / "pkg" / "audit.csv").read_text() == (tmp_path / "audit.csv").read_text()
    assert "(audit.csv)" in (tmp_path / "pkg" / "README.md").read_text()


@pytest.mark.parametrize(
    "extra, message",
    [(["--max-shard-size", "lots"], "is not a size"), (["--audit", "missing.csv"], "is not a file")],
)
def test_command_bad_options_are_one_line_errors(tmp_path, capsys, extra, message):
    source = write_zip(tmp_path / "ImageNet-Sketch.zip", class_members(WNIDS[:1], per_class=2))
    argv = ["export", "--source", str(source), "--output", str(tmp_path / "pkg"), "--cache-dir", str(tmp_path / "c")]
    assert cli.main(argv + extra) == 1
    err = capsys.readouterr().err
    assert err.startswith("imagenet-sketch: error: ") and message in err and err.count("\n") == 1  # before any build
    assert not (tmp_path / "pkg").exists() and not (tmp_path / "c").exists()


# Runs the command in a process of its own, held still when the first shard is reported done: the export's
# progress bar stops in its first update (a marker file says so) until the interrupt arrives, or until the test
# creates the `go` file. Nothing of the export is replaced; the pause only makes sure shards are still unfinished
# when the test acts.
PAUSED_EXPORT = """
import sys, time
from pathlib import Path
import tqdm.auto
update = tqdm.auto.tqdm.update
def paused_update(bar, n=1):
    if getattr(bar, "desc", "").startswith("Exporting parquet shards") and n:
        Path({marker!r}).write_text("a shard is done")
        while not Path({go!r}).exists():  # until the test says go, or the interrupt
            time.sleep(0.01)
    return update(bar, n)
tqdm.auto.tqdm.update = paused_update
from imagenet_sketch_tools.cli.main import main
sys.exit(main({argv!r}))
"""


def shard_count(out: str) -> int:
    """The shard count the export's summary line gives."""
    said = re.search(r"in (\d+) shard\(s\)", out)
    assert said, out
    return int(said[1])


def start_paused_export(tmp_path, argv: list[str]):
    """The export command in a process of its own, once it is paused with a shard written (see PAUSED_EXPORT)."""
    marker, go = tmp_path / "exporting", tmp_path / "go"
    process = start_python("-c", PAUSED_EXPORT.format(marker=str(marker), go=str(go), argv=argv))
    while not marker.exists():  # the marker is the synchronisation; the poll only bounds a failed start
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    return process, go


def export_argv(tmp_path, source, output, *extra: str) -> list[str]:
    return ["export", "--source", str(source), "--output", str(output), "--cache-dir", str(tmp_path / "cache"), *extra]


@pytest.mark.slow
def test_a_second_export_to_the_same_output_stops_and_the_first_completes(tmp_path):
    """Two real processes: while the first holds the output (paused after a shard), the second stops at once
    with one line naming the first, and touches nothing; the first then finishes a complete package."""
    source = write_zip(tmp_path / "ImageNet-Sketch.zip", class_members(WNIDS, per_class=5))
    output = tmp_path / "pkg"
    argv = export_argv(tmp_path, source, output, "--max-shard-size", "8KB")
    imagenet_sketch.load(str(source), cache_dir=str(tmp_path / "cache"))  # built once, before either export
    first, go = start_paused_export(tmp_path, argv)
    second = start_cli(*argv)
    try:
        out, err = second.communicate(timeout=600)
        assert second.returncode == 1, err
        assert re.fullmatch(
            rf"imagenet-sketch: error: '{output}' is being written by another export, pid {first.pid} .*"
            r"wait for it to finish or choose another --output\n",
            err,
        ), err
        go.write_text("go")
        out, err = first.communicate(timeout=600)
        assert first.returncode == 0, err
    finally:
        stop_if_running(first, second)
    shards = shard_count(out)
    assert sorted(os.listdir(output / "data")) == [f"train-{i:05d}-of-{shards:05d}.parquet" for i in range(shards)]
    assert datasets.load_dataset(str(output), split="train").num_rows == 30
    assert sorted(name for name in os.listdir(tmp_path) if name.startswith(".")) == []


@pytest.mark.slow
def test_what_a_killed_export_left_is_removed_by_the_next(tmp_path):
    source = write_zip(tmp_path / "ImageNet-Sketch.zip", class_members(WNIDS, per_class=5))
    output = tmp_path / "pkg"
    argv = export_argv(tmp_path, source, output, "--max-shard-size", "8KB")
    killed, _ = start_paused_export(tmp_path, argv)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.communicate()
    assert [name for name in os.listdir(tmp_path) if name.endswith(".partial")]  # a staging folder was left
    rerun = start_cli(*argv)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]
    assert datasets.load_dataset(str(output), split="train").num_rows == 30


@pytest.mark.slow
def test_ctrl_c_during_export_with_two_processes(tmp_path):
    source = write_zip(tmp_path / "ImageNet-Sketch.zip", class_members(WNIDS, per_class=5))
    output = tmp_path / "pkg"
    argv = export_argv(tmp_path, source, output, "--num-proc", "2", "--max-shard-size", "8KB")
    process, _ = start_paused_export(tmp_path, argv)
    assert_interrupted(*interrupt(process))
    assert not output.exists() and not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]

    rerun = start_cli(*argv)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0 and "Warning" not in err, err  # e.g. no "leaked semaphore" from the workers
    shards = shard_count(out)
    assert shards >= 3 and len(os.listdir(output / "data")) == shards
    assert datasets.load_dataset(str(output), split="train").num_rows == 30


@pytest.mark.slow
def test_sigterm_during_export_with_two_processes(tmp_path):
    """SIGTERM to the command only, while it is paused with shards unfinished: exit 143 with one line, its two
    workers stopped (before: they went on under PID 1), no package and no staging folder left."""
    source = write_zip(tmp_path / "ImageNet-Sketch.zip", class_members(WNIDS, per_class=5))
    output = tmp_path / "pkg"
    argv = export_argv(tmp_path, source, output, "--num-proc", "2", "--max-shard-size", "8KB")
    process, _ = start_paused_export(tmp_path, argv)
    workers = worker_pids(process.pid)
    code, err, survivors = terminate(process)
    assert len(workers) == 2, workers
    assert_terminated(code, err, survivors)
    assert not output.exists() and not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]
