"""The transformers runtime: any local causal LM directory, or a GGUF file dequantized by
transformers (``gguf_file=``; slower and several times larger in memory than llama.cpp,
kept for models llama.cpp cannot read and for GPUs). Nothing is downloaded
(``local_files_only``). Generation runs in a thread feeding a ``TextIteratorStreamer``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from settings import QASettings

from .generator import GeneratorError
from .prompt import Prompt

_MODELS: dict[tuple[str, str], tuple[Any, Any]] = {}
_MODELS_LOCK = threading.Lock()


def resolve_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def load_model(location: Path, device: str) -> tuple[Any, Any]:
    """(model, tokenizer) from a local directory or .gguf file, once per process."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

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


class TransformersRuntime:
    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any, cfg: QASettings, device: str):
        self.model = model
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.device = device
        self.lock = threading.Lock()  # one generation at a time per loaded model

    @classmethod
    def load(cls, path: Path, cfg: QASettings) -> "TransformersRuntime":
        device = resolve_device(cfg.llm_device)
        model, tokenizer = load_model(path, device)
        return cls(model, tokenizer, cfg, device)

    def encode(self, prompt: Prompt) -> dict:
        """Token ids for the prompt, through the model's chat template when it has one."""
        if getattr(self.tokenizer, "chat_template", None):
            enc = self.tokenizer.apply_chat_template(prompt.messages(), add_generation_prompt=True,
                                                     return_tensors="pt", return_dict=True)
        else:
            enc = self.tokenizer(prompt.plain(), return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def yes_no(self, prompt: Prompt) -> tuple[float, int]:
        """log P(yes) − log P(no) for the first answer token, and the prompt's length."""
        import torch

        inputs = self.encode(prompt)
        with self.lock, torch.no_grad():
            logits = self.model(**inputs).logits[0, -1].float()
        logp = torch.log_softmax(logits, dim=-1)

        def mass(words: tuple[str, ...]) -> float:
            ids = sorted({self.tokenizer.encode(w, add_special_tokens=False)[0] for w in words
                          if self.tokenizer.encode(w, add_special_tokens=False)})
            return float(torch.logsumexp(logp[ids], dim=0)) if ids else float("-inf")

        return (mass(("yes", "Yes", " yes", " Yes")) - mass(("no", "No", " no", " No")),
                int(inputs["input_ids"].shape[-1]))

    def stream(self, prompt: Prompt, max_tokens: int) -> Iterator[str]:
        """The model's text as it is generated (greedy, no post-processing)."""
        from transformers import TextIteratorStreamer

        inputs = self.encode(prompt)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=self.cfg.llm_timeout_s)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                self.model.generate(**inputs, streamer=streamer, max_new_tokens=max_tokens, do_sample=False)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer below
                errors.append(exc)
                streamer.end()

        with self.lock:
            thread = threading.Thread(target=run, name="llm-generate", daemon=True)
            thread.start()
            try:
                yield from streamer
            finally:
                thread.join()
        if errors:
            raise GeneratorError(f"generation failed: {errors[0].__class__.__name__}: {errors[0]}") from errors[0]
