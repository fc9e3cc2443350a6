"""Smoke test of the benchmark command: the scale part on 10^3 vectors (a few seconds).

Benchmarks measure, they do not assert speed; this only checks that the command runs and
writes the JSON and Markdown with the expected keys.
"""

from __future__ import annotations

import json

import numpy as np

from bench.scale import Mixture, MixtureSpec, plan_hnsw, recall_at_k
from settings import IndexSettings


def test_scale_command_writes_json_and_markdown(tmp_path, capsys):
    from bench.__main__ import main

    out = tmp_path / "bench"
    assert main(["--parts", "scale", "--scale", "1000", "--queries", "20", "--out", str(out)]) == 0
    capsys.readouterr()
    result = json.loads((out / "bench.json").read_text(encoding="utf-8"))
    assert {"created", "command", "machine", "settings", "pipeline", "scale", "max_rss_mb"} <= set(result)
    assert result["pipeline"] is None
    scale = result["scale"]
    assert {"mixture", "queries", "k", "faiss_version", "hnsw_budget_s", "rows"} <= set(scale)
    (row,) = scale["rows"]
    assert row["n"] == 1000 and row["dim"] == 384
    for kind in ("flat", "hnsw"):
        assert {"build_s", "index_mb", "p50_ms", "p95_ms", "batch_qps", "recall@10"} <= set(row[kind])
    assert {"n_built", "m", "ef_construction", "ef_search", "capped", "note"} <= set(row["hnsw"])
    assert row["flat"]["recall@10"] == 1.0
    assert row["hnsw"]["recall@10"] > 0.9  # 1000 vectors: HNSW is practically exact
    assert not row["hnsw"]["capped"]
    md = (out / "bench.md").read_text(encoding="utf-8")
    assert "exact (FlatIP)" in md and "HNSW M=" in md
    assert (out / "scale.png").read_bytes()[:4] == b"\x89PNG"


def test_mixture_is_normalized_and_clustered():
    spec = MixtureSpec(dim=64, clusters=10, latent_dim=4)
    x = Mixture(spec).sample(500, seed=1)
    assert x.shape == (500, 64) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    sims = x @ x.T
    nearest = np.sort(sims, axis=1)[:, -2]  # best neighbour other than itself
    assert float(np.median(nearest)) > float(np.median(sims)) + 0.3  # neighbours are much closer than average


def test_recall_at_k():
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    approx = np.array([[1, 2, 9, 4], [5, 6, 7, 8]])
    assert recall_at_k(approx, exact, k=4) == (0.75 + 1.0) / 2


def test_hnsw_plan_respects_the_budget():
    cfg = IndexSettings(hnsw_ef_construction=200)
    assert plan_hnsw(10_000, cfg, 600, 40, None).ef_construction == 200  # nothing to predict from
    fits = plan_hnsw(100_000, cfg, 600, 40, (10_000, 10.0, 200))
    assert fits.n == 100_000 and fits.ef_construction == 200 and not fits.note
    lowered = plan_hnsw(1_000_000, cfg, 600, 40, (100_000, 150.0, 200))
    assert lowered.n == 1_000_000 and 40 <= lowered.ef_construction < 200 and "lowered" in lowered.note
    assert lowered.predicted_s <= 600
    capped = plan_hnsw(1_000_000, cfg, 600, 40, (100_000, 600.0, 200))
    assert capped.n < 1_000_000 and capped.ef_construction == 40 and "capped" in capped.note
    assert capped.predicted_s <= 600 * 1.01
