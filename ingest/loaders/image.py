"""Images (PNG, JPEG, TIFF: a scan, a photo of a page, a screenshot) read by OCR; each TIFF frame a page."""

from __future__ import annotations

import io

from ingest.loaders import ocr
from ingest.loaders.base import LoaderError, LoadLimits, _add, _paragraph_texts, _Parsed, _short
from services.core.types import Block


def _load_image(data: bytes, limits: LoadLimits) -> _Parsed:
    """The text Tesseract finds in each frame; a frame it cannot read is named in the notes, an image it can read
    nothing of fails with that reason."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    if not limits.ocr:
        raise LoaderError("an image is read by OCR, which is off (RAG_OCR=false)")
    if not ocr.available():
        raise LoaderError("an image is read by OCR: tesseract is not installed (make ocr-setup)")
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > limits.max_image_pixels:
            raise LoaderError(f"image of {width}x{height} pixels, over the {limits.max_image_pixels:,} limit")
        frames = [frame.convert("RGB") for frame in ImageSequence.Iterator(image)]
    except LoaderError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise LoaderError(f"not a readable image: {_short(exc)}") from exc
    blocks: list[Block] = []
    notes: list[str] = []
    for index, frame in enumerate(frames):
        page = index + 1 if len(frames) > 1 else None
        found = ocr.ocr_image(frame, limits.ocr_language)
        for text in _paragraph_texts(found.text):
            _add(blocks, text, None, page)
        where = f"page {page}" if page else "the image"
        notes.append(f"OCR read {where} (mean word confidence {found.confidence:.0f}, of 100)" if found.text.strip()
                     else f"{where}: OCR found no text")  # fmt: skip
    if not blocks:
        raise LoaderError("OCR found no text in the image")
    return None, blocks, notes
