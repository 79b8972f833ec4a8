"""Structure-first, token-aware chunking.

Order of preference when cutting: page > section > sentence > word (paragraph breaks are kept as line
breaks but not sought as cut points, as before). Sizes are counted with
the embedder's own tokenizer, so a chunk is never silently truncated by the model: the hard ceiling is
``min(chunk_size, embedder.max_tokens)``.

Small sections are merged, not cut one by one (a Markdown file of many three-line sections used to give
chunks of ~150 bytes, some of them a bare heading): consecutive sections of one page go whole into a
chunk until the next one would overflow it, and then that one starts the next chunk. A section bigger
than a chunk starts a fresh chunk and is split inside it (sentence > word); consecutive chunks of one
section share up to ``chunk_overlap`` tokens (whole trailing sentences when they fit, else the tail
words of the last one) so an answer that straddles a cut is still retrievable from one chunk. The
sections after a big one may fill its last chunk. Chunks never span two pages, so a PDF chunk's page
is the page its whole text is on.

The loaders emit every heading as a block of its own (its text, with the heading path as section), so a
merged chunk keeps each merged section's heading line in front of that section's body. A heading is
never a chunk by itself: a section that holds nothing but its heading joins the section after it (at
the end of a page, the one before it), and a heading whose first sentence does not fit beside it takes
that sentence's first words along. Headings still end up without content of their own only where
no content follows on their page: on a page holding nothing but headings, or at the end of a page
when the chunk before them is full (then they share a chunk with the carried overlap, if any).
Dropping them would lose text, and joining another page would make the page number wrong.

Output is a pure function of the document and the settings (ingest derives chunk ids from it).

Usage::

    chunker = Chunker(embedder.count_tokens, chunk_size=200, chunk_overlap=40, max_tokens=embedder.max_tokens)
    chunks = chunker.split(loaded_document)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import groupby

from services.core.types import Block, Chunk, LoadedDocument

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_WORD = re.compile(r"\S+")
_PATH_SEP = " > "  # how the loaders join a heading path (ingest.loaders.base)


@dataclass(slots=True)
class _Unit:
    text: str
    tokens: int
    block: int  # index of the block on its page: units of one block join with a space, else a newline
    section: str | None = None
    heading: bool = False  # part of a heading line (a block the loader emitted for the heading itself)


def _is_heading(block: Block) -> bool:
    """A block whose text is the last step of its own heading path is that heading's line."""
    text = block.text.strip()
    section = block.section
    return bool(text) and section is not None and (section == text or section.endswith(_PATH_SEP + text))


def _section_of(units: list[_Unit]) -> str | None:
    """The section a chunk is cited by: the first one whose content (not just its heading) it holds.

    Citations print "title — section" and readers look there for the quoted text, so the section where
    the chunk's content starts is the useful one; the later sections merged in show up as heading lines
    inside the text. A joined list ("A; B; C") would grow with every tiny section merged and would no
    longer be a heading path. A heading-only section merged in front belongs to the section it
    introduces, so it does not name the chunk.
    """
    return next((u.section for u in units if not u.heading), units[0].section)


class Chunker:
    # Part of every file's index signature: a change in how text is cut re-chunks (and re-embeds) stored files
    # on the next sync instead of leaving them cut the old way. 2: small consecutive sections merge. 3: tables
    # (Markdown, from the loaders) stay whole when they fit, else split by rows with the header repeated.
    VERSION = 3

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        *,
        chunk_size: int,
        chunk_overlap: int,
        max_tokens: int | None = None,
        merge_sections: bool = True,
    ) -> None:
        if chunk_overlap >= chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        self.count_tokens = count_tokens
        self.limit = min(chunk_size, max_tokens) if max_tokens else chunk_size
        self.overlap = min(chunk_overlap, self.limit - 1)
        # False cuts as version 1 did: every section on its own, a heading-only section a chunk by itself.
        # Only for measuring what merging buys (python -m bench.chunking); the pipeline always merges.
        self.merge_sections = merge_sections

    def split(self, doc: LoadedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for page, blocks in groupby(doc.blocks, key=lambda b: b.page):
            for units in self._chunk_page(list(blocks)):
                text = self._join(units)
                chunks.append(
                    Chunk(
                        doc_id=doc.doc_id,
                        source=doc.source,
                        title=doc.title,
                        section=_section_of(units),
                        page=page,
                        chunk_index=len(chunks),
                        text=text,
                        content_hash=doc.content_hash,
                        n_tokens=self.count_tokens(text),
                        tags=tuple(doc.tags),
                    )
                )
        return chunks

    # -- sections: merged while they fit, split when one alone does not ---------------------------

    def _chunk_page(self, blocks: list[Block]) -> Iterator[list[_Unit]]:
        current: list[_Unit] = []
        for part in self._parts(blocks):
            if current and self.merge_sections and self._count([*current, *part]) <= self.limit:
                current = [*current, *part]
                continue
            if current:
                yield current
            if self._count(part) <= self.limit:
                current = part
                continue
            # Too big for one chunk: split it; its last piece may still take the sections after it.
            *full, current = self._pack(part)
            yield from full
        if current:
            yield current

    def _parts(self, blocks: list[Block]) -> list[list[_Unit]]:
        """The units of each section of the page, heading-only sections glued to the one they introduce."""
        parts: list[list[_Unit]] = []
        waiting: list[_Unit] = []  # heading-only sections not yet followed by content
        for _, run in groupby(enumerate(blocks), key=lambda item: item[1].section):
            for units in self._section_parts(list(run)):
                if self.merge_sections and all(u.heading for u in units):
                    waiting.extend(units)
                    continue
                parts.append([*waiting, *units])
                waiting = []
        if waiting:  # headings at the end of the page: nothing follows, so they join what precedes
            if parts:
                parts[-1].extend(waiting)
            else:
                parts.append(waiting)
        return parts

    def _section_parts(self, run: list[tuple[int, Block]]) -> list[list[_Unit]]:
        """One section's units: all in one part, except that each table is a part (or, too big for one
        chunk, a part per group of rows) of its own, so no cut falls inside a row or loses the header."""
        parts: list[list[_Unit]] = []
        text: list[_Unit] = []
        for index, block in run:
            if not block.table:
                text.extend(self._units(block, index))
                continue
            if text:
                parts.append(text)
                text = []
            parts.extend(self._table_parts(block, index))
        if text:
            parts.append(text)
        return parts

    def _table_parts(self, block: Block, index: int) -> list[list[_Unit]]:
        """A Markdown table whole when it fits, else groups of whole rows under the repeated header row; a row
        too long even alone is cut by words like any long sentence (its cells then read as text)."""
        n = self.count_tokens(block.text)
        if n <= self.limit:
            return [[_Unit(block.text, n, index, block.section)]]
        lines = block.text.split("\n")
        header, rows = "\n".join(lines[:2]), lines[2:]
        parts: list[list[_Unit]] = []
        group: list[str] = []
        for row in rows:
            candidate = "\n".join([header, *group, row])
            if self.count_tokens(candidate) <= self.limit:
                group.append(row)
                continue
            if group:
                parts.append([self._table_unit(header, group, index, block.section)])
                group = []
            if self.count_tokens(f"{header}\n{row}") <= self.limit:
                group = [row]
            else:
                parts.append(self._sized(row, index, block.section, heading=False))
        if group:
            parts.append([self._table_unit(header, group, index, block.section)])
        return parts

    def _table_unit(self, header: str, rows: list[str], index: int, section: str | None) -> _Unit:
        text = "\n".join([header, *rows])
        return _Unit(text, self.count_tokens(text), index, section)

    # -- units: sentences, or word windows for sentences longer than the limit -------------------

    def _units(self, block: Block, index: int) -> list[_Unit]:
        heading = _is_heading(block)
        units: list[_Unit] = []
        for sentence in _SENTENCE_END.split(block.text):
            sentence = sentence.strip()
            if sentence:
                units.extend(self._sized(sentence, index, block.section, heading))
        return units

    def _sized(self, text: str, block: int, section: str | None, heading: bool) -> list[_Unit]:
        n = self.count_tokens(text)
        if n <= self.limit:
            return [_Unit(text, n, block, section, heading)]
        return [_Unit(t, k, block, section, heading) for t, k in self._word_windows(text)]

    def _word_windows(self, text: str) -> Iterator[tuple[str, int]]:
        words = _WORD.findall(text)
        start = 0
        while start < len(words):
            end = self._fit_words(words, start)
            piece = " ".join(words[start:end])
            yield piece, self.count_tokens(piece)
            start = end

    def _fit_words(self, words: list[str], start: int) -> int:
        """Largest end such that words[start:end] fits the limit (at least one word, cut by characters).

        Every word is at least one token, so no window holds more than ``limit`` words: bounding the
        search there keeps a huge single-sentence file linear (searching up to the end of the file made a
        256 KiB line take 100 s, since every probe re-tokenised the whole rest of the text).
        """
        lo, hi = start + 1, min(len(words), start + self.limit)
        if self.count_tokens(" ".join(words[start:lo])) > self.limit:
            # A single "word" longer than the limit (a URL, a base64 blob): cut it by characters.
            words[start : start + 1] = list(self._char_windows(words[start]))
            return start + 1
        while lo < hi:  # binary search: token counts are monotone in the number of words
            mid = (lo + hi + 1) // 2
            if self.count_tokens(" ".join(words[start:mid])) <= self.limit:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _char_windows(self, word: str) -> Iterator[str]:
        i = 0
        while i < len(word):
            piece = word[i : i + max(1, self.limit)]  # one token is at least one character
            while len(piece) > 1 and self.count_tokens(piece) > self.limit:
                piece = piece[: len(piece) // 2]
            yield piece
            i += len(piece)  # advance by what was emitted: nothing is dropped

    # -- packing with overlap -----------------------------------------------------------------

    def _pack(self, units: list[_Unit]) -> list[list[_Unit]]:
        units = list(units)  # the first sentence after a heading may be cut in two below
        pieces: list[list[_Unit]] = []
        current: list[_Unit] = []
        fresh = 0  # units in `current` that are not overlap carried from the previous chunk
        i = 0
        while i < len(units):
            candidate = [*current, units[i]]
            if self._count(candidate) <= self.limit:
                current, fresh, i = candidate, fresh + 1, i + 1
                continue
            if fresh == 0:
                # The carried overlap leaves no room for the next unit: drop overlap, oldest first.
                current = current[1:]
                continue
            if all(u.heading for u in current) and not units[i].heading:
                # A heading must not end up alone: it takes the first words of its first sentence.
                cut = self._cut_after(current, units[i])
                if cut:
                    units[i : i + 1] = cut
                    continue
                run = self._split_heading_run(current, units[i])
                if run:
                    pieces.append(run[0])
                    current = run[1]
                    fresh = len(current)
                    continue
            pieces.append(current)
            current, fresh = self._tail(current), 0
        if fresh:
            pieces.append(current)
        return pieces

    def _split_heading_run(self, run: list[_Unit], unit: _Unit) -> tuple[list[_Unit], list[_Unit]] | None:
        """A run of headings (of empty sections) so long that no word of `unit` fits beside it all:
        its first headings go out with as many first words of `unit` as fit, the rest stay for the
        next chunk, which holds those words again. A few repeated words beat a chunk that is a table of
        contents: such a chunk matches every query about its sections and answers none.
        None when not even the first heading takes a word (then that heading is longer than a chunk)."""
        for j in range(len(run) - 1, 0, -1):
            head = self._cut_after(run[:j], unit)
            if head:
                return [*run[:j], head[0]], run[j:]
            if self._count([*run[:j], unit]) <= self.limit:
                return [*run[:j], unit], run[j:]
        return None

    def _cut_after(self, current: list[_Unit], unit: _Unit) -> list[_Unit]:
        """`unit` cut after as many words as fit beside `current` (which then fits), or [] if none do."""
        spans = [m.span() for m in _WORD.finditer(unit.text)]

        def head(k: int) -> _Unit:
            text = unit.text[: spans[k - 1][1]]
            return _Unit(text, self.count_tokens(text), unit.block, unit.section, unit.heading)

        lo, hi = 0, len(spans) - 1  # at least one word stays behind, or nothing was cut
        while lo < hi:  # binary search: token counts are monotone in the number of words
            mid = (lo + hi + 1) // 2
            if self._count([*current, head(mid)]) <= self.limit:
                lo = mid
            else:
                hi = mid - 1
        if lo == 0:
            return []
        rest = unit.text[spans[lo][0] :]
        return [head(lo), *self._sized(rest, unit.block, unit.section, unit.heading)]

    def _tail(self, units: list[_Unit]) -> list[_Unit]:
        if self.overlap <= 0:
            return []
        tail: list[_Unit] = []
        for unit in reversed(units):
            if self._count([unit, *tail]) > self.overlap:
                break
            tail.insert(0, unit)
        if tail:
            return tail
        # The last sentence alone is longer than the overlap: carry its last words instead.
        last = units[-1]
        words = _WORD.findall(last.text)
        lo, hi = 0, len(words)
        while lo < hi:  # fewest leading words to drop so the rest fits
            mid = (lo + hi) // 2
            if self.count_tokens(" ".join(words[mid:])) <= self.overlap:
                hi = mid
            else:
                lo = mid + 1
        piece = " ".join(words[lo:])
        return [_Unit(piece, self.count_tokens(piece), last.block, last.section, last.heading)] if piece else []

    def _count(self, units: list[_Unit]) -> int:
        # Summing per-unit counts is exact for WordPiece and close for BPE; counting the joined text
        # is always exact, and the limit is a promise, so count the real thing.
        return self.count_tokens(self._join(units))

    @staticmethod
    def _join(units: list[_Unit]) -> str:
        out: list[str] = []
        for j, unit in enumerate(units):
            if j:
                out.append(" " if unit.block == units[j - 1].block else "\n")
            out.append(unit.text)
        return "".join(out)
