"""bench.json → bench.md (Markdown tables) and scale.png."""

from __future__ import annotations

from pathlib import Path


def _table(header: list[str], rows: list[list], text_columns: tuple[int, ...] = (0,)) -> str:
    """Markdown table; numbers right-aligned, the ``text_columns`` left-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i in text_columns else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join("–" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _f(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return f"{value:,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}" if abs(value) >= 1 else f"{value:.{max(digits, 2)}f}"


def pipeline_md(p: dict) -> str:
    ing, emb, build = p["ingest"], p["embed"], p["build"]
    rows = [
        ["embedding model load", f"{_f(p['model_load']['seconds'])} s", "", _f(p["model_load"]["rss_peak_mb"])],
        ["ingestion (seeds)", f"{_f(ing['chars_per_s'])} chars/s", f"{_f(ing['chunks_per_s'])} chunks/s; "
         f"{ing['documents']} docs, {ing['clean_chars']:,} chars, {ing['chunks']} chunks in {_f(ing['seconds_median'], 2)} s; "
         f"Python heap peak {_f(ing['tracemalloc_peak_mb'])} MB", _f(ing["rss_peak_mb"])],
        ["embedding (seed chunks)", f"{_f(emb['passages_per_s'])} passages/s", f"{emb['passages']} passages, "
         f"{_f(emb['chars_per_s'])} chars/s, batch {emb['batch_size']}, {emb['device']}", _f(emb["rss_peak_mb"])],
        ["index build (embed + BM25 + write)", f"{_f(build['seconds'])} s", f"{build['chunks']} chunks, {build['index_kind']}; "
         f"rebuild with all vectors reused {_f(build['rebuild_without_embedding_s'], 2)} s; {_f(build['index_disk_mb'], 2)} MB on disk",
         _f(build["rss_peak_mb"])],
    ]
    out = [_table(["phase", "throughput / time", "details", "peak RSS MB"], rows, (0, 2)), ""]
    lat_rows = []
    for mode, v in p["retrieval"].items():
        stages = ", ".join(f"{s} {_f(v[s]['p50_ms'], 2)}/{_f(v[s]['p95_ms'], 2)}" for s in ("embed", "dense", "bm25", "fusion") if s in v)
        lat_rows.append([mode, _f(v["total"]["p50_ms"], 2), _f(v["total"]["p95_ms"], 2), stages])
    answers = p.get("answers") or {}
    if "wall" in answers:
        stages = ", ".join(f"{s} {_f(v['p50_ms'], 1)}/{_f(v['p95_ms'], 1)}" for s, v in answers.items()
                           if isinstance(v, dict) and "p50_ms" in v and s != "wall")
        lat_rows.append([f"answer end to end ({answers['generator']})", _f(answers["wall"]["p50_ms"], 1),
                         _f(answers["wall"]["p95_ms"], 1), stages])
    out += [f"Latency over {p['retrieval_questions']} dev questions (ms; stages as p50/p95):", "",
            _table(["config", "p50 ms", "p95 ms", "stages p50/p95 ms"], lat_rows, (0, 3)), ""]
    if "skipped" in answers:
        out += [f"End-to-end answers not measured: {answers['skipped']}", ""]
    return "\n".join(out)


def scale_md(s: dict) -> str:
    rows = []
    for r in s["rows"]:
        f, h = r["flat"], r["hnsw"]
        rows.append([f"{r['n']:,}", "exact (FlatIP)", f"{f['build_s']:.3f}", _f(f["index_mb"]), _f(f["p50_ms"], 2),
                     _f(f["p95_ms"], 2), _f(f["batch_qps"]), "1.000", ""])
        rows.append([f"{r['n']:,}" + (f" ({h['n_built']:,} built)" if h["capped"] else ""),
                     f"HNSW M={h['m']} efC={h['ef_construction']} efS={h['ef_search']}", _f(h["build_s"]),
                     _f(h["index_mb"]), _f(h["p50_ms"], 2), _f(h["p95_ms"], 2), _f(h["batch_qps"]),
                     f"{h['recall@10']:.3f}", h["note"]])
    sweeps = [r for r in s["rows"] if r["hnsw"].get("ef_search_sweep")]
    sweep_md = ""
    if sweeps:
        efs = list(sweeps[0]["hnsw"]["ef_search_sweep"])
        sweep_rows = [[f"{r['hnsw']['n_built']:,}"] + [
            f"{r['hnsw']['ef_search_sweep'][ef]['recall@10']:.3f} / {r['hnsw']['ef_search_sweep'][ef]['p50_ms']:.2f}"
            for ef in efs] for r in sweeps]
        sweep_md = ("\n\nHNSW recall@10 / p50 ms by efSearch:\n\n"
                    + _table(["vectors"] + [f"efSearch {ef}" for ef in efs], sweep_rows))
    mix = s["mixture"]
    head = (f"Synthetic collections: {mix['clusters']} gaussian clusters in {mix['dim']} dims (latent dim "
            f"{mix['latent_dim']}, spread {mix['spread']}, noise {mix['noise']}, seed {mix['seed']}), unit-normalized "
            f"float32; {s['queries']} queries from the same mixture; k = {s['k']}; faiss {s['faiss_version']} with "
            f"{s['faiss_threads']} threads; HNSW build budget {s['hnsw_budget_s']:.0f} s. Latency is one query per "
            "call; batch QPS is all queries in one call; recall@10 is against exact search.")
    return head + "\n\n" + _table(["vectors", "index", "build s", "index MB", "p50 ms", "p95 ms", "batch QPS",
                                   "recall@10", "note"], rows, (0, 1, 8)) + sweep_md


def stores_md(s: dict) -> str:
    def pair(v: dict | None) -> str:
        return f"{_f(v['p50_ms'], 2)} / {_f(v['p95_ms'], 2)}" if v else "–"

    rows = []
    for r in s["rows"]:
        if "ingest" not in r:
            rows.append([r["store"], f"{r['n']:,}"] + [None] * 7 + [r.get("skipped") or r.get("error", "").splitlines()[0]])
            continue
        rss = (f"{_f(r['rss_peak_mb'], 0)} ({_f(r['rss_base_mb'], 0)})"
               + (f" / {_f(r['engine_rss_peak_mb'], 0)}" if "engine_rss_peak_mb" in r else ""))
        disk = _f(r["disk_mb"]) + (f" ({_f(r['disk_apparent_mb'])})" if abs(r["disk_apparent_mb"] - r["disk_mb"]) > 1 else "")
        rows.append([r["store"], f"{r['count']:,}" + ("" if r["count"] == r["n"] else f" of {r['n']:,}"),
                     _f(r["ingest"]["passages_per_s"], 0), pair(r["dense"]), pair(r["keyword"]), pair(r["hybrid"]),
                     f"{r['recall@10']:.3f}", rss, disk, f"ingest {_f(r['ingest']['seconds'])} s; open {_f(r['open_s'], 2)} s; top-10 cosine lost "
                     f"{r['cosine_loss@10']:.4f}"])
    recipe = s["recipe"]
    measured = [r for r in s["rows"] if "data" in r]
    data = ""
    if measured:
        d = max(measured, key=lambda r: r["n"])["data"]
        data = (f" At {max(measured, key=lambda r: r['n'])['n']:,} passages: mean pairwise cosine {d['pair_cosine_mean']:.3f} "
                f"(the real seed chunks: {d['real_chunks_pair_cosine_mean']:.3f}), nearest neighbour {d['nn1_cosine_mean']:.3f} "
                f"({d['real_chunks_nn1_cosine_mean']:.3f} among the real chunks), the queries' exact top 10 from "
                f"{d['query_top1_cosine_mean']:.3f} (rank 1) to {d['query_rank10_cosine_mean']:.3f} (rank 10).")
    head = (f"Passages recombined from the seed corpus ({recipe['seed_sentences']:,} sentences of "
            f"{recipe['seed_documents']} documents): {recipe['sentences_per_passage'][0]}–{recipe['sentences_per_passage'][1]} "
            f"sentences from a window of {recipe['window']}, plus the passage number; vector = mean of their real e5 "
            f"vectors, spread x{recipe['spread']} about the centroid, gaussian noise of norm {recipe['noise']}, "
            f"renormalized.{data} {s['queries']} dev questions (real query vectors; their text for keyword); k = {s['k']}; "
            f"one query per call. Ingest: vectors precomputed, through the Store interface (the folder: one Change; "
            f"seekdb: Changes of {s['batch']:,}). Recall@10 of dense search against exact search over the same vectors. "
            "Peak RSS: the benchmark process (VmHWM; in brackets what it held before writing: the generated "
            "passages and vectors) / the seekdb engine's process (the server, or the child process the embedded engine runs in); disk: allocated (apparent when it differs).")
    table = _table(["store", "passages", "ingest/s", "dense p50 / p95 ms", "keyword p50 / p95 ms",
                    "hybrid p50 / p95 ms", "recall@10", "peak RSS MB", "disk MB", "note"], rows, (0, 9))
    swept = [r for r in s["rows"] if r.get("ef_sweep")]
    if swept:
        efs = sorted({e["ef_search"] for r in swept for e in r["ef_sweep"]})
        cells = [[r["store"], f"{r['count']:,}"] + [next((f"{e['recall@10']:.3f} / {_f(e['dense_p50_ms'], 2)} / "
                                                          f"{_f(e['hybrid_p50_ms'], 1)}" for e in r["ef_sweep"]
                                                          if e["ef_search"] == ef), "–") for ef in efs]
                 for r in swept]
        table += ("\n\nThe same stores searched again at each efSearch (the folder's faiss HNSW; seekdb's "
                  "`ob_hnsw_ef_search`): recall@10 / dense p50 ms / hybrid p50 ms.\n\n"
                  + _table(["store", "passages", *(f"ef {ef}" for ef in efs)], cells, (0,)))
    return head + "\n\n" + table


def markdown(result: dict) -> str:
    m = result["machine"]
    out = ["# Benchmarks", "",
           f"- created: {result['created']}",
           f"- machine: {m['cpus']} CPUs ({m['processor'] or m['machine']}), {m['ram_gb']} GB RAM, {m['platform']}, "
           f"Python {m['python']}, torch threads {m.get('torch_threads')}",
           f"- load average before / after: {m['load_before']} / {m['load_after']} (timings are only comparable on "
           "an idle machine)",
           f"- process peak RSS (ru_maxrss): {result.get('max_rss_mb', 0):,.0f} MB",
           f"- command: `{result['command']}`", ""]
    if result.get("pipeline"):
        out += ["## Pipeline (seed corpus)", "", pipeline_md(result["pipeline"]), ""]
    if result.get("scale"):
        out += ["## Scale: exact vs approximate dense search", "", scale_md(result["scale"]), "",
                "![scale](scale.png)", ""]
    if result.get("upload"):
        out += ["## Questions during a large upload", "", upload_md(result["upload"]), ""]
    if result.get("stores"):
        out += ["## Stores: folder and seekdb side by side", "", stores_md(result["stores"]), ""]
    return "\n".join(out)


def upload_md(u: dict) -> str:
    def row(name, p):
        return f"| {name} | {p['n']} | {p['p50_ms']:,.0f} | {p['p95_ms']:,.0f} |"

    return "\n".join([
        f"Upload of {u['upload_mb']} MB of text ({u['upload_passages']:,} passages) took {u['upload_seconds']:,.0f} s "
        f"(embedding slice {u['embed_slice']} passages); meanwhile a question every {u['question_interval_s']} s "
        "through the same Engine:", "",
        "| questions | n | p50 ms | p95 ms |", "|---|---:|---:|---:|",
        row("idle", u["idle"]), row("during the upload", u["during_upload"]), "",
        f"Slowest answer during the upload: {u['max_during_ms']:,.0f} ms."])


def chart(scale: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = scale["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for kind, style, color in (("flat", "o-", "C0"), ("hnsw", "s-", "C1")):
        ns = [r["hnsw"]["n_built"] if kind == "hnsw" else r["n"] for r in rows]
        axes[0].plot(ns, [max(r[kind]["build_s"], 1e-4) for r in rows], style, color=color, label=kind)
        axes[1].plot(ns, [r[kind]["p50_ms"] for r in rows], style, color=color, label=f"{kind} p50")
        axes[1].plot(ns, [r[kind]["p95_ms"] for r in rows], style, color=color, alpha=0.4, label=f"{kind} p95")
        axes[2].plot(ns, [r[kind]["index_mb"] for r in rows], style, color=color, label=kind)
    for ax, title, unit in zip(axes, ("build time", "search latency (1 query)", "index memory"), ("s", "ms", "MB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("vectors")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
