"""Learning from the deployment's own documents, end to end with real models only (issue 27).

Eight small technical documents unlike fitz-gov (a fictional build tool's notes: settings, numbers, code),
beside 30 short fitz-gov articles, are ingested into a fresh data dir by the real pipeline; ``eval.generate``
writes questions about them with the real LLM (Qwen2.5-Coder 0.5B through llama.cpp) and keeps the ones the
real verifier supports; ``train.adapt`` fine-tunes the shipped cross-encoder on them and refits the gate. Then
the API, with ``RAG_ADAPTED_MODELS=true``, serves the adapted cross-encoder with its own gate and answers a
generated question citing the document it was written from.
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
    "tidewater-remote-execution.md": """# Remote execution in Tidewater

## Executors
Remote execution sends actions to a pool of executors listed under `remote.executors`. Tidewater picks the
executor with the fewest queued actions and falls back to local execution when no executor answers within
8 seconds.

## Inputs and uploads
Before an action runs remotely, Tidewater uploads every input the executor lacks. Inputs are deduplicated by
hash, so a header shared by a thousand actions is uploaded once per build.

## Failures
An executor that fails three actions in a row is taken out of the pool for five minutes. The build log names
the executor and the action that failed, and the action is retried locally once.
""",
    "tidewater-configuration.md": """# Tidewater configuration

## Files and precedence
Settings come from `tidewater.toml` in the repository root, then from `~/.config/tidewater/user.toml`, then
from environment variables prefixed with `TW_`. A later source overrides an earlier one, key by key.

## Profiles
A profile is a named group of settings chosen with `--profile`. The `ci` profile turns off the terminal
progress display and writes a JSON summary to `tidewater-summary.json` when the build ends.

## Validation
Unknown keys are an error, not a warning: Tidewater stops and prints the closest known key name. Values are
checked against their type, so `build.workers = "four"` fails before any rule is read.
""",
    "tidewater-testing.md": """# Testing with Tidewater

## Test rules
A test rule runs a command and passes when it exits with status zero. Test rules are cached like other actions:
an unchanged test with unchanged inputs is not run again, and its cached result is shown as cached.

## Flaky tests
A test rule may set `retries = 2`; a test that passes on a retry is reported as flaky in the summary and counts
as passed. Flaky tests are listed in `flaky-tests.txt` so they can be fixed later.

## Timeouts
Every test has a timeout of 300 seconds unless it sets `timeout`. A test that runs out of time is killed with
its whole process group and reported as timed out, not as failed.
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
    # and 30 short fitz-gov articles beside them: with the 0.5B model keeping about a third of what it writes,
    # eight small documents alone leave a split by document without questions
    from ingest.sample import write_sample_corpus

    write_sample_corpus(docs / "articles", max_docs=30)
    # small chunks: each section its own chunk, so every split of five documents holds several questions
    settings = IngestSettings(_env_file=None, data_dir=root, chunk_size=64, chunk_overlap=8)  # type: ignore[call-arg]
    store = build_store(settings)
    try:
        pipeline = build_pipeline(settings, store=store)
        report = pipeline.sync(docs)
        assert report.summary()["added"] == len(DOCS) + 30
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
        adapt.main(["--data-dir", str(data_dir), "--epochs", "1", "--min-per-class", "1"])
    finally:
        mp.undo()
    rows = [json.loads(line) for line in (data_dir / "generated" / "latest" / "questions.jsonl").open()]
    return rows


def test_generated_questions_are_labelled_split_by_document_and_traceable(
    data_dir: Path, adapted: list[dict[str, object]]
) -> None:
    answerable = [r for r in adapted if r["expect"] == "answer"]
    unanswerable = [r for r in adapted if r["expect"] == "abstain"]
    assert len(answerable) >= 5 and unanswerable
    # an unanswerable twin is a leave-one-out question (asked without its document) or a near miss
    assert all(
        r["category"] == "near-miss" or r.get("exclude_docs") == [r["provenance"]["doc_id"]] for r in unanswerable
    )  # type: ignore[index]
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


def test_the_api_serves_the_adapted_models_and_answers_with_the_source_cited(
    data_dir: Path, adapted: list[dict[str, object]], llm_base_url: str
) -> None:
    """After make adapt, RAG_ADAPTED_MODELS=true serves the adapted cross-encoder with its own gate, calibrated on
    these documents, and a generated question is answered citing the document it was written from. The shipped
    models' decisions on the same questions are computed beside it (as the gate behaved before calibration
    domains) and reported when the check fails; on the hand-written out-of-domain set adaptation did not answer
    more (docs/grounding.md, section 7), so no rescue is asserted here."""
    answerable = [r for r in adapted if r["expect"] == "answer"]
    shipped = Settings(_env_file=None, data_dir=data_dir, adapted_models=False, gate_outside_domain="decline")  # type: ignore[call-arg]
    mine = Settings(
        _env_file=None, data_dir=data_dir, llm_base_url=llm_base_url, llm_model=LLM_ALIAS, adapted_models=True
    )  # type: ignore[call-arg]
    shipped_name, before = bands(shipped, answerable)
    adapted_name, after = bands(mine, answerable)
    assert shipped_name == "fitzgov-minilm-l6" and adapted_name.startswith("adapted-")
    # questions the shipped gate declined and the adapted one lets through come first
    order = sorted(
        answerable, key=lambda r: (not (before[str(r["id"])] == "decline" != after[str(r["id"])]), str(r["id"]))
    )
    candidates = [r for r in order if after[str(r["id"])] != "decline"][:5]
    summary = {
        "shipped declined": sum(b == "decline" for b in before.values()),
        "adapted declined": sum(b == "decline" for b in after.values()),
        "answerable": len(answerable),
    }
    assert candidates, f"the adapted gate declined every generated answerable question: {summary}"
    components = build_components(mine)
    components.warm_up()
    try:
        assert components.reranker.name == adapted_name and components.gate is not None
        assert components.gate.name.startswith("adapted-gate")
        with TestClient(create_app(components=components)) as client:
            answered = []
            for row in candidates:
                body = {"messages": [{"role": "user", "content": row["question"]}], "temperature": 0}
                reply = client.post("/chat", json=body).json()
                assert reply["answerability"]["calibrated"] is True  # these documents are its domain
                if not reply["declined"] and row["provenance"]["doc_id"] in [c["doc_id"] for c in reply["citations"]]:  # type: ignore[index]
                    answered.append(row["question"])
                    break
            assert answered, (
                f"none of {len(candidates)} generated questions was answered citing its document: {summary}"
            )
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(components.llm.aclose())  # type: ignore[attr-defined]
        components.close_sync()
