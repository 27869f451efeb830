"""The builder (imagenet_sketch.py): labels, bytes, order, sources, streaming, num_proc, the cache."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter

import datasets
import pytest

import imagenet_sketch
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.dataset.classes import label_of_wnid
from support.archives import class_members, write_zip
from support.interrupts import first_line, start_cli, start_python, stop_if_running


def prepare(tmp_path, source, **kwargs) -> datasets.Dataset:
    builder = imagenet_sketch.ImagenetSketch(source=str(source), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare(**kwargs)
    dataset = builder.as_dataset("train")
    assert isinstance(dataset, datasets.Dataset)
    return dataset


def raw(dataset: datasets.Dataset) -> list[dict]:
    """The rows, images undecoded (path and bytes)."""
    return dataset.cast_column("image", datasets.Image(decode=False)).to_list()


def rows(dataset: datasets.Dataset):
    return [(row["image"]["path"], row["image"]["bytes"], row["label"], row["wnid"]) for row in raw(dataset)]


def test_features_and_labels(tmp_path, sample_zip):
    dataset = prepare(tmp_path, sample_zip)
    assert set(dataset.features) == {"image", "label", "wnid"}
    assert isinstance(dataset.features["image"], datasets.Image)
    assert dataset.features["label"].num_classes == 1000
    assert dataset.features["label"].names[0] == "tench, Tinca tinca"
    for row in raw(dataset):
        assert row["label"] == label_of_wnid()[row["wnid"]]
        assert row["image"]["path"].startswith(row["wnid"] + "/")
    assert dataset.num_rows == 31
    assert dataset[0]["image"].size[0] > 0


def test_images_are_the_members_untouched(tmp_path, sample_zip):
    dataset = prepare(tmp_path, sample_zip)
    with zipfile.ZipFile(sample_zip) as archive:
        for path, content, _, _ in rows(dataset):
            member = archive.read("sketch/" + path)
            assert hashlib.sha256(content).hexdigest() == hashlib.sha256(member).hexdigest()


def test_order_is_by_wnid_then_number(tmp_path, sample_zip):
    paths = [path for path, *_ in rows(prepare(tmp_path, sample_zip))]
    tench = [path for path in paths if path.startswith("n01440764/")]
    assert tench == [f"n01440764/sketch_{n}.JPEG" for n in range(12)]
    assert [path.split("/")[0] for path in paths] == sorted(path.split("/")[0] for path in paths)


def test_a_missing_class_keeps_every_other_index(tmp_path):
    wnids = ["n01440764", "n01443537", "n01484850"]
    full = prepare(tmp_path / "full", write_zip(tmp_path / "full.zip", class_members(wnids)))
    partial_members = class_members(wnids)[3:]  # no n01440764 at all
    partial = prepare(tmp_path / "partial", write_zip(tmp_path / "partial.zip", partial_members))
    labels = {row["wnid"]: row["label"] for row in full.to_list()}
    assert {row["wnid"]: row["label"] for row in partial.to_list()} == {w: labels[w] for w in wnids[1:]}
    assert labels["n01443537"] == 1


def test_crane_and_maillot_pairs_keep_distinct_labels(tmp_path, sample_zip):
    labels = {row["wnid"]: row["label"] for row in prepare(tmp_path, sample_zip).to_list()}
    assert labels["n02012849"] == 134 and labels["n03126707"] == 517
    assert labels["n03710637"] == 638 and labels["n03710721"] == 639


def test_junk_is_skipped_and_extensions_match_any_case(tmp_path):
    members = class_members(["n01440764"], per_class=2) + [
        ("sketch/", b""),
        ("sketch/n01440764/.DS_Store", b"junk"),
        ("__MACOSX/sketch/n01440764/._sketch_0.JPEG", b"junk"),
        ("sketch/n01440764/Thumbs.db", b"junk"),
        ("sketch/n01440764/extra.jpg", class_members(["n01440764"], 1)[0][1]),
        ("sketch/n01440764/more.png", class_members(["n01440764"], 1)[0][1]),
    ]
    dataset = prepare(tmp_path, write_zip(tmp_path / "a.zip", members))
    assert sorted(path for path, *_ in rows(dataset)) == sorted(
        ["n01440764/sketch_0.JPEG", "n01440764/sketch_1.JPEG", "n01440764/extra.jpg", "n01440764/more.png"]
    )


def test_unknown_wnid_folder_is_an_error_naming_it(tmp_path):
    members = class_members(["n01440764"]) + [("sketch/n00000000/sketch_0.JPEG", b"x")]
    with pytest.raises(UserError, match="n00000000"):
        prepare(tmp_path, write_zip(tmp_path / "a.zip", members))


@pytest.mark.parametrize("top", ["sketch", ""])
def test_extracted_folder_equals_zip(tmp_path, sample_zip, top):
    folder = tmp_path / "extracted"
    with zipfile.ZipFile(sample_zip) as archive:
        archive.extractall(folder)
    root = folder if top else folder / "sketch"
    assert rows(prepare(tmp_path / "folder", root)) == rows(prepare(tmp_path / "zip", sample_zip))


def test_num_proc_2_gives_the_same_dataset(tmp_path, sample_zip):
    assert rows(prepare(tmp_path / "two", sample_zip, num_proc=2)) == rows(prepare(tmp_path / "one", sample_zip))


def test_streaming_equals_prepared(tmp_path, sample_zip):
    builder = imagenet_sketch.ImagenetSketch(source=str(sample_zip), cache_dir=str(tmp_path / "cache"))
    streamed = builder.as_streaming_dataset("train")
    assert isinstance(streamed, datasets.IterableDataset)
    streamed = streamed.cast_column("image", datasets.Image(decode=False))
    streamed_rows = [(r["image"]["path"], r["image"]["bytes"], r["label"], r["wnid"]) for r in streamed]
    assert streamed_rows == rows(prepare(tmp_path, sample_zip))


def test_http_source_reads_ranges_and_streams_the_first_example_early(tmp_path, sample_zip, http_server):
    wnids = sorted(label_of_wnid())[:40]
    archive = write_zip(tmp_path / "forty.zip", class_members(wnids))
    url = http_server.serve("/ImageNet-Sketch.zip", archive)
    size = archive.stat().st_size
    builder = imagenet_sketch.ImagenetSketch(source=url, cache_dir=str(tmp_path / "cache"))
    first = next(iter(builder.as_streaming_dataset("train")))
    assert first["wnid"] == "n01440764" and first["image"].size[0] > 0
    full_gets = [r for r in http_server.requests if r[0] == "GET" and r[2] is None]
    assert not full_gets, "the whole archive was requested"
    ranges = [r[2] for r in http_server.requests if r[2]]
    fetched = sum(int(b) - int(a) + 1 for a, b in (r.removeprefix("bytes=").split("-") for r in ranges))
    assert fetched < size / 4
    assert rows(prepare(tmp_path / "http", url)) == rows(prepare(tmp_path / "local", archive))


def offline_load_dataset(tmp_path, cache, then: str, config: str | None = None) -> str:
    """What a fresh, offline interpreter prints after `d = load_dataset("imagenet_sketch", [config], split="train")`."""
    name = f"'imagenet_sketch', {config!r}" if config else "'imagenet_sketch'"
    script = f"import datasets; d = datasets.load_dataset({name}, cache_dir={str(cache)!r}, split='train');"
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", script + then], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_load_dataset_finds_the_prepared_copy_offline(tmp_path, sample_zip):
    cache = tmp_path / "cache"
    prepare(tmp_path, sample_zip)
    said = offline_load_dataset(tmp_path, cache, "print(d.num_rows, d.features['label'].num_classes, d[0]['wnid'])")
    assert said.split() == ["31", "1000", "n01440764"]


def test_load_without_source_uses_the_prepared_copy(tmp_path, sample_zip):
    built = prepare(tmp_path, sample_zip)
    again = imagenet_sketch.load(cache_dir=str(tmp_path / "cache"))
    assert rows(again) == rows(built)
    streamed = imagenet_sketch.load(cache_dir=str(tmp_path / "cache"), streaming=True)
    assert next(iter(streamed))["wnid"] == "n01440764"


def test_sample_counts_label_distribution_and_a_known_file(tmp_path, sample_zip):
    dataset = prepare(tmp_path, sample_zip)
    assert dataset.num_rows == 31
    assert Counter(dataset["label"]) == {0: 12, 134: 4, 508: 5, 517: 4, 638: 3, 639: 3}
    assert "n03085013/sketch_3.JPEG" in [path for path, *_ in rows(dataset)]


def test_hf_url_source_reads_the_zip_on_the_hub_by_ranges(tmp_path, sample_zip, hub):
    from huggingface_hub import HfApi

    HfApi(endpoint=hub.url, token=hub.token).create_repo("sketches/release", repo_type="dataset")
    hub.put_file("sketches/release", "data/ImageNet-Sketch.zip", sample_zip.read_bytes())
    url = "hf://datasets/sketches/release/data/ImageNet-Sketch.zip"
    assert rows(prepare(tmp_path / "hf", url)) == rows(prepare(tmp_path / "local", sample_zip))
    assert hub.ranges, "the zip was not read by ranges"


def test_editing_a_class_folder_gives_a_fresh_copy(tmp_path, sample_zip):
    with zipfile.ZipFile(sample_zip) as archive:
        archive.extractall(tmp_path / "extracted")
    root = tmp_path / "extracted" / "sketch"
    first = dict((path, content) for path, content, *_ in rows(prepare(tmp_path, root)))
    edited = root / "n01440764" / "sketch_0.JPEG"
    edited.write_bytes(class_members(["n01440764"], 1)[0][1])  # new bytes; the root folder's own mtime is unchanged
    (root / "n02012849" / "sketch_4.JPEG").write_bytes(edited.read_bytes())
    again = dict((path, content) for path, content, *_ in rows(prepare(tmp_path, root)))
    assert again["n01440764/sketch_0.JPEG"] == edited.read_bytes() != first["n01440764/sketch_0.JPEG"]
    assert len(again) == len(first) + 1


def test_a_replaced_remote_zip_is_not_served_from_the_old_copy(tmp_path, http_server):
    wnids = sorted(label_of_wnid())[:3]
    url = http_server.serve("/ImageNet-Sketch.zip", write_zip(tmp_path / "old.zip", class_members(wnids)))
    assert prepare(tmp_path, url).num_rows == 9
    http_server.serve("/ImageNet-Sketch.zip", write_zip(tmp_path / "new.zip", class_members(wnids, per_class=4)))
    assert prepare(tmp_path, url).num_rows == 12


def test_load_and_load_dataset_pick_the_same_prepared_copy(tmp_path):
    cache = tmp_path / "cache"
    wnids = sorted(label_of_wnid())[:4]
    first = prepare(tmp_path, write_zip(tmp_path / "three.zip", class_members(wnids[:3])))
    prepare(tmp_path, write_zip(tmp_path / "four.zip", class_members(wnids)))  # prepared last
    # A map on the first copy writes its cache file into that copy's folder: datasets now ranks it first.
    first.map(lambda row: row, load_from_cache_file=False)
    assert (
        int(offline_load_dataset(tmp_path, cache, "print(d.num_rows)").split()[-1])
        == imagenet_sketch.load(cache_dir=str(cache)).num_rows
        == 9
    )


# --- killed builds: a copy is complete or absent; nothing a killed build left breaks load_dataset ---

WNIDS = ["n01440764", "n02012849", "n03085013", "n03126707", "n03710637", "n03710721"]
SHOW_ROWS = "print(d.num_rows)"


def stalled_build(tmp_path, http_server, cache, per_class: int):
    """`imagenet-sketch build` of a zip served by the loopback host, in a process of its own, held mid-build: the
    host holds the read of the fourth class. Returns the process once the build is waiting there."""
    members = class_members(WNIDS, per_class=per_class)
    archive = write_zip(tmp_path / "B.zip", members, compression=zipfile.ZIP_STORED)
    with zipfile.ZipFile(archive) as opened:
        fourth_class = opened.getinfo(members[3 * per_class][0]).header_offset
    url = http_server.serve("/B.zip", archive)
    http_server.stall("/B.zip", at=fourth_class)
    process = start_cli("build", "--source", url, "--cache-dir", str(cache), "--num-proc", "2")
    assert http_server.stalled.wait(timeout=300), process.communicate()
    return process, url


def unfinished(cache) -> list:
    return [path for path in cache.rglob("*.incomplete") if path.is_dir()]


def test_a_build_killed_mid_way_never_breaks_load_dataset(tmp_path, http_server, capsys):
    """Copy A is built; a build of B is held mid-way, when `load_dataset("imagenet_sketch", "default")` must still
    read A (before: FileNotFoundError on `<hash>.incomplete/dataset_info.json`); then B's build is killed with
    SIGKILL, and A still loads; B's rebuild leaves exactly its own shards and nothing of the killed one."""
    from imagenet_sketch_tools.cli.main import main

    cache = tmp_path / "cache"
    prepare(tmp_path, write_zip(tmp_path / "A.zip", class_members(WNIDS[:2], per_class=3)))
    process, url = stalled_build(tmp_path, http_server, cache, per_class=4)
    assert unfinished(cache)  # datasets is writing B's shards
    assert offline_load_dataset(tmp_path, cache, SHOW_ROWS, "default").split() == ["6"]  # A, during B's build

    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert offline_load_dataset(tmp_path, cache, SHOW_ROWS, "default").split() == ["6"]  # A, after the kill

    http_server.release()
    assert main(["build", "--source", url, "--cache-dir", str(cache)]) == 0
    folder = capsys.readouterr().out.strip().splitlines()[-1].removeprefix("at ")
    assert offline_load_dataset(tmp_path, cache, SHOW_ROWS, "default").split() == ["24"]  # B, the newest copy
    rebuilt = imagenet_sketch.load(url, cache_dir=str(cache))
    assert sorted(os.listdir(folder)) == sorted(
        [os.path.basename(file["filename"]) for file in rebuilt.cache_files] + ["LICENSE", "dataset_info.json"]
    )
    assert not unfinished(cache)
    assert not [path.name for path in cache.rglob(".*") if "." in path.name[1:]]  # no staging folder or file left


def test_a_stale_incomplete_folder_is_removed_by_load(tmp_path, sample_zip):
    """An `<hash>.incomplete` that an older build left (datasets builds there in place) is removed by the next
    `load()` when no build holds it, so plain load_dataset reads the copy again."""
    built = prepare(tmp_path, sample_zip)
    folder = os.path.dirname(built.cache_files[0]["filename"])
    stale = folder.replace(os.path.basename(folder), "0123456789abcdef") + ".incomplete"
    os.makedirs(stale)
    with open(os.path.join(stale, "imagenet_sketch-train-00000-00000-of-00002.arrow"), "wb") as shard:
        shard.write(b"cut short")
    imagenet_sketch.load(cache_dir=str(tmp_path / "cache"))
    assert not os.path.exists(stale)
    assert offline_load_dataset(tmp_path, tmp_path / "cache", SHOW_ROWS, "default").split() == ["31"]


# Builds in a process of its own, held at its second class until the test creates `go`; `marker` says it is there.
# Nothing of the build is replaced: the pause only keeps it mid-way while the test acts.
PAUSED_BUILD = """
import sys, time
from pathlib import Path
from imagenet_sketch_tools.dataset import rows
class_table, calls = rows.class_table, []
def paused(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        Path({marker!r}).write_text("mid-build")
        while not Path({go!r}).exists():
            time.sleep(0.01)
    return class_table(*args, **kwargs)
rows.class_table = paused
from imagenet_sketch_tools.cli.main import main
sys.exit(main({argv!r}))
"""


def test_a_second_build_of_the_same_copy_waits_for_the_first(tmp_path):
    """Two real processes build one copy: the second says in one line which process it waits for, then reuses
    what the first built (one build, one copy)."""
    source = write_zip(tmp_path / "A.zip", class_members(WNIDS, per_class=3))
    argv = ["build", "--source", str(source), "--cache-dir", str(tmp_path / "cache")]
    marker, go = tmp_path / "building", tmp_path / "go"
    first = start_python("-c", PAUSED_BUILD.format(marker=str(marker), go=str(go), argv=argv))
    while not marker.exists():  # the marker is the synchronisation; the poll only bounds a failed start
        assert first.poll() is None, first.communicate()
        time.sleep(0.01)
    second = start_cli(*argv)
    try:
        line = first_line(second)  # the event: the second found the first at work
        folder = re.escape(str(tmp_path / "cache" / "imagenet_sketch" / "default"))
        assert re.fullmatch(rf"waiting for pid {first.pid} \(.*\), building {folder}/1\.0\.0/[0-9a-f]+\n", line), line
        go.write_text("go")
        out_first, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
        out_second, err = second.communicate(timeout=300)
        assert second.returncode == 0, err
        assert out_first.startswith("built 18 rows") and out_second.startswith("built 18 rows")
        assert out_first.splitlines()[-1] == out_second.splitlines()[-1]  # the same folder
    finally:
        stop_if_running(first, second)
