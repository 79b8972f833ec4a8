"""PDF (pypdf): text per page, sections from bookmarks, encrypted and corrupt files refused with a reason."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pypdf

from ingest.loaders import ocr
from ingest.loaders.base import (
    _SECTION_SEP,
    LoaderError,
    LoadLimits,
    _add,
    _clip_title,
    _paragraphs,
    _Parsed,
    _short,
    _squash,
    _tidy_lines,
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


def _load_pdf(data: bytes, limits: LoadLimits) -> _Parsed:
    """PDF text per page via pypdf, OCR for the pages without a text layer; page numbers are 1-based so they
    match what viewers show."""
    reader = _open_pdf(data, limits)
    pages: list[list[str]] = []
    for index in range(len(reader.pages)):
        try:
            raw = reader.pages[index].extract_text() or ""
        except Exception as exc:
            raise LoaderError(f"corrupt or unreadable PDF: page {index + 1}: {_short(exc)}") from exc
        pages.append(_page_texts(raw))
    scans = PageOcr(data, limits)
    for index, text in scans.read([i for i, texts in enumerate(pages) if not texts]).items():
        pages[index] = _page_texts(text)  # no text layer: what OCR read of the page
    outline = _pdf_outline(reader)
    blocks: list[Block] = []
    current_section: str | None = None
    for index, texts in enumerate(pages):
        sections, current_section = _section_for_page_blocks(texts, outline.get(index, []), current_section)
        for text, section in zip(texts, sections, strict=True):
            _add(blocks, text, section, index + 1)
    if not blocks:
        raise LoaderError(f"no extractable text: {'; '.join(scans.notes()) or 'the pages are empty'}")
    first_line = pages[0][0].split("\n", 1)[0] if pages and pages[0] else None
    return _pdf_metadata_title(reader) or _clip_title(first_line), blocks, scans.notes()


def _page_texts(raw: str) -> list[str]:
    return [t for t in (_tidy_lines(p) for p in _paragraphs(raw)) if t]


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
