"""The response models' own logic: ``Citation.numbered`` numbers the prompt's sources and carries what it held."""

from __future__ import annotations

import pytest
from fake_chat import BREAD, ROUTER

from services.contract.schemas import Citation

pytestmark = pytest.mark.unit


def test_numbered_sources_without_excerpts_held_whole_chunks() -> None:
    sources = Citation.numbered([ROUTER, BREAD])
    assert [(c.n, c.chunk_id, c.text, c.excerpt) for c in sources] == [
        (1, ROUTER.id, ROUTER.text, None),
        (2, BREAD.id, BREAD.text, None),
    ]
    assert sources[0].model_dump()["excerpt"] is None  # present in the JSON, null: "the whole text"


def test_numbered_sources_carry_the_excerpt_the_prompt_held_of_each() -> None:
    sources = Citation.numbered([ROUTER, BREAD], ["Hold the reset button for ten seconds.", BREAD.text])
    assert [(c.n, c.text, c.excerpt) for c in sources] == [
        (1, ROUTER.text, "Hold the reset button for ten seconds."),
        (2, BREAD.text, BREAD.text),
    ]
    assert Citation.numbered([], []) == Citation.numbered([]) == []


def test_excerpts_must_be_one_per_source() -> None:
    with pytest.raises(ValueError):
        Citation.numbered([ROUTER, BREAD], ["only one"])


def test_a_citation_without_the_field_still_validates() -> None:
    """Older payloads (and servers) have no ``excerpt``: it is optional."""
    data = Citation.from_chunk(1, ROUTER).model_dump(exclude={"excerpt"})
    assert Citation.model_validate(data).excerpt is None
