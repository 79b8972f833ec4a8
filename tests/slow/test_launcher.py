"""`make run`'s launcher for real: sample ingest, Phoenix, LLM server, API, frontend; a streamed cited answer
that Phoenix traced; Ctrl-C leaves nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
from llm_server import REPO_ROOT, free_port
from phoenix_server import read_spans

from services.core.processes import ManagedProcess

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_launcher_starts_the_stack_answers_and_stops_cleanly(tmp_path: Path) -> None:
    api_port, llm_port, ui_port, phoenix_port = free_port(), free_port(), free_port(), free_port()
    env = {
        "RAG_DATA_DIR": str(tmp_path),
        "RAG_API_PORT": str(api_port),
        "RAG_LLM_PORT": str(llm_port),
        "RAG_FRONTEND_PORT": str(ui_port),
        "RAG_PHOENIX_PORT": str(phoenix_port),
        "RAG_PHOENIX_GRPC_PORT": str(free_port()),
        "RAG_TRACING_PROJECT": "launcher-test",
        "RAG_LLM_GGUF": "smollm2-135m",  # the small packaged model keeps this test fast
        "RAG_LLM_MAX_TOKENS": "48",
        "HF_HUB_OFFLINE": "1",
    }
    log = tmp_path / "launcher.log"
    proc = ManagedProcess.module(
        "launcher", "services.launcher", "--sample-docs", "30", env=env, cwd=REPO_ROOT, log=log
    )
    proc.start()
    try:
        deadline = time.monotonic() + 420
        while "stack ready" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        text = log.read_text()
        assert "sample ingest: 30 documents" in text
        assert f"http://127.0.0.1:{api_port}/docs" in text
        assert f"Chat UI  : http://127.0.0.1:{ui_port}" in text
        assert f"Phoenix  : http://127.0.0.1:{phoenix_port}" in text
        pids = [int(p) for p in re.findall(r"started \w+ pid (\d+)", text)]
        assert len(pids) == 4
        assert "Gradio" in httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=10).text

        question = {"stream": True, "messages": [{"role": "user", "content": "What is photosynthesis?"}]}
        events = []
        with httpx.stream("POST", f"http://127.0.0.1:{api_port}/chat", json=question, timeout=120) as r:
            assert r.status_code == 200
            name = None
            for line in r.iter_lines():
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    events.append((name, json.loads(line[5:])))
        names = [n for n, _ in events]
        assert names[0] == "sources" and names[-1] == "done" and "token" in names
        assert events[0][1], "the sample corpus produced no sources"
        assert events[-1][1]["sources"], events[-1][1]
        # the API exported the request's spans to the launcher's Phoenix: retrieval, then the grounding
        # steps that ran for this answer (the gate once its model ships, the LLM unless the gate declined,
        # the verifier on every answer that is not a refusal)
        done = events[-1][1]
        wanted = {"rag.chat", "embed_query", "retrieve", "rerank", "evidence"}  # evidence: the prompt's sentences
        wanted |= {"gate"} if done["answerability"] is not None else set()
        wanted |= {"generate"} if done["decline_reason"] != "no_relevant_sources" else set()
        wanted |= {"verify"} if done["decline_reason"] in (None, "unsupported_answer") else set()
        spans = read_spans(
            f"http://127.0.0.1:{phoenix_port}", "launcher-test", expect=len(wanted), names=wanted, timeout_s=60
        )
        assert {s["name"] for s in spans} == wanted  # OpenInference spans only: no untyped HTTP noise
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C, to the launcher alone: it stops its services itself
        try:
            code = proc.wait(timeout=60)
        finally:
            proc.stop()
    assert code == 0, log.read_text()[-3000:]
    assert "all services stopped" in log.read_text()
    assert not [p for p in pids if alive(p)]
    for port in (api_port, ui_port, phoenix_port, llm_port):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
