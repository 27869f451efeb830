"""An eval output folder read by its documented format (README, "Evaluate"): results.csv, and per model
`<model>/run.json`, `per_class.csv` and `predictions.parquet`. Nothing of the evaluation code is imported: the
page depends on the files, so it can be made again from a folder copied elsewhere."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from imagenet_sketch_tools.common.errors import UserError

RESULTS = "results.csv"
RUN = "run.json"
PER_CLASS = "per_class.csv"
PREDICTIONS = "predictions.parquet"
PREDICTION_COLUMNS = ["row", "path", "label", "top5", "top5_prob"]


@dataclass
class ModelRun:
    """One model's figures (percent) and, when its folder is complete, its per-class rows and predictions."""

    name: str
    top1: float
    top5: float
    img_size: int | None
    mean_class_recall: float | None = None
    per_class: list[dict] | None = None  # wnid, name, images (int), top1, top5 (float)
    predictions: pa.Table | None = None


def read_eval_folder(eval_dir: str | Path) -> list[ModelRun]:
    """Every model of results.csv in its order (best top-1 first), with its folder's files where they exist."""
    eval_dir = Path(eval_dir)
    results_file = eval_dir / RESULTS
    if not results_file.is_file():
        raise UserError(f"'{eval_dir}' holds no {RESULTS}; give the --output folder of `imagenet-sketch eval`")
    with open(results_file, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    folders = {run["model"]: (folder, run) for folder, run in _runs(eval_dir)}
    models = []
    for row in rows:
        try:
            model = ModelRun(row["model"], float(row["top1"]), float(row["top5"]), _int(row.get("img_size")))
        except (KeyError, ValueError) as error:
            raise UserError(f"{results_file} is not in eval's results format ({error}); run eval again") from error
        if model.name in folders:
            folder, run = folders[model.name]
            model.mean_class_recall = run.get("mean_class_recall")
            model.per_class = read_per_class(folder / PER_CLASS)
            model.predictions = read_predictions(folder / PREDICTIONS)
        models.append(model)
    if not models:
        raise UserError(f"{results_file} lists no model; run `imagenet-sketch eval MODEL --output {eval_dir}` first")
    return models


def read_per_class(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as file:
        return [
            {**row, "images": int(row["images"]), "top1": float(row["top1"]), "top5": float(row["top5"])}
            for row in csv.DictReader(file)
        ]


def read_predictions(path: Path) -> pa.Table:
    return pq.read_table(path, columns=PREDICTION_COLUMNS)


def _runs(eval_dir: Path):
    """(folder, run.json) of each finished model folder: run.json is written last, so its presence says done."""
    for run_file in sorted(eval_dir.glob(f"*/{RUN}")):
        folder = run_file.parent
        if (folder / PER_CLASS).is_file() and (folder / PREDICTIONS).is_file():
            yield folder, json.loads(run_file.read_text(encoding="utf-8"))


def _int(text: str | None) -> int | None:
    return int(text) if text else None
