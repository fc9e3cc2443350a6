"""Deciding that the corpus holds no answer, from two signals calibrated on the dev set.

1. **Coverage**: the idf-weighted share of the question's content terms (interrogatives
   removed) that occur in the retrieved passages (with their titles and section paths,
   as BM25 sees them). A question about 贵州省 or 2030 when no passage mentions them has
   low coverage. For an English question only language-neutral terms count (numbers,
   and Latin terms the corpus contains, like 5G or IPv6), since its words cannot match
   Chinese text; with none, coverage is 1 (no evidence either way).
2. **Best sentence cosine**: the e5 cosine of the best candidate sentence. Only used for
   Chinese questions: cross-lingual cosines sit on a lower scale and, on the dev set,
   did not separate answerable from unanswerable English questions at all.

The thresholds (``QASettings.refusal_threshold`` for coverage,
``QASettings.refusal_min_cosine`` for the cosine) come from ``python -m qa.calibrate``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache


from retriever import Hit, Retriever
from retriever.passages import keyword_text
from retriever.terms import terms
from settings import QASettings

from .language import EN

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

    def with_model(self, score: float) -> "EvidenceSignal":
        return replace(self, model_yes=score)

    def as_dict(self) -> dict:
        out = {"coverage": round(self.coverage, 4), "best_cosine": round(self.best_cosine, 4),
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

    def signal(self, question: str, lang: str, hits: list[Hit], best_cosine: float) -> EvidenceSignal:
        q_terms = set(content_terms(question))
        if lang == EN:
            q_terms = {t for t in q_terms if not _ORDINAL.match(t) and (_DIGIT.search(t) or self.df(t) > 0)}
        if not q_terms:
            return EvidenceSignal(1.0, best_cosine, lang == EN)
        found: set[str] = set()
        for hit in hits:
            found |= self._hit_terms(keyword_text(hit.to_chunk()))
        n = max(len(self.retriever), 1)
        weight = {t: math.log(1 + n / (1 + self.df(t))) for t in q_terms}
        coverage = sum(weight[t] for t in q_terms & found) / sum(weight.values())
        return EvidenceSignal(coverage, best_cosine, lang == EN, sorted(q_terms - found))

    def refuse(self, signal: EvidenceSignal) -> bool:
        """Retrieval signals alone, or, when the LLM judged the passages, the three together
        (each with its own calibrated threshold: the model's judgement lets the retrieval
        thresholds be gentler)."""
        cfg = self.cfg
        if signal.model_yes is None:
            coverage, cosine = cfg.refusal_threshold, cfg.refusal_min_cosine
        else:
            coverage, cosine = cfg.refusal_llm_coverage, cfg.refusal_llm_cosine
            if signal.model_yes < cfg.refusal_llm_min_yes:
                return True
        if signal.coverage < coverage:
            return True
        return not signal.cross_lingual and signal.best_cosine < cosine
