"""A corpus of hostile and broken files, written at test time (nothing large is checked in).

Each entry says what a correct stack does with it: ``"skip"`` (rejected with a reason that contains
``reason``) or ``"ingest"`` (indexed, with ``expect`` in the chunk text). The bombs are built to expand to
``BOMB_BYTES`` (256 MiB) so that "memory stays bounded" is a claim that can fail: a parser that inflated
one of them would add hundreds of MiB to the process.

Usage::

    cases = write_hostile_corpus(tmp_path / "hostile")   # list[HostileCase]
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

BOMB_BYTES = 256 * 1024 * 1024
HUGE_LINE_BYTES = 64 * 1024
NESTED_HTML_DEPTH = 100_000


@dataclass(frozen=True, slots=True)
class HostileCase:
    name: str  # file name on disk and in the upload
    data: bytes
    outcome: Literal["skip", "ingest"]
    reason: str = ""  # substring of the skip reason (lower case)
    expect: str = ""  # substring of the indexed text when ingested (lower case)
    why: str = ""  # one line for the README table


def _pdf(text_lines: list[str]) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for page in range(3):
        y = 800
        for line in text_lines:
            pdf.drawString(72, y, f"{line} (page {page + 1})")
            y -= 18
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _encrypted_pdf() -> bytes:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(_pdf(["Confidential salary table for the finance team."])))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password="hunter2", owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _pdf_stream_bomb() -> bytes:
    """A one-page PDF whose content stream is 256 MiB of spaces deflated to about 500 KiB."""
    compressor = zlib.compressobj(9)
    block = b" " * (8 * 1024 * 1024)
    stream = b"".join(compressor.compress(block) for _ in range(BOMB_BYTES // len(block))) + compressor.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    b"</Types>"
)
_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    b'officeDocument" Target="word/document.xml"/></Relationships>'
)
_W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _deflated_zeros(size: int) -> tuple[bytes, int]:
    """Raw-deflate ``size`` zero bytes in slices (never holding them all); returns (data, crc32)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b"\0" * (8 * 1024 * 1024)
    crc = 0
    parts = []
    for _ in range(size // len(block)):
        crc = zlib.crc32(block, crc)
        parts.append(compressor.compress(block))
    parts.append(compressor.flush())
    return b"".join(parts), crc


def _zip_with_raw_member(name: str, compressed: bytes, crc: int, declared_size: int, others: dict[str, bytes]) -> bytes:
    """A zip whose member ``name`` holds ``compressed`` but declares ``declared_size`` uncompressed bytes."""
    out = io.BytesIO()
    central = []
    members = [(n, zlib.compress(d, 9)[2:-4], zlib.crc32(d), len(d)) for n, d in others.items()]
    members.append((name, compressed, crc, declared_size))
    for member, data, member_crc, size in members:
        offset = out.tell()
        encoded = member.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, member_crc, len(data), size, len(encoded), 0))
        out.write(encoded + data)
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0,
                member_crc,
                len(data),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )  # fmt: skip
            + encoded
        )
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(directory), start, 0))
    return out.getvalue()


def _docx_bombs() -> tuple[bytes, bytes]:
    """(honest, lying): both inflate to 256 MiB; the first says so in its central directory, the second
    declares 2 KiB, so only a reader that trusts the stream over the directory would inflate it."""
    compressed, crc = _deflated_zeros(BOMB_BYTES)
    others = {"[Content_Types].xml": _CONTENT_TYPES, "_rels/.rels": _RELS}
    honest = _zip_with_raw_member("word/document.xml", compressed, crc, BOMB_BYTES, others)
    lying = _zip_with_raw_member("word/document.xml", compressed, crc, 2048, others)
    return honest, lying


def _docx_billion_laughs() -> bytes:
    """document.xml with nested entity definitions that would expand to ~3 GB if entities were resolved."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{"".join(f"&lol{i - 1};" for _ in range(10))}">' for i in range(1, 10)
    ]
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<!DOCTYPE w:document [{''.join(entities)}]>"
        f"<w:document {_W.decode()}><w:body><w:p><w:r><w:t>Laughing matter &lol9;</w:t></w:r></w:p>"
        "<w:p><w:r><w:t>The quarterly lighthouse inspection found the lamp in good order.</w:t></w:r></w:p>"
        "</w:body></w:document>"
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", document)
    return buffer.getvalue()


def _odt_renamed_docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", "<office:document-content/>")
    return buffer.getvalue()


def _elf_binary() -> bytes:
    rng = random.Random(7)
    return b"\x7fELF\x02\x01\x01\0" + bytes(rng.randrange(256) for _ in range(64 * 1024))


def hostile_cases() -> list[HostileCase]:
    good_pdf = _pdf(["Annual rainfall in the valley averaged 812 millimetres.", "The reservoir was full in May."])
    bomb_docx, lying_docx = _docx_bombs()
    words = [
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
        "consectetur",
        "adipiscing",
        "elit",
        "sed",
        "do",
        "eiusmod",
        "tempor",
    ]
    rng = random.Random(3)
    huge_line = " ".join(rng.choice(words) for _ in range(HUGE_LINE_BYTES // 6))
    nested = "<div>" * NESTED_HTML_DEPTH + "Deep inside the nesting lives a narwhal." + "</div>" * NESTED_HTML_DEPTH
    return [
        HostileCase("truncated.pdf", good_pdf[: len(good_pdf) // 2], "skip", "pdf", why="PDF cut in half"),
        HostileCase("encrypted.pdf", _encrypted_pdf(), "skip", "encrypted", why="AES-encrypted PDF with a password"),
        HostileCase("not-a-pdf.pdf", b"%PDF-1.7\n" + b"garbage " * 100, "skip", "pdf", why="PDF header, no PDF"),
        HostileCase(
            "stream-bomb.pdf", _pdf_stream_bomb(), "skip", "no extractable text", why="content stream: 256 MiB inflated"
        ),
        HostileCase("bomb.docx", bomb_docx, "skip", "zip bomb", why="DOCX whose document.xml inflates to 256 MiB"),
        HostileCase(
            "lying-bomb.docx",
            lying_docx,
            "skip",
            "docx",
            why="same bomb, central directory lies (declares 2 KiB)",
        ),
        HostileCase(
            "billion-laughs.docx",
            _docx_billion_laughs(),
            "skip",
            "entity amplification",
            why="XML entity expansion (billion laughs) in document.xml",
        ),
        HostileCase("odt-renamed.docx", _odt_renamed_docx(), "skip", "word/document.xml", why="another zip format"),
        HostileCase("not-a-zip.docx", b"PK\x03\x04 this is not a zip", "skip", "docx", why="zip magic, no zip"),
        HostileCase(
            "huge-line.txt",
            huge_line.encode(),
            "ingest",
            expect="lorem",
            why=f"one {HUGE_LINE_BYTES // 1024} KiB line, no newline",
        ),
        HostileCase(
            "one-word.txt",
            b"x" * (64 * 1024),
            "ingest",
            expect="xxxx",
            why="64 KiB single word (no whitespace at all)",
        ),
        HostileCase("program.txt", _elf_binary(), "skip", "binary", why="ELF binary named .txt"),
        HostileCase("image.md", b"\x89PNG\r\n\x1a\n" + bytes(4096), "skip", "binary", why="PNG named .md"),
        HostileCase(
            "latin1.txt",
            "Le café de la gare ouvre à sept heures; crème brûlée à volonté.".encode("cp1252"),
            "ingest",
            expect="café",
            why="cp1252 text, no BOM",
        ),
        HostileCase(
            "utf16.txt",
            "The tide tables for the harbour are posted weekly.".encode("utf-16"),
            "ingest",
            expect="tide tables",
            why="UTF-16 with BOM",
        ),
        HostileCase(
            "shift-jis.md",
            "# 東京の天気\n\n明日の東京は晴れ、最高気温は二十五度の予報です。".encode("shift_jis"),
            "ingest",
            expect="東京",
            why="Shift-JIS Markdown",
        ),
        HostileCase(
            "lying-charset.html",
            b'<html><head><meta charset="utf-8"><title>Tea</title></head><body><p>Earl Grey \xe9t\xe9 '
            b"\xff\xfe blend of bergamot and black tea.</p></body></html>",
            "ingest",
            expect="bergamot",
            why="HTML says utf-8, holds invalid bytes",
        ),
        HostileCase("empty.txt", b"", "skip", "empty", why="0 bytes"),
        HostileCase("blank.md", b"   \n\n\t\n  \r\n", "skip", "no extractable text", why="whitespace only"),
        HostileCase(
            "empty.html",
            b"<html><body><script>x()</script></body></html>",
            "skip",
            "no extractable text",
            why="HTML with no visible text",
        ),  # fmt: skip
        HostileCase(
            "nested.html",
            nested.encode(),
            "ingest",
            expect="narwhal",
            why=f"{NESTED_HTML_DEPTH:,} nested <div>",
        ),
        HostileCase(
            "nested.md",
            ("> " * 5_000 + "A quote buried under five thousand levels about otters.\n").encode(),
            "ingest",
            expect="otters",
            why="5,000 nested block quotes",
        ),
        HostileCase("archive.zip", b"PK\x05\x06" + bytes(18), "skip", "unsupported file type", why="unsupported type"),
        HostileCase("noextension", b"plain words", "skip", "unsupported file type", why="no extension"),
    ]


# Upload names that try to escape, hide or smuggle (sent raw, control bytes included); each maps to the stored source.
TRAVERSAL_NAMES: dict[str, str] = {
    "../../etc/passwd.txt": "upload://passwd.txt",
    "..\\..\\windows\\win.ini.txt": "upload://win.ini.txt",
    "/etc/shadow.md": "upload://shadow.md",
    "....//....//secret.md": "upload://secret.md",
    ".hidden.md": "upload://hidden.md",
    "tab\tand\u202eRTL.md": "upload://tabandRTL.md",
    "nul\x00byte.txt": "upload://nulbyte.txt",
    "bell\x07\x1b[31mred.md": "upload://bell[31mred.md",
    "%2e%2e%2fencoded.md": "upload://%2e%2e%2fencoded.md",
}


def write_hostile_corpus(folder: Path, cases: list[HostileCase] | None = None) -> list[HostileCase]:
    folder.mkdir(parents=True, exist_ok=True)
    cases = cases if cases is not None else hostile_cases()
    for case in cases:
        (folder / case.name).write_bytes(case.data)
    return cases
