"""A model whose answers are known: each test image is one flat colour coding its label and the rank the
model must give the true class (see `coded_jpeg`); the module reads the code back from the pixels.

For rank r, five decoy classes (label+1 .. label+6, mod 1000) get scores 10, 9, ..., 5 and the true class
10.5 - r: rank 0 is a top-1 hit, ranks 1-4 top-5 hits only, rank 5 a miss of both (top-1 then says label+1).
"""

from __future__ import annotations

import io

import torch
from PIL import Image

STEP, OFFSET = 8, 4  # code c is drawn as 8c + 4: JPEG may move a flat colour by a few levels, never by 4
DATA_CONFIG = {
    "input_size": (3, 32, 32),
    "interpolation": "bilinear",
    "mean": (0, 0, 0),
    "std": (1, 1, 1),
    "crop_pct": 1.0,
}


def coded_colour(label: int, rank: int) -> tuple[int, int, int]:
    return (STEP * (label % 32) + OFFSET, STEP * (label // 32) + OFFSET, STEP * rank + OFFSET)


def coded_jpeg(label: int, rank: int, size: tuple[int, int] = (40, 36)) -> bytes:
    """A flat JPEG whose colour codes (label, rank); checked to decode back to the same code."""
    buffer = io.BytesIO()
    Image.new("RGB", size, coded_colour(label, rank)).save(buffer, "JPEG", quality=95)
    decoded = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB").getpixel((size[0] // 2, size[1] // 2))
    assert [round((value - OFFSET) / STEP) for value in decoded] == [label % 32, label // 32, rank]
    return buffer.getvalue()


class KnownAnswers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(3))  # a parameter, so param_count is 3

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        codes = ((pixels.mean(dim=(2, 3)) * 255 - OFFSET) / STEP).round().long()  # inputs are pixel / 255
        label = (codes[:, 0] + 32 * codes[:, 1]) % 1000  # images that carry no code still get an answer
        rank = codes[:, 2].clamp(0, 5)
        logits = torch.zeros(len(pixels), 1000)
        rows = torch.arange(len(pixels))
        for k in range(6):
            logits[rows, (label + 1 + k) % 1000] = 10.0 - k
        logits[rows, label] = 10.5 - rank.float()
        return logits


def model():
    return KnownAnswers(), DATA_CONFIG


def bare_model():
    return KnownAnswers()  # no data config: timm's 224 defaults apply


class Slow(KnownAnswers):
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        import time

        time.sleep(0.2)  # long enough for a test to interrupt the run between batches
        return super().forward(pixels)


def slow_model():
    return Slow(), DATA_CONFIG
