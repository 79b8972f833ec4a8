"""DOCX (python-docx), with the zip-bomb check done on the central directory before parsing."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from ingest.loaders.base import (
    _HEADING_LEVEL_RE,
    LoaderError,
    LoadLimits,
    _add,
    _clip_title,
    _human_bytes,
    _Parsed,
    _SectionPath,
    _short,
    _squash,
)
from services.core.types import Block

# --------------------------------------------------------------------------------------------------
# .docx
# --------------------------------------------------------------------------------------------------


_VERIFY_SLICE = 64 * 1024


def _check_docx_zip(data: bytes, limits: LoadLimits) -> None:
    """Validate the container before python-docx inflates anything.

    First the declared sizes in the central directory (free). They may lie: ``zipfile``'s ``read()``
    inflates a whole member before cutting it to the declared size, so a member declaring 2 KiB can
    still allocate 512 MiB. Hence every member is then inflated once in 64 KiB slices, which stops at
    its declared size with a CRC error when it lies: memory stays at one slice, and the work at the
    declared total, which the first check bounded.
    """
    buffer = io.BytesIO(data)
    if not zipfile.is_zipfile(buffer):
        raise LoaderError("not a valid DOCX (not a zip archive)")
    try:
        with zipfile.ZipFile(buffer) as archive:
            infos = archive.infolist()
            total = sum(info.file_size for info in infos)
            if total > limits.max_uncompressed_bytes:
                raise LoaderError(
                    f"DOCX expands beyond {_human_bytes(limits.max_uncompressed_bytes)} "
                    f"(declares {_human_bytes(total)}; zip bomb?)"
                )
            if not any(info.filename == "word/document.xml" for info in infos):
                raise LoaderError("not a valid DOCX (no word/document.xml; is it another zip-based format?)")
            for info in infos:
                with archive.open(info) as member:
                    while member.read(_VERIFY_SLICE):
                        pass
    except LoaderError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise LoaderError(f"not a valid DOCX (broken zip archive: {_short(exc)})") from exc


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


def _docx_table_rows(table: Table) -> Iterator[str]:
    """Each row as "cell | cell"; horizontally merged cells repeat, so consecutive duplicates go."""
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:
                continue
            previous = cell._tc
            text = _squash(cell.text)
            if text:
                cells.append(text)
        if cells:
            yield " | ".join(cells)


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
                for row_text in _docx_table_rows(item):
                    _add(blocks, row_text, sections.current)
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
