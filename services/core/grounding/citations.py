"""The one copy of the citation grammar: ``[1]``, ``[1, 2]``, ``[1][2]`` in an answer.

A leaf module so that the prompt (``cited_numbers``), the answer verifier and the chat UI's links all
parse markers alike without importing each other (the verifier needs the prompt's refusal test).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

# "[1]", "[1, 2]", "[ 3 ]"; never a Markdown link's text ("[1](http://…)").
CITATION_MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*,\s*\d{1,3})*)\s*\](?!\()")
_MARKER_WITH_SPACE = re.compile(r"[ \t]*" + CITATION_MARKER.pattern)


def _numbers(match: re.Match[str]) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", match.group(1)))


def cited(text: str) -> tuple[int, ...]:
    """The source numbers of the ``[n]`` markers in ``text``, in order of first appearance, unchecked.

    >>> cited("Opens at 9 [2][1]. Closes at 5 [1, 3].")
    (2, 1, 3)
    """
    seen: list[int] = []
    for match in CITATION_MARKER.finditer(text):
        seen.extend(n for n in _numbers(match) if n not in seen)
    return tuple(seen)


def cited_among(text: str, available: Iterable[int]) -> list[int]:
    """The numbers of ``available`` that ``text`` cites, in order of first appearance; others are ignored.

    >>> cited_among("a [2] b [1, 9] c [2]", [1, 2, 3])
    [2, 1]
    """
    known = set(available)
    return [n for n in cited(text) if n in known]


def strip_citations(text: str) -> str:
    """``text`` without its ``[n]`` markers (and the spaces before them): "rose 12% [1]." -> "rose 12%."."""
    return _MARKER_WITH_SPACE.sub("", text).strip()


def replace_citations(text: str, repl: Callable[[tuple[int, ...], str], str]) -> str:
    """Replace every marker with ``repl(numbers, marker_text)`` (the chat UI turns them into links)."""
    return CITATION_MARKER.sub(lambda m: repl(_numbers(m), m.group(0)), text)


def format_citations(numbers: Sequence[int]) -> str:
    """(2, 1) -> "[2][1]": one marker per source, so each becomes its own link."""
    return "".join(f"[{n}]" for n in numbers)
