"""Scores from predictions alone (labels and the five best classes per image): top-1, top-5, per class, and
mean per-class recall. The same arithmetic serves a finished run and anyone recomputing from predictions.parquet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.evaluation.spec import NUM_CLASSES, TOP


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
    top5 = np.asarray(top5, dtype=np.int64).reshape(len(labels), TOP)
    hit1 = top5[:, 0] == labels
    hit5 = (top5 == labels[:, None]).any(axis=1)
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    hits1 = np.bincount(labels, weights=hit1, minlength=NUM_CLASSES)
    hits5 = np.bincount(labels, weights=hit5, minlength=NUM_CLASSES)
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


class RunningTop1:
    """The progress bar of a model's run: images/s and the top-1 of the images computed so far."""

    def __init__(self, name: str, total: int, done: int = 0, shown: bool = True):
        self.bar = tqdm(total=total, initial=done, unit="img", desc=name, disable=not shown)
        self.correct = self.seen = 0

    def add(self, labels: np.ndarray, predicted: np.ndarray, unreadable: int = 0) -> None:
        """A batch's true labels and top-1 predictions (of its readable images), and its unreadable count."""
        self.correct += int(np.sum(predicted == labels))
        self.seen += len(labels)
        self.bar.update(len(labels) + unreadable)
        self.bar.set_postfix(top1=f"{100 * self.correct / max(self.seen, 1):.2f}%", refresh=False)

    def close(self) -> None:
        self.bar.close()
