"""Data shared by the eval tests: an archive of coded images whose right answers are known (the fixtures using it
are in this folder's conftest.py; the model reading the codes is known_answer_model.py). No torch here: the
conftest imports this module, and must load without the eval extra."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from imagenet_sketch_tools.dataset.classes import label_of_wnid
from imagenet_sketch_tools.dataset.zipwriter import write_zip
from imagenet_sketch_tools.evaluation import LocalEngine, Weights, evaluate

KNOWN = "python:known_answer_model:model"
STEP, OFFSET = 8, 4  # code c is drawn as 8c + 4: JPEG may move a flat colour by a few levels, never by 4
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


def coded_colour(label: int, rank: int) -> tuple[int, int, int]:
    return (STEP * (label % 32) + OFFSET, STEP * (label // 32) + OFFSET, STEP * rank + OFFSET)


def coded_jpeg(label: int, rank: int, size: tuple[int, int] = (40, 36)) -> bytes:
    """A flat JPEG whose colour codes (label, rank); checked to decode back to the same code."""
    buffer = io.BytesIO()
    Image.new("RGB", size, coded_colour(label, rank)).save(buffer, "JPEG", quality=95)
    decoded = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB").getpixel((size[0] // 2, size[1] // 2))
    assert [round((value - OFFSET) / STEP) for value in decoded] == [label % 32, label // 32, rank]
    return buffer.getvalue()


# timm's tiny test models (random init): the first three share one uint8 stage (160 px, bicubic, crop 0.95)
VIT, CONVNEXT = "timm:test_vit.r160_in1k", "timm:test_convnext.r160_in1k"
EFFICIENTNET = "timm:test_efficientnet.r160_in1k"  # the same uint8 stage, ImageNet's mean and std
RESNET = "timm:test_resnet.r160_in1k"  # bilinear: another uint8 stage
RANDOM = Weights(pretrained=False)
SETTINGS = {"weights": RANDOM, "workers": 0, "batch_size": 5}  # the 16 coded images: batches of 5, 5, 5, 1


def alone(spec: str, source, output: Path) -> pa.Table:
    """The model's predictions when it is the only model of its run."""
    result = evaluate(spec, str(source), output=output, **SETTINGS)
    assert result.decoded == 16 and result.group == 0 and result.folder is not None
    return pq.read_table(result.folder / "predictions.parquet")


def predictions(result) -> pa.Table:
    assert result.folder is not None  # a run with an output folder
    return pq.read_table(result.folder / "predictions.parquet")


class Counting(LocalEngine):
    """The local engine, listing the batches it saves (for every model of a group needing them) and, optionally,
    interrupted after `stop_after` of them (the internal seam `_saved_batch`; a Ctrl-C test sends a real signal)."""

    def __init__(self, stop_after: int | None = None):
        self.saved: list[int] = []
        self.stop_after = stop_after

    def _saved_batch(self, index: int) -> None:
        self.saved.append(index)
        if len(self.saved) == self.stop_after:
            raise KeyboardInterrupt
