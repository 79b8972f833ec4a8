"""The real thing end to end: the API process (uvicorn, `python -m services.api.main`) over the packaged
embedder, the shipped cross-encoder and embedded Qdrant, answering with the packaged Qwen2.5 0.5B served by
llama.cpp. Asserts what must hold whatever the small model writes: streaming, grounding on the right chunk,
citations that resolve to real sources, the OpenAI SDK working, and a 503 (not a hang) once the LLM is killed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from fixtures_docs import API_CORPUS
from llm_server import REPO_ROOT, free_port, start_llm_server, stop
from sse import sse_events

from services.core.grounding.citations import strip_citations
from services.core.processes import ManagedProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llm() -> Iterator[tuple[ManagedProcess, str]]:
    proc, base_url = start_llm_server("qwen2.5-coder-0.5b", threads=2, ctx=4096, timeout_s=180)
    try:
        yield proc, base_url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def api(llm: tuple[ManagedProcess, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    data = tmp_path_factory.mktemp("stack")
    env = {
        "RAG_DATA_DIR": str(data),
        "RAG_API_PORT": str(port),
        "RAG_LLM_BASE_URL": llm[1],
        "RAG_LLM_MODEL": "qwen2.5-coder-0.5b",
        "RAG_LLM_MAX_TOKENS": "96",
        "RAG_LLM_MAX_RETRIES": "0",
        "RAG_LLM_CONNECT_TIMEOUT_S": "1",
        "RAG_TOP_K": "3",
        "HF_HUB_OFFLINE": "1",
    }
    base = f"http://127.0.0.1:{port}"
    with ManagedProcess.module("API", "services.api.main", env=env, cwd=REPO_ROOT, log=data / "api.log") as proc:
        # a cold model cache exports the backends first (minutes on 2 cores)
        proc.wait_ready(f"{base}/readyz", timeout_s=240)
        files = [("files", (name, text.encode(), "text/markdown")) for name, text in API_CORPUS.items()]
        r = httpx.post(f"{base}/documents", files=files, timeout=120)
        assert r.status_code == 200 and {f["status"] for f in r.json()["files"]} == {"added"}, r.text
        yield base


def without_markers(text: str) -> str:
    return " ".join(strip_citations(text).split())


def test_chat_streams_a_grounded_cited_answer(api: str) -> None:
    question = "How long is the password reset link valid?"
    with httpx.stream("POST", f"{api}/chat", json={"stream": True, "messages": [{"role": "user", "content": question}]},
                      timeout=180) as r:  # fmt: skip
        assert r.status_code == 200
        events = sse_events(r)
    names = [n for n, _ in events]
    assert names[0] == "sources" and names[-1] == "done" and names.count("token") >= 3
    sources = events[0][1]
    assert sources[0]["source"] == "upload://password.md"  # the reranked top chunk is the right one
    done = events[-1][1]
    # done.answer carries the verifier's [n] markers in place of the model's: the words are what streamed.
    streamed = "".join(d["text"] for n, d in events if n == "token")
    assert without_markers(done["answer"]) == without_markers(streamed)
    assert "hour" in done["answer"].lower()  # the fact comes from the source ("valid for one hour")
    assert done["usage"].get("completion_tokens", 0) > 0
    assert done["citations"], f"no [n] citation in {done['answer']!r}"
    assert {c["source"] for c in done["citations"]} <= {s["source"] for s in sources}
    assert done["citations"][0]["source"] == "upload://password.md"
    assert not done["declined"] and done["decline_reason"] is None
    # The verifier's per-sentence support: a cited sentence is a supported one, citing a source the model saw.
    assert any(s["supported"] and s["citations"] for s in done["sentences"]), done["sentences"]
    for sentence in done["sentences"]:
        assert sentence["supported"] or not sentence["citations"], sentence
        assert all(1 <= n <= len(sources) for n in sentence["citations"]), sentence
    assert done["timings_ms"]["first_token"] > 0


def test_openai_sdk_against_the_stack(api: str) -> None:
    client = openai.OpenAI(base_url=f"{api}/v1", api_key="unused", timeout=180)
    model = client.models.list().data[0].id
    question = [{"role": "user", "content": "When must individual income tax returns be filed?"}]
    reply = client.chat.completions.create(model=model, messages=question)
    assert "april" in reply.choices[0].message.content.lower()
    stream = client.chat.completions.create(model=model, messages=question, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "april" in text.lower()
    assert chunks[-1].model_extra.get("citations") is not None


def test_concurrent_chats_each_get_their_whole_answer(api: str) -> None:
    """llama.cpp's server cuts a stream short when a newer request arrives unless told to queue (the API
    then reports an error event); with the server queueing, every concurrent chat gets its own whole answer."""
    questions = ["How long is the password reset link valid?", "How do I restart my router?"]

    def ask(question: str) -> list[tuple[str, dict | list]]:
        body = {"stream": True, "max_tokens": 24, "messages": [{"role": "user", "content": question}]}
        with httpx.stream("POST", f"{api}/chat", json=body, timeout=180) as r:
            assert r.status_code == 200
            return sse_events(r)

    with ThreadPoolExecutor(len(questions)) as pool:
        results = list(pool.map(ask, questions))
    for events in results:
        name, done = events[-1]
        assert name == "done", events[-1]
        assert done["answer"].strip() and done["usage"].get("completion_tokens", 0) > 0


def test_killing_the_llm_gives_503_on_chat_and_search_keeps_working(api: str, llm: tuple[ManagedProcess, str]) -> None:
    stop(llm[0])
    started = time.monotonic()
    r = httpx.post(f"{api}/chat", json={"messages": [{"role": "user", "content": "How do I restart my router?"}]},
                   timeout=60)  # fmt: skip
    assert r.status_code == 503 and "LLM" in r.json()["error"]["message"]
    assert r.json()["sources"][0]["source"] == "upload://router.md"
    assert time.monotonic() - started < 15  # a dead LLM is reported, not waited on
    s = httpx.post(f"{api}/search", json={"query": "internet box froze, how to reboot"}, timeout=60)
    assert s.status_code == 200 and s.json()["results"][0]["source"] == "upload://router.md"
    assert httpx.get(f"{api}/readyz", timeout=10).json()["status"] == "degraded"
