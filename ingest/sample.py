"""A sample corpus so a fresh ``make run`` answers something useful at once.

It is a deterministic, domain-balanced slice of the packaged fitz-gov corpus (MIT), written out as
Markdown files so it goes through exactly the same loaders and chunker as a user's own documents. The whole
corpus, indexed once, is what evaluation and training retrieve from (``ensure_corpus_index``).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.datasets.fitz_gov import CorpusDoc

logger = logging.getLogger(__name__)
# where a first make run writes the sample it loads (services/launcher.py): a source path holding this is fitz-gov
SAMPLE_MARK = "/sample-corpus/"


def write_sample_corpus(dest: Path, max_docs: int = 400) -> list[Path]:
    from services.datasets.fitz_gov import load_corpus

    by_domain: dict[str, list[CorpusDoc]] = defaultdict(list)
    for doc in load_corpus():
        if doc.title:  # titled documents read better as citations
            by_domain[doc.domain].append(doc)
    picked: list[CorpusDoc] = []
    # Round-robin over domains so the sample covers every topic, not just the largest one.
    queues = [sorted(docs, key=lambda d: d.id) for _, docs in sorted(by_domain.items())]
    while len(picked) < max_docs and any(queues):
        for queue in queues:
            if queue and len(picked) < max_docs:
                picked.append(queue.pop(0))
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in picked:
        path = dest / doc.domain / f"{doc.id}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = doc.as_markdown()
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def ensure_corpus_index(data_dir: Path, say: Callable[[str], None] = logger.info) -> None:
    """Ingest the whole fitz-gov corpus into ``<data_dir>``'s store unless it is already complete there.

    The store ``make eval``'s local stack serves and ``make answerability`` trains on: written as
    ``corpus/<fitz-gov id>.md`` so a hit's file name is its judged id, and ingested once."""
    from ingest.factory import build_pipeline
    from ingest.maintenance import IndexMaintainer, describe
    from services.core.factory import build_store
    from services.core.settings import IngestSettings
    from services.datasets.fitz_gov import load_corpus

    settings = IngestSettings(data_dir=data_dir)
    corpus = load_corpus()
    n_files = len({doc.id for doc in corpus})  # 19 ids occur twice in fitz-gov 4.1.0: one file each
    marker = data_dir / "corpus-ingested.json"  # a few fitz-gov documents are empty: the store holds fewer
    store = build_store(settings)
    try:
        records = store.list_documents()
        have = len(records)
        pipeline = None
        if have >= n_files or (have and marker.exists()):
            # Complete, but indexed with today's settings? A changed model, chunking or contextual header would
            # otherwise be measured on the old vectors; sync below re-indexes exactly the stale files.
            pipeline = build_pipeline(settings, store=store)
            pipeline.warm_up()
            stale = sum(1 for r in records if r.index_signature != pipeline.signature)
            if not stale:
                say(f"store {settings.resolved_qdrant_path} already holds the corpus ({have} documents)")
                return
            say(f"{stale} of {have} documents were indexed with other settings: re-indexing them")
        folder = data_dir / "corpus"
        folder.mkdir(parents=True, exist_ok=True)
        for doc in corpus:
            path = folder / f"{doc.id}.md"
            if not path.exists():
                path.write_text(doc.as_markdown(), encoding="utf-8")
        say(f"ingesting the fitz-gov corpus ({n_files} documents) into {settings.resolved_qdrant_path}, once")
        if pipeline is None:
            pipeline = build_pipeline(settings, store=store)
            pipeline.warm_up()
        report = pipeline.sync(folder, progress=True)
        summary = report.summary()
        marker.write_text(json.dumps(summary, default=str) + "\n", encoding="utf-8")
        say(f"ingested {summary['chunks']} chunks in {summary['seconds']} s")
        # Past RAG_QDRANT_INDEX_THRESHOLD: HNSW now, before the API serves.
        line = describe(IndexMaintainer(store).run())
        if line:
            say(line)
    finally:
        store.close()
