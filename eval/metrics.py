"""Metric functions: pure, no I/O, no model — each is checked on hand-made cases.

Ranks are 1-based; ``None`` means "not found in the retrieved list".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

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


# -- answer sentences: figures and language ---------------------------------------------------
_MARK = re.compile(r"[\[［【]\s*(\d+(?:\s*[,，、]\s*\d+)*)\s*[\]］】]")
# a sentence ends at 。！？!? or a newline, at a full stop followed by neither a digit (a
# decimal point: 1.2) nor a letter (U.S.), and at a space after a marker (the extractive
# composer joins a quote that ends without 。 to the next one by a space)
_END = re.compile(r"\n|[。！？!?]+|\.(?![0-9A-Za-z])|(?<=[\]］】])[ \t]+(?=[^\s\[［【])")
# what still belongs to the sentence after its end: closing quotes/brackets and its markers
_TRAIL = re.compile(r"(?:[”’\"'」』）)]|[ \t]*[\[［【]\s*\d+(?:\s*[,，、]\s*\d+)*\s*[\]］】])*")
# list labels, not figures: at the start of a line (1. / 2、 / (3) / （4） / ① / - / •), and a
# number with a full stop glued to Chinese text after a space, a sentence end or a marker
# ("…[1] 2.电子信息产业…", "From the documents (quoted in Chinese): 1.开展…")
_LABEL = re.compile(r"(?m)^[ \t]*(?:[-*•·]|\(?\d{1,2}[.、)）](?!\d)|[（(]\d{1,2}[)）]|[①-⑳])[ \t]*"
                    r"|(?<![^\s。！？!?:：\]］】])\d{1,2}[.．](?=[\u3400-\u9fff])")


def split_sentences(text: str) -> list[str]:
    """Answer sentences, each with the ``[n]`` markers that follow it.

    Splits after 。！？.!? and at newlines; a full stop followed by a digit (1.2) or a
    letter (U.S.) is not an end, a space after a marker is ("…1.5[1] 到2020年…"). Markers
    (and closing quotes) right after the end stay with the sentence they follow, so both
    "…35颗卫星[1]。" and "…35颗卫星。[1]" cite passage 1. List labels ("1. " at a line
    start, "1.开展…") are removed first.
    """
    text = _LABEL.sub("", text or "")
    out: list[str] = []
    start = pos = 0
    while (m := _END.search(text, pos)) is not None:
        end = m.end()
        if m.group() != "\n":
            end = _TRAIL.match(text, end).end()
        piece = text[start:end].strip()
        if piece:
            out.append(piece)
        start = pos = max(end, m.end())
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def cited_numbers(sentence: str) -> tuple[int, ...]:
    """The marker numbers in a sentence, in order, each once: "…[1]…[2, 3]" → (1, 2, 3)."""
    numbers = (int(n) for m in _MARK.finditer(sentence) for n in re.split(r"\s*[,，、]\s*", m.group(1)))
    return tuple(dict.fromkeys(numbers))


def figure_check(text: str, passages: Mapping[int, str], figures: Callable[[str], Sequence[str]]) -> dict:
    """Every figure of every answer sentence must occur in a passage that sentence cites.

    ``passages`` maps marker numbers to the cited passage texts; ``figures`` returns the
    normalized figure values of a text (``qa.grounding.figures``). A figure counts as
    grounded when it is among the figures of at least one passage the sentence cites. A
    sentence cites the passages of its own markers; one without a marker, those of the next
    sentence that has one (a marker closes the quote before it, which may span lines: a
    table quote "…比\n\n重(%)\n\n7.8 10 预期性[3]"); with none after it, it cites nothing and
    every figure of it is ungrounded. A marker number that is no citation holds nothing.
    Returns {"sentences", "figure_sentences", "ungrounded": [{"sentence", "missing", "cites"}]}.
    """
    cache: dict[int, set[str]] = {}

    def held(n: int) -> set[str]:
        if n not in cache:
            cache[n] = set(figures(passages[n])) if n in passages else set()
        return cache[n]

    sentences = split_sentences(text)
    cites_of: list[tuple[int, ...]] = []
    following: tuple[int, ...] = ()
    for sentence in reversed(sentences):
        following = cited_numbers(sentence) or following
        cites_of.append(following)
    cites_of.reverse()
    with_figures = 0
    ungrounded = []
    for sentence, cites in zip(sentences, cites_of):
        figs = list(dict.fromkeys(figures(sentence)))
        if not figs:
            continue
        with_figures += 1
        missing = [f for f in figs if not any(f in held(n) for n in cites)]
        if missing:
            ungrounded.append({"sentence": sentence, "missing": missing, "cites": list(cites)})
    return {"sentences": len(sentences), "figure_sentences": with_figures, "ungrounded": ungrounded}


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


def grounding_shares(rows: Sequence[Mapping]) -> dict:
    """Pooled grounding outcome of the generated sentences of LLM answers.

    ``checks`` ({"kept", "repaired", "dropped", "timed_out"}) is set on LLM answers only:
    the shares are over all their sentences together (NaN when no row has any, e.g. for
    the extractive generator, whose every sentence is a quote); ``timed_out`` counts the
    answers stopped at the time limit.
    """
    checked = [r["checks"] for r in rows if r.get("checks")]
    kept = sum(int(c.get("kept", 0)) for c in checked)
    repaired = sum(int(c.get("repaired", 0)) for c in checked)
    dropped = sum(int(c.get("dropped", 0)) for c in checked)
    total = kept + repaired + dropped
    return {
        "llm_sentences": total if checked else None,
        "grounded_share": _ratio(kept, total),
        "repaired_share": _ratio(repaired, total),
        "dropped_share": _ratio(dropped, total),
        "timed_out": sum(int(bool(c.get("timed_out", 0))) for c in checked) if checked else None,
    }


def answer_summary(rows: Sequence[Mapping]) -> dict:
    """Aggregate per-question answer rows.

    Each row: {"answerable", "refused", "key_recall", "citations_ok"} and optionally
    {"n_citations", "n_supported"} (citations given / citations whose passage holds evidence),
    {"lang", "answer_lang"} (question / answer language), {"generator", "requested"} (which
    generator answered / was asked), {"checks"} (LLM grounding counts), {"figure_check"}
    (``figure_check`` of the answer, None when not checked) and {"first_text_s", "total_s"}
    (seconds; None for a failed answer).
    """
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in answerable if not r["refused"]]
    shown = [r for r in rows if not r["refused"]]
    figs = [r["figure_check"] for r in shown if r.get("figure_check") is not None]
    english = [r for r in shown if r.get("lang") == "en" and r.get("answer_lang") is not None]
    first = [r["first_text_s"] for r in rows if r.get("first_text_s") is not None]
    total = [r["total_s"] for r in rows if r.get("total_s") is not None]
    asked_other = [r for r in rows if r.get("requested") not in (None, "extractive")]
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
        **grounding_shares(shown),
        # independent figure check of every shown (non-refused) answer: sentences holding a
        # figure that no passage they cite holds (target 0), out of the sentences with a figure
        "sentences_checked": sum(f["sentences"] for f in figs) if figs else None,
        "figure_sentences": sum(f["figure_sentences"] for f in figs) if figs else None,
        "ungrounded_figure_sentences": sum(len(f["ungrounded"]) for f in figs) if figs else None,
        # non-refused answers to English questions written in English
        "n_english_answered": len(english),
        "english_in_english": mean(r["answer_lang"] == "en" for r in english),
        # seconds from the question to the first answer text shown / to the whole answer
        "first_text_p50_s": percentile(first, 50),
        "first_text_p95_s": percentile(first, 95),
        "total_p50_s": percentile(total, 50),
        "total_p95_s": percentile(total, 95),
        "answered_by": dict(Counter(r["generator"] for r in rows if r.get("generator"))),
        # asked for another generator (the LLM) but answered by the extractive composer
        "fell_back": sum(r.get("generator") == "extractive" for r in asked_other) if asked_other else None,
    }
