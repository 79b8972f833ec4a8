"""eval.ir's mapping of a search hit back to the id it is judged under."""

from __future__ import annotations

import pytest

from eval.ir import judged_id
from services.contract.schemas import ChunkOut

pytestmark = pytest.mark.unit


def hit(source: str, doc_id: str = "uuid") -> ChunkOut:
    return ChunkOut(id=f"{doc_id}#0", doc_id=doc_id, source=source, title="", section=None, page=None,
                    chunk_index=0, text="", retrieval_score=0.0)  # fmt: skip


def test_hits_map_back_to_judged_ids_by_file_name_source_or_doc_id() -> None:
    assert judged_id(hit("/srv/.data/eval/corpus/bio_001.md"), {"bio_001"}) == "bio_001"
    assert judged_id(hit("upload://bio_002.md"), set()) == "bio_002"  # unjudged: still its file name
    assert judged_id(hit("s3://bucket/q3 report.pdf"), {"s3://bucket/q3 report.pdf"}) == "s3://bucket/q3 report.pdf"
    assert judged_id(hit("/x/a.md", doc_id="7f3c"), frozenset({"7f3c"})) == "7f3c"
