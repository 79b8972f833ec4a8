"""Turn one uploaded or on-disk file into a `LoadedDocument`: a title plus structured text blocks.

Loaders are the first thing that touches untrusted bytes, so the rules here are:

* every failure a user can cause (wrong type, corrupt file, password, zip bomb, no text) surfaces as a
  `LoaderError` with a short human-readable `reason`, never as a stack trace from a parser library;
* limits (file size, DOCX expansion, PDF page count) are checked *before* the expensive parse;
* structure is kept: each block carries the heading path it sits under and, for PDFs, its page,
  so citations can point at "Install > Linux" or "page 3" instead of a bare file name.

Chunking and embedding happen later; a block may be arbitrarily long.
"""

from __future__ import annotations

import codecs
import io
import logging
import pathlib
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import docx
import pypdf
from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction
from charset_normalizer import from_bytes
from docx.table import Table
from docx.text.paragraph import Paragraph
from markdown_it import MarkdownIt
from markdown_it.token import Token

from services.core.types import Block, LoadedDocument, sha256_hex

logger = logging.getLogger(__name__)

__all__ = [
    "SUPPORTED_SUFFIXES",
    "LoadLimits",
    "LoaderError",
    "load_bytes",
    "load_path",
]


class LoaderError(Exception):
    """A file that cannot be ingested; `reason` is a short human-readable cause shown to users."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


MEDIA_TYPES: dict[str, str] = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(MEDIA_TYPES)


@dataclass(frozen=True)
class LoadLimits:
    """Resource ceilings, so one hostile or accidental upload cannot exhaust the ingest worker."""

    max_file_bytes: int = 50 * 1024 * 1024
    # Zip-bomb guard for DOCX, checked on the zip central directory before any member is inflated.
    max_uncompressed_bytes: int = 200 * 1024 * 1024
    max_pdf_pages: int = 2000


_DEFAULT_LIMITS = LoadLimits()

# Parsed result of one format handler: (title found inside the document or None, blocks).
_Parsed = tuple[str | None, list[Block]]

_MAX_TITLE_CHARS = 200
_MAX_REASON_CHARS = 300
_SECTION_SEP = " > "

# --------------------------------------------------------------------------------------------------
# Whitespace and small helpers
# --------------------------------------------------------------------------------------------------

# C0 controls (minus \t \n \r) and DEL never carry meaning in extracted text; pypdf in particular
# emits stray NULs. They are turned into spaces before whitespace is collapsed.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]")
_HSPACE_RE = re.compile(r"[^\S\n]+")  # any whitespace except newline
_ANY_SPACE_RE = re.compile(r"\s+")
_BLANK_LINE_RE = re.compile(r"\n[^\S\n]*\n\s*")
_HEADING_LEVEL_RE = re.compile(r"heading\s*(\d+)", re.IGNORECASE)


def _squash(text: str) -> str:
    """Collapse all whitespace (newlines included) to single spaces: flowing prose from HTML/MD/DOCX."""
    return _ANY_SPACE_RE.sub(" ", _CONTROL_RE.sub(" ", text)).strip()


def _tidy_lines(text: str) -> str:
    """Collapse horizontal whitespace but keep line breaks: plain text, PDF and code keep their layout."""
    text = _CONTROL_RE.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = (_HSPACE_RE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _tidy_code(text: str) -> str:
    """Keep indentation of preformatted text (it is meaningful in code); trim only line ends."""
    text = _CONTROL_RE.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _paragraphs(text: str) -> list[str]:
    """Split on blank lines (and form feeds, which mark page breaks in plain-text exports)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    return _BLANK_LINE_RE.split(text)


def _clip_title(title: str | None) -> str | None:
    if title is None:
        return None
    title = _squash(title)
    return title[:_MAX_TITLE_CHARS].rstrip() or None


def _title_from_filename(filename: str) -> str:
    """Fallback title: the file stem made readable ("install_guide-v2" -> "install guide v2")."""
    name = pathlib.PurePosixPath(filename.replace("\\", "/")).name
    stem = pathlib.PurePosixPath(name).stem or name
    return _squash(re.sub(r"[_-]+", " ", stem)) or name or "untitled"


def _suffix_of(filename: str) -> str:
    # Uploads from Windows browsers may carry backslash paths; only the final name matters.
    return pathlib.PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover - loop always returns


class _SectionPath:
    """Tracks the heading stack so every block knows the nearest heading path above it."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def enter(self, level: int, text: str) -> str:
        """Register a heading of `level` (1 = top) and return the new path string."""
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        return self.current or text

    @property
    def current(self) -> str | None:
        return _SECTION_SEP.join(text for _, text in self._stack) or None


def _add(blocks: list[Block], text: str, section: str | None, page: int | None = None) -> None:
    """Append a block unless it is empty; callers pass already-normalised text."""
    if text and not text.isspace():
        blocks.append(Block(text=text, section=section, page=page))


# --------------------------------------------------------------------------------------------------
# Text decoding (shared by .txt, .md)
# --------------------------------------------------------------------------------------------------

_UNICODE_BOMS: tuple[tuple[bytes, str], ...] = (
    # UTF-32 first: its LE BOM starts with the UTF-16 LE BOM.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_BINARY_SNIFF_BYTES = 8192
_BINARY_CONTROL_RATIO = 0.30
_TEXT_CONTROLS = frozenset(b"\t\n\r\f")


def _looks_binary(data: bytes) -> bool:
    """NUL bytes or a control-character soup mean an executable, image or archive renamed to .txt."""
    if b"\x00" in data:
        return True
    head = data[:_BINARY_SNIFF_BYTES]
    controls = sum(1 for byte in head if (byte < 0x20 and byte not in _TEXT_CONTROLS) or byte == 0x7F)
    return bool(head) and controls / len(head) > _BINARY_CONTROL_RATIO


def _detect_and_decode(data: bytes) -> str | None:
    """Best-effort legacy-encoding decode when the bytes are not UTF-8.

    charset_normalizer alone is unreliable on short Western-European text (it happily reports cp775 or
    cp1250 for French cp1252, turning "naïve" into "naďve"). Windows-1252 is by far the most common
    non-UTF-8 encoding of such files (and the WHATWG default), so it wins whenever the detector rates it
    as good as its top pick.
    """
    results = from_bytes(data)
    if not results:
        # The default chaos threshold rejects some legitimate short texts (dense Polish cp1250, say);
        # a looser second pass still beats guessing blindly.
        results = from_bytes(data, threshold=0.5)
    best = results.best()
    if best is not None:
        chosen = best
        for match in results:
            if (
                match.encoding == "cp1252"
                and match.chaos <= best.chaos + 0.05
                and match.coherence >= best.coherence - 0.05
            ):
                chosen = match
                break
        logger.info("text is not UTF-8; decoding as %s", chosen.encoding)
        return str(chosen)
    # The detector found nothing plausible; a strict cp1252 decode keeps the ASCII majority
    # searchable rather than rejecting the file outright.
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    logger.warning("encoding detection failed; falling back to cp1252")
    return text


def _decode_text(data: bytes) -> str:
    """Decode bytes that claim to be text: BOM, then UTF-8, then detection; reject binaries."""
    for bom, encoding in _UNICODE_BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)  # these codecs consume the BOM themselves
            except UnicodeDecodeError as exc:
                raise LoaderError(f"undecodable text (invalid {encoding} after BOM)") from exc
    if _looks_binary(data):
        raise LoaderError("binary content, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = _detect_and_decode(data)
    if text is None:
        raise LoaderError("undecodable text (tried utf-8 and detection)")
    return text


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


def _load_markdown(data: bytes, limits: LoadLimits) -> _Parsed:
    """Markdown via markdown-it's token stream, so `#` inside fenced code is never a heading."""
    fm_title, source = _split_front_matter(_decode_text(data))
    # commonmark's default maxNesting (20) silently drops content below ~6 list levels; 100 is what
    # markdown-it's own "default" preset uses and still keeps the recursive parser shallow.
    parser = MarkdownIt("commonmark", {"html": True, "maxNesting": 100}).enable("table")
    tokens = parser.parse(source)

    blocks: list[Block] = []
    sections = _SectionPath()
    first_h1: str | None = None
    heading_level: int | None = None
    row: list[str] | None = None

    for token in tokens:
        kind = token.type
        if kind == "heading_open":
            heading_level = int(token.tag[1:])
        elif kind == "heading_close":
            heading_level = None
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close":
            if row is not None:
                _add(blocks, " | ".join(cell for cell in row if cell), sections.current)
            row = None
        elif kind == "inline":
            text = _md_inline_text(token)
            if heading_level is not None:
                if text:
                    path = sections.enter(heading_level, text)
                    if heading_level == 1 and first_h1 is None:
                        first_h1 = text
                    _add(blocks, text, path)
            elif row is not None:
                row.append(text)
            else:
                _add(blocks, text, sections.current)
        elif kind in ("fence", "code_block"):
            _add(blocks, _tidy_code(token.content), sections.current)
        elif kind == "html_block":
            _add(blocks, _html_fragment_text(token.content), sections.current)

    if not blocks and source.strip():
        # Pathological nesting (thousands of `>`) exceeds maxNesting and yields no tokens; the text is
        # still worth indexing as plain paragraphs.
        logger.warning("markdown structure unusable; indexing as plain text")
        blocks = [Block(text) for text in map(_tidy_lines, _paragraphs(source)) if text]
    return fm_title or first_h1, blocks


# --------------------------------------------------------------------------------------------------
# .html / .htm
# --------------------------------------------------------------------------------------------------

# Chrome, scripts and widgets: not document content.
_HTML_DROP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "nav", "footer", "svg", "form", "head", "iframe", "object"}
)
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
            if name == "pre":
                self._pre_depth -= 1
                if not self._pre_depth:
                    text = _tidy_code(self._take())
                    if self._row is not None or self._heading is not None:
                        self._buf.append(text)
                    else:
                        _add(self.blocks, text, self.sections.current)
            return
        if name in _HTML_HEADINGS and self._heading == _HTML_HEADINGS[name]:
            text = _squash(self._take())
            level, self._heading = self._heading, None
            if text:
                path = self.sections.enter(level, text)
                if level == 1 and self.first_h1 is None:
                    self.first_h1 = text
                _add(self.blocks, text, path)
        elif name in ("td", "th") and self._row is not None and not self._nested_rows:
            self._row.append(_squash(self._take()))
        elif name == "tr" and self._row is not None:
            if self._nested_rows:
                self._nested_rows -= 1
                return
            cells = [cell for cell in self._row if cell]
            trailing = _squash(self._take())  # text in a row outside any cell (malformed markup)
            if trailing:
                cells.append(trailing)
            self._row = None
            _add(self.blocks, " | ".join(cells), self.sections.current)
        elif name in _HTML_BLOCK_TAGS:
            self._flush()

    def text(self, value: str) -> None:
        self._buf.append(value)

    def finish(self) -> None:
        self._heading = None
        self._row = None
        self._flush()


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


# --------------------------------------------------------------------------------------------------
# .pdf
# --------------------------------------------------------------------------------------------------

# Producers stamp these when the author never set a title; they are worse than the file name.
_PLACEHOLDER_TITLES = frozenset({"untitled", "untitled document", "unknown", "none", "title", "document"})
_MAX_OUTLINE_ENTRIES = 10_000


def _short(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    return message[:200]


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


# --------------------------------------------------------------------------------------------------
# .docx
# --------------------------------------------------------------------------------------------------


def _check_docx_zip(data: bytes, limits: LoadLimits) -> None:
    """Validate the container cheaply before python-docx inflates anything.

    The declared sizes in the central directory bound what zipfile will ever return for a member,
    so summing them is a sound zip-bomb check that costs no decompression.
    """
    buffer = io.BytesIO(data)
    if not zipfile.is_zipfile(buffer):
        raise LoaderError("not a valid DOCX (not a zip archive)")
    try:
        with zipfile.ZipFile(buffer) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise LoaderError(f"not a valid DOCX (broken zip archive: {_short(exc)})") from exc
    total = sum(info.file_size for info in infos)
    if total > limits.max_uncompressed_bytes:
        raise LoaderError(
            f"DOCX expands beyond {_human_bytes(limits.max_uncompressed_bytes)} "
            f"(declares {_human_bytes(total)}; zip bomb?)"
        )
    if not any(info.filename == "word/document.xml" for info in infos):
        raise LoaderError("not a valid DOCX (no word/document.xml; is it another zip-based format?)")


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


# --------------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------------

_HANDLERS: dict[str, Callable[[bytes, LoadLimits], _Parsed]] = {
    ".txt": _load_txt,
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
}


def _check_suffix(filename: str) -> str:
    suffix = _suffix_of(filename)
    if suffix not in _HANDLERS:
        shown = suffix or "(none)"
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise LoaderError(f"unsupported file type '{shown}' (supported: {supported})")
    return suffix


def _too_large(size: int, limits: LoadLimits) -> LoaderError:
    return LoaderError(f"file too large: {_human_bytes(size)} (limit {_human_bytes(limits.max_file_bytes)})")


def load_bytes(data: bytes, filename: str, source: str, limits: LoadLimits = _DEFAULT_LIMITS) -> LoadedDocument:
    """Parse `data` according to `filename`'s suffix into a `LoadedDocument` identified by `source`.

    Raises `LoaderError` (and only that, bar KeyboardInterrupt/SystemExit) for anything that makes the
    file unusable, so callers can report per-file failures without guarding against parser internals.
    """
    suffix = _check_suffix(filename)
    if len(data) > limits.max_file_bytes:
        raise _too_large(len(data), limits)
    if not data:
        raise LoaderError("empty file")

    try:
        title, blocks = _HANDLERS[suffix](data, limits)
    except LoaderError:
        raise
    except Exception as exc:  # MemoryError and RecursionError included; KeyboardInterrupt is not
        logger.warning("unexpected %s while loading %s", type(exc).__name__, source, exc_info=True)
        reason = f"unreadable {suffix} file: {type(exc).__name__}: {exc}"
        raise LoaderError(reason[:_MAX_REASON_CHARS]) from exc

    if not blocks:
        raise LoaderError("no extractable text")
    logger.debug("loaded %s: %d blocks", source, len(blocks))
    return LoadedDocument(
        source=source,
        title=title or _title_from_filename(filename),
        blocks=blocks,
        content_hash=sha256_hex(data),
        media_type=MEDIA_TYPES[suffix],
    )


def load_path(path: pathlib.Path, source: str | None = None, limits: LoadLimits = _DEFAULT_LIMITS) -> LoadedDocument:
    """Load a file from disk; `source` defaults to its resolved absolute path.

    The type and size are checked from the name and `stat()` before a single byte is read, so an
    oversized file costs nothing; the read itself is capped too, in case the file grows meanwhile.
    """
    path = pathlib.Path(path)
    _check_suffix(path.name)
    try:
        info = path.stat()
    except OSError as exc:
        raise LoaderError(f"cannot read file: {exc.strerror or exc}") from exc
    if not path.is_file():
        raise LoaderError("not a regular file")
    if info.st_size > limits.max_file_bytes:
        raise _too_large(info.st_size, limits)
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except OSError as exc:
        raise LoaderError(f"cannot read file: {exc.strerror or exc}") from exc
    return load_bytes(data, path.name, source if source is not None else str(path.resolve()), limits)
