"""Behaviour across runs: resume after an interrupt, finished models not run again unless forced, unreadable
images listed (never replaced) or left out with --skip-unreadable, --reference, results.csv updated in place."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from eval_data import KNOWN, Counting, coded_zip_at
from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.common.errors import UserError
from imagenet_sketch_tools.evaluation import evaluate

FOLDER = "python_known_answer_model_model"


def run(source, output, engine=None, **settings):
    return evaluate(KNOWN, str(source), output=output, workers=0, engine=engine, **settings)


def test_an_interrupted_run_continues_to_the_uninterrupted_predictions(coded_zip, tmp_path):
    whole = run(coded_zip, tmp_path / "whole", batch_size=3)
    with pytest.raises(KeyboardInterrupt):
        evaluate(KNOWN, str(coded_zip), output=tmp_path / "cut", batch_size=3, workers=2, engine=Counting(2))
    folder = tmp_path / "cut" / FOLDER
    assert not (folder / "predictions.parquet").exists() and not (folder / "run.json").exists()
    kept = {int(path.stem.split("-")[1]) for path in (folder / ".partial").glob("batch-*.npz")}
    assert len(kept) == 2  # with two workers, each takes half the batches: 0 and 3 come first

    engine = Counting()
    resumed = run(coded_zip, tmp_path / "cut", engine, batch_size=3)
    assert sorted(engine.saved) == sorted(set(range(6)) - kept)  # 16 images in batches of 3: only the missing ran
    assert pq.read_table(folder / "predictions.parquet").equals(pq.read_table(whole.folder / "predictions.parquet"))
    assert resumed.scores == whole.scores and not (folder / ".partial").exists()

    engine = Counting()
    again = run(coded_zip, tmp_path / "cut", engine, batch_size=3)
    assert engine.saved == [] and again.reused and again.scores == whole.scores
    assert "already evaluated" in again.summary()
    forced = run(coded_zip, tmp_path / "cut", engine, batch_size=3, force=True)
    assert engine.saved == [0, 1, 2, 3, 4, 5] and not forced.reused


def test_a_changed_selection_is_not_taken_for_the_finished_run(coded_zip, tmp_path):
    run(coded_zip, tmp_path / "out")
    limited = run(coded_zip, tmp_path / "out", limit=5)
    assert not limited.reused and limited.scores.images == 5


@pytest.mark.slow
def test_ctrl_c_keeps_finished_batches_and_says_so(coded_zip, tmp_path, capfd):
    """A real SIGINT to the command while its model is paused in the third batch (it says so with a file);
    the rerun (here in-process, where the model does not pause) finishes."""
    output = tmp_path / "out"
    command = [sys.executable, "-m", "imagenet_sketch_tools.cli.main", "eval", "python:known_answer_model:paused_model",
               "--source", str(coded_zip), "-o", str(output), "--batch-size", "2", "--workers", "0"]  # fmt: skip
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, EVAL_TEST_MARKERS=str(tmp_path))
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while process.poll() is None and not (tmp_path / "paused").exists():
        time.sleep(0.05)  # polling for the event, not timing the run
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "interrupted; finished batches are kept in" in err
    partial = output / "python_known_answer_model_paused_model" / ".partial"
    assert len(list(partial.glob("batch-*.npz"))) == 2  # the two before the pause, nothing half-written
    assert cli.main(command[3:]) == 0
    assert "top-1 31.250%" in capfd.readouterr().out
    assert pq.read_table(partial.parent / "predictions.parquet").num_rows == 16


def broken_zip(tmp_path):
    extra = [("sketch/n01440764/sketch_9.JPEG", b"not an image"), ("sketch/n01443537/sketch_7.JPEG", b"")]
    return coded_zip_at(tmp_path / "broken.zip", extra=extra)


def test_unreadable_images_are_listed_and_fail_the_run_unless_skipped(tmp_path, capfd):
    source = broken_zip(tmp_path)
    args = ["eval", KNOWN, "--source", str(source), "-o", str(tmp_path / "out"), "--workers", "0"]
    assert cli.main(args) == 1
    _, err = capfd.readouterr()
    assert "unreadable: n01440764/sketch_9.JPEG: not an image Pillow can identify" in err
    assert "unreadable: n01443537/sketch_7.JPEG: empty (0 bytes)" in err
    assert "imagenet-sketch: error: 2 image(s) cannot be decoded; none was replaced by another image." in err
    assert not (tmp_path / "out" / "results.csv").exists()

    assert cli.main([*args, "--skip-unreadable"]) == 0
    out, _ = capfd.readouterr()
    assert "top-1 31.250%, top-5 75.000%" in out and "on 16 images of 5 classes" in out
    assert "2 unreadable image(s) left out (--skip-unreadable)" in out
    predictions = pq.read_table(tmp_path / "out" / FOLDER / "predictions.parquet")
    assert predictions.num_rows == 16 and "n01440764/sketch_9.JPEG" not in predictions.column("path").to_pylist()


def test_skipping_after_a_failed_run_reuses_its_batches(tmp_path):
    source = broken_zip(tmp_path)
    with pytest.raises(UserError, match="2 image"):
        run(source, tmp_path / "out")
    engine = Counting()
    result = run(source, tmp_path / "out", engine, skip_unreadable=True)
    assert engine.saved == [] and len(result.unreadable) == 2


def test_reference_adds_the_difference_to_the_published_figures(coded_zip, tmp_path, capsys):
    reference = tmp_path / "results-sketch.csv"
    reference.write_text(
        "model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,interpolation\n"
        f"{KNOWN},30.000,70.000,80.000,20.000,0.00,32,1.000,bilinear\n"
        "resnet50.tv_in1k,24.064,75.936,41.329,58.671,25.56,224,0.875,bilinear\n"
    )
    output = tmp_path / "out"
    common = ["--source", str(coded_zip), "-o", str(output), "--workers", "0"]
    bare = "python:known_answer_model:bare_model"
    assert cli.main(["eval", KNOWN, bare, *common, "--reference", str(reference)]) == 0
    with open(output / "results.csv", newline="") as file:
        rows = {row["model"]: row for row in csv.DictReader(file)}
    assert list(rows[KNOWN])[-4:] == ["top1_ref", "top1_ref_diff", "top5_ref", "top5_ref_diff"]
    assert [rows[KNOWN][key] for key in ("top1_ref", "top1_ref_diff", "top5_ref", "top5_ref_diff")] == [
        "30.000", "+1.250", "80.000", "-5.000"
    ]  # fmt: skip
    assert rows["python:known_answer_model:bare_model"]["top1_ref"] == ""  # not in the reference

    # a rerun updates its row in place: still one row per model
    assert cli.main(["eval", KNOWN, *common, "--force"]) == 0
    with open(output / "results.csv", newline="") as file:
        assert sorted(row["model"] for row in csv.DictReader(file)) == sorted(rows)
    assert "| python:known_answer_model:bare_model | bare_model |" in (output / "leaderboard.md").read_text()


def test_all_black_images_are_evaluated(tmp_path):
    from imagenet_sketch_tools.dataset.sample import sample_archive

    result = evaluate(KNOWN, sample_archive(), output=tmp_path / "out", workers=0)
    keyboard = next(row for row in result.scores.per_class if row["wnid"] == "n03085013")
    assert keyboard["images"] == 5 and result.scores.images == 31 and not result.unreadable


@pytest.mark.parametrize(
    "args, message",
    [
        (["--limit", "0"], "--limit must be at least 1, not 0"),
        (["--batch-size", "0"], "--batch-size must be at least 1, not 0"),
        (["--classes", "n01440764,nope"], "--classes: nope not ImageNet-1k wnids"),
        (["--classes", "n02012849"], "no images to evaluate: the source has none of those classes"),
    ],
)
def test_bad_options_are_one_line_errors(coded_zip, tmp_path, capfd, args, message):
    code = cli.main(["eval", KNOWN, "--source", str(coded_zip), "-o", str(tmp_path / "o"), "--workers", "0", *args])
    _, err = capfd.readouterr()
    assert code == 1 and f"imagenet-sketch: error: {message}" in err
