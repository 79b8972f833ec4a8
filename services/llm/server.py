"""Serve the packaged GGUF with llama-cpp-python's OpenAI-compatible server (``make run`` / tests).

The process replaces itself with the server (exec), so a supervisor's signals reach llama.cpp directly.
In compose the same API client talks to Ollama or TGI instead; nothing else changes.
"""

from __future__ import annotations

import os
import sys

from services.core.settings import Settings
from services.llm.gguf import ensure_model


def server_argv(settings: Settings) -> list[str]:
    model = ensure_model(settings.llm_gguf, settings.data_dir / "models")
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        settings.llm_model,
        "--host",
        settings.llm_host,
        "--port",
        str(settings.llm_port),
        "--n_threads",
        str(settings.llm_threads),
        "--n_ctx",
        str(settings.llm_ctx),
        # By default a new request cuts the stream in progress short with a bare [DONE]: under concurrent
        # chats every answer but the last came back truncated or empty. Queue them instead; the API's
        # concurrency limit (503 + Retry-After) is where overload is handled.
        "--interrupt_requests",
        "false",
    ]


def main() -> None:
    argv = server_argv(Settings())
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
