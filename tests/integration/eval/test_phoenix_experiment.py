"""An evaluation report uploaded to a real Phoenix as a dataset and an experiment, read back over its REST API."""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from phoenix_server import phoenix_screenshot, start_phoenix, stop

from eval.phoenix_experiment import dataset_name, upload, upload_quietly

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]
REAL_RUN = ROOT / "eval/reports/test-2026-12-08/gate-on/report.json"

REPORT = {
    "run_id": "20261208T000000Z",
    "started_at": "2026-12-08T00:00:00+00:00",
    "git_commit": "abc1234",
    "api_url": "http://127.0.0.1:8000",
    "chat_options": {},
    "metrics": {"answer_rate": 0.5},
    "dataset": {"name": "mine", "key": "mine:0123456789ab", "source": "mine.jsonl"},
    "per_case": [
        {"id": "a-1", "question": "How long is the link valid?", "expect": "answer", "answer": "One hour [1].",
         "declined": False, "decline_reason": None, "sources": [{"n": 1, "doc": "password"}],
         "scores": {"answer_rate": 1.0, "first_citation_correct": 1.0}, "error": ""},
        {"id": "u-1", "question": "Who founded the company?", "expect": "abstain", "answer": "I don't know.",
         "declined": True, "decline_reason": "model_declined", "sources": [],
         "scores": {"abstention_accuracy": 1.0}, "error": ""},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = start_phoenix(tmp_path_factory.mktemp("phoenix"))
    try:
        yield url
    finally:
        stop(proc)


def experiment_records(phoenix: str, experiment_id: str) -> list[dict]:
    r = httpx.get(f"{phoenix}/v1/experiments/{experiment_id}/json", timeout=30)
    assert r.status_code == 200, r.text
    return json.loads(r.text)


def test_a_run_becomes_an_experiment_with_each_cases_scores(phoenix: str, tmp_path: Path) -> None:
    result = upload(phoenix, REPORT)
    assert (result["runs"], result["evaluations"]) == (2, 3)
    records = experiment_records(phoenix, result["experiment_id"])
    by_question = {r["input"]["question"]: r for r in records}
    answered = by_question["How long is the link valid?"]
    assert answered["output"]["answer"] == "One hour [1]." and answered["output"]["documents"] == ["password"]
    assert {a["name"]: a["score"] for a in answered["annotations"]} == {
        "answer_rate": 1.0,
        "first_citation_correct": 1.0,
    }
    assert all(a["annotator_kind"] == "CODE" for a in answered["annotations"])
    assert by_question["Who founded the company?"]["reference_output"] == {"expect": "abstain"}

    # the next run over the same items joins the same dataset as a second experiment
    later = copy.deepcopy(REPORT) | {"run_id": "20261209T000000Z"}
    again = upload_quietly(phoenix, later, tmp_path)
    assert again is not None and again["dataset_id"] == result["dataset_id"]
    assert again["experiment_id"] != result["experiment_id"]
    assert json.loads((tmp_path / "phoenix.json").read_text())["experiment_id"] == again["experiment_id"]
    listed = httpx.get(f"{phoenix}/v1/datasets", params={"name": dataset_name(REPORT)}, timeout=30).json()["data"]
    assert len(listed) == 1


def test_the_docs_picture_of_a_real_run_as_an_experiment(phoenix: str, tmp_path: Path) -> None:
    """The committed fitz-gov test run (eval/reports) uploaded as make eval does, and its experiment's cases and
    scores in Phoenix's UI: docs/screenshots/phoenix-experiment.png under make screenshots."""
    report = json.loads(REAL_RUN.read_text(encoding="utf-8"))
    result = upload(phoenix, report)
    assert result["runs"] == len(report["per_case"]) > 100

    def show(page: Any) -> None:
        page.get_by_text(report["run_id"]).first.click()
        page.get_by_text("answer_rate").first.wait_for(timeout=30_000)

    shot = phoenix_screenshot(phoenix, f"/datasets/{result['dataset_id']}/experiments", tmp_path / "exp.png", show)
    where = ROOT / ("docs/screenshots" if os.environ.get("RAG_UPDATE_SCREENSHOTS") else ".data/screenshots")
    if shot is not None:
        where.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, where / "phoenix-experiment.png")


def test_a_phoenix_that_is_down_costs_the_upload_not_the_run(tmp_path: Path) -> None:
    assert upload_quietly("http://127.0.0.1:9", REPORT, tmp_path) is None
    assert not (tmp_path / "phoenix.json").exists()
