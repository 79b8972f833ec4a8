"""The 100-document corpus bench/generate_bench.py measures eval.generate on: what it holds, and that the generator
will not leave any of it out as the fitz-gov sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.generate_bench import build_corpus
from ingest.sample import SAMPLE_MARK

pytestmark = pytest.mark.unit


def test_the_corpus_is_the_18_python_pages_and_82_fitz_gov_documents(tmp_path: Path) -> None:
    docs = build_corpus(tmp_path)
    python, handbook = sorted((docs / "python").glob("*.md")), sorted((docs / "handbook").glob("*.md"))
    assert (len(python), len(handbook)) == (18, 82)
    assert all(SAMPLE_MARK not in str(p) for p in python + handbook)
    assert build_corpus(tmp_path) == docs and len(list(docs.rglob("*.md"))) == 100  # rebuilt the same, not doubled
