"""A ruled table in a PDF comes out as a Markdown table with the same cells, where it stands on the page, its
words not repeated as running text; pdfplumber sees only pages that draw rules. Files are built here."""

from __future__ import annotations

import io
import re

import pytest
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

from ingest.loaders import load_bytes
from ingest.loaders import pdf as pdf_loader
from services.core.types import Block, LoadedDocument

pytestmark = pytest.mark.unit

CELLS = [
    ["Region", "Revenue", "Note"],
    ["North", "1,200", "best | quarter"],
    ["South", "980", "two\nlines"],
]
# How CELLS read back from the Markdown: pipes still there (escaped in the source), newlines flattened.
EXPECTED = [
    ["Region", "Revenue", "Note"],
    ["North", "1,200", "best | quarter"],
    ["South", "980", "two lines"],
]


def cells_of(markdown: str) -> list[list[str]]:
    """Parse a table written by ``markdown_table`` back into cells (the separator line dropped)."""
    header, separator, *rows = markdown.split("\n")
    assert re.fullmatch(r"\|(---\|)+", separator), separator
    parsed = []
    for line in [header, *rows]:
        assert line.startswith("| ") and line.endswith(" |"), line
        parsed.append([cell.replace("\\|", "|") for cell in re.split(r" (?<!\\)\| ", line[2:-2])])
    return parsed


def tables_of(doc: LoadedDocument) -> list[Block]:
    return [block for block in doc.blocks if block.table]


def ruled_table_pdf() -> bytes:
    buffer = io.BytesIO()
    styles = getSampleStyleSheet()
    table = Table(CELLS)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    story = [
        Paragraph("Sales summary", styles["Heading1"]),
        Paragraph("Before the table we describe results.", styles["Normal"]),
        table,
        Paragraph("After the table: closing remarks.", styles["Normal"]),
    ]
    SimpleDocTemplate(buffer, pagesize=A4).build(story)
    return buffer.getvalue()


def test_pdf_ruled_table_is_markdown_and_its_words_appear_once() -> None:
    doc = load_bytes(ruled_table_pdf(), "sales.pdf", "s")
    [block] = tables_of(doc)
    # A cell's line break in the PDF is a space in Markdown; reportlab draws "two\nlines" on two lines.
    assert cells_of(block.text) == EXPECTED
    assert block.page == 1
    texts = [b.text for b in doc.blocks]
    assert texts.index(block.text) == 1  # where it stands on the page: between the text above and below
    assert "Before the table we describe results." in texts[0]
    assert texts[2] == "After the table: closing remarks."
    running = "\n".join(b.text for b in doc.blocks if not b.table)
    assert "North" not in running and "1,200" not in running


def test_pdf_without_rules_never_reaches_pdfplumber(monkeypatch: pytest.MonkeyPatch) -> None:
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 750, "Region Revenue")
    pdf.drawString(72, 730, "North 1,200")
    pdf.save()
    opened: list[object] = []
    monkeypatch.setattr(pdf_loader.pdfplumber, "open", lambda *a, **k: opened.append(a))
    doc = load_bytes(buffer.getvalue(), "plain.pdf", "s")
    assert opened == []
    assert [b.text for b in doc.blocks] == ["Region Revenue\nNorth 1,200"]


def test_pdf_table_extraction_failure_keeps_the_page_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("pdfminer choked")

    monkeypatch.setattr(pdf_loader.pdfplumber, "open", broken)
    doc = load_bytes(ruled_table_pdf(), "sales.pdf", "s")
    assert tables_of(doc) == []
    assert "North" in "\n".join(b.text for b in doc.blocks)
