"""The README's "done when" command, and every kind of source: the sample, a zip, a prepared dataset, an
exported package folder, and the same package on a (loopback) Hub as hf://datasets/NS/NAME."""

from __future__ import annotations

import csv
import re

import pyarrow.parquet as pq
from PIL import Image

import imagenet_sketch
from eval_data import KNOWN
from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.evaluation import evaluate, spec
from imagenet_sketch_tools.evaluation.data import open_source
from imagenet_sketch_tools.evaluation.identity import identity
from imagenet_sketch_tools.hub import export


def test_the_readme_command_gives_every_output(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --output is ./eval
    assert cli.main(["eval", "timm:resnet18", "--sample", "--no-pretrained", "--workers", "0"]) == 0
    out, err = capfd.readouterr()
    assert out.startswith("resnet18-random-init: top-1 ")
    assert "on 31 images of 6 classes (all 31 images)" in out
    assert "img/s" in err and "top1=" in err  # the progress bar: images/s and the running top-1
    folder = tmp_path / "eval" / "resnet18-random-init"
    assert {path.name for path in (tmp_path / "eval").iterdir()} == {
        "results.csv",
        "leaderboard.md",
        "report.html",
        folder.name,
    }
    # the run ends with the folder's report, its thumbnails read from the rows just evaluated
    report = tmp_path / "eval" / "report.html"
    said = re.search(r"^wrote eval/report.html: ([\d.]+) MB, 1 model\(s\), (\d+) thumbnails$", out, re.M)
    assert said and float(said[1]) == round(report.stat().st_size / 1e6, 2) and int(said[2]) > 0, out
    assert report.read_text().count('"data:image/webp;base64,') == int(said[2])  # each inlined once
    written = {path.name for path in folder.iterdir()}
    assert written == {"per_class.csv", "predictions.parquet", "run.json", "mistakes.png"}
    with open(tmp_path / "eval" / "results.csv", newline="") as file:
        [row] = list(csv.DictReader(file))
    assert (row["model"], row["param_count"], row["img_size"], row["crop_pct"]) == (
        "resnet18-random-init",
        "11.69",
        "288",
        "1.000",
    )  # fmt: skip  (timm's validate.py default: resnet18's test size and crop)
    assert pq.read_table(folder / "predictions.parquet").num_rows == 31
    with Image.open(folder / "mistakes.png") as sheet:
        assert sheet.format == "PNG"


def package_of(tmp_path, source):
    built = imagenet_sketch.load(str(source), cache_dir=str(tmp_path / "cache"))
    export.export(built, tmp_path / "pkg", max_shard_size="4KB", progress=False)
    return built, tmp_path / "pkg"


def predictions(result):
    return pq.read_table(result.folder / "predictions.parquet")


def test_every_source_gives_the_same_predictions(coded_zip, tmp_path):
    built, package = package_of(tmp_path, coded_zip)
    assert len(list((package / "data").iterdir())) > 1

    def run(source, name):
        return evaluate(KNOWN, source, output=tmp_path / name, workers=0, batch_size=5, progress=False)

    from_zip = run(str(coded_zip), "zip")
    assert predictions(run(built, "dataset")).equals(predictions(from_zip))
    assert predictions(run(str(package), "package")).equals(predictions(from_zip))
    assert from_zip.scores.top1 == 31.25


def test_a_package_on_the_hub_is_read_directly(coded_zip, tmp_path, hub, capfd):
    _, package = package_of(tmp_path, coded_zip)
    assert cli.main(["push", str(package), "--repo-id", "sketches/coded"]) == 0
    capfd.readouterr()
    before = len(hub.ranges)
    output = tmp_path / "out"
    args = ["eval", KNOWN, "--source", "hf://datasets/sketches/coded", "-o", str(output), "--workers", "2"]
    assert cli.main(args) == 0
    assert "top-1 31.250%, top-5 75.000%" in capfd.readouterr().out
    assert len(hub.ranges) > before  # parquet read by ranges from the hub, nothing prepared in the datasets cache
    local = evaluate(KNOWN, str(package), output=tmp_path / "local", workers=0, progress=False)
    assert pq.read_table(output / local.folder.name / "predictions.parquet").equals(predictions(local))
    shards = open_source("hf://datasets/sketches/coded")
    # a shard on the hub is known by what changes with its content (its LFS hash or blob id), not its name only
    assert all(not identity(shard, shards.filesystem).endswith(":None") for shard in shards.files)


def test_a_random_init_is_the_same_every_run(tmp_path):
    from imagenet_sketch_tools.evaluation import models

    first, second = (models.load("timm:test_resnet", spec.Weights(pretrained=False)) for _ in range(2))
    for (name, a), (_, b) in zip(first.module.state_dict().items(), second.module.state_dict().items()):
        assert a.equal(b), name
