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


def test_synthetic_passages_are_seed_sentences_with_realistic_vectors(seed_index, settings):
    """The stores benchmark's collection: texts made of real seed sentences of one document,
    vectors near the mean of those sentences' real e5 vectors, spread like the real chunks."""
    from bench.stores import Recipe, Synthetic, load_seed

    seed = load_seed(seed_index, settings)
    assert len(seed.sentences) > 1000 and seed.vectors.shape == (len(seed.sentences), 384)
    syn = Synthetic(seed, Recipe(3000, settings.eval.bench_store_spread, settings.eval.bench_store_noise))
    again = Synthetic(seed, Recipe(3000, settings.eval.bench_store_spread, settings.eval.bench_store_noise))
    assert np.array_equal(syn.vectors, again.vectors) and syn.text(7) == again.text(7)  # deterministic
    assert np.allclose(np.linalg.norm(syn.vectors, axis=1), 1.0, atol=1e-5)
    documents, rows = syn.documents_and_rows(0, 3000)
    assert len(rows) == 3000 and len(documents) == 3 and len({r.chunk.chunk_id for r in rows}) == 3000
    by_doc = {d.doc_id: d for d in documents}
    for i in (0, 1234, 2999):
        row = rows[i]
        ids = syn.sentence_ids[i, : syn.count[i]]
        assert 3 <= len(ids) <= 6 and len(set(seed.doc_of[ids].tolist())) == 1  # one seed document
        assert row.chunk.text.startswith(seed.sentences[ids[0]]) and row.chunk.text.endswith(f"[{i}]")
        assert by_doc[row.chunk.doc_id].text[row.chunk.start:row.chunk.end] == row.chunk.text
        mean = seed.vectors[ids].mean(axis=0)
        assert float(row.vector @ (mean / np.linalg.norm(mean))) > 0.9
    x = syn.vectors
    pairs = float((x[:1000] @ x[1000:2000].T).mean())
    real = seed.chunk_vectors
    real_pairs = float((real @ real.T).mean())
    assert abs(pairs - real_pairs) < 0.03  # as spread out as the real chunks, not huddled at the centroid
    nearest = np.sort(x[:500] @ x.T, axis=1)[:, -2]
    assert float(nearest.mean()) > pairs + 0.03  # a real neighbourhood structure, not uniform noise


def test_stores_part_measures_the_folder_and_embedded_seekdb(tmp_path, seed_index, capsys):
    from bench.__main__ import main

    out = tmp_path / "bench"
    assert main(["--parts", "stores", "--store-scales", "1000", "--stores", "folder,seekdb-embedded",
                 "--queries", "20", "--seed-index", str(seed_index), "--out", str(out)]) == 0
    capsys.readouterr()
    stores = json.loads((out / "bench.json").read_text(encoding="utf-8"))["stores"]
    assert stores["queries"] == 20 and stores["sizes"] == [1000]
    rows = {r["store"]: r for r in stores["rows"]}
    assert set(rows) == {"folder", "seekdb-embedded"}
    for name, row in rows.items():
        assert "error" not in row, f"{name}: {row.get('error')}"
        assert row["n"] == row["count"] == 1000 and row["queries"] == 20
        assert row["ingest"]["passages_per_s"] > 0 and row["ingest"]["seconds"] > 0
        for mode in ("dense", "keyword", "hybrid"):
            assert 0 < row[mode]["p50_ms"] <= row[mode]["p95_ms"], (name, mode)
        assert 0.9 <= row["recall@10"] <= 1.0, name  # 1,000 vectors: any index is close to exact
        assert row["keyword_nonempty"] > 0.5 and row["hybrid_results_mean"] == 10, name
        assert row["disk_mb"] > 0 and row["rss_peak_mb"] >= row["rss_base_mb"] > 0
        assert 0.85 < row["data"]["pair_cosine_mean"] < row["data"]["nn1_cosine_mean"] < 1
    assert rows["seekdb-embedded"]["engine_rss_peak_mb"] > 50  # the engine's own process was found and sampled
    assert rows["folder"]["recall@10"] == 1.0  # exact search below index.approximate_above
    assert rows["folder"]["ef_sweep"] == []  # a flat index has no beam to sweep
    sweep = rows["seekdb-embedded"]["ef_sweep"]
    assert [e["ef_search"] for e in sweep] == [32, 64, 128, 256, 512]
    assert all(0.9 <= e["recall@10"] <= 1.0 and e["dense_p50_ms"] > 0 for e in sweep)
    md = (out / "bench.md").read_text(encoding="utf-8")
    assert "## Stores: folder and seekdb side by side" in md and "| seekdb-embedded | 1,000 |" in md
    assert "searched again at each efSearch" in md
