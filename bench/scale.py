"""Scale run: synthetic clustered vectors, exact (IndexFlatIP) vs approximate (HNSW) search.

Real passage embeddings are not uniform on the sphere: they gather in topics and vary
along few directions. The synthetic collections imitate that with a gaussian mixture:
``clusters`` unit-norm centres, each point = centre + a displacement of typical size
``spread`` inside the cluster's own random ``latent_dim``-dimensional subspace +
isotropic noise of norm ``noise``, then normalized (inner product = cosine). Queries are
fresh points from the same mixture, so "the 10 nearest" is a meaningful target and the
recall@10 of HNSW against exact search says something. Because the configured efSearch
can saturate recall on such data, recall and latency are also measured at lower
efSearch values (``EF_SWEEP``), which shows the trade-off.

The HNSW index is built as ``retriever.dense.build_hnsw`` builds it (IndexHNSWFlat,
inner product, ``IndexSettings.hnsw_m`` / ``hnsw_ef_construction`` / ``hnsw_ef_search``).
A build predicted to exceed ``EvalSettings.bench_hnsw_budget_s`` first gets a lower
efConstruction (not below ``bench_min_ef_construction``), then a smaller size; whatever
was done is recorded in the row (``ef_construction``, ``capped_at``, ``note``). The
vectors are added in batches and the build also stops at 1.5× the budget, whatever
the prediction said.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import faiss
import numpy as np

from settings import IndexSettings, Settings

from .memory import MB, PeakRSS, Timer

K = 10
BLOCK = 100_000  # vectors generated / added per step
HARD_STOP = 1.5  # the build loop stops at this multiple of the budget
EF_SWEEP = (8, 16, 32, 64)  # efSearch values also measured, next to the configured one
GROWTH = 1.1  # HNSW build time grows like n**GROWTH (n log n, roughly) for the prediction


@dataclass(frozen=True)
class MixtureSpec:
    dim: int = 384
    clusters: int = 1000
    latent_dim: int = 32
    spread: float = 0.6
    noise: float = 0.15
    seed: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> "MixtureSpec":
        e = settings.eval
        return cls(dim=e.bench_dim, clusters=e.bench_clusters, latent_dim=e.bench_latent_dim,
                   spread=e.bench_spread, noise=e.bench_noise, seed=e.bench_seed)


class Mixture:
    """A fixed gaussian mixture; ``sample(n, seed)`` draws normalized float32 points."""

    def __init__(self, spec: MixtureSpec):
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        centres = rng.standard_normal((spec.clusters, spec.dim), dtype=np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        # one orthonormal-ish basis per cluster, scaled so the displacement has norm ~ spread
        bases = rng.standard_normal((spec.clusters, spec.latent_dim, spec.dim), dtype=np.float32)
        self.bases = bases / np.sqrt(spec.dim) * (spec.spread / np.sqrt(spec.latent_dim))
        self.sizes = rng.dirichlet(np.full(spec.clusters, 2.0))  # uneven topic sizes

    def sample(self, n: int, seed: int) -> np.ndarray:
        spec = self.spec
        rng = np.random.default_rng(seed)
        out = np.empty((n, spec.dim), dtype=np.float32)
        for lo in range(0, n, BLOCK):
            hi = min(n, lo + BLOCK)
            which = rng.choice(spec.clusters, size=hi - lo, p=self.sizes)
            z = rng.standard_normal((hi - lo, spec.latent_dim), dtype=np.float32)
            block = self.centres[which]
            order = np.argsort(which, kind="stable")
            bounds = np.searchsorted(which[order], np.arange(spec.clusters + 1))
            for c in np.flatnonzero(np.diff(bounds)):  # one small matmul per cluster present
                rows = order[bounds[c]:bounds[c + 1]]
                block[rows] += z[rows] @ self.bases[c]
            block += rng.standard_normal((hi - lo, spec.dim), dtype=np.float32) * (spec.noise / np.sqrt(spec.dim))
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[lo:hi] = block
        return out


def _latency_ms(index: faiss.Index, queries: np.ndarray, k: int = K) -> dict:
    """One query at a time (what a user's search does): p50 / p95 / mean in ms."""
    times = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q.reshape(1, -1), k)
        times.append((time.perf_counter() - t0) * 1000.0)
    arr = np.asarray(times)
    return {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95)),
            "mean_ms": float(arr.mean())}


def _batch_qps(index: faiss.Index, queries: np.ndarray, k: int = K) -> float:
    t0 = time.perf_counter()
    index.search(queries, k)
    return len(queries) / max(time.perf_counter() - t0, 1e-9)


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int = K) -> float:
    """Mean share of the exact top-k found in the approximate top-k."""
    hits = [len(set(a[:k].tolist()) & set(e[:k].tolist())) / k for a, e in zip(approx_ids, exact_ids)]
    return float(np.mean(hits)) if hits else float("nan")


def hnsw_bytes(index: faiss.IndexHNSWFlat) -> int:
    """Vectors + graph (neighbour lists, levels, offsets) as faiss stores them."""
    graph = index.hnsw.neighbors.size() * 4 + index.hnsw.levels.size() * 4 + index.hnsw.offsets.size() * 8
    return index.ntotal * index.d * 4 + graph


@dataclass
class BuildPlan:
    n: int
    ef_construction: int
    predicted_s: float | None
    note: str = ""


def plan_hnsw(n: int, cfg: IndexSettings, budget_s: float, min_ef: int,
              calibration: tuple[int, float, int] | None) -> BuildPlan:
    """Size and efConstruction for an HNSW build expected to fit the time budget.

    ``calibration`` = (n, seconds, efConstruction) of an earlier build on the same data.
    """
    ef = cfg.hnsw_ef_construction
    if calibration is None:
        return BuildPlan(n, ef, None)
    n0, t0, ef0 = calibration

    def predict(size: int, ef_c: int) -> float:
        return t0 * (size / n0) ** GROWTH * (ef_c / ef0)

    predicted = predict(n, ef)
    if predicted <= budget_s:
        return BuildPlan(n, ef, predicted)
    lowered = max(min_ef, int(ef * budget_s / predicted))
    if predict(n, lowered) <= budget_s:
        return BuildPlan(n, lowered, predict(n, lowered),
                         f"efConstruction lowered {ef} → {lowered}: {predicted:.0f}s predicted at {ef} "
                         f"exceeds the {budget_s:.0f}s budget")
    size = int(n0 * (budget_s / (t0 * lowered / ef0)) ** (1 / GROWTH))
    size = max(min(n, size // 10_000 * 10_000), min(n, n0))
    return BuildPlan(size, lowered, predict(size, lowered),
                     f"HNSW capped at {size:,} of {n:,} vectors with efConstruction {lowered}: the full build was "
                     f"predicted at {predict(n, lowered):.0f}s (budget {budget_s:.0f}s)")


def build_hnsw_timed(vectors: np.ndarray, cfg: IndexSettings, ef_construction: int,
                     hard_stop_s: float) -> tuple[faiss.IndexHNSWFlat, float]:
    """Add in batches (so a runaway build can stop); returns (index, seconds)."""
    index = faiss.IndexHNSWFlat(vectors.shape[1], cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    t0 = time.perf_counter()
    step = max(BLOCK // 2, 1)
    for lo in range(0, len(vectors), step):
        index.add(vectors[lo:lo + step])
        if time.perf_counter() - t0 > hard_stop_s and lo + step < len(vectors):
            break
    return index, time.perf_counter() - t0


def run_scale(sizes: list[int], settings: Settings, queries: int | None = None, budget_s: float | None = None,
              log=print) -> dict:
    """Measure exact and HNSW indexes at each size; returns the JSON-ready result."""
    spec = MixtureSpec.from_settings(settings)
    cfg = settings.index
    budget = settings.eval.bench_hnsw_budget_s if budget_s is None else budget_s
    nq = queries or settings.eval.bench_queries
    mixture = Mixture(spec)
    q = mixture.sample(nq, seed=spec.seed + 1)
    rows = []
    calibration: tuple[int, float, int] | None = None
    for n in sorted(sizes):
        with Timer() as gen:
            xb = mixture.sample(n, seed=spec.seed + 2)
        log(f"scale {n:,}: generated {n:,} x {spec.dim} vectors in {gen.seconds:.1f}s")
        row: dict = {"n": n, "dim": spec.dim, "data_mb": round(xb.nbytes / MB, 1),
                     "generate_s": round(gen.seconds, 2)}

        with PeakRSS() as mem, Timer() as t:
            flat = faiss.IndexFlatIP(spec.dim)
            flat.add(xb)
        exact_scores, exact_ids = flat.search(q, K)
        row["flat"] = {"build_s": round(t.seconds, 4), "index_mb": round(flat.ntotal * spec.dim * 4 / MB, 1),
                       "rss_delta_mb": round(mem.delta_mb, 1), **_latency_ms(flat, q),
                       "batch_qps": round(_batch_qps(flat, q), 1), "recall@10": 1.0}
        log(f"scale {n:,}: flat built in {t.seconds:.2f}s, search p50 {row['flat']['p50_ms']:.2f} ms")
        del flat
        gc.collect()

        if calibration is None and n > 20_000:  # predict from a small build before committing to a big one
            sub = xb[:10_000]
            _, secs = build_hnsw_timed(sub, cfg, cfg.hnsw_ef_construction, float("inf"))
            calibration = (len(sub), secs, cfg.hnsw_ef_construction)
        plan = plan_hnsw(n, cfg, budget, settings.eval.bench_min_ef_construction, calibration)
        vectors = xb[: plan.n]
        with PeakRSS() as mem:
            hnsw, secs = build_hnsw_timed(vectors, cfg, plan.ef_construction, budget * HARD_STOP)
        built = hnsw.ntotal
        note = plan.note
        if built < plan.n:
            note = (note + "; " if note else "") + (
                f"build stopped after {secs:.0f}s (1.5x budget) at {built:,} vectors")
        hnsw.hnsw.efSearch = cfg.hnsw_ef_search
        if built < n:  # compare against exact search over the same (first ``built``) vectors
            sub_flat = faiss.IndexFlatIP(spec.dim)
            sub_flat.add(xb[:built])
            _, truth = sub_flat.search(q, K)
            del sub_flat
        else:
            truth = exact_ids
        sweep = {}
        for ef in sorted({*EF_SWEEP, cfg.hnsw_ef_search}):  # the recall / latency trade-off
            hnsw.hnsw.efSearch = ef
            _, ids = hnsw.search(q, K)
            sweep[str(ef)] = {"recall@10": round(recall_at_k(ids, truth), 4),
                              "p50_ms": round(_latency_ms(hnsw, q)["p50_ms"], 3)}
        hnsw.hnsw.efSearch = cfg.hnsw_ef_search
        _, approx_ids = hnsw.search(q, K)
        row["hnsw"] = {
            "n_built": built, "m": cfg.hnsw_m, "ef_construction": plan.ef_construction, "ef_search": cfg.hnsw_ef_search,
            "build_s": round(secs, 2), "predicted_build_s": None if plan.predicted_s is None else round(plan.predicted_s, 1),
            "index_mb": round(hnsw_bytes(hnsw) / MB, 1), "rss_delta_mb": round(mem.delta_mb, 1),
            **_latency_ms(hnsw, q), "batch_qps": round(_batch_qps(hnsw, q), 1),
            "recall@10": round(recall_at_k(approx_ids, truth), 4), "ef_search_sweep": sweep,
            "capped": built < n, "note": note,
        }
        log(f"scale {n:,}: hnsw ({built:,} vectors, efC {plan.ef_construction}) built in {secs:.1f}s, "
            f"search p50 {row['hnsw']['p50_ms']:.2f} ms, recall@10 {row['hnsw']['recall@10']:.3f}"
            + (f" — {note}" if note else ""))
        calibration = (built, secs, plan.ef_construction)  # the latest build predicts the next one
        del hnsw, xb, vectors
        gc.collect()
        rows.append(row)
    return {
        "mixture": {**spec.__dict__},
        "queries": nq,
        "k": K,
        "faiss_version": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "hnsw_budget_s": budget,
        "rows": rows,
    }
