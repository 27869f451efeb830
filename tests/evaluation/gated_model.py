"""The known-answer model, held at its first forward pass while `$EVAL_TEST_MARKERS` names a folder: it writes
`started-<pid>` there and waits until the test writes `go` (the one-writer tests' events). Elsewhere it is
known_answer_model's model."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from known_answer_model import DATA_CONFIG, KnownAnswers


class Gated(KnownAnswers):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        markers = os.environ.get("EVAL_TEST_MARKERS")
        if markers and self.calls == 1:
            (Path(markers) / f"started-{os.getpid()}").write_text("")
            while not (Path(markers) / "go").exists():
                time.sleep(0.05)  # waiting for the test's event, not timing anything
        return super().forward(pixels)


def model():
    return Gated(), DATA_CONFIG
