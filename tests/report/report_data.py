"""An eval folder whose every figure is known: the known-answer model run through the real `imagenet-sketch eval`
(in a subprocess, as a user runs it), plus a second model written in eval's documented format, right exactly where
the first is wrong, so the page has two models to compare."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# the known-answer model and its archive live with the eval tests; the eval subprocess imports the model from there
EVALUATION_TESTS = Path(__file__).parents[1] / "evaluation"
sys.path.insert(0, str(EVALUATION_TESTS))

from eval_data import CODED, KNOWN, coded_zip_at  # noqa: E402, F401 (KNOWN, coded_zip_at: for conftest)
from imagenet_sketch_tools.dataset.classes import class_table  # noqa: E402

OTHER = "complement"  # the second model: right exactly where the known-answer model is wrong


def write_complement(out: Path) -> None:
    """The second model's files in eval's documented format, its figures computed here from CODED."""
    [known_run] = [json.loads(path.read_text()) for path in out.glob("*/run.json")]
    known = pq.read_table(next(out.glob("*/predictions.parquet"))).to_pylist()
    folder = out / OTHER
    folder.mkdir()
    rows = []
    for row in known:
        label = row["label"]
        decoy = (label + 1) % 1000
        known_right = row["top5"][0] == label
        top5 = [decoy, label] if known_right else [label, decoy]
        rows.append(
            {**row, "top5": top5 + [(label + k) % 1000 for k in range(2, 5)], "top5_prob": [0.5, 0.2, 0.1, 0.1, 0.1]}
        )
    pq.write_table(
        pa.table(
            {
                "row": pa.array([row["row"] for row in rows], pa.int64()),
                "path": [row["path"] for row in rows],
                "label": pa.array([row["label"] for row in rows], pa.int64()),
                "top5": pa.array([row["top5"] for row in rows], pa.list_(pa.int32())),
                "top5_prob": pa.array([row["top5_prob"] for row in rows], pa.list_(pa.float32())),
            }
        ),
        folder / "predictions.parquet",
    )
    names = dict(zip(*class_table()))
    with open(folder / "per_class.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["wnid", "name", "images", "top1", "top5"])
        for wnid, ranks in CODED.items():
            writer.writerow(
                [wnid, names[wnid], len(ranks), f"{100 * sum(r != 0 for r in ranks) / len(ranks):.3f}", "100.000"]
            )
    images = sum(len(ranks) for ranks in CODED.values())
    top1 = 100 * sum(r != 0 for ranks in CODED.values() for r in ranks) / images
    recall = sum(100 * sum(r != 0 for r in ranks) / len(ranks) for ranks in CODED.values()) / len(CODED)
    run = {**known_run, "model": OTHER, "top1": top1, "top5": 100.0, "mean_class_recall": recall, "images": images}
    (folder / "run.json").write_text(json.dumps(run))
    with open(out / "results.csv", newline="") as file:
        results = list(csv.DictReader(file))
    mine = {
        **results[0],
        "model": OTHER,
        "top1": f"{top1:.3f}",
        "top1_err": f"{100 - top1:.3f}",
        "top5": "100.000",
        "top5_err": "0.000",
    }
    with open(out / "results.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(results[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted([*results, mine], key=lambda row: -float(row["top1"])))
