"""The query bench's bare-LLM prompts: the stack's own prompt rebuilt from its ``sources`` event, and the
whole-chunk prompt it replaced."""

from __future__ import annotations

import pytest
from fake_chat import BREAD, ROUTER

from bench.query_bench import messages_from_sources, unshared
from services.contract.schemas import Citation
from services.core.grounding.prompt import build_messages

pytestmark = pytest.mark.unit

QUESTION = "How do I reset the router?"
EVIDENCE = ["Hold the reset button for ten seconds.", BREAD.text]


def streamed(excerpts: list[str] | None) -> list[dict]:
    """The ``sources`` event as the API sends it (JSON)."""
    return [c.model_dump(mode="json") for c in Citation.numbered([ROUTER, BREAD], excerpts)]


def test_the_bare_prompt_is_the_stacks_own_evidence_prompt() -> None:
    # what services/chat/pipeline.py `prepare` builds for these sources and excerpts
    expected, _ = build_messages(QUESTION, [], [ROUTER, BREAD], max_chars=6000, texts=EVIDENCE)
    assert messages_from_sources(QUESTION, streamed(EVIDENCE), 6000) == expected
    assert "The lights then blink." not in expected[-1]["content"]


def test_the_whole_chunk_prompt_stays_available_and_is_the_default_without_excerpts() -> None:
    whole, _ = build_messages(QUESTION, [], [ROUTER, BREAD], max_chars=6000)
    assert messages_from_sources(QUESTION, streamed(EVIDENCE), 6000, whole_chunks=True) == whole
    assert messages_from_sources(QUESTION, streamed(None), 6000) == whole  # an API without evidence selection
    assert "The lights then blink." in whole[-1]["content"]


def test_unshared_marks_only_the_last_message() -> None:
    messages = messages_from_sources(QUESTION, streamed(EVIDENCE), 6000)
    marked = unshared(messages, "[abc]")
    assert marked[:-1] == messages[:-1]  # the shared system prompt and demonstration stay cacheable
    assert marked[-1] == {"role": "user", "content": "[abc] " + messages[-1]["content"]}
