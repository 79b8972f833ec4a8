"""The ``ingest`` CLI in-process: settings from env, a real local Qdrant under RAG_DATA_DIR.

The embedder the CLI builds from settings is swapped for the session's already-loaded packaged model
(the same model, checked by name), so each command does not reload the weights.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ingest import cli
from services.core import factory
from services.core.models.embedder import SentenceTransformerEmbedder
from services.core.settings import Settings

pytestmark = pytest.mark.integration
REAL_BUILD_EMBEDDER = factory.build_embedder


@pytest.fixture(autouse=True)
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, embedder: SentenceTransformerEmbedder) -> Path:
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(data_dir))
    # The session's embedder runs on torch; the backends themselves are tested in tests/integration/core.
    monkeypatch.setenv("RAG_EMBED_BACKEND", "torch")
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory

    def build_embedder(settings: Settings) -> SentenceTransformerEmbedder:
        built = REAL_BUILD_EMBEDDER(settings)  # the model the settings name, not loaded
        assert built.name == embedder.name and not built.ready
        return embedder

    monkeypatch.setattr(factory, "build_embedder", build_embedder)  # the ingest wiring looks it up when called
    return data_dir


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli.app, list(args))
    # Each command opens the local Qdrant folder; let the client of the previous command release its lock.
    gc.collect()
    return result


def added_folder(mixed_folder: dict[str, Path]) -> Path:
    folder = mixed_folder["txt"].parent
    result = invoke("add", str(folder))
    assert result.exit_code == 0, result.output
    return folder


def test_add_ingests_a_folder_and_summarises_added_skipped_and_throughput(
    mixed_folder: dict[str, Path], cli_env: Path
) -> None:
    result = invoke("add", str(mixed_folder["txt"].parent))
    assert result.exit_code == 0, result.output
    assert "5 added" in result.stdout
    assert "2 skipped" in result.stdout
    assert "chunks/s" in result.stdout
    assert "corrupt.pdf" in result.stderr and "empty.txt" in result.stderr
    assert (cli_env / "qdrant").is_dir()


def test_add_json_reports_the_same_counts(mixed_folder: dict[str, Path]) -> None:
    result = invoke("add", "--json", str(mixed_folder["txt"].parent))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["added"], summary["skipped"], summary["files"]) == (5, 2, 7)
    assert summary["chunks"] == summary["points_written"] > 0


def test_list_json_returns_the_ingested_documents(mixed_folder: dict[str, Path]) -> None:
    added_folder(mixed_folder)
    result = invoke("list", "--json")
    assert result.exit_code == 0, result.output
    documents = json.loads(result.stdout)
    good = ("txt", "md", "html", "pdf", "docx")
    assert {d["source"] for d in documents} == {str(mixed_folder[k].resolve()) for k in good}
    assert all(d["status"] == "complete" and d["chunk_count"] > 0 for d in documents)


def test_stats_json_shows_document_and_chunk_counts(mixed_folder: dict[str, Path], cli_env: Path) -> None:
    added_folder(mixed_folder)
    documents = json.loads(invoke("list", "--json").stdout)
    result = invoke("stats", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["documents"] == 5
    assert stats["pending"] == 0
    assert stats["chunks"] == sum(d["chunk_count"] for d in documents)
    assert stats["store"] == str(cli_env / "qdrant")
    assert stats["embed_model"] == "all-MiniLM-L6-v2"


def test_sync_after_deleting_a_file_reports_one_deleted(mixed_folder: dict[str, Path]) -> None:
    folder = added_folder(mixed_folder)
    mixed_folder["html"].unlink()
    result = invoke("sync", str(folder))
    assert result.exit_code == 0, result.output
    assert "1 deleted" in result.stdout
    assert "4 unchanged" in result.stdout
    sources = {d["source"] for d in json.loads(invoke("list", "--json").stdout)}
    assert str(mixed_folder["html"].resolve()) not in sources
    assert len(sources) == 4


def test_delete_by_path_removes_the_document(mixed_folder: dict[str, Path]) -> None:
    added_folder(mixed_folder)
    result = invoke("delete", str(mixed_folder["md"]))
    assert result.exit_code == 0, result.output
    assert f"deleted {mixed_folder['md'].resolve()}" in result.stdout
    documents = json.loads(invoke("list", "--json").stdout)
    assert str(mixed_folder["md"].resolve()) not in {d["source"] for d in documents}
    stats = json.loads(invoke("stats", "--json").stdout)
    assert stats["documents"] == 4
    assert stats["chunks"] == sum(d["chunk_count"] for d in documents)


def test_delete_loads_no_embedding_model(mixed_folder: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    added_folder(mixed_folder)
    built: list[SentenceTransformerEmbedder] = []

    def build_embedder(settings: Settings) -> SentenceTransformerEmbedder:
        built.append(REAL_BUILD_EMBEDDER(settings))
        return built[-1]

    monkeypatch.setattr(factory, "build_embedder", build_embedder)
    result = invoke("delete", str(mixed_folder["md"]))
    assert result.exit_code == 0, result.output
    assert len(built) == 1 and not built[0].ready  # the one pipeline deleted with its model never loaded


def test_delete_of_an_unknown_document_exits_1() -> None:
    result = invoke("delete", "no-such-document")
    assert result.exit_code == 1
    assert "no document" in result.stderr


def test_add_of_a_missing_path_exits_2(tmp_path: Path) -> None:
    result = invoke("add", str(tmp_path / "does-not-exist"))
    assert result.exit_code == 2
    assert "no such file or folder" in result.stderr


def test_sync_of_something_that_is_not_a_folder_exits_2(mixed_folder: dict[str, Path]) -> None:
    result = invoke("sync", str(mixed_folder["txt"]))
    assert result.exit_code == 2
    assert "not a folder" in result.stderr


def test_delete_by_relative_path_works_after_the_file_was_removed(
    mixed_folder: dict[str, Path], tmp_path: Path
) -> None:
    added_folder(mixed_folder)
    mixed_folder["md"].unlink()
    result = invoke("delete", str(mixed_folder["md"].relative_to(tmp_path)))  # cwd is tmp_path
    assert result.exit_code == 0, result.output
