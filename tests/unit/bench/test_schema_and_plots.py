"""Result documents have one shape, and the charts are real PNG files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import plots
from bench.__main__ import envelope, table, write
from bench.schema import validate

pytestmark = pytest.mark.unit


def good() -> dict[str, object]:
    return {
        "benchmark": "ingest",
        "date": "2026-11-22T00:00:00+00:00",
        "quick": True,
        "machine": {"cpu": "x", "cores": 2, "memory_gb": 8.0, "load_avg_start": [0.1, 0.1, 0.1]},
        "settings": {},
        "results": {"backends": {}},
        "seconds": 1.5,
    }


def test_a_complete_document_is_valid() -> None:
    assert validate(good()) == []


@pytest.mark.parametrize("key", ["benchmark", "date", "quick", "machine", "settings", "results", "seconds"])
def test_each_missing_key_is_reported(key: str) -> None:
    doc = good()
    del doc[key]
    assert validate(doc) == [f"missing key {key!r}"]


def test_wrong_types_and_machine_fields_are_reported() -> None:
    doc = good()
    doc["quick"] = "yes"
    doc["machine"] = {"cpu": "x"}
    errors = validate(doc)
    assert "'quick' must be bool" in errors
    assert "machine lacks 'cores'" in errors
    assert validate([1, 2]) == ["result must be a JSON object"]


def test_envelope_carries_the_machine_and_is_written_as_valid_json(tmp_path: Path) -> None:
    doc = envelope("scale", False, {"sizes": [10]}, {"rows": []}, started=0.0)
    path = write("scale", doc, tmp_path)
    loaded = json.loads(path.read_text())
    assert validate(loaded) == []
    assert loaded["machine"]["cores"] >= 1


def test_write_refuses_an_invalid_document(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing key"):
        write("bad", {"benchmark": "bad"}, tmp_path)
    assert not (tmp_path / "bad.json").exists()


def test_charts_are_png_files(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n"
    bar = plots.bars(tmp_path / "b.png", {"torch": 10.0, "onnx-int8": 25.0}, title="t", xlabel="x")
    line = plots.lines(tmp_path / "l.png", {"a": ([10, 100], [1.0, 9.0])}, title="t", xlabel="x", ylabel="y", logx=True)
    for path in (bar, line):
        assert path.read_bytes()[:8] == png
        assert path.stat().st_size > 1000


def test_table_aligns_columns() -> None:
    text = table([["torch", 1.5], ["onnx-int8", 22]], ["backend", "x"])
    lines = text.splitlines()
    assert lines[0].index("x") == lines[1].index("1.5") == lines[2].index("22")
