"""Stores side by side: ingest throughput, search latency, ANN recall@10, memory and disk of
each index backend (the folder, seekdb embedded, a seekdb server) at each collection size.

Passages are recombined from the seed corpus, so that both searches work on realistic data:

* text: 3–6 sentences of one seed document, picked from a window of ``WINDOW`` consecutive
  sentences and kept in document order, plus the passage's number (a unique term, as real
  collections keep gaining names and numbers). Sentences are the answer stage's units
  (``qa.sentence_vectors.sentence_texts``), whose real e5 passage vectors a seed index stores.
* vector: the mean of those sentences' stored vectors (a real chunk's vector is within
  cosine ~0.97 of the mean of its sentences'), its offset from the sentences' centroid scaled
  by ``bench_store_spread`` (averaging pulls vectors together; 1.5 gives back the real chunks'
  mean pairwise cosine), plus gaussian noise of norm ``bench_store_noise``, renormalized.
  ``data`` in the result compares the synthetic collection with the real chunks.

Queries are the dev questions, embedded once by the real query encoder; keyword and hybrid
search get their text. Each (store, size) runs in a fresh process, so that peak RSS
(VmHWM) is that cell's alone and an embedded engine never outlives its cell; a seekdb
server is started from the wheel with its data in a temporary folder. The engine's own
process is sampled too: the server, or the child process in which ``pylibseekdb`` runs the
"embedded" engine. The exact top 10 (``faiss.knn`` over the same vectors) is the truth for
recall@10 of ``store.dense``.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from settings import Settings

from .memory import MB, PeakRSS, Timer, hwm_mb, rss_mb

K = 10
WINDOW = 10  # a passage's sentences come from this many consecutive sentences of one document
SENTENCES = (3, 6)  # sentences per passage, inclusive
PASSAGES_PER_DOC = 1000  # synthetic documents group this many passages
BLOCK = 50_000  # vectors generated per step
WARMUP = 5  # queries of each kind run before timing
GROWTH = 1.1  # ingest time is predicted to grow like n**GROWTH (the HNSW graph)
MEMORY_SHARE = 0.9  # a cell predicted to need more than this share of the available memory is skipped
ONE_CHANGE_BUDGETS = 3  # the folder's single Change may be predicted at up to this many ingest budgets
STORES = ("folder", "seekdb-embedded", "seekdb-server")


# -- the seed material and the synthetic collection -------------------------------------------
@dataclass
class Seed:
    """Real sentences of the seed corpus with their stored e5 passage vectors."""

    sentences: list[str]
    vectors: np.ndarray  # (S, d) float32, normalized
    doc_of: np.ndarray  # seed document index of each sentence
    titles: list[str]  # per seed document
    chunk_vectors: np.ndarray  # the real passages' vectors (the comparison for ``data``)
    model_id: str

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])


def load_seed(index_dir: str | Path, settings: Settings) -> Seed:
    from qa.sentence_vectors import sentence_texts
    from retriever.store import read_index

    stored = read_index(index_dir)
    if stored.sentence_vectors is None or not len(stored.sentences):
        raise ValueError(f"the index at {index_dir} stores no sentence vectors (rebuild it with this version)")
    where = {t: i for i, t in enumerate(stored.sentences)}
    docs = {d.doc_id: j for j, d in enumerate(stored.documents)}
    doc_of = np.full(len(stored.sentences), -1, dtype=np.int64)
    for chunk in stored.chunks:
        for text in sentence_texts([chunk], settings.qa):
            i = where.get(text)
            if i is not None and doc_of[i] < 0:
                doc_of[i] = docs[chunk.doc_id]
    keep = doc_of >= 0
    return Seed(sentences=[t for t, k in zip(stored.sentences, keep) if k],
                vectors=np.ascontiguousarray(stored.sentence_vectors[keep], dtype=np.float32),
                doc_of=doc_of[keep], titles=[d.title for d in stored.documents],
                chunk_vectors=stored.vectors, model_id=stored.manifest["model_id"])


@dataclass(frozen=True)
class Recipe:
    n: int
    spread: float
    noise: float
    seed: int = 0


class Synthetic:
    """``n`` passages drawn from ``seed`` by ``recipe`` (deterministic): sentence picks and
    vectors up front, records (``rows``) on demand, so a batch writer holds only its batch."""

    def __init__(self, seed: Seed, recipe: Recipe):
        self.seed, self.recipe = seed, recipe
        n = recipe.n
        rng = np.random.default_rng(recipe.seed)
        members = [np.flatnonzero(seed.doc_of == d) for d in range(len(seed.titles))]
        sizes = np.array([len(m) for m in members])
        n_docs = -(-n // PASSAGES_PER_DOC)
        # synthetic document j draws from seed document source[j], as likely as that one is long
        self.source = rng.choice(len(members), size=n_docs, p=sizes / sizes.sum())
        doc = self.source[np.arange(n) // PASSAGES_PER_DOC]
        self.count = rng.integers(SENTENCES[0], SENTENCES[1] + 1, size=n)
        width = np.minimum(WINDOW, sizes[doc])
        start = (rng.random(n) * (sizes[doc] - width + 1)).astype(np.int64)
        slots = np.arange(SENTENCES[1])
        # the first ``count`` of a random order of the window's positions, in document order
        picked = np.sort(np.argsort(rng.random((n, WINDOW)), axis=1)[:, : SENTENCES[1]], axis=1)
        ranked = np.sort(np.where(slots[None, :] < self.count[:, None], picked, WINDOW), axis=1)
        offsets = np.minimum(ranked, width[:, None] - 1)
        self.valid = slots[None, :] < self.count[:, None]
        self.sentence_ids = np.empty((n, SENTENCES[1]), dtype=np.int64)
        for d, m in enumerate(members):
            rows = doc == d
            self.sentence_ids[rows] = m[start[rows, None] + offsets[rows]]
        self.vectors = self._vectors(rng)

    def _vectors(self, rng: np.random.Generator) -> np.ndarray:
        s, r = self.seed.vectors, self.recipe
        centre = s.mean(axis=0)
        out = np.empty((r.n, s.shape[1]), dtype=np.float32)
        for lo in range(0, r.n, BLOCK):
            hi = min(r.n, lo + BLOCK)
            mean = np.zeros((hi - lo, s.shape[1]), dtype=np.float32)
            for slot in range(SENTENCES[1]):  # one slot at a time: no (block, 6, d) temporary
                mean += s[self.sentence_ids[lo:hi, slot]] * self.valid[lo:hi, slot, None]
            mean /= self.count[lo:hi, None]
            x = centre + r.spread * (mean - centre)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            x += rng.standard_normal(x.shape, dtype=np.float32) * (r.noise / np.sqrt(x.shape[1]))
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            out[lo:hi] = x
        return out

    def text(self, i: int) -> str:
        ids = self.sentence_ids[i, : self.count[i]]
        return "".join(self.seed.sentences[j] for j in ids) + f" [{i}]"

    def documents_and_rows(self, lo: int, hi: int) -> tuple[list, list]:
        """Documents ``lo // PASSAGES_PER_DOC`` … and the PassageRows of passages ``lo:hi``
        (``lo`` and ``hi`` on document boundaries, or ``hi == n``)."""
        from ingest import Chunk, Document
        from retriever.passages import embed_key, keyword_text
        from retriever.stores import PassageRow

        documents, rows = [], []
        for j in range(lo // PASSAGES_PER_DOC, -(-hi // PASSAGES_PER_DOC)):
            doc_id, title = f"bench_{j:05d}.txt", self.seed.titles[self.source[j]]
            first, last = j * PASSAGES_PER_DOC, min(hi, (j + 1) * PASSAGES_PER_DOC)
            texts = [self.text(i) for i in range(first, last)]
            position = 0
            for i, text in zip(range(first, last), texts):
                chunk = Chunk(chunk_id=f"bench-{i:07d}", doc_id=doc_id, title=title, section="", text=text,
                              start=position, end=position + len(text))
                rows.append(PassageRow(chunk, embed_key(text), self.vectors[i], keyword_text(chunk)))
                position += len(text) + 1
            documents.append(Document(doc_id=doc_id, title=title, path=f"bench/{doc_id}", script="Hans",
                                      text="\n".join(texts)))
        return documents, rows


def data_stats(syn: Synthetic, queries: np.ndarray, exact_scores: np.ndarray, sample: int = 2000) -> dict:
    """How the synthetic collection compares with the real chunks: pairwise and nearest-
    neighbour cosines, and the queries' top-10 cosines (a spread between rank 1 and rank 10
    means the top 10 is not a set of ties)."""
    import faiss

    rng = np.random.default_rng(1)
    x = syn.vectors
    a, b = rng.choice(len(x), size=min(sample, len(x)), replace=False), rng.choice(len(x), size=min(sample, len(x)))
    real = syn.seed.chunk_vectors
    real_pairs = real @ real.T
    nn_real = np.sort(real_pairs, axis=1)[:, -2]
    probe = x[a[: min(500, len(a))]]
    nn_syn, _ = faiss.knn(probe, x, 2, metric=faiss.METRIC_INNER_PRODUCT)
    real_top, _ = faiss.knn(queries, real, K, metric=faiss.METRIC_INNER_PRODUCT)
    return {
        "pair_cosine_mean": round(float(np.einsum("ij,ij->i", x[a], x[b]).mean()), 4),
        "real_chunks_pair_cosine_mean": round(float((real_pairs.sum() - len(real)) / (len(real) ** 2 - len(real))), 4),
        "nn1_cosine_mean": round(float(nn_syn[:, 1].mean()), 4),
        "real_chunks_nn1_cosine_mean": round(float(nn_real.mean()), 4),
        "query_top1_cosine_mean": round(float(exact_scores[:, 0].mean()), 4),
        "query_top10_cosine_mean": round(float(exact_scores.mean()), 4),
        "query_rank10_cosine_mean": round(float(exact_scores[:, -1].mean()), 4),
        "real_chunks_query_top10_cosine_mean": round(float(real_top.mean()), 4),
    }


# -- the stores, each in a temporary folder ---------------------------------------------------
@dataclass
class Target:
    location: str
    data_dir: Path
    server_pid: int | None = None


@contextmanager
def target(kind: str, workdir: Path, settings: Settings):
    """The location of an empty store of ``kind`` under ``workdir`` (a server running for
    ``seekdb-server`` while the block runs)."""
    if kind == "folder":
        yield Target(str(workdir / "index"), workdir / "index")
    elif kind == "seekdb-embedded":
        data = workdir / "seekdb"
        yield Target(f"seekdb://{data.resolve()}", data)
    elif kind == "seekdb-server":
        from retriever.stores.seekdb_server import SeekdbServer

        data = workdir / "server"
        with SeekdbServer(data, cfg=settings.index) as server:
            yield Target(server.uri("policyqa"), data, server.process.pid)
    else:
        raise ValueError(f"unknown store {kind!r} (one of {', '.join(STORES)})")


def disk_mb(path: Path) -> tuple[float, float]:
    """(allocated, apparent) size of the files under ``path``: a database may preallocate."""
    allocated = apparent = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            allocated += st.st_blocks * 512
            apparent += st.st_size
    return allocated / MB, apparent / MB


def _pcts(values_ms: list[float]) -> dict:
    arr = np.asarray(values_ms)
    return {"p50_ms": round(float(np.percentile(arr, 50)), 3), "p95_ms": round(float(np.percentile(arr, 95)), 3),
            "mean_ms": round(float(arr.mean()), 3)}


def _timed(call, count: int) -> tuple[dict, list]:
    """``call(i)`` for each query, one at a time after a few unmeasured ones: (percentiles, results)."""
    for i in range(min(WARMUP, count)):
        call(i)
    times, results = [], []
    for i in range(count):
        t0 = time.perf_counter()
        results.append(call(i))
        times.append((time.perf_counter() - t0) * 1000.0)
    return _pcts(times), results


@dataclass(frozen=True)
class Engine:
    """The database engine's process(es): a server, or the children of this process (the
    embedded ``pylibseekdb`` runs its engine in a child process)."""

    pid: int
    children_only: bool = False

    def _procs(self) -> list[psutil.Process]:
        proc = psutil.Process(self.pid)
        return proc.children(recursive=True) + ([] if self.children_only else [proc])

    def cpu_s(self) -> float:
        total = 0.0
        for proc in self._procs():
            try:
                total += sum(proc.cpu_times()[:2])
            except psutil.Error:  # it exited between listing and reading
                pass
        return total

    def peak_rss(self) -> PeakRSS:
        return PeakRSS(pid=self.pid, children_only=self.children_only)


class _Clock:
    """Wall and CPU seconds (this process's and the engine's) summed over a load's timed steps."""

    def __init__(self, engine: Engine | None):
        self.engine = engine
        self.seconds = self.cpu = self.engine_cpu = 0.0

    @contextmanager
    def step(self):
        t0, c0 = time.perf_counter(), time.process_time()
        e0 = self.engine.cpu_s() if self.engine else 0.0
        yield
        self.seconds += time.perf_counter() - t0
        self.cpu += time.process_time() - c0
        self.engine_cpu += (self.engine.cpu_s() - e0) if self.engine else 0.0


def _ingest(store, syn: Synthetic, model_id: str, batch: int, one_change: bool, budget_s: float, log,
            engine: Engine | None = None) -> dict:
    """Write the passages through the Store interface: under one write lock, one snapshot,
    then one Change per batch (the folder: one Change, as it writes a whole generation per
    call). Only snapshot and apply are timed: records are built between batches, as an
    ingestion would have them ready. A batched load stops at the first batch boundary past
    ``budget_s`` (``written`` < n). CPU seconds of this process and of the engine's say where
    the time goes."""
    from retriever.stores import Change

    n = syn.recipe.n
    step = n if one_change else max(PASSAGES_PER_DOC, batch // PASSAGES_PER_DOC * PASSAGES_PER_DOC)
    clock, changes, written = _Clock(engine), 0, 0
    with store.write_lock():
        with clock.step():
            store.snapshot()
        while written < n and (one_change or clock.seconds < budget_s):
            hi = min(n, written + step)
            documents, rows = syn.documents_and_rows(written, hi)
            change = Change(model_id=model_id, dimension=syn.seed.dimension, documents=documents, passages=rows,
                            manifest={"bench": "stores"})
            with clock.step():
                store.apply(change)
            changes, written = changes + 1, hi
            del documents, rows, change
            if changes % 10 == 0 or written == n:
                log(f"stores: {written:,} / {n:,} written ({written / clock.seconds:,.0f} passages/s)")
    out = {"written": written, "seconds": round(clock.seconds, 2), "passages_per_s": round(written / clock.seconds, 1),
           "changes": changes, "cpu_s": round(clock.cpu, 1)}
    if engine:
        out["engine_cpu_s"] = round(clock.engine_cpu, 1)
    return out


@dataclass(frozen=True)
class Cell:
    store: str
    recipe: Recipe
    seed_index: str
    queries_file: str
    settings: Settings
    batch: int
    budget_s: float


def measure(cell: Cell, log=print) -> dict:
    """One store at one size, in this process (``run_cell`` gives it a fresh one)."""
    import faiss

    from retriever.stores import open_store

    settings = cell.settings
    start_mb = rss_mb()  # the interpreter and libraries: what does not grow with the collection
    seed = load_seed(cell.seed_index, settings)
    with np.load(cell.queries_file) as data:
        qvecs, qtexts = data["vectors"], [str(t) for t in data["texts"]]
    with Timer() as gen:
        syn = Synthetic(seed, cell.recipe)
    n, nq = cell.recipe.n, len(qvecs)
    exact_scores, exact_ids = faiss.knn(qvecs, syn.vectors, K, metric=faiss.METRIC_INNER_PRODUCT)
    row: dict = {"store": cell.store, "n": n, "generate_s": round(gen.seconds, 2),
                 "data": data_stats(syn, qvecs, exact_scores), "queries": nq}
    gc.collect()
    row["rss_start_mb"], row["rss_base_mb"] = round(start_mb, 1), round(rss_mb(), 1)
    with tempfile.TemporaryDirectory(prefix=f"bench-{cell.store}-") as tmp, \
            target(cell.store, Path(tmp), settings) as where:
        engine = (Engine(where.server_pid) if where.server_pid
                  else Engine(os.getpid(), children_only=True) if cell.store == "seekdb-embedded" else None)
        engine_mem = engine.peak_rss() if engine else None
        if engine_mem:
            engine_mem.__enter__()
        try:
            with open_store(where.location, settings) as store:
                with PeakRSS() as mem:
                    row["ingest"] = _ingest(store, syn, seed.model_id, cell.batch, cell.store == "folder",
                                            cell.budget_s, log, engine)
                row["ingest"]["rss_peak_mb"] = round(mem.peak_mb, 1)
            written = row["ingest"]["written"]
            if written < n:  # capped: the truth is the exact search over what was written
                row["note"] = (f"ingest stopped at the {cell.budget_s:,.0f} s budget after {written:,} of {n:,} "
                               "passages; searched at that size")
                exact_scores, exact_ids = faiss.knn(qvecs, syn.vectors[:written], K, metric=faiss.METRIC_INNER_PRODUCT)
            log(f"stores: {cell.store} {n:,}: ingest {row['ingest']['passages_per_s']:,.0f} passages/s"
                + (f" (stopped at {written:,})" if written < n else ""))
            del syn
            gc.collect()
            with open_store(where.location, settings) as store, PeakRSS() as mem:
                with Timer() as t:
                    store.open_for(seed.model_id, seed.dimension)
                row["open_s"] = round(t.seconds, 2)
                row["count"] = len(store)
                rrf_k = settings.retrieval.rrf_k
                row["dense"], found = _timed(lambda i: store.dense(qvecs[i], K), nq)
                row["keyword"], words = _timed(lambda i: store.keyword(qtexts[i], K), nq)
                row["hybrid"], fused = _timed(lambda i: store.hybrid(qtexts[i], qvecs[i], K, rrf_k=rrf_k), nq)
                ids = _ids(store, found)
            row["search_rss_peak_mb"] = round(mem.peak_mb, 1)
            row["ef_sweep"] = _ef_sweep(where.location, settings, qvecs, qtexts, exact_ids, seed)
        finally:
            if engine_mem:
                engine_mem.__exit__(None, None, None)
        if engine_mem:
            row["engine_rss_peak_mb"] = round(engine_mem.peak_mb, 1)
        row["disk_mb"], row["disk_apparent_mb"] = (round(v, 1) for v in disk_mb(where.data_dir))
    row["recall@10"] = _recall(ids, exact_ids)
    # what a miss costs: the exact top 10's mean cosine minus the returned 10's (near 0: near-ties)
    row["cosine_loss@10"] = round(float(np.mean([e.mean() - m.scores[:K].sum() / K
                                                 for m, e in zip(found, exact_scores)])), 5)
    row["keyword_nonempty"] = round(float(np.mean([len(m) > 0 for m in words])), 4)
    row["hybrid_results_mean"] = round(float(np.mean([len(m) for m in fused])), 2)
    row["rss_peak_mb"] = round(hwm_mb(), 1)
    log(f"stores: {cell.store} {n:,}: dense/keyword/hybrid p50 {row['dense']['p50_ms']:.1f}/"
        f"{row['keyword']['p50_ms']:.1f}/{row['hybrid']['p50_ms']:.1f} ms, recall@10 {row['recall@10']:.3f}, "
        f"disk {row['disk_mb']:,.0f} MB")
    return row


def _ids(store, found) -> list[list[int]]:
    return [[int(c.chunk_id.rsplit("-", 1)[1]) for c in store.passages(m.keys) if c is not None] for m in found]


def _recall(ids: list[list[int]], exact_ids: np.ndarray) -> float:
    return round(float(np.mean([len(set(a) & set(e.tolist())) / K for a, e in zip(ids, exact_ids)])), 4)


def _ef_sweep(location: str, settings: Settings, qvecs, qtexts, exact_ids, seed) -> list[dict]:
    """The same store searched at each efSearch of ``EvalSettings.bench_ef_sweep`` (the folder's
    faiss HNSW and seekdb's ob_hnsw_ef_search alike): what recall@10 costs in latency. A flat
    folder index has no beam: nothing to sweep."""
    from retriever.stores import open_store

    values = [int(v) for v in settings.eval.bench_ef_sweep.split(",") if v.strip()]
    out = []
    for ef in values:
        swept = settings.override("index", hnsw_ef_search=ef, seekdb_ef_search=ef)
        with open_store(location, swept) as store:
            store.open_for(seed.model_id, seed.dimension)
            if store.manifest().get("index_kind") == "flat":
                return []
            dense, found = _timed(lambda i: store.dense(qvecs[i], K), len(qvecs))
            hybrid, _ = _timed(lambda i: store.hybrid(qtexts[i], qvecs[i], K, rrf_k=settings.retrieval.rrf_k),
                               len(qvecs))
            out.append({"ef_search": ef, "recall@10": _recall(_ids(store, found), exact_ids),
                        "dense_p50_ms": dense["p50_ms"], "hybrid_p50_ms": hybrid["p50_ms"]})
    return out


class Stopped(Exception):
    pass


def _stop(*_) -> None:
    raise Stopped("stopped (SIGTERM: the time limit or an interrupted run)")


def _cell_main(cell: Cell, conn) -> None:
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    # stopped by the parent (time limit, Ctrl-C): unwind, so the server stops and the data goes
    signal.signal(signal.SIGTERM, _stop)
    try:
        conn.send(("ok", measure(cell, log)))
    except BaseException as exc:  # the parent records why the cell has no figures
        conn.send(("error", f"{exc.__class__.__name__}: {exc}\n{traceback.format_exc(limit=6)}"))
    finally:
        # pylibseekdb's exit hook signals its process group while it stops the engine: from here
        # on a SIGTERM is the ordinary end of this process, not an interruption to report
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        conn.close()


def run_cell(cell: Cell, timeout_s: float) -> dict:
    """``measure`` in a fresh process; a crash, an error or the time limit gives a row with a note."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_cell_main, args=(cell, send), daemon=False)
    received = False
    with Timer() as t:
        proc.start()
        send.close()
        try:
            status, payload = (receive.recv() if receive.poll(timeout_s)
                               else ("error", f"stopped after {timeout_s:.0f} s (time limit)"))
            received = status == "ok"
        except EOFError:
            proc.join(10)
            killed = proc.exitcode == -9
            status, payload = "error", f"the process died (exit code {proc.exitcode}{'; out of memory?' if killed else ''})"
        finally:  # also when this process is interrupted: no cell outlives the run
            if received:  # it is stopping its store: let it finish rather than interrupt it
                proc.join(60)
            if proc.is_alive():
                proc.terminate()
            proc.join(60)
    if status == "ok":
        payload["wall_s"] = round(t.seconds, 1)
        return payload
    return {"store": cell.store, "n": cell.recipe.n, "wall_s": round(t.seconds, 1), "error": payload.strip()}


# -- the run ---------------------------------------------------------------------------------
def embed_questions(questions_path: Path, settings: Settings, limit: int | None, path: Path) -> int:
    from eval.schema import load_questions
    from retriever import get_embedder

    texts = [q.question for q in load_questions(questions_path).questions][:limit]
    vectors = get_embedder(settings.embed).encode_queries(texts)
    np.savez(path, vectors=vectors, texts=np.asarray(texts, dtype=str))
    return len(texts)


def _skip(kind: str, n: int, last: dict | None, budget: float) -> str | None:
    """Why ``kind`` at ``n`` passages is not run, from its row at the previous size (None: run it).
    A batched load stops at the budget by itself; the folder's one Change cannot stop halfway,
    so it is skipped when predicted over ``ONE_CHANGE_BUDGETS`` budgets or the memory at hand."""
    if last is None:
        return None
    if "ingest" not in last:
        return f"failed at {last['n']:,}" if "error" in last else last.get("skipped")
    if kind != "folder":
        return None
    ratio = n / last["n"]
    predicted = last["ingest"]["seconds"] * ratio ** GROWTH
    if predicted > ONE_CHANGE_BUDGETS * budget:
        return (f"its one Change is predicted at {predicted:,.0f} s from {last['n']:,} ({last['ingest']['seconds']:,.0f} s), "
                f"over {ONE_CHANGE_BUDGETS} x the {budget:,.0f} s budget")
    fixed = last.get("rss_start_mb", 0.0)  # everything else it holds grows with the collection
    need = fixed + (last["rss_peak_mb"] - fixed) * ratio
    free = psutil.virtual_memory().available / MB
    if need > MEMORY_SHARE * free:
        return f"predicted to need ~{need:,.0f} MB (from {last['n']:,}), {free:,.0f} MB available"
    return None


def run_stores(sizes: list[int], stores: list[str], settings: Settings, questions_path: Path,
               seed_index: Path | None = None, queries: int | None = None, log=print) -> dict:
    """Every store at every size (smallest first), each cell in its own process (see ``_skip``
    for the cells that are not run)."""
    unknown = sorted(set(stores) - set(STORES))
    if unknown:
        raise ValueError(f"unknown store(s) {unknown} (one of {', '.join(STORES)})")
    e = settings.eval
    budget = e.bench_store_budget_s
    with tempfile.TemporaryDirectory(prefix="bench-stores-") as tmp:
        if seed_index is None:
            from retriever import build_index

            seed_index = Path(tmp) / "seed-index"
            with Timer() as t:
                build_index(Path(__file__).resolve().parents[1] / settings.app.seeds_dir, seed_index, settings,
                            progress=False)
            log(f"stores: seed index built in {t.seconds:.0f} s")
        queries_file = Path(tmp) / "queries.npz"
        nq = embed_questions(questions_path, settings, queries, queries_file)
        seed = load_seed(seed_index, settings)
        rows: list[dict] = []
        previous: dict[str, dict] = {}
        for n in sorted(sizes):
            for kind in stores:
                reason = _skip(kind, n, previous.get(kind), budget)
                if reason:
                    log(f"stores: {kind} {n:,} skipped: {reason}")
                    rows.append({"store": kind, "n": n, "skipped": reason})
                    previous[kind] = rows[-1]
                    continue
                log(f"stores: {kind} at {n:,} passages")
                cell = Cell(kind, Recipe(n, e.bench_store_spread, e.bench_store_noise, e.bench_seed), str(seed_index),
                            str(queries_file), settings, e.bench_store_batch, budget)
                row = run_cell(cell, timeout_s=budget * (ONE_CHANGE_BUDGETS + 2) + 600)
                if "error" in row:
                    log(f"stores: {kind} {n:,} failed: {row['error'].splitlines()[0]}")
                rows.append(row)
                previous[kind] = row
    return {"k": K, "queries": nq, "stores": stores, "sizes": sorted(sizes),
            "recipe": {"sentences_per_passage": list(SENTENCES), "window": WINDOW, "passages_per_doc": PASSAGES_PER_DOC,
                       "spread": e.bench_store_spread, "noise": e.bench_store_noise, "seed": e.bench_seed,
                       "seed_sentences": len(seed.sentences), "seed_documents": len(seed.titles)},
            "batch": e.bench_store_batch, "budget_s": budget, "rows": rows}


__all__ = ["Cell", "Recipe", "Seed", "Synthetic", "load_seed", "measure", "run_cell", "run_stores"]
