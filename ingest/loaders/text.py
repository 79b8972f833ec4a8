"""Plain text and Markdown."""

from __future__ import annotations

import logging
import re

from bs4 import BeautifulSoup
from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingest.loaders.base import (
    _HTML_DROP_TAGS,
    LoadLimits,
    _add,
    _add_table,
    _decode_text,
    _paragraph_texts,
    _paragraphs,
    _Parsed,
    _SectionPath,
    _squash,
    _tidy_code,
    _tidy_lines,
)
from services.core.types import Block

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# .txt
# --------------------------------------------------------------------------------------------------


def _load_txt(data: bytes, limits: LoadLimits) -> _Parsed:
    """Plain text has no title or headings; paragraphs are separated by blank lines."""
    blocks: list[Block] = []
    for para in _paragraphs(_decode_text(data)):
        _add(blocks, _tidy_lines(para), None)
    return None, blocks


# --------------------------------------------------------------------------------------------------
# .md / .markdown
# --------------------------------------------------------------------------------------------------

_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_YAML_KEY_RE = re.compile(r"^[A-Za-z_][\w-]*\s*:")
_FM_TITLE_RE = re.compile(r"^title\s*:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)


def _split_front_matter(text: str) -> tuple[str | None, str]:
    """Strip a leading YAML front-matter block; return (its `title:` value, remaining markdown).

    Only a block whose first line looks like `key: value` counts, so a document that merely opens
    with a `---` horizontal rule keeps its content.
    """
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        return None, text
    body = match.group(1)
    first = next((line for line in body.splitlines() if line.strip()), "")
    if not _YAML_KEY_RE.match(first):
        return None, text
    title_match = _FM_TITLE_RE.search(body)
    title = title_match.group(1).strip().strip("'\"") if title_match else None
    return title or None, text[match.end() :]


def _md_inline_text(token: Token) -> str:
    """Plain text of an inline token: drop markup, keep link text, code spans and image alt text."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return _squash("".join(parts))


def _html_fragment_text(fragment: str) -> str:
    """Raw HTML embedded in markdown: keep its visible text only."""
    soup = BeautifulSoup(fragment, "lxml")
    for tag in soup.find_all(list(_HTML_DROP_TAGS)):
        tag.decompose()
    return _squash(soup.get_text(" "))


class _MarkdownWalk:
    """Blocks from markdown-it's tokens: headings open sections, a table becomes a table block (Markdown again,
    normalised), code and raw HTML are kept as text."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.sections = _SectionPath()
        self.first_h1: str | None = None
        self.heading_level: int | None = None
        self.row: list[str] | None = None
        self.table: list[list[str]] | None = None

    def take(self, token: Token) -> None:
        kind = token.type
        if kind == "heading_open":
            self.heading_level = int(token.tag[1:])
        elif kind == "heading_close":
            self.heading_level = None
        elif kind == "table_open":
            self.table = []
        elif kind == "table_close":
            _add_table(self.blocks, self.table or [], self.sections.current)
            self.table = None
        elif kind == "tr_open":
            self.row = []
        elif kind == "tr_close":
            if self.row is not None and self.table is not None:
                self.table.append(self.row)
            self.row = None
        elif kind == "inline":
            self.inline(_md_inline_text(token))
        elif kind in ("fence", "code_block"):
            _add(self.blocks, _tidy_code(token.content), self.sections.current)
        elif kind == "html_block":
            _add(self.blocks, _html_fragment_text(token.content), self.sections.current)

    def inline(self, text: str) -> None:
        if self.heading_level is None and self.row is not None:
            self.row.append(text)
        elif self.heading_level is None:
            _add(self.blocks, text, self.sections.current)
        elif text:
            path = self.sections.enter(self.heading_level, text)
            if self.heading_level == 1 and self.first_h1 is None:
                self.first_h1 = text
            _add(self.blocks, text, path)


def _load_markdown(data: bytes, limits: LoadLimits) -> _Parsed:
    """Markdown via markdown-it's token stream, so `#` inside fenced code is never a heading."""
    fm_title, source = _split_front_matter(_decode_text(data))
    # commonmark's default maxNesting (20) silently drops content below ~6 list levels; 100 is what
    # markdown-it's own "default" preset uses and still keeps the recursive parser shallow.
    parser = MarkdownIt("commonmark", {"html": True, "maxNesting": 100}).enable("table")
    walk = _MarkdownWalk()
    for token in parser.parse(source):
        walk.take(token)
    blocks, first_h1 = walk.blocks, walk.first_h1

    if not blocks and source.strip():
        # Pathological nesting (thousands of `>`) exceeds maxNesting and yields no tokens; the text is
        # still worth indexing as plain paragraphs.
        logger.warning("markdown structure unusable; indexing as plain text")
        blocks = [Block(text) for text in _paragraph_texts(source)]
    return fm_title or first_h1, blocks
