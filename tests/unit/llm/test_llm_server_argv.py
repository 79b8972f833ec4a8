"""The local LLM server's command line: llama-server with slots and prefix reuse, or llama-cpp-python's server."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from services.core.settings import LlmServerSettings
from services.llm import server

pytestmark = pytest.mark.unit
MODEL = Path("/models/qwen.gguf")
BINARY = Path("/venv/bin/llama-server")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)


def flag(argv: list[str], name: str) -> str:
    assert argv.count(name) == 1, f"{name} not passed exactly once: {argv}"
    return argv[argv.index(name) + 1]


def test_llama_server_gets_slots_a_context_per_slot_and_the_prefix_cache() -> None:
    settings = LlmServerSettings(
        _env_file=None, llm_ctx=4096, llm_parallel=4, llm_cache_reuse=128, llm_cache_ram_mib=512, llm_threads=2
    )
    argv = server.llama_server_argv(settings, MODEL, BINARY)
    assert argv[0] == str(BINARY)
    assert flag(argv, "--model") == str(MODEL)
    assert flag(argv, "--parallel") == "4"
    assert flag(argv, "--ctx-size") == str(4096 * 4)  # the context is split across the slots
    assert "--no-kv-unified" in argv
    assert flag(argv, "--cache-reuse") == "128"
    assert "--cache-prompt" in argv and "--no-cache-prompt" not in argv
    assert flag(argv, "--cache-ram") == "512"
    assert flag(argv, "--threads") == "2"
    assert "--metrics" in argv and "--jinja" in argv
    assert flag(argv, "--cors-origins") == "localhost"


def test_llama_server_answers_under_the_configured_alias_host_and_port() -> None:
    settings = LlmServerSettings(_env_file=None, llm_model="my-model", llm_host="0.0.0.0", llm_port=9090)
    argv = server.llama_server_argv(settings, MODEL, BINARY)
    assert (flag(argv, "--alias"), flag(argv, "--host"), flag(argv, "--port")) == ("my-model", "0.0.0.0", "9090")


def test_llama_server_settings_default_to_four_slots_and_256_token_reuse() -> None:
    argv = server.llama_server_argv(LlmServerSettings(_env_file=None), MODEL, BINARY)
    assert (flag(argv, "--parallel"), flag(argv, "--ctx-size"), flag(argv, "--cache-reuse")) == ("4", "16384", "256")


def test_llama_cpp_python_argv_is_unchanged() -> None:
    settings = LlmServerSettings(_env_file=None, llm_ctx=2048, llm_threads=1, llm_model="smollm2-135m", llm_port=8123)
    argv = server.llama_cpp_python_argv(settings, MODEL)
    assert argv[:3] == [sys.executable, "-m", "llama_cpp.server"]
    assert flag(argv, "--model") == str(MODEL)
    assert flag(argv, "--model_alias") == "smollm2-135m"
    assert flag(argv, "--n_ctx") == "2048"  # one request at a time: no slots to split over
    assert flag(argv, "--n_threads") == "1"
    assert flag(argv, "--port") == "8123"
    assert flag(argv, "--interrupt_requests") == "false"
    assert "--parallel" not in argv and "--cache-reuse" not in argv


@pytest.mark.parametrize(
    ("choice", "binary", "expected"),
    [
        ("auto", BINARY, "llama-server"),
        ("auto", None, "llama-cpp-python"),
        ("llama-cpp-python", BINARY, "llama-cpp-python"),
        ("llama-server", BINARY, "llama-server"),
    ],
)
def test_auto_prefers_llama_server_when_it_was_built(choice: str, binary: Path | None, expected: str) -> None:
    assert server.resolve_server(LlmServerSettings(_env_file=None, llm_server=choice), binary) == expected


def test_server_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_LLM_SERVER", "llama-cpp-python")
    monkeypatch.setenv("RAG_LLM_PARALLEL", "2")
    monkeypatch.setenv("RAG_LLM_CACHE_REUSE", "0")
    settings = LlmServerSettings(_env_file=None)
    assert (settings.llm_server, settings.llm_parallel, settings.llm_cache_reuse) == ("llama-cpp-python", 2, 0)


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "ensure_model", lambda alias, models_dir: MODEL)
    monkeypatch.setattr(server, "python_server_installed", lambda: True)  # opt-in: not on every machine


@pytest.mark.usefixtures("fake_model")
def test_server_argv_picks_the_built_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "find_llama_server", lambda: BINARY)
    assert server.server_argv(LlmServerSettings(_env_file=None))[0] == str(BINARY)
    argv = server.server_argv(LlmServerSettings(_env_file=None, llm_server="llama-cpp-python"))
    assert argv[:3] == [sys.executable, "-m", "llama_cpp.server"]


@pytest.mark.usefixtures("fake_model")
def test_asking_for_llama_server_without_the_binary_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "find_llama_server", lambda: None)
    with pytest.raises(server.LLMServerNotFoundError, match="make llm-setup"):
        server.server_argv(LlmServerSettings(_env_file=None, llm_server="llama-server"))
    assert server.server_argv(LlmServerSettings(_env_file=None))[:3] == [sys.executable, "-m", "llama_cpp.server"]


@pytest.mark.usefixtures("fake_model")
def test_without_either_server_the_error_names_both_setups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "find_llama_server", lambda: None)
    monkeypatch.setattr(server, "python_server_installed", lambda: False)
    with pytest.raises(server.LLMServerNotFoundError, match="make llm-setup.*make llm-python-setup"):
        server.server_argv(LlmServerSettings(_env_file=None))


def test_find_llama_server_looks_next_to_the_venv_python_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    binary = tmp_path / "bin" / "llama-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert server.find_llama_server() == binary
    binary.unlink()
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert server.find_llama_server() is None
