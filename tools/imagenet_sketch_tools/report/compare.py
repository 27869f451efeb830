"""Model against model: per class the difference in top-1, and the images one model gets right and the other
wrong, with both predictions. Images are matched by path, so two models scored on the same images compare."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations

import numpy as np

from imagenet_sketch_tools.dataset.classes import class_table
from imagenet_sketch_tools.report.views import Predictions, Shot, short_name

PAIRS = 6  # at most this many pairs of models, the best models first
CLASSES_EACH_WAY = 10
SHOTS_PER_CLASS = 3


def comparisons(named: list[tuple[str, Predictions]]) -> list[dict]:
    """For each pair of models (in leaderboard order), the classes where each beats the other most."""
    return [compare(a, b) for a, b in list(combinations(named, 2))[:PAIRS]]


def compare(first: tuple[str, Predictions], second: tuple[str, Predictions]) -> dict:
    (name_a, a), (name_b, b) = first, second
    index_b = {path: i for i, path in enumerate(b.paths)}
    shared = [(i, index_b[path]) for i, path in enumerate(a.paths) if path in index_b]
    ia = np.array([i for i, _ in shared], dtype=np.int64)
    ib = np.array([j for _, j in shared], dtype=np.int64)
    right_a, right_b, labels = a.right[ia], b.right[ib], a.labels[ia]
    per_class = []
    for label in np.unique(labels):
        members = labels == label
        per_class.append(
            {
                "wnid": class_table()[0][label],
                "name": class_table()[1][label],
                "images": int(members.sum()),
                "top1_a": 100 * float(right_a[members].mean()),
                "top1_b": 100 * float(right_b[members].mean()),
                "label": int(label),
            }
        )
    for row in per_class:
        row["diff"] = row["top1_a"] - row["top1_b"]

    def examples(row: dict, winner_right: np.ndarray, loser_right: np.ndarray) -> list[tuple[Shot, str]]:
        """Images of the class the winner gets right and the loser wrong (framed as right), captioned with what
        A and B said."""
        where = np.flatnonzero((labels == row["label"]) & winner_right & ~loser_right)[:SHOTS_PER_CLASS].tolist()
        found = []
        for k in where:
            shot = a.shot(int(ia[k]), caption(a, int(ia[k]), "A"))
            found.append((replace(shot, right=True), caption(b, int(ib[k]), "B")))
        return found

    a_better = sorted((row for row in per_class if row["diff"] > 0), key=lambda row: (-row["diff"], row["wnid"]))
    b_better = sorted((row for row in per_class if row["diff"] < 0), key=lambda row: (row["diff"], row["wnid"]))
    return {
        "a": name_a,
        "b": name_b,
        "images": len(shared),
        "only_a": int(np.sum(right_a & ~right_b)),
        "only_b": int(np.sum(right_b & ~right_a)),
        "classes": sorted(per_class, key=lambda row: (-abs(row["diff"]), row["wnid"])),
        "a_better": [{**row, "examples": examples(row, right_a, right_b)} for row in a_better[:CLASSES_EACH_WAY]],
        "b_better": [{**row, "examples": examples(row, right_b, right_a)} for row in b_better[:CLASSES_EACH_WAY]],
    }


def caption(predictions: Predictions, index: int, letter: str) -> str:
    """What one model of the pair said, e.g. "A ✓ tench"; the page names A and B above."""
    mark = "✓" if predictions.right[index] else "✗"
    return f"{letter} {mark} {short_name(int(predictions.top1[index]))}"
