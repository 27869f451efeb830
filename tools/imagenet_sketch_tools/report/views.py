"""Per class and how it fails, from one model's per_class.csv and predictions.parquet: the worst and best classes,
the most frequent confusions and the most confident mistakes, each with the images behind it.

An image shown is a `Shot`: its path (the key of its thumbnail) and a caption; the page collects every shot's
path, reads those images only, and inlines each thumbnail once however often it is shown.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from imagenet_sketch_tools.dataset.classes import class_table, label_of_wnid
from imagenet_sketch_tools.report.folder import ModelRun

EXTREME_CLASSES = 20  # worst and best classes listed
SHOTS_PER_CLASS = 3
CONFUSIONS = 20
SHOTS_PER_CONFUSION = 3
CONFIDENT_MISTAKES = 16


@dataclass(frozen=True)
class Shot:
    row: int
    path: str
    caption: str
    right: bool


@dataclass
class Predictions:
    """A model's predictions as arrays: true label, top-1 label, its probability, and whether top-5 holds it."""

    rows: np.ndarray
    paths: list[str]
    labels: np.ndarray
    top1: np.ndarray
    confidence: np.ndarray
    in_top5: np.ndarray

    @classmethod
    def of(cls, model: ModelRun) -> Predictions:
        assert model.predictions is not None
        table = model.predictions
        top5 = table.column("top5").to_pylist()
        labels = table.column("label").to_numpy()
        return cls(
            rows=table.column("row").to_numpy(),
            paths=table.column("path").to_pylist(),
            labels=labels,
            top1=np.array([five[0] if five else -1 for five in top5], dtype=np.int64),
            confidence=np.array([probs[0] if probs else 0.0 for probs in table.column("top5_prob").to_pylist()]),
            in_top5=np.array([label in five for label, five in zip(labels, top5)], dtype=bool),
        )

    @property
    def right(self) -> np.ndarray:
        return self.top1 == self.labels

    def shot(self, index: int, caption: str) -> Shot:
        return Shot(int(self.rows[index]), self.paths[index], caption, bool(self.right[index]))

    def predicted_caption(self, index: int) -> str:
        """What the model said and how sure it was, e.g. "✗ goldfish 62%"."""
        mark = "✓" if self.right[index] else "✗"
        return f"{mark} {short_name(int(self.top1[index]))} {percent(self.confidence[index])}"


def percent(probability: float) -> str:
    """A probability as a percent with the digits that matter: "62%", "4.1%", "0.12%"."""
    value = 100 * float(probability)
    return f"{value:.0f}%" if value >= 10 else f"{value:.2g}%"


def short_name(label: int) -> str:
    """A class's first name ("tench", not "tench, Tinca tinca"); "?" for no prediction."""
    return class_name(label).split(",")[0]


def class_name(label: int) -> str:
    """A class's full name ("tench, Tinca tinca"); "?" for no prediction."""
    return class_table()[1][label] if 0 <= label < 1000 else "?"


def extreme_classes(model: ModelRun, predictions: Predictions) -> tuple[list[dict], list[dict]]:
    """The worst and the best classes by top-1 (then top-5), at most EXTREME_CLASSES each and never overlapping
    (a folder of few classes splits them in halves); each with up to three images: for the worst its most
    confident mistakes, for the best its most confident right answers."""
    classes = [row for row in model.per_class or [] if row["images"] > 0]
    ranked = sorted(classes, key=lambda row: (row["top1"], row["top5"], row["wnid"]))
    count = min(EXTREME_CLASSES, len(ranked) // 2)
    worst, best = ranked[:count], ranked[::-1][:count]

    def with_shots(row: dict, want_right: bool) -> dict:
        members = np.flatnonzero(predictions.labels == label_of_wnid()[row["wnid"]]).tolist()
        preferred = [i for i in members if predictions.right[i] == want_right]
        chosen = sorted(preferred or members, key=lambda i: -predictions.confidence[i])[:SHOTS_PER_CLASS]
        return {**row, "shots": [predictions.shot(i, predictions.predicted_caption(i)) for i in chosen]}

    return [with_shots(row, False) for row in worst], [with_shots(row, True) for row in best]


def confusions(predictions: Predictions) -> list[dict]:
    """The most frequent (true -> predicted) top-1 mistakes, with counts and the most confident images of each."""
    wrong = np.flatnonzero(~predictions.right).tolist()
    pairs = Counter((int(predictions.labels[i]), int(predictions.top1[i])) for i in wrong)
    listed = []
    for (true, said), count in sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:CONFUSIONS]:
        members = [i for i in wrong if predictions.labels[i] == true and predictions.top1[i] == said]
        chosen = sorted(members, key=lambda i: -predictions.confidence[i])[:SHOTS_PER_CONFUSION]
        of_true = int(np.sum(predictions.labels == true))
        listed.append(
            {
                "true": short_name(true),
                "true_full": class_name(true),
                "true_wnid": class_table()[0][true],
                "predicted": short_name(said),
                "predicted_full": class_name(said),
                "count": count,
                "share": 100 * count / of_true,
                "shots": [predictions.shot(i, f"{percent(float(predictions.confidence[i]))} sure") for i in chosen],
            }
        )
    return listed


def confident_mistakes(predictions: Predictions) -> list[Shot]:
    """The wrong top-1 answers given with the highest probability (what mistakes.png shows)."""
    wrong = np.flatnonzero(~predictions.right).tolist()
    chosen = sorted(wrong, key=lambda i: -predictions.confidence[i])[:CONFIDENT_MISTAKES]
    return [
        predictions.shot(
            i,
            f"{short_name(int(predictions.labels[i]))} → {short_name(int(predictions.top1[i]))} "
            f"{percent(float(predictions.confidence[i]))}",
        )
        for i in chosen
    ]


def class_table_rows(models: list[ModelRun]) -> list[dict]:
    """Every class any model was scored on, in label order, with each model's images, top-1 and top-5."""
    by_model = [{row["wnid"]: row for row in model.per_class or []} for model in models]
    wnids, names = class_table()
    rows = []
    for wnid, name in zip(wnids, names):
        scored = [per_class.get(wnid) for per_class in by_model]
        if not any(scored):
            continue
        images = next(row["images"] for row in scored if row)
        rows.append({"wnid": wnid, "name": name, "images": images, "scores": scored})
    return rows
