"""Stage 3: /search latency and /chat time to first token through the real API process, at 1 and 8 clients.

The API runs as its own process (``python -m services.api.main``, as make run starts it) over the index
the ingest stage built, with the chosen backends and depth; the LLM is the real llama.cpp server. The
stack's overhead on time to first token is measured against the bare LLM given the very same prompt
messages (rebuilt from the ``sources`` event with services/core/grounding/prompt.py, exactly as the API builds them:
each source's ``excerpt``, the evidence the prompt held), each sequence run in the same order so llama.cpp's
prefix reuse helps both equally. The server still holds the stack's copy of that very prompt, so the bare
request opens its last message with a new marker and turns off llama-server's chunk reuse: it reuses the
shared system prompt and demonstration, as the stack's request did, and prefills the rest.
The prompt tokens of the same questions' whole-chunk prompt (what the prompt held before evidence
selection) are counted by the server on one more bare request that generates a single token.

Chats are sent with ``answerability_gate: false``: a declined question never reaches the LLM, so its "first
token" (the refusal) says nothing about generation. Any that are still declined without an LLM call (nothing
retrieved) are counted apart and left out of time to first token.

The bare LLM is also measured cold and warm on the prompt prefix every chat shares (system prompt and the
worked demonstration of services/core/grounding/prompt.py): warm requests reuse that prefix's KV cache; cold ones get
a marker at the start of every message, so no cached run of tokens matches (as after a restart).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.stats import ratio, summarize
from services.core.processes import ManagedProcess, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
# Source text in the prefix-cache prompts: about the evidence budget the API puts into its prompt (~350 tokens).
PREFIX_SOURCE_CHARS = 1400
STOP_GRACE_S = 20  # the API finishes in-flight requests and closes the store


def start_api(env_overrides: dict[str, str], timeout_s: float = 300.0) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {"HF_HUB_OFFLINE": "1", "RAG_API_PORT": str(port), "RAG_API_HOST": "127.0.0.1", **env_overrides}
    fd, name = tempfile.mkstemp(prefix="bench-api-", suffix=".log")
    os.close(fd)
    base = f"http://127.0.0.1:{port}"
    api = ManagedProcess.module("API", "services.api.main", env=env, cwd=REPO_ROOT, log=Path(name))
    return api.start_ready(f"{base}/readyz", timeout_s, interval_s=1.0, grace_s=STOP_GRACE_S), base


def stop(api: ManagedProcess) -> None:
    api.stop(grace_s=STOP_GRACE_S)


async def _search(
    client: httpx.AsyncClient, base: str, query: str, top_n: int, *, rerank: bool = True
) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = await client.post(f"{base}/search", json={"query": query, "top_k": 5, "top_n": top_n, "rerank": rerank})
    r.raise_for_status()
    return (time.perf_counter() - t0) * 1000, r.json().get("timings_ms", {})


async def _chat(client: httpx.AsyncClient, base: str, question: str, max_tokens: int) -> dict[str, Any]:
    """Client-side time to first token, plus the server's stage timings and the sources it used."""
    body = {
        "stream": True,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": question}],
        "answerability_gate": False,  # the TTFT of an answer: a gated refusal never reaches the LLM
    }
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


async def _bare_stream(
    client: httpx.AsyncClient, llm_url: str, model: str, messages: list, max_tokens: int, **extra: Any
) -> dict[str, float | None]:
    """A whole streamed answer: time to first token, and the prompt tokens the server counted and reused
    (``usage`` and llama-server's ``timings.cache_n``; None where the server does not say). ``extra`` goes into
    the request body as it is (e.g. llama-server's ``n_cache_reuse``; other servers ignore unknown fields)."""
    body = {
        "model": model,
        "messages": messages,
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0.1,
        "stream_options": {"include_usage": True},
        **extra,
    }
    out: dict[str, float | None] = {"ttft_ms": None, "prompt_tokens": None, "cached_tokens": None}
    t0, completion = time.perf_counter(), 0
    async with client.stream("POST", f"{llm_url}/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            chunk = json.loads(line[5:])
            if out["ttft_ms"] is None and any(
                (c.get("delta") or {}).get("content") for c in chunk.get("choices") or []
            ):
                out["ttft_ms"] = (time.perf_counter() - t0) * 1000
            usage = chunk.get("usage") or {}
            if isinstance(usage.get("prompt_tokens"), int):
                out["prompt_tokens"] = float(usage["prompt_tokens"])
            cached = (chunk.get("timings") or {}).get("cache_n")
            if cached is None:
                cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
            if isinstance(cached, int):
                out["cached_tokens"] = float(cached)
            if isinstance(usage.get("completion_tokens"), int):
                completion = usage["completion_tokens"]
    if out["ttft_ms"] is None:
        raise RuntimeError("the LLM streamed no token")
    decode_s = time.perf_counter() - t0 - out["ttft_ms"] / 1000
    out["decode_tps"] = (completion - 1) / decode_s if completion > 1 and decode_s > 0 else None
    return out


async def _prompt_tokens(client: httpx.AsyncClient, llm_url: str, model: str, messages: list) -> float | None:
    """The prompt tokens the server counts for ``messages`` (chat template included, as ``usage.prompt_tokens``
    of an answer counts them), from a request that generates one token; None when the server does not say."""
    body = {"model": model, "messages": messages, "max_tokens": 1, "temperature": 0.0}
    r = await client.post(f"{llm_url}/chat/completions", json=body)
    r.raise_for_status()
    tokens = (r.json().get("usage") or {}).get("prompt_tokens")
    return float(tokens) if isinstance(tokens, int) else None


def unshared(messages: list[dict[str, str]], marker: str) -> list[dict[str, str]]:
    """The same prompt with ``marker`` opening its last message: a cached copy of this very prompt then matches
    only up to there (the system prompt, demonstration and history every chat shares). Send it with
    ``n_cache_reuse: 0``, or llama-server's --cache-reuse shifts the cached rest back in."""
    *head, last = messages
    return [*head, {"role": last["role"], "content": f"{marker} {last['content']}"}]


def marked(messages: list[dict[str, str]], marker: str) -> list[dict[str, str]]:
    """The same prompt with ``marker`` opening every message. A new marker is a new prefix: no run of tokens a
    server has cached matches it (llama-server's --cache-reuse shifts in any cached run of >= N tokens, so one
    marker at the start would not do; each message is shorter than its default 256)."""
    return [{"role": m["role"], "content": f"{marker} {m['content']}"} for m in messages]


async def _prefix_cache(
    client: httpx.AsyncClient, base: str, llm_url: str, model: str, questions: list[str], cfg: dict
) -> dict[str, Any]:
    """Bare-LLM time to first token on a new prompt prefix (cold) and on the following requests that share it
    (warm). Each round takes a new prefix (system prompt and demonstration under a new marker) and different
    questions, each with its own retrieved sources, so only the prefix is shared."""
    from tqdm import tqdm

    from services.core.grounding.prompt import build_messages
    from services.core.types import RetrievedChunk

    rounds, per_round = int(cfg.get("prefix_rounds", max(2, cfg["chat_n1"]))), 3  # 1 cold, then 2 warm
    prompts = []
    for i in range(rounds * per_round):
        q = questions[i % len(questions)]
        r = await client.post(f"{base}/search", json={"query": q, "top_k": 3, "top_n": cfg["top_n"]})
        r.raise_for_status()
        fields = RetrievedChunk.__dataclass_fields__
        chunks = [RetrievedChunk(**{k: c[k] for k in fields if k in c}) for c in r.json()["results"]]
        prompts.append(build_messages(q, [], chunks, max_chars=PREFIX_SOURCE_CHARS)[0])
    max_tokens = min(int(cfg["max_tokens"]), 4)
    cold: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    for i in tqdm(range(len(prompts)), desc="bare LLM, cold/warm prefix", dynamic_ncols=True):
        if i % per_round == 0:
            marker = f"[{uuid.uuid4().hex[:8]}]"
        row = await _bare_stream(client, llm_url, model, marked(prompts[i], marker), max_tokens)
        (cold if i % per_round == 0 else warm).append(row)

    def side(rows: list[dict]) -> dict[str, Any]:
        tokens = [float(r["prompt_tokens"]) for r in rows if r["prompt_tokens"] is not None]
        cached = [float(r["cached_tokens"]) for r in rows if r["cached_tokens"] is not None]
        return {
            "ttft_ms": summarize([float(r["ttft_ms"]) for r in rows]),
            "prompt_tokens_p50": summarize(tokens)["p50"] if tokens else None,
            "cached_tokens_p50": summarize(cached)["p50"] if cached else None,
        }

    result: dict[str, Any] = {"cold": side(cold), "warm": side(warm)}
    cold_p50, warm_p50 = result["cold"]["ttft_ms"]["p50"], result["warm"]["ttft_ms"]["p50"]
    result["warm_saves_ms_p50"] = round(cold_p50 - warm_p50, 1)
    result["warm_speedup"] = ratio(cold_p50, warm_p50)
    return result


def _declined_unasked(chat: dict) -> bool:
    """Declined before any LLM call (nothing retrieved, or the gate): its only token is the refusal."""
    return (chat.get("done") or {}).get("decline_reason") == "no_relevant_sources"


async def _concurrently(n_clients: int, jobs: list, fn) -> tuple[list, float]:
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


COUNTS = ("prompt_tokens",)  # in the API's timings_ms, but counts, not milliseconds


def _stage_medians(timings: list[dict]) -> dict[str, float]:
    keys = sorted({k for t in timings for k in t} - set(COUNTS))
    return {k: summarize([float(t[k]) for t in timings if k in t])["p50"] for k in keys}


def _prompt_tokens_p50(timings: list[dict]) -> float | None:
    """Median prompt tokens the LLM counted (``timings_ms.prompt_tokens``); None when the API does not report it."""
    tokens = [float(t["prompt_tokens"]) for t in timings if isinstance(t.get("prompt_tokens"), int | float)]
    return summarize(tokens)["p50"] if tokens else None


def messages_from_sources(
    question: str, sources: list[dict], max_chars: int, *, whole_chunks: bool = False
) -> list[dict[str, str]]:
    """The prompt the API built, rebuilt from the numbered sources it streamed (same function, same inputs): each
    source's ``excerpt`` (the evidence the prompt held of it) where the API sent one, else its whole ``text``.

    ``whole_chunks``: the prompt as it was before evidence selection, the sources' whole text up to ``max_chars``.
    """
    from services.core.grounding.prompt import build_messages
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
    excerpts = [s.get("excerpt") for s in sources]
    texts = None
    if not whole_chunks and any(e is not None for e in excerpts):
        texts = [s["text"] if e is None else e for s, e in zip(sources, excerpts, strict=True)]
    messages, _ = build_messages(question, [], chunks, max_chars=max_chars, texts=texts)
    return messages


async def _run(base: str, llm_url: str, llm_model: str, questions: list[str], cfg: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    timeout = httpx.Timeout(1800.0)  # queued chats on a loaded 2-core machine take minutes; errors are counted
    async with httpx.AsyncClient(timeout=timeout) as client:
        out.update(await _search_phase(client, base, questions, cfg))
        out.update(await _chat_phase(client, base, llm_url, llm_model, questions, cfg))
        out["prefix_cache"] = await _prefix_cache(client, base, llm_url, llm_model, questions, cfg)
        out["chat_8_clients"] = await _chat_8_clients(client, base, questions, cfg)
    return out


async def _search_phase(client: httpx.AsyncClient, base: str, questions: list[str], cfg: dict) -> dict[str, Any]:
    """/search with 1 and 8 clients, then the same queries with the cross-encoder off (what reranking costs)."""
    from tqdm import tqdm

    out: dict[str, Any] = {}
    await _search(client, base, questions[0], cfg["top_n"])  # warm-up
    for clients, n in ((1, cfg["search_n1"]), (8, cfg["search_n8"])):
        jobs = [questions[i % len(questions)] for i in range(n)]
        bar = tqdm(total=n, desc=f"/search x{clients} clients", dynamic_ncols=True)

        async def one(q: str, bar=bar) -> tuple[float, dict]:
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
    first_stage = []
    for q in tqdm([questions[i % len(questions)] for i in range(cfg["search_n1"])], desc="/search first stage"):
        first_stage.append(await _search(client, base, q, cfg["top_n"], rerank=False))
    out["search_1_client_first_stage"] = {
        "latency_ms": summarize([r[0] for r in first_stage]),
        "stages_p50_ms": _stage_medians([r[1] for r in first_stage]),
    }
    return out


async def _chat_phase(
    client: httpx.AsyncClient, base: str, llm_url: str, llm_model: str, questions: list[str], cfg: dict
) -> dict[str, Any]:
    """/chat with one client, and the bare LLM on the very prompts the stack sent: the overhead is the gap."""
    from tqdm import tqdm

    chat_questions = questions[: cfg["chat_n1"]]
    stack = []
    for q in tqdm(chat_questions, desc="/chat x1 client", dynamic_ncols=True):
        stack.append(await _chat(client, base, q, cfg["max_tokens"]))
    if any("error" in s for s in stack):
        raise RuntimeError(f"/chat failed with one client: {[s['error'] for s in stack if 'error' in s]}")
    answered = [(q, s) for q, s in zip(chat_questions, stack, strict=True) if not _declined_unasked(s)]
    if not answered:
        raise RuntimeError("every /chat was declined before the LLM was called: no time to first token")
    bare, bare_tokens, whole_chunk_tokens = [], [], []
    for q, s in tqdm(answered, desc="bare LLM", dynamic_ncols=True):
        # The prompt the stack sent (the sources' excerpts), under a new marker so the server's copy of it is
        # reused only as far as the stack's own request could reuse an earlier one (see the module docstring).
        msgs = unshared(messages_from_sources(q, s["sources"], cfg["context_max_chars"]), f"[{uuid.uuid4().hex[:8]}]")
        row = await _bare_stream(client, llm_url, llm_model, msgs, cfg["max_tokens"], n_cache_reuse=0)
        bare.append(float(row["ttft_ms"] or 0.0))
        if row["prompt_tokens"] is not None:
            bare_tokens.append(row["prompt_tokens"])
        # The "before" of prompt_tokens_p50: this question's prompt with whole chunks up to context_max_chars.
        whole = messages_from_sources(q, s["sources"], cfg["context_max_chars"], whole_chunks=True)
        tokens = await _prompt_tokens(client, llm_url, llm_model, whole)
        if tokens is not None:
            whole_chunk_tokens.append(tokens)
    stack_ttft = [float(s["ttft_ms"]) for _, s in answered if s["ttft_ms"] is not None]
    timings1 = [s["done"].get("timings_ms", {}) for _, s in answered]
    return {
        "chat_1_client": {
            "ttft_ms": summarize(stack_ttft),
            "stages_p50_ms": _stage_medians(timings1),
            "prompt_tokens_p50": _prompt_tokens_p50(timings1),
            "declined_without_llm": len(stack) - len(answered),
        },
        "bare_llm_ttft_ms": summarize(bare),
        "bare_llm_prompt_tokens_p50": summarize(bare_tokens)["p50"] if bare_tokens else None,
        "whole_chunk_prompt_tokens_p50": summarize(whole_chunk_tokens)["p50"] if whole_chunk_tokens else None,
        "ttft_overhead": round(ratio(summarize(stack_ttft)["p50"], summarize(bare)["p50"]) - 1, 3),
        "ttft_overhead_ms_p50": round(summarize(stack_ttft)["p50"] - summarize(bare)["p50"], 1),
    }


async def _chat_8_clients(client: httpx.AsyncClient, base: str, questions: list[str], cfg: dict) -> dict[str, Any]:
    """Eight clients at once on one llama.cpp server: the queue, errors counted rather than raised."""
    from tqdm import tqdm

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
    declined8 = [r for r in ok if _declined_unasked(r)]
    ok = [r for r in ok if not _declined_unasked(r)]
    timings8 = [r["done"].get("timings_ms", {}) for r in ok]
    return {
        "ttft_ms": summarize([float(r["ttft_ms"]) for r in ok]) if ok else None,
        "stages_p50_ms": _stage_medians(timings8),
        "prompt_tokens_p50": _prompt_tokens_p50(timings8),
        "throughput_rps": round(len(ok) / wall8, 3),
        "declined_without_llm": len(declined8),
        "errors": [r["error"] for r in res8 if "error" in r],
    }


def bench_query(index_path: Path, data_dir: Path, questions: list[str], cfg: dict) -> dict[str, Any]:
    """Start the LLM and the API over ``index_path``, measure, stop both."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from llm_server import start_llm_server
    from llm_server import stop as stop_llm

    from services.core.settings import Settings
    from services.llm.server import find_llama_server, resolve_server

    llm_proc, llm_url = start_llm_server(cfg["llm"], threads=cfg["llm_threads"], ctx=4096, timeout_s=300)
    server = resolve_server(Settings(), find_llama_server())  # what services.llm.server started (RAG_LLM_SERVER)
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
        return {"llm_server": server, **asyncio.run(_run(base, llm_url, cfg["llm"], questions, cfg))}
    finally:
        if api is not None:
            stop(api)
        stop_llm(llm_proc)


SERVERS = ("llama-server", "llama-cpp-python")


def _fitz_gov_prompts(n: int, source_chars: int = 900) -> list[list[dict[str, str]]]:
    """``n`` RAG prompts (system prompt, demonstration, ``source_chars`` of each question's relevant fitz-gov
    documents, the question): 450-550 tokens each with Qwen2.5's tokenizer, ~300 of them the shared prefix."""
    from services.core.grounding.prompt import build_messages
    from services.core.types import RetrievedChunk
    from services.datasets.fitz_gov import load_corpus, load_queries

    docs = {d.id: d for d in load_corpus()}
    prompts = []
    for q in load_queries("dev"):
        found = [docs[i] for i in sorted(q.relevant) if i in docs][:2]
        chunks = [
            RetrievedChunk(
                id=d.id,
                text=d.content,
                doc_id=d.id,
                source=d.id,
                title=d.title or d.id,
                section=None,
                page=None,
                chunk_index=0,
                tags=[],
                retrieval_score=1.0,
            )
            for d in found
        ]
        if chunks:
            prompts.append(build_messages(q.text, [], chunks, max_chars=source_chars)[0])
        if len(prompts) == n:
            break
    return prompts


def _interleaved(
    targets: dict[str, tuple[str, dict[str, str]]], rounds: int, threads: int, max_tokens: int
) -> dict[str, Any]:
    """Bare-LLM time to first token of several LLM servers, loaded at once, in interleaved rounds.

    ``targets`` maps a name to (GGUF alias, environment for services.llm.server). All servers are loaded at
    once (an idle one costs no CPU) and their rounds interleave (A B, B A, ...) so whatever else runs on the
    machine weighs on all alike. Each round and server takes a new prefix: one cold request, then two warm ones
    (same prefix, other question and sources).
    """
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from llm_server import start_llm_server
    from llm_server import stop as stop_llm

    per_round, names = 3, list(targets)
    prompts = _fitz_gov_prompts(len(names) * rounds * per_round + 1)
    procs, urls = [], {}
    saved = {k: os.environ.get(k) for _, env in targets.values() for k in env}
    try:
        for name, (alias, env) in targets.items():
            os.environ.update(env)  # start_llm_server passes its environment on
            proc, urls[name] = start_llm_server(alias, threads=threads, ctx=4096, timeout_s=300)
            procs.append(proc)

        async def run() -> dict[str, dict[str, list[dict]]]:
            rows: dict[str, dict[str, list[dict]]] = {n: {"cold": [], "warm": []} for n in names}
            async with httpx.AsyncClient(timeout=600) as client:
                for name in names:  # first-call costs (graph allocation) out of the way
                    alias = targets[name][0]
                    await _bare_stream(client, urls[name], alias, marked(prompts[-1], "[warm-up]"), max_tokens)
                k = 0
                for r in range(rounds):
                    for name in names if r % 2 == 0 else names[::-1]:
                        marker = f"[{uuid.uuid4().hex[:8]}]"
                        for j in range(per_round):
                            row = await _bare_stream(
                                client, urls[name], targets[name][0], marked(prompts[k], marker), max_tokens
                            )
                            rows[name]["cold" if j == 0 else "warm"].append(row)
                            k += 1
            return rows

        rows = asyncio.run(run())
    finally:
        for proc in procs:
            stop_llm(proc)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    out: dict[str, Any] = {}
    for name, sides in rows.items():
        out[name] = {
            side: {
                "ttft_ms": summarize([float(r["ttft_ms"]) for r in rs]),
                "prompt_tokens": [r["prompt_tokens"] for r in rs],
                "cached_tokens": [r["cached_tokens"] for r in rs],
                "decode_tokens_per_s": summarize(tps)
                if (tps := [float(r["decode_tps"]) for r in rs if r.get("decode_tps")])
                else {},
            }
            for side, rs in sides.items()
        }
    return out


def compare_servers(llm: str, rounds: int, threads: int) -> dict[str, Any]:
    """llama-server vs llama-cpp-python's server, same GGUF and threads (docs/llm-serving.md)."""
    return _interleaved({s: (llm, {"RAG_LLM_SERVER": s}) for s in SERVERS}, rounds, threads, max_tokens=4)


def compare_models(models: list[str], rounds: int, threads: int) -> dict[str, Any]:
    """The packaged GGUFs on the default server, same prompts and threads (docs/llm-serving.md, "Model choice")."""
    return _interleaved({m: (m, {"RAG_LLM_SERVER": "llama-server"}) for m in models}, rounds, threads, max_tokens=32)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.query_bench --compare-servers`` / ``--compare-models A B``: docs/llm-serving.md's figures."""
    import argparse

    from bench.machine import machine_info, now_iso
    from bench.schema import validate
    from services.llm.gguf import MODELS

    parser = argparse.ArgumentParser(prog="python -m bench.query_bench", description=main.__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--compare-servers", action="store_true", help="llama-server vs llama-cpp-python, --llm")
    what.add_argument("--compare-models", nargs="+", metavar="ALIAS", help="GGUF aliases on llama-server")
    parser.add_argument("--llm", default="qwen2.5-coder-0.5b", choices=sorted(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="default .data/bench/llm_{servers,models}.json")
    args = parser.parse_args(argv)
    t0, machine = time.perf_counter(), machine_info()
    benchmark = "llm_models" if args.compare_models else "llm_servers"
    out = args.out or REPO_ROOT / ".data" / "bench" / f"{benchmark}.json"
    if args.compare_models:
        unknown = sorted(set(args.compare_models) - set(MODELS))
        if unknown:
            parser.error(f"unknown GGUF alias(es) {unknown}; choose from {sorted(MODELS)}")
        results = compare_models(args.compare_models, args.rounds, args.threads)
    else:
        results = compare_servers(args.llm, args.rounds, args.threads)
    machine["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    settings = {
        "llm": args.compare_models or args.llm,
        "server": "llama-server" if args.compare_models else list(SERVERS),
        "rounds": args.rounds,
        "threads": args.threads,
        "prompt": "fitz-gov dev, ~450 tokens",
    }
    doc = {
        "benchmark": benchmark,
        "date": now_iso(),
        "quick": False,
        "machine": machine,
        "settings": settings,
        "results": results,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if problems := validate(doc):
        raise ValueError(f"invalid result document: {problems}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    for name, side in results.items():
        cold, warm = side["cold"]["ttft_ms"]["p50"], side["warm"]["ttft_ms"]["p50"]
        decode = side["warm"]["decode_tokens_per_s"].get("p50")
        speed = f", decode {decode:.1f} tokens/s" if decode else ""
        print(f"{name:>20}: TTFT p50 cold {cold:.0f} ms, warm {warm:.0f} ms{speed}")
    print(f"load average {machine['load_avg_start']} -> {machine['load_avg_end']}; {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
