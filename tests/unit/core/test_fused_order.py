from __future__ import annotations

import pytest

from services.core.models.reranker import fused_order

pytestmark = pytest.mark.unit


def test_weight_zero_orders_by_cross_encoder_alone() -> None:
    assert fused_order([0.1, 0.9, 0.5], [3.0, 1.0, 2.0], 0.0) == [1, 2, 0]


def test_weight_one_keeps_the_first_stage_order() -> None:
    assert fused_order([0.1, 0.9, 0.5], [3.0, 1.0, 2.0], 1.0) == [0, 2, 1]


def test_an_unsure_cross_encoder_defers_to_the_retriever() -> None:
    # the cross-encoder barely prefers candidate 1 (0.18 vs 0.06); the retriever clearly prefers candidate 0
    assert fused_order([0.06, 0.18], [0.62, 0.30], 0.0) == [1, 0]
    assert fused_order([0.06, 0.18], [0.62, 0.30], 0.3) == [0, 1]


def test_equal_first_stage_scores_do_not_divide_by_zero() -> None:
    assert fused_order([0.2, 0.8], [0.5, 0.5], 0.5) == [1, 0]
