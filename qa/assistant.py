"""The QA entry point: question (+ history) → rewritten query → passages → cited answer.

    from qa import Assistant
    a = Assistant.load("index")
    ans = a.ask("十四五规划对数字经济核心产业增加值占GDP比重提出了什么目标?")
    for piece in a.stream("那IPv6呢?", history=[(q1, ans.text)]): ...

Nothing a user can type makes ``ask``/``stream`` raise: an empty, unsupported-script or
unsearchable question comes back as an ``Answer`` with ``refused=True`` and a message in
the question's language (``text``), so the app shows it like any other answer. A broken
LLM (missing model, out of memory, any exception) degrades to the extractive composer
with a logged warning. Errors of the setup itself (a missing index) raise at ``load``, and a
scope (``doc_ids``) naming a document the index does not hold raises ``UnknownDocument``:
callers choose a scope from the library, so an unknown id is their error, not the user's.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from retriever import Embedder, Hit, QueryError, Retriever, Translation
from retriever.library import check_known
from retriever.terms import terms
from settings import Settings, load_settings

from .citations import CitationBuilder
from .extractive import ExtractiveComposer
from .followup import FollowUpRewriter
from .generator import Draft, Evidence, Generator
from .llm import ModelRefused, llm_unavailable
from .language import EN, UNSUPPORTED, message, question_language
from .records import Answer, Sources
from .refusal import EvidenceSignal, RefusalJudge, content_terms
from .sentence_vectors import SentenceVectors

log = logging.getLogger(__name__)

GENERATORS = ("auto", "extractive", "llm")
_COMPARISON = re.compile(r"比较|比較|相比|对比|對比|异同|異同|区别|區別|差异|差異|不同|相同|共同|分别|分別|两者|兩者|二者|都"
                         r"|\b(?:compare[sd]?|comparison|both|differ(?:s|ence)?|versus|vs\.?|similar|in common)\b",
                         re.IGNORECASE)
_QUESTION_END = re.compile(r"[?？]")


def is_comparison(question: str) -> bool:
    """Compares documents: a comparison word, or two questions in one (…？…？)."""
    return bool(_COMPARISON.search(question)) or len(_QUESTION_END.findall(question.rstrip("?？ "))) >= 1


class Assistant:
    def __init__(self, retriever: Retriever, settings: Settings | None = None):
        self.retriever = retriever
        self.settings = settings or retriever.settings
        cfg = self.settings.qa
        self.vectors = SentenceVectors.shared(retriever.embedder, cfg.sentence_cache_dir)
        self.vectors.source = retriever.sentence_vectors  # answers embed nothing the index holds
        if retriever.manifest.get("sentence_count", 0) is None:
            log.info("index %s holds no sentence vectors (written before they were stored): sentences are "
                     "embedded on demand and cached; `python -m ingest SOURCE --index %s` adds them",
                     retriever.path, retriever.path)
        self.judge = RefusalJudge(retriever, cfg)
        self.extractive = ExtractiveComposer(self.vectors, terms, cfg, self.judge.idf if cfg.corpus_idf else None)
        self.rewriter = FollowUpRewriter(content_terms, cfg.followup_max_chars, cfg.history_turns)
        self._llm: Generator | None = None
        self._llm_lock = threading.Lock()
        self._llm_failed = False

    @classmethod
    def load(cls, path: str | Path, settings: Settings | None = None, embedder: Embedder | None = None) -> "Assistant":
        """Open the index directory (as ``Retriever.load``) and reuse its embedder."""
        settings = settings or load_settings()
        return cls(Retriever.load(path, settings, embedder=embedder), settings)

    @property
    def embedder(self) -> Embedder:
        return self.retriever.embedder

    # -- public API -------------------------------------------------------------------
    def ask(self, question: str, history: Any = None, k: int | None = None, generator: str | None = None,
            doc_ids: Sequence[str] | None = None) -> Answer:
        answer = None
        for piece in self.stream(question, history=history, k=k, generator=generator, doc_ids=doc_ids):
            if isinstance(piece, Answer):
                answer = piece
        assert answer is not None
        return answer

    def stream(self, question: str, history: Any = None, k: int | None = None,
               generator: str | None = None, sources: bool = False,
               doc_ids: Sequence[str] | None = None) -> Iterator[str | Sources | Answer]:
        """Yield the answer text in pieces, then the ``Answer`` (its text == the pieces joined).

        With ``sources=True`` the passages being read come first, as one ``Sources``, as soon
        as they are retrieved (the app shows them while the LLM is still writing).
        ``doc_ids`` scopes the answer to those documents: retrieval, the comparison extras and
        the refusal judge see nothing else (None or empty: the whole index). A follow-up keeps
        its scope when the caller passes it again with the history; unknown ids raise
        ``UnknownDocument`` before anything is yielded."""
        scope = self.scope(doc_ids)
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        question = question if isinstance(question, str) else ""
        lang = question_language(question)
        if not question.strip():  # no language to answer in: both
            yield from self._message(question, "empty", UNSUPPORTED, t_start)
            return
        if lang == UNSUPPORTED:
            yield from self._message(question, "unsupported", lang, t_start)
            return
        max_k = self.retriever.settings.retrieval.max_k
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= max_k):
            yield from self._message(question, "bad_k", lang, t_start, max_k=max_k)
            return
        note = ""
        cfg = self.settings.qa
        asked = " ".join(question.split())
        if len(asked) > cfg.max_question_chars:
            asked = asked[: cfg.max_question_chars]
            note = message("truncated", lang, n=cfg.max_question_chars) + "\n"
        rewrite = self.rewriter.rewrite(asked, history)
        query = rewrite.query
        name = self.generator_name(generator)
        if rewrite.method == "joined" and name == "llm":  # the rules could only join the two questions
            llm = self._llm_generator()
            if llm is not None:
                t0 = time.perf_counter()
                try:
                    query = llm.rewrite_followup(rewrite.previous, asked) or query
                except Exception as exc:  # noqa: BLE001 - the rules' query is still there
                    log.warning("LLM follow-up rewrite failed (%s: %s)", exc.__class__.__name__, exc)
                timings["rewrite"] = time.perf_counter() - t0
        comparison = is_comparison(asked)

        t0 = time.perf_counter()
        try:
            query_vector = self.retriever.embed_query(query)  # once, for retrieval and sentence scoring
            timings["embed_query"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            # the LLM renders an English question for retrieval too (QASettings.llm_translate)
            translator = self._llm_generator() if name == "llm" and lang == EN and cfg.llm_translate else None
            hits, named, rendering = self._retrieve(query, k, comparison, query_vector, scope, translator, timings)
        except QueryError as exc:
            log.info("question not searchable: %s", exc)
            yield from self._message(question, "empty", lang, t_start, query=query)
            return
        timings["retrieve"] = time.perf_counter() - t0
        if sources:
            yield Sources(hits=hits[: self.retriever.settings.retrieval.k] if hits else [], query=query,
                          generator=name)
        llm = self._llm_generator() if name == "llm" and hits else None
        evidence, signal = self._judge(Evidence(query, lang, hits, query_vector, comparison, named=named,
                                                rendering=rendering), llm, timings)
        if not hits or self.judge.refuse(signal):
            yield from self._refusal(question, query, lang, hits, signal, note, timings, t_start)
            return
        yield from self._generate(question, evidence, name, llm, signal, note, timings, t_start)

    def scope(self, doc_ids: Sequence[str] | None) -> list[str] | None:
        """The documents an answer may use: None for the whole index, else the ids (checked)."""
        if doc_ids is None or (not isinstance(doc_ids, str) and len(doc_ids) == 0):
            return None
        return check_known(doc_ids, self.retriever.documents, "the index (scope)")

    def generator_name(self, requested: str | None = None) -> str:
        """The generator an answer will use: ``auto`` is the LLM where it is installed."""
        name = requested or self.settings.qa.generator
        if name not in GENERATORS:
            log.warning("unknown generator %r; using the extractive composer", name)
            return "extractive"
        if name == "auto":
            return "llm" if self.llm_notice() is None else "extractive"
        return name

    def llm_notice(self) -> str | None:
        """Why the LLM cannot answer here (one line), or None when it can."""
        if self._llm_failed:
            return "the LLM failed to load (see the log); answers are extractive"
        return llm_unavailable(self.settings.qa)

    def evidence_signal(self, question: str, k: int | None = None,
                        with_model: bool = False) -> tuple[EvidenceSignal, list[Hit]]:
        """The refusal signals for a (self-contained) question, for calibration; with the
        LLM's answerability score when ``with_model`` (and the LLM is available)."""
        lang = question_language(question)
        query_vector = self.retriever.embed_query(question)
        translator = (self._llm_generator() if with_model and lang == EN and self.settings.qa.llm_translate
                      else None)
        hits, named, rendering = self._retrieve(question, k, is_comparison(question), query_vector,
                                                translator=translator)
        llm = self._llm_generator() if with_model and hits else None
        _, signal = self._judge(Evidence(question, lang, hits, query_vector, is_comparison(question), named=named,
                                         rendering=rendering), llm, {}, strict=True)
        return signal, hits

    def _judge(self, evidence: Evidence, llm, timings: dict[str, float],
               strict: bool = False) -> tuple[Evidence, EvidenceSignal]:
        """The candidate sentences (kept on the evidence) and the refusal signals, with the
        LLM's answerability score when ``llm`` is given: what answering and calibration share.
        A failing LLM leaves the retrieval signals to decide (``strict``: calibration, raises)."""
        t0 = time.perf_counter()
        candidates = self.extractive.candidates(evidence)
        evidence = replace(evidence, sentences=tuple(candidates.scored))
        timings["embed"] = time.perf_counter() - t0
        best = candidates.best
        sentences = [s.sentence for s in candidates.scored]
        if evidence.named:  # a question naming documents is answered by them: another's figure is a near miss
            sentences = [s for s in sentences if s.hit.doc_id in set(evidence.named)]
        signal = self.judge.signal(evidence.question, evidence.lang,
                                   evidence.hits[: self.retriever.settings.retrieval.k],
                                   best.cosine if best else 0.0, sentences)
        if llm is not None:
            t0 = time.perf_counter()
            try:
                signal = signal.with_model(llm.answerability(evidence))
            except Exception as exc:  # noqa: BLE001 - the retrieval signals alone still decide
                if strict:
                    raise
                log.warning("LLM answerability failed (%s: %s); refusal decided without it",
                            exc.__class__.__name__, exc)
            timings["judge"] = time.perf_counter() - t0
        return evidence, signal

    def warm_up(self, save: bool = True, stop: threading.Event | None = None) -> int:
        """Embed every sentence of the index ahead of time (and keep them on disk). ``stop``
        ends it early (between blocks), e.g. when the app shuts down."""
        from .sentence_vectors import sentence_texts

        cfg = self.settings.qa
        chunks = [c for doc in self.retriever.documents for c in self.retriever.passages_of(doc)]
        texts = self.vectors.missing(sentence_texts(chunks, cfg))  # the index's own are fetched, not embedded
        block = cfg.warm_up_block
        for lo in range(0, len(texts), block):
            if stop is not None and stop.is_set():
                break
            self.vectors.encode(texts[lo : lo + block], urgent=False)
        if save:
            self.vectors.save()
        return len(self.vectors)

    def translate(self, query: str, generator: str | None = None,
                  timings: dict[str, float] | None = None) -> Translation:
        """The Chinese rendering an answer by ``generator`` searches for ``query``: the
        dictionary's, plus the LLM's rendering of an English question when the LLM answers
        (``QASettings.llm_translate``). Evaluation uses it to score retrieval as answers see it."""
        translator = None
        if (self.generator_name(generator) == "llm" and self.settings.qa.llm_translate
                and question_language(query) == EN):
            translator = self._llm_generator()
        return self._translation(query, translator, timings)

    def _translation(self, query: str, translator, timings: dict[str, float] | None) -> Translation:
        translation = self.retriever.translate(query)
        if translator is not None:  # the LLM's rendering of the whole question joins the dictionary's
            t0 = time.perf_counter()
            try:
                translation = translation.with_lead(translator.translate_question(query) or "")
            except Exception as exc:  # noqa: BLE001 - the dictionary's rendering is still there
                log.warning("LLM question translation failed (%s: %s); searching with the dictionary's",
                            exc.__class__.__name__, exc)
            if timings is not None:
                timings["translate"] = time.perf_counter() - t0
        return translation

    # -- stages -----------------------------------------------------------------------
    def _retrieve(self, query: str, k: int | None, comparison: bool, query_vector,
                  scope: list[str] | None = None, translator=None,
                  timings: dict[str, float] | None = None) -> tuple[list[Hit], tuple[str, ...], str]:
        """The passages, the documents the question names (within ``scope``; none when the
        scope holds none of them), which the refusal judge asks to hold the answer, and the
        question's Chinese rendering ("" for a Chinese question), which sentence scoring uses."""
        # an English question's Chinese rendering and the documents the question names: once
        # for both searches (retriever/translate.py, retriever/routing.py)
        translation = self._translation(query, translator, timings)
        route = self.retriever.route(query, translation.text)
        hits = self.retriever.search(query, k=k, query_vector=query_vector, translation=translation, route=route,
                                     doc_ids=scope)
        docs = list(dict.fromkeys(h.doc_id for h in hits))
        allowed = self.retriever.documents if scope is None else scope
        wanted = max(self.settings.qa.comparison_docs, len(route.groups))
        if comparison and hits and len(docs) < wanted:
            # the named documents still missing first, else any other document (within the scope)
            others = ([d for d in route.doc_ids if d not in docs and d in allowed]
                      or [d for d in allowed if d not in docs])
            extra = (self.retriever.search(query, k=wanted - len(docs), doc_ids=others, query_vector=query_vector,
                                           translation=translation, route=route)
                     if others else [])
            hits = hits + [h for h in extra if h.doc_id not in docs]
        named = tuple(d for side in route.sides for d in side if scope is None or d in scope) if route else ()
        return hits, named, translation.primary

    def _generate(self, question: str, evidence: Evidence, name: str, llm: Generator | None,
                  signal: EvidenceSignal, note: str, timings: dict[str, float],
                  t_start: float) -> Iterator[str | Answer]:
        builder = CitationBuilder()
        emitted: list[str] = []
        if note:
            emitted.append(note)
            yield note
        draft: Draft | None = None
        t0 = time.perf_counter()
        if name == "llm" and llm is not None:
            try:
                draft = yield from _relay(llm.generate(evidence, builder), emitted, timings, t_start)
            except ModelRefused as exc:
                log.info("the LLM found no answer in the passages: %r", str(exc))
                timings["generate"] = time.perf_counter() - t0
                yield from self._refusal(question, evidence.question, evidence.lang, evidence.hits, signal,
                                         note, timings, t_start, generator="llm-refusal", note_shown=True)
                return
            except Exception as exc:  # noqa: BLE001 - any LLM failure degrades, never loses the answer
                log.warning("LLM generator failed (%s: %s); answering with the extractive composer",
                            exc.__class__.__name__, exc)
                draft = None
                builder = CitationBuilder() if len(emitted) <= bool(note) else builder
                if len(emitted) > bool(note):  # text already shown: continue after it
                    emitted.append("\n\n")
                    yield "\n\n"
        if draft is None:
            draft = yield from _relay(self.extractive.generate(evidence, builder), emitted, timings, t_start)
        timings["generate"] = time.perf_counter() - t0
        timings.update({key: value for key, value in draft.timings.items() if key not in timings})
        timings["total"] = time.perf_counter() - t_start
        yield Answer(question=question, text="".join(emitted), citations=builder.citations(),
                     query=evidence.question, generator=draft.generator, timings=timings,
                     checks=draft.checks, signals=signal.as_dict())

    def load_llm(self) -> bool:
        """Load the LLM now (it is shared by every Assistant of the process); False if it cannot."""
        return self._llm_generator() is not None

    def _llm_generator(self) -> Generator | None:
        with self._llm_lock:
            if self._llm is None:
                try:
                    from .llm import LLMGenerator

                    self._llm = LLMGenerator.load(self.settings.qa)
                except Exception as exc:  # noqa: BLE001 - missing/broken model: extractive instead
                    log.warning("LLM generator unavailable (%s: %s); answering with the extractive composer",
                                exc.__class__.__name__, exc)
                    self._llm_failed = True
                    return None
            return self._llm

    def _refusal(self, question: str, query: str, lang: str, hits: list[Hit], signal: EvidenceSignal,
                 note: str, timings: dict[str, float], t_start: float, generator: str = "refusal",
                 note_shown: bool = False) -> Iterator[str | Answer]:
        related = hits[: self.settings.qa.related_k]
        text = message("refusal", lang) + (" " + message("related", lang) if related else "")
        log.info("refused %r (%s): %s", query, generator, signal.as_dict())
        timings.setdefault("first_text", time.perf_counter() - t_start)
        yield text if note_shown else note + text
        timings["total"] = time.perf_counter() - t_start
        yield Answer(question=question, text=note + text, refused=True, related=related, query=query,
                     generator=generator, timings=timings, signals=signal.as_dict())

    def _message(self, question: str, key: str, lang: str, t_start: float, query: str = "",
                 **values: object) -> Iterator[str | Answer]:
        text = message(key, lang, **values)
        yield text
        yield Answer(question=question, text=text, refused=True, query=query, generator="message",
                     timings={"total": time.perf_counter() - t_start})


def _relay(pieces: Iterator, emitted: list[str], timings: dict[str, float], t_start: float):
    """Pass a generator's text pieces on (noting when the first one came); returns its Draft."""
    draft = None
    for piece in pieces:
        if isinstance(piece, Draft):
            draft = piece
        else:
            timings.setdefault("first_text", time.perf_counter() - t_start)
            emitted.append(piece)
            yield piece
    return draft
