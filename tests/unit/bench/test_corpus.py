"""The benchmark slice: every relevant document present, stable, and nothing left over from another run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.corpus import make_slice

pytestmark = pytest.mark.unit


def test_slice_holds_every_relevant_document_and_is_seeded() -> None:
    sl = make_slice(10, 40)
    ids = {d.id for d in sl.docs}
    assert all(q.relevant & ids == q.relevant for q in sl.queries)
    assert len(sl.docs) >= 40
    assert [d.id for d in make_slice(10, 40).docs] == [d.id for d in sl.docs]


def test_writing_a_slice_removes_a_previous_runs_files(tmp_path: Path) -> None:
    (tmp_path / "old-doc.md").write_text("left over")
    sl = make_slice(3, 10)
    sl.write(tmp_path)
    assert sorted(p.stem for p in tmp_path.glob("*.md")) == sorted(d.id for d in sl.docs)
