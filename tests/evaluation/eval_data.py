"""Data shared by the eval tests: an archive of coded images whose right answers are known (the fixtures using it
are in this folder's conftest.py)."""

from __future__ import annotations

from pathlib import Path

from imagenet_sketch_tools.dataset.classes import label_of_wnid
from imagenet_sketch_tools.dataset.zipwriter import write_zip
from known_answer_model import coded_jpeg

KNOWN = "python:known_answer_model:model"
# Classes spread over the table with gaps between them (label alignment), crane2 included; per image, the rank
# the model gives the true class (0: top-1 hit, 1-4: top-5 only, 5: miss).
CODED = {
    "n01440764": [0, 0, 1, 5],  # label 0
    "n01443537": [2],  # label 1
    "n03126707": [0, 5, 5],  # label 517, crane2
    "n03710721": [4, 0],  # label 639
    "n15075141": [0, 1, 2, 3, 4, 5],  # label 999, the last
}


def coded_members(coded: dict[str, list[int]] = CODED) -> list[tuple[str, bytes]]:
    return [
        (f"sketch/{wnid}/sketch_{n}.JPEG", coded_jpeg(label_of_wnid()[wnid], rank, size=(40 + n, 36)))
        for wnid, ranks in coded.items()
        for n, rank in enumerate(ranks)
    ]


def coded_zip_at(path: Path, coded: dict[str, list[int]] = CODED, extra: list[tuple[str, bytes]] = ()) -> Path:
    write_zip([*coded_members(coded), *extra], path)
    return path
