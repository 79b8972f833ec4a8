"""PNG charts (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bars(path: Path, values: Mapping[str, float], *, title: str, xlabel: str) -> Path:
    """Horizontal bars, one per label, value written at the end of each bar."""
    plt = _plt()
    names = list(values)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) + 1.5))
    ax.barh(names, [values[n] for n in names], color="#4C72B0")
    for i, n in enumerate(names):
        ax.text(values[n], i, f" {values[n]:g}", va="center", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def lines(
    path: Path,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
) -> Path:
    """One line with markers per series (x values, y values)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), marker="o", label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def bars_ci(path: Path, values: Mapping[str, tuple[float, float, float]], *, title: str, xlabel: str) -> Path:
    """Horizontal bars of (value, low, high), one per label, with the interval as a whisker and the value written."""
    plt = _plt()
    names = list(values)[::-1]
    means = [values[n][0] for n in names]
    errs = [[values[n][0] - values[n][1] for n in names], [values[n][2] - values[n][0] for n in names]]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) + 1.6))
    ax.barh(names, means, xerr=errs, color="#4C72B0", ecolor="#333333", capsize=3)
    for i, n in enumerate(names):
        ax.text(values[n][2], i, f" {values[n][0]:.3f}", va="center", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
