"""Shared by every loader: the error users see, the limits checked before parsing, text clean-up,
section paths and the decoding of bytes that claim to be text."""

from __future__ import annotations

import codecs
import io
import logging
import pathlib
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

from charset_normalizer import from_bytes

from services.core.types import Block

logger = logging.getLogger(__name__)


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
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(MEDIA_TYPES)


@dataclass(frozen=True)
class LoadLimits:
    """How files are read: resource ceilings, so one hostile or accidental upload cannot exhaust the ingest
    worker, and OCR (ingest/loaders/ocr.py) for pages without a text layer and for images."""

    max_file_bytes: int = 50 * 1024 * 1024
    # Zip-bomb guard for DOCX, checked on the zip central directory before any member is inflated.
    max_uncompressed_bytes: int = 200 * 1024 * 1024
    max_pdf_pages: int = 2000
    ocr: bool = True
    ocr_language: str = "eng"
    ocr_dpi: int = 300
    max_image_pixels: int = 100_000_000  # a decompression bomb is refused before it is decoded


_DEFAULT_LIMITS = LoadLimits()

# Parsed result of one format handler: (title found inside the document or None, blocks), and optionally notes
# for the person who uploaded it (which pages were OCR'd and how sure Tesseract was, which it could not read).
_Parsed = tuple[str | None, list[Block]] | tuple[str | None, list[Block], list[str]]

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


def _paragraph_texts(text: str) -> list[str]:
    """The non-empty paragraphs of page-like text (PDF, OCR), each with its line breaks kept and tidied."""
    return [t for t in (_tidy_lines(p) for p in _paragraphs(text)) if t]


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


def markdown_table(rows: Sequence[Sequence[str | None]]) -> str:
    """Rows of cells as a Markdown table, the first row its header: what every loader makes of a table (DOCX,
    HTML, Markdown, CSV, XLSX), so a chunk shows which column a value is in. Cells are squashed to one line,
    pipes escaped; short rows are padded and empty columns at the right dropped; a None cell (pdfplumber's empty
    cell) is empty. Empty when no cell has text."""
    cleaned = [[_squash(cell or "").replace("|", "\\|") for cell in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(max((i + 1 for i, cell in enumerate(row) if cell), default=0) for row in cleaned)
    lines = ["| " + " | ".join([*row[:width], *[""] * (width - len(row))]) + " |" for row in cleaned]
    return "\n".join([lines[0], "|" + "---|" * width, *lines[1:]])


def _add_table(
    blocks: list[Block], rows: Sequence[Sequence[str]], section: str | None, page: int | None = None
) -> None:
    """Append a table block (``markdown_table``); a one-row "table" (layout, or a lone header) stays text."""
    text = markdown_table(rows)
    if text.count("\n") < 2:  # empty, or a header alone
        _add(blocks, text.split("\n")[0].strip("| "), section, page)
        return
    blocks.append(Block(text=text, section=section, page=page, table=True))


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


# Elements whose text is never content (used by the HTML loader and for HTML embedded in Markdown).
_HTML_DROP_TAGS = frozenset(
    {"script", "style", "noscript", "template", "nav", "footer", "svg", "form", "head", "iframe", "object"}
)


def _short(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    return message[:200]


_VERIFY_SLICE = 64 * 1024


def check_office_zip(data: bytes, limits: LoadLimits, *, kind: str, required: str) -> None:
    """Validate an Office (zip) container before its parser inflates anything (DOCX, XLSX).

    First the declared sizes in the central directory (free). They may lie: ``zipfile``'s ``read()``
    inflates a whole member before cutting it to the declared size, so a member declaring 2 KiB can
    still allocate 512 MiB. Hence every member is then inflated once in 64 KiB slices, which stops at
    its declared size with a CRC error when it lies: memory stays at one slice, and the work at the
    declared total, which the first check bounded.
    """
    buffer = io.BytesIO(data)
    if not zipfile.is_zipfile(buffer):
        raise LoaderError(f"not a valid {kind} (not a zip archive)")
    try:
        with zipfile.ZipFile(buffer) as archive:
            infos = archive.infolist()
            total = sum(info.file_size for info in infos)
            if total > limits.max_uncompressed_bytes:
                raise LoaderError(
                    f"{kind} expands beyond {_human_bytes(limits.max_uncompressed_bytes)} "
                    f"(declares {_human_bytes(total)}; zip bomb?)"
                )
            if not any(info.filename == required for info in infos):
                raise LoaderError(f"not a valid {kind} (no {required}; is it another zip-based format?)")
            for info in infos:
                with archive.open(info) as member:
                    while member.read(_VERIFY_SLICE):
                        pass
    except LoaderError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise LoaderError(f"not a valid {kind} (broken zip archive: {_short(exc)})") from exc
