"""The compose stack's figures in one result file: what ``make images`` and ``make compose-test`` measured.

``deploy/podman/build-images.sh`` writes ``.data/compose/images.tsv`` (build seconds and size per image) and
tests/compose writes ``.data/compose/run.json`` (start to healthy, first answer, API restart); this joins
them with the machine and the engine into ``bench/results/compose.json`` and prints the table that
docs/deployment.md quotes. Run by ``make compose-test`` after the tests pass::

    python -m bench.compose_report
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
from pathlib import Path
from typing import Any

from bench.machine import machine_info, now_iso

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".data" / "compose"
OUT = ROOT / "bench" / "results" / "compose.json"


def engine_version() -> str:
    try:
        return subprocess.run(["podman", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def collect(data: Path = DATA) -> dict[str, Any]:
    with open(data / "images.tsv", encoding="utf-8") as f:
        images = [
            {"service": r["service"], "build_s": int(r["build_s"]), "image": r["image"], "size": r["size"]}
            for r in csv.DictReader(f, delimiter="\t")
        ]
    run = json.loads((data / "run.json").read_text(encoding="utf-8"))
    return {
        "date": now_iso(),
        "machine": machine_info(),
        "engine": engine_version(),
        "command": "make compose-test (make images, then tests/compose in a loopback-only network namespace)",
        "images": images,
        "run": run,
        "note": "build_s is this run's: layers already in the engine's cache are not rebuilt",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    report = collect()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print("| image | build (s) | size |\n|---|---|---|")
    for row in report["images"]:
        print(f"| {row['service']} | {row['build_s']} | {row['size']} |")
    print(" ".join(f"{k} {v} s" for k, v in report["run"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
