"""PDF: text per page (pypdf), ruled tables as Markdown (pdfplumber, only on pages that draw rules), OCR for pages
without a text layer (ingest/loaders/ocr.py), sections from bookmarks, encrypted and corrupt files refused with a
reason.

Why two libraries for text: pypdf is fast and already handles encryption, outlines and hostile streams here;
pdfplumber finds tables from the page's drawn rules, which pypdf cannot, but is several times slower. So pypdf
reads every page and counts rule-drawing operators while it does; only pages with enough of them are handed to
pdfplumber, and on a page where it finds a table its text (minus the table's area) replaces pypdf's, so the
table's words are not indexed twice.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pdfplumber
import pdfplumber.page
import pypdf

from ingest.loaders import ocr
from ingest.loaders.base import (
    _SECTION_SEP,
    LoaderError,
    LoadLimits,
    _clip_title,
    _paragraph_texts,
    _Parsed,
    _short,
    _squash,
    _tidy_lines,
    markdown_table,
)
from services.core.types import Block

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# .pdf
# --------------------------------------------------------------------------------------------------

# Producers stamp these when the author never set a title; they are worse than the file name.
_PLACEHOLDER_TITLES = frozenset({"untitled", "untitled document", "unknown", "none", "title", "document"})
_MAX_OUTLINE_ENTRIES = 10_000


def _pdf_metadata_title(reader: pypdf.PdfReader) -> str | None:
    try:
        meta = reader.metadata
        raw = meta.title if meta is not None else None
    except Exception as exc:  # broken /Info dictionaries are common and not fatal
        logger.debug("unreadable PDF metadata: %s", exc)
        return None
    title = _clip_title(str(raw)) if raw else None
    if title is None or title.lower() in _PLACEHOLDER_TITLES:
        return None
    return title


def _pdf_outline(reader: pypdf.PdfReader) -> dict[int, list[str]]:
    """Map 0-based page index -> heading paths of bookmarks that start on it, in outline order.

    Bookmarks are optional and often broken, so any failure just means "no sections".
    """
    starts: dict[int, list[str]] = {}
    try:
        outline = reader.outline
        # Iterative walk: (items, path-so-far) pairs; nested lists are children of the preceding item.
        stack: list[tuple[Iterator[object], list[str]]] = [(iter(outline), [])]
        last_path: list[str] = []
        count = 0
        while stack and count < _MAX_OUTLINE_ENTRIES:
            items, parent_path = stack[-1]
            item = next(items, None)
            if item is None:
                stack.pop()
                continue
            if isinstance(item, list):
                stack.append((iter(item), last_path))
                continue
            count += 1
            title = _squash(str(getattr(item, "title", "") or ""))
            if not title:
                continue
            last_path = [*parent_path, title]
            page_index = reader.get_destination_page_number(item)  # type: ignore[arg-type]
            if page_index is not None and page_index >= 0:
                starts.setdefault(page_index, []).append(_SECTION_SEP.join(last_path))
    except Exception as exc:  # RecursionError included: outlines can be cyclic or deeply nested
        logger.debug("ignoring unreadable PDF outline: %s", exc)
        return {}
    return starts


def _section_for_page_blocks(
    texts: list[str], entries: list[str], current: str | None
) -> tuple[list[str | None], str | None]:
    """Assign a section to each block of one page given the bookmarks that start on that page.

    A bookmark only says "page N"; where its heading text appears on the page, blocks switch to it
    there, otherwise the page's first bookmark applies from the top of the page.
    """
    if not entries:
        return [current] * len(texts), current
    leaf_titles = [entry.rsplit(_SECTION_SEP, 1)[-1].lower() for entry in entries]
    page_text = " ".join(_squash(t).lower() for t in texts)
    if not any(title in page_text for title in leaf_titles):
        current = entries[0]
    pending = 0
    sections: list[str | None] = []
    for text in texts:
        flat = _squash(text).lower()
        for offset, title in enumerate(leaf_titles[pending:]):
            if title and title in flat:
                current = entries[pending + offset]
                pending += offset + 1
                break
        sections.append(current)
    return sections, entries[-1]


# --------------------------------------------------------------------------------------------------
# Ruled tables (pdfplumber, only on pages that draw lines)
# --------------------------------------------------------------------------------------------------

# Path operators that draw a table's rules: rectangles (cells, or thin filled bars) and line segments. A page
# with fewer has no ruled table worth finding; underlines and frames stay below this most of the time.
_RULE_OPERATORS = frozenset({b"re", b"l"})
_MIN_RULES = 4
_Item = tuple[float, str, bool]  # (top of the line or table on the page, its text, whether it is a table)


@dataclass(frozen=True)
class _Part:
    """One block-to-be of a page: running text, or a table as Markdown."""

    text: str
    table: bool = False


class _RuleCounter:
    """Counts rule-drawing operators while pypdf extracts a page's text: free evidence of a ruled table.

    pdfplumber (pdfminer) is much slower than pypdf and would inflate every content stream a second time
    (a stream bomb included), so it only sees pages where this count says a table may be drawn.
    """

    def __init__(self) -> None:
        self.rules = 0

    def __call__(self, operator: bytes, operands: object, cm: object, tm: object) -> None:
        if operator in _RULE_OPERATORS:
            self.rules += 1


def _center_in(obj: dict[str, Any], boxes: list[tuple[float, float, float, float]]) -> bool:
    x = (float(obj["x0"]) + float(obj["x1"])) / 2
    y = (float(obj["top"]) + float(obj["bottom"])) / 2
    return any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)


def _group_parts(items: list[_Item]) -> list[_Part]:
    """Items in reading order (top to bottom) as parts: consecutive text lines together, each table alone."""
    parts: list[_Part] = []
    lines: list[str] = []
    for _, text, is_table in sorted(items, key=lambda item: item[0]):
        if not is_table:
            lines.append(text)
            continue
        if lines:
            parts.append(_Part(_tidy_lines("\n".join(lines))))
            lines = []
        parts.append(_Part(text, table=True))
    if lines:
        parts.append(_Part(_tidy_lines("\n".join(lines))))
    return [part for part in parts if part.text]


def _plumbed_parts(page: pdfplumber.page.Page) -> list[_Part] | None:
    """A page's ruled tables as Markdown, where they stand among its text lines; None if it has none.

    The text is extracted from the page minus the tables' areas (characters whose centre lies inside a
    table), so a table's words appear once, in its cells, not a second time as running text. A "table"
    of one row or one column is a frame or a rule under a heading, not data, and is left as text.
    """
    tables: list[tuple[tuple[float, float, float, float], str]] = []
    for found in page.find_tables():
        rows = found.extract()
        text = markdown_table(rows) if len(rows) >= 2 and max(map(len, rows)) >= 2 else None
        if text and text.count("\n") >= 2:  # a header and at least one row
            tables.append((found.bbox, text))
    if not tables:
        return None
    boxes = [bbox for bbox, _ in tables]
    rest = page.filter(lambda obj: obj.get("object_type") != "char" or not _center_in(obj, boxes))
    items: list[_Item] = [(float(line["top"]), line["text"], False) for line in rest.extract_text_lines()]
    items += [(bbox[1], text, True) for bbox, text in tables]
    return _group_parts(items)


class _PdfTables:
    """pdfplumber over the same bytes, opened on the first page that may hold a ruled table.

    Tables are an improvement on the text, not a condition for it: if pdfplumber cannot open the file or a
    page, that page keeps pypdf's text (logged), as it would have without table extraction.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pdf: pdfplumber.PDF | None = None
        self._failed = False

    def parts(self, index: int) -> list[_Part] | None:
        pdf = self._open()
        if pdf is None:
            return None
        page = pdf.pages[index]
        try:
            return _plumbed_parts(page)
        except Exception as exc:
            logger.warning("PDF page %d: no table extraction (%s); keeping its plain text", index + 1, _short(exc))
            return None
        finally:
            page.close()  # drops the page's parsed objects: a long PDF is not held in memory page by page

    def _open(self) -> pdfplumber.PDF | None:
        if self._pdf is None and not self._failed:
            try:
                self._pdf = pdfplumber.open(io.BytesIO(self._data))
            except Exception as exc:
                logger.warning("pdfplumber cannot open this PDF (%s); no table extraction", _short(exc))
                self._failed = True
        return self._pdf

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()


def _open_pdf(data: bytes, limits: LoadLimits) -> pypdf.PdfReader:
    """The reader, decrypted when an empty password opens it; the page limit checked."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                decrypted = reader.decrypt("")
            except Exception as exc:  # e.g. AES without the optional `cryptography` dependency
                raise LoaderError(f"encrypted PDF (cannot decrypt: {_short(exc)})") from exc
            if decrypted == pypdf.PasswordType.NOT_DECRYPTED:
                raise LoaderError("encrypted PDF (password required)")
        n_pages = len(reader.pages)
    except LoaderError:
        raise
    except Exception as exc:
        raise LoaderError(f"corrupt or unreadable PDF: {_short(exc)}") from exc
    if n_pages > limits.max_pdf_pages:
        raise LoaderError(f"PDF has {n_pages} pages, over the {limits.max_pdf_pages}-page limit")
    return reader


def _page_parts(reader: pypdf.PdfReader, index: int, tables: _PdfTables) -> list[_Part]:
    """A page's text by pypdf, paragraph by paragraph; a page that draws rules gets pdfplumber's tables
    (and its text around them) instead, when pdfplumber finds any."""
    rules = _RuleCounter()
    try:
        raw = reader.pages[index].extract_text(visitor_operand_before=rules) or ""
    except Exception as exc:
        raise LoaderError(f"corrupt or unreadable PDF: page {index + 1}: {_short(exc)}") from exc
    plumbed = tables.parts(index) if rules.rules >= _MIN_RULES else None
    if plumbed is not None:
        return plumbed
    return [_Part(text) for text in _paragraph_texts(raw)]


def _load_pdf(data: bytes, limits: LoadLimits) -> _Parsed:
    """PDF text per page via pypdf, ruled tables via pdfplumber, OCR for the pages without a text layer; page
    numbers are 1-based so they match what viewers show."""
    reader = _open_pdf(data, limits)
    tables = _PdfTables(data)
    try:
        pages = [_page_parts(reader, index, tables) for index in range(len(reader.pages))]
    finally:
        tables.close()
    scans = PageOcr(data, limits)
    for index, text in scans.read([i for i, parts in enumerate(pages) if not parts]).items():
        pages[index] = [_Part(t) for t in _paragraph_texts(text)]  # no text layer: what OCR read of the page
    outline = _pdf_outline(reader)
    blocks: list[Block] = []
    current_section: str | None = None
    for index, parts in enumerate(pages):
        texts = [part.text for part in parts]
        sections, current_section = _section_for_page_blocks(texts, outline.get(index, []), current_section)
        for part, section in zip(parts, sections, strict=True):
            blocks.append(Block(part.text, section, index + 1, table=part.table))
    if not blocks:
        raise LoaderError(f"no extractable text: {'; '.join(scans.notes()) or 'the pages are empty'}")
    first_line = next((p.text.split("\n", 1)[0] for p in pages[0] if not p.table), None) if pages else None
    return _pdf_metadata_title(reader) or _clip_title(first_line), blocks, scans.notes()


def _pages(numbers: list[int]) -> str:
    """1, 2, 3, 7 -> "pages 1-3, 7" (a run of pages as a range)."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    text = ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
    return f"page{'s' if len(numbers) > 1 else ''} {text}"


class PageOcr:
    """OCR for the pages of one PDF that have no text layer, and what it found, for the document's notes."""

    def __init__(self, data: bytes, limits: LoadLimits) -> None:
        self.data, self.limits = data, limits
        self.confidence: dict[int, float] = {}  # page -> mean word confidence
        self.unreadable: list[int] = []  # OCR'd, nothing found (or it failed)
        self.skipped: list[int] = []  # no text layer and no OCR
        self.why_skipped = ""

    def read(self, indexes: list[int]) -> dict[int, str]:
        """The text OCR finds on each page (0-based ``indexes``), pages it cannot read left out; the notes say
        which were read, how surely, and which not (OCR off or missing, nothing found, rendering failed)."""
        if not indexes:
            return {}
        if not self.limits.ocr or not ocr.available():
            self.skipped = [i + 1 for i in indexes]
            self.why_skipped = "OCR is off (RAG_OCR=false)" if not self.limits.ocr else "tesseract is not installed"
            return {}
        found: dict[int, str] = {}
        for index, image in ocr.render_pdf_pages(self.data, indexes, self.limits.ocr_dpi):
            text = self._ocr(image, index + 1)
            if text:
                found[index] = text
        return found

    def _ocr(self, image: Image | None, page: int) -> str:
        result = ocr.OcrText("", 0.0, 0)
        if image is not None:
            try:
                result = ocr.ocr_image(image, self.limits.ocr_language)
            except LoaderError as exc:  # Tesseract failed on this page: reported, the others still load
                logger.warning("OCR of page %d failed: %s", page, exc.reason)
        if not result.text.strip():
            self.unreadable.append(page)
            return ""
        self.confidence[page] = result.confidence
        return result.text

    def notes(self) -> list[str]:
        out = []
        if self.confidence:
            pages = sorted(self.confidence)
            if len(pages) == 1:
                detail = f"{self.confidence[pages[0]]:.0f}"
            elif len(pages) <= 8:
                detail = ", ".join(f"{self.confidence[p]:.0f} on page {p}" for p in pages)
            else:
                low = min(pages, key=lambda p: self.confidence[p])
                mean = sum(self.confidence.values()) / len(pages)
                detail = f"{mean:.0f}, lowest {self.confidence[low]:.0f} on page {low}"
            out.append(f"OCR read {_pages(pages)} (mean word confidence {detail}, of 100)")
        if self.unreadable:
            out.append(f"{_pages(self.unreadable)}: no text layer, and OCR found no text")
        if self.skipped:
            out.append(f"{_pages(self.skipped)}: no text layer, not read: {self.why_skipped}")
        return out
