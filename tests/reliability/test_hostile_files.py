"""Hostile and broken files, end to end: through the ingest pipeline into a real embedded store (qdrant-edge,
the default, and qdrant-client's local mode), and through ``POST /documents`` of the real app (on Edge). Each
file is rejected with its reason or ingested; the store stays consistent; nothing crashes; memory stays bounded
(the bombs expand to 512 MiB, the bound is 200 MiB); over-limit files never reach a parser.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from conftest import build, close, corpus_files, rel_settings
from fastapi.testclient import TestClient
from hostile import BOMB_BYTES, TRAVERSAL_NAMES, HostileCase, write_hostile_corpus
from store_engines import ENGINES, open_store, stored_chunks

import ingest.loaders as loaders
from ingest.chunker import Chunker
from ingest.factory import build_pipeline
from services.api.app import create_app
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.storage.store import VectorStore
from services.core.types import Block, LoadedDocument, doc_id_for

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

RSS_BOUND = 64 * 1024 * 1024  # a quarter of what one bomb expands to


class PeakRss:
    """Samples this process's RSS every 5 ms in a thread: a parser that inflated a bomb would show."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.start


def assert_store_consistent(store: VectorStore) -> None:
    """No orphans (every chunk belongs to a complete manifest entry), counts match, no pending entries."""
    records = {r.doc_id: r for r in store.list_documents()}
    per_doc = Counter(str(payload["doc_id"]) for _, payload in stored_chunks(store, "doc_id"))
    assert set(per_doc) == set(records), "chunks without a manifest entry, or entries without chunks"
    for doc_id, record in records.items():
        assert record.status == "complete", record
        assert per_doc[doc_id] == record.chunk_count, record
    assert store.count_chunks() == sum(per_doc.values())


def check_outcome(case: HostileCase, status: str, reason: str) -> None:
    if case.outcome == "ingest":
        assert status == "added", f"{case.name}: {status} {reason}"
    else:
        assert status == "skipped", f"{case.name} should be refused, got {status}"
        assert case.reason in reason.lower(), f"{case.name}: reason {reason!r} lacks {case.reason!r}"


@pytest.fixture(scope="module", params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VectorStore]:
    s = open_store(tmp_path_factory.mktemp(f"hostile-{request.param}"), qdrant_embedded_engine=request.param)
    yield s
    s.close()


def test_a_huge_single_sentence_is_chunked_in_linear_work(tokenizer_count: Callable[[str], int]) -> None:
    """Regression: the word-window search re-tokenised the whole rest of a file per probe (100 s for 256 KiB)."""
    words = ("lorem ipsum dolor sit amet " * 12_000).split()  # 60k words, no sentence end
    tokenized = 0

    def counting(text: str) -> int:
        nonlocal tokenized
        tokenized += len(text)
        return tokenizer_count(text)

    text = " ".join(words)
    doc = LoadedDocument(source="x", title="x", blocks=[Block(text)], content_hash="h", media_type="text/plain")
    chunks = Chunker(counting, chunk_size=200, chunk_overlap=40).split(doc)
    assert len(chunks) >= len(words) // 200
    assert all(c.n_tokens <= 200 for c in chunks)
    # Linear: a bounded number of passes over the text (the quadratic version tokenised ~1000x its length).
    assert tokenized < 40 * len(text), f"tokenised {tokenized / len(text):.0f}x the text"


def test_hostile_files_through_the_pipeline(
    embedder: SentenceTransformerEmbedder, store: VectorStore, hostile: list[HostileCase], tmp_path: Path
) -> None:
    cases = write_hostile_corpus(tmp_path / "hostile", hostile)
    by_name = {c.name: c for c in cases}
    pipeline = build_pipeline(rel_settings(embed_batch_size=64), embedder, store)
    report = pipeline.ingest_paths([tmp_path / "hostile" / c.name for c in cases])
    assert len(report.outcomes) == len(cases)
    for outcome in report.outcomes:
        check_outcome(by_name[Path(outcome.source).name], outcome.status, outcome.reason)
    assert_store_consistent(store)
    # What was ingested is findable; the bombs' text (there is none) and the refused files are not there.
    indexed = {Path(r.source).name for r in store.list_documents()}
    assert indexed == {c.name for c in cases if c.outcome == "ingest"}
    texts: dict[str, list[str]] = {}
    for _, payload in stored_chunks(store, "doc_id", "text"):
        texts.setdefault(str(payload["doc_id"]), []).append(str(payload["text"]).lower())
    for case in cases:
        if case.outcome == "ingest":
            doc_id = doc_id_for(str((tmp_path / "hostile" / case.name).resolve()))
            assert any(case.expect in text for text in texts.get(doc_id, [])), case.name

    # Memory: each refused file (the bombs among them) goes through the pipeline alone, its peak RSS watched.
    for case in cases:
        if case.outcome == "skip":
            with PeakRss() as rss:
                alone = pipeline.ingest_paths([tmp_path / "hostile" / case.name])
            assert alone.outcomes[0].status == "skipped"
            assert rss.growth < RSS_BOUND, (
                f"{case.name}: RSS grew {rss.growth >> 20} MiB (bombs: {BOMB_BYTES >> 20} MiB)"
            )

    # Re-running over the same hostile folder writes nothing and still refuses the same files.
    again = pipeline.ingest_paths([tmp_path / "hostile" / c.name for c in cases])
    assert again.points_written == 0
    assert Counter(o.status for o in again.outcomes) == Counter(
        "unchanged" if c.outcome == "ingest" else "skipped" for c in cases
    )
    assert_store_consistent(store)


def test_over_limit_files_never_reach_a_parser(
    embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parsed: list[int] = []
    for suffix, handler in list(loaders._HANDLERS.items()):

        def spy(data: bytes, limits: loaders.LoadLimits, _h: Callable = handler) -> object:
            parsed.append(len(data))
            return _h(data, limits)

        monkeypatch.setitem(loaders._HANDLERS, suffix, spy)
    limit = 64 * 1024
    folder = tmp_path / "big"
    folder.mkdir()
    for name in ("big.txt", "big.pdf", "big.docx", "big.html"):
        (folder / name).write_bytes(b"a" * (limit + 1))
    (folder / "small.txt").write_bytes(b"A small file about kites flying over the dunes.")
    s = open_store(":memory:")
    try:
        pipeline = build_pipeline(rel_settings(max_file_bytes=limit), embedder, s)
        report = pipeline.ingest_paths([folder])
        statuses = {Path(o.source).name: (o.status, o.reason) for o in report.outcomes}
        for name in ("big.txt", "big.pdf", "big.docx", "big.html"):
            assert statuses[name][0] == "skipped" and "file too large" in statuses[name][1], statuses[name]
        assert statuses["small.txt"][0] == "added"
        assert parsed == [len(b"A small file about kites flying over the dunes.")]  # only the small file was parsed
    finally:
        s.close()


@pytest.fixture(scope="module")
def upload_client(embedder: SentenceTransformerEmbedder) -> Iterator[tuple[TestClient, object]]:
    settings = rel_settings(max_upload_bytes=2 * 1024 * 1024, llm_base_url="http://127.0.0.1:9/v1")
    components = build(settings, embedder)
    with TestClient(create_app(components=components)) as client:
        r = client.post("/documents", files=corpus_files())
        assert r.status_code == 200 and {f["status"] for f in r.json()["files"]} == {"added"}
        yield client, components
    close(components)


def test_hostile_uploads_through_the_api(upload_client: tuple[TestClient, object], hostile: list[HostileCase]) -> None:
    client, components = upload_client
    before = {d["source"] for d in client.get("/documents").json()}
    small = [c for c in hostile if len(c.data) < 2 * 1024 * 1024]
    # Several per request, as a browser would send them; the bombs and PDFs in one, the text files in another.
    for batch in (small[: len(small) // 2], small[len(small) // 2 :]):
        files = [("files", (c.name, c.data, "application/octet-stream")) for c in batch]
        r = client.post("/documents", files=files)
        assert r.status_code == 200, r.text
        outcomes = r.json()["files"]
        assert [o["filename"] for o in outcomes] == [c.name for c in batch]
        for case, outcome in zip(batch, outcomes, strict=True):
            check_outcome(case, outcome["status"], outcome["reason"])
    docs = {d["source"]: d for d in client.get("/documents").json()}
    assert set(docs) - before == {f"upload://{c.name}" for c in small if c.outcome == "ingest"}
    assert all(d["status"] == "complete" for d in docs.values())
    assert_store_consistent(components.store)  # type: ignore[attr-defined]
    # The server still serves.
    r = client.post("/search", json={"query": "how do I restart the router?"})
    assert r.status_code == 200 and r.json()["results"][0]["source"] == "upload://router.md"


def test_upload_names_cannot_traverse_or_smuggle(upload_client: tuple[TestClient, object], tmp_path: Path) -> None:
    client, _ = upload_client
    # Built by hand: HTTP clients percent-encode control bytes in file names, a hostile client does not.
    boundary = "reliability-boundary"
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: text/plain\r\n\r\nHarbour note number {i} about mooring ropes.\r\n".encode()
            for i, name in enumerate(TRAVERSAL_NAMES)
        )
        + f"--{boundary}--\r\n".encode()
    )
    r = client.post("/documents", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 200, r.text
    got = [o["source"] for o in r.json()["files"]]
    assert got == list(TRAVERSAL_NAMES.values())
    assert all(o["status"] == "added" for o in r.json()["files"])
    for source in got:
        assert "/" not in source.removeprefix("upload://") and ".." not in source
        assert not any(ord(ch) < 32 or ch in "\\\u202e" for ch in source)
    # Nothing was written outside the store: uploads are parsed in memory.
    assert not Path("/etc/passwd.txt").exists() and not (tmp_path.parent / "passwd.txt").exists()


def test_upload_size_limits(upload_client: tuple[TestClient, object]) -> None:
    client, components = upload_client
    limit = components.settings.max_upload_bytes  # type: ignore[attr-defined]
    over = ("files", ("big.txt", b"word " * (limit // 5 + 1), "text/plain"))
    ok = ("files", ("fine.txt", b"A note on the lighthouse keeper's logbook.", "text/plain"))
    r = client.post("/documents", files=[over, ok])
    assert r.status_code == 200
    outcomes = {o["filename"]: o for o in r.json()["files"]}
    assert outcomes["big.txt"]["status"] == "skipped" and f"larger than {limit}" in outcomes["big.txt"]["reason"]
    assert outcomes["fine.txt"]["status"] == "added"
    # A body above the per-request cap is refused before it is read or parsed.
    huge = ("files", ("huge.txt", b"x" * (4 * limit + 1024), "text/plain"))
    r = client.post("/documents", files=[huge])
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    # Type is checked by name, whatever the client claims.
    r = client.post("/documents", files=[("files", ("run.exe", b"MZ\x90\x00" * 64, "text/plain"))])
    assert r.json()["files"][0]["status"] == "skipped"
    assert "unsupported file type" in r.json()["files"][0]["reason"]
