"""`make reranker` end to end on a tiny slice: mines, trains a few steps, writes a loadable model with its card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.reranker import main

pytestmark = pytest.mark.slow


def test_training_command_writes_a_loadable_model_with_card(tmp_path: Path) -> None:
    out = tmp_path / "rr"
    main(
        [
            "--out", str(out), "--max-queries", "6", "--max-corpus", "60", "--max-steps", "2",
            "--batch-size", "4", "--eval-queries", "3", "--eval-depth", "5",
        ]
    )  # fmt: skip
    card = json.loads((out / "training.json").read_text())
    assert card["data"]["queries"] == 6
    assert card["data"]["positives"] >= 6 and card["data"]["negatives"] > 0
    assert card["params"]["max_steps"] == 2
    assert "reranked_ndcg@10" in card["metrics"]
    assert card["metrics"]["dev_corpus"] < 500  # the smoke haystack (60 + judged docs), not the 5k-doc corpus
    assert "**train** split" in (out / "README.md").read_text()
    from sentence_transformers import CrossEncoder

    scores = CrossEncoder(str(out), local_files_only=True).predict([("a question", "a passage")])
    assert len(scores) == 1
