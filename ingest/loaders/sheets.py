"""Spreadsheets as tables: CSV (the delimiter sniffed, the text decoded as .txt is) and XLSX (openpyxl,
read-only so rows stream; each sheet a section under its name). Each becomes a table block: Markdown, kept whole
when it fits a chunk, else split by rows with the header row repeated (ingest.chunker)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from ingest.loaders.base import (
    LoaderError,
    LoadLimits,
    _add,
    _add_table,
    _clip_title,
    _decode_text,
    _Parsed,
    _SectionPath,
    _short,
    check_office_zip,
)
from services.core.types import Block

_DELIMITERS = ",;\t|"


def _load_csv(data: bytes, limits: LoadLimits) -> _Parsed:
    """One table: the first row its header. The delimiter is sniffed from the first lines (comma if unsure)."""
    text = _decode_text(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:16_384], delimiters=_DELIMITERS)
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), dialect))
    except csv.Error as exc:
        raise LoaderError(f"unreadable CSV: {_short(exc)}") from exc
    blocks: list[Block] = []
    _add_table(blocks, rows, None)
    return None, blocks


def _cell(value: object) -> str:
    """A cell as a reader sees it: whole numbers without ".0", dates without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _load_xlsx(data: bytes, limits: LoadLimits) -> _Parsed:
    """Each non-empty sheet: a heading block with its name (its section), then its rows as one table."""
    check_office_zip(data, limits, kind="XLSX", required="xl/workbook.xml")
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise LoaderError(f"corrupt or unreadable XLSX: {type(exc).__name__}: {_short(exc)}") from exc
    blocks: list[Block] = []
    sections = _SectionPath()
    try:
        for sheet in book.worksheets:
            rows = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
            if not any(any(row) for row in rows):
                continue
            name = str(sheet.title)
            _add(blocks, name, sections.enter(1, name))
            _add_table(blocks, rows, sections.current)
        title = _clip_title(book.properties.title or "") if book.properties else None
    finally:
        book.close()
    return title, blocks
