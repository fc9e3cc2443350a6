"""Writing an evaluation: results.jsonl, summary.json, report.md and a comparison chart."""

from __future__ import annotations

import json
from pathlib import Path

from .runner import EvalResult

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
REPORT = "report.md"
CHART = "comparison.png"
LATENCY_STAGES = ("embed", "dense", "bm25", "fusion", "total")


def _pct(value) -> str:
    return "–" if value is None else f"{value * 100:.1f}"


def _ms(value) -> str:
    return "–" if value is None else (f"{value:.1f}" if value >= 1 else f"{value:.2f}")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def retrieval_overall_table(summary: dict) -> str:
    opts = summary["options"]
    cut, mrr_key = opts["cutoffs"], f"mrr@{opts['mrr_k']}"
    all_docs = [n for n in cut if n >= 5] or cut[-1:]
    header = ["config", "n"] + [f"hit@{n}" for n in cut] + [f"MRR@{opts['mrr_k']}"]
    header += [f"all docs@{n} (comparison)" for n in all_docs] + ["p50 ms", "p95 ms"]
    rows = []
    for mode, block in summary["retrieval"].items():
        o = block["overall"]
        lat = summary["latency"].get(mode, {}).get("total", {})
        rows.append([mode, o["n"]] + [_pct(o[f"hit@{n}"]) for n in cut] + [f"{o[mrr_key]:.3f}" if o[mrr_key] is not None else "–"]
                    + [_pct(o[f"all_docs@{n}"]) for n in all_docs] + [_ms(lat.get("p50")), _ms(lat.get("p95"))])
    return _table(header, rows)


def retrieval_group_table(summary: dict, key: str) -> str:
    """Groups as rows, configurations side by side (hit@1, hit@5, MRR for each)."""
    opts = summary["options"]
    cut = opts["cutoffs"]
    shown = [n for n in (1, 5) if n in cut] or cut[:1]
    mrr_key = f"mrr@{opts['mrr_k']}"
    modes = list(summary["retrieval"])
    header = [key, "n"] + [f"{m} hit@{n}" for m in modes for n in shown] + [f"{m} MRR" for m in modes]
    groups = summary["retrieval"][modes[0]][f"by_{key}"]
    rows = []
    for group, block in groups.items():
        if not block["n"]:
            continue
        row = [group, block["n"]]
        row += [_pct(summary["retrieval"][m][f"by_{key}"][group][f"hit@{n}"]) for m in modes for n in shown]
        row += [f"{summary['retrieval'][m][f'by_{key}'][group][mrr_key]:.3f}" for m in modes]
        rows.append(row)
    return _table(header, rows)


def latency_table(summary: dict) -> str:
    modes = list(summary["latency"])
    header = ["config"] + [f"{s} p50 / p95" for s in LATENCY_STAGES]
    rows = []
    for mode in modes:
        lat = summary["latency"][mode]
        rows.append([mode] + [f"{_ms(lat[s]['p50'])} / {_ms(lat[s]['p95'])}" if s in lat else "–" for s in LATENCY_STAGES])
    return _table(header, rows)


def _s(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def _count(value) -> str:
    return "–" if value is None else str(value)


# The targets for the LLM generator: (metric row, text, check on the overall block)
TARGETS = {
    "key_recall": ("≥ 85 %", lambda o: o["key_recall"] is not None and o["key_recall"] >= 0.85),
    "ungrounded": ("0", lambda o: o.get("ungrounded_figure_sentences") == 0),
    "refusal_accuracy": ("≥ 85 % at ≤ 5 % false refusals",
                         lambda o: (o["refusal_accuracy"] is not None and o["refusal_accuracy"] >= 0.85
                                    and o["false_refusal_rate"] is not None and o["false_refusal_rate"] <= 0.05)),
    "false_refusal_rate": ("≤ 5 %", lambda o: o["false_refusal_rate"] is not None and o["false_refusal_rate"] <= 0.05),
    "english": ("≥ 95 %", lambda o: o.get("english_in_english") is not None and o["english_in_english"] >= 0.95),
    "first_text": ("p50 ≤ 4 s", lambda o: o.get("first_text_p50_s") is not None and o["first_text_p50_s"] <= 4.0),
    "total": ("p50 ≤ 8 s", lambda o: o.get("total_p50_s") is not None and o["total_p50_s"] <= 8.0),
}


def _answer_metric_rows(block: dict) -> list[tuple[str, str | None, str]]:
    """(label, target key, cell) for one generator's block."""
    o = block["overall"]
    shares = ("n/a (every sentence is a quote)" if o.get("llm_sentences") is None else
              f"{_pct(o['grounded_share'])} / {_pct(o['repaired_share'])} / {_pct(o['dropped_share'])} "
              f"(of {o['llm_sentences']})")
    figures = ("–" if o.get("ungrounded_figure_sentences") is None else
               f"{o['ungrounded_figure_sentences']} of {o['figure_sentences']} with a figure "
               f"({o['sentences_checked']} sentences)")
    english = "–" if not o.get("n_english_answered") else f"{_pct(o['english_in_english'])} (of {o['n_english_answered']})"
    by = o.get("answered_by") or {}
    return [
        ("answers", None, _count(o["n"])),
        ("answer-key recall", "key_recall", _pct(o["key_recall"])),
        ("answer-key recall, refusals left out", None, _pct(o.get("key_recall_answered"))),
        ("citations correct (all)", None, _pct(o["citation_correct"])),
        ("≥1 citation supports", None, _pct(o.get("citation_any"))),
        ("citation precision", None, _pct(o.get("citation_precision"))),
        ("refusal accuracy", "refusal_accuracy", _pct(o["refusal_accuracy"])),
        ("false refusals", "false_refusal_rate", _pct(o["false_refusal_rate"])),
        ("LLM sentences grounded / repaired / dropped", None, shares),
        ("LLM answers stopped at the time limit", None, _count(o.get("timed_out")) if o.get("llm_sentences") is not None else "n/a"),
        ("sentences with an ungrounded figure", "ungrounded", figures),
        ("English questions answered in English", "english", english),
        ("first text p50 / p95 (s)", "first_text", f"{_s(o.get('first_text_p50_s'))} / {_s(o.get('first_text_p95_s'))}"),
        ("full answer p50 / p95 (s)", "total", f"{_s(o.get('total_p50_s'))} / {_s(o.get('total_p95_s'))}"),
        ("answered by", None, ", ".join(f"{k} {v}" for k, v in sorted(by.items(), key=lambda kv: -kv[1])) or "–"),
        ("fell back to extractive", None, _count(o.get("fell_back"))),
        ("errors", None, _count(block.get("errors"))),
    ]


def answers_side_by_side(answers: dict) -> str:
    """Metric rows, one column per generator; the issue's targets next to the LLM column
    (✓/✗ when the LLM was scored)."""
    blocks = answers.get("generators") or {"answers": answers}
    names = list(blocks)
    columns = {name: _answer_metric_rows(block) for name, block in blocks.items()}
    first = columns[names[0]]
    llm = blocks.get("llm")
    header = ["metric"]
    for name in names:
        header.append(name)
        if name == "llm":
            header.append("target (llm)")
    if llm is None:
        header.append("target (llm)")
    rows = []
    for i, (label, target_key, _) in enumerate(first):
        target = ""
        if target_key is not None:
            text, check = TARGETS[target_key]
            target = text + ((" ✓" if check(llm["overall"]) else " ✗") if llm is not None else "")
        row = [label]
        for name in names:
            row.append(columns[name][i][2])
            if name == "llm":
                row.append(target)
        if llm is None:
            row.append(target)
        rows.append(row)
    return _table(header, rows)


def answer_tables(answers: dict) -> str:
    """One generator's block: groups as rows."""
    def row(name: str, b: dict) -> list[str]:
        english = "–" if not b.get("n_english_answered") else _pct(b.get("english_in_english"))
        return [name, b["n"], _pct(b["key_recall"]), _pct(b["citation_correct"]), _pct(b.get("citation_any")),
                _pct(b.get("citation_precision")), _pct(b["refusal_accuracy"]), _pct(b["false_refusal_rate"]),
                _count(b.get("ungrounded_figure_sentences")), english, _s(b.get("first_text_p50_s")),
                _s(b.get("total_p50_s"))]

    header = ["group", "n", "answer-key recall", "citations correct (all)", "≥1 citation supports",
              "citation precision", "refusal accuracy", "false refusals", "ungrounded-figure sentences",
              "English in English", "first text p50 s", "full answer p50 s"]
    rows = [row("overall", answers["overall"])]
    rows += [row(f"type: {g}", b) for g, b in answers["by_type"].items()]
    rows += [row(f"lang: {g}", b) for g, b in answers["by_lang"].items()]
    lat = answers.get("latency", {})
    lat_rows = [[stage, _ms(v["p50"]), _ms(v["p95"]), v["n"]] for stage, v in lat.items()]
    return (_table(header, rows) + "\n\nAnswer latency (ms):\n\n"
            + _table(["stage", "p50", "p95", "n"], lat_rows))


def misses(rows: list[dict], mode: str, k: int) -> list[dict]:
    return [r for r in rows if r["config"] == mode and r["answerable"] and r["first_evidence_rank"] is None]


def markdown(result: EvalResult) -> str:
    s = result.summary
    opts = s["options"]
    out = [
        "# Evaluation report",
        "",
        f"- created: {s['created']}",
        f"- questions: `{s['questions_file']}` — {s['n_questions']} questions, {s['n_answerable']} answerable"
        + (f", {len(s['skipped_lines'])} malformed line(s) skipped" if s["skipped_lines"] else ""),
        f"- index: `{s['index']}` ({s['index_chunks']} chunks, {s['model_id']})",
        f"- host: {s['host']['cpus']} CPUs, load average {s['host']['load_before']} before and "
        f"{s['host']['load_after']} after the run (latencies are only comparable on an idle machine)",
        f"- k = {opts['k']}; a passage is a hit when it contains an evidence span after normalization "
        f"(pinyin removed, NFKC, no whitespace, traditional→simplified, quotes/dashes folded), or when "
        f"≥ {opts['partial_span']:.0%} of the span lies in it in one piece (chunk boundaries can cut a span)",
        "- unanswerable questions are left out of the retrieval metrics; `all docs@n` is over comparison "
        "questions: every listed document has an evidence passage in the top n",
        *_llm_translation_line(s.get("llm_translation")),
        "",
        "## Retrieval, overall",
        "",
        retrieval_overall_table(s),
        "",
        "## Retrieval by question type",
        "",
        retrieval_group_table(s, "type"),
        "",
        "## Retrieval by question language",
        "",
        retrieval_group_table(s, "lang"),
        "",
        "## Retrieval latency per stage (ms)",
        "",
        latency_table(s),
        "",
    ]
    if s["answers"]:
        answers = s["answers"]
        out += [f"## Answers ({answers['config']} retrieval)", "",
                "answer-key recall: share of answer keys in the answer text (refusals score 0); citations "
                "correct (all): share of non-refused answers to answerable questions whose every citation holds an "
                "evidence span (no citation = incorrect); ≥1 citation supports: at least one does; citation "
                "precision: share of all their citations that do (evidence spans are minimal, so these are lower "
                "bounds); refusal accuracy: share of unanswerable questions refused; false refusals: share "
                "of answerable questions refused. LLM sentences: the grounding check's outcome for every sentence "
                "the LLM wrote (kept as written / re-cited / dropped), from `Answer.checks`. Ungrounded figure: "
                "an answer sentence (of a shown answer) with a figure that no passage it cites holds "
                "(`qa.grounding.figures`, values compared). English in English: non-refused answers to English "
                "questions whose own text is English. First text: from the question to the first answer text "
                "shown (`first_text`, else `total`); full answer: `total`; both over every answer. "
                f"`eval/gate.py` checks the {answers.get('gated', 'extractive')} answers.", ""]
        for name, why in (answers.get("skipped") or {}).items():
            out += [f"- **{name}: skipped** — {why}"]
        for name, block in (answers.get("generators") or {}).items():
            if block.get("notice"):
                out += [f"- {name}: {block['notice']}"]
        if answers.get("checks_unavailable"):
            out += [f"- {answers['checks_unavailable']}"]
        out += ["", answers_side_by_side(answers), ""]
        for name, block in (answers.get("generators") or {"answers": answers}).items():
            out += [f"### {name}: by question type and language", "", answer_tables(block), ""]
            flagged = [(r["id"], u) for r in result.rows for u in
                       (((r.get("answers") or {}).get(name) or {}).get("figure_check") or {}).get("ungrounded", [])]
            if flagged:
                out += [f"Sentences with an ungrounded figure ({name}, {len(flagged)}):", ""]
                out += [f"- {qid}: {u['sentence']} — not in the cited passage(s) {u['cites'] or '(none cited)'}: "
                        f"{', '.join(u['missing'])}" for qid, u in flagged[:30]]
                out += ["- …"] if len(flagged) > 30 else []
                out.append("")
    else:
        out += ["## Answers", "", f"not scored: {s['answers_skipped']}", ""]
    for mode in opts["configs"]:
        missed = misses(result.rows, mode, opts["k"])
        if missed and mode == opts["answer_mode"]:
            out += [f"## Questions without an evidence hit in the top {opts['k']} ({mode})", ""]
            out += [f"- {r['id']} ({r['type']}, {r['lang']}): {r['question']}" for r in missed]
            out.append("")
    diag = s["diagnostics"]
    if diag["docs_not_indexed"] or diag["evidence_not_in_index"] or s["skipped_lines"] or s["search_errors"]:
        out += ["## Problems", ""]
        out += [f"- line {e['line']}: {e['message']}" for e in s["skipped_lines"]]
        out += [f"- {d['id']}: document(s) not in the index: {', '.join(d['docs'])}" for d in diag["docs_not_indexed"]]
        out += [f"- {d['id']}: evidence span in no indexed document: {d['span']}" for d in diag["evidence_not_in_index"]]
        if s["search_errors"]:
            out.append(f"- {s['search_errors']} search(es) failed (see results.jsonl, field `error`)")
        out.append("")
    out += [f"![configurations compared]({CHART})", ""]
    return "\n".join(out)


def chart(result: EvalResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.summary
    opts = s["options"]
    modes = list(s["retrieval"])
    metrics = [f"hit@{n}" for n in opts["cutoffs"]] + [f"mrr@{opts['mrr_k']}"]
    panels = 3 if s["answers"] else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
    ax = axes[0]
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        values = [s["retrieval"][mode]["overall"][m] or 0.0 for m in metrics]
        bars = ax.bar([x + i * width for x in range(len(metrics))], values, width, label=mode)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(metrics))], [m.upper() if m.startswith("mrr") else m for m in metrics])
    ax.set_ylim(0, 1.18)
    ax.set_title(f"Retrieval ({s['n_answerable']} answerable questions)")
    ax.legend(loc="upper left", fontsize=8, ncol=len(modes))

    ax = axes[1]
    p50 = [s["latency"][m].get("total", {}).get("p50") or 0 for m in modes]
    p95 = [s["latency"][m].get("total", {}).get("p95") or 0 for m in modes]
    xs = range(len(modes))
    ax.bar([x - 0.2 for x in xs], p50, 0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], p95, 0.4, label="p95")
    ax.set_xticks(list(xs), modes)
    ax.set_yscale("log")
    ax.set_ylabel("ms per query (log scale)")
    ax.set_title("Retrieval latency")
    ax.legend(fontsize=8)

    if s["answers"]:
        ax = axes[2]
        blocks = s["answers"].get("generators") or {"answers": s["answers"]}
        names = ["key recall", "citations ok", "refusal acc.", "false refusal", "EN in EN"]
        keys = ["key_recall", "citation_correct", "refusal_accuracy", "false_refusal_rate", "english_in_english"]
        width = 0.8 / len(blocks)
        for i, (gen, block) in enumerate(blocks.items()):
            values = [block["overall"].get(k) for k in keys]
            bars = ax.bar([x + i * width for x in range(len(names))], [v or 0.0 for v in values], width, label=gen)
            ax.bar_label(bars, labels=["n/a" if v is None else f"{v:.2f}" for v in values], fontsize=7)
        ax.set_xticks([x + width * (len(blocks) - 1) / 2 for x in range(len(names))], names)
        ax.set_ylim(0, 1.12)
        ax.set_title(f"Answers ({s['answers']['config']})")
        ax.legend(loc="upper right", fontsize=8, ncol=len(blocks))
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(result: EvalResult, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in (RESULTS, SUMMARY, REPORT, CHART)}
    with paths[RESULTS].open("w", encoding="utf-8") as fh:
        for row in result.rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    paths[SUMMARY].write_text(json.dumps(result.summary, ensure_ascii=False, indent=2), encoding="utf-8")
    paths[REPORT].write_text(markdown(result), encoding="utf-8")
    chart(result, paths[CHART])
    return paths


def _llm_translation_line(info: dict | None) -> list[str]:
    if not info:
        return []
    t = info.get("translate") or {}
    timing = f", p50 {t['p50'] / 1000:.2f} s, p95 {t['p95'] / 1000:.2f} s each" if t else ""
    return [f"- English questions searched with the LLM's Chinese rendering beside the dictionary's, as LLM "
            f"answers search them (`--llm-translation`): {info.get('questions', 0)} rendered{timing}"]
