"""The evaluation's API client against FakeRagApi: parsing, id mapping, auth header, errors."""

from __future__ import annotations

import json

import pytest
from fake_rag_api import FakeRagApi

from eval.client import ApiClient, ApiError, ChatOptions, Hit, Sentence

pytestmark = pytest.mark.unit


def hit(source: str, doc_id: str = "uuid") -> Hit:
    return Hit(doc_id=doc_id, source=source, title="", text="", retrieval_score=0.0, rerank_score=None)


def test_hits_map_back_to_judged_ids_by_file_name_source_or_doc_id() -> None:
    assert hit("/srv/.data/eval/corpus/bio_001.md").key({"bio_001"}) == "bio_001"
    assert hit("upload://bio_002.md").key(set()) == "bio_002"  # unjudged: still its file name
    assert hit("s3://bucket/q3 report.pdf").key({"s3://bucket/q3 report.pdf"}) == "s3://bucket/q3 report.pdf"
    assert hit("/x/a.md", doc_id="7f3c").key({"7f3c"}) == "7f3c"


def test_search_and_chat_are_parsed_and_carry_the_bearer_key() -> None:
    fake = FakeRagApi(
        rankings={"q": ["bio_001", "hist_002"]},
        answers={"Why?": ("Because [1].", ["ctx one", "ctx two"], False)},
    )
    api = ApiClient(fake.client(), api_key="s3cret")
    result = api.search("q", top_k=10, top_n=30)
    assert [h.key(set()) for h in result.hits] == ["bio_001", "hist_002"]
    assert result.latency_ms > 0 and result.server_timings_ms == {"total": 5.0}
    reply = api.chat("Why?")
    assert (reply.answer, reply.contexts, reply.declined, reply.cited) == ("Because [1].", ["ctx one", "ctx two"],
                                                                            False, ["c0"])  # fmt: skip
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in fake.requests)
    assert b'"top_n":30' in fake.requests[0].content.replace(b" ", b"")
    assert api.ready() and api.info()["checks"]["reranker"] == "fake"


def test_chat_parses_the_grounding_fields_and_tolerates_a_server_without_them() -> None:
    grounding = {
        "sentences": [
            {"text": "Because.", "citations": [1], "supported": True, "score": 0.9},
            {"text": "Also this.", "citations": [], "supported": False, "score": 0.1},
        ],
        "decline_reason": None,
        "answerability": {"score": 0.8, "band": "answer", "model": "logreg"},
    }
    fake = FakeRagApi(answers={"Why?": ("Because [1]. Also this.", ["ctx"], False)}, grounding={"Why?": grounding})
    reply = ApiClient(fake.client()).chat("Why?")
    assert reply.sentences == [Sentence("Because.", [1], True, 0.9), Sentence("Also this.", [], False, 0.1)]
    assert reply.answerability == {"score": 0.8, "band": "answer", "model": "logreg"}
    old = ApiClient(FakeRagApi(answers={"Why?": ("Because.", ["ctx"], False)}).client()).chat("Why?")
    assert old.sentences is None and old.decline_reason is None and old.answerability is None


def test_chat_options_are_sent_only_when_set() -> None:
    fake = FakeRagApi()
    api = ApiClient(fake.client())
    api.chat("q")
    api.chat("q", ChatOptions(answerability_gate=False))
    api.chat("q", ChatOptions(answerability_gate=False, verify=False))
    bodies = [json.loads(r.content) for r in fake.requests]
    assert "answerability_gate" not in bodies[0] and "verify" not in bodies[0]  # an older server rejects them
    assert bodies[1]["answerability_gate"] is False and "verify" not in bodies[1]
    assert (bodies[2]["answerability_gate"], bodies[2]["verify"]) == (False, False)


def test_api_errors_raise_with_the_status() -> None:
    fake = FakeRagApi(fail_queries={"boom"})
    api = ApiClient(fake.client())
    with pytest.raises(ApiError, match="503"):
        api.search("boom")
    assert "authorization" not in fake.requests[0].headers


def test_unreachable_api_is_not_ready() -> None:
    api = ApiClient.connect("http://127.0.0.1:9", timeout_s=1.0)
    assert not api.ready()
    with pytest.raises(ApiError, match="failed"):
        api.search("q")
    api.close()
