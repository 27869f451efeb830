"""Scores from predictions alone (labels and the five best classes per image): top-1, top-5, per class, and
mean per-class recall. The same arithmetic serves a finished run and anyone recomputing from predictions.parquet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imagenet_sketch_tools.dataset.classes import class_table


@dataclass(frozen=True)
class Scores:
    images: int
    top1_correct: int
    top5_correct: int
    per_class: list[dict]  # wnid, name, images, top1, top5 (percent), for every class with an image
    mean_class_recall: float  # percent: mean over classes with at least one image of their top-1 recall

    @property
    def top1(self) -> float:
        return percent(self.top1_correct, self.images)

    @property
    def top5(self) -> float:
        return percent(self.top5_correct, self.images)


def percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def score(labels: np.ndarray, top5: np.ndarray) -> Scores:
    """`labels` (N,) ImageNet-1k indices; `top5` (N, 5) predicted indices, best first."""
    labels = np.asarray(labels, dtype=np.int64)
    top5 = np.asarray(top5, dtype=np.int64).reshape(len(labels), 5)
    hit1 = top5[:, 0] == labels
    hit5 = (top5 == labels[:, None]).any(axis=1)
    counts = np.bincount(labels, minlength=1000)
    hits1 = np.bincount(labels, weights=hit1, minlength=1000)
    hits5 = np.bincount(labels, weights=hit5, minlength=1000)
    wnids, names = class_table()
    present = np.flatnonzero(counts)
    per_class = [
        {
            "wnid": wnids[label],
            "name": names[label],
            "images": int(counts[label]),
            "top1": percent(int(hits1[label]), int(counts[label])),
            "top5": percent(int(hits5[label]), int(counts[label])),
        }
        for label in present
    ]
    recall = float(np.mean([row["top1"] for row in per_class])) if per_class else 0.0
    return Scores(len(labels), int(hit1.sum()), int(hit5.sum()), per_class, recall)
