"""The public retrieval API: ``Retriever.load(path).search(query, k)`` → ``[Hit]``.

Dense (FAISS) and BM25 each propose candidates, fusion orders them, overlapping
passages from one document are pruned, and a ``rerank`` hook (identity by default)
sits where a cross-encoder would go.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from settings import Settings, load_settings

from .embedder import Embedder, get_embedder
from .fusion import Ranked, overlap_share, rrf, weighted
from .library import DocumentInfo, library
from .records import Hit
from .routing import Route, Router
from .store import StoredIndex
from .stores import Store, open_store
from .terms import terms
from .translate import Translation, Translator, is_english

MODES = ("hybrid", "dense", "bm25")
Reranker = Callable[[str, list[Hit]], list[Hit]]


class QueryError(ValueError):
    """The query or its parameters cannot be searched (empty, k <= 0, unknown mode …)."""


class Retriever:
    def __init__(self, store: Store, embedder: Embedder, settings: Settings):
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.path = store.location
        self.rerank: Reranker = lambda query, hits: hits
        self.last_timings: dict[str, float] = {}
        self._documents = {d.doc_id: d for d in store.documents()}
        self._router: Router | None = None
        self._translator: Translator | None = None

    @classmethod
    def load(cls, path: str | Path, settings: Settings | None = None, embedder: Embedder | None = None,
             verify: bool = True) -> "Retriever":
        """Open an index (a folder or a database URI, ``retriever.stores``); raises a clear error if
        missing, corrupt or mismatched. A folder is read from one generation, even while a
        writer switches to the next."""
        settings = settings or load_settings()
        store = open_store(path, settings, verify=verify)
        try:
            store.manifest()  # missing or foreign index: fail before loading a model
            embedder = embedder or get_embedder(settings.embed)
            store.open_for(embedder.model_id, embedder.dim)
        except BaseException:
            store.close()
            raise
        return cls(store, embedder, settings)

    # -- public helpers -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.store)

    @property
    def stored(self) -> StoredIndex:
        """The loaded generation of a folder index (tests and tools that inspect its files)."""
        stored = getattr(self.store, "stored", None)
        if stored is None:
            raise AttributeError(f"the index at {self.path} is not a folder index")
        return stored

    @cached_property
    def manifest(self) -> dict:
        """The index's manifest as of this load (a database query on seekdb: asked once)."""
        return self.store.manifest()

    @property
    def documents(self):
        """``{doc_id: Document}`` of the index, in index order."""
        return self._documents

    def library(self) -> list[DocumentInfo]:
        """Every indexed document with its issuer, date, passage count and origin."""
        return library(self._documents.values(), self.store.passage_counts())

    def document(self, doc_id: str):
        return self._documents.get(doc_id)

    def passages_of(self, doc_id: str):
        """Every passage of one document, in document order (the source view's sections)."""
        return self.store.passages_of(doc_id)

    def document_frequency(self, term: str) -> int:
        """Passages whose keyword text holds ``term`` (the refusal judge's term weights)."""
        return self.store.document_frequency(term)

    def sentence_vectors(self, texts) -> dict:
        """The index's stored answer-stage vectors of those ``texts`` it holds."""
        return self.store.sentence_vectors(texts)

    # -- query understanding: document names, English → Chinese ------------------------------
    @property
    def router(self) -> Router:
        """Which documents a question names (built from the index's document records)."""
        if self._router is None:
            self._router = Router.from_documents(list(self._documents.values()))
        return self._router

    @property
    def translator(self) -> Translator:
        """English → Chinese query expansion (loads CC-CEDICT on first use, about 2 s)."""
        if self._translator is None:
            has_term = self.store.has_term

            def in_corpus(word: str) -> int:
                parts = terms(word)
                return 2 if has_term(word) else int(bool(parts) and all(has_term(p) for p in parts))

            router = self.router
            self._translator = Translator(router.names, router.aliases, in_corpus,
                                          self.settings.retrieval.translate_max_per_term,
                                          frequency=self.store.document_frequency
                                          if self.settings.retrieval.translate_by_usage else None)
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
    @staticmethod
    def _doc_list(doc_ids: Sequence[str] | None) -> list[str] | None:
        if doc_ids is None:
            return None
        return [doc_ids] if isinstance(doc_ids, str) else list(dict.fromkeys(doc_ids))

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
        allowed = self._doc_list(doc_ids)
        preferred = list(route.doc_ids) if route else None
        if preferred is not None and cfg.route_mode == "filter":
            allowed = preferred if allowed is None else [d for d in allowed if d in set(preferred)]
            preferred = None
        elif preferred is not None and allowed is not None:
            preferred = [d for d in preferred if d in set(allowed)]
        if preferred is not None and len(preferred) == 0:
            preferred = None
        timings["route"] = time.perf_counter() - t0
        if allowed is not None and not any(d in self._documents for d in allowed):
            return []
        n = max(candidates or cfg.candidates, k * 3)
        lists: list[Ranked] = []
        dense_scores: dict = {}
        dense_weight, rrf_k = cfg.dense_weight, cfg.rrf_k
        if translation:  # a cross-lingual question: its own fusion weights (settings.py)
            dense_weight, rrf_k = cfg.translated_dense_weight, cfg.translated_rrf_k
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
                    found = self.store.dense(vector, n, subset)
                    lists.append(Ranked("dense" + name + part, found.keys, found.scores,
                                        dense_weight * weight * boost))
                    if not name and not part:
                        dense_scores = dict(zip(found.keys, found.scores.tolist()))
            timings["dense"] = time.perf_counter() - t0
        if mode in ("hybrid", "bm25"):
            t0 = time.perf_counter()
            for name, text, weight in queries:
                for part, subset, boost in rows:
                    found = self.store.keyword(text, n, subset)
                    lists.append(Ranked("bm25" + name + part, found.keys, found.scores,
                                        cfg.bm25_weight * weight * boost))
            timings["bm25"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        hits = self._fuse(lists, dense_scores, mode, rrf_k)
        hits = self._dedup(hits)
        if cfg.route_compare and route and len(route.sides) > 1:
            hits = self._each_named_first(hits, route)
        hits = hits[:k]
        hits = self.rerank(query, hits)
        timings["fusion"] = time.perf_counter() - t0
        self.last_timings = timings
        return hits

    def _fuse(self, lists: list[Ranked], dense_scores: dict, mode: str, rrf_k: int) -> list[Hit]:
        cfg = self.settings.retrieval
        if mode == "hybrid" or len(lists) > 1:
            fused = rrf(lists, rrf_k) if cfg.fusion == "rrf" else weighted(lists)
        else:
            fused = {key: score for key, score in zip(lists[0].ids, lists[0].scores.tolist())}
        ranks = {r.name: {key: i for i, key in enumerate(r.ids, start=1)} for r in lists}
        bm25 = next((dict(zip(r.ids, r.scores.tolist())) for r in lists if r.name == "bm25"), {})
        order = sorted(fused, key=lambda key: (-fused[key], key))
        return [
            Hit.from_chunk(
                chunk,
                score=float(fused[key]),
                dense_score=dense_scores.get(key),
                bm25_score=bm25.get(key),
                dense_rank=ranks.get("dense", {}).get(key),
                bm25_rank=ranks.get("bm25", {}).get(key),
            )
            for key, chunk in zip(order, self.store.passages(order)) if chunk is not None
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
