"""Rendering helpers: citation links, source cards, panels, banners and tables (pure functions)."""

from __future__ import annotations

import re

import pytest

from frontend import render
from services.contract.schemas import Citation, DocumentOut, IngestOutcome, IngestResponse, Readiness, SentenceOut

pytestmark = pytest.mark.unit


def src(n: int, **kw: object) -> Citation:
    base: dict[str, object] = {
        "n": n,
        "chunk_id": f"c{n}",
        "doc_id": f"d{n}",
        "source": f"upload://doc{n}.md",
        "title": f"Doc {n}",
        "section": None,
        "page": None,
        "text": f"text of chunk {n}",
        "retrieval_score": 0.5,
    }
    return Citation.model_validate(base | kw)


def sentence(text: str, citations: list[int], supported: bool, score: float) -> SentenceOut:
    return SentenceOut(text=text, citations=citations, supported=supported, score=score)


def ready(status: str = "ready", **checks: object) -> Readiness:
    return Readiness.model_validate({"status": status, "checks": checks})


def doc(doc_id: str, source: str, title: str, **kw: object) -> DocumentOut:
    base: dict[str, object] = {"doc_id": doc_id, "source": source, "title": title, "media_type": "text/markdown",
                               "chunk_count": 1, "status": "complete", "ingested_at": "", "size_bytes": 10}  # fmt: skip
    return DocumentOut.model_validate(base | kw)


def test_known_citations_become_links_to_their_cards_and_unknown_ones_stay_text() -> None:
    out = render.link_citations("Unplug it [1]. Wait [2][1]. Also [7].", [1, 2], turn=3)
    assert out == "Unplug it [\\[1\\]](#src-3-1). Wait [\\[2\\]](#src-3-2)[\\[1\\]](#src-3-1). Also [7]."


def test_existing_markdown_links_are_not_rewritten() -> None:
    assert render.link_citations("see [1](http://x)", [1], turn=1) == "see [1](http://x)"


def test_grouped_citations_become_one_link_per_known_source() -> None:
    assert render.link_citations("Wait [1, 7].", [1], turn=2) == "Wait [\\[1\\]](#src-2-1)[7]."


def test_verified_answer_links_supported_sentences_and_flags_the_others_keeping_the_layout() -> None:
    answer = "Steps:\n- Unplug it [1].\n- Sing to it.\n\nWait [2]."
    sentences = [
        sentence("Steps:", [1], True, 0.9),
        sentence("Unplug it [1].", [1], True, 0.9),
        sentence("Sing to it.", [], False, 0.1),
        sentence("Wait [2].", [2], True, 0.8),
    ]
    out = render.verified_answer(answer, sentences, [1, 2], turn=4)
    assert out == (
        "Steps:\n- Unplug it [\\[1\\]](#src-4-1).\n- "
        '<span class="unsupported" title="not supported by the sources">⚠ <del style="opacity:0.6">Sing to it.</del>'
        "</span>\n\nWait [\\[2\\]](#src-4-2)."
    )


def test_an_unsupported_sentence_is_escaped_and_loses_its_markers() -> None:
    out = render.unsupported_sentence("Run <script>x</script> now [3].")
    assert "<script>" not in out and "&lt;script&gt;" in out and "[3]" not in out
    assert 'title="not supported by the sources"' in out and "⚠" in out


def test_verified_answer_without_sentences_is_the_linked_answer() -> None:
    assert render.verified_answer("Unplug it [1].", [], [1], turn=1) == "Unplug it [\\[1\\]](#src-1-1)."


def test_verified_answer_whose_sentences_are_not_in_the_answer_shows_them_in_order() -> None:
    sentences = [sentence("Unplug it [1].", [1], True, 0.9), sentence("Sing.", [], False, 0.0)]
    out = render.verified_answer("something else", sentences, [1], turn=1)
    assert out.startswith('Unplug it [\\[1\\]](#src-1-1). <span class="unsupported"')


def test_declined_answers_say_why_in_plain_words() -> None:
    assert "No document answers this question" in (render.declined_message("no_relevant_sources") or "")
    assert "was withheld" in (render.declined_message("unsupported_answer") or "")
    assert render.declined_message("model_declined") is None  # the model's own "I don't know" is shown
    assert render.declined_message(None) is None


def test_source_card_shows_title_source_page_section_scores_and_text() -> None:
    card = render.source_card(
        src(2, page=4, section="Intro", retrieval_score=0.5, rerank_score=0.876543), turn=1, cited=True
    )
    assert 'id="src-1-2"' in card and "source-card cited" in card
    for expected in ("[2]", "Doc 2", "upload://doc2.md", "page 4", "Intro", "retrieval 0.500", "rerank 0.877"):
        assert expected in card
    assert "text of chunk 2" in card


def test_source_card_shows_what_the_model_read_before_the_whole_passage() -> None:
    card = render.source_card(src(1, text="One. Two <b>. Three.", excerpt="One. … Three."), turn=1, cited=False)
    assert card.index("what the model read") < card.index("One. … Three.") < card.index("One. Two &lt;b&gt;.")
    plain = render.source_card(src(1), turn=1, cited=False)
    same = render.source_card(src(1, excerpt="text of chunk 1"), turn=1, cited=False)
    assert "what the model read" not in plain and plain == same  # whole chunk read: nothing extra to show


def test_missing_scores_and_page_are_shown_as_absent_not_zero() -> None:
    card = render.source_card(src(1), turn=1, cited=False)  # no reranker ran: no rerank score
    assert "rerank –" in card and "retrieval 0.500" in card
    assert "page" not in card and "cited" not in card
    zero = render.source_card(src(1, retrieval_score=0.0, rerank_score=0.0), turn=1, cited=False)
    assert "retrieval 0.000" in zero and "rerank 0.000" in zero


def test_a_source_without_a_title_is_named_by_its_source() -> None:
    card = render.source_card(src(3, title=""), turn=1, cited=False)
    assert '<span class="src-title">upload://doc3.md</span>' in card


def test_document_text_is_escaped_so_a_document_cannot_inject_markup() -> None:
    card = render.source_card(src(1, title="<b>x</b>", text='<script>alert("x")</script>'), turn=1, cited=False)
    assert "<script>" not in card and "&lt;script&gt;" in card
    assert "<b>x</b>" not in card


def test_sources_panel_opens_the_latest_turn_and_keeps_earlier_ones_folded() -> None:
    turns = [
        render.TurnSources(1, "first question", (src(1), src(2)), cited=(2,)),
        render.TurnSources(2, "second question", (src(1),), cited=()),
    ]
    html = render.sources_panel(turns)
    blocks = re.findall(r'<details class="turn-sources" data-turn="(\d)"( open)?>', html)
    assert blocks == [("2", " open"), ("1", "")]
    assert 'id="src-1-2"' in html and 'id="src-2-1"' in html  # old citation links still land on a card
    assert html.count("source-card cited") == 1


def test_empty_panel_and_a_turn_without_sources_say_so() -> None:
    assert "appear here" in render.sources_panel([])
    assert "No matching passages" in render.sources_panel([render.TurnSources(1, "q", ())])


@pytest.mark.parametrize(
    ("readiness", "documents", "kind", "text"),
    [
        (None, None, "error", "is not reachable"),
        (ready("unavailable", qdrant=False, embedder=True), None, "error", "qdrant unavailable"),
        (ready(), 0, "info", "ingest add &lt;folder&gt;"),
        (ready("degraded", llm=False), 3, "warning", "sources found for a question are still shown"),
        (ready(), 1, "ok", "1 document indexed"),
        (ready(), 12, "ok", "12 documents indexed"),
    ],
)
def test_readiness_banner_names_each_state(readiness: Readiness | None, documents: int | None, kind: str, text: str):
    html = render.readiness_banner(readiness, "http://api:8000", documents, error="refused")
    assert f'data-kind="{kind}"' in html and text in html


def test_empty_index_banner_names_the_upload_tab_and_the_cli() -> None:
    html = render.readiness_banner(ready(), "http://api", 0)
    assert "<b>Documents</b>" in html and "<code>ingest add &lt;folder&gt;</code>" in html


def test_llm_down_message_points_at_the_sources() -> None:
    assert "3 passages" in render.llm_down_message("LLM unreachable", 3)
    assert "No passages matched" in render.llm_down_message("LLM unreachable", 0)


def test_upload_report_has_one_row_per_file_with_status_and_reason() -> None:
    result = IngestResponse(
        files=[
            IngestOutcome(filename="a.md", source="upload://a.md", status="added", chunks=2),
            IngestOutcome(filename="b.pdf", source="upload://b.pdf", status="skipped", reason="encrypted PDF"),
            IngestOutcome(filename="c.txt", source="upload://c.txt", status="failed", reason="<boom>"),
        ],
        seconds=1.3,
    )
    html = render.upload_report(result)
    assert "1 of 3 files ingested in 1.3 s" in html
    assert re.findall(r'data-status="(\w+)"', html) == ["added", "skipped", "failed"]
    assert "encrypted PDF" in html and "&lt;boom&gt;" in html


def test_added_updated_and_unchanged_files_count_as_ingested() -> None:
    statuses = ["added", "updated", "unchanged", "skipped", "failed", "queued"]
    files = [IngestOutcome.model_validate({"filename": f"{s}.md", "source": f"upload://{s}.md", "status": s})
             for s in statuses]  # fmt: skip
    html = render.upload_report(IngestResponse(files=files, seconds=0.5))
    assert "3 of 6 files ingested in 0.5 s" in html
    assert [s for s in statuses if s in render.INGESTED] == ["added", "updated", "unchanged"]


def test_documents_table_choices_and_empty_state() -> None:
    docs = [
        doc("d2", "upload://b.md", "B", chunk_count=3, status="complete", ingested_at="2026-11-22T06:00:00.123"),
        doc("d1", "upload://a.md", "A", chunk_count=1, status="pending"),
    ]
    html = render.documents_table(docs)
    assert "2 documents" in html and html.count("<tr data-doc-id=") == 2 and "2026-11-22T06:00:00<" in html
    assert render.document_choices(docs) == [("B — upload://b.md", "d2"), ("A — upload://a.md", "d1")]
    assert render.source_choices(docs) == ["upload://a.md", "upload://b.md"]
    assert "No documents are indexed yet" in render.documents_table([])


def test_a_document_without_a_title_is_named_by_its_source() -> None:
    untitled = [doc("d3", "upload://notes.txt", "")]
    assert "<td>upload://notes.txt</td><td>upload://notes.txt</td>" in render.documents_table(untitled)
    assert render.document_choices(untitled) == [("upload://notes.txt — upload://notes.txt", "d3")]


def test_answer_stats_and_turn_info() -> None:
    stats = render.answer_stats("qwen", {"completion_tokens": 12}, {"first_token": 350.0, "total": 1900.0})
    assert stats == "qwen · 12 tokens · first token 0.3 s · total 1.9 s"
    assert 'data-phase="streaming"' in render.turn_info("streaming", "", 2)
    assert 'data-questions="2"' in render.turn_info("done", stats, 2)
    assert "✖ API unreachable" in render.turn_info("error", "API unreachable", 1)
