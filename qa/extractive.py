"""The offline default generator: an answer made only of sentences quoted from the passages.

It cannot invent anything, which is the point: every sentence it writes is a verbatim
unit of a retrieved passage followed by that passage's marker. Sentences are scored by
e5 cosine to the question plus the share of the question's (locally idf-weighted) terms
they contain; the answer takes the best few with MMR so two near-identical sentences
(overlapping chunks, repeated targets) do not fill the budget. A comparison question gets
at least one sentence from each of its top documents. A sentence that addresses the
reader or the system (a planted instruction, a link to follow; ``qa.injection``) is
scored but never quoted.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from settings import QASettings

from .citations import CitationBuilder, marker
from .generator import Draft, Evidence, Piece
from .injection import overlaps_flagged
from .language import message
from .sentence_vectors import SentenceVectors
from .sentences import Sentence, split_passage

log = logging.getLogger(__name__)

_CJK_END = "。！？!?；;”’」』）)"


@dataclass(frozen=True)
class Scored:
    sentence: Sentence
    cosine: float  # e5 cosine between the question and the sentence
    overlap: float  # idf-weighted share of the question's terms found in the sentence
    relevance: float  # cosine + term_weight * overlap
    row: int  # row of the sentence's vector in ``Candidates.vectors``


@dataclass(frozen=True)
class Candidates:
    scored: list[Scored]  # passage order (rank, then offset)
    vectors: np.ndarray
    embed_s: float

    @property
    def quotable(self) -> list[Scored]:
        return [s for s in self.scored if s.sentence.quotable]

    @property
    def best(self) -> Scored | None:
        return max(self.quotable, key=lambda s: s.relevance, default=None)


class ExtractiveComposer:
    name = "extractive"

    def __init__(self, vectors: SentenceVectors, terms: Callable[[str], list[str]], settings: QASettings,
                 idf: Callable[[str], float] | None = None):
        self.vectors = vectors
        self.cfg = settings
        self._terms = lru_cache(maxsize=20000)(lambda text: frozenset(terms(text)))
        self.idf = idf  # the corpus' term weights; None: weights from the candidate sentences alone

    # -- scoring ----------------------------------------------------------------------
    def candidates(self, evidence: Evidence) -> Candidates:
        """Every quotable unit of the passages, scored against the question."""
        units = [_screened(u) for rank, hit in enumerate(evidence.hits)
                 for u in split_passage(hit, rank, self.cfg.max_sentence_chars, self.cfg.min_sentence_chars)]
        t0 = time.perf_counter()
        vectors = self.vectors.encode([u.text for u in units])
        embed_s = time.perf_counter() - t0
        cosines = vectors @ evidence.query_vector if len(units) else np.zeros(0)
        overlaps = self._overlaps(evidence.question, units, evidence.rendering)
        scored = [Scored(u, float(c), o, float(c) + self.cfg.term_weight * o, i)
                  for i, (u, c, o) in enumerate(zip(units, cosines, overlaps))]
        return Candidates(scored, vectors, embed_s)

    def _overlaps(self, question: str, units: list[Sentence], rendering: str = "") -> list[float]:
        """Idf-weighted share of the question's terms each unit holds; an English question's
        terms are its Chinese rendering's too (its own words rarely occur in Chinese text)."""
        q_terms = self._terms(question) | (self._terms(rendering) if rendering else frozenset())
        # a sentence speaks under its section's heading ("行动目标:到2018年……" under
        # "（二）北斗系统建设应用行动"): the last heading's terms count as the sentence's
        unit_terms = [self._terms(u.text) | self._terms(u.hit.section.rsplit(" > ", 1)[-1]) for u in units]
        if not q_terms or not units:
            return [0.0] * len(units)
        n = len(units)
        if self.idf is not None:
            weight = {t: self.idf(t) for t in q_terms}
        else:
            weight = {t: math.log(1 + n / (1 + sum(t in ts for ts in unit_terms))) for t in q_terms}
        total = sum(weight.values())
        return [sum(weight[t] for t in q_terms & ts) / total for ts in unit_terms]

    # -- selection --------------------------------------------------------------------
    def select(self, candidates: Candidates, evidence: Evidence) -> list[Scored]:
        """The answer's sentences: forced per-document picks, then MMR within the budget."""
        pool = candidates.quotable
        best = candidates.best
        if best is None:
            return []
        floor = best.relevance - self.cfg.sentence_margin
        chosen: list[Scored] = []
        if evidence.comparison:
            for doc_id in _top_documents(evidence, self.cfg.comparison_docs):
                own = [s for s in pool if s.sentence.hit.doc_id == doc_id]
                if own:
                    chosen.append(max(own, key=lambda s: s.relevance))
        if not chosen:
            chosen.append(best)
        used = sum(len(s.sentence.text) for s in chosen)
        rest = [s for s in pool if s.relevance >= floor and s not in chosen]
        lam = self.cfg.mmr_lambda
        while rest and len(chosen) < self.cfg.max_sentences:
            sims = candidates.vectors[[s.row for s in rest]] @ candidates.vectors[[s.row for s in chosen]].T
            mmr = [lam * s.relevance - (1 - lam) * float(sim.max()) for s, sim in zip(rest, sims)]
            pick = rest.pop(int(np.argmax(mmr)))
            if any(pick.sentence.text == s.sentence.text or _across_flagged(pick, s) or _same_row(pick, s)
                   for s in chosen):
                continue
            if (_is_row(pick) and any(_is_row(s) for s in chosen)
                    and not self._terms(_row_name(pick.sentence)) & self._terms(evidence.question)):
                continue  # rows share their title and headings: a further one only when the question names it
            if used + len(pick.sentence.text) > self.cfg.max_answer_chars:
                continue  # too long for what is left; a shorter one may still fit
            chosen.append(pick)
            used += len(pick.sentence.text)
        return _with_table_headers(chosen, candidates.scored)

    # -- writing ----------------------------------------------------------------------
    def generate(self, evidence: Evidence, builder: CitationBuilder | None = None) -> Iterator[Piece]:
        t0 = time.perf_counter()
        builder = CitationBuilder() if builder is None else builder
        candidates = self.candidates(evidence)
        chosen = self.select(candidates, evidence)
        pieces = [message("lead_in", evidence.lang)] if chosen and message("lead_in", evidence.lang) else []
        for i, unit in enumerate(_reading_order(chosen)):
            n = builder.quote(unit.hit, unit.start, unit.end)
            last = i == len(chosen) - 1
            pieces.append(unit.text + marker(n) + ("" if last else _separator(unit)))
        yield from pieces
        timings = {"embed": candidates.embed_s, "compose": time.perf_counter() - t0 - candidates.embed_s}
        yield Draft("".join(pieces), builder.citations(), self.name, timings)


def _screened(unit: Sentence) -> Sentence:
    """Not quotable when it belongs to a sentence addressing the reader or the system: such
    text is an instruction someone planted, never an answer to a factual question."""
    if not unit.quotable:
        return unit
    finding = overlaps_flagged(unit.hit.text, unit.start, unit.end)
    if finding is None:
        return unit
    log.info("not quoting instruction-like text in %s (%s)", unit.hit.chunk_id, finding)
    return replace(unit, quotable=False)


def _across_flagged(a: Scored, b: Scored) -> bool:
    """Two sentences of one passage with a flagged one between them: a citation's quote
    covers everything from the first to the last sentence it quotes, so it would show it."""
    x, y = a.sentence, b.sentence
    return (x.hit.chunk_id == y.hit.chunk_id
            and overlaps_flagged(x.hit.text, min(x.start, y.start), max(x.end, y.end)) is not None)


def _doc_span(unit: Sentence) -> tuple[int, int]:
    """Where a sentence lies in its document; a table-row passage renders its row: all of it."""
    if getattr(unit.hit, "kind", "text") == "table_row":
        return unit.hit.start, unit.hit.end
    return unit.doc_start, unit.doc_end


def _is_row(s: Scored) -> bool:
    return getattr(s.sentence.hit, "kind", "text") == "table_row"


def _row_name(unit: Sentence) -> str:
    """The row's own label in a table-row rendering ("title｜category｜name：values")."""
    return unit.text.split("：", 1)[0].split("｜")[-1]


def _same_row(a: Scored, b: Scored) -> bool:
    """A table row's rendering and the same row as a text passage has it: one fact, quoted once."""
    x, y = a.sentence, b.sentence
    kinds = {getattr(x.hit, "kind", "text"), getattr(y.hit, "kind", "text")}
    if x.hit.doc_id != y.hit.doc_id or "table_row" not in kinds or len(kinds) == 1:
        return False
    (xs, xe), (ys, ye) = _doc_span(x), _doc_span(y)
    return xs < ye and ys < xe


def _top_documents(evidence: Evidence, n: int) -> list[str]:
    docs: list[str] = []
    for hit in evidence.hits:
        if hit.doc_id not in docs:
            docs.append(hit.doc_id)
    return docs[:n]


def _with_table_headers(chosen: list[Scored], pool: list[Scored]) -> list[Scored]:
    """A table row means nothing without its column headings: quote those too."""
    out = list(chosen)
    for s in chosen:
        header = s.sentence.table_header
        if header is not None and not any(o.sentence.hit.chunk_id == header.hit.chunk_id
                                           and o.sentence.start == header.start for o in out):
            match = next((p for p in pool if p.sentence == header), None)
            if match is not None:
                out.append(match)
    return out


def _reading_order(chosen: list[Scored]) -> list[Sentence]:
    """Passages in order of their best sentence; within a passage, document order."""
    best_of: dict[str, float] = {}
    for s in chosen:
        key = s.sentence.hit.chunk_id
        best_of[key] = max(best_of.get(key, -math.inf), s.relevance)
    ordered = sorted(chosen, key=lambda s: (-best_of[s.sentence.hit.chunk_id], s.sentence.start))
    return [s.sentence for s in ordered]


def _separator(unit: Sentence) -> str:
    if unit.is_table_row:
        return "\n"
    return "" if unit.text[-1] in _CJK_END else " "
