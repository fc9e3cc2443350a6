"""The public retrieval API: ``Retriever.load(path).search(query, k)`` → ``[Hit]``.

Dense (FAISS) and BM25 each propose candidates, fusion orders them, overlapping
passages from one document are pruned, and a ``rerank`` hook (identity by default)
sits where a cross-encoder would go.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from settings import Settings, load_settings

from .dense import DenseIndex
from .embedder import Embedder, get_embedder
from .fusion import Ranked, overlap_share, rrf, weighted
from .library import DocumentInfo, library
from .records import Hit
from .routing import Route, Router
from .sparse import SparseIndex
from .lock import recover
from .store import StoredIndex, check_compatible, load_current, read_generation, read_manifest
from .terms import terms
from .translate import Translation, Translator, is_english

MODES = ("hybrid", "dense", "bm25")
Reranker = Callable[[str, list[Hit]], list[Hit]]


class QueryError(ValueError):
    """The query or its parameters cannot be searched (empty, k <= 0, unknown mode …)."""


class Retriever:
    def __init__(self, stored: StoredIndex, dense: DenseIndex, sparse: SparseIndex, embedder: Embedder,
                 settings: Settings, path: Path):
        self.stored = stored
        self.dense = dense
        self.sparse = sparse
        self.embedder = embedder
        self.settings = settings
        self.path = path
        self.rerank: Reranker = lambda query, hits: hits
        self.last_timings: dict[str, float] = {}
        self._row_of_doc = self._rows_by_document()
        self._documents = {d.doc_id: d for d in stored.documents}
        self._router: Router | None = None
        self._translator: Translator | None = None

    @classmethod
    def load(cls, path: str | Path, settings: Settings | None = None, embedder: Embedder | None = None,
             verify: bool = True) -> "Retriever":
        """Open an index directory; raises a clear error if missing, corrupt or mismatched.
        Everything comes from one generation, even while a writer switches to the next."""
        path = Path(path)
        settings = settings or load_settings()
        recover(path, settings.index)
        manifest = read_manifest(path)  # missing or foreign index: fail before loading a model
        embedder = embedder or get_embedder(settings.embed)
        check_compatible(manifest, embedder.model_id, embedder.dim, path)

        def open_generation(manifest: dict, folder: Path):
            check_compatible(manifest, embedder.model_id, embedder.dim, path)
            stored = read_generation(manifest, folder, verify=verify)
            dense = DenseIndex.load(folder, stored.vectors, manifest.get("index_kind", "flat"), settings.index)
            return stored, dense, SparseIndex.load(folder, rows=len(stored.chunks))

        stored, dense, sparse = load_current(path, open_generation)
        return cls(stored, dense, sparse, embedder, settings, path)

    # -- public helpers -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.stored.chunks)

    @property
    def documents(self):
        """``{doc_id: Document}`` of the index, in index order."""
        return self._documents

    def library(self) -> list[DocumentInfo]:
        """Every indexed document with its issuer, date, passage count and origin."""
        return library(self.stored.documents, self.stored.chunks)

    def document(self, doc_id: str):
        return self._documents.get(doc_id)

    # -- query understanding: document names, English → Chinese ------------------------------
    @property
    def router(self) -> Router:
        """Which documents a question names (built from the index's document records)."""
        if self._router is None:
            self._router = Router.from_documents(self.stored.documents)
        return self._router

    @property
    def translator(self) -> Translator:
        """English → Chinese query expansion (loads CC-CEDICT on first use, about 2 s)."""
        if self._translator is None:
            vocab = self.sparse.model.vocab_dict

            def in_corpus(word: str) -> int:
                parts = terms(word)
                return 2 if word in vocab else int(bool(parts) and all(p in vocab for p in parts))

            router = self.router
            self._translator = Translator(router.names, router.aliases, in_corpus,
                                          self.settings.retrieval.translate_max_per_term)
        return self._translator

    def translate(self, query: str) -> Translation:
        """The Chinese rendering of an English question (empty for other questions or when off)."""
        cfg = self.settings.retrieval
        if not cfg.translate or not is_english(query, cfg.translate_min_latin):
            return Translation("")
        return self.translator.translate(query)

    def route(self, *texts: str) -> Route:
        """The documents ``texts`` (a question, its rendering) name; empty when routing is off."""
        if self.settings.retrieval.route_mode == "off":
            return Route()
        return self.router.route(*texts)

    # -- search ---------------------------------------------------------------------
    def _rows_by_document(self) -> dict[str, np.ndarray]:
        rows: dict[str, list[int]] = {}
        for i, chunk in enumerate(self.stored.chunks):
            rows.setdefault(chunk.doc_id, []).append(i)
        return {doc: np.asarray(r, dtype=np.int64) for doc, r in rows.items()}

    def _allowed(self, doc_ids: Sequence[str] | None) -> np.ndarray | None:
        if doc_ids is None:
            return None
        if isinstance(doc_ids, str):
            doc_ids = [doc_ids]
        parts = [self._row_of_doc[d] for d in doc_ids if d in self._row_of_doc]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def _clean_query(self, query: str) -> str:
        if not isinstance(query, str) or not query.strip():
            raise QueryError("the question is empty")
        query = " ".join(query.split())
        if not any(ch.isalnum() for ch in query):
            raise QueryError("the question has no words or numbers to search for")
        return query[: self.settings.retrieval.max_query_chars]

    def embed_query(self, query: str) -> np.ndarray:
        """The query's vector, for callers that need it too (pass it back to ``search``)."""
        return self.embedder.encode_queries([self._clean_query(query)])[0]

    def search(self, query: str, k: int | None = None, mode: str | None = None,
               doc_ids: Sequence[str] | None = None, candidates: int | None = None,
               query_vector: np.ndarray | None = None, translation: Translation | str | None = None,
               route: Route | None = None) -> list[Hit]:
        """Best passages first. ``doc_ids`` restricts the search to those documents;
        ``query_vector`` (from ``embed_query``) saves embedding the query a second time.

        ``translation``: a Chinese rendering searched beside the query (None: the dictionary's,
        for an English query, whose best renderings go to the encoder and all of them to BM25;
        "": none). ``route``: the documents the question names (None:
        recognised from the query and its rendering; ``Route()``: none), preferred as
        ``retrieval.route_mode`` says."""
        cfg = self.settings.retrieval
        k = cfg.k if k is None else k
        mode = mode or cfg.mode
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= cfg.max_k:
            raise QueryError(f"k must be an integer from 1 to {cfg.max_k}, got {k!r}")
        if mode not in MODES:
            raise QueryError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        query = self._clean_query(query)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if translation is None:
            translation = self.translate(query)
        if isinstance(translation, Translation):
            translation, dense_translation = translation.text, translation.primary
        else:
            dense_translation = translation
        translation = " ".join(translation.split())[: cfg.max_query_chars]
        dense_translation = " ".join(dense_translation.split())[: cfg.max_query_chars]
        timings["translate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if route is None:
            route = self.route(query, translation)
        allowed = self._allowed(doc_ids)
        preferred = self._allowed(list(route.doc_ids)) if route else None
        if preferred is not None and cfg.route_mode == "filter":
            allowed = preferred if allowed is None else np.intersect1d(allowed, preferred)
            preferred = None
        elif preferred is not None and allowed is not None:
            preferred = np.intersect1d(allowed, preferred)
        if preferred is not None and len(preferred) == 0:
            preferred = None
        timings["route"] = time.perf_counter() - t0
        if allowed is not None and len(allowed) == 0:
            return []
        n = max(candidates or cfg.candidates, k * 3)
        lists: list[Ranked] = []
        dense_scores: dict[int, float] = {}
        queries = [("", query, 1.0)] + ([("_tr", translation, cfg.translation_weight)] if translation else [])
        rows = [("", allowed, 1.0)] + ([("_route", preferred, cfg.route_weight)] if preferred is not None else [])
        if mode in ("hybrid", "dense"):
            t0 = time.perf_counter()
            texts = [query, dense_translation][: len(queries)][0 if query_vector is None else 1:]
            vectors = list(self.embedder.encode_queries(texts)) if texts else []
            if query_vector is not None:
                vectors.insert(0, query_vector)
            timings["embed"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            for (name, _, weight), vector in zip(queries, vectors):
                for part, subset, boost in rows:
                    scores, ids = self.dense.search(vector, n, subset)
                    lists.append(Ranked("dense" + name + part, ids, scores, cfg.dense_weight * weight * boost))
                    if not name and not part:
                        dense_scores = dict(zip(ids.tolist(), scores.tolist()))
            timings["dense"] = time.perf_counter() - t0
        if mode in ("hybrid", "bm25"):
            t0 = time.perf_counter()
            for name, text, weight in queries:
                for part, subset, boost in rows:
                    scores, ids = self.sparse.search(text, n, subset)
                    lists.append(Ranked("bm25" + name + part, ids, scores, cfg.bm25_weight * weight * boost))
            timings["bm25"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        hits = self._fuse(lists, dense_scores, mode)
        hits = self._dedup(hits)
        if cfg.route_compare and route and len(route.sides) > 1:
            hits = self._each_named_first(hits, route)
        hits = hits[:k]
        hits = self.rerank(query, hits)
        timings["fusion"] = time.perf_counter() - t0
        self.last_timings = timings
        return hits

    def _fuse(self, lists: list[Ranked], dense_scores: dict[int, float], mode: str) -> list[Hit]:
        cfg = self.settings.retrieval
        if mode == "hybrid" or len(lists) > 1:
            fused = rrf(lists, cfg.rrf_k) if cfg.fusion == "rrf" else weighted(lists)
        else:
            fused = {row: score for row, score in zip(lists[0].ids.tolist(), lists[0].scores.tolist())}
        ranks = {r.name: {row: i for i, row in enumerate(r.ids.tolist(), start=1)} for r in lists}
        bm25 = next((dict(zip(r.ids.tolist(), r.scores.tolist())) for r in lists if r.name == "bm25"), {})
        order = sorted(fused, key=lambda row: (-fused[row], row))
        return [
            Hit.from_chunk(
                self.stored.chunks[row],
                score=float(fused[row]),
                dense_score=dense_scores.get(row),
                bm25_score=bm25.get(row),
                dense_rank=ranks.get("dense", {}).get(row),
                bm25_rank=ranks.get("bm25", {}).get(row),
            )
            for row in order
        ]

    @staticmethod
    def _each_named_first(hits: list[Hit], route: Route) -> list[Hit]:
        """The best passage of each side of a comparison first (in their own order), then the rest."""
        first: list[int] = []
        for group in route.sides:
            best = next((i for i, h in enumerate(hits) if h.doc_id in group), None)
            if best is not None and best not in first:
                first.append(best)
        first.sort()
        return [hits[i] for i in first] + [h for i, h in enumerate(hits) if i not in set(first)]

    def _dedup(self, hits: list[Hit]) -> list[Hit]:
        """Drop a passage mostly covered by a better-ranked one (chunk overlap), and table rows
        of a document beyond ``retrieval.table_rows_per_doc`` (short rows sharing a title and
        year columns would otherwise fill the list for any question naming a year)."""
        kept: list[Hit] = []
        rows: dict[str, int] = {}
        for hit in hits:
            if hit.kind == "table_row" and rows.get(hit.doc_id, 0) >= self.settings.retrieval.table_rows_per_doc:
                continue
            span = (hit.doc_id, hit.start, hit.end)
            # a table row's rendering and the text passage that holds the row are two views, not copies
            if all(h.kind != hit.kind or overlap_share(span, (h.doc_id, h.start, h.end))
                   < self.settings.retrieval.dedup_overlap for h in kept):
                kept.append(hit)
                if hit.kind == "table_row":
                    rows[hit.doc_id] = rows.get(hit.doc_id, 0) + 1
        return kept
