"""A model whose answers are known: each test image is one flat colour coding its label and the rank the
model must give the true class (see `eval_data.coded_jpeg`); the module reads the code back from the pixels.

For rank r, five decoy classes (label+1 .. label+6, mod 1000) get scores 10, 9, ..., 5 and the true class
10.5 - r: rank 0 is a top-1 hit, ranks 1-4 top-5 hits only, rank 5 a miss of both (top-1 then says label+1).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from eval_data import OFFSET, STEP

PAUSE_AT = 3  # the batch a paused model stops in, after two are saved
DATA_CONFIG = {
    "input_size": (3, 32, 32),
    "interpolation": "bilinear",
    "mean": (0, 0, 0),
    "std": (1, 1, 1),
    "crop_pct": 1.0,
}


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


class Held(KnownAnswers):
    """Stops in its forward pass number `at` when `$EVAL_TEST_MARKERS` names a folder: it writes `marker` there
    (`{pid}` replaced by its pid) and waits until the file `release` appears there, or, without one, until the
    process is interrupted (the tests' events). Elsewhere it is KnownAnswers."""

    def __init__(self, at: int, marker: str, release: str | None = None):
        super().__init__()
        self.calls, self.at, self.marker, self.release = 0, at, marker, release

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        markers = os.environ.get("EVAL_TEST_MARKERS")
        if markers and self.calls == self.at:
            (Path(markers) / self.marker.format(pid=os.getpid())).write_text(str(os.getpid()))
            while self.release is None or not (Path(markers) / self.release).exists():
                time.sleep(0.05)  # sleeping, not computing: waiting for the test's event (or SIGINT)
        return super().forward(pixels)


def paused_model():
    return Held(PAUSE_AT, "paused"), DATA_CONFIG  # the Ctrl-C test: stops in its third batch, two saved


def gated_model():
    return Held(1, "started-{pid}", "go"), DATA_CONFIG  # the one-writer tests: held until the test writes `go`
