"""Learning from the deployment's own documents, end to end with real models only (issue 27).

Five small technical documents unlike fitz-gov (a fictional build tool's notes: settings, numbers, code) are
ingested into a fresh data dir by the real pipeline; ``eval.generate`` writes questions about them with the real
LLM (Qwen2.5-Coder 0.5B through llama.cpp) and keeps the ones the real verifier supports; ``train.adapt``
fine-tunes the shipped cross-encoder on them and refits the gate. Then, on the generated answerable questions:
the shipped models as they behaved before calibration domains (the gate trusted everywhere) decline some before
any LLM call, the adapted ones let at least one of those through, and the real API over the adapted models
answers it citing the document it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from llm_server import start_llm_server, stop

from services.api.app import create_app
from services.api.components import build_components
from services.core.answerability import CalibratedGate, gate_from_settings
from services.core.factory import open_retriever
from services.core.settings import IngestSettings, Settings
from services.core.store import SearchFilters

pytestmark = pytest.mark.slow

LLM_ALIAS = "qwen2.5-coder-0.5b"

DOCS = {
    "tidewater-cache.md": """# Tidewater build cache

## Where the cache lives
Tidewater keeps compiled artefacts in `~/.tidewater/cache`. The cache is content-addressed: every entry is
named by the BLAKE3 hash of its inputs, so two checkouts that build the same sources share entries.

## Size limit and eviction
The default size limit is 12 GiB, set with `cache.max_size` in `tidewater.toml`. When the cache grows past the
limit, Tidewater evicts the least recently used entries until it is back under 90 percent of the limit.
Eviction runs after each build, never during one, so a build cannot lose an artefact it is about to read.

## Remote cache
A remote cache is configured with `cache.remote_url`. Uploads are skipped for entries larger than 256 MiB,
because large artefacts are usually cheaper to rebuild than to download on a slow link.
""",
    "tidewater-workers.md": """# Tidewater workers

## How many workers run
Tidewater starts one worker per CPU core unless `build.workers` says otherwise. Each worker takes one action
from the queue at a time. A worker that has been idle for 45 seconds shuts down to free memory.

## Memory per worker
Every worker is limited to 2 GiB of resident memory by default (`build.worker_memory`). An action that exceeds
the limit is retried once on a fresh worker; a second failure marks the action as failed.

## Sandboxing
Actions run in a sandbox that hides the network. An action that needs the network must declare
`network = true` in its rule, and Tidewater logs every such action in `network-actions.log`.
""",
    "tidewater-rules.md": """# Writing Tidewater rules

## Rule files
Rules live in files named `BUILD.tw`. A rule has a name, a list of sources and a command. Tidewater reads the
files once per build and rejects a rule whose name contains a slash.

## Outputs
Every rule must declare its outputs. An undeclared file written by a command is deleted after the action ends,
so builds stay reproducible. Output paths are relative to the rule's directory.

## Dependencies
A rule names the rules it depends on with `deps`. Cycles are reported with the full loop of rule names,
and the build stops before any action runs.
""",
    "tidewater-release-notes.md": """# Tidewater release notes

## Version 4.2
Version 4.2 made the remote cache compress uploads with zstd at level 3, which cut upload time by about a
third on the benchmark repository. It also added the `tidewater doctor` command, which checks the toolchain.

## Version 4.1
Version 4.1 introduced per-worker memory limits and changed the default log format to JSON lines.

## Version 4.0
Version 4.0 dropped support for the old `BUILD` file name; only `BUILD.tw` files are read since then.
""",
    "tidewater-troubleshooting.md": """# Troubleshooting Tidewater

## Stale outputs
If outputs look stale, run `tidewater clean --outputs`, which removes build outputs but keeps the cache.
`tidewater clean --all` removes the cache as well and forces a full rebuild.

## Slow builds
A slow build is often a cache miss storm. `tidewater stats --cache` prints the hit rate of the last build;
a hit rate under 60 percent on an unchanged checkout usually means a rule writes a timestamp into its output.

## Locked cache
When a crashed build leaves `cache.lock` behind, Tidewater removes a lock older than 10 minutes on its own.
""",
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh deployment: the five documents ingested by the real pipeline, nothing else in its store."""
    from ingest.factory import build_pipeline
    from services.core.factory import build_store

    root = tmp_path_factory.mktemp("deployment")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = IngestSettings(_env_file=None, data_dir=root)  # type: ignore[call-arg]
    store = build_store(settings)
    try:
        pipeline = build_pipeline(settings, store=store)
        report = pipeline.sync(docs)
        assert report.summary()["added"] == len(DOCS)
    finally:
        store.close()
    return root


@pytest.fixture(scope="module")
def llm_base_url() -> Iterator[str]:
    proc, base_url = start_llm_server(LLM_ALIAS, threads=2, ctx=4096, timeout_s=180)
    try:
        yield base_url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def adapted(data_dir: Path, llm_base_url: str) -> list[dict[str, object]]:
    """Generate with the real LLM and verifier, then adapt: the generated rows."""
    from eval import generate
    from train import adapt

    mp = pytest.MonkeyPatch()
    mp.setenv("RAG_LLM_BASE_URL", llm_base_url)
    mp.setenv("RAG_LLM_MODEL", LLM_ALIAS)
    try:
        code = generate.main(
            [
                "--data-dir",
                str(data_dir),
                "--target",
                "80",
                "--budget-min",
                "8",
                "--near-miss-every",
                "1",
                "--seed",
                "1",
            ]
        )
        assert code == 0
        adapt.main(["--data-dir", str(data_dir), "--max-steps", "40", "--min-per-class", "2"])
    finally:
        mp.undo()
    rows = [json.loads(line) for line in (data_dir / "generated" / "latest" / "questions.jsonl").open()]
    return rows


def test_generated_questions_are_labelled_split_by_document_and_traceable(
    data_dir: Path, adapted: list[dict[str, object]]
) -> None:
    answerable = [r for r in adapted if r["expect"] == "answer"]
    assert len(answerable) >= 5 and any(r["category"] == "leave-one-out" for r in adapted)
    split_of: dict[str, set[object]] = {}
    for r in adapted:
        split_of.setdefault(r["provenance"]["doc_id"], set()).add(r["split"])  # type: ignore[index]
    assert all(len(s) == 1 for s in split_of.values()), split_of  # no document in two splits
    manifest = json.loads((data_dir / "adapted" / "manifest.json").read_text())
    assert manifest["name"].startswith("adapted-fitzgov-minilm-l6-") and manifest["generated"]["rows"] == len(adapted)
    assert (data_dir / "adapted" / "README.md").exists()


def bands(settings: Settings, rows: list[dict[str, object]]) -> tuple[str, dict[str, str]]:
    """The reranker's name and each question's gate band, through the real retrieval path of ``settings``."""
    out = {}
    with open_retriever(settings) as (_, retriever):
        gate = gate_from_settings(settings, retriever.reranker)
        assert isinstance(gate, CalibratedGate)
        for row in rows:
            found = retriever.search(
                str(row["question"]), mode=settings.retrieval_mode, top_n=settings.top_n, top_k=settings.top_k,
                filters=SearchFilters(),
            )  # fmt: skip
            out[str(row["id"])] = gate.decide(str(row["question"]), found.chunks).band
        return retriever.reranker.name, out


def test_a_question_the_shipped_gate_declined_is_answered_with_its_citation_after_adapting(
    data_dir: Path, adapted: list[dict[str, object]], llm_base_url: str
) -> None:
    answerable = [r for r in adapted if r["expect"] == "answer"]
    shipped = Settings(_env_file=None, data_dir=data_dir, adapted_models=False, gate_outside_domain="decline")  # type: ignore[call-arg]
    mine = Settings(
        _env_file=None, data_dir=data_dir, llm_base_url=llm_base_url, llm_model=LLM_ALIAS, adapted_models=True
    )  # type: ignore[call-arg]
    shipped_name, before = bands(shipped, answerable)
    adapted_name, after = bands(mine, answerable)
    assert shipped_name == "fitzgov-minilm-l6" and adapted_name.startswith("adapted-")
    rescued = [r for r in answerable if before[str(r["id"])] == "decline" and after[str(r["id"])] != "decline"]
    declined_before = sum(b == "decline" for b in before.values())
    assert rescued, f"shipped declined {declined_before} of {len(answerable)}; adapted declined the same ones too"
    components = build_components(mine)
    components.warm_up()
    try:
        with TestClient(create_app(components=components)) as client:
            answered = []
            for row in rescued:
                body = {"messages": [{"role": "user", "content": row["question"]}], "temperature": 0}
                reply = client.post("/chat", json=body).json()
                cited = [c["doc_id"] for c in reply["citations"]]
                if not reply["declined"] and row["provenance"]["doc_id"] in cited:  # type: ignore[index]
                    answered.append((row["question"], reply["answer"]))
                    break
            assert answered, f"none of the {len(rescued)} rescued questions was answered citing its document"
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(components.llm.aclose())  # type: ignore[attr-defined]
        components.close_sync()
