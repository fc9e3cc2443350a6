"""Running a question set through retrieval (several configurations) and, if present, QA.

For every question and every retrieval configuration (``bm25``, ``dense``, ``hybrid``)
the top-k passages are retrieved and each is checked for the question's evidence spans
(``eval.normalize.contains_span``). Answers are generated with ``EvalSettings.answer_mode``
(hybrid) when the ``qa`` stage can be imported, once per generator listed in
``EvalSettings.generators`` (extractive, llm), and scored per generator side by side; the
LLM is skipped, with its reason recorded, where ``Assistant.llm_notice()`` says it cannot run.

Unanswerable questions are left out of the retrieval metrics (they have no evidence);
they count for the refusal metrics of the answers.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from settings import Settings

from . import metrics
from .normalize import normalize, strip_citation_marks
from .schema import LineError, Question

MODES = ("bm25", "dense", "hybrid")
GENERATORS = ("extractive", "llm")
GATED_GENERATOR = "extractive"  # the generator whose answers eval/gate.py checks


@dataclass
class EvalOptions:
    configs: tuple[str, ...] = MODES
    k: int = 10
    cutoffs: tuple[int, ...] = (1, 3, 5, 10)
    mrr_k: int = 10
    partial: float = 0.8
    answer_mode: str = "hybrid"
    answers: bool | None = None  # None: score answers when ``qa`` is importable
    generators: tuple[str, ...] = ("extractive",)  # answer generators compared side by side
    # retrieval searches what an LLM answer searches: English questions with the LLM's rendering
    # beside the dictionary's (QASettings.llm_translate); needs the LLM
    llm_translation: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "EvalOptions":
        cfg = settings.eval
        options = cls(
            configs=parse_list(cfg.configs),
            k=cfg.k,
            cutoffs=tuple(int(x) for x in parse_list(cfg.cutoffs)),
            mrr_k=cfg.mrr_k,
            partial=cfg.partial_span,
            answer_mode=cfg.answer_mode,
            generators=parse_list(cfg.generators),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(options, key, value)
        options.validate()
        return options

    def validate(self) -> None:
        unknown = [c for c in self.configs if c not in MODES]
        if unknown or not self.configs:
            raise ValueError(f"unknown retrieval configuration(s) {unknown}; use {', '.join(MODES)}")
        if self.answer_mode not in MODES:
            raise ValueError(f"unknown answer mode {self.answer_mode!r}")
        unknown = [g for g in self.generators if g not in GENERATORS]
        if unknown or not self.generators:
            raise ValueError(f"unknown answer generator(s) {unknown}; use {', '.join(GENERATORS)}")
        if self.k <= 0:
            raise ValueError(f"k must be positive, got {self.k}")
        if not 0 < self.partial <= 1:
            raise ValueError(f"partial span share must be in (0, 1], got {self.partial}")

    @property
    def used_cutoffs(self) -> tuple[int, ...]:
        return tuple(n for n in self.cutoffs if n <= self.k) or (self.k,)

    @property
    def used_mrr_k(self) -> int:
        return min(self.mrr_k, self.k)


@dataclass
class EvalResult:
    rows: list[dict] = field(default_factory=list)  # one per question per configuration
    summary: dict = field(default_factory=dict)


def parse_list(text: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(text, str):
        text = text.split(",")
    return tuple(x.strip() for x in text if x and x.strip())


def load_assistant_class() -> tuple[type | None, str | None]:
    """(``qa.Assistant``, None) or (None, why it is not available)."""
    try:
        from qa import Assistant  # noqa: PLC0415 - optional stage, may not exist yet
    except ImportError as exc:
        return None, f"qa is not importable ({exc})"
    except Exception as exc:  # noqa: BLE001 - a half-written qa must not break retrieval eval
        return None, f"qa failed to import ({exc.__class__.__name__}: {exc})"
    return Assistant, None


def load_answer_checks() -> tuple[Callable[[str], Sequence[str]] | None, Callable[[str], str] | None, str | None]:
    """(``qa.grounding.figures``, ``qa.language.question_language``, why one is missing or None)."""
    figures = language = None
    reasons = []
    try:
        from qa.grounding import figures  # noqa: PLC0415 - optional, written alongside the eval
    except Exception as exc:  # noqa: BLE001
        reasons.append(f"figure check unavailable: qa.grounding.figures ({exc.__class__.__name__}: {exc})")
    try:
        from qa.language import question_language as language  # noqa: PLC0415
    except Exception as exc:  # noqa: BLE001
        reasons.append(f"answer language unavailable: qa.language ({exc.__class__.__name__}: {exc})")
    return figures, language, "; ".join(reasons) or None


def _clean_nan(value: Any) -> Any:
    """JSON has no NaN: metrics that are undefined (no questions in a group) become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_nan(v) for v in value]
    return value


def _hit_record(hit, has_evidence: bool) -> dict:
    return {
        "chunk_id": hit.chunk_id,
        "doc_id": hit.doc_id,
        "section": hit.section,
        "score": round(float(hit.score), 6),
        "evidence": has_evidence,
    }


def _evidence_text(retriever, hit) -> str:
    """The text a hit's evidence is looked for in: the passage, and for a table-row passage
    (a rendering of its row) also the row as the document has it, which the source view shows."""
    if getattr(hit, "kind", "text") != "table_row" or retriever is None:
        return hit.text
    doc = retriever.document(hit.doc_id)
    return hit.text if doc is None else f"{hit.text}\n{doc.text[hit.start:hit.end]}"


def retrieve_one(retriever, question: Question, mode: str, options: EvalOptions, translation=None) -> dict:
    """Search one question with one configuration and score the ranked list (``translation``:
    the Chinese rendering to search beside it; None: the retriever's own)."""
    row: dict[str, Any] = {
        "id": question.id, "config": mode, "type": question.type, "lang": question.lang,
        "question": question.question, "answerable": question.answerable,
    }
    started = time.perf_counter()
    try:
        hits = retriever.search(question.question, k=options.k, mode=mode, translation=translation)
        error = None
    except Exception as exc:  # noqa: BLE001 - one failing question must not end the run
        hits, error = [], f"{exc.__class__.__name__}: {exc}"
    wall = time.perf_counter() - started
    timings = dict(getattr(retriever, "last_timings", {}) or {}) if error is None else {}
    timings["total"] = wall
    flags = metrics.evidence_flags([_evidence_text(retriever, h) for h in hits], question.evidence, options.partial)
    doc_ids = [h.doc_id for h in hits]
    row.update(
        chunk_ids=[h.chunk_id for h in hits],
        doc_ids=doc_ids,
        hits=[_hit_record(h, f) for h, f in zip(hits, flags)],
        first_evidence_rank=metrics.first_rank(flags) if question.answerable else None,
        all_docs_rank=metrics.all_docs_rank(doc_ids, flags, question.docs) if question.answerable else None,
        timings=timings,
        error=error,
        answers={},  # generator -> scored answer, on the answer configuration's rows
    )
    return row


def answer_one(
    assistant,
    question: Question,
    options: EvalOptions,
    generator: str = "extractive",
    *,
    figures: Callable[[str], Sequence[str]] | None = None,
    language: Callable[[str], str] | None = None,
) -> dict:
    """Ask one question with one generator and score the answer.

    ``figures`` (``qa.grounding.figures``) and ``language`` (``qa.language.question_language``)
    drive the figure check and the answer-language check of a shown (non-refused) answer;
    either may be None (check not done, its fields None).
    """
    started = time.perf_counter()
    try:
        ans = assistant.ask(question.question, generator=generator)
        error = None
    except Exception as exc:  # noqa: BLE001
        ans, error = None, f"{exc.__class__.__name__}: {exc}"
    wall = time.perf_counter() - started
    if ans is None:
        return {"text": "", "citations": [], "refused": False, "timings": {"wall": wall}, "error": error,
                "key_recall": 0.0 if question.answerable else None, "citations_ok": False,
                "n_citations": 0, "n_supported": 0, "requested": generator, "generator": None, "checks": {},
                "answer_lang": None, "figure_check": None, "first_text_s": None, "total_s": None}
    citations = list(getattr(ans, "citations", []) or [])
    cited_texts = [_evidence_text(getattr(assistant, "retriever", None), c.hit) for c in citations]
    support = metrics.evidence_flags(cited_texts, question.evidence, options.partial)
    timings = {k: float(v) for k, v in (getattr(ans, "timings", {}) or {}).items() if isinstance(v, (int, float))}
    timings["wall"] = wall
    total_s = timings.get("total", wall)
    text = ans.text or ""
    refused = bool(ans.refused)
    figure_check = answer_lang = figure_error = None
    if not refused and figures is not None:
        try:  # the passages as cited (what the reader sees), not the evidence texts above
            figure_check = metrics.figure_check(text, {c.n: c.hit.text for c in citations}, figures)
        except Exception as exc:  # noqa: BLE001 - a half-written checker must not end the run
            figure_error = f"{exc.__class__.__name__}: {exc}"
    if not refused and language is not None:
        answer_lang = language(strip_citation_marks(text))
    return {
        "text": text,
        "refused": refused,
        "citations": [
            {"n": c.n, "chunk_id": c.hit.chunk_id, "doc_id": c.hit.doc_id, "quote": c.quote, "supports": s}
            for c, s in zip(citations, support)
        ],
        "key_recall": metrics.key_recall(ans.text, question.answer_keys) if question.answerable else None,
        "citations_ok": bool(citations) and all(support) if question.answerable else None,
        "n_citations": len(citations),
        "n_supported": sum(support) if question.answerable else 0,
        "timings": timings,
        "error": error,
        "requested": generator,
        "generator": getattr(ans, "generator", None),
        "checks": {k: int(v) for k, v in (getattr(ans, "checks", {}) or {}).items() if isinstance(v, (int, float))},
        "answer_lang": answer_lang,
        "figure_check": figure_check,
        "figure_check_error": figure_error,  # the checker itself failed (not counted as an answer error)
        # first_text is new in qa: an Answer without it showed its text all at once, at the end
        "first_text_s": timings.get("first_text", total_s),
        "total_s": total_s,
    }


def _groups(rows: list[dict], key: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row[key], []).append(row)
    return out


def _retrieval_block(rows: list[dict], options: EvalOptions) -> dict:
    scored = [{"rank": r["first_evidence_rank"], "all_docs_rank": r["all_docs_rank"], "type": r["type"]}
              for r in rows if r["answerable"]]
    return metrics.retrieval_summary(scored, options.used_cutoffs, options.used_mrr_k)


def _answer_block(rows: list[dict]) -> dict:
    """Rows: the answer dict of one generator plus the question's answerable/type/lang."""
    return metrics.answer_summary(rows)


def _generator_block(rows: list[dict], name: str) -> dict:
    """Every answer metric of one generator, overall and by type and language."""
    return {
        "generator": name,
        **_by(rows, _answer_block, ("type", "lang")),
        "latency": metrics.latency_summary(r["timings"] for r in rows if not r["error"]),
        "errors": sum(1 for r in rows if r["error"]),
    }


def _llm_notice(assistant) -> str | None:
    notice = getattr(assistant, "llm_notice", None)
    return notice() if callable(notice) else None


def _by(rows: list[dict], block: Callable[[list[dict]], dict], keys: Sequence[str]) -> dict:
    out: dict[str, Any] = {"overall": block(rows)}
    for key in keys:
        groups = _groups(rows, key)
        order = list(dict.fromkeys(k for k in _ORDER[key] if k in groups)) + sorted(set(groups) - set(_ORDER[key]))
        out[f"by_{key}"] = {g: block(groups[g]) for g in order}
    return out


_ORDER = {
    "type": ("factoid", "number", "list", "why", "comparison", "unanswerable"),
    "lang": ("zh", "zh-Hant", "en"),
}


def _load() -> list[float] | None:
    """1/5/15-minute load averages: a busy machine explains slow timings."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def check_evidence(questions: Sequence[Question], retriever) -> dict:
    """Questions whose listed docs are not indexed or whose evidence is in no indexed document.

    Such a question cannot score a retrieval hit whatever the retriever does, so it is
    named in the report rather than silently lowering the numbers.
    """
    documents = getattr(retriever, "documents", {}) or {}
    normed = {doc_id: normalize(doc.text) for doc_id, doc in documents.items()}
    missing_docs, missing_spans = [], []
    for q in questions:
        absent = [d for d in q.docs if d not in normed]
        if absent:
            missing_docs.append({"id": q.id, "docs": absent})
        for span in q.evidence:
            norm = normalize(span)
            if norm and not any(norm in text for text in normed.values()):
                missing_spans.append({"id": q.id, "span": span})
    return {"docs_not_indexed": missing_docs, "evidence_not_in_index": missing_spans}


def run_evaluation(
    questions: Sequence[Question],
    retriever,
    settings: Settings,
    options: EvalOptions | None = None,
    *,
    assistant=None,
    progress: bool = True,
    skipped: Sequence[LineError] = (),
    source: str = "",
    log=sys.stderr,
    figures: Callable[[str], Sequence[str]] | None = None,
    language: Callable[[str], str] | None = None,
) -> EvalResult:
    """Evaluate ``questions`` against an open ``retriever`` (and an Assistant, if any).

    ``figures``/``language`` replace ``qa.grounding.figures``/``qa.language.question_language``
    in the answer checks (tests); by default they are imported from ``qa``.
    """
    options = options or EvalOptions.from_settings(settings)
    options.validate()
    configs = list(dict.fromkeys(options.configs))

    answers_reason = None
    if options.answers is False:
        answers_reason = "disabled (--no-answers)"
    elif assistant is None:
        assistant_cls, answers_reason = load_assistant_class()
        if assistant_cls is not None:
            try:
                answer_settings = settings.override("retrieval", mode=options.answer_mode)
                assistant = assistant_cls(retriever, answer_settings)
            except Exception as exc:  # noqa: BLE001
                answers_reason = f"qa.Assistant could not be created ({exc.__class__.__name__}: {exc})"
        if assistant is None and options.answers:
            raise RuntimeError(f"answers were requested but {answers_reason}")
    do_answers = assistant is not None and options.answers is not False
    generators = list(dict.fromkeys(options.generators))
    generators_skipped: dict[str, str] = {}
    checks_note = None
    if do_answers:
        if "llm" in generators and (notice := _llm_notice(assistant)) is not None:
            print(f"llm generator skipped: {notice}", file=log)
            generators_skipped["llm"] = notice
        generators = [g for g in generators if g not in generators_skipped]
        if not generators:
            do_answers = False
            answers_reason = "; ".join(f"{g} skipped: {why}" for g, why in generators_skipped.items())
        elif figures is None or language is None:
            loaded_figures, loaded_language, checks_note = load_answer_checks()
            figures = figures or loaded_figures
            language = language or loaded_language
            if checks_note:
                print(checks_note, file=log)
    if do_answers and options.answer_mode not in configs:
        configs.append(options.answer_mode)
    renderings, translate_s = {}, []
    if options.llm_translation:
        if assistant is None:  # answers are off: an assistant only for the renderings
            assistant_cls, why = load_assistant_class()
            if assistant_cls is None:
                raise RuntimeError(f"--llm-translation needs the qa stage: {why}")
            assistant = assistant_cls(retriever, settings)
        if (notice := _llm_notice(assistant)) is not None:
            raise RuntimeError(f"--llm-translation needs the LLM: {notice}")
        for q in tqdm(questions, desc="LLM renderings", unit="q", disable=not progress, file=log):
            timed: dict[str, float] = {}
            renderings[q.id] = assistant.translate(q.question, generator="llm", timings=timed)
            if "translate" in timed:
                translate_s.append(timed["translate"])

    load_before = _load()
    # Warm-up (model kernels, caches) so the first timed query is not an outlier.
    if questions:
        for mode in configs:
            try:
                retriever.search(questions[0].question, k=options.k, mode=mode)
            except Exception:  # noqa: BLE001 - the real run reports it
                pass

    rows: list[dict] = []
    total = len(questions) * len(configs) + (len(questions) * len(generators) if do_answers else 0)
    bar = tqdm(total=total, desc="eval", unit="q", disable=not progress, file=log)
    by_key: dict[tuple[str, str], dict] = {}
    for mode in configs:
        bar.set_postfix_str(mode)
        for q in questions:
            row = retrieve_one(retriever, q, mode, options, renderings.get(q.id))
            if row["error"]:
                print(f"{q.id} ({mode}): search failed: {row['error']}", file=log)
            rows.append(row)
            by_key[(q.id, mode)] = row
            bar.update()
    notices_after: dict[str, str] = {}
    if do_answers:
        original = retriever.settings
        try:
            if original.retrieval.mode != options.answer_mode:
                retriever.settings = original.override("retrieval", mode=options.answer_mode)
            for name in generators:
                bar.set_postfix_str(f"answers ({options.answer_mode}, {name})")
                for q in questions:
                    result = answer_one(assistant, q, options, name, figures=figures, language=language)
                    if result["error"]:
                        print(f"{q.id} ({name}): answering failed: {result['error']}", file=log)
                    by_key[(q.id, options.answer_mode)]["answers"][name] = result
                    bar.update()
                if name == "llm" and (notice := _llm_notice(assistant)) is not None:
                    # e.g. the model failed to load at the first question: its answers fell back
                    print(f"llm generator: {notice}", file=log)
                    notices_after[name] = notice
        finally:
            retriever.settings = original
    bar.close()

    summary: dict[str, Any] = {
        "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "questions_file": source,
        "index": str(getattr(retriever, "path", "")),
        "index_chunks": len(retriever) if hasattr(retriever, "__len__") else None,
        "model_id": (getattr(retriever, "manifest", None) or {}).get("model_id") or None,
        "host": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": _load()},
        "n_questions": len(questions),
        "llm_translation": ({"questions": len(translate_s), **metrics.latency_summary({"translate": t} for t in translate_s)}
                            if options.llm_translation else None),
        "n_answerable": sum(q.answerable for q in questions),
        "skipped_lines": [{"line": e.line, "message": e.message} for e in skipped],
        "options": {
            "configs": configs, "k": options.k, "cutoffs": list(options.used_cutoffs),
            "mrr_k": options.used_mrr_k, "partial_span": options.partial, "answer_mode": options.answer_mode,
            "generators": list(dict.fromkeys(options.generators)),
        },
        "retrieval": {},
        "latency": {},
        "answers": None,
        "answers_skipped": None if do_answers else answers_reason,
        "diagnostics": check_evidence(questions, retriever),
    }
    for mode in configs:
        mode_rows = [r for r in rows if r["config"] == mode]
        summary["retrieval"][mode] = _by(mode_rows, lambda rs: _retrieval_block(rs, options), ("type", "lang"))
        summary["latency"][mode] = metrics.latency_summary(r["timings"] for r in mode_rows if not r["error"])
    if do_answers:
        blocks = {}
        for name in generators:
            answer_rows = [{"id": r["id"], "answerable": r["answerable"], "type": r["type"], "lang": r["lang"],
                            **r["answers"][name]}
                           for r in rows if r["config"] == options.answer_mode and name in r["answers"]]
            blocks[name] = _generator_block(answer_rows, name)
            if name in notices_after:
                blocks[name]["notice"] = notices_after[name]
        gated = GATED_GENERATOR if GATED_GENERATOR in blocks else generators[0]
        summary["answers"] = {
            "config": options.answer_mode,
            "requested": list(dict.fromkeys(options.generators)),
            "generators": blocks,  # one block per generator scored, in the order asked
            "skipped": generators_skipped,  # generator -> why it was not run
            "checks_unavailable": checks_note,
            # the gated generator's block again at the top, where eval/gate.py reads it
            "gated": gated,
            **{key: blocks[gated][key] for key in ("overall", "by_type", "by_lang", "latency", "errors")},
        }
    summary["search_errors"] = sum(1 for r in rows if r["error"])
    return EvalResult(rows=[_clean_nan(r) for r in rows], summary=_clean_nan(summary))
