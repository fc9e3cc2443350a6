"""The index folder as a store: FAISS + bm25s files in immutable generations.

Reading loads one generation (``retriever.store``) whole into memory: vectors for FAISS
(exact search, or the stored HNSW graph above ``index.approximate_above``), the bm25s state,
records. A write plans against the current generation (``snapshot``), and ``apply`` writes
the next one beside it and switches the manifest in one rename, so readers see the old
index or the new one and a killed write leaves the old one. Zero setup, one machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from settings import Settings

from ..dense import DenseIndex, choose_kind
from ..lock import recover, write_lock
from ..passages import keyword_text
from ..sparse import SparseIndex
from ..store import (IndexMissing, StoredIndex, check_compatible, load_current, read_generation, read_index,
                     read_manifest, write_index)
from .base import Change, Matches, Snapshot, Store, record_hash


class FolderStore(Store):
    def __init__(self, path: str | Path, settings: Settings, verify: bool = True):
        self.path = Path(path)
        self.location = str(path)
        self.settings = settings
        self.verify = verify
        self.stored: StoredIndex | None = None  # the generation loaded for reading
        self._dense: DenseIndex | None = None
        self._sparse: SparseIndex | None = None
        self._previous: StoredIndex | None = None  # the generation a write plans against
        self._rows: dict[str, np.ndarray] = {}
        self._sentences: dict[str, np.ndarray] | None = None

    # -- reading ---------------------------------------------------------------------
    def open_for(self, model_id: str, dimension: int) -> None:
        """Load the current generation, all from one generation even while a writer switches."""
        recover(self.path, self.settings.index)
        check_compatible(read_manifest(self.path), model_id, dimension, self.path)  # before reading vectors

        def open_generation(manifest: dict, folder: Path):
            check_compatible(manifest, model_id, dimension, self.path)
            stored = read_generation(manifest, folder, verify=self.verify)
            dense = DenseIndex.load(folder, stored.vectors, manifest.get("index_kind", "flat"), self.settings.index)
            return stored, dense, SparseIndex.load(folder, rows=len(stored.chunks))

        self.stored, self._dense, self._sparse = load_current(self.path, open_generation)
        rows: dict[str, list[int]] = {}
        for i, chunk in enumerate(self.stored.chunks):
            rows.setdefault(chunk.doc_id, []).append(i)
        self._rows = {doc: np.asarray(r, dtype=np.int64) for doc, r in rows.items()}

    def _loaded(self) -> StoredIndex:
        if self.stored is None:
            raise RuntimeError(f"the index at {self.path} is not open for reading (open_for first)")
        return self.stored

    def manifest(self) -> dict:
        if self.stored is not None:
            return self.stored.manifest
        recover(self.path, self.settings.index)  # an index an older version left half-swapped
        return read_manifest(self.path)

    def documents(self):
        return self._loaded().documents

    def passage_counts(self) -> dict[str, int]:
        return dict(Counter(c.doc_id for c in self._loaded().chunks))

    def passages(self, keys: Sequence):
        chunks = self._loaded().chunks
        return [chunks[k] for k in keys]

    def passages_of(self, doc_id: str):
        chunks = self._loaded().chunks
        return sorted((chunks[i] for i in self._rows.get(doc_id, ())), key=lambda c: (c.start, c.end))

    def _subset(self, doc_ids: Sequence[str] | None) -> np.ndarray | None:
        if doc_ids is None:
            return None
        parts = [self._rows[d] for d in doc_ids if d in self._rows]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def _search(self, index, query, n: int, doc_ids: Sequence[str] | None) -> Matches:
        """``index.search`` (FAISS or BM25, both on row numbers) restricted to ``doc_ids``' rows."""
        self._loaded()
        subset = self._subset(doc_ids)
        if subset is not None and not len(subset):
            return Matches.empty()
        scores, ids = index.search(query, n, subset)
        return Matches(ids.tolist(), scores)

    def dense(self, vector: np.ndarray, n: int, doc_ids: Sequence[str] | None = None) -> Matches:
        return self._search(self._dense, vector, n, doc_ids)

    def keyword(self, text: str, n: int, doc_ids: Sequence[str] | None = None) -> Matches:
        return self._search(self._sparse, text, n, doc_ids)

    def document_frequency(self, term: str) -> int:
        self._loaded()
        model = self._sparse.model
        if term not in model.vocab_dict:
            return 0
        return int(np.count_nonzero(model.get_scores([term])))

    def has_term(self, term: str) -> bool:
        self._loaded()
        return term in self._sparse.model.vocab_dict

    def sentence_vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        stored = self._previous or self._loaded()
        if stored.sentence_vectors is None:
            return {}
        if self._sentences is None or stored is self._previous:
            self._sentences = dict(zip(stored.sentences, stored.sentence_vectors))
        known = self._sentences
        return {t: known[t] for t in texts if t in known}

    def __len__(self) -> int:
        return len(self._loaded().chunks)

    # -- writing ---------------------------------------------------------------------
    def write_lock(self) -> AbstractContextManager[None]:
        return write_lock(self.path, self.settings.index)

    def snapshot(self) -> Snapshot:
        try:
            self._previous = read_index(self.path)
        except IndexMissing:
            self._previous = None
            return Snapshot([], {}, None)
        self._sentences = None
        prev = self._previous
        passages = {c.chunk_id: (c.doc_id, record_hash(c, k)) for c, k in zip(prev.chunks, prev.embed_keys)}
        return Snapshot(list(prev.documents), passages, prev.manifest)

    def vectors(self, embed_keys: Sequence[str]) -> dict[str, np.ndarray]:
        prev = self._previous or self.stored  # the generation a write plans on, else the one being read
        if prev is None:
            return {}
        wanted = set(embed_keys)
        return {k: v for k, v in zip(prev.embed_keys, prev.vectors) if k in wanted}

    def apply(self, change: Change) -> dict:
        prev = None if change.rebuild else self._previous
        removed = set(change.removed_docs)
        fresh_docs = {d.doc_id: d for d in change.documents}
        documents = [fresh_docs.pop(d.doc_id, d) for d in (prev.documents if prev else []) if d.doc_id not in removed]
        documents += list(fresh_docs.values())
        fresh = {p.chunk.chunk_id: p for p in change.passages}
        stale = set(change.stale_chunks)
        chunks, keys, vectors = [], [], []
        for i, (chunk, key) in enumerate(zip(prev.chunks, prev.embed_keys) if prev else ()):
            if chunk.doc_id in removed or chunk.chunk_id in stale:
                continue
            row = fresh.pop(chunk.chunk_id, None)
            chunks.append(row.chunk if row else chunk)
            keys.append(row.embed_key if row else key)
            vectors.append(row.vector if row else prev.vectors[i])
        for row in fresh.values():
            chunks.append(row.chunk)
            keys.append(row.embed_key)
            vectors.append(row.vector)
        matrix = (np.stack(vectors).astype(np.float32) if vectors
                  else np.zeros((0, change.dimension), np.float32))
        stored = StoredIndex(chunks=chunks, embed_keys=keys, vectors=matrix, documents=documents)
        self._add_sentences(stored, prev, change)
        kind = choose_kind(len(chunks), self.settings.index)

        def write_extras(folder: Path) -> None:
            if kind == "hnsw":
                DenseIndex.build(matrix, self.settings.index).save(folder)
            SparseIndex.build(keyword_text(c) for c in chunks).save(folder)

        manifest = write_index(self.path, stored, change.model_id,
                               {"index_kind": kind, **change.manifest}, write_extras)
        self._previous = None
        return manifest

    def _add_sentences(self, stored: StoredIndex, prev: StoredIndex | None, change: Change) -> None:
        """Every answer-stage sentence of the new generation with its vector: from the previous
        generation, else embedded. Left out (as in indexes written before they were stored)
        when some are missing and the change cannot embed (a removal loads no model)."""
        if change.sentence_texts is None:
            return
        texts = change.sentence_texts(stored.chunks)
        known: dict[str, np.ndarray] = {}
        if prev is not None and prev.sentence_vectors is not None:
            known = dict(zip(prev.sentences, prev.sentence_vectors))
        todo = [t for t in dict.fromkeys(texts) if t not in known]
        if todo and change.embed_sentences is None:
            return
        if todo:
            known.update(zip(todo, change.embed_sentences(todo)))
        change.sentences_embedded, change.sentences_reused = len(todo), len(texts) - len(todo)
        stored.sentences = texts
        stored.sentence_vectors = (np.stack([known[t] for t in texts]).astype(np.float32) if texts
                                   else np.zeros((0, stored.vectors.shape[1]), np.float32))
