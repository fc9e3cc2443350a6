"""Deciding that the corpus holds no answer, from signals calibrated on the dev set.

1. **Support** (``qa.slots``): how much of what the question asks for — its terms, the years
   it names, the number, body or date it asks for — one retrieved sentence holds. The
   signal that catches near misses (the topic is there, the asked figure is not).
2. **Coverage**: the idf-weighted share of the question's content terms (interrogatives
   removed) that occur in the retrieved passages (with their titles and section paths,
   as BM25 sees them). A question about 贵州省 or 2030 when no passage mentions them has
   low coverage. For an English question only language-neutral terms count (numbers,
   and Latin terms the corpus contains, like 5G or IPv6), since its words cannot match
   Chinese text; with none, coverage is 1 (no evidence either way).
3. **Best sentence cosine**: the e5 cosine of the best candidate sentence. Only used for
   Chinese questions: cross-lingual cosines sit on a lower scale and, on the dev set,
   did not separate answerable from unanswerable English questions at all.

The rule compares support × coverage (``EvidenceSignal.evidence``) and the cosine against
thresholds that ``python -m qa.calibrate`` chooses on the dev set
(``QASettings.refusal_min_evidence``, ``refusal_min_cosine``, and their ``refusal_llm_*``
counterparts when the LLM's judgement joins them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache


from retriever import Hit, Retriever
from retriever.passages import keyword_text
from retriever.terms import terms
from settings import QASettings

from .language import EN
from .sentences import Sentence
from .slots import asked, best_support

INTERROGATIVES = re.compile(
    r"哪[一两兩几幾]?[个個年天份项項类類位些种種方面里裡家所条條]*|什[么麼](?:样的|樣的)?|多少|[几幾][个個项項类類位种種]?"
    r"|如何|怎[么麼]样?|怎[样樣]|为什[么麼]|為什[麼么]|是否|何时|何時|吗|嗎|呢"
)
_ORDINAL = re.compile(r"^\d+(?:st|nd|rd|th)$")
_DIGIT = re.compile(r"\d")


def content_terms(question: str) -> list[str]:
    """The question's search terms without its question words (哪一年, 多少, 什么…)."""
    return terms(INTERROGATIVES.sub(" ", question))


@dataclass(frozen=True)
class EvidenceSignal:
    coverage: float  # 0..1, see module docstring
    best_cosine: float  # e5 cosine of the best candidate sentence (or passage)
    cross_lingual: bool  # an English question over Chinese text: the cosine is not compared
    missing: list[str] = field(default_factory=list)  # content terms no passage contains
    model_yes: float | None = None  # the LLM's log P(yes) − log P(no) that the passages answer
    support: float = 1.0  # 0..1, the best sentence's share of what the question asks (qa.slots)

    @property
    def evidence(self) -> float:
        """What the rule compares: support scaled by coverage, so that both the best sentence
        and the passages as a whole must hold the question (a name the corpus lacks, like
        贵州省, lowers coverage more than the best sentence's share; on the dev set the
        product refused more at the same false-refusal rate than support alone)."""
        return self.support * self.coverage

    def with_model(self, score: float) -> "EvidenceSignal":
        return replace(self, model_yes=score)

    def as_dict(self) -> dict:
        out = {"evidence": round(self.evidence, 4), "support": round(self.support, 4),
               "coverage": round(self.coverage, 4),
               "best_cosine": round(self.best_cosine, 4),
               "cross_lingual": self.cross_lingual, "missing": self.missing}
        if self.model_yes is not None:
            out["model_yes"] = round(self.model_yes, 4)
        return out


class RefusalJudge:
    def __init__(self, retriever: Retriever, settings: QASettings):
        self.retriever = retriever
        self.cfg = settings
        self.df = lru_cache(maxsize=50000)(self._df)
        self._hit_terms = lru_cache(maxsize=5000)(lambda text: frozenset(terms(text)))

    def _df(self, term: str) -> int:
        """Passages whose keyword text holds ``term`` (asked of the index's store)."""
        return self.retriever.document_frequency(term)

    def idf(self, term: str) -> float:
        """The corpus' weight of ``term`` (rarer: higher), from the index's passage counts."""
        return math.log(1 + max(len(self.retriever), 1) / (1 + self.df(term)))

    def signal(self, question: str, lang: str, hits: list[Hit], best_cosine: float,
               sentences: Sequence[Sentence] | None = None) -> EvidenceSignal:
        """``hits``: the passages coverage looks at; ``sentences``: the candidate sentences
        support looks at (None: support is not measured and stays 1; empty: nothing supports)."""
        terms_asked = content_terms(question)
        q_terms = set(terms_asked)
        support = 1.0
        if sentences is not None:
            renderings = self.retriever.translate(question).units if lang == EN else ()
            frame = asked(question, lang, terms_asked, renderings, self.idf, self.df)
            support = best_support(frame, sentences)
        if lang == EN:
            q_terms = {t for t in q_terms if not _ORDINAL.match(t) and (_DIGIT.search(t) or self.df(t) > 0)}
        if not q_terms:
            return EvidenceSignal(1.0, best_cosine, lang == EN, support=support)
        found: set[str] = set()
        for hit in hits:
            found |= self._hit_terms(keyword_text(hit.to_chunk()))
        weight = {t: self.idf(t) for t in q_terms}
        coverage = sum(weight[t] for t in q_terms & found) / sum(weight.values())
        return EvidenceSignal(coverage, best_cosine, lang == EN, sorted(q_terms - found), support=support)

    def refuse(self, signal: EvidenceSignal) -> bool:
        """Retrieval signals alone, or, when the LLM judged the passages, the three together
        (each with its own calibrated threshold: the model's judgement lets the retrieval
        thresholds be gentler)."""
        cfg = self.cfg
        if signal.model_yes is None:
            evidence, cosine = cfg.refusal_min_evidence, cfg.refusal_min_cosine
        else:
            evidence, cosine = cfg.refusal_llm_evidence, cfg.refusal_llm_cosine
            if signal.model_yes < cfg.refusal_llm_min_yes:
                return True
        if signal.evidence < evidence:
            return True
        return not signal.cross_lingual and signal.best_cosine < cosine
