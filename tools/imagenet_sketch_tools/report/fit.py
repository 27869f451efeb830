"""Accuracy on the line: the linear fit of sketch accuracy against ImageNet accuracy in probit space (Taori et al.,
NeurIPS 2020; Miller et al., "Accuracy on the Line", ICML 2021), and a model's effective robustness above it.

Accuracies are percentages. The probit of 0% or 100% is infinite, so an accuracy is first clipped to
[CLIP_PERCENT, 100 - CLIP_PERCENT] (a hundredth of a percent from either end, under the 1/50,889 of one image of
the release): a model that gets nothing right sits at the bottom of the plot instead of breaking the fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

CLIP_PERCENT = 0.01
_NORMAL = NormalDist()


def probit(percent: float) -> float:
    """The standard normal quantile of an accuracy in percent, clipped away from 0% and 100%."""
    fraction = min(max(percent, CLIP_PERCENT), 100 - CLIP_PERCENT) / 100
    return _NORMAL.inv_cdf(fraction)


def from_probit(value: float) -> float:
    """The accuracy in percent at a probit value (the standard normal CDF)."""
    return 100 * _NORMAL.cdf(value)


@dataclass(frozen=True)
class ProbitFit:
    """probit(sketch) = slope * probit(imagenet) + intercept, from `points` (model, img_size) results."""

    slope: float
    intercept: float
    points: int

    def predict(self, imagenet_percent: float) -> float:
        """The sketch top-1 (percent) the line predicts for an ImageNet top-1 (percent)."""
        return from_probit(self.slope * probit(imagenet_percent) + self.intercept)

    def effective_robustness(self, sketch_percent: float, imagenet_percent: float) -> float:
        """Sketch top-1 minus the line's prediction, in percentage points: above the line is positive."""
        return sketch_percent - self.predict(imagenet_percent)

    def equation(self) -> str:
        sign = "+" if self.intercept >= 0 else "−"
        return f"probit(sketch) = {self.slope:.3f} × probit(ImageNet) {sign} {abs(self.intercept):.3f}"


def fit_probit_line(imagenet_percent: Sequence[float], sketch_percent: Sequence[float]) -> ProbitFit:
    """Least squares of probit(sketch) on probit(imagenet), each (model, img_size) point weighing the same."""
    if len(imagenet_percent) != len(sketch_percent) or len(imagenet_percent) < 2:
        raise ValueError("a line needs at least two points, as many ImageNet as sketch accuracies")
    x = np.array([probit(value) for value in imagenet_percent])
    y = np.array([probit(value) for value in sketch_percent])
    slope, intercept = np.polyfit(x, y, 1)
    return ProbitFit(float(slope), float(intercept), len(x))
