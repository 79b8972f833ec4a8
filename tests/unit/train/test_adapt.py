"""make adapt without models: its training pairs, its guards, its statistics, and how the API finds its output."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from services.core.grounding.answerability import FEATURES, GateModel, gate_from_settings
from services.core.models.model_registry import find_adapted
from services.core.settings import Settings
from services.core.types import RetrievedChunk
from train.adapt import _swap_in, by_split, check_enough, paired_bootstrap, training_pairs

pytestmark = pytest.mark.unit


def hit(doc: str, text: str) -> RetrievedChunk:
    return RetrievedChunk(f"{doc}-c", text, doc, f"/{doc}.md", doc.title(), None, None, 0, [], 0.5, 0.5)


class FakeSearch:
    def __init__(self, ranking: Sequence[RetrievedChunk]) -> None:
        self.ranking = list(ranking)

    def __call__(self, question: str, exclude: Sequence[str] = ()) -> list[RetrievedChunk]:
        return [c for c in self.ranking if c.doc_id not in exclude]


def row(i: int, expect: str, category: str, split: str, **extra: object) -> dict[str, object]:
    base = {
        "id": f"r{i}",
        "question": f"question {i}?",
        "expect": expect,
        "category": category,
        "split": split,
        "provenance": {"chunk_id": f"chunk-{i}", "doc_id": "own", "title": "Own"},
    }
    return {**base, **extra}


def test_training_pairs_label_the_source_chunk_other_documents_and_a_near_miss() -> None:
    search = FakeSearch([hit("own", "the answer"), hit("also", "also holds it"), hit("other", "on topic, no answer")])
    rows = [
        row(1, "answer", "factoid", "train", relevant_docs=["own", "also"], reference_contexts=["the answer"]),
        row(2, "abstain", "near-miss", "train"),
        row(3, "abstain", "leave-one-out", "train", exclude_docs=["own"]),  # its negatives came with row 1
    ]
    pairs = training_pairs(rows, search, {"chunk-2": "the near miss's chunk"}.get, hard_negatives=3)
    assert pairs == [
        ("question 1?", "Own\nthe answer", 1.0),
        ("question 1?", "Other\non topic, no answer", 0.0),  # a document that also answers is no negative
        ("question 2?", "Own\nthe near miss's chunk", 0.0),
        ("question 2?", "Own\nthe answer", 0.0),
        ("question 2?", "Also\nalso holds it", 0.0),
        ("question 2?", "Other\non topic, no answer", 0.0),
    ]


def test_a_split_too_small_for_a_gate_is_refused_with_what_to_do() -> None:
    rows = [row(i, "answer" if i % 2 else "abstain", "factoid", "train" if i < 20 else "dev") for i in range(24)]
    with pytest.raises(ValueError, match=r"2 answerable and 2 unanswerable dev questions.*--target"):
        check_enough(by_split(rows))


def test_the_paired_bootstrap_brackets_a_real_difference_and_straddles_none() -> None:
    better = paired_bootstrap([0.0] * 50 + [1.0] * 50, [1.0] * 100)
    assert better["diff"] == 0.5 and better["ci95"][0] > 0.3
    same = paired_bootstrap([0.0, 1.0] * 50, [1.0, 0.0] * 50)
    assert same["diff"] == 0.0 and same["ci95"][0] < 0 < same["ci95"][1]


def gate_file(path: Path, reranker: str) -> None:
    n = len(FEATURES)
    model = GateModel(
        "adapted-gate-x", reranker, FEATURES, (0.0,) * n, (1.0,) * n, (1.0,) + (0.0,) * (n - 1), 0.0, 1.0, 0.0,
        0.2, 0.7, "mine", frozenset({"abc"}),
    )  # fmt: skip
    path.write_text(json.dumps(model.to_json()))


def adapted_folder(
    root: Path, name: str = "adapted-fitzgov-minilm-l6-1234abcd", base: str = "fitzgov-minilm-l6"
) -> Path:
    (root / "reranker").mkdir(parents=True)
    (root / "reranker" / "config.json").write_text("{}")
    gate_file(root / "gate.json", name)
    (root / "manifest.json").write_text(json.dumps({"name": name, "base_reranker": base}))
    return root


def test_the_api_finds_complete_adapted_models_of_its_configured_reranker_only(tmp_path: Path) -> None:
    assert find_adapted(tmp_path, "fitzgov-minilm-l6") is None
    adapted_folder(tmp_path / "adapted")
    found = find_adapted(tmp_path, "fitzgov-minilm-l6")
    assert found is not None and found.name.startswith("adapted-") and found.gate.exists()
    assert find_adapted(tmp_path, "cross-encoder/ms-marco-MiniLM-L-6-v2") is None  # adapted from another one
    (tmp_path / "adapted" / "gate.json").unlink()
    assert find_adapted(tmp_path, "fitzgov-minilm-l6") is None  # incomplete: never half


def test_the_adapted_reranker_is_built_with_its_name_and_gets_its_own_gate(tmp_path: Path) -> None:
    from services.core.factory import build_reranker

    adapted_folder(tmp_path / "adapted")
    settings = Settings(_env_file=None, data_dir=tmp_path, adapted_models=True)  # type: ignore[call-arg]
    reranker = build_reranker(settings)
    assert reranker.name == "adapted-fitzgov-minilm-l6-1234abcd"
    assert getattr(reranker, "model_ref", "") == str(tmp_path / "adapted" / "reranker")
    gate = gate_from_settings(settings, reranker)
    assert gate is not None and gate.name == "adapted-gate-x" and gate.model.domain == "mine"
    from services.core.factory import sentence_scorer

    assert sentence_scorer(settings, reranker).name == "fitzgov-minilm-l6"  # the verifier keeps the shipped one
    shipped = build_reranker(settings.model_copy(update={"adapted_models": False}))
    assert sentence_scorer(settings, shipped) is shipped
    assert shipped.name == "fitzgov-minilm-l6"
    gate = gate_from_settings(settings, shipped)
    assert gate is not None and gate.model.domain.startswith("fitz-gov")  # the shipped one for the shipped reranker


def test_the_new_folder_replaces_the_old_one_whole(tmp_path: Path) -> None:
    root = tmp_path / "adapted"
    adapted_folder(root, name="adapted-old")
    staging = adapted_folder(tmp_path / ".adapted-new", name="adapted-new")
    _swap_in(staging, root)
    assert json.loads((root / "manifest.json").read_text())["name"] == "adapted-new"
    assert not staging.exists() and not (tmp_path / ".adapted-old").exists()
