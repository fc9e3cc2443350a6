"""Stage 2: chunks → embeddings + an index (a FAISS + BM25 folder, or seekdb) → fused ``Hit`` lists.

    from retriever import Retriever
    hits = Retriever.load("index").search("到2020年北斗系统由多少颗卫星组成?", k=5)
"""

from .build import BuildReport, build_index, remove_documents, update_index
from .embedder import Embedder, ModelNotFound, get_embedder
from .library import DocumentInfo, UnknownDocument
from .records import Hit
from .search import QueryError, Retriever
from .store import (IndexCorrupt, IndexLoadError, IndexLocked, IndexMismatch, IndexMissing, IndexWriteError,
                    current_dir)
from .stores import Store, index_exists, is_uri, open_store
from .translate import Translation

__all__ = [
    "BuildReport",
    "DocumentInfo",
    "Embedder",
    "Hit",
    "IndexCorrupt",
    "IndexLoadError",
    "IndexLocked",
    "IndexMismatch",
    "IndexMissing",
    "IndexWriteError",
    "ModelNotFound",
    "QueryError",
    "Retriever",
    "Store",
    "Translation",
    "UnknownDocument",
    "build_index",
    "current_dir",
    "get_embedder",
    "index_exists",
    "is_uri",
    "open_store",
    "remove_documents",
    "update_index",
]
