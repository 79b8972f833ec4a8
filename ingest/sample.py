"""A sample corpus so a fresh ``make run`` answers something useful at once.

It is a deterministic, domain-balanced slice of the packaged fitz-gov corpus (MIT), written out as
Markdown files so it goes through exactly the same loaders and chunker as a user's own documents.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path


def write_sample_corpus(dest: Path, max_docs: int = 400) -> list[Path]:
    from eval.datasets import load_corpus

    by_domain: dict[str, list] = defaultdict(list)
    for doc in load_corpus():
        if doc.title:  # titled documents read better as citations
            by_domain[doc.domain].append(doc)
    picked = []
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
