"""BM25 over jieba terms, with bm25s (a maintained, sparse-matrix BM25)."""

from __future__ import annotations

import logging
from array import array
from collections.abc import Iterable
from pathlib import Path

import bm25s
import numpy as np

from .store import BM25_DIR, IndexCorrupt
from .terms import terms

logging.getLogger("bm25s").setLevel(logging.WARNING)


class SparseIndex:
    def __init__(self, model: bm25s.BM25):
        self.model = model

    @classmethod
    def build(cls, texts: Iterable[str], progress: bool = False) -> "SparseIndex":
        """Each passage's terms are kept as 4-byte ids, not strings: a jieba token is its own
        ~80-byte str object, and with every passage's list of them a folder-store write of 10^5
        passages peaked at 1.97 GB (1.37 GB with ids; python -m bench --parts stores)."""
        vocab: dict[str, int] = {}
        ids = [array("i", (vocab.setdefault(w, len(vocab)) for w in (terms(t) or ["\u2205"])))  # no empty row
               for t in texts]
        model = bm25s.BM25()
        model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=progress)
        return cls(model)

    @classmethod
    def load(cls, folder: Path, rows: int | None = None) -> "SparseIndex":
        """The BM25 state of an index generation; ``rows`` (the chunk count) is checked against
        it, because a state of another index would crash search with IndexError."""
        try:
            model = bm25s.BM25.load(str(folder / BM25_DIR), show_progress=False)
            scores, vocab = model.scores, model.vocab_dict
            num_docs, pointers = int(scores["num_docs"]), len(scores["indptr"])
        except Exception as exc:  # a third-party parser of a damaged file may raise anything
            raise IndexCorrupt(f"index at {folder}: unreadable BM25 state ({exc.__class__.__name__}: {exc})") from exc
        if rows is not None and num_docs != rows:
            raise IndexCorrupt(f"index at {folder}: the BM25 state covers {num_docs} passages, the index has {rows}")
        if len(vocab) > pointers:  # term ids index the column pointers
            raise IndexCorrupt(f"index at {folder}: the BM25 vocabulary has {len(vocab)} terms, its matrix {pointers}")
        return cls(model)

    def save(self, folder: Path) -> None:
        self.model.save(str(folder / BM25_DIR), show_progress=False)

    def search(self, query: str, n: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` (scores, row ids) with a positive score."""
        query_terms = [t for t in terms(query) if t in self.model.vocab_dict]
        if not query_terms or n <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores = self.model.get_scores(query_terms)
        if allowed is not None:
            mask = np.zeros_like(scores, dtype=bool)
            mask[allowed] = True
            scores = np.where(mask, scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[scores[top] > 0]
        return scores[top].astype(np.float32), top.astype(np.int64)
