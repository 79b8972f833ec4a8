"""OCR with the real Tesseract (Debian's tesseract-ocr, which make test installs): PDFs made from images of text,
a PDF with one born-digital and one scanned page, images, and the cases OCR cannot help with."""

from __future__ import annotations

import io

import pypdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from ingest.loaders import LoaderError, LoadLimits, load_bytes
from ingest.loaders import ocr as ocr_module
from services.core.types import sha256_hex

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not ocr_module.available(), reason="needs tesseract (make test installs tesseract-ocr)"),
]

LINES = ["The boiler is serviced every October.", "Invoices are due within thirty days."]


def page_image(lines: list[str] = LINES) -> Image.Image:
    """A page of text as a scanner would give it: pixels, no text layer."""
    image = Image.new("RGB", (1400, 120 + 100 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    for i, line in enumerate(lines):
        draw.text((40, 60 + 100 * i), line, fill="black", font=font)
    return image


def scanned_pdf(*pages: Image.Image) -> bytes:
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", resolution=150, save_all=True, append_images=list(pages[1:]))
    return buffer.getvalue()


def test_a_scanned_pdf_is_read_by_ocr_with_its_confidence_in_the_notes() -> None:
    data = scanned_pdf(page_image())
    doc = load_bytes(data, "scan.pdf", "upload://scan.pdf")
    assert [b.text for b in doc.blocks] == LINES and {b.page for b in doc.blocks} == {1}
    [note] = doc.notes
    assert note.startswith("OCR read page 1 (mean word confidence ") and int(note.split()[-3].rstrip(",")) >= 80
    assert doc.content_hash == sha256_hex(data)


def test_only_the_pages_without_a_text_layer_are_ocrd() -> None:
    from reportlab.pdfgen import canvas

    born_digital = io.BytesIO()
    pdf = canvas.Canvas(born_digital)
    for line in ("Revenue grew by twelve percent.", "Hiring continues in Lisbon."):
        pdf.drawString(72, 750, line)
        pdf.showPage()
    pdf.save()
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(born_digital.getvalue()))
    writer.append(pypdf.PdfReader(io.BytesIO(scanned_pdf(page_image(["Page three was scanned."])))))
    buffer = io.BytesIO()
    writer.write(buffer)
    doc = load_bytes(buffer.getvalue(), "mixed.pdf", "s")
    by_page = {b.page: b.text for b in doc.blocks}
    assert "Revenue grew by twelve percent." in by_page[1] and by_page[3] == "Page three was scanned."
    assert doc.notes and doc.notes[0].startswith("OCR read page 3 ")  # pages 1-2 had text: not rendered


def test_a_page_ocr_cannot_read_is_named_and_the_rest_loads() -> None:
    blank = Image.new("RGB", (1400, 400), "white")
    doc = load_bytes(scanned_pdf(page_image(), blank), "half.pdf", "s")
    assert [b.text for b in doc.blocks] == LINES
    assert "page 2: no text layer, and OCR found no text" in doc.notes
    with pytest.raises(LoaderError, match="OCR found no text"):
        load_bytes(scanned_pdf(blank), "blank.pdf", "s")


def test_with_ocr_off_a_scan_fails_saying_so() -> None:
    with pytest.raises(LoaderError, match=r"page 1: no text layer, not read: OCR is off \(RAG_OCR=false\)"):
        load_bytes(scanned_pdf(page_image()), "scan.pdf", "s", LoadLimits(ocr=False))


@pytest.mark.parametrize(("suffix", "format_"), [(".png", "PNG"), (".jpg", "JPEG")])
def test_an_image_is_read_by_ocr(suffix: str, format_: str) -> None:
    buffer = io.BytesIO()
    page_image().save(buffer, format_)
    doc = load_bytes(buffer.getvalue(), f"photo{suffix}", "s")
    assert " ".join(b.text for b in doc.blocks) == " ".join(LINES)
    assert doc.media_type.startswith("image/") and doc.notes[0].startswith("OCR read the image")


def test_each_tiff_frame_is_a_page() -> None:
    buffer = io.BytesIO()
    first, second = page_image(["First page text here."]), page_image(["Second page text here."])
    first.save(buffer, "TIFF", save_all=True, append_images=[second])
    doc = load_bytes(buffer.getvalue(), "fax.tiff", "s")
    assert [(b.page, b.text) for b in doc.blocks] == [(1, "First page text here."), (2, "Second page text here.")]


def test_images_that_cannot_be_read_fail_with_a_reason() -> None:
    with pytest.raises(LoaderError, match="not a readable image"):
        load_bytes(b"\x89PNG\r\n\x1a\n not really", "broken.png", "s")
    with pytest.raises(LoaderError, match="over the 1,000 limit"):
        buffer = io.BytesIO()
        page_image().save(buffer, "PNG")
        load_bytes(buffer.getvalue(), "huge.png", "s", LoadLimits(max_image_pixels=1000))
    blank = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(blank, "PNG")
    with pytest.raises(LoaderError, match="OCR found no text in the image"):
        load_bytes(blank.getvalue(), "blank.png", "s")
