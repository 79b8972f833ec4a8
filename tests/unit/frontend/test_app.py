"""The Blocks wiring: the contract API clients and the browser tests rely on (endpoint names, the /respond
signature, elem_ids) and the document list reaching the Chat tab's source filter. Nothing is called: the
client points at a closed port and building the app makes no request."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pytest

from frontend.app import build_app, document_updates
from services.contract.client import AsyncApiClient
from services.contract.schemas import DocumentOut
from services.core.settings import FrontendSettings

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def demo() -> gr.Blocks:
    return build_app(FrontendSettings(), AsyncApiClient("http://127.0.0.1:9"))


def by_id(demo: gr.Blocks) -> dict[int, dict[str, Any]]:
    return {c["id"]: c for c in demo.get_config_file()["components"]}


def test_the_api_lists_the_same_named_endpoints(demo: gr.Blocks) -> None:
    assert sorted(demo.get_api_info()["named_endpoints"]) == [
        "/do_cancel",
        "/do_delete",
        "/do_refresh",
        "/do_upload",
        "/on_like",
        "/on_load",
        "/refresh_status",
        "/refresh_status_1",
        "/reopen",
        "/respond",
        "/respond_1",
        "/send_reason",
        "/start_new_chat",
        "/start_new_chat_1",
    ]


def test_respond_takes_question_mode_rerank_top_k_filter_as_gradio_client_calls_it(demo: gr.Blocks) -> None:
    # client.predict(question, "hybrid", True, 4, [], api_name="/respond"): the session state stays hidden
    endpoint = demo.get_api_info()["named_endpoints"]["/respond"]
    assert [p["component"] for p in endpoint["parameters"]] == ["Textbox", "Radio", "Checkbox", "Slider", "Dropdown"]
    assert [r["component"] for r in endpoint["returns"]] == ["Textbox", "Chatbot", "Html", "Html"]


def test_every_elem_id_the_browser_tests_use_is_there_in_layout_order(demo: gr.Blocks) -> None:
    ids = [c["props"].get("elem_id") for c in demo.get_config_file()["components"]]
    assert [i for i in ids if i] == [
        "status",
        "chatbot",
        "feedback-form",
        "feedback-reason",
        "feedback-comment",
        "send-feedback",
        "feedback-info",
        "question",
        "send",
        "turn-info",
        "stop",
        "new-chat",
        "past-conversations",
        "retrieval-settings",
        "mode",
        "rerank",
        "source-filter",
        "sources-column",
        "sources",
        "upload-files",
        "tags",
        "upload",
        "upload-result",
        "ingest-jobs",
        "cancel-ingest",
        "documents",
        "delete-pick",
        "delete",
        "refresh",
    ]


def test_the_delete_picker_is_labelled_for_a_person(demo: gr.Blocks) -> None:
    (picker,) = [c for c in demo.get_config_file()["components"] if c["props"].get("elem_id") == "delete-pick"]
    assert picker["props"]["label"] == "Document to delete"


def test_load_and_document_actions_refresh_the_chat_tabs_source_filter(demo: gr.Blocks) -> None:
    components = by_id(demo)
    for dep in demo.get_config_file()["dependencies"]:
        if dep["api_name"] in {"on_load", "do_upload", "do_delete", "do_refresh"}:
            outputs = [components[i]["props"].get("elem_id") for i in dep["outputs"]]
            assert outputs[-3:] == ["documents", "source-filter", "delete-pick"], dep["api_name"]


def test_stop_new_chat_clear_and_reopening_a_conversation_cancel_both_respond_triggers(demo: gr.Blocks) -> None:
    deps = demo.get_config_file()["dependencies"]
    respond = {d["id"] for d in deps if d["api_name"] in {"respond", "respond_1"}}
    cancelling = [d for d in deps if d.get("cancels")]
    assert len(respond) == 2
    assert len(cancelling) == 4
    assert all(set(d["cancels"]) == respond for d in cancelling)


def test_a_fresh_document_list_keeps_only_filter_entries_that_still_exist() -> None:
    docs = [
        DocumentOut(doc_id="d1", source="upload://a.md", title="A", media_type="text/markdown", chunk_count=1,
                    status="complete", ingested_at="2026-11-22T06:00:00", size_bytes=10)
    ]  # fmt: skip
    _, source_filter, picker = document_updates(docs, ["upload://a.md", "upload://gone.md"])
    assert source_filter["value"] == ["upload://a.md"]
    assert picker["value"] is None


def test_an_unreachable_api_leaves_filter_and_picker_untouched() -> None:
    table, source_filter, picker = document_updates(None, ["upload://a.md"])
    assert "unavailable" in table
    assert source_filter == gr.update() and picker == gr.update()


class FakeJobsApi:
    """Answers document_status from a script of states and records cancels (the client's two job calls)."""

    def __init__(self, states: list[str]) -> None:
        from services.contract.schemas import DocumentStatus

        self.states, self.cancelled = states, []
        self.make = lambda state: DocumentStatus(
            doc_id="d1", source="upload://big.pdf", state=state, stage="embedding", pages=12, chunks_done=256,
            chunks_total=900, reason="",
        )  # fmt: skip

    async def document_status(self, doc_id: str, session_id: str | None = None) -> Any:
        return self.make(self.states.pop(0))

    async def cancel_ingest(self, doc_id: str, session_id: str | None = None) -> Any:
        self.cancelled.append(doc_id)
        return self.make("processing")

    async def readiness(self, session_id: str | None = None) -> Any:
        raise AssertionError("not reached while a job runs")


def test_the_documents_tab_follows_a_running_job_and_stops_polling_when_it_ends() -> None:
    import asyncio

    from frontend.app import DocumentsActions

    api = FakeJobsApi(["processing", "processing"])
    act = DocumentsActions(api, 3)  # type: ignore[arg-type]
    running = [{"doc_id": "d1", "filename": "big.pdf"}]
    view, still, cancel, *rest = asyncio.run(act.watch_jobs(None, running, []))
    assert still == running and cancel["visible"] is True
    assert "embedding · 12 pages · 256 of 900 chunks embedded" in view and 'data-state="processing"' in view
    assert all(isinstance(r, type(gr.skip())) for r in rest)  # the document list is left alone meanwhile
    (stopped,) = asyncio.run(act.do_cancel(None, running))
    assert api.cancelled == ["d1"] and "big.pdf" in stopped
    idle = asyncio.run(act.watch_jobs(None, [], []))
    assert all(isinstance(r, type(gr.skip())) for r in idle)  # nothing followed: no request at all


def test_the_upload_form_offers_exactly_the_types_the_loaders_read() -> None:
    from frontend.app import UPLOAD_TYPES
    from ingest.loaders import SUPPORTED_SUFFIXES

    assert set(UPLOAD_TYPES) == SUPPORTED_SUFFIXES
