"""timm's published results on ImageNet-Sketch and ImageNet-1k, bundled (`published/`, see its SOURCE.md), and
any CSV in their format.

Rows are keyed by (model, img_size), as timm's own `generate_csv_results.py` keys them: 290 models of the snapshot
have two rows, at their train and their test size, and a figure at one size is not the model's figure at the other.
Columns are read by header, so both orders load: the published files' (`model,img_size,top1,...`) and the one
`validate.py` and `imagenet-sketch eval` write (`model,top1,...,img_size,crop_pct,interpolation`).
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
from dataclasses import dataclass
from importlib import resources

from imagenet_sketch_tools.common.errors import UserError

FOLDER = "published"
SKETCH = "results-sketch.csv"
IMAGENET = "results-imagenet.csv"
SOURCE = "SOURCE.md"
BUNDLED = "timm"  # the name `--reference` takes for the bundled snapshot
REQUIRED = ("model", "img_size", "top1", "top5")

Key = tuple[str, int]  # (model, img_size)


@dataclass(frozen=True)
class Result:
    """One row of a results CSV; figures in percent, param_count in millions (None when the file has none)."""

    model: str
    img_size: int
    top1: float
    top5: float
    param_count: float | None = None
    crop_pct: float | None = None
    interpolation: str = ""

    @property
    def key(self) -> Key:
        return (self.model, self.img_size)


def parse_results(text: str, name: str = "results CSV") -> dict[Key, Result]:
    """The rows of a results CSV in either column order, keyed by (model, img_size); UserError naming `name`
    if a required column is missing, a figure is not a number, or a (model, img_size) appears twice."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in REQUIRED if column not in (reader.fieldnames or [])]
    if missing:
        raise UserError(f"{name} has no {', '.join(missing)} column(s); expected timm's results format ({SKETCH})")
    rows: dict[Key, Result] = {}
    for line, row in enumerate(reader, start=2):
        try:
            result = Result(
                model=row["model"],
                img_size=int(row["img_size"]),
                top1=float(row["top1"]),
                top5=float(row["top5"]),
                param_count=_number(row.get("param_count")),
                crop_pct=_number(row.get("crop_pct")),
                interpolation=row.get("interpolation") or "",
            )
        except (TypeError, ValueError) as error:
            raise UserError(f"{name}, line {line}: {error}; fix the row or remove it") from error
        if result.key in rows:
            raise UserError(f"{name}, line {line}: {result.model} at img_size {result.img_size} appears twice")
        rows[result.key] = result
    return rows


def read_results(path: str | os.PathLike) -> dict[Key, Result]:
    """A results CSV on disk, keyed by (model, img_size)."""
    try:
        with open(path, encoding="utf-8", newline="") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"'{path}' cannot be read as a results CSV ({error})") from error
    return parse_results(text, f"'{path}'")


def read_reference(reference: str | os.PathLike) -> dict[Key, Result]:
    """`--reference`: "timm" for the bundled ImageNet-Sketch snapshot, else a results CSV's path."""
    return sketch_results() if str(reference) == BUNDLED else read_results(reference)


@functools.cache
def sketch_results() -> dict[Key, Result]:
    """timm's published ImageNet-Sketch results (1,556 rows), keyed by (model, img_size)."""
    return parse_results(_bundled(SKETCH), f"the bundled {SKETCH}")


@functools.cache
def imagenet_results() -> dict[Key, Result]:
    """timm's published ImageNet-1k validation results (the same 1,556 (model, img_size) pairs)."""
    return parse_results(_bundled(IMAGENET), f"the bundled {IMAGENET}")


def imagenet_top1(model: str, img_size: int) -> float | None:
    """The model's published ImageNet-1k top-1 at that image size; None when timm's table has no such row."""
    result = imagenet_results().get((model, img_size))
    return None if result is None else result.top1


@functools.cache
def snapshot_date() -> str:
    """The date of the bundled snapshot's source commit (YYYY-MM-DD), as SOURCE.md states it."""
    found = re.search(r"commit [0-9a-f]{40} \((\d{4}-\d{2}-\d{2})\)", _bundled(SOURCE))
    if found is None:
        raise RuntimeError(f"{FOLDER}/{SOURCE} names no 'commit <sha> (YYYY-MM-DD)'")  # a packaging bug
    return found.group(1)


def _bundled(name: str) -> str:
    return (resources.files("imagenet_sketch_tools.dataset") / FOLDER / name).read_text(encoding="utf-8")


def _number(text: str | None) -> float | None:
    """A number as timm writes it ("1,013.01" has a thousands separator); None for a blank or absent cell."""
    return float(text.replace(",", "")) if text else None
