"""Passage-side e5 vectors of candidate sentences, computed once per distinct sentence.

Embedding the ~30 sentences of five passages costs far more than everything else in an
extractive answer on a small CPU, while the same sentences come back question after
question (and twice within one answer, where chunks overlap). So vectors are kept by
sentence text, in memory, and optionally on disk in a file named for the embedding model,
so a restarted app starts warm. ``warm_up`` fills the cache for a whole index ahead of time.

An index now carries the vectors of every sentence of its chunks (``sentence_texts``,
computed by ``retriever.build`` like the passage vectors and covered by its manifest hash),
so ``Assistant`` seeds this cache from the index and neither the app nor ``python -m qa``
embeds anything at start; the on-disk cache only serves indexes written before that.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from retriever import Embedder
from settings import QASettings

log = logging.getLogger(__name__)
_SHARED: dict[tuple[int, str], "SentenceVectors"] = {}
_SHARED_LOCK = threading.Lock()


class SentenceVectors:
    def __init__(self, embedder: Embedder, cache_dir: str = ""):
        self.embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._unsaved = False  # vectors computed here since the cache file was read or written
        # the index's stored vectors (``Retriever.sentence_vectors``), asked before embedding
        self.source: Callable[[list[str]], dict[str, np.ndarray]] | None = None
        self.path: Path | None = None
        if cache_dir:
            digest = hashlib.sha1(embedder.model_id.encode("utf-8")).hexdigest()[:12]
            self.path = Path(cache_dir).expanduser() / f"sentences-{digest}.npz"
            self._load()

    @classmethod
    def shared(cls, embedder: Embedder, cache_dir: str = "") -> "SentenceVectors":
        """The process-wide cache for this embedder and cache file (a rebuilt Assistant stays warm)."""
        key = (id(embedder), cache_dir)
        with _SHARED_LOCK:
            if key not in _SHARED or _SHARED[key].embedder is not embedder:
                _SHARED[key] = cls(embedder, cache_dir)
            return _SHARED[key]

    def __len__(self) -> int:
        return len(self._vectors)

    def encode(self, texts: list[str], urgent: bool = True) -> np.ndarray:
        """Normalized passage vectors for ``texts`` (rows in the same order); ``urgent=False``
        for warm-up, which then yields the model to questions."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing and self.source is not None:
            stored = self.source(missing)
            self.add(list(stored), list(stored.values()))
            missing = [t for t in missing if t not in stored]
        if missing:
            fresh = self.embedder.encode_passages(missing, urgent=urgent)
            with self._lock:
                self._vectors.update(zip(missing, fresh))
                self._unsaved = True
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        with self._lock:
            return np.stack([self._vectors[t] for t in texts])

    def add(self, texts: list[str], vectors) -> None:
        """Vectors computed elsewhere by the same model (an index's stored sentences)."""
        if vectors is None or not len(texts):
            return
        with self._lock:
            for text, vector in zip(texts, vectors):
                self._vectors.setdefault(text, vector)

    def missing(self, texts: list[str]) -> list[str]:
        with self._lock:
            return [t for t in dict.fromkeys(texts) if t not in self._vectors]

    def _load(self) -> None:
        if not self.path or not self.path.is_file():
            return
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys, vectors = data["keys"].tolist(), data["vectors"]
            if vectors.shape[1:] == (self.embedder.dim,) and len(keys) == len(vectors):
                self._vectors.update(zip(keys, vectors))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("ignoring unreadable sentence-vector cache %s (%s)", self.path, exc)

    def save(self) -> Path | None:
        """Write the cache next to the model cache (atomically); returns the file or None."""
        if not self.path:
            return None
        with self._lock:
            if not self._unsaved:  # nothing new: the index held them, or the file has them
                return self.path if self.path.is_file() else None
            self._unsaved = False
            keys = list(self._vectors)
            vectors = np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, self.embedder.dim))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.asarray(keys, dtype=str), vectors=vectors.astype(np.float32))
        tmp.replace(self.path)
        return self.path


def sentence_texts(chunks, cfg: QASettings) -> list[str]:
    """The distinct candidate sentences an extractive answer may score, over ``chunks``: what
    an index stores vectors for (the same split the answer stage makes, ``qa/sentences.py``)."""
    from retriever import Hit

    from .sentences import split_passage

    return list(dict.fromkeys(u.text for row, chunk in enumerate(chunks)
                              for u in split_passage(Hit.from_chunk(chunk, 0.0), row, cfg.max_sentence_chars,
                                                     cfg.min_sentence_chars)))
