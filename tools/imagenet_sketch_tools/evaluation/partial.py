"""A model's finished batches, kept on disk in its folder's `.partial/` until the run completes: what makes an
interrupted evaluation continue where it stopped."""

from __future__ import annotations

import io
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
