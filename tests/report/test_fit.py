"""The probit fit's arithmetic: known points give a known line, and 0% / 100% do not break it."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from imagenet_sketch_tools.report.fit import CLIP_PERCENT, fit_probit_line, from_probit, probit

NORMAL = NormalDist()


def percent_at(z: float) -> float:
    return 100 * NORMAL.cdf(z)


def test_points_on_a_known_line_give_its_slope_and_intercept():
    slope, intercept = 0.8, -0.6
    xs = [-1.5, -0.5, 0.0, 0.7, 1.4, 2.1]
    fit = fit_probit_line([percent_at(x) for x in xs], [percent_at(slope * x + intercept) for x in xs])
    assert fit.slope == pytest.approx(slope, abs=1e-9)
    assert fit.intercept == pytest.approx(intercept, abs=1e-9)
    assert fit.points == 6
    # a model on the line has no effective robustness; one 5 points above it has 5
    on_line = percent_at(slope * 1.0 + intercept)
    assert fit.effective_robustness(on_line, percent_at(1.0)) == pytest.approx(0, abs=1e-9)
    assert fit.effective_robustness(on_line + 5, percent_at(1.0)) == pytest.approx(5, abs=1e-9)


def test_least_squares_of_scattered_points():
    # probits (0, 0), (1, 1), (2, 1): the least-squares line is y = 0.5 x + 1/6
    fit = fit_probit_line([50, percent_at(1), percent_at(2)], [50, percent_at(1), percent_at(1)])
    assert (fit.slope, fit.intercept) == (pytest.approx(0.5), pytest.approx(1 / 6))
    assert fit.predict(50) == pytest.approx(percent_at(1 / 6))


def test_zero_and_hundred_percent_are_clipped_not_infinite():
    assert probit(0) == probit(CLIP_PERCENT) == pytest.approx(NORMAL.inv_cdf(CLIP_PERCENT / 100))
    assert probit(100) == pytest.approx(-probit(0))
    assert math.isfinite(probit(0)) and probit(0) < probit(0.1)
    fit = fit_probit_line([0, 50, 100], [0, 50, 100])  # clipped symmetrically: still the identity line
    assert (fit.slope, fit.intercept) == (pytest.approx(1), pytest.approx(0, abs=1e-12))
    assert from_probit(probit(37.5)) == pytest.approx(37.5)


def test_a_line_needs_two_points():
    with pytest.raises(ValueError):
        fit_probit_line([50], [20])
