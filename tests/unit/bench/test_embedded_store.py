"""The embedded-store benchmark's data and ground truth: the points are reproducible and unit length, the
embedding-like ones keep the real embeddings' shape, and the brute force finds the true top 10."""

from __future__ import annotations

import numpy as np
import pytest

from bench import embedded_store as es

pytestmark = pytest.mark.unit


def anisotropic(n: int, seed: int = 0) -> np.ndarray:
    """Stand-in 'real' embeddings: most of the variance in a few directions, around a common mean."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(3.0, 0.05, es.DIM)
    return (0.5 + rng.standard_normal((n, es.DIM)) * scales).astype(np.float32)


@pytest.fixture
def fake_real(monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    docs = anisotropic(2_000)
    monkeypatch.setattr(es, "real_vectors", lambda: (docs, anisotropic(30, seed=1)))
    return docs


def top_share(vectors: np.ndarray, k: int = 10) -> float:
    """Share of the variance in the top ``k`` principal directions."""
    eig = np.linalg.eigvalsh(np.cov(vectors, rowvar=False))[::-1]
    return float(eig[:k].sum() / eig.sum())


@pytest.mark.usefixtures("fake_real")
def test_embedding_like_points_are_reproducible_unit_vectors_with_the_real_ones_shape() -> None:
    source = es.PointSource("embedding-like", n_queries=20)
    first = np.concatenate([b for _, b in source.blocks(25_000)])
    again = np.concatenate([b for _, b in es.PointSource("embedding-like", n_queries=20).blocks(25_000)])
    assert first.shape == (25_000, es.DIM) and np.array_equal(first, again)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert source.queries.shape == (20, es.DIM)
    real = es._unit(anisotropic(2_000))
    random = np.concatenate([b for _, b in es.PointSource("random", n_queries=5).blocks(5_000)])
    # the real vectors' variance sits in few directions, random ones' is spread: the synthetic follow the real
    assert top_share(first) == pytest.approx(top_share(real), abs=0.05)
    assert top_share(random) < 0.1 < top_share(first)


def test_the_real_source_is_capped_at_its_documents(fake_real: np.ndarray) -> None:
    source = es.PointSource("real", n_queries=10)
    assert source.size_limit() == len(fake_real)
    assert sum(len(b) for _, b in source.blocks(10**6)) == len(fake_real)
    assert source.queries.shape == (10, es.DIM)


def test_exact_top10_is_the_brute_force_over_every_block() -> None:
    source = es.PointSource("random", n_queries=7)
    points = 2 * es.BLOCK + 123  # crosses block boundaries
    everything = np.concatenate([b for _, b in source.blocks(points)])
    want = np.argsort(-(source.queries @ everything.T), axis=1)[:, :10]
    got = es.exact_top10(source, points)
    assert [set(row) for row in got.tolist()] == [set(row) for row in want.tolist()]
