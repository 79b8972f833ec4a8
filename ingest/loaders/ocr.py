"""OCR with Tesseract (Debian's tesseract-ocr, run as a process): PDF pages that have no text layer, and images.

Why a process and not a binding: the binary is what Debian ships and the images install, one call per page
keeps a crash or a hang (bounded by a timeout) to that page, and nothing is loaded in the worker. Pages are
rendered by pdfium (pypdfium2) at ``RAG_OCR_DPI``; only pages without text are rendered, so a born-digital PDF
costs nothing. Each OCR'd page's mean word confidence (0-100) is reported in the document's notes, and a page
OCR cannot read is named there, never left silently empty.
"""

from __future__ import annotations

import contextlib
import io
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.loaders.base import LoaderError, _short

if TYPE_CHECKING:
    from PIL.Image import Image

TESSERACT = "tesseract"
_TIMEOUT_S = 120.0  # one page; a page that takes longer is reported unreadable, the rest still load
_MIN_CONFIDENCE = 30.0  # words Tesseract is less sure of are noise more often than text (speckles, rules)


@dataclass(frozen=True, slots=True)
class OcrText:
    """One page's text as Tesseract read it: paragraphs separated by blank lines, and its mean word confidence."""

    text: str
    confidence: float  # mean over the words kept, 0-100; 0 when none
    words: int


def available() -> bool:
    return shutil.which(TESSERACT) is not None


def ocr_image(image: Image, language: str) -> OcrText:
    """Tesseract over one image (any mode; sent as PNG on stdin, read back as TSV)."""
    png = io.BytesIO()
    image.save(png, format="PNG")
    try:
        result = subprocess.run(
            [TESSERACT, "stdin", "stdout", "-l", language, "tsv"],
            input=png.getvalue(),
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LoaderError(f"OCR took over {_TIMEOUT_S:.0f} s") from exc
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise LoaderError(f"OCR failed: {_short(RuntimeError(message[-1] if message else result.returncode))}")
    return _from_tsv(result.stdout.decode("utf-8", errors="replace"))


def _from_tsv(tsv: str) -> OcrText:
    """Words (TSV level 5) regrouped into lines and paragraphs, low-confidence words left out."""
    paragraphs: dict[tuple[int, int], dict[int, list[str]]] = {}
    confidences: list[float] = []
    for line in tsv.splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        confidence = float(cols[10])
        if confidence < _MIN_CONFIDENCE:
            continue
        confidences.append(confidence)
        key = (int(cols[2]), int(cols[3]))  # block, paragraph
        paragraphs.setdefault(key, {}).setdefault(int(cols[4]), []).append(cols[11].strip())
    text = "\n\n".join("\n".join(" ".join(words) for words in lines.values()) for lines in paragraphs.values())
    mean = round(sum(confidences) / len(confidences), 1) if confidences else 0.0
    return OcrText(text, mean, len(confidences))


RENDER_MEMORY_BYTES = 512 * 1024 * 1024  # the render child's address space: a hostile page dies there, alone
_RENDER_BATCH = 16  # pages per render child: its start-up is paid once per batch, its disk use stays small


def render_pdf_pages(data: bytes, indexes: list[int], dpi: int) -> Iterator[tuple[int, Image | None]]:
    """Each page (0-based ``indexes``) of a PDF as an image, or None where it could not be rendered.

    pdfium runs in a child process (``python -m ingest.loaders.ocr render``) with its address space capped at
    ``RENDER_MEMORY_BYTES`` and a timeout: a page whose content stream inflates to gigabytes (a PDF bomb) kills
    that child, not the worker, and is reported unreadable like any page OCR cannot read.
    """
    from PIL import Image as PILImage

    with tempfile.TemporaryDirectory(prefix="ocr-") as folder:
        pdf = Path(folder) / "in.pdf"
        pdf.write_bytes(data)  # once per document; each batch's child reads it
        for start in range(0, len(indexes), _RENDER_BATCH):
            batch = indexes[start : start + _RENDER_BATCH]
            argv = [sys.executable, "-m", "ingest.loaders.ocr", "render", str(pdf), str(dpi), *map(str, batch)]
            with contextlib.suppress(subprocess.TimeoutExpired):  # the pages it did not write are reported unreadable
                subprocess.run(argv, capture_output=True, timeout=_TIMEOUT_S * len(batch), check=False)
            for index in batch:
                png = Path(folder) / f"{index}.png"
                yield index, (PILImage.open(png).copy() if png.exists() else None)
                png.unlink(missing_ok=True)  # the disk holds one batch of pages at most


def _render_main(argv: list[str]) -> int:
    """``python -m ingest.loaders.ocr render PDF DPI INDEX...``: each page to ``<PDF's folder>/<INDEX>.png``.
    The child caps its own address space first (not ``preexec_fn``, which is unsafe in a threaded parent)."""
    resource.setrlimit(resource.RLIMIT_AS, (RENDER_MEMORY_BYTES, RENDER_MEMORY_BYTES))
    import pypdfium2 as pdfium

    pdf_path, dpi, indexes = Path(argv[0]), int(argv[1]), [int(i) for i in argv[2:]]
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        for index in indexes:
            image = pdf[index].render(scale=dpi / 72).to_pil()
            image.save(pdf_path.parent / f"{index}.png.tmp", format="PNG")
            (pdf_path.parent / f"{index}.png.tmp").rename(pdf_path.parent / f"{index}.png")
    finally:
        pdf.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["render"]:
        sys.stderr.write("usage: python -m ingest.loaders.ocr render PDF DPI INDEX...\n")
        raise SystemExit(2)
    raise SystemExit(_render_main(sys.argv[2:]))
