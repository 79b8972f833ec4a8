"""Stage 3: /search latency and /chat time to first token through the real API process, at 1 and 8 clients.

The API runs as its own process (``python -m services.api.main``, as make run starts it) over the index
the ingest stage built, with the chosen backends and depth; the LLM is the real llama.cpp server. The
stack's overhead on time to first token is measured against the bare LLM given the very same prompt
messages (rebuilt from the ``sources`` event with services/core/prompt.py, exactly as the API builds them),
each sequence run in the same order so llama.cpp's prefix reuse helps both equally.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.stats import ratio, summarize

REPO_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(env_overrides: dict[str, str], timeout_s: float = 300.0) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAG_API_PORT=str(port), RAG_API_HOST="127.0.0.1", **env_overrides)
    log = Path(tempfile.mkstemp(prefix="bench-api-", suffix=".log")[1])
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.api.main"], cwd=REPO_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(1)
    proc.terminate()
    raise RuntimeError(f"API not ready in {timeout_s}s: {log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _search(client: httpx.AsyncClient, base: str, query: str, top_n: int) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = await client.post(f"{base}/search", json={"query": query, "top_k": 5, "top_n": top_n})
    r.raise_for_status()
    return (time.perf_counter() - t0) * 1000, r.json().get("timings_ms", {})


async def _chat(client: httpx.AsyncClient, base: str, question: str, max_tokens: int) -> dict[str, object]:
    """Client-side time to first token, plus the server's stage timings and the sources it used."""
    body = {"stream": True, "max_tokens": max_tokens, "messages": [{"role": "user", "content": question}]}
    t0 = time.perf_counter()
    ttft = None
    sources: list = []
    done: dict = {}
    async with client.stream("POST", f"{base}/chat", json=body) as r:
        r.raise_for_status()
        name = None
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = json.loads(line.split(":", 1)[1])
                if name == "sources":
                    sources = data
                elif name == "token" and ttft is None:
                    ttft = (time.perf_counter() - t0) * 1000
                elif name == "done":
                    done = data
                elif name == "error":  # e.g. the API's LLM timeout expired while llama.cpp served others
                    return {"error": str(data.get("message"))[:200], "ttft_ms": ttft, "sources": sources, "done": {}}
    return {"ttft_ms": ttft, "total_ms": (time.perf_counter() - t0) * 1000, "sources": sources, "done": done}


async def _bare_ttft(client: httpx.AsyncClient, llm_url: str, model: str, messages: list, max_tokens: int) -> float:
    body = {"model": model, "messages": messages, "stream": True, "max_tokens": max_tokens, "temperature": 0.1}
    t0 = time.perf_counter()
    async with client.stream("POST", f"{llm_url}/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line.startswith("data:") and '"content"' in line:
                chunk = json.loads(line[5:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    return (time.perf_counter() - t0) * 1000
    raise RuntimeError("the LLM streamed no token")


async def _concurrently(n_clients: int, jobs: list, fn) -> tuple[list, float]:  # noqa: ANN001
    """Run ``fn(job)`` for every job with at most ``n_clients`` in flight; returns results and wall seconds."""
    queue: asyncio.Queue = asyncio.Queue()
    for j in jobs:
        queue.put_nowait(j)
    results: list = []

    async def worker() -> None:
        while not queue.empty():
            results.append(await fn(queue.get_nowait()))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(n_clients)))
    return results, time.perf_counter() - t0


def _stage_medians(timings: list[dict]) -> dict[str, float]:
    keys = sorted({k for t in timings for k in t})
    return {k: summarize([float(t[k]) for t in timings if k in t])["p50"] for k in keys}


def messages_from_sources(question: str, sources: list[dict], max_chars: int) -> list[dict[str, str]]:
    """The prompt the API built, rebuilt from the numbered sources it streamed (same function, same inputs)."""
    from services.core.prompt import build_messages
    from services.core.types import RetrievedChunk

    chunks = [
        RetrievedChunk(
            id=s["chunk_id"],
            text=s["text"],
            doc_id=s["doc_id"],
            source=s["source"],
            title=s["title"],
            section=s.get("section"),
            page=s.get("page"),
            chunk_index=0,
            tags=[],
            retrieval_score=s["retrieval_score"],
            rerank_score=s.get("rerank_score"),
        )
        for s in sources
    ]
    messages, _ = build_messages(question, [], chunks, max_chars=max_chars)
    return messages


async def _run(base: str, llm_url: str, llm_model: str, questions: list[str], cfg: dict) -> dict[str, object]:
    from tqdm import tqdm

    out: dict[str, object] = {}
    timeout = httpx.Timeout(1800.0)  # queued chats on a loaded 2-core machine take minutes; errors are counted
    async with httpx.AsyncClient(timeout=timeout) as client:
        await _search(client, base, questions[0], cfg["top_n"])  # warm-up
        for clients, n in ((1, cfg["search_n1"]), (8, cfg["search_n8"])):
            jobs = [questions[i % len(questions)] for i in range(n)]
            bar = tqdm(total=n, desc=f"/search x{clients} clients", dynamic_ncols=True)

            async def one(q: str, bar=bar) -> tuple[float, dict]:  # noqa: ANN001
                r = await _search(client, base, q, cfg["top_n"])
                bar.update(1)
                return r

            res, wall = await _concurrently(clients, jobs, one)
            bar.close()
            out[f"search_{clients}_clients"] = {
                "latency_ms": summarize([r[0] for r in res]),
                "stages_p50_ms": _stage_medians([r[1] for r in res]),
                "throughput_rps": round(n / wall, 2),
            }
        chat_questions = questions[: cfg["chat_n1"]]
        stack = []
        for q in tqdm(chat_questions, desc="/chat x1 client", dynamic_ncols=True):
            stack.append(await _chat(client, base, q, cfg["max_tokens"]))
        bare = []
        for q, s in tqdm(list(zip(chat_questions, stack, strict=True)), desc="bare LLM", dynamic_ncols=True):
            msgs = messages_from_sources(q, s["sources"], cfg["context_max_chars"])  # type: ignore[arg-type]
            bare.append(await _bare_ttft(client, llm_url, llm_model, msgs, cfg["max_tokens"]))
        if any("error" in s for s in stack):
            raise RuntimeError(f"/chat failed with one client: {[s['error'] for s in stack if 'error' in s]}")
        stack_ttft = [float(s["ttft_ms"]) for s in stack if s["ttft_ms"] is not None]
        out["chat_1_client"] = {
            "ttft_ms": summarize(stack_ttft),
            "stages_p50_ms": _stage_medians([s["done"].get("timings_ms", {}) for s in stack]),  # type: ignore[union-attr]
        }
        out["bare_llm_ttft_ms"] = summarize(bare)
        out["ttft_overhead"] = round(ratio(summarize(stack_ttft)["p50"], summarize(bare)["p50"]) - 1, 3)
        out["ttft_overhead_ms_p50"] = round(summarize(stack_ttft)["p50"] - summarize(bare)["p50"], 1)
        jobs8 = [questions[i % len(questions)] for i in range(cfg["chat_n8"])]
        bar8 = tqdm(total=len(jobs8), desc="/chat x8 clients", dynamic_ncols=True)

        async def chat_one(q: str) -> dict:
            try:  # one llama.cpp server answers one request at a time: the 8th waits for 7 others
                r = await _chat(client, base, q, cfg["max_tokens"])
            except httpx.HTTPError as exc:
                r = {"error": f"{type(exc).__name__}: {exc}"[:200], "ttft_ms": None, "done": {}}
            if r["ttft_ms"] is None and "error" not in r:
                r["error"] = f"stream ended without a token: {json.dumps(r['done'])[:300]}"
            bar8.update(1)
            return r

        res8, wall8 = await _concurrently(8, jobs8, chat_one)
        bar8.close()
        ok = [r for r in res8 if r["ttft_ms"] is not None and "error" not in r]
        out["chat_8_clients"] = {
            "ttft_ms": summarize([float(r["ttft_ms"]) for r in ok]) if ok else None,
            "stages_p50_ms": _stage_medians([r["done"].get("timings_ms", {}) for r in ok]),
            "throughput_rps": round(len(ok) / wall8, 3),
            "errors": [r["error"] for r in res8 if "error" in r],
        }
    return out


def bench_query(index_path: Path, data_dir: Path, questions: list[str], cfg: dict) -> dict[str, object]:
    """Start the LLM and the API over ``index_path``, measure, stop both."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from llm_server import start_llm_server
    from llm_server import stop as stop_llm

    llm_proc, llm_url = start_llm_server(cfg["llm"], threads=cfg["llm_threads"], ctx=4096, timeout_s=300)
    api = None
    try:
        env = {
            "RAG_DATA_DIR": str(data_dir),
            "RAG_QDRANT_PATH": str(index_path),
            "RAG_EMBED_BACKEND": cfg["embed_backend"],
            "RAG_RERANKER_BACKEND": cfg["reranker_backend"],
            "RAG_TOP_N": str(cfg["top_n"]),
            "RAG_LLM_BASE_URL": llm_url,
            "RAG_LLM_MODEL": cfg["llm"],
            "RAG_LLM_MAX_TOKENS": str(cfg["max_tokens"]),
            "RAG_MAX_CONCURRENT_REQUESTS": "64",
            "RAG_LOG_LEVEL": "WARNING",
        }
        api, base = start_api(env)
        return asyncio.run(_run(base, llm_url, cfg["llm"], questions, cfg))
    finally:
        if api is not None:
            stop(api)
        stop_llm(llm_proc)
