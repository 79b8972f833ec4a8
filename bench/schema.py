"""The shape every ``bench/results/*.json`` has, checked before it is written (and by the tests)."""

from __future__ import annotations

from typing import Any

REQUIRED: dict[str, type | tuple[type, ...]] = {
    "benchmark": str,
    "date": str,
    "quick": bool,
    "machine": dict,
    "settings": dict,
    "results": (dict, list),
    "seconds": (int, float),
}
MACHINE_KEYS = ("cpu", "cores", "memory_gb", "load_avg_start")


def validate(doc: Any) -> list[str]:
    """Problems with a result document; an empty list means it is valid."""
    if not isinstance(doc, dict):
        return ["result must be a JSON object"]
    errors = [f"missing key {k!r}" for k in REQUIRED if k not in doc]
    errors += [
        f"{k!r} must be {t.__name__ if isinstance(t, type) else '/'.join(x.__name__ for x in t)}"
        for k, t in REQUIRED.items()
        if k in doc and not isinstance(doc[k], t)
    ]
    if isinstance(doc.get("machine"), dict):
        errors += [f"machine lacks {k!r}" for k in MACHINE_KEYS if k not in doc["machine"]]
    return errors
