"""Text repair at load: mojibake and broken Unicode fixed (ftfy), then NFC.

Why: documents carry double-encoded UTF-8 ("cafÃ©", "ðŸ“Š" for "café", "📊") from tools that read UTF-8 as
Windows-1252 and saved it again; left as it is, it lands in chunks, embeddings, prompts and citations, and a
question typed with the real characters does not match. ftfy undoes exactly those encoding mistakes and leaves
text that is not broken alone. Only repairs: quotes stay curly, ligatures and full-width characters stay, line
breaks stay (the loaders' own tidying decides layout), HTML entities are not unescaped (a Markdown "&amp;" is
what its author wrote). NFC makes "é" one code point whichever way it was typed.

The document's identity does not change: ``content_hash`` is the hash of the original bytes.
"""

from __future__ import annotations

import unicodedata

import ftfy

from services.core.types import Block

_REPAIRS = ftfy.TextFixerConfig(
    unescape_html=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    normalization="NFC",
    explain=False,
)


def repair_text(text: str) -> str:
    """``text`` with encoding mistakes undone and NFC-normalised (ASCII comes back as it is, at no cost)."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", ftfy.fix_text(text, config=_REPAIRS))


def repair_blocks(blocks: list[Block]) -> list[Block]:
    """Each block's text and section path repaired (a block is immutable: new ones where anything changed)."""
    out = []
    for block in blocks:
        text, section = repair_text(block.text), repair_text(block.section) if block.section else block.section
        same = (text, section) == (block.text, block.section)
        out.append(block if same else Block(text, section, block.page, table=block.table))
    return out
