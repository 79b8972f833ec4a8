"""Loaders turn untrusted files into structured blocks; fixtures are built at test time, not checked in."""

from __future__ import annotations

import io
import pathlib
import zipfile

import docx
import pypdf
import pytest
from reportlab.pdfgen import canvas

from ingest import loaders
from ingest.loaders import SUPPORTED_SUFFIXES, LoaderError, LoadLimits, load_bytes, load_path
from ingest.loaders import html as html_loader
from ingest.loaders import word as word_loader
from services.core.types import Block, LoadedDocument, sha256_hex

pytestmark = pytest.mark.unit

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


# ----------------------------------------------------------------------------------------------
# Fixture builders
# ----------------------------------------------------------------------------------------------


def make_pdf(pages: list[list[str]], title: str | None = None, outline: bool = False) -> bytes:
    """A real PDF with one text line per entry; optional metadata title and one bookmark per page."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    if title is not None:
        pdf.setTitle(title)
    for number, lines in enumerate(pages, start=1):
        y = 750
        for line in lines:
            pdf.drawString(72, y, line)
            y -= 20
        if outline and lines:
            key = f"page{number}"
            pdf.bookmarkPage(key)
            pdf.addOutlineEntry(lines[0], key, level=0)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def two_page_pdf(title: str | None = "Quarterly Report 2024") -> bytes:
    return make_pdf(
        [
            ["Quarterly Report", "Revenue grew by twelve percent."],
            ["Outlook", "Hiring continues in Lisbon."],
        ],
        title=title,
    )


def make_docx(core_title: str = "") -> bytes:
    document = docx.Document()
    document.core_properties.title = core_title
    document.add_heading("Employee Handbook", level=0)  # "Title" style
    document.add_paragraph("Welcome aboard.")
    document.add_heading("A", level=1)
    document.add_paragraph("Text under A.")
    document.add_heading("B", level=2)
    document.add_paragraph("Text under B.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Name"
    table.cell(0, 1).text = "Value"
    table.cell(1, 0).text = "Leave"
    table.cell(1, 1).text = "25 days"
    document.add_heading("C", level=1)
    document.add_paragraph("Text under C.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def texts(doc: LoadedDocument) -> list[str]:
    return [block.text for block in doc.blocks]


def block_with(doc: LoadedDocument, needle: str) -> Block:
    matches = [block for block in doc.blocks if needle in block.text]
    assert matches, f"no block contains {needle!r}: {texts(doc)}"
    return matches[0]


def write(tmp_path: pathlib.Path, name: str, data: bytes) -> pathlib.Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------------------------
# Dispatch, limits and the error contract
# ----------------------------------------------------------------------------------------------


def test_supported_suffixes() -> None:
    assert {
        ".txt",
        ".md",
        ".markdown",
        ".html",
        ".htm",
        ".pdf",
        ".docx",
        ".csv",
        ".xlsx",
        ".png",
        ".jpg",
        ".jpeg",
        ".tif",
        ".tiff",
    } == SUPPORTED_SUFFIXES


def test_unsupported_suffix_lists_supported_types() -> None:
    with pytest.raises(LoaderError) as info:
        load_bytes(b"a,b\n1,2\n", "table.XYZ", "s")
    assert "unsupported file type '.xyz'" in info.value.reason
    assert ".pdf" in info.value.reason and ".docx" in info.value.reason


def test_missing_suffix_is_unsupported() -> None:
    with pytest.raises(LoaderError, match="unsupported file type"):
        load_bytes(b"hello", "README", "s")


def test_suffix_is_case_insensitive_and_windows_paths_work() -> None:
    doc = load_bytes(b"hello world", "C:\\Users\\me\\Notes_2024.TXT", "s")
    assert doc.media_type == "text/plain"
    assert doc.title == "Notes 2024"


def test_empty_file_rejected() -> None:
    with pytest.raises(LoaderError) as info:
        load_bytes(b"", "empty.txt", "s")
    assert info.value.reason == "empty file"


def test_whitespace_only_has_no_extractable_text() -> None:
    with pytest.raises(LoaderError, match="no extractable text"):
        load_bytes(b"  \n\n\t \r\n", "blank.md", "s")


def test_oversize_bytes_rejected() -> None:
    with pytest.raises(LoaderError, match="file too large") as info:
        load_bytes(b"x" * 2048, "big.txt", "s", LoadLimits(max_file_bytes=1024))
    assert "1.0 KiB" in info.value.reason


def test_load_path_checks_size_before_reading(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "big.txt", b"y" * 4096)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("file was read despite exceeding the size limit")

    monkeypatch.setattr(pathlib.Path, "open", forbidden)
    monkeypatch.setattr(pathlib.Path, "read_bytes", forbidden)
    with pytest.raises(LoaderError, match="file too large"):
        load_path(path, limits=LoadLimits(max_file_bytes=100))


def test_load_path_defaults_source_and_titles_from_stem(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "release_notes-v2.txt", b"First paragraph.\n\nSecond paragraph.\n")
    doc = load_path(path)
    assert doc.source == str(path.resolve())
    assert doc.title == "release notes v2"
    assert doc.content_hash == sha256_hex(path.read_bytes())
    assert texts(doc) == ["First paragraph.", "Second paragraph."]
    assert load_path(path, source="kb://notes").source == "kb://notes"


def test_load_path_missing_file_is_loader_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(LoaderError, match="cannot read file"):
        load_path(tmp_path / "nope.txt")


def test_unexpected_exception_becomes_loader_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(data: bytes, limits: LoadLimits) -> tuple[str | None, list[Block]]:
        raise ValueError("parser exploded " + "x" * 1000)

    monkeypatch.setitem(loaders._HANDLERS, ".txt", boom)
    with pytest.raises(LoaderError) as info:
        load_bytes(b"hello", "a.txt", "s")
    assert info.value.reason.startswith("unreadable .txt file: ValueError: parser exploded")
    assert len(info.value.reason) <= 300
    assert isinstance(info.value.__cause__, ValueError)


def test_keyboard_interrupt_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(data: bytes, limits: LoadLimits) -> tuple[str | None, list[Block]]:
        raise KeyboardInterrupt

    monkeypatch.setitem(loaders._HANDLERS, ".txt", interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_bytes(b"hello", "a.txt", "s")


# ----------------------------------------------------------------------------------------------
# .txt
# ----------------------------------------------------------------------------------------------


def test_txt_utf8_bom_stripped_and_paragraphs_split() -> None:
    data = "\ufeffCafé   opening\thours\nare 9–5.\n\n\n  Second   paragraph  \n".encode()
    doc = load_bytes(data, "hours.txt", "src")
    assert texts(doc) == ["Café opening hours\nare 9–5.", "Second paragraph"]
    assert all(block.section is None and block.page is None for block in doc.blocks)
    assert doc.media_type == "text/plain"
    assert doc.content_hash == sha256_hex(data)
    assert doc.source == "src"
    assert doc.tags == []


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_txt_legacy_encoding_detected(encoding: str) -> None:
    data = ("café naïve résumé\n" * 20).encode(encoding)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    doc = load_bytes(data, "legacy.txt", "s")
    assert doc.blocks[0].text.split("\n")[0] == "café naïve résumé"


def test_txt_cp1252_prose_with_smart_quotes() -> None:
    data = ("Ça coûte 5 € — «très» cher, l’été. " * 10).encode("cp1252")
    doc = load_bytes(data, "prix.txt", "s")
    assert "Ça coûte 5 € — «très» cher, l’été." in doc.blocks[0].text


def test_txt_utf16_with_bom() -> None:
    doc = load_bytes("Grüße aus Köln\n".encode("utf-16"), "gruss.txt", "s")
    assert texts(doc) == ["Grüße aus Köln"]


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15]) * 100,  # control soup without NULs
    ],
)
def test_txt_binary_rejected(data: bytes) -> None:
    with pytest.raises(LoaderError) as info:
        load_bytes(data, "image.txt", "s")
    assert info.value.reason == "binary content, not text"


def test_txt_huge_single_line_is_one_block() -> None:
    line = "word " * 400_000  # 2 MB, no newline
    doc = load_bytes(line.encode(), "one_line.txt", "s")
    assert len(doc.blocks) == 1
    assert doc.blocks[0].text == line.strip()


# ----------------------------------------------------------------------------------------------
# .md
# ----------------------------------------------------------------------------------------------

MARKDOWN = """\
---
title: "Operator Guide"
tags: [ops]
---
# Install

Intro **text** with a [link](http://example.com).

## Linux

Run this:

```bash
# not a heading
apt-get install thing
```

- first item
- second item

| Flag | Meaning |
|------|---------|
| -v   | verbose |

# Usage

Final words.
"""


def test_markdown_sections_and_code_fence() -> None:
    doc = load_bytes(MARKDOWN.encode(), "guide.md", "s")
    assert doc.title == "Operator Guide"
    assert doc.media_type == "text/markdown"
    # Front matter is metadata, not content.
    assert not any("tags:" in text for text in texts(doc))

    assert block_with(doc, "Install") == Block("Install", "Install", None)
    assert block_with(doc, "Intro") == Block("Intro text with a link.", "Install", None)
    assert block_with(doc, "Linux").section == "Install > Linux"
    code = block_with(doc, "# not a heading")
    assert code.text == "# not a heading\napt-get install thing"
    assert code.section == "Install > Linux"
    assert block_with(doc, "second item").section == "Install > Linux"
    table = "| Flag | Meaning |\n|---|---|\n| -v | verbose |"  # a table block, Markdown again
    assert block_with(doc, "verbose") == Block(table, "Install > Linux", None, table=True)
    assert block_with(doc, "Final words").section == "Usage"
    # The fenced "# not a heading" never became a section.
    assert not any(block.section and "not a heading" in block.section for block in doc.blocks)


def test_markdown_title_from_first_h1_without_front_matter() -> None:
    doc = load_bytes(b"Preamble.\n\n## Minor\n\n# Real Title\n\nBody.\n", "x.markdown", "s")
    assert doc.title == "Real Title"
    assert block_with(doc, "Preamble").section is None
    assert block_with(doc, "Body").section == "Real Title"


def test_markdown_leading_rule_is_not_front_matter() -> None:
    doc = load_bytes(b"---\nJust a rule above.\n---\n\nMore text.\n", "rule.md", "s")
    assert doc.title == "rule"
    assert any("Just a rule above." in text for text in texts(doc))


def test_markdown_pathological_nesting_falls_back_to_plain_text() -> None:
    doc = load_bytes((">" * 100_000 + " buried words\n").encode(), "quotes.md", "s")
    assert len(doc.blocks) == 1
    assert doc.blocks[0].text.endswith("buried words")


def test_markdown_moderately_deep_lists_keep_their_text() -> None:
    source = "".join("  " * level + f"- item{level}\n" for level in range(12))
    doc = load_bytes(source.encode(), "nested.md", "s")
    assert texts(doc) == [f"item{level}" for level in range(12)]


# ----------------------------------------------------------------------------------------------
# .html
# ----------------------------------------------------------------------------------------------

HTML = """\
<!DOCTYPE html>
<html><head><title> Release   Notes </title>
<style>body { color: red; }</style>
<script>var secret = "SCRIPT_TEXT";</script></head>
<body>
<header>SITE BANNER</header>
<nav><a href="/">NAV LINK</a></nav>
<h1>Version 2</h1>
<p>Overview   paragraph
   spanning lines.</p>
<div>Loose div text<p>Inner para</p></div>
<article><header><h2>Install</h2></header>
  <h3>Linux</h3>
  <ul><li>Use apt</li><li>Or <b>snap</b></li></ul>
  <pre>make
  make install</pre>
  <table><tr><th>OS</th><th>Status</th></tr><tr><td>Debian</td><td>ok</td></tr></table>
</article>
<h2>Known issues</h2>
<p>None<br>at all.</p>
<noscript>NOSCRIPT_TEXT</noscript>
<template>TEMPLATE_TEXT</template>
<form><label>FORM_TEXT</label></form>
<footer>FOOTER_TEXT</footer>
<!-- COMMENT_TEXT -->
</body></html>
"""


def test_html_structure_and_noise_removed() -> None:
    doc = load_bytes(HTML.encode(), "notes.html", "s")
    assert doc.title == "Release Notes"
    assert doc.media_type == "text/html"
    joined = "\n".join(texts(doc))
    for noise in ("SCRIPT_TEXT", "color: red", "SITE BANNER", "NAV LINK", "NOSCRIPT_TEXT", "TEMPLATE_TEXT"):
        assert noise not in joined
    for noise in ("FORM_TEXT", "FOOTER_TEXT", "COMMENT_TEXT"):
        assert noise not in joined

    assert block_with(doc, "Version 2") == Block("Version 2", "Version 2", None)
    assert block_with(doc, "Overview") == Block("Overview paragraph spanning lines.", "Version 2", None)
    assert block_with(doc, "Loose div text").text == "Loose div text"
    assert block_with(doc, "Inner para").text == "Inner para"
    # The article's own <header> is content, unlike the page banner.
    assert block_with(doc, "Install") == Block("Install", "Version 2 > Install", None)
    assert block_with(doc, "Use apt").section == "Version 2 > Install > Linux"
    assert block_with(doc, "snap").text == "Or snap"
    assert block_with(doc, "make install").text == "make\n  make install"
    table = "| OS | Status |\n|---|---|\n| Debian | ok |"
    assert block_with(doc, "Debian") == Block(table, "Version 2 > Install > Linux", None, table=True)
    assert block_with(doc, "Known issues").section == "Version 2 > Known issues"
    assert block_with(doc, "at all") == Block("None at all.", "Version 2 > Known issues", None)


def test_html_title_falls_back_to_h1_and_respects_meta_charset() -> None:
    html = '<html><head><meta charset="windows-1252"></head><body><h1>Menü Übersicht</h1><p>Crème brûlée</p>'
    doc = load_bytes(html.encode("cp1252"), "menu.htm", "s")
    assert doc.title == "Menü Übersicht"
    assert block_with(doc, "Crème") == Block("Crème brûlée", "Menü Übersicht", None)


def test_html_svg_title_is_not_the_page_title() -> None:
    html = b"<html><body><svg><title>icon tooltip</title></svg><h1>Real Heading</h1><p>x</p></body></html>"
    doc = load_bytes(html, "page.html", "s")
    assert doc.title == "Real Heading"
    assert "icon tooltip" not in "\n".join(texts(doc))


def test_html_without_title_or_h1_uses_stem() -> None:
    doc = load_bytes(b"<p>just text</p>", "plain_page.html", "s")
    assert doc.title == "plain page"
    assert texts(doc) == ["just text"]


def test_html_deeply_nested_divs_never_recursion_error() -> None:
    depth = 50_000
    html = "<html><body>" + "<div>" * depth + "<p>deep treasure</p>" + "</div>" * depth + "<p>after</p>"
    try:
        doc = load_bytes(html.encode(), "deep.html", "s")
    except LoaderError:
        return  # acceptable outcome; a RecursionError would have failed the test
    assert "deep treasure" in texts(doc)
    assert "after" in texts(doc)


def test_html_recursion_error_falls_back_to_flat_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(root: object) -> object:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(html_loader, "_iter_html_events", explode)
    doc = load_bytes(HTML.encode(), "notes.html", "s")
    assert doc.title == "Release Notes"
    assert "Version 2" in texts(doc)
    assert not any("SCRIPT_TEXT" in text for text in texts(doc))
    assert all(block.section is None for block in doc.blocks)


# ----------------------------------------------------------------------------------------------
# .pdf
# ----------------------------------------------------------------------------------------------


def test_pdf_pages_and_metadata_title() -> None:
    data = two_page_pdf()
    doc = load_bytes(data, "q4.pdf", "s")
    assert doc.title == "Quarterly Report 2024"
    assert doc.media_type == "application/pdf"
    assert doc.content_hash == sha256_hex(data)
    assert block_with(doc, "Revenue grew").page == 1
    assert block_with(doc, "Lisbon").page == 2
    assert {block.page for block in doc.blocks} == {1, 2}
    assert all(block.section is None for block in doc.blocks)


def test_pdf_title_falls_back_to_first_line_when_metadata_is_placeholder() -> None:
    # reportlab stamps /Title "untitled" when none is set; that is no better than nothing.
    doc = load_bytes(two_page_pdf(title=None), "q4.pdf", "s")
    assert doc.title == "Quarterly Report"


def test_pdf_outline_gives_sections() -> None:
    data = make_pdf([["Introduction", "Why we did it."], ["Results", "It worked."]], title="T", outline=True)
    doc = load_bytes(data, "paper.pdf", "s")
    assert block_with(doc, "Why we did it").section == "Introduction"
    assert block_with(doc, "It worked") == Block("Results\nIt worked.", "Results", 2)


def test_pdf_image_only_has_no_extractable_text() -> None:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.rect(100, 100, 200, 200, fill=1)
    pdf.showPage()
    pdf.save()
    with pytest.raises(LoaderError) as info:
        load_bytes(buffer.getvalue(), "scan.pdf", "s")
    assert "no extractable text" in info.value.reason and "OCR" in info.value.reason


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_pdf_corrupt_rejected(kind: str) -> None:
    real = two_page_pdf()
    data = b"%PDF-1.4 garbage" if kind == "garbage" else real[: len(real) // 2]
    with pytest.raises(LoaderError) as info:
        load_bytes(data, "broken.pdf", "s")
    assert "PDF" in info.value.reason
    assert info.value.reason.startswith("corrupt or unreadable PDF")


def test_pdf_encrypted_with_password_rejected() -> None:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(two_page_pdf()))
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(LoaderError) as info:
        load_bytes(buffer.getvalue(), "locked.pdf", "s")
    assert "encrypted" in info.value.reason


def test_pdf_encrypted_with_empty_user_password_loads() -> None:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(two_page_pdf()))
    writer.encrypt("", owner_password="owner-only")
    buffer = io.BytesIO()
    writer.write(buffer)
    doc = load_bytes(buffer.getvalue(), "restricted.pdf", "s")
    assert block_with(doc, "Lisbon").page == 2


def test_pdf_page_limit() -> None:
    with pytest.raises(LoaderError, match="2 pages, over the 1-page limit"):
        load_bytes(two_page_pdf(), "q4.pdf", "s", LoadLimits(max_pdf_pages=1))


# ----------------------------------------------------------------------------------------------
# .docx
# ----------------------------------------------------------------------------------------------


def test_docx_title_sections_and_table() -> None:
    data = make_docx()
    doc = load_bytes(data, "handbook.docx", "s")
    assert doc.title == "Employee Handbook"  # from the "Title" paragraph: core title is empty
    assert doc.media_type == DOCX_MEDIA_TYPE
    assert doc.content_hash == sha256_hex(data)
    assert block_with(doc, "Welcome") == Block("Welcome aboard.", None, None)
    assert block_with(doc, "Text under A") == Block("Text under A.", "A", None)
    assert Block("B", "A > B", None) in doc.blocks
    assert block_with(doc, "Text under B") == Block("Text under B.", "A > B", None)
    table = "| Name | Value |\n|---|---|\n| Leave | 25 days |"  # the same cells, as a Markdown table
    assert block_with(doc, "Leave") == Block(table, "A > B", None, table=True)
    assert block_with(doc, "Text under C") == Block("Text under C.", "C", None)
    # Document order is kept: the table sits between B's text and heading C.
    order = texts(doc)
    assert order.index("Text under B.") < order.index(table) < order.index("C")


def test_docx_core_properties_title_wins() -> None:
    doc = load_bytes(make_docx(core_title="HR Policies 2025"), "handbook.docx", "s")
    assert doc.title == "HR Policies 2025"


def test_docx_not_a_zip_rejected() -> None:
    with pytest.raises(LoaderError) as info:
        load_bytes(b"this is plain text pretending", "fake.docx", "s")
    assert info.value.reason == "not a valid DOCX (not a zip archive)"


def test_docx_zip_bomb_rejected_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (2 * 1024 * 1024))
    data = buffer.getvalue()
    assert len(data) < 64 * 1024  # it really is small on the wire

    parsed: list[object] = []
    monkeypatch.setattr(word_loader.docx, "Document", lambda *a, **k: parsed.append(a))
    with pytest.raises(LoaderError) as info:
        load_bytes(data, "bomb.docx", "s", LoadLimits(max_uncompressed_bytes=1024 * 1024))
    assert "zip bomb" in info.value.reason
    assert "1.0 MiB" in info.value.reason
    assert parsed == []


def test_docx_corrupt_content_rejected() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
        archive.writestr("word/document.xml", b"<not-closed")
    with pytest.raises(LoaderError) as info:
        load_bytes(buffer.getvalue(), "broken.docx", "s")
    assert info.value.reason.startswith("corrupt or unreadable DOCX")


def test_docx_other_zip_formats_rejected() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", b"application/epub+zip")
    with pytest.raises(LoaderError, match="not a valid DOCX"):
        load_bytes(buffer.getvalue(), "book.docx", "s")


def _double_encoded(text: str) -> bytes:
    """``text`` as a tool that read UTF-8 as Windows-1252 and saved it again writes it (bytes 1252 leaves
    undefined pass through as C1 controls, as such tools do)."""
    undefined = {0x81, 0x8D, 0x8F, 0x90, 0x9D}
    misread = "".join(chr(b) if b in undefined else bytes([b]).decode("cp1252") for b in text.encode("utf-8"))
    return misread.encode("utf-8")


def test_mojibake_is_repaired_at_load_and_the_identity_stays_the_original_bytes() -> None:
    from services.core.types import sha256_hex

    clean = "# Café report 📊\n\nThe “balance” ⚖️ is 3½ kg — naïve, but fine.\n"
    data = _double_encoded(clean)
    assert "Ã©" in data.decode("utf-8") and "ðŸ“Š" in data.decode("utf-8")  # the file really is broken
    doc = load_bytes(data, "report.md", "upload://report.md")
    text = "\n".join(b.text for b in doc.blocks)
    assert doc.title == "Café report 📊"
    assert "The “balance” ⚖️ is 3½ kg — naïve, but fine." in text  # curly quotes kept: only repairs
    assert "Ã" not in text and "ð" not in text
    assert doc.content_hash == sha256_hex(data)


def test_text_that_is_not_broken_comes_back_as_it_is_and_in_nfc() -> None:
    from ingest.loaders.repair import repair_text

    for fine in ("plain ASCII &amp; more", "日本語のテキスト", "“quoted” ﬁne ＡＢＣ", "Ελληνικά, naïve"):
        assert repair_text(fine) == fine
    assert repair_text("cafe\u0301") == "caf\u00e9"  # decomposed é becomes one code point


# ----------------------------------------------------------------------------------------------
# .csv, .xlsx: tables
# ----------------------------------------------------------------------------------------------


def test_a_csv_is_one_table_with_its_delimiter_sniffed() -> None:
    data = b"Country;Capital;Population (M)\nPortugal;Lisbon;10.4\nFrance;Paris;68\n"
    doc = load_bytes(data, "capitals.csv", "s")
    assert doc.media_type == "text/csv" and doc.title == "capitals"
    [block] = doc.blocks
    assert block.table
    assert block.text == (
        "| Country | Capital | Population (M) |\n|---|---|---|\n| Portugal | Lisbon | 10.4 |\n| France | Paris | 68 |"
    )


def _xlsx(sheets: dict[str, list[list[object]]], title: str = "") -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.properties.title = title or None
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_an_xlsx_sheet_is_a_section_holding_its_table() -> None:
    import datetime as dt

    data = _xlsx(
        {
            "Budget": [["Item", "Cost", "Due"], ["Roof", 12000.0, dt.datetime(2026, 3, 1)], ["Paint", 850.5, None]],
            "Empty": [],
            "Staff": [["Name", "Room"], ["Ann", "B2"]],
        },
        title="Building plan",
    )
    doc = load_bytes(data, "plan.xlsx", "s")
    assert doc.title == "Building plan"
    assert [b.section for b in doc.blocks] == ["Budget", "Budget", "Staff", "Staff"]  # the empty sheet is skipped
    budget = doc.blocks[1]
    assert budget.table
    assert budget.text == "| Item | Cost | Due |\n|---|---|---|\n| Roof | 12000 | 2026-03-01 |\n| Paint | 850.5 |  |"
    assert doc.blocks[3].text == "| Name | Room |\n|---|---|\n| Ann | B2 |"


def test_a_corrupt_xlsx_fails_with_a_reason() -> None:
    with pytest.raises(LoaderError, match="not a valid XLSX"):
        load_bytes(b"PK\x03\x04 not really a zip", "broken.xlsx", "s")
    with pytest.raises(LoaderError, match="no xl/workbook.xml"):
        load_bytes(make_docx(), "renamed.xlsx", "s")
