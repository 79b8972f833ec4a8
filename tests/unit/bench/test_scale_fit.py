"""The growth fit that names the size at which the Qdrant server is needed."""

from __future__ import annotations

import pytest

from bench.scale_bench import fit_line, size_at_budget

pytestmark = pytest.mark.unit


def test_fit_recovers_a_line_and_the_budget_crossing() -> None:
    intercept, slope = fit_line([10_000, 100_000], [6.0, 60.0])
    assert intercept == pytest.approx(0.0, abs=1e-6)
    assert slope == pytest.approx(0.0006)
    assert size_at_budget(intercept, slope, 50.0) == pytest.approx(83_333, abs=1)


def test_one_point_fits_through_the_origin_and_flat_cost_never_crosses() -> None:
    assert fit_line([1000], [2.0]) == (0.0, 0.002)
    assert size_at_budget(5.0, 0.0, 50.0) is None
