"""An evaluation run in Phoenix: its set as a dataset, the run as an experiment, each case's scores as evaluations.

Why: the traces a run produced sit in Phoenix (every request of ``eval.run`` is traced under the run's span);
with the run there as an experiment, its per-case answers and scores are one click from them, and runs of the
same set line up side by side in Phoenix's experiment view. Phoenix's REST API only
(``services.core.observability.phoenix_rest`` says why not its client package):

- the dataset is named after the evaluation set and its content hash (``report["dataset"]["key"]``), so runs over
  the same items share it; it is created on the first run (a 409 means it exists: it is looked up by name);
- an experiment per run (named by its run id, with the commit, API and chat options as metadata);
- a run per case (the answer, declined or not, the sources' documents) with one ``CODE`` evaluation per score.

``eval.run`` uploads after writing its report when tracing is configured (``RAG_TRACING_ENDPOINT``, or
``RAG_PHOENIX_API_URL``); a Phoenix that is down costs the upload (logged), never the run. By hand::

    python -m eval.phoenix_experiment eval/reports/latest/report.json --phoenix http://127.0.0.1:6006
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

logger = logging.getLogger("eval.phoenix_experiment")


def dataset_name(report: dict[str, Any]) -> str:
    return f"ragstack-eval {report['dataset']['key']}"


def _dataset_id(client: httpx.Client, report: dict[str, Any]) -> str:
    cases = report["per_case"]
    body = {
        "action": "create",
        "name": dataset_name(report),
        "description": f"ragstack evaluation set {report['dataset'].get('source', '')}",
        "inputs": [{"question": c["question"]} for c in cases],
        "outputs": [{"expect": c.get("expect")} for c in cases],
        "metadata": [{"case_id": c["id"]} for c in cases],
    }
    r = client.post("/v1/datasets/upload", params={"sync": "true"}, json=body)
    if r.status_code == 409:  # an earlier run created it: the same items under the same name
        found = client.get("/v1/datasets", params={"name": dataset_name(report)})
        found.raise_for_status()
        return str(found.json()["data"][0]["id"])
    r.raise_for_status()
    return str(r.json()["data"]["dataset_id"])


def _examples(client: httpx.Client, dataset_id: str) -> dict[str, str]:
    """case id -> the dataset example's id."""
    r = client.get(f"/v1/datasets/{dataset_id}/examples")
    r.raise_for_status()
    return {e["metadata"]["case_id"]: e["id"] for e in r.json()["data"]["examples"] if "case_id" in e["metadata"]}


def upload(base_url: str, report: dict[str, Any], *, timeout_s: float = 30.0) -> dict[str, Any]:
    """The run in Phoenix; returns the dataset and experiment ids and the counts uploaded. Raises on failure."""
    with httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s) as client:
        dataset_id = _dataset_id(client, report)
        examples = _examples(client, dataset_id)
        metadata = {
            "run_id": report["run_id"],
            "git_commit": report.get("git_commit"),
            "api_url": report.get("api_url"),
            "chat_options": report.get("chat_options"),
            "metrics": report.get("metrics"),
        }
        r = client.post(f"/v1/datasets/{dataset_id}/experiments", json={"name": report["run_id"], "metadata": metadata})
        r.raise_for_status()
        experiment_id = str(r.json()["data"]["id"])
        started = report.get("started_at") or datetime.now(UTC).isoformat()
        runs = evaluations = 0
        for case in report["per_case"]:
            example = examples.get(case["id"])
            if example is None:
                continue
            output = {
                "answer": case.get("answer"),
                "declined": case.get("declined"),
                "decline_reason": case.get("decline_reason"),
                "documents": [s.get("doc") for s in case.get("sources", [])],
            }
            run = client.post(
                f"/v1/experiments/{experiment_id}/runs",
                json={
                    "dataset_example_id": example,
                    "output": output,
                    "repetition_number": 1,
                    "start_time": started,
                    "end_time": started,
                    "error": case.get("error") or None,
                },
            )
            run.raise_for_status()
            run_id = run.json()["data"]["id"]
            runs += 1
            for name, score in sorted(case.get("scores", {}).items()):
                ev = client.post(
                    "/v1/experiment_evaluations",
                    json={
                        "experiment_run_id": run_id,
                        "name": name,
                        "annotator_kind": "CODE",
                        "start_time": started,
                        "end_time": started,
                        "result": {"score": float(score)},
                    },
                )
                ev.raise_for_status()
                evaluations += 1
    return {"dataset_id": dataset_id, "experiment_id": experiment_id, "runs": runs, "evaluations": evaluations}


def upload_quietly(base_url: str | None, report: dict[str, Any], run_dir: Path) -> dict[str, Any] | None:
    """``upload``, for ``eval.run``: the ids go to ``<run dir>/phoenix.json``; a failure is logged, not raised."""
    if not base_url:
        return None
    try:
        result = upload(base_url, report)
    except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
        logger.warning("run %s not uploaded to Phoenix at %s: %s", report.get("run_id"), base_url, exc)
        return None
    (run_dir / "phoenix.json").write_text(json.dumps({"base_url": base_url, **result}, indent=2) + "\n")
    logger.info(
        "run %s in Phoenix: experiment %s (%d cases)", report["run_id"], result["experiment_id"], result["runs"]
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.phoenix_experiment", description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="an eval.run report.json")
    parser.add_argument("--phoenix", required=True, help="Phoenix's base URL, e.g. http://127.0.0.1:6006")
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text(encoding="utf-8"))
    try:
        result = upload(args.phoenix, report)
    except httpx.HTTPError as exc:
        print(f"eval.phoenix_experiment: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
