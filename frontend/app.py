"""The Gradio Blocks of the chat UI: a Chat tab (streamed answers, sources panel, retrieval settings)
and a Documents tab (multi-file upload with per-file status, the indexed documents, delete).

Only wiring lives here: what a turn does is frontend/chat.py, every string shown is frontend/render.py,
every request is services/contract/client.py (the API's own schemas). Usage::

    demo = build_app(FrontendSettings())
    demo.queue().launch(**launch_options())
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import escape
from typing import Any

import gradio as gr

from frontend import render
from frontend.chat import ChatState, new_session_id, run_turn
from services.contract.client import ApiClientError, AsyncApiClient
from services.contract.schemas import (
    FEEDBACK_COMMENT_MAX_CHARS,
    ChatOptions,
    DocumentOut,
    FeedbackRequest,
    Filters,
    Readiness,
)
from services.core.settings import FrontendSettings
from services.core.types import RetrievalMode

WAITING = ("queued", "processing")  # an upload's job that has not ended: the Documents tab follows it
JOB_POLL_S = 2.0  # how often the Documents tab asks for the progress of the jobs it follows (none: no request)
UPLOAD_TYPES = [
    ".txt",
    ".md",
    ".markdown",
    ".html",
    ".htm",
    ".pdf",
    ".docx",
    ".csv",
    ".xlsx",
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
]
MAX_TOP_K = 20

CSS = """
.banner { padding: 8px 12px; border-radius: 6px; margin: 4px 0; }
.banner-ok { background: #ecfdf5; color: #065f46; }
.banner-info { background: #eff6ff; color: #1e3a8a; }
.banner-warning { background: #fffbeb; color: #92400e; }
.banner-error { background: #fef2f2; color: #991b1b; }
.source-card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px 10px; margin: 8px 0; scroll-margin: 12px; }
.source-card.cited { border-color: #6366f1; }
.source-card.flash { box-shadow: 0 0 0 3px #a5b4fc; }
.src-head { font-weight: 600; }
.src-cited { font-size: 11px; background: #6366f1; color: white; border-radius: 4px; padding: 1px 5px; }
.src-where, .src-scores { font-size: 12px; color: #6b7280; }
.src-text { font-size: 13px; margin-top: 4px; white-space: pre-wrap; max-height: 14em; overflow-y: auto; }
.turn-info { font-size: 12px; color: #6b7280; min-height: 1.2em; }
.unsupported { color: #92400e; cursor: help; }
.turn-sources > summary { cursor: pointer; font-size: 13px; color: #374151; }
table.documents, table.upload-report { width: 100%; border-collapse: collapse; font-size: 13px; }
table.documents td, table.documents th, table.upload-report td, table.upload-report th {
  border-bottom: 1px solid #e5e7eb; padding: 4px 6px; text-align: left; }
.status-ok { color: #047857; font-weight: 600; } .status-warn { color: #b45309; font-weight: 600; }
.status-bad { color: #b91c1c; font-weight: 600; }
"""

# A citation link scrolls its source card into view (and flashes it) instead of following the href,
# which Gradio's markdown would open in a new tab.
HEAD = """
<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#src-"]');
  if (!link) return;
  const card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) return;
  event.preventDefault();
  event.stopPropagation();
  const details = card.closest("details");
  if (details) details.open = true;
  card.scrollIntoView({behavior: "smooth", block: "center"});
  card.classList.add("flash");
  setTimeout(() => card.classList.remove("flash"), 1500);
}, true);
</script>
"""


def launch_options(settings: FrontendSettings) -> dict[str, Any]:
    """Arguments for ``Blocks.launch``: Gradio 6 takes css/head there, not in ``Blocks()``."""
    return {
        "server_name": settings.frontend_host,
        "server_port": settings.frontend_port,
        "css": CSS,
        "head": HEAD,
        "ssr_mode": False,  # server-side rendering needs Node; the plain client works everywhere
        "max_file_size": settings.max_upload_bytes,  # the API's per-file limit: refuse bigger ones before storing them
        "footer_links": [],
        "show_error": True,
        "quiet": True,
    }


def client_for(settings: FrontendSettings) -> AsyncApiClient:
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return AsyncApiClient(settings.frontend_api_url, api_key=key, timeout_s=settings.frontend_timeout_s)


@dataclass(frozen=True)
class ChatTab:
    """The Chat tab's components that handlers read or write (layout-only blocks are left out)."""

    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    turn_info: gr.HTML
    stop: gr.Button
    new_chat: gr.Button
    mode: gr.Radio
    rerank: gr.Checkbox
    top_k: gr.Slider
    source_filter: gr.Dropdown
    sources: gr.HTML
    past: gr.Dropdown
    feedback_row: gr.Group
    reason: gr.Radio
    comment: gr.Textbox
    send_feedback: gr.Button
    feedback_info: gr.HTML


@dataclass(frozen=True)
class DocumentsTab:
    """The Documents tab's components that handlers read or write (layout-only blocks are left out)."""

    files: gr.File
    tags: gr.Textbox
    upload: gr.Button
    upload_result: gr.HTML
    documents: gr.HTML
    doc_pick: gr.Dropdown
    delete: gr.Button
    refresh: gr.Button
    jobs: gr.State  # the last upload's jobs still running: [{"doc_id", "filename"}]
    jobs_view: gr.HTML
    cancel: gr.Button
    timer: gr.Timer


def session_of(chat: ChatState | None) -> str | None:
    """The browser session's id; None before on_load has made its ChatState."""
    return chat.session_id if chat else None


async def overview(api: AsyncApiClient, session_id: str | None) -> tuple[str, list[DocumentOut] | None]:
    """The status banner and the document list (None when the API is unreachable)."""
    readiness: Readiness | None = None
    documents: list[DocumentOut] | None = None
    error = ""
    try:
        readiness = await api.readiness(session_id)
        documents = await api.list_documents(session_id)
    except ApiClientError as exc:
        error = exc.message if readiness is None else ""
        if readiness is not None:
            readiness = Readiness(status="unavailable", checks={"documents": False})
    count = None if documents is None else len(documents)
    return render.readiness_banner(readiness, api.base_url, count, error), documents


def document_outputs(docs: DocumentsTab, source_filter: gr.Dropdown) -> list[Any]:
    """What a fresh document list updates, in the order of ``document_updates``: the Documents tab's table
    and delete picker, and the Chat tab's source filter (which may only offer documents that exist)."""
    return [docs.documents, source_filter, docs.doc_pick]


def document_updates(documents: list[DocumentOut] | None, current_filter: list[str] | None) -> tuple[Any, ...]:
    """Values for ``document_outputs``; an unreachable API leaves the filter and picker as they are."""
    if documents is None:
        table = render.banner("error", "The document list is unavailable: the API cannot be reached.")
        return table, gr.update(), gr.update()
    sources = render.source_choices(documents)
    kept = [s for s in (current_filter or []) if s in sources]
    return (
        render.documents_table(documents),
        gr.update(choices=sources, value=kept),
        gr.update(choices=render.document_choices(documents), value=None),
    )


def chat_tab(settings: FrontendSettings) -> ChatTab:
    """Lay out the Chat tab (inside an open ``gr.Tabs``): conversation and controls left, sources right.

    The retrieval settings start from the server's defaults so an untouched UI asks what the API would."""
    with gr.Tab("Chat", id="chat"), gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(
                elem_id="chatbot",
                height=520,
                label="Conversation",
                placeholder="Ask a question about your documents. Answers cite sources as [n].",
                feedback_options=("Like", "Dislike"),  # thumbs on each answer; the reason form opens on a dislike
                buttons=["copy"],
            )
            with gr.Group(visible=False, elem_id="feedback-form") as feedback_row:
                reason = gr.Radio(
                    [(label, value) for value, label in render.FEEDBACK_REASONS.items()],
                    label="What was wrong with this answer?",
                    elem_id="feedback-reason",
                )
                comment = gr.Textbox(
                    label="Comment (optional)",
                    max_length=FEEDBACK_COMMENT_MAX_CHARS,
                    lines=2,
                    elem_id="feedback-comment",
                )
                send_feedback = gr.Button("Send feedback", size="sm", elem_id="send-feedback")
            feedback_info = gr.HTML("", elem_id="feedback-info")
            with gr.Row():
                question = gr.Textbox(
                    placeholder="Ask about your documents…",
                    show_label=False,
                    elem_id="question",
                    scale=6,
                    lines=1,
                    max_lines=6,
                    autofocus=True,
                )
                send = gr.Button("Send", variant="primary", elem_id="send", scale=1, min_width=80)
            turn_info = gr.HTML(render.turn_info("idle", ""), elem_id="turn-info")
            with gr.Row():
                stop = gr.Button("Stop", elem_id="stop", size="sm")
                new_chat = gr.Button("New chat", elem_id="new-chat", size="sm")
            past = gr.Dropdown(choices=[], value=None, label="Past conversations", elem_id="past-conversations")
            with gr.Accordion("Retrieval settings", open=False, elem_id="retrieval-settings"):
                mode = gr.Radio(
                    [("hybrid (dense + BM25)", "hybrid"), ("dense", "dense"), ("sparse (BM25)", "sparse")],
                    value=settings.retrieval_mode,
                    label="Retrieval mode",
                    elem_id="mode",
                )
                rerank = gr.Checkbox(
                    value=settings.reranker != "none",
                    label="Rerank with the cross-encoder",
                    elem_id="rerank",
                )
                top_k = gr.Slider(1, MAX_TOP_K, value=min(settings.top_k, MAX_TOP_K), step=1, label="Sources (top-K)")
                source_filter = gr.Dropdown(
                    choices=[],
                    value=[],
                    multiselect=True,
                    label="Only search these documents (empty = all)",
                    elem_id="source-filter",
                )
        with gr.Column(scale=2, elem_id="sources-column"):
            gr.Markdown("### Sources")
            sources = gr.HTML(render.sources_panel([]), elem_id="sources")
    return ChatTab(
        chatbot=chatbot,
        question=question,
        send=send,
        turn_info=turn_info,
        stop=stop,
        new_chat=new_chat,
        mode=mode,
        rerank=rerank,
        top_k=top_k,
        source_filter=source_filter,
        sources=sources,
        past=past,
        feedback_row=feedback_row,
        reason=reason,
        comment=comment,
        send_feedback=send_feedback,
        feedback_info=feedback_info,
    )


def documents_tab() -> DocumentsTab:
    """Lay out the Documents tab (inside an open ``gr.Tabs``): upload with tags, its report, the list, delete."""
    with gr.Tab("Documents", id="documents"):
        with gr.Row():
            with gr.Column(scale=3):
                files = gr.File(
                    file_count="multiple",
                    file_types=UPLOAD_TYPES,
                    label="Files to ingest (txt, md, html, pdf, docx, csv, xlsx, images)",
                    elem_id="upload-files",
                )
            with gr.Column(scale=2):
                tags = gr.Textbox(label="Tags (comma-separated, optional)", elem_id="tags")
                upload = gr.Button("Upload and ingest", variant="primary", elem_id="upload")
        upload_result = gr.HTML(elem_id="upload-result")
        with gr.Row():
            jobs_view = gr.HTML(elem_id="ingest-jobs")
            cancel = gr.Button("Stop ingest", variant="stop", elem_id="cancel-ingest", size="sm", visible=False)
        jobs = gr.State([])
        timer = gr.Timer(JOB_POLL_S)
        gr.Markdown("### Indexed documents")
        documents = gr.HTML(elem_id="documents")
        with gr.Row():
            doc_pick = gr.Dropdown(choices=[], label="Document to delete", elem_id="delete-pick", scale=4)
            delete = gr.Button("Delete", variant="stop", elem_id="delete", scale=1)
            refresh = gr.Button("Refresh", elem_id="refresh", scale=1)
    return DocumentsTab(
        files=files,
        tags=tags,
        upload=upload,
        upload_result=upload_result,
        documents=documents,
        doc_pick=doc_pick,
        delete=delete,
        refresh=refresh,
        jobs=jobs,
        jobs_view=jobs_view,
        cancel=cancel,
        timer=timer,
    )


# The handlers below carry no docstrings on purpose: Gradio publishes a handler's docstring as its API
# endpoint's description, and their names are the endpoint names (/respond is what API clients call).


async def past_choices(api: AsyncApiClient, session_id: str | None) -> Any:
    """The past-conversations picker's choices (left as they are when the API cannot list them)."""
    try:
        found = await api.conversations(session_id)
    except ApiClientError:
        return gr.update()
    return gr.update(choices=[(render.conversation_label(c), c.id) for c in found], value=None)


class ChatActions:
    """The Chat tab's handlers over one API client. Methods, not closures, so each stays small; their names are
    the Gradio endpoints (``/respond``, ``/on_like``, ...), so they carry no docstrings: Gradio would publish them."""

    def __init__(self, api: AsyncApiClient) -> None:
        self.api = api

    async def respond(
        self,
        chat_state: ChatState | None,
        text: str,
        mode_value: RetrievalMode,
        rerank_value: bool,
        k: float,
        only: list[str],
    ) -> AsyncIterator[tuple[Any, ...]]:
        chat_state = chat_state or ChatState()
        options = ChatOptions(
            mode=mode_value,
            rerank=bool(rerank_value),
            top_k=int(k),
            filters=Filters(source=list(only)) if only else None,
        )
        async for _ in run_turn(self.api, chat_state, text, options):
            yield (
                chat_state,
                "",
                [dict(m) for m in chat_state.display],
                chat_state.sources_html(),
                chat_state.info_html(),
            )

    async def refresh_status(self, chat_state: ChatState | None) -> tuple[Any, ...]:
        banner, _ = await overview(self.api, session_of(chat_state))
        return banner, await past_choices(self.api, session_of(chat_state))

    async def start_new_chat(self) -> tuple[Any, ...]:
        chat_state = ChatState(session_id=new_session_id())
        hidden = gr.update(visible=False)
        past = await past_choices(self.api, chat_state.session_id)
        return (
            chat_state,
            chat_state.session_id,
            [],
            chat_state.sources_html(),
            "",
            chat_state.info_html(),
            hidden,
            past,
        )

    async def reopen(self, chat_state: ChatState | None, conversation_id: str | None) -> tuple[Any, ...]:
        keep = (gr.update(),) * 5
        if not conversation_id or (chat_state and conversation_id == chat_state.session_id):
            return (chat_state, *keep)
        try:
            kept = await self.api.conversation(conversation_id, session_of(chat_state))
        except ApiClientError as exc:
            return (chat_state, gr.update(), gr.update(), gr.update(), render.error_message(exc.message), gr.update())
        if kept is None:
            return (chat_state, *keep)
        chat_state = ChatState.restore(kept)
        display = [dict(m) for m in chat_state.display]
        return chat_state, chat_state.session_id, display, chat_state.sources_html(), chat_state.info_html(), None

    async def on_like(self, chat_state: ChatState | None, data: gr.LikeData) -> tuple[Any, ...]:
        index = data.index if isinstance(data.index, int) else data.index[0]
        answer_id = chat_state.answer_ids.get(index) if chat_state else None
        if chat_state is None or answer_id is None:
            return chat_state, render.feedback_note("none"), gr.update(visible=False)
        if data.liked is not True and data.liked is not False:  # the thumb pressed again: taken back, nothing sent
            return chat_state, "", gr.update(visible=False)
        rating = "up" if data.liked else "down"
        try:
            await self.api.feedback(FeedbackRequest(id=answer_id, rating=rating), chat_state.session_id)
        except ApiClientError as exc:
            return chat_state, render.feedback_note("failed", exc.message), gr.update(visible=False)
        chat_state.feedback_for = answer_id if rating == "down" else None
        return chat_state, render.feedback_note(rating), gr.update(visible=rating == "down")

    async def send_reason(self, chat_state: ChatState | None, reason: str | None, comment: str) -> tuple[Any, ...]:
        if chat_state is None or chat_state.feedback_for is None:
            return render.feedback_note("none"), gr.update(visible=False), None, ""
        request = FeedbackRequest(id=chat_state.feedback_for, rating="down", reason=reason, comment=comment or None)
        try:
            await self.api.feedback(request, chat_state.session_id)
        except ApiClientError as exc:
            return render.feedback_note("failed", exc.message), gr.update(), gr.update(), gr.update()
        return render.feedback_note("sent"), gr.update(visible=False), None, ""


def wire_chat_tab(
    api: AsyncApiClient, chat: ChatTab, state: gr.State, status: gr.HTML, remembered: gr.BrowserState
) -> None:
    """Send/Enter streams a turn and then refreshes the banner; Stop, New chat and the chat's trash icon
    cancel a running turn; a thumbs-down opens the reason form; the past-conversations picker reopens one.
    ``remembered`` is the browser's copy of the conversation id, so a reload shows it again. Must run inside
    the ``gr.Blocks`` context that holds ``chat``."""

    act = ChatActions(api)

    chat_inputs = [state, chat.question, chat.mode, chat.rerank, chat.top_k, chat.source_filter]
    chat_outputs = [state, chat.question, chat.chatbot, chat.sources, chat.turn_info]
    events = [trigger(act.respond, chat_inputs, chat_outputs) for trigger in (chat.send.click, chat.question.submit)]
    for event in events:
        event.then(act.refresh_status, [state], [status, chat.past])
    chat.stop.click(None, None, None, cancels=[*events])  # a Dependency is the dict the stubs ask for
    new_chat_outputs = [
        state, remembered, chat.chatbot, chat.sources, chat.question, chat.turn_info, chat.feedback_row, chat.past
    ]  # fmt: skip
    chat.new_chat.click(act.start_new_chat, None, new_chat_outputs, cancels=[*events])
    chat.chatbot.clear(act.start_new_chat, None, new_chat_outputs, cancels=[*events])  # the chat's own trash icon
    reopen_outputs = [state, remembered, chat.chatbot, chat.sources, chat.turn_info, chat.past]
    chat.past.input(act.reopen, [state, chat.past], reopen_outputs, cancels=[*events])
    chat.chatbot.like(act.on_like, [state], [state, chat.feedback_info, chat.feedback_row])
    chat.send_feedback.click(
        act.send_reason,
        [state, chat.reason, chat.comment],
        [chat.feedback_info, chat.feedback_row, chat.reason, chat.comment],
    )


class DocumentsActions:
    """The Documents tab's handlers (one API client; ``outputs``: how many views of the document list each
    refresh updates). Methods, not closures, so each stays small; their names are the Gradio endpoints."""

    def __init__(self, api: AsyncApiClient, outputs: int) -> None:
        self.api = api
        self.outputs = outputs

    async def do_upload(
        self, chat: ChatState | None, paths: list[str] | None, tag_text: str, current_filter: list[str]
    ) -> tuple[Any, ...]:
        if not paths:
            return (render.banner("info", "Choose one or more files first."), gr.update(), gr.update(),
                    gr.update(), gr.update(), gr.update(), gr.update())  # fmt: skip
        running: list[dict[str, str]] = []
        try:
            result = await self.api.upload(paths, tag_text or "", session_of(chat))
            report = render.upload_report(result)
            running = [{"doc_id": o.doc_id, "filename": o.filename} for o in result.files if o.status in WAITING]
        except ApiClientError as exc:
            report = render.banner("error", f"Upload failed: {escape(exc.message)}")
        banner, documents = await overview(self.api, session_of(chat))
        return (report, None, running, banner, *document_updates(documents, current_filter))

    async def job_statuses(self, chat: ChatState | None, running: list[dict[str, str]]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for job in running:
            try:
                out.append((job["filename"], await self.api.document_status(job["doc_id"], session_of(chat))))
            except ApiClientError as exc:
                out.append((job["filename"], exc.message))
        return out

    async def watch_jobs(
        self, chat: ChatState | None, running: list[dict[str, str]], current_filter: list[str]
    ) -> tuple[Any, ...]:
        if not running:
            return (gr.skip(), gr.skip(), gr.skip(), gr.skip(), *[gr.skip()] * self.outputs)
        statuses = await self.job_statuses(chat, running)
        still = [
            j for j, (_, s) in zip(running, statuses, strict=True) if not isinstance(s, str) and s.state in WAITING
        ]
        view = render.job_progress(statuses)
        if len(still) == len(running):  # nothing ended: the list of documents is as it was
            return (view, still, gr.update(visible=True), gr.skip(), *[gr.skip()] * self.outputs)
        banner, documents = await overview(self.api, session_of(chat))
        return (view, still, gr.update(visible=bool(still)), banner, *document_updates(documents, current_filter))

    async def do_cancel(self, chat: ChatState | None, running: list[dict[str, str]]) -> tuple[Any, ...]:
        for job in running:
            # it may have ended meanwhile (409) or be gone (404): the next poll shows where it stands
            with contextlib.suppress(ApiClientError):
                await self.api.cancel_ingest(job["doc_id"], session_of(chat))
        return (render.job_progress(await self.job_statuses(chat, running)),)

    async def do_delete(self, chat: ChatState | None, doc_id: str | None, current_filter: list[str]) -> tuple[Any, ...]:
        if not doc_id:
            message = render.banner("info", "Pick a document to delete.")
        else:
            try:
                out = await self.api.delete_document(doc_id, session_of(chat))
                message = render.banner(
                    "ok", f"Deleted {escape(str(out.get('source', doc_id)))} "
                    f"({out.get('chunks_removed', 0)} chunks)."
                )  # fmt: skip
            except ApiClientError as exc:
                message = render.banner("error", f"Delete failed: {escape(exc.message)}")
        banner, documents = await overview(self.api, session_of(chat))
        return (message, banner, *document_updates(documents, current_filter))

    async def do_refresh(self, chat: ChatState | None, current_filter: list[str]) -> tuple[Any, ...]:
        banner, documents = await overview(self.api, session_of(chat))
        return (banner, *document_updates(documents, current_filter))


def wire_documents_tab(
    api: AsyncApiClient, docs: DocumentsTab, state: gr.State, status: gr.HTML, source_filter: gr.Dropdown
) -> None:
    """Upload, Delete and Refresh each report, then refresh the banner and every view of the document list
    (``source_filter`` is the Chat tab's); the timer follows the upload's jobs and Stop ingest cancels them.
    Must run inside the ``gr.Blocks`` context that holds ``docs``."""
    doc_outputs = document_outputs(docs, source_filter)
    act = DocumentsActions(api, len(doc_outputs))
    docs.upload.click(
        act.do_upload,
        [state, docs.files, docs.tags, source_filter],
        [docs.upload_result, docs.files, docs.jobs, status, *doc_outputs],
    )
    docs.timer.tick(
        act.watch_jobs,
        [state, docs.jobs, source_filter],
        [docs.jobs_view, docs.jobs, docs.cancel, status, *doc_outputs],
        show_progress="hidden",  # a poll every JOB_POLL_S: no spinner over the tab
        api_visibility="private",  # the browser's poll, not an endpoint for API clients
    )
    docs.cancel.click(act.do_cancel, [state, docs.jobs], [docs.jobs_view])
    docs.delete.click(act.do_delete, [state, docs.doc_pick, source_filter], [docs.upload_result, status, *doc_outputs])
    docs.refresh.click(act.do_refresh, [state, source_filter], [status, *doc_outputs])


def build_app(settings: FrontendSettings, client: AsyncApiClient | None = None) -> gr.Blocks:
    """The whole UI: banner, shared state and the two tabs. ``client`` can be given (tests); by default it is
    built from the settings.

    Layout first, wiring after: the load event comes first so the dependency order (fn_index) stays as it was,
    and it needs both tabs' components."""
    api = client or client_for(settings)

    with gr.Blocks(title="ragstack · chat with your documents", analytics_enabled=False) as demo:
        state = gr.State(None)  # a ChatState, made per browser session in on_load
        # the conversation's id in the browser's storage: a reload reopens it from the API
        remembered = gr.BrowserState(None, storage_key="ragstack-conversation")
        gr.Markdown("## ragstack · chat with your documents")
        status = gr.HTML(render.banner("info", "Connecting to the API…"), elem_id="status")
        with gr.Tabs():
            chat = chat_tab(settings)
            docs = documents_tab()

        async def on_load(
            chat_state: ChatState | None, current_filter: list[str], conversation_id: str | None
        ) -> tuple[Any, ...]:
            if chat_state is None and conversation_id:
                try:
                    kept = await api.conversation(conversation_id, conversation_id)
                except ApiClientError:
                    kept = None  # the API or its database is down: a new conversation under the same id
                chat_state = ChatState.restore(kept) if kept else ChatState(session_id=conversation_id)
            chat_state = chat_state or ChatState()
            banner, documents = await overview(api, chat_state.session_id)
            return (
                chat_state,
                chat_state.session_id,
                [dict(m) for m in chat_state.display],
                chat_state.sources_html(),
                chat_state.info_html(),
                await past_choices(api, chat_state.session_id),
                banner,
                *document_updates(documents, current_filter),
            )

        loaded = [state, remembered, chat.chatbot, chat.sources, chat.turn_info, chat.past, status]
        demo.load(
            on_load, [state, chat.source_filter, remembered], [*loaded, *document_outputs(docs, chat.source_filter)]
        )
        wire_chat_tab(api, chat, state, status, remembered)
        wire_documents_tab(api, docs, state, status, chat.source_filter)
    return demo
