"""The rules that turn measurements into defaults, kept apart so tests can pin them."""

from __future__ import annotations

from collections.abc import Mapping

KEEP = 0.99  # a faster backend must keep at least 99% of the baseline's quality


def fastest_keeping_quality(
    rows: Mapping[str, Mapping[str, float]],
    *,
    speed: str,
    quality: str,
    baseline: str = "torch",
    keep: float = KEEP,
) -> str:
    """The backend with the highest ``speed`` among those whose ``quality`` is >= keep x the baseline's.

    The baseline always qualifies, so there is always an answer; ties in speed keep the baseline (or
    the first listed), so a change of default needs a real gain."""
    if baseline not in rows:
        raise ValueError(f"baseline {baseline!r} was not measured")
    floor = keep * rows[baseline][quality]
    best = baseline
    for name, row in rows.items():
        if row[quality] >= floor and row[speed] > rows[best][speed]:
            best = name
    return best


def smallest_depth_keeping_quality(curve: Mapping[int, float], *, keep: float = KEEP, above: int = 0) -> int:
    """The smallest rerank depth > ``above`` whose nDCG@10 is >= keep x the best: deeper costs latency for noise.

    ``above`` is top_k: reranking only the top_k chunks it returns can reorder them but never changes which
    chunks the LLM sees, so such a depth is measured (for the curve) but not chosen."""
    eligible = {d: v for d, v in curve.items() if d > above}
    if not eligible:
        raise ValueError(f"no depth above {above} in the curve")
    best = max(eligible.values())
    return min(d for d, v in eligible.items() if v >= keep * best)
