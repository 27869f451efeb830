"""Small random-init models with fixed seeds, as `python:ray_models:NAME` specs, for the Ray engine's tests; and
one that kills its Ray actor once, part way through, to test that the run still completes."""

from __future__ import annotations

import os

import timm
import torch

DATA_CONFIG = {"input_size": (3, 64, 64), "interpolation": "bilinear", "crop_pct": 0.875}
DIE_AFTER = 2  # batches an actor computes before it dies (once: a marker file says it has)


def resnet():
    torch.manual_seed(1)
    return timm.create_model("test_resnet", pretrained=False).eval(), DATA_CONFIG


def vit():
    torch.manual_seed(2)
    return timm.create_model("test_vit", pretrained=False, img_size=64).eval(), DATA_CONFIG


class DiesOnce(torch.nn.Module):
    """`resnet()`'s model, whose process exits (as a killed worker would) on its third batch, the first time
    only: the file `$RAY_TEST_MARKERS/died` says it happened. Outside a Ray worker it never dies."""

    def __init__(self):
        super().__init__()
        self.inner, _ = resnet()
        self.calls = 0

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        marker = os.path.join(os.environ.get("RAY_TEST_MARKERS", ""), "died")
        if self.calls > DIE_AFTER and os.environ.get("RAY_TEST_MARKERS") and not os.path.exists(marker):
            with open(marker, "w") as file:
                file.write(str(os.getpid()))
            os._exit(1)
        return self.inner(pixels)


def dies_once():
    return DiesOnce(), DATA_CONFIG
