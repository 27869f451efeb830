"""What a rerun reads back is checked before it is trusted: a damaged predictions.parquet or run.json of a finished
model, or a damaged kept batch of an interrupted one, is said in one line and computed again (issue 20 §7)."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_eval_resume import Counting

from eval_data import KNOWN, coded_zip_at
from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.evaluation import evaluate

FOLDER = "python_known_answer_model_model"
SCORES = "top-1 31.250%, top-5 75.000%"  # the coded archive's known answers, on its 16 images


def damage_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "damaged" in line]


def eval_args(source, output) -> list[str]:
    return ["eval", KNOWN, "--source", str(source), "-o", str(output), "--workers", "0"]


def truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def first_half(path):
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows // 2), path)


def labels_changed(path):
    table = pq.read_table(path)
    labels = pa.array([(label + 1) % 1000 for label in table.column("label").to_pylist()], pa.int64())
    pq.write_table(table.set_column(table.schema.get_field_index("label"), "label", labels), path)


def column_dropped(path):
    pq.write_table(pq.read_table(path).drop_columns(["top5_prob"]), path)


@pytest.mark.parametrize(
    "damage, said",
    [
        (truncated, "predictions.parquet is damaged (not readable: "),
        (first_half, "predictions.parquet is damaged (8 rows where the selection has 16)"),
        (labels_changed, "predictions.parquet is damaged (its labels are not the source's)"),
        (column_dropped, "predictions.parquet is damaged (its columns are not row, path, label, top5, top5_prob"),
    ],
)
def test_damaged_predictions_of_a_finished_model_are_computed_again(coded_zip, tmp_path, capfd, damage, said):
    args = eval_args(coded_zip, tmp_path / "out")
    predictions = tmp_path / "out" / FOLDER / "predictions.parquet"
    assert cli.main(args) == 0
    whole = pq.read_table(predictions)
    capfd.readouterr()
    damage(predictions)

    assert cli.main(args) == 0
    out, err = capfd.readouterr()
    [line] = damage_lines(err)  # one line, then the model runs again
    assert line.startswith(f"{KNOWN}: {said}") and line.endswith("; evaluating again")
    assert f"{SCORES}, mean" in out and "on 16 images" in out and "already evaluated" not in out
    assert pq.read_table(predictions).equals(whole)

    assert cli.main(args) == 0  # whole again: read back as before
    out, err = capfd.readouterr()
    assert "already evaluated, read back" in out and "damaged" not in err


def not_json(path):
    path.write_text(path.read_text()[:40])


def model_dropped(path):
    run = json.loads(path.read_text())
    del run["model"]
    path.write_text(json.dumps(run))


@pytest.mark.parametrize(
    "damage, said",
    [
        (not_json, "run.json is damaged (not a whole JSON object)"),
        (model_dropped, "run.json is damaged ('model' missing or not a str)"),
    ],
)
def test_a_damaged_run_file_is_said_and_the_model_computed_again(coded_zip, tmp_path, capfd, damage, said):
    args = eval_args(coded_zip, tmp_path / "out")
    assert cli.main(args) == 0
    capfd.readouterr()
    damage(tmp_path / "out" / FOLDER / "run.json")

    assert cli.main(args) == 0
    out, err = capfd.readouterr()
    assert f"{KNOWN}: {said}; evaluating again" in err
    assert f"{SCORES}, mean" in out and "already evaluated" not in out
    assert json.loads((tmp_path / "out" / FOLDER / "run.json").read_text())["model"] == KNOWN


def test_a_damaged_kept_batch_is_found_before_any_batch_runs_and_alone_computed_again(coded_zip, tmp_path, capsys):
    whole = evaluate(KNOWN, str(coded_zip), output=tmp_path / "whole", workers=0, batch_size=3)
    with pytest.raises(KeyboardInterrupt):
        evaluate(KNOWN, str(coded_zip), output=tmp_path / "cut", workers=0, batch_size=3, engine=Counting(3))
    partial = tmp_path / "cut" / FOLDER / ".partial"
    assert sorted(path.name for path in partial.glob("batch-*.npz")) == [f"batch-00000{i}.npz" for i in range(3)]
    truncated(partial / "batch-000001.npz")
    capsys.readouterr()

    engine = Counting()
    resumed = evaluate(KNOWN, str(coded_zip), output=tmp_path / "cut", workers=0, batch_size=3, engine=engine)
    # batches run in order without workers: batch 1 before the missing 3..5 shows it was found before any ran
    assert engine.saved == [1, 3, 4, 5]
    err = capsys.readouterr().err
    [line] = damage_lines(err)
    assert line.startswith(f"{KNOWN}: .partial/batch-000001.npz is damaged (not readable: ")
    assert line.endswith("; computing that batch again")
    assert resumed.scores == whole.scores and resumed.computed == 10  # 16 images: 1 batch of 3 + 7 missing
    assert pq.read_table(tmp_path / "cut" / FOLDER / "predictions.parquet").equals(whole.predictions)


def test_a_kept_batch_of_other_rows_is_computed_again(coded_zip, tmp_path, capsys):
    """A batch file that reads but is not the batch's rows (copied from another batch) is not taken for it."""
    with pytest.raises(KeyboardInterrupt):
        evaluate(KNOWN, str(coded_zip), output=tmp_path / "cut", workers=0, batch_size=3, engine=Counting(2))
    partial = tmp_path / "cut" / FOLDER / ".partial"
    (partial / "batch-000001.npz").write_bytes((partial / "batch-000000.npz").read_bytes())
    engine = Counting()
    resumed = evaluate(KNOWN, str(coded_zip), output=tmp_path / "cut", workers=0, batch_size=3, engine=engine)
    assert engine.saved == [1, 2, 3, 4, 5]
    assert ".partial/batch-000001.npz is damaged (its rows are not the batch's)" in capsys.readouterr().err
    assert resumed.predictions.column("row").to_pylist() == list(range(16))


def test_a_run_that_left_unreadable_images_out_is_read_back_whole(tmp_path, capfd):
    """The rows predictions.parquet must hold are the selection less the images run.json lists as unreadable."""
    extra = [("sketch/n01440764/sketch_9.JPEG", b"not an image")]
    args = eval_args(coded_zip_at(tmp_path / "broken.zip", extra=extra), tmp_path / "out") + ["--skip-unreadable"]
    assert cli.main(args) == 0
    capfd.readouterr()
    assert cli.main(args) == 0
    out, err = capfd.readouterr()
    assert "already evaluated, read back" in out and "1 unreadable image(s) left out" in out
    assert not damage_lines(err)
