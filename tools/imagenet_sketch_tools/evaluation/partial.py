"""A model's finished batches, kept on disk in its folder's `.partial/` until the run completes: what makes an
interrupted evaluation continue where it stopped. Each kept batch is checked when a run starts (readable, its
arrays whole, its rows the batch's); a damaged one is said in one line, removed and computed again."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from imagenet_sketch_tools.common.files import write_atomically
from imagenet_sketch_tools.evaluation.spec import TOP

PARTIAL = ".partial"


def batch_file(partial: Path, index: int) -> Path:
    return partial / f"batch-{index:06d}.npz"


def save_batch(partial: Path, index: int, rows, top5, prob, bad_rows, bad_reasons) -> None:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        rows=np.asarray(rows, dtype=np.int64),
        top5=np.asarray(top5, dtype=np.int32).reshape(-1, TOP),
        prob=np.asarray(prob, dtype=np.float32).reshape(-1, TOP),
        bad_rows=np.asarray(bad_rows, dtype=np.int64),
        bad_reasons=np.asarray(bad_reasons, dtype=str),
    )
    write_atomically(batch_file(partial, index), buffer.getvalue())


def finished_batches(partial: Path) -> set[int]:
    return {int(path.stem.split("-")[1]) for path in partial.glob("batch-*.npz")}


def split_batches(selected: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """The selected rows cut into the run's batches, in order: batch i is what `batch-i.npz` holds."""
    return [selected[start : start + batch_size] for start in range(0, len(selected), batch_size)]


def checked_batches(partial: Path, batches: list[np.ndarray], model: str) -> set[int]:
    """The indices of `batches` kept whole in `partial`; a kept batch that is damaged is removed, with one line
    naming it, so that it alone is computed again."""
    kept = finished_batches(partial) & set(range(len(batches)))
    for index in sorted(kept):
        damage = batch_damage(batch_file(partial, index), batches[index])
        if damage:
            print(f"{model}: {PARTIAL}/{batch_file(partial, index).name} is damaged ({damage}); computing that batch "
                  "again", file=sys.stderr, flush=True)  # fmt: skip
            batch_file(partial, index).unlink(missing_ok=True)
            kept.discard(index)
    return kept


def batch_damage(path: Path, wanted: np.ndarray) -> str | None:
    """Why the batch saved at `path` is not the predictions of rows `wanted` (None: it is)."""
    try:
        with np.load(path) as saved:
            arrays = {name: saved[name] for name in ("rows", "top5", "prob", "bad_rows", "bad_reasons")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        return f"not readable: {(str(error).strip().splitlines() or [type(error).__name__])[0]}"
    rows, bad_rows = arrays["rows"], arrays["bad_rows"]
    if arrays["top5"].shape != (len(rows), TOP) or arrays["prob"].shape != (len(rows), TOP):
        return f"its predictions are not {TOP} per row"
    if len(arrays["bad_reasons"]) != len(bad_rows):
        return "its unreadable rows and reasons do not match"
    if not np.array_equal(np.sort(np.concatenate([rows, bad_rows])), np.sort(wanted)):
        return "its rows are not the batch's"
    return None


def collect_partial(partial: Path, selected: int, batch_size: int):
    """All saved batches, in row order: rows, top5, probabilities, and the unreadable (row, reason)."""
    count = -(-selected // batch_size)
    missing = set(range(count)) - finished_batches(partial)
    if missing:
        raise RuntimeError(f"batches {sorted(missing)[:5]} were not computed")  # a bug, not a user error
    rows, top5, prob, bad = [], [], [], []
    for index in range(count):
        with np.load(batch_file(partial, index)) as saved:
            rows.append(saved["rows"])
            top5.append(saved["top5"])
            prob.append(saved["prob"])
            bad.extend(zip(saved["bad_rows"].tolist(), saved["bad_reasons"].tolist()))
    return np.concatenate(rows), np.concatenate(top5), np.concatenate(prob), bad
