"""PDF (pypdf): text per page, sections from bookmarks, encrypted and corrupt files refused with a reason."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pypdf

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


def _load_pdf(data: bytes, limits: LoadLimits) -> _Parsed:
    """PDF text per page via pypdf; page numbers are 1-based so they match what viewers show."""
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

    outline = _pdf_outline(reader)
    blocks: list[Block] = []
    first_line: str | None = None
    current_section: str | None = None
    for index in range(n_pages):
        try:
            raw = reader.pages[index].extract_text() or ""
        except Exception as exc:
            raise LoaderError(f"corrupt or unreadable PDF: page {index + 1}: {_short(exc)}") from exc
        texts = [t for t in (_tidy_lines(p) for p in _paragraphs(raw)) if t]
        if index == 0 and texts:
            first_line = texts[0].split("\n", 1)[0]
        sections, current_section = _section_for_page_blocks(texts, outline.get(index, []), current_section)
        for text, section in zip(texts, sections, strict=True):
            _add(blocks, text, section, index + 1)

    if not blocks:
        raise LoaderError("no extractable text (scanned PDF? OCR is not supported)")
    return _pdf_metadata_title(reader) or _clip_title(first_line), blocks
