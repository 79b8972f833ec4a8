"""Serve the packaged GGUF locally over the OpenAI API (``make run`` / tests): llama-server or llama-cpp-python.

``RAG_LLM_SERVER`` chooses (docs/llm-serving.md):

- ``llama-server``: llama.cpp's own C++ server, built by ``make llm-setup`` into the venv's ``bin``. Parallel
  slots with continuous batching (``RAG_LLM_PARALLEL`` requests decode together, each with ``RAG_LLM_CTX``
  tokens of context), the KV cache of the prompt prefix a slot already holds is reused (``cache_prompt`` is on
  by default, ``--cache-reuse`` reuses later chunks by shifting), and ``/metrics`` for Prometheus.
- ``llama-cpp-python``: its Python server; one request at a time, requests queue.
- ``auto`` (default): llama-server when its binary is there, else llama-cpp-python.

Both speak ``/v1/models`` (the readiness probe: 503 while llama-server loads) and streamed
``/v1/chat/completions`` with the GGUF's own chat template. The process replaces itself with the server (exec),
so a supervisor's signals reach llama.cpp directly. In compose the same API client talks to Ollama or TGI.

Usage::

    python -m services.llm.server          # what make run starts
    python -m services.llm.server --print  # the command line it would exec
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sys
from pathlib import Path

from services.core.settings import LlmServerSettings
from services.core.types import LlmServerKind
from services.llm.gguf import ensure_model

LLAMA_SERVER = "llama-server"


class LLMServerNotFoundError(RuntimeError):
    """RAG_LLM_SERVER=llama-server, but no llama-server binary was built."""


def find_llama_server() -> Path | None:
    """The binary ``make llm-setup`` installs next to this venv's python, else one on PATH."""
    venv_binary = Path(sys.prefix) / "bin" / LLAMA_SERVER
    if venv_binary.is_file() and os.access(venv_binary, os.X_OK):
        return venv_binary
    found = shutil.which(LLAMA_SERVER)
    return Path(found) if found else None


def resolve_server(settings: LlmServerSettings, binary: Path | None) -> LlmServerKind:
    if settings.llm_server == "auto":
        return "llama-server" if binary is not None else "llama-cpp-python"
    return settings.llm_server


def llama_server_argv(settings: LlmServerSettings, model: Path, binary: Path) -> list[str]:
    """llama.cpp's server: ``--parallel`` slots share ``-c``, so each slot gets ``llm_ctx`` tokens."""
    return [
        str(binary),
        "--model",
        str(model),
        "--alias",
        settings.llm_model,
        "--host",
        settings.llm_host,
        "--port",
        str(settings.llm_port),
        "--threads",
        str(settings.llm_threads),
        "--parallel",
        str(settings.llm_parallel),
        # One KV buffer per slot (not a unified pool): ctx x parallel gives every request the same context that
        # llama-cpp-python gives its one, and a long prompt cannot starve the other slots.
        "--ctx-size",
        str(settings.llm_ctx * settings.llm_parallel),
        "--no-kv-unified",
        "--cont-batching",
        # Prompt caching is on by default (requests' cache_prompt, the server's --cache-prompt): a request goes to
        # the slot with the longest common prefix and only the rest is prefilled. --cache-reuse also keeps cached
        # chunks of at least N tokens past the first difference (shifted into place) instead of recomputing them.
        "--cache-prompt",
        "--cache-reuse",
        str(settings.llm_cache_reuse),
        # A slot's cached prompt is saved to host memory when another request takes the slot, and restored when
        # its prefix comes back. Bounded: llama.cpp's default (8 GiB) is most of a laptop's memory.
        "--cache-ram",
        str(settings.llm_cache_ram_mib),
        "--metrics",
        # The GGUF's own chat template (Qwen2.5's ChatML, SmolLM2's), rendered by the Jinja engine.
        "--jinja",
        "--no-webui",
        # Only the API (no Origin header) calls it; a web page on another site must not read its answers.
        "--cors-origins",
        "localhost",
    ]


def llama_cpp_python_argv(settings: LlmServerSettings, model: Path) -> list[str]:
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


def python_server_installed() -> bool:
    """llama-cpp-python is opt-in (`make llm-python-setup`): a second compile of llama.cpp few setups need."""
    return importlib.util.find_spec("llama_cpp") is not None


def server_argv(settings: LlmServerSettings) -> list[str]:
    binary = find_llama_server()
    kind = resolve_server(settings, binary)
    model = ensure_model(settings.llm_gguf, settings.data_dir / "models")
    if kind == "llama-cpp-python":
        if not python_server_installed():
            raise LLMServerNotFoundError(
                f"no {LLAMA_SERVER} in {Path(sys.prefix) / 'bin'} or on PATH, and llama-cpp-python (the "
                "opt-in Python server) is not installed: run `make llm-setup` (llama-server), or "
                "`make llm-python-setup` for RAG_LLM_SERVER=llama-cpp-python"
            )
        return llama_cpp_python_argv(settings, model)
    if binary is None:
        raise LLMServerNotFoundError(
            f"RAG_LLM_SERVER=llama-server but no {LLAMA_SERVER} in {Path(sys.prefix) / 'bin'} or on PATH: "
            "run `make llm-setup`"
        )
    return llama_server_argv(settings, model, binary)


def main() -> None:
    argv = server_argv(LlmServerSettings())
    if "--print" in sys.argv[1:]:
        print(shlex.join(argv))
        return
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
