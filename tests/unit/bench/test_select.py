"""The rules that turn measurements into defaults."""

from __future__ import annotations

import pytest

from bench.select import fastest_keeping_quality, smallest_depth_keeping_quality

pytestmark = pytest.mark.unit


def rows(**kw: tuple[float, float]) -> dict[str, dict[str, float]]:
    return {name.replace("_", "-"): {"speed": s, "ndcg": q} for name, (s, q) in kw.items()}


def test_fastest_backend_keeping_99_percent_wins() -> None:
    r = rows(torch=(10, 0.800), onnx=(15, 0.800), onnx_int8=(25, 0.795), openvino_int8=(40, 0.780))
    # 0.780 < 0.99 * 0.800 = 0.792: the fastest loses too much; onnx-int8 keeps 99.4%
    assert fastest_keeping_quality(r, speed="speed", quality="ndcg") == "onnx-int8"


def test_exactly_99_percent_qualifies() -> None:
    r = rows(torch=(10, 0.800), onnx_int8=(30, 0.792))
    assert fastest_keeping_quality(r, speed="speed", quality="ndcg") == "onnx-int8"


def test_baseline_stays_when_nothing_is_faster_and_good_enough() -> None:
    r = rows(torch=(10, 0.8), onnx=(9, 0.8), onnx_int8=(30, 0.5))
    assert fastest_keeping_quality(r, speed="speed", quality="ndcg") == "torch"


def test_a_tie_in_speed_keeps_the_baseline() -> None:
    r = rows(torch=(10, 0.8), onnx=(10, 0.9))
    assert fastest_keeping_quality(r, speed="speed", quality="ndcg") == "torch"


def test_missing_baseline_is_an_error() -> None:
    with pytest.raises(ValueError):
        fastest_keeping_quality(rows(onnx=(1, 1)), speed="speed", quality="ndcg")


def test_depth_is_the_smallest_within_99_percent_of_the_best() -> None:
    curve = {5: 0.70, 10: 0.76, 20: 0.775, 30: 0.780, 50: 0.779}
    assert smallest_depth_keeping_quality(curve) == 20  # 0.775 >= 0.99 * 0.780
    assert smallest_depth_keeping_quality({10: 0.5}) == 10


def test_a_depth_that_can_only_reorder_the_returned_chunks_is_not_chosen() -> None:
    curve = {5: 0.898, 10: 0.896, 20: 0.896, 30: 0.891}
    assert smallest_depth_keeping_quality(curve) == 5
    assert smallest_depth_keeping_quality(curve, above=5) == 10
    with pytest.raises(ValueError):
        smallest_depth_keeping_quality({5: 0.9}, above=5)
