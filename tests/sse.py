"""Server-sent events of the API's streamed /chat, parsed for the tests that read them whole."""

from __future__ import annotations

import json

import httpx


def sse_events(response: httpx.Response) -> list[tuple[str, dict | list]]:
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line[5:])))
    return events
