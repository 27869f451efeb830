"""What a rerun reads back of a finished model is checked before it is trusted: run.json whole and complete,
predictions.parquet readable, of the schema eval writes, with one row per selected image that decoded, in order,
each with its path and label and five classes. A file that fails is reported as `Damaged` (what is wrong); the
caller says so in one line and runs the model again, so a damaged file never ends a rerun nor passes for a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from imagenet_sketch_tools.evaluation import outputs
from imagenet_sketch_tools.evaluation.data import Meta
from imagenet_sketch_tools.evaluation.spec import NUM_CLASSES, TOP

# run.json's fields a read-back result is built from, with the types they must have
RUN_FIELDS: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "backbone": str,
    "param_count": int,
    "img_size": int,
    "crop_pct": (int, float),
    "interpolation": str,
    "notes": list,
    "selection": str,
    "unreadable": list,
    "identity": dict,
}
SCHEMA = outputs.predictions_table([], [], [], np.zeros((0, TOP)), np.zeros((0, TOP))).schema


class Damaged(Exception):
    """A file of a finished model that cannot be trusted; its message says which file and what is wrong."""


@dataclass
class Finished:
    run: dict
    predictions: pa.Table


def finished(folder: Path, identity: dict, meta: Meta, selected: np.ndarray) -> Finished | None:
    """The folder's finished run when it was made under `identity`, checked; None when there is none or it was
    made under another identity (a run to make, not a fault); `Damaged` when it is there but cannot be trusted."""
    path = folder / outputs.RUN_FILE
    if not path.exists():
        return None
    run = outputs.read_json(path)
    if not isinstance(run, dict):
        raise Damaged(f"{outputs.RUN_FILE} is damaged (not a whole JSON object)")
    if run.get("identity") != identity:
        return None
    for field, kind in RUN_FIELDS.items():
        if not isinstance(run.get(field), kind):
            raise Damaged(f"{outputs.RUN_FILE} is damaged ({field!r} missing or not a {describe(kind)})")
    unreadable = run["unreadable"]
    if not all(isinstance(pair, list) and len(pair) == 2 for pair in unreadable):
        raise Damaged(f"{outputs.RUN_FILE} is damaged ('unreadable' is not a list of (path, reason) pairs)")
    table = checked_predictions(folder / outputs.PREDICTIONS, expected_rows(meta, selected, unreadable), meta)
    return Finished(run, table)


def describe(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__


def expected_rows(meta: Meta, selected: np.ndarray, unreadable: list) -> np.ndarray:
    """The selected rows predictions.parquet must hold: all but those run.json lists as unreadable, in order."""
    left_out = {str(path) for path, _ in unreadable}
    return np.asarray([row for row in selected.tolist() if meta.paths[row] not in left_out], dtype=np.int64)


def checked_predictions(path: Path, rows: np.ndarray, meta: Meta) -> pa.Table:
    """predictions.parquet, or `Damaged` saying why it cannot be the predictions of `rows`."""
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise Damaged(f"{outputs.PREDICTIONS} is missing") from None
    except (OSError, pa.ArrowException) as error:
        raise Damaged(f"{outputs.PREDICTIONS} is damaged (not readable: {first_line(error)})") from None
    wrong = what_is_wrong(table, rows, meta)
    if wrong:
        raise Damaged(f"{outputs.PREDICTIONS} is damaged ({wrong})")
    return table


def what_is_wrong(table: pa.Table, rows: np.ndarray, meta: Meta) -> str | None:
    """Why `table` is not the predictions of `rows` (None: it is)."""
    if not table.schema.equals(SCHEMA, check_metadata=False):
        return f"its columns are not {', '.join(SCHEMA.names)} of eval's types"
    if table.num_rows != len(rows):
        return f"{table.num_rows:,} rows where the selection has {len(rows):,}"
    if table.column("row").null_count or not np.array_equal(table.column("row").to_numpy(), rows):
        return "its rows are not the selection's"
    if table.column("path").to_pylist() != [meta.paths[row] for row in rows.tolist()]:
        return "its paths are not the source's"
    if table.column("label").null_count or not np.array_equal(table.column("label").to_numpy(), meta.labels[rows]):
        return "its labels are not the source's"
    for column in ("top5", "top5_prob"):
        values = table.column(column).combine_chunks()
        lengths = values.value_lengths()
        if values.null_count or lengths.null_count or not np.all(lengths.to_numpy(zero_copy_only=False) == TOP):
            return f"a row's {column} does not hold {TOP} values"
    classes = outputs.top5_of(table)
    if classes.size and (classes.min() < 0 or classes.max() >= NUM_CLASSES):
        return f"a class outside 0..{NUM_CLASSES - 1}"
    return None


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
