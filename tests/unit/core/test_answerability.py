"""The answerability gate: features that see a near miss, a model file that loads or refuses, bands."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from services.core.grounding.answerability import FEATURES, CalibratedGate, GateModel, features, gate_from_settings
from services.core.grounding.text import content_words, specific_words
from services.core.settings import Settings
from services.core.types import RetrievedChunk

pytestmark = pytest.mark.unit


def chunk(i: int, text: str, score: float | None) -> RetrievedChunk:
    return RetrievedChunk(f"c{i}", text, f"d{i}", f"doc{i}.md", "", None, None, 0, [], 0.5, rerank_score=score)


def model(**overrides: object) -> GateModel:
    base: dict[str, object] = {
        "name": "test-gate",
        "reranker": "fitzgov-minilm-l6",
        "features": FEATURES,
        "mean": (0.0,) * len(FEATURES),
        "scale": (1.0,) * len(FEATURES),
        # only the top-1 logit counts: p = sigmoid(logit(ce_top1)), so the gate follows the cross-encoder
        "coef": (1.0,) + (0.0,) * (len(FEATURES) - 1),
        "intercept": 0.0,
        "platt_a": 1.0,
        "platt_b": 0.0,
        "decline_below": 0.2,
        "answer_above": 0.7,
    }
    return GateModel(**{**base, **overrides})  # type: ignore[arg-type]


QUESTION = "What tactics did Hannibal use at the Battle of Zama in 202 BCE?"


def test_specific_words_are_names_and_numbers() -> None:
    assert {"hannibal", "battle", "zama", "202", "bce"} <= specific_words(QUESTION)
    assert "what" not in content_words(QUESTION) and "tactic" in content_words(QUESTION)


def test_a_near_miss_covers_fewer_of_the_questions_names_than_the_answer() -> None:
    near_miss = chunk(0, "At Cannae in 216 BCE Hannibal used a double envelopment tactic.", 0.9)
    answer = chunk(1, "At the Battle of Zama in 202 BCE Hannibal led war elephants; Scipio's tactics beat them.", 0.9)
    f_miss, f_hit = features(QUESTION, [near_miss]), features(QUESTION, [answer])
    assert f_miss is not None and f_hit is not None
    assert f_miss["specific_coverage_top1"] < f_hit["specific_coverage_top1"] == 1.0


def test_features_use_the_cross_encoder_order_and_margin() -> None:
    f = features("q", [chunk(0, "a", 0.2), chunk(1, "b", 0.9), chunk(2, "c", 0.5)])
    assert f is not None and set(f) == set(FEATURES)
    assert f["ce_top1_logit"] == pytest.approx(math.log(0.9 / 0.1))
    assert f["ce_margin"] == pytest.approx(0.4)


def test_without_rerank_scores_the_gate_sends_the_answer_to_the_verifier() -> None:
    decision = CalibratedGate(model()).decide("q", [chunk(0, "text", None)])
    assert decision.band == "verify"


def test_no_chunks_is_a_decline() -> None:
    assert CalibratedGate(model()).decide("q", []).band == "decline"


@pytest.mark.parametrize(("ce", "band"), [(0.05, "decline"), (0.5, "verify"), (0.95, "answer")])
def test_bands_follow_the_calibrated_probability(ce: float, band: str) -> None:
    decision = CalibratedGate(model()).decide("q", [chunk(0, "text", ce)])
    assert decision.band == band and decision.score == pytest.approx(ce, abs=1e-3)


def test_model_file_round_trips_and_rejects_nonsense(tmp_path: Path) -> None:
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(model().to_json()))
    assert GateModel.load(path) == model()
    path.write_text(json.dumps(model(decline_below=0.9, answer_above=0.1).to_json()))
    with pytest.raises(ValueError, match="decline_below"):
        GateModel.load(path)
    path.write_text(json.dumps({**model().to_json(), "features": ["made_up"], "mean": [0], "scale": [1], "coef": [1]}))
    with pytest.raises(ValueError, match="unknown features"):
        GateModel.load(path)


class FakeReranker:
    def __init__(self, name: str) -> None:
        self.name = name


def test_gate_is_off_for_another_reranker_or_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(model().to_json()))
    settings = Settings(_env_file=None, answerability_model=str(path))
    assert gate_from_settings(settings, FakeReranker("fitzgov-minilm-l6")) is not None
    assert gate_from_settings(settings, FakeReranker("cross-encoder/ms-marco-MiniLM-L-6-v2")) is None
    missing = Settings(_env_file=None, answerability_model=str(tmp_path / "nope.json"))
    assert gate_from_settings(missing, FakeReranker("fitzgov-minilm-l6")) is None


# --- decline only with evidence: the calibration domain ----------------------------------------------------


def from_doc(i: int, score: float, content_hash: str) -> RetrievedChunk:
    c = chunk(i, f"text {i}", score)
    return RetrievedChunk(**{**{f: getattr(c, f) for f in c.__slots__}, "content_hash": content_hash})


KNOWN, OTHER = "a" * 64, "b" * 64


@pytest.mark.parametrize(
    ("hashes", "outside", "band", "calibrated"),
    [
        ((KNOWN, KNOWN), "verify", "decline", True),  # calibrated there: its low score is evidence
        ((OTHER, OTHER), "verify", "verify", False),  # never calibrated there: the verifier decides
        ((KNOWN, OTHER), "verify", "verify", False),  # one top chunk from an unknown document is enough
        ((OTHER, OTHER), "decline", "decline", False),  # RAG_GATE_OUTSIDE_DOMAIN=decline trusts it anyway
    ],
)
def test_a_low_score_declines_only_on_documents_the_gate_was_calibrated_on(
    hashes: tuple[str, str], outside: str, band: str, calibrated: bool
) -> None:
    gate = CalibratedGate(model(domain="test", domain_documents=frozenset({KNOWN[:16]})), outside_domain=outside)  # type: ignore[arg-type]
    decision = gate.decide("q", [from_doc(i, 0.05, h) for i, h in enumerate(hashes)])
    assert (decision.band, decision.calibrated) == (band, calibrated)
    assert decision.score == pytest.approx(0.05, abs=1e-3)  # the probability is reported unchanged


def test_outside_the_domain_a_confident_gate_still_answers() -> None:
    gate = CalibratedGate(model(domain="test", domain_documents=frozenset({KNOWN[:16]})))
    decision = gate.decide("q", [from_doc(0, 0.95, OTHER)])
    assert decision.band == "answer" and not decision.calibrated


def test_only_the_chunks_the_gate_reads_must_be_known() -> None:
    gate = CalibratedGate(model(domain="test", domain_documents=frozenset({KNOWN[:16]})))
    top = [from_doc(i, 0.05 - i * 0.001, KNOWN) for i in range(3)]
    decision = gate.decide("q", [*top, from_doc(9, 0.01, OTHER), from_doc(8, 0.02, OTHER)])  # 4th/5th: not read
    assert decision.band == "decline" and decision.calibrated


def test_a_gate_file_without_a_domain_is_trusted_everywhere_as_before(tmp_path: Path) -> None:
    path = tmp_path / "gate.json"
    legacy = model().to_json()
    del legacy["domain"], legacy["domain_documents"]
    path.write_text(json.dumps(legacy))
    decision = CalibratedGate(GateModel.load(path)).decide("q", [from_doc(0, 0.05, OTHER)])
    assert decision.band == "decline" and decision.calibrated


def test_the_domain_round_trips_through_the_gate_file(tmp_path: Path) -> None:
    path = tmp_path / "gate.json"
    original = model(domain="mine", domain_documents=frozenset({KNOWN[:16], OTHER[:16]}))
    path.write_text(json.dumps(original.to_json()))
    assert GateModel.load(path) == original


def test_the_shipped_gate_covers_the_sample_corpus_as_written(tmp_path: Path) -> None:
    """The sample corpus a fresh `make run` loads is fitz-gov: the shipped gate must count it as calibrated,
    byte for byte as the loader hashes the files (else the demo would never decline)."""
    from ingest.sample import write_sample_corpus
    from services.core.grounding.answerability import DEFAULT_GATE, domain_key
    from services.core.types import sha256_hex

    shipped = GateModel.load(DEFAULT_GATE)
    paths = write_sample_corpus(tmp_path, max_docs=25)
    assert paths and shipped.domain.startswith("fitz-gov")
    assert all(domain_key(sha256_hex(p.read_bytes())) in shipped.domain_documents for p in paths)
    assert domain_key(sha256_hex(b"# My lecture notes\n\nColBERT scores by late interaction.\n")) not in (
        shipped.domain_documents
    )
