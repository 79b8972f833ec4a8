"""Structure-first, token-aware chunking.

Order of preference when cutting: section/page boundary > paragraph > sentence > word. Sizes are
counted with the embedder's own tokenizer, so a chunk is never silently truncated by the model: the
hard ceiling is ``min(chunk_size, embedder.max_tokens)``. Consecutive chunks of one section share up
to ``chunk_overlap`` tokens (whole trailing sentences when they fit, else the tail words of the last
one) so an answer that straddles a cut is still retrievable from one chunk.

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


@dataclass(slots=True)
class _Unit:
    text: str
    tokens: int
    block: int  # index of the block it came from: units of one block join with a space, else a newline


class Chunker:
    def __init__(
        self,
        count_tokens: Callable[[str], int],
        *,
        chunk_size: int,
        chunk_overlap: int,
        max_tokens: int | None = None,
    ) -> None:
        if chunk_overlap >= chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        self.count_tokens = count_tokens
        self.limit = min(chunk_size, max_tokens) if max_tokens else chunk_size
        self.overlap = min(chunk_overlap, self.limit - 1)

    def split(self, doc: LoadedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for (section, page), blocks in groupby(doc.blocks, key=lambda b: (b.section, b.page)):
            for text, n_tokens in self._pack(self._units(list(blocks))):
                chunks.append(
                    Chunk(
                        doc_id=doc.doc_id,
                        source=doc.source,
                        title=doc.title,
                        section=section,
                        page=page,
                        chunk_index=len(chunks),
                        text=text,
                        content_hash=doc.content_hash,
                        n_tokens=n_tokens,
                        tags=tuple(doc.tags),
                    )
                )
        return chunks

    # -- units: sentences, or word windows for sentences longer than the limit -------------------

    def _units(self, blocks: list[Block]) -> list[_Unit]:
        units: list[_Unit] = []
        for bi, block in enumerate(blocks):
            for sentence in _SENTENCE_END.split(block.text):
                sentence = sentence.strip()
                if not sentence:
                    continue
                n = self.count_tokens(sentence)
                if n <= self.limit:
                    units.append(_Unit(sentence, n, bi))
                else:
                    units.extend(_Unit(t, k, bi) for t, k in self._word_windows(sentence))
        return units

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

    def _pack(self, units: list[_Unit]) -> Iterator[tuple[str, int]]:
        current: list[_Unit] = []
        fresh = 0  # units in `current` that are not overlap carried from the previous chunk
        i = 0
        while i < len(units):
            candidate = [*current, units[i]]
            n = self._count(candidate)
            if n <= self.limit:
                current, fresh, i = candidate, fresh + 1, i + 1
                continue
            if fresh == 0:
                # The carried overlap leaves no room for the next unit: drop overlap, oldest first.
                current = current[1:]
                continue
            yield self._join(current), self._count(current)
            current, fresh = self._tail(current), 0
        if fresh:
            yield self._join(current), self._count(current)

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
        words = _WORD.findall(units[-1].text)
        lo, hi = 0, len(words)
        while lo < hi:  # fewest leading words to drop so the rest fits
            mid = (lo + hi) // 2
            if self.count_tokens(" ".join(words[mid:])) <= self.overlap:
                hi = mid
            else:
                lo = mid + 1
        piece = " ".join(words[lo:])
        return [_Unit(piece, self.count_tokens(piece), units[-1].block)] if piece else []

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
