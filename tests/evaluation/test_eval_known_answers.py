"""The arithmetic, proven with a model whose answers are known: exact top-1, top-5, per-class figures, label
alignment for classes missing from the archive, and the formats of every output."""

from __future__ import annotations

import csv
import json

import duckdb
import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from eval_data import CODED, KNOWN
from imagenet_sketch_tools.cli import main as cli
from imagenet_sketch_tools.dataset.classes import class_table, label_of_wnid
from imagenet_sketch_tools.evaluation import evaluate, outputs
from imagenet_sketch_tools.evaluation.batches import Mistakes

TOTAL = sum(len(ranks) for ranks in CODED.values())


def expected_per_class():
    names = dict(zip(*class_table()))
    return [
        {
            "wnid": wnid,
            "name": names[wnid],
            "images": str(len(ranks)),
            "top1": f"{100 * sum(rank == 0 for rank in ranks) / len(ranks):.3f}",
            "top5": f"{100 * sum(rank < 5 for rank in ranks) / len(ranks):.3f}",
        }
        for wnid, ranks in CODED.items()
    ]


def test_scores_are_exact(coded_zip, tmp_path):
    result = evaluate(KNOWN, str(coded_zip), output=tmp_path / "out", workers=0, batch_size=4, progress=False)
    ranks = [rank for ranks in CODED.values() for rank in ranks]
    assert result.scores.images == TOTAL == 16
    assert result.scores.top1_correct == sum(rank == 0 for rank in ranks) == 5
    assert result.scores.top5_correct == sum(rank < 5 for rank in ranks) == 12
    recalls = [sum(rank == 0 for rank in ranks) / len(ranks) for ranks in CODED.values()]
    assert abs(result.scores.mean_class_recall - 100 * sum(recalls) / len(recalls)) < 1e-9
    with open(result.folder / "per_class.csv", newline="") as file:
        assert list(csv.DictReader(file)) == expected_per_class()


def test_predictions_hold_every_row_with_its_label_and_are_readable_by_duckdb(coded_zip, tmp_path):
    result = evaluate(KNOWN, str(coded_zip), output=tmp_path / "out", workers=0, batch_size=5, progress=False)
    table = pq.read_table(result.folder / "predictions.parquet")
    assert table.column_names == ["row", "path", "label", "top5", "top5_prob"]
    rows = table.to_pylist()
    expected = [
        (f"{wnid}/sketch_{n}.JPEG", label_of_wnid()[wnid], rank)
        for wnid, ranks in CODED.items()
        for n, rank in enumerate(ranks)
    ]
    assert [row["row"] for row in rows] == list(range(TOTAL))
    for row, (path, label, rank) in zip(rows, expected):
        assert (row["path"], row["label"]) == (path, label)  # labels are table indices, gaps and all
        decoys = [(label + 1 + k) % 1000 for k in range(6)]
        assert (
            row["top5"]
            == sorted([label, *decoys], key=lambda c: -(10.5 - rank if c == label else 10 - decoys.index(c)))[:5]
        )
        assert row["top5_prob"] == sorted(row["top5_prob"], reverse=True) and 0 < row["top5_prob"][0] < 1
    pattern = str(result.folder / "predictions.parquet")
    [(top1, top5)] = duckdb.sql(
        f"SELECT avg((top5[1] = label)::INT) * 100, avg(list_contains(top5, label)::INT) * 100 FROM '{pattern}'"
    ).fetchall()
    assert (round(top1, 9), round(top5, 9)) == (round(result.scores.top1, 9), round(result.scores.top5, 9))


def test_results_csv_leaderboard_and_mistakes_follow_their_formats(coded_zip, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["eval", KNOWN, "--source", str(coded_zip), "-o", str(out), "--workers", "0"]) == 0
    summary = capsys.readouterr().out.splitlines()[0]
    assert summary.startswith(f"{KNOWN}: top-1 31.250%, top-5 75.000%, mean per-class recall ")
    assert "on 16 images of 5 classes (all 16 images)" in summary
    lines = (out / "results.csv").read_text().splitlines()
    assert lines == [
        "model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,interpolation,imagenet_top1",
        f"{KNOWN},31.250,68.750,75.000,25.000,0.00,32,1.000,bilinear,",  # not in timm's ImageNet-1k results
    ]
    leaderboard = (out / "leaderboard.md").read_text()
    assert "| Method | Backbone | Top 1 | Top 5 |" in leaderboard
    assert f"| {KNOWN} | model | 31.25 | 75.00 |" in leaderboard
    run = json.loads((out / "python_known_answer_model_model" / "run.json").read_text())
    assert run["images"] == 16 and run["param_count"] == 3
    with Image.open(out / "python_known_answer_model_model" / "mistakes.png") as sheet:
        assert sheet.format == "PNG" and sheet.width > 4 * 160


def test_limit_and_classes_are_said_and_select_rows(coded_zip, tmp_path):
    result = evaluate(
        KNOWN, str(coded_zip), output=tmp_path / "a", workers=0, limit=4, classes=("n15075141",), progress=False
    )
    assert result.scores.images == 4
    assert [row["wnid"] for row in result.scores.per_class] == ["n15075141"]
    assert "--classes: 1 class(es); --limit 4: evenly spaced rows" in result.summary()
    rows = pq.read_table(result.folder / "predictions.parquet").column("row").to_pylist()
    assert rows == [10, 12, 13, 15]  # 6 rows of the class (10..15), 4 of them spread from first to last


def test_mistakes_kept_during_a_run_are_those_chosen_from_all_predictions():
    """Batches arrive in any order; ties in probability are broken by row, as in most_confident_mistakes."""
    rng = np.random.default_rng(0)
    count = 300
    rows = np.arange(count)
    labels = rng.integers(0, 4, count)
    top5 = rng.integers(0, 4, (count, 5))
    prob = np.sort(rng.choice(np.float32([0.5, 0.25, 0.125, 0.0625]), (count, 5)), axis=1)[:, ::-1]
    table = outputs.predictions_table(rows, [f"n0/{row}" for row in rows], labels, top5, prob)
    expected = [mistake["row"] for mistake in outputs.most_confident_mistakes(table)]
    assert len(expected) == outputs.MISTAKES_SHOWN
    kept = Mistakes(outputs.MISTAKES_SHOWN)
    for chunk in rng.permutation(np.array_split(rows, 30)):
        kept.offer(chunk, labels[chunk], top5[chunk], prob[chunk], [f"bytes of {row}".encode() for row in chunk])
    assert [row for _, row in kept.kept] == expected
    assert kept.contents == {row: f"bytes of {row}".encode() for row in expected}
