"""Pure rendering helpers for the chat UI: citations as links, source cards, tables, status banners.

Kept free of Gradio and of I/O so every string the user sees is unit-tested. Everything that comes
from documents or the API is HTML-escaped here: a document is untrusted input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from html import escape

from services.contract.schemas import (
    Citation,
    ConversationSummary,
    DocumentOut,
    DocumentStatus,
    IngestOutcome,
    IngestResponse,
    Readiness,
    SentenceOut,
)
from services.core.grounding.citations import replace_citations, strip_citations  # the API's citation grammar

UNSUPPORTED_TITLE = "not supported by the sources"
# Why an answer was declined, in plain words; the API's reasons (services/core/grounding/contracts.py DeclineReason).
DECLINE_MESSAGES = {
    "no_relevant_sources": "No document answers this question: the nearest sources are listed below.",
    "unsupported_answer": "The draft answer was not supported by the sources, so it was withheld.",
}

EMPTY_INDEX_HELP = (
    "No documents are indexed yet. Add some in the **Documents** tab (upload txt, md, html, pdf or docx), "
    "or from a shell with `ingest add <folder>` (stop `make run` first when Qdrant runs embedded)."
)


def anchor_id(turn: int, n: int) -> str:
    """The element id of source ``n`` of chat turn ``turn``: unique across the whole conversation."""
    return f"src-{turn}-{n}"


def link_citations(answer: str, available: Iterable[int], turn: int) -> str:
    """Markdown for the chat bubble: each ``[n]`` of a known source becomes a link to its source card.

    Numbers the model made up (no such source) stay plain text, so a link never points nowhere.
    """
    known = set(available)

    def repl(numbers: tuple[int, ...], marker: str) -> str:
        if not known.intersection(numbers):
            return marker
        return "".join(f"[\\[{n}\\]](#{anchor_id(turn, n)})" if n in known else f"[{n}]" for n in numbers)

    return replace_citations(answer, repl)


def unsupported_sentence(text: str) -> str:
    """A sentence no source supports: flagged with ⚠, struck through and muted, the reason as its tooltip."""
    return (
        f'<span class="unsupported" title="{UNSUPPORTED_TITLE}">⚠ '
        f'<del style="opacity:0.6">{escape(strip_citations(text), quote=False)}</del></span>'
    )


def verified_answer(answer: str, sentences: Sequence[SentenceOut], available: Iterable[int], turn: int) -> str:
    """Markdown for a verified answer: supported sentences with their citation links, the others flagged.

    Each sentence is found in ``answer`` in order, so the layout between sentences (line breaks, list
    bullets) stays; should one not be found, the sentences are shown one after the other instead.
    Without sentences (an API that does not verify) this is ``link_citations(answer)``.
    """
    known = list(available)
    if not sentences:
        return link_citations(answer, known, turn)
    spans: list[tuple[int, int]] = []
    pos = 0
    for sentence in sentences:
        at = answer.find(sentence.text, pos) if sentence.text else -1
        if at < 0:
            spans = []
            break
        spans.append((at, at + len(sentence.text)))
        pos = at + len(sentence.text)

    def one(sentence: SentenceOut) -> str:
        return link_citations(sentence.text, known, turn) if sentence.supported else unsupported_sentence(sentence.text)

    if not spans:
        return " ".join(one(s) for s in sentences if s.text)
    parts: list[str] = []
    pos = 0
    for (start, end), sentence in zip(spans, sentences, strict=True):
        parts.extend((link_citations(answer[pos:start], known, turn), one(sentence)))
        pos = end
    parts.append(link_citations(answer[pos:], known, turn))
    return "".join(parts)


def declined_message(reason: str | None) -> str | None:
    """The bubble for an answer the API declined, or None when the answer itself is to be shown.

    A model that declined ("I don't know ...") already said so in plain words: its answer is shown.
    """
    message = DECLINE_MESSAGES.get(reason or "")
    return f"ℹ {message}" if message else None


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def source_card(source: Citation, turn: int, *, cited: bool) -> str:
    """One source: number, title, where it comes from (source, page, section), scores, and the chunk text
    (after what the model read of it, when the prompt held only its evidence sentences)."""
    where = [f'<span class="src-path">{escape(source.source)}</span>']
    if source.page is not None:
        where.append(f"page {source.page}")
    if source.section:
        where.append(f"section “{escape(source.section)}”")
    badge = '<span class="src-cited">cited</span>' if cited else ""
    read = ""
    if source.excerpt is not None and source.excerpt != source.text:
        read = (
            '<div class="src-where">what the model read:</div>'
            f'<div class="src-text src-excerpt">{escape(source.excerpt)}</div>'
            '<div class="src-where">the whole passage:</div>'
        )
    return (
        f'<div class="source-card{" cited" if cited else ""}" id="{anchor_id(turn, source.n)}" data-n="{source.n}">'
        f'<div class="src-head"><span class="src-n">[{source.n}]</span> '
        f'<span class="src-title">{escape(source.title or source.source)}</span> {badge}</div>'
        f'<div class="src-where">{" · ".join(where)}</div>'
        f'<div class="src-scores">retrieval {_score(source.retrieval_score)} · '
        f"rerank {_score(source.rerank_score)}</div>"
        f"{read}"
        f'<div class="src-text">{escape(source.text)}</div>'
        "</div>"
    )


@dataclass(frozen=True, slots=True)
class TurnSources:
    """The sources one question retrieved, and which of them its answer cited."""

    turn: int
    question: str
    sources: tuple[Citation, ...]
    cited: tuple[int, ...] = ()


def sources_panel(turns: Sequence[TurnSources]) -> str:
    """The sources panel: the latest question's sources open, earlier questions' folded below.

    Earlier turns stay in the page so their citation links still land on a card.
    """
    if not turns:
        return '<div class="sources-empty">Sources used for an answer appear here.</div>'
    blocks = []
    for i, t in enumerate(reversed(turns)):
        cards = "".join(source_card(s, t.turn, cited=s.n in t.cited) for s in t.sources)
        if not t.sources:
            cards = '<div class="sources-empty">No matching passages were found for this question.</div>'
        summary = f"Question {t.turn}: {escape(_clip(t.question, 80))} ({len(t.sources)} sources)"
        blocks.append(
            f'<details class="turn-sources" data-turn="{t.turn}"{" open" if i == 0 else ""}>'
            f"<summary>{summary}</summary>{cards}</details>"
        )
    return "".join(blocks)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- status banners ------------------------------------------------------------------------------


def banner(kind: str, message: str) -> str:
    """A status line; ``kind`` is ok, info, warning or error. ``message`` is trusted markup from this module."""
    icon = {"ok": "●", "info": "ℹ", "warning": "⚠", "error": "✖"}.get(kind, "")
    return (
        f'<div class="banner banner-{kind}" data-kind="{kind}"><span class="banner-icon">{icon}</span> {message}</div>'
    )


def _md_code(text: str) -> str:
    """The few inline-markdown pieces used in messages (`code`, **bold**) as HTML, on escaped text."""
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text))
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def readiness_banner(readiness: Readiness | None, api_url: str, documents: int | None, error: str = "") -> str:
    """The banner above the chat: API down, LLM down, empty index, or ready with the document count."""
    if readiness is None:
        return banner(
            "error",
            f"The API at <code>{escape(api_url)}</code> is not reachable{': ' + escape(error) if error else ''}. "
            "Start it (<code>make run</code>) or set <code>RAG_FRONTEND_API_URL</code>.",
        )
    if readiness.status == "unavailable":
        failing = ", ".join(k for k, v in readiness.checks.items() if v is False) or "a dependency"
        return banner("error", f"The API is up but cannot search: {escape(failing)} unavailable.")
    if documents == 0:
        return banner("info", _md_code(EMPTY_INDEX_HELP))
    count = "" if documents is None else f" · {documents} document{'s' if documents != 1 else ''} indexed"
    if readiness.status == "degraded":
        return banner(
            "warning",
            "The language model is unreachable: answers cannot be written, but the sources found for a "
            f"question are still shown{count}.",
        )
    return banner("ok", f"Ready{count}.")


def llm_down_message(message: str, n_sources: int) -> str:
    """The chat bubble when the LLM is down: say so and point at the sources that were still retrieved."""
    found = (
        f"The {n_sources} passages retrieved for your question are in the Sources panel."
        if n_sources
        else "No passages matched your question either."
    )
    return f"⚠ **The language model is unavailable**, so no answer could be written. {found}\n\n_{message}_"


def answer_stats(model: str, usage: dict[str, int], timings_ms: dict[str, float]) -> str:
    """ "model · 42 tokens · first token 0.3 s · 1.9 s": what a power user checks after an answer."""
    parts = [model] if model else []
    if usage.get("completion_tokens"):
        parts.append(f"{usage['completion_tokens']} tokens")
    if "first_token" in timings_ms:
        parts.append(f"first token {timings_ms['first_token'] / 1000:.1f} s")
    if "total" in timings_ms:
        parts.append(f"total {timings_ms['total'] / 1000:.1f} s")
    return " · ".join(parts)


_PHASE_TEXT = {"retrieving": "Searching the documents…", "streaming": "Writing the answer…"}


def turn_info(phase: str, info: str, questions: int = 0) -> str:
    """The line under the chat; ``data-phase`` and ``data-questions`` let a browser wait for one answer's end."""
    text = _PHASE_TEXT.get(phase, info)
    if phase == "error":
        text = f"✖ {info}"
    return f'<div class="turn-info turn-{phase}" data-phase="{phase}" data-questions="{questions}">{escape(text)}</div>'


def error_message(message: str) -> str:
    return f"✖ **Error:** {message}"


def no_sources_hint(index_empty: bool) -> str:
    """Appended to an answer when nothing was retrieved: why, and what to do."""
    if index_empty:
        return EMPTY_INDEX_HELP
    return "No passage matched this question (check the source filter in Retrieval settings)."


# --- documents tab -------------------------------------------------------------------------------

INGESTED = ("added", "updated", "unchanged")  # the upload statuses after which the file is searchable
_STATUS_CLASS = {
    "added": "ok",
    "updated": "ok",
    "unchanged": "ok",
    "skipped": "warn",
    "failed": "bad",
    "queued": "info",  # still waiting for a worker when the API answered: it appears in the list once done
    "processing": "info",
    "cancelled": "warn",
    "complete": "ok",
}


def upload_report(result: IngestResponse) -> str:
    """One row per uploaded file: its status, chunks and, for a skipped or failed file, the reason."""
    if not result.files:
        return banner("info", "Choose one or more files first.")
    rows = "".join(_upload_row(o) for o in result.files)
    ok = sum(o.status in INGESTED for o in result.files)
    summary = f"{ok} of {len(result.files)} files ingested in {result.seconds:.1f} s"
    waiting = sum(o.status in ("queued", "processing") for o in result.files)
    if waiting:
        summary += f"; {waiting} still in the ingest queue (Refresh shows them once done)"
    return (
        f'<div class="upload-summary">{summary}</div>'
        '<table class="upload-report"><thead><tr><th>file</th><th>status</th><th>chunks</th><th>details</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _upload_row(o: IngestOutcome) -> str:
    css = _STATUS_CLASS.get(o.status, "warn")
    return (
        f'<tr class="upload-{css}" data-status="{escape(o.status)}"><td>{escape(o.filename)}</td>'
        f'<td><span class="status-{css}">{escape(o.status)}</span></td><td>{o.chunks}</td>'
        f"<td>{escape(o.reason)}</td></tr>"
    )


def job_progress(statuses: Sequence[tuple[str, DocumentStatus | str]]) -> str:
    """The followed upload jobs: state, progress (stage, pages, chunks embedded of the total) and reason; a
    string in place of a status is why it could not be read."""
    if not statuses:
        return ""
    rows = "".join(_job_row(name, status) for name, status in statuses)
    return (
        '<table class="upload-report jobs"><thead><tr><th>file</th><th>job</th><th>progress</th><th>details</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _job_row(name: str, s: DocumentStatus | str) -> str:
    if isinstance(s, str):
        return f'<tr class="upload-bad"><td>{escape(name)}</td><td>unknown</td><td></td><td>{escape(s)}</td></tr>'
    css = _STATUS_CLASS.get(s.state, "warn")
    done = f"{s.chunks_done} of {s.chunks_total} chunks embedded" if s.chunks_total else ""
    pages = f"{s.pages} pages" if s.pages else ""
    progress = " · ".join(p for p in (s.stage, pages, done) if p)
    return (
        f'<tr class="upload-{css}" data-state="{escape(s.state)}"><td>{escape(name)}</td>'
        f'<td><span class="status-{css}">{escape(s.state)}</span></td><td>{escape(progress)}</td>'
        f"<td>{escape(s.reason)}</td></tr>"
    )


def documents_table(documents: Sequence[DocumentOut]) -> str:
    if not documents:
        return banner("info", _md_code(EMPTY_INDEX_HELP))
    rows = "".join(
        f'<tr data-doc-id="{escape(d.doc_id)}"><td>{escape(d.title or d.source)}</td><td>{escape(d.source)}</td>'
        f"<td>{d.chunk_count}</td><td>{escape(d.status)}</td><td>{escape(d.ingested_at[:19])}</td></tr>"
        for d in documents
    )
    return (
        f'<div class="documents-count">{len(documents)} document{"s" if len(documents) != 1 else ""}</div>'
        '<table class="documents"><thead><tr><th>title</th><th>source</th><th>chunks</th><th>status</th>'
        f"<th>ingested</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def document_choices(documents: Sequence[DocumentOut]) -> list[tuple[str, str]]:
    """(label, doc_id) pairs for the delete picker; the label names the source so duplicates are told apart."""
    return [(f"{d.title or d.source} — {d.source}", d.doc_id) for d in documents]


def source_choices(documents: Sequence[DocumentOut]) -> list[str]:
    """Distinct sources, sorted, for the source filter (the API filters on exact source strings)."""
    return sorted({d.source for d in documents})


# --- feedback and past conversations -----------------------------------------------------------------

FEEDBACK_REASONS = {
    "wrong_source": "Wrong source",
    "should_have_declined": "Should have said it does not know",
    "missed_answer": "Missed the answer (the documents hold it)",
    "unhelpful": "Unhelpful",
    "other": "Other",
}

_FEEDBACK_NOTES = {
    "up": ("ok", "Thanks: marked as helpful."),
    "down": ("info", "Thanks: marked as not helpful. Tell us what was wrong below (optional)."),
    "sent": ("ok", "Thanks: your feedback was recorded and will be reviewed."),
    "none": ("warning", "This answer has no record to attach feedback to (it failed or is from before a restart)."),
    "failed": ("error", "Feedback was not recorded"),
}


def feedback_note(kind: str, detail: str = "") -> str:
    level, text = _FEEDBACK_NOTES[kind]
    return banner(level, escape(text + (f": {detail}" if detail else "")))


def conversation_label(c: ConversationSummary) -> str:
    when = c.updated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return f"{c.title} · {c.turns} {'question' if c.turns == 1 else 'questions'} · {when} UTC"
