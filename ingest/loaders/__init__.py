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

import logging
import pathlib
from collections.abc import Callable

from ingest.loaders.base import (
    _DEFAULT_LIMITS,
    _MAX_REASON_CHARS,
    MEDIA_TYPES,
    SUPPORTED_SUFFIXES,
    LoaderError,
    LoadLimits,
    _human_bytes,
    _Parsed,
    _suffix_of,
    _title_from_filename,
)
from ingest.loaders.html import _load_html
from ingest.loaders.image import _load_image
from ingest.loaders.pdf import _load_pdf
from ingest.loaders.repair import repair_blocks, repair_text
from ingest.loaders.sheets import _load_csv, _load_xlsx
from ingest.loaders.text import _load_markdown, _load_txt
from ingest.loaders.word import _load_docx
from services.core.types import LoadedDocument, sha256_hex

logger = logging.getLogger(__name__)

__all__ = [
    "SUPPORTED_SUFFIXES",
    "LoadLimits",
    "LoaderError",
    "load_bytes",
    "load_path",
]


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
    ".csv": _load_csv,
    ".xlsx": _load_xlsx,
    ".png": _load_image,
    ".jpg": _load_image,
    ".jpeg": _load_image,
    ".tif": _load_image,
    ".tiff": _load_image,
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
        title, blocks, *more = _HANDLERS[suffix](data, limits)
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
        title=repair_text(title) if title else _title_from_filename(filename),
        blocks=repair_blocks(blocks),
        notes=list(more[0]) if more else [],
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
