"""The real pipeline on this machine: ingestion, embedding, index build, retrieval, answers.

Every phase runs under a ``PeakRSS`` sampler; ingestion is also run once under
``tracemalloc`` to report the Python-heap peak of the pure-Python stage.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from settings import Settings

from .memory import PeakRSS, Timer

ROOT = Path(__file__).resolve().parents[1]


def _pcts(values_s: list[float]) -> dict:
    """p50 / p95 / mean in milliseconds of a list of seconds."""
    from eval.metrics import percentile

    ms = [v * 1000.0 for v in values_s]
    if not ms:
        return {"p50_ms": None, "p95_ms": None, "mean_ms": None, "n": 0}
    return {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "mean_ms": sum(ms) / len(ms), "n": len(ms)}


def bench_ingest(source: Path, settings: Settings, repeats: int = 3) -> tuple[dict, object]:
    from ingest import ingest_folder

    raw_bytes = sum(p.stat().st_size for p in source.iterdir() if p.is_file() and p.suffix != ".json")
    times = []
    result = None
    with PeakRSS() as mem:
        for _ in range(repeats):
            with Timer() as t:
                result = ingest_folder(source, settings.chunk, progress=False)
            times.append(t.seconds)
    tracemalloc.start()
    ingest_folder(source, settings.chunk, progress=False)
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    secs = statistics.median(times)
    chars = sum(len(d.text) for d in result.documents)
    return {
        "documents": len(result.documents), "chunks": len(result.chunks), "raw_bytes": raw_bytes,
        "clean_chars": chars, "seconds_median": round(secs, 3), "repeats": repeats,
        "chars_per_s": round(chars / secs, 1), "chunks_per_s": round(len(result.chunks) / secs, 1),
        "tracemalloc_peak_mb": round(py_peak / 2**20, 1), **mem.as_dict(),
    }, result


def bench_embed(result, embedder, limit: int | None = None) -> dict:
    from retriever.build import embed_text

    texts = [embed_text(c) for c in result.chunks][:limit]
    embedder.encode_passages(texts[: min(8, len(texts))])  # warm-up
    with PeakRSS() as mem, Timer() as t:
        embedder.encode_passages(texts)
    chars = sum(len(x) for x in texts)
    return {"passages": len(texts), "chars": chars, "seconds": round(t.seconds, 2),
            "passages_per_s": round(len(texts) / t.seconds, 2), "chars_per_s": round(chars / t.seconds, 1),
            "batch_size": embedder.cfg.batch_size, "device": embedder.cfg.device, "model": embedder.model_id,
            **mem.as_dict()}


def bench_build(result, settings: Settings, embedder, index_dir: Path) -> dict:
    from retriever.build import update_index

    with PeakRSS() as mem, Timer() as t:
        report = update_index(result, index_dir, settings, progress=False, roots=[ROOT / settings.app.seeds_dir],
                              embedder=embedder)
    with Timer() as t2:  # every vector reused: BM25 + FAISS + writing, without the model
        update_index(result, index_dir, settings, progress=False, roots=[ROOT / settings.app.seeds_dir],
                     embedder=embedder)
    size = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    return {"chunks": report.chunks, "index_kind": report.index_kind, "seconds": round(t.seconds, 2),
            "rebuild_without_embedding_s": round(t2.seconds, 2), "index_disk_mb": round(size / 2**20, 2),
            **mem.as_dict()}


def bench_retrieval(retriever, questions, configs, k: int) -> dict:
    out = {}
    for mode in configs:
        retriever.search(questions[0].question, k=k, mode=mode)  # warm-up
        walls, stages = [], {}
        with PeakRSS() as mem:
            for q in questions:
                t0 = time.perf_counter()
                retriever.search(q.question, k=k, mode=mode)
                walls.append(time.perf_counter() - t0)
                for stage, secs in retriever.last_timings.items():
                    stages.setdefault(stage, []).append(secs)
        out[mode] = {"total": _pcts(walls), **{s: _pcts(v) for s, v in stages.items()}, **mem.as_dict()}
    return out


def bench_answers(retriever, settings: Settings, questions) -> dict | None:
    from eval.runner import load_assistant_class

    assistant_cls, reason = load_assistant_class()
    if assistant_cls is None:
        return {"skipped": reason}
    try:
        assistant = assistant_cls(retriever, settings)
        assistant.ask(questions[0].question)  # warm-up (loads any generator model)
    except Exception as exc:  # noqa: BLE001 - a half-finished qa stage must not sink the benchmark
        return {"skipped": f"qa.Assistant failed ({exc.__class__.__name__}: {exc})"}
    walls, stages, errors = [], {}, []
    with PeakRSS() as mem:
        for q in questions:
            t0 = time.perf_counter()
            try:
                ans = assistant.ask(q.question)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"{q.id}: {exc.__class__.__name__}: {exc}")
                continue
            walls.append(time.perf_counter() - t0)
            for stage, secs in (getattr(ans, "timings", {}) or {}).items():
                if isinstance(secs, (int, float)):
                    stages.setdefault(stage, []).append(secs)
    if not walls:
        return {"skipped": f"every question failed, e.g. {errors[0]}"}
    return {"generator": settings.qa.generator, "errors": len(errors), "wall": _pcts(walls), **{s: _pcts(v) for s, v in stages.items()},
            **mem.as_dict()}


def run_pipeline(settings: Settings, questions_path: Path, quick: bool = False, log=print) -> dict:
    from eval.runner import parse_list
    from eval.schema import load_questions
    from retriever import Retriever, get_embedder

    source = ROOT / settings.app.seeds_dir
    questions = load_questions(questions_path).questions
    if quick:
        questions = questions[:20]
    with PeakRSS() as mem, Timer() as t:
        embedder = get_embedder(settings.embed)
    out: dict = {"model_load": {"seconds": round(t.seconds, 2), **mem.as_dict()}}
    log(f"pipeline: embedding model loaded in {t.seconds:.1f}s")
    out["ingest"], result = bench_ingest(source, settings, repeats=1 if quick else 3)
    log(f"pipeline: ingest {out['ingest']['chars_per_s']:,.0f} chars/s, {out['ingest']['chunks_per_s']:,.0f} chunks/s")
    out["embed"] = bench_embed(result, embedder, limit=64 if quick else None)
    log(f"pipeline: embedding {out['embed']['passages_per_s']:.1f} passages/s")
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        index_dir = Path(tmp) / "index"
        out["build"] = bench_build(result, settings, embedder, index_dir)
        log(f"pipeline: index build {out['build']['seconds']:.1f}s ({out['build']['chunks']} chunks)")
        retriever = Retriever.load(index_dir, settings, embedder=embedder)
        configs = parse_list(settings.eval.configs)
        out["retrieval"] = bench_retrieval(retriever, questions, configs, settings.eval.k)
        out["retrieval_questions"] = len(questions)
        log("pipeline: retrieval p50 " + ", ".join(
            f"{m} {v['total']['p50_ms']:.1f} ms" for m, v in out["retrieval"].items()))
        out["answers"] = bench_answers(retriever, settings, questions)
        if out["answers"] and "wall" in out["answers"]:
            log(f"pipeline: answer p50 {out['answers']['wall']['p50_ms']:.0f} ms")
        else:
            log(f"pipeline: answers skipped: {out['answers'].get('skipped')}")
    return out
