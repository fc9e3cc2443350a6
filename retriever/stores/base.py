"""The storage seam: what an index backend does, so that search, fusion, routing, scope,
incremental updates and answers are written once, above it.

Two backends implement it: the index folder (FAISS + bm25s files, one immutable generation
per write; ``retriever/stores/folder.py``) and seekdb / OceanBase (a database engine with
HNSW, BM25 full-text and in-engine hybrid search; ``retriever/stores/seekdb.py``). A new
backend is one class with these methods; ``open_store`` picks it from the location.

Keys: each store names its passages by a key of its own (a row number in a folder
generation, the chunk id in a database). Keys are only handed back to the same store
(``passages``); what leaves the retriever is a ``Hit``.

Text: keyword search is over jieba terms with traditional characters folded to simplified
(``retriever.terms``) in every store, because an engine's analyzer neither folds scripts nor
splits Chinese the way the folder store does; the store gets the passage's keyword text
and tokenizes it with ``terms``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field

import numpy as np

from ingest import Chunk, Document


@dataclass(frozen=True)
class Matches:
    """One search's result, best first: store keys and that search's own scores."""

    keys: list
    scores: np.ndarray

    @classmethod
    def empty(cls) -> "Matches":
        return cls([], np.zeros(0, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class PassageRow:
    """A passage as a write carries it."""

    chunk: Chunk
    embed_key: str  # hash of the text the vector was computed from (reuse across writes)
    vector: np.ndarray  # float32, normalized
    keyword_text: str  # what keyword search indexes (title + section + text), before tokenizing


@dataclass
class Snapshot:
    """What a writer needs to know of the current index to plan an update, without vectors."""

    documents: list[Document]
    passages: dict[str, tuple[str, str]]  # chunk_id -> (doc_id, record hash: chunk fields + embed key)
    manifest: dict | None  # None: the store holds no index yet


@dataclass
class Change:
    """One write. Stores apply it as one unit where the engine allows (the folder: one new
    generation switched in atomically; a database: its transactions, see the store)."""

    model_id: str
    dimension: int
    documents: list[Document] = field(default_factory=list)  # new or changed, upserted by doc_id
    removed_docs: list[str] = field(default_factory=list)  # deleted with every passage of theirs
    passages: list[PassageRow] = field(default_factory=list)  # upserted by chunk id
    stale_chunks: list[str] = field(default_factory=list)  # chunk ids deleted (gone from their document)
    manifest: dict = field(default_factory=dict)  # extra manifest fields (chunk settings ...)
    rebuild: bool = False  # discard everything the store holds first
    # The answer stage's sentences are stored with their vectors too, so answering embeds
    # nothing. ``sentence_texts(chunks)`` says which sentences passages hold (the answer stage
    # defines it); the store keeps the vectors it has and calls ``embed_sentences(texts)`` for
    # the others. Without ``embed_sentences`` (a removal loads no model) a store keeps what it
    # has and embeds nothing.
    sentence_texts: Callable[[list[Chunk]], list[str]] | None = None
    embed_sentences: Callable[[list[str]], np.ndarray] | None = None
    sentences_embedded: int = 0  # filled in by ``apply``
    sentences_reused: int = 0


class Store(ABC):
    """One index, open for reading (and, under ``write_lock``, for writing)."""

    location: str  # the folder or URI it was opened from, for messages

    # -- reading ---------------------------------------------------------------------
    def open_for(self, model_id: str, dimension: int) -> None:
        """Get ready to search with this embedding model: IndexMismatch when the index was
        built with another, IndexMissing / IndexCorrupt when there is none or it is damaged."""
        from ..store import check_compatible

        check_compatible(self.manifest(), model_id, dimension, self.location)

    @abstractmethod
    def manifest(self) -> dict:
        """format, model_id, dimension, counts; IndexMissing when the store holds no index."""

    @abstractmethod
    def documents(self) -> list[Document]:
        """Every document, in index order (the order they were first added)."""

    @abstractmethod
    def passage_counts(self) -> dict[str, int]:
        """doc_id -> passages it has in the index."""

    @abstractmethod
    def passages(self, keys: Sequence) -> list[Chunk | None]:
        """The records of ``keys`` (from this store's searches), in that order; None for a
        passage a concurrent writer removed since the search (a live database)."""

    @abstractmethod
    def passages_of(self, doc_id: str) -> list[Chunk]:
        """Every passage of one document, in document order."""

    @abstractmethod
    def dense(self, vector: np.ndarray, n: int, doc_ids: Sequence[str] | None = None) -> Matches:
        """Top ``n`` by cosine (scores are cosines); ``doc_ids`` restricts the documents."""

    @abstractmethod
    def keyword(self, text: str, n: int, doc_ids: Sequence[str] | None = None) -> Matches:
        """Top ``n`` by BM25 over ``terms(text)``, positive scores only."""

    def hybrid(self, text: str, vector: np.ndarray, n: int, doc_ids: Sequence[str] | None = None,
               rrf_k: int = 60) -> Matches:
        """Dense and keyword fused by reciprocal rank, in the engine where it has it. The
        retriever fuses its own lists (translations, routing); this serves benchmarks and
        callers that want one call."""
        from ..fusion import Ranked, rrf

        lists = [self.dense(vector, n, doc_ids), self.keyword(text, n, doc_ids)]
        fused = rrf([Ranked(str(i), m.keys, m.scores) for i, m in enumerate(lists)], rrf_k)
        order = sorted(fused, key=lambda key: -fused[key])[:n]
        return Matches(order, np.asarray([fused[key] for key in order], dtype=np.float32))

    @abstractmethod
    def document_frequency(self, term: str) -> int:
        """Passages whose keyword text holds ``term`` (a ``terms()`` term); 0 when none."""

    def has_term(self, term: str) -> bool:
        """Whether any passage holds ``term`` (the translator asks this of many words)."""
        return self.document_frequency(term) > 0

    @abstractmethod
    def sentence_vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored answer-stage vectors of those ``texts`` the store has (others are absent)."""

    @abstractmethod
    def __len__(self) -> int:
        """Passages in the index."""

    # -- writing ---------------------------------------------------------------------
    @abstractmethod
    def write_lock(self) -> AbstractContextManager[None]:
        """Held from ``snapshot`` to ``apply``, so two writers never plan on the same state."""

    @abstractmethod
    def snapshot(self) -> Snapshot:
        """The current state, for planning a write (IndexCorrupt / IndexMismatch as loading)."""

    @abstractmethod
    def vectors(self, embed_keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored passage vectors by embed key, so unchanged text is never embedded again."""

    @abstractmethod
    def apply(self, change: Change) -> dict:
        """Write ``change``; returns the new manifest. IndexWriteError when it could not be
        written, with the previous state intact."""

    def close(self) -> None:
        """Release connections or child processes (nothing for a folder)."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def record_hash(chunk: Chunk, embed_key: str) -> str:
    """Identifies a passage's stored record: equal hashes mean an update can leave it alone."""
    data = json.dumps([asdict(chunk), embed_key], ensure_ascii=False, sort_keys=True)
    return hashlib.sha1(data.encode("utf-8")).hexdigest()


def iter_batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for lo in range(0, len(items), size):
        yield items[lo: lo + size]
