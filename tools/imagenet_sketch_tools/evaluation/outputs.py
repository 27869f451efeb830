"""What a run leaves in `--output DIR`: results.csv (timm's columns and number formats), per model a folder with
per_class.csv, predictions.parquet, metrics.json and mistakes.png, and leaderboard.md for all models.

Every file is written whole under a temporary name and renamed, so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from imagenet_sketch_tools.common.files import write_atomically
from imagenet_sketch_tools.common.sheet import describe, draw_sheet, write_png
from imagenet_sketch_tools.dataset import published
from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.evaluation.metrics import Scores
from imagenet_sketch_tools.evaluation.spec import TOP, Described

RESULTS = "results.csv"
PREDICTIONS = "predictions.parquet"
RUN_FILE = "run.json"  # in a model's folder, written last: its presence says the folder is complete
LEADERBOARD = "leaderboard.md"
# the order timm's validate.py writes and its published results-*.csv files use
TIMM_COLUMNS = ["model", "top1", "top1_err", "top5", "top5_err", "param_count", "img_size", "crop_pct", "interpolation"]
IMAGENET_COLUMN = "imagenet_top1"  # the model's published ImageNet-1k top-1 at the size it ran at (timm's files)
REFERENCE_COLUMNS = ["top1_ref", "top1_ref_diff", "top5_ref", "top5_ref_diff"]
Reference = dict[published.Key, published.Result]
MISTAKES_SHOWN = 16


def folder_name(model: str) -> str:
    """A folder name for a model name (`torchvision:resnet50:IMAGENET1K_V2`, `hf:org/repo` included)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", model).strip("_") or "model"


def results_row(model: Described, scores: Scores) -> dict[str, str]:
    """One results.csv row as timm's published files format it: percentages to 3 decimals, param_count in
    millions to 2 decimals with a thousands separator, crop_pct to 3 decimals."""
    return {
        "model": model.name,
        "top1": f"{scores.top1:.3f}",
        "top1_err": f"{100 - scores.top1:.3f}",
        "top5": f"{scores.top5:.3f}",
        "top5_err": f"{100 - scores.top5:.3f}",
        "param_count": f"{model.param_count / 1e6:,.2f}",
        "img_size": str(model.img_size),
        "crop_pct": f"{model.crop_pct:.3f}",
        "interpolation": model.interpolation,
    }


def read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def read_reference(reference: str) -> Reference:
    """`--reference`: "timm" (the bundled snapshot of timm's results-sketch.csv) or a results CSV in either
    column order, keyed by (model, img_size) as timm's own scripts key them."""
    return published.read_reference(reference)


def reference_row(row: dict, reference: Reference) -> published.Result | None:
    """The reference's row for results.csv's `row`: the same model at the same img_size, never another size."""
    return reference.get((row["model"], int(row["img_size"])))


def with_reference(row: dict, reference: Reference) -> dict:
    """`row` plus the published top-1/top-5 and our difference to them (ours minus theirs); blank if absent."""
    theirs = reference_row(row, reference)
    if theirs is None:
        return {**row, **dict.fromkeys(REFERENCE_COLUMNS, "")}
    extra = {}
    for metric, value in (("top1", theirs.top1), ("top5", theirs.top5)):
        extra[f"{metric}_ref"] = f"{value:.3f}"
        extra[f"{metric}_ref_diff"] = f"{float(row[metric]) - value:+.3f}"
    return {**row, **extra}


def with_imagenet_top1(row: dict) -> dict:
    """`row` plus the model's ImageNet-1k top-1 at its img_size from timm's bundled results; blank if unknown."""
    top1 = published.imagenet_top1(row["model"], int(row["img_size"]))
    return {**row, IMAGENET_COLUMN: "" if top1 is None else f"{top1:.3f}"}


def reference_summary(row: dict, reference: Reference, name: str) -> str:
    """What the summary line says of the reference: the row compared with, or why there is none."""
    where = f"timm's published results (snapshot {published.snapshot_date()})" if name == published.BUNDLED else name
    theirs = reference_row(row, reference)
    if theirs is not None:
        return (
            f"vs {where} row {theirs.model} at {theirs.img_size}: top-1 {float(row['top1']) - theirs.top1:+.3f}, "
            f"top-5 {float(row['top5']) - theirs.top5:+.3f}"
        )
    sizes = sorted(size for model, size in reference if model == row["model"])
    other = f" (it has {', '.join(map(str, sizes))} only)" if sizes else ""
    return f"{where} has no row of {row['model']} at {row['img_size']}{other}"


def update_results(directory: Path, rows: list[dict], reference: Reference | None = None) -> list[dict]:
    """Replace or add `rows` in results.csv (one row per model), sorted by top-1 as timm's files are."""
    path = directory / RESULTS
    by_model = {row["model"]: row for row in read_csv(path)}
    for row in rows:
        by_model[row["model"]] = row
    merged = [
        with_imagenet_top1({key: row[key] for key in TIMM_COLUMNS}) | reference_columns(row)
        for row in by_model.values()
    ]
    if reference is not None:
        merged = [
            with_reference({key: row[key] for key in [*TIMM_COLUMNS, IMAGENET_COLUMN]}, reference) for row in merged
        ]
    merged.sort(key=lambda row: -float(row["top1"]))
    columns = [*TIMM_COLUMNS, IMAGENET_COLUMN]
    columns += [column for column in REFERENCE_COLUMNS if any(column in row for row in merged)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(merged)
    write_atomically(path, buffer.getvalue())
    return merged


def reference_columns(row: dict) -> dict:
    """The reference columns an earlier run wrote for `row` (kept when this run gives no --reference)."""
    return {column: row[column] for column in REFERENCE_COLUMNS if column in row}


def write_per_class(folder: Path, scores: Scores) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["wnid", "name", "images", "top1", "top5"], lineterminator="\n")
    writer.writeheader()
    for row in scores.per_class:
        writer.writerow({**row, "top1": f"{row['top1']:.3f}", "top5": f"{row['top5']:.3f}"})
    write_atomically(folder / "per_class.csv", buffer.getvalue())


def predictions_table(rows, paths, labels, top5, top5_prob) -> pa.Table:
    return pa.table(
        {
            "row": pa.array(np.asarray(rows, dtype=np.int64)),
            "path": pa.array(paths, pa.string()),
            "label": pa.array(np.asarray(labels, dtype=np.int64)),
            "top5": pa.array([list(map(int, five)) for five in top5], pa.list_(pa.int32())),
            "top5_prob": pa.array([list(map(float, five)) for five in top5_prob], pa.list_(pa.float32())),
        }
    )


def write_predictions(folder: Path, table: pa.Table) -> None:
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    write_atomically(folder / PREDICTIONS, buffer.getvalue().to_pybytes())


def read_json(path: Path) -> dict | None:
    """A JSON file's object; None if the file is missing or not whole JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, content: dict) -> None:
    write_atomically(path, json.dumps(content, indent=2, sort_keys=True) + "\n")


def top5_of(predictions: pa.Table) -> np.ndarray:
    """The (N, 5) predicted classes of predictions.parquet's rows, best first."""
    return np.asarray(predictions.column("top5").to_pylist(), dtype=np.int64).reshape(-1, TOP)


def write_leaderboard(directory: Path, results: list[dict], backbones: dict[str, str]) -> None:
    """The authors' README table (Method | Backbone | Top 1 | Top 5), best top-1 first."""
    lines = [
        "# ImageNet-Sketch leaderboard",
        "",
        "Top-1 and top-5 accuracy (%) over the images evaluated; see results.csv for the details.",
        "",
        "| Method | Backbone | Top 1 | Top 5 |",
        "|---|---|---|---|",
    ]
    for row in sorted(results, key=lambda row: -float(row["top1"])):
        backbone = backbones.get(row["model"], "-")
        lines.append(f"| {row['model']} | {backbone} | {float(row['top1']):.2f} | {float(row['top5']):.2f} |")
    write_atomically(directory / LEADERBOARD, "\n".join(lines) + "\n")


def most_confident_mistakes(predictions: pa.Table, count: int = MISTAKES_SHOWN) -> list[dict]:
    """The `count` wrong top-1 predictions the model was surest of, surest first (ties: dataset order)."""
    labels = predictions.column("label").to_numpy()
    top5 = top5_of(predictions)
    prob = np.asarray(predictions.column("top5_prob").to_pylist(), dtype=np.float64).reshape(-1, TOP)
    wrong = np.flatnonzero(top5[:, 0] != labels)
    chosen = wrong[np.argsort(-prob[wrong, 0], kind="stable")][:count]
    rows = predictions.column("row").to_numpy()
    paths = predictions.column("path").to_pylist()
    return [
        {"row": int(rows[i]), "path": paths[i], "label": int(labels[i]), "pred": int(top5[i, 0]), "prob": prob[i, 0]}
        for i in chosen
    ]


def class_name(label: int) -> str:
    """The table's whole name: first names alone are ambiguous (`maillot` / `maillot, tank suit`)."""
    return class_table()[1][label]


def write_mistakes(folder: Path, model: str, mistakes: list[dict], images: list[bytes | None], wrong: int) -> None:
    """mistakes.png: the peek sheet's look, each image captioned with its file, true and predicted class."""
    cells = []
    for mistake, content in zip(mistakes, images):
        image, _ = describe(content or b"")
        caption = [
            mistake["path"],
            f"true: {class_name(mistake['label'])}",
            f"pred: {class_name(mistake['pred'])} {100 * mistake['prob']:.1f}%",
        ]
        cells.append((image, caption))
    title = f"{model}: most confident mistakes"
    subtitle = f"{len(mistakes)} of {wrong} wrong top-1 predictions, surest first"
    write_png(draw_sheet(title, subtitle, cells), folder / "mistakes.png")
