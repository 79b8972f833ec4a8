"""HTML: a real DOM walk (BeautifulSoup + lxml) that keeps headings as sections and never recurses."""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterator

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

from ingest.loaders.base import (
    _BINARY_SNIFF_BYTES,
    _HTML_DROP_TAGS,
    LoaderError,
    LoadLimits,
    _add,
    _add_table,
    _clip_title,
    _looks_binary,
    _Parsed,
    _SectionPath,
    _squash,
    _tidy_code,
)
from services.core.types import Block

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# .html / .htm
# --------------------------------------------------------------------------------------------------

# Chrome, scripts and widgets: not document content.
# A <header> inside these is an article header (it holds the article's own title), so it is kept.
_HTML_SECTIONING = frozenset({"article", "section", "main", "aside"})
_HTML_HEADINGS = {f"h{n}": n for n in range(1, 7)}
# Elements whose boundaries end a paragraph-ish unit of text.
_HTML_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
        "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "header", "hgroup",
        "hr", "html", "legend", "li", "main", "menu", "ol", "p", "section", "summary", "table",
        "tbody", "tfoot", "thead", "ul",
    }
)  # fmt: skip
_HTML_SKIP_STRINGS = (Comment, Declaration, Doctype, ProcessingInstruction)


def _iter_html_events(root: Tag) -> Iterator[tuple[str, Tag | str]]:
    """Yield ("start", tag) / ("text", str) / ("end", tag) in document order, without recursion.

    An explicit stack instead of recursion is what makes 100 000 nested <div>s safe.
    """
    yield "start", root
    stack: list[tuple[Tag, Iterator[object]]] = [(root, iter(list(root.contents)))]
    sectioning_depth = 0
    while stack:
        parent, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if parent.name in _HTML_SECTIONING:
                sectioning_depth -= 1
            yield "end", parent
            continue
        if isinstance(child, Tag):
            name = child.name
            if name in _HTML_DROP_TAGS or (name == "header" and sectioning_depth == 0):
                continue
            if name in _HTML_SECTIONING:
                sectioning_depth += 1
            yield "start", child
            stack.append((child, iter(list(child.contents))))
        elif isinstance(child, NavigableString) and not isinstance(child, _HTML_SKIP_STRINGS):
            yield "text", str(child)


class _HtmlBlockBuilder:
    """State machine over HTML events: buffers inline text and cuts blocks at block boundaries."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.sections = _SectionPath()
        self.first_h1: str | None = None
        self._buf: list[str] = []
        self._heading: int | None = None
        self._row: list[str] | None = None
        self._nested_rows = 0  # <tr> inside a cell of an outer row: flattened into that cell
        self._table: list[list[str]] | None = None  # the rows of the open outer <table>
        self._pre_depth = 0

    def _take(self) -> str:
        text = "".join(self._buf)
        self._buf.clear()
        return text

    def _flush(self) -> None:
        if self._heading is None and self._row is None:
            _add(self.blocks, _squash(self._take()), self.sections.current)

    def start(self, tag: Tag) -> None:
        name = tag.name
        if self._pre_depth:
            if name == "pre":
                self._pre_depth += 1
            return
        if name in _HTML_HEADINGS and self._heading is None and self._row is None:
            self._flush()
            self._heading = _HTML_HEADINGS[name]
        elif name == "tr":
            if self._row is None:
                self._flush()
                self._row = []
            else:
                self._nested_rows += 1
        elif name == "pre":
            self._flush()
            self._pre_depth = 1
        elif name == "table" and self._row is None and self._table is None:
            self._flush()
            self._table = []
        elif name == "br":
            self._buf.append(" ")
        elif name in ("hr", "td", "th") or name in _HTML_BLOCK_TAGS or name in _HTML_HEADINGS:
            if self._heading is None and self._row is None:
                self._flush()
            else:
                self._buf.append(" ")

    def end(self, tag: Tag) -> None:
        name = tag.name
        if self._pre_depth:
            self._end_pre(name)
        elif name in _HTML_HEADINGS and self._heading == _HTML_HEADINGS[name]:
            self._end_heading()
        elif name in ("td", "th") and self._row is not None and not self._nested_rows:
            self._row.append(_squash(self._take()))
        elif name == "tr" and self._row is not None:
            self._end_row()
        elif name == "table" and self._row is None and self._table is not None:
            _add_table(self.blocks, self._table, self.sections.current)
            self._table = None
        elif name in _HTML_BLOCK_TAGS:
            self._flush()

    def _end_pre(self, name: str) -> None:
        """Inside <pre> only its own closing tag counts; the code goes to the open heading or row, else a block."""
        if name != "pre":
            return
        self._pre_depth -= 1
        if self._pre_depth:
            return
        text = _tidy_code(self._take())
        if self._row is not None or self._heading is not None:
            self._buf.append(text)
        else:
            _add(self.blocks, text, self.sections.current)

    def _end_heading(self) -> None:
        text = _squash(self._take())
        level, self._heading = self._heading, None
        if text and level is not None:
            path = self.sections.enter(level, text)
            if level == 1 and self.first_h1 is None:
                self.first_h1 = text
            _add(self.blocks, text, path)

    def _end_row(self) -> None:
        """A table row is one line of its cells; a row of a nested table only closes that table's row."""
        if self._nested_rows:
            self._nested_rows -= 1
            return
        cells = list(self._row or [])  # empty cells kept: they hold their column's place
        trailing = _squash(self._take())  # text in a row outside any cell (malformed markup)
        if trailing:
            cells.append(trailing)
        self._row = None
        if self._table is not None:
            self._table.append(cells)
        else:  # a <tr> outside any <table> (malformed markup): one line of its cells
            _add(self.blocks, " | ".join(cell for cell in cells if cell), self.sections.current)

    def text(self, value: str) -> None:
        self._buf.append(value)

    def finish(self) -> None:
        self._heading = None
        self._row = None
        self._flush()
        if self._table:  # a <table> the document never closed
            _add_table(self.blocks, self._table, self.sections.current)
            self._table = None


def _html_title(soup: BeautifulSoup) -> str | None:
    # Inline <svg>/<math> carry their own <title> (an icon's tooltip), which is not the page's.
    for tag in soup.find_all("title"):
        if tag.find_parent(["svg", "math"]) is None:
            return _clip_title(tag.get_text(" "))
    return None


def _html_flat_blocks(soup: BeautifulSoup) -> list[Block]:
    """Structure-free fallback: one block per non-empty line of visible text."""
    blocks: list[Block] = []
    for tag in soup.find_all(list(_HTML_DROP_TAGS)):
        tag.decompose()
    for line in soup.get_text("\n").split("\n"):
        _add(blocks, _squash(line), None)
    return blocks


def _load_html(data: bytes, limits: LoadLimits) -> _Parsed:
    """HTML via BeautifulSoup+lxml; bs4 picks the encoding from BOM, <meta charset> or detection."""
    # Sniff only the head: a stray NUL deep inside a large page is no reason to reject it.
    if _looks_binary(data[:_BINARY_SNIFF_BYTES]) and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise LoaderError("binary content, not HTML")
    soup = BeautifulSoup(data, "lxml")
    title = _html_title(soup)
    builder = _HtmlBlockBuilder()
    try:
        for event, node in _iter_html_events(soup):
            if event == "text":
                builder.text(node)  # type: ignore[arg-type]
            elif event == "start":
                builder.start(node)  # type: ignore[arg-type]
            else:
                builder.end(node)  # type: ignore[arg-type]
        builder.finish()
        blocks = builder.blocks
    except RecursionError:
        # The walk itself is iterative; this guards against recursion inside bs4/lxml internals.
        logger.warning("HTML too deeply nested for structured extraction; using flat text")
        blocks = _html_flat_blocks(soup)
    return title or builder.first_h1, blocks
