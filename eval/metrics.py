"""Metric functions: pure, no I/O, no model — each is checked on hand-made cases.

Ranks are 1-based; ``None`` means "not found in the retrieved list".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from .normalize import contains_span, normalize, strip_citation_marks


# -- retrieval ---------------------------------------------------------------------------------
def evidence_flags(texts: Sequence[str], spans: Sequence[str], partial: float = 0.8) -> list[bool]:
    """For each retrieved passage (in rank order): does it contain any evidence span?"""
    norm_spans = [s for s in (normalize(span) for span in spans) if s]
    flags = []
    for text in texts:
        norm = normalize(text)
        flags.append(any(contains_span(norm, span, partial, normalized=True) for span in norm_spans))
    return flags


def first_rank(flags: Sequence[bool]) -> int | None:
    """1-based rank of the first True, or None."""
    return next((i for i, flag in enumerate(flags, start=1) if flag), None)


def hit_at_k(rank: int | None, k: int) -> bool:
    return rank is not None and rank <= k


def reciprocal_rank(rank: int | None, k: int = 10) -> float:
    """1/rank when the first evidence hit is within the top ``k``, else 0."""
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def mrr(ranks: Iterable[int | None], k: int = 10) -> float:
    ranks = list(ranks)
    return sum(reciprocal_rank(r, k) for r in ranks) / len(ranks) if ranks else float("nan")


def hit_rate(ranks: Iterable[int | None], k: int) -> float:
    ranks = list(ranks)
    return sum(hit_at_k(r, k) for r in ranks) / len(ranks) if ranks else float("nan")


def all_docs_rank(doc_ids: Sequence[str], flags: Sequence[bool], docs: Sequence[str]) -> int | None:
    """Smallest k at which every listed doc has an evidence hit within the top k (None: never).

    A passage counts for its own document only, so for a comparison question each side
    has to be found; ``all docs hit @k`` is ``hit_at_k(all_docs_rank(...), k)``.
    """
    if not docs:
        return None
    worst = 0
    for doc in dict.fromkeys(docs):
        rank = next((i for i, (d, f) in enumerate(zip(doc_ids, flags), start=1) if f and d == doc), None)
        if rank is None:
            return None
        worst = max(worst, rank)
    return worst


# -- answers -----------------------------------------------------------------------------------
def key_recall(answer_text: str, keys: Sequence[str]) -> float:
    """Share of answer keys found in the answer text (both normalized, ``[n]`` markers removed)."""
    keys = [k for k in (normalize(key) for key in keys) if k]
    if not keys:
        return float("nan")
    text = normalize(strip_citation_marks(answer_text or ""))
    return sum(k in text for k in keys) / len(keys)


def citations_supported(cited_texts: Sequence[str], spans: Sequence[str], partial: float = 0.8) -> bool:
    """True when there is at least one citation and every cited passage holds an evidence span."""
    return bool(cited_texts) and all(evidence_flags(cited_texts, spans, partial))


# -- aggregation -------------------------------------------------------------------------------
def mean(values: Iterable[float | bool | None]) -> float:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else float("nan")


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, like numpy's default."""
    vals = sorted(float(v) for v in values)
    if not vals:
        return float("nan")
    pos = (len(vals) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def latency_summary(timings: Iterable[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """{stage: {"p50", "p95", "mean", "n"}} in milliseconds over a list of timing dicts (seconds)."""
    by_stage: dict[str, list[float]] = {}
    for row in timings:
        for stage, seconds in row.items():
            if isinstance(seconds, (int, float)):
                by_stage.setdefault(stage, []).append(float(seconds) * 1000.0)
    return {
        stage: {"p50": percentile(v, 50), "p95": percentile(v, 95), "mean": sum(v) / len(v), "n": len(v)}
        for stage, v in by_stage.items()
    }


def retrieval_summary(rows: Sequence[Mapping], cutoffs: Sequence[int], mrr_k: int) -> dict:
    """Aggregate per-question retrieval rows ({"rank", "all_docs_rank", "type"}) of one config.

    Unanswerable questions carry no evidence and must be left out by the caller.
    ``all_docs@n`` is over comparison questions only (NaN when there are none).
    """
    ranks = [r["rank"] for r in rows]
    out: dict = {"n": len(rows)}
    for n in cutoffs:
        out[f"hit@{n}"] = hit_rate(ranks, n)
    out[f"mrr@{mrr_k}"] = mrr(ranks, mrr_k)
    comparisons = [r["all_docs_rank"] for r in rows if r.get("type") == "comparison"]
    out["n_comparison"] = len(comparisons)
    for n in cutoffs:
        out[f"all_docs@{n}"] = hit_rate(comparisons, n)
    return out


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def answer_summary(rows: Sequence[Mapping]) -> dict:
    """Aggregate per-question answer rows.

    Each row: {"answerable", "refused", "key_recall", "citations_ok"} and optionally
    {"n_citations", "n_supported"} (citations given / citations whose passage holds evidence).
    """
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in answerable if not r["refused"]]
    return {
        "n": len(rows),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        # a refused answerable question scores 0: the keys are not in a refusal
        "key_recall": mean(0.0 if r["refused"] else r["key_recall"] for r in answerable),
        "key_recall_answered": mean(r["key_recall"] for r in answered),
        "citation_correct": mean(bool(r["citations_ok"]) for r in answered),
        # softer views of the same: at least one cited passage holds evidence, and the share of
        # all citations (pooled) that do — a passage can support part of an answer without
        # holding one of the (minimal) evidence spans, so citation_correct is a lower bound
        "citation_any": mean(bool(r.get("n_supported")) for r in answered),
        "citation_precision": _ratio(sum(r.get("n_supported", 0) for r in answered),
                                     sum(r.get("n_citations", 0) for r in answered)),
        "refusal_accuracy": mean(r["refused"] for r in unanswerable),
        "false_refusal_rate": mean(r["refused"] for r in answerable),
    }
