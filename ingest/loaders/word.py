"""DOCX (python-docx), with the zip-bomb check done on the central directory before parsing."""

from __future__ import annotations

import io
from collections.abc import Iterator

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingest.loaders.base import (
    _HEADING_LEVEL_RE,
    LoaderError,
    LoadLimits,
    _add,
    _add_table,
    _clip_title,
    _Parsed,
    _SectionPath,
    _short,
    _squash,
    check_office_zip,
)
from services.core.types import Block

# --------------------------------------------------------------------------------------------------
# .docx
# --------------------------------------------------------------------------------------------------


def _check_docx_zip(data: bytes, limits: LoadLimits) -> None:
    check_office_zip(data, limits, kind="DOCX", required="word/document.xml")


def _docx_style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
        return (style.name or "") if style is not None else ""
    except Exception:  # missing or dangling style references are not worth failing over
        return ""


def _docx_heading_level(style_name: str) -> int | None:
    if not style_name.lower().startswith("heading"):
        return None
    match = _HEADING_LEVEL_RE.match(style_name)
    return int(match.group(1)) if match else 1


def _docx_table_rows(table: Table) -> Iterator[list[str]]:
    """Each row's cells (empty ones kept, they hold their column); a horizontally merged cell is listed once
    per grid column it spans by python-docx, so consecutive repeats of one cell go."""
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:
                continue
            previous = cell._tc
            cells.append(_squash(cell.text))
        yield cells


def _load_docx(data: bytes, limits: LoadLimits) -> _Parsed:
    """Word documents via python-docx, body paragraphs and tables in document order."""
    _check_docx_zip(data, limits)
    blocks: list[Block] = []
    sections = _SectionPath()
    title_candidate: str | None = None
    try:
        document = docx.Document(io.BytesIO(data))
        core_title = _clip_title(document.core_properties.title or "")
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                _add_table(blocks, list(_docx_table_rows(item)), sections.current)
                continue
            text = _squash(item.text)
            if not text:
                continue
            style = _docx_style_name(item)
            level = _docx_heading_level(style)
            if level is not None:
                if title_candidate is None and level == 1:
                    title_candidate = text
                _add(blocks, text, sections.enter(level, text))
            else:
                if title_candidate is None and style.lower() == "title":
                    title_candidate = text
                _add(blocks, text, sections.current)
    except LoaderError:
        raise
    except Exception as exc:
        raise LoaderError(f"corrupt or unreadable DOCX: {type(exc).__name__}: {_short(exc)}") from exc
    return core_title or _clip_title(title_candidate), blocks
