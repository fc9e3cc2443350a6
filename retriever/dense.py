"""FAISS inner-product search over normalized vectors (= cosine similarity).

Small collections use exact search, built on load from the stored vectors (instant);
above ``approximate_above`` vectors an HNSW graph is built once and stored, because
exact search then costs more per query than users should wait.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from settings import IndexSettings

from .store import HNSW, IndexCorrupt


def choose_kind(count: int, cfg: IndexSettings) -> str:
    if cfg.kind in ("flat", "hnsw"):
        return cfg.kind
    return "hnsw" if count > cfg.approximate_above else "flat"


def build_hnsw(vectors: np.ndarray, cfg: IndexSettings) -> faiss.Index:
    index = faiss.IndexHNSWFlat(vectors.shape[1], cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = cfg.hnsw_ef_construction
    index.add(vectors)
    return index


class DenseIndex:
    def __init__(self, index: faiss.Index, kind: str, ef_search: int):
        self.index = index
        self.kind = kind
        if kind == "hnsw":
            self.index.hnsw.efSearch = ef_search

    @classmethod
    def build(cls, vectors: np.ndarray, cfg: IndexSettings) -> "DenseIndex":
        kind = choose_kind(len(vectors), cfg)
        if kind == "hnsw":
            return cls(build_hnsw(vectors, cfg), kind, cfg.hnsw_ef_search)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        return cls(index, kind, cfg.hnsw_ef_search)

    @classmethod
    def load(cls, folder: Path, vectors: np.ndarray, kind: str, cfg: IndexSettings) -> "DenseIndex":
        if kind != "hnsw":
            return cls.build(vectors, IndexSettings(kind="flat"))
        try:
            index = faiss.read_index(str(folder / HNSW))
        except RuntimeError as exc:
            raise IndexCorrupt(f"index at {folder}: unreadable HNSW file ({exc})") from exc
        if index.ntotal != len(vectors):
            raise IndexCorrupt(f"index at {folder}: HNSW holds {index.ntotal} vectors, expected {len(vectors)}")
        return cls(index, kind, cfg.hnsw_ef_search)

    def save(self, folder: Path) -> None:
        if self.kind == "hnsw":
            try:
                faiss.write_index(self.index, str(folder / HNSW))
            except RuntimeError as exc:  # faiss reports a full disk this way; the store expects OSError
                raise OSError(f"{HNSW}: {' '.join(str(exc).split())}") from exc

    def search(self, query: np.ndarray, n: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` (scores, row ids) for one query vector; ``allowed`` restricts the rows."""
        n = min(n, self.index.ntotal)
        if n <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(allowed.astype(np.int64))
            params = (
                faiss.SearchParametersHNSW(sel=selector, efSearch=self.index.hnsw.efSearch)
                if self.kind == "hnsw"
                else faiss.SearchParameters(sel=selector)
            )
        scores, ids = self.index.search(query.reshape(1, -1), n, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]
