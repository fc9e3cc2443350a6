"""The index directory: vectors, BM25 state, chunk and document records, and a manifest.

Layout (one folder, always replaced as a whole)::

    manifest.json     format version, model id and dimension, counts, content hash
    vectors.npy       float32, one normalized row per chunk, in chunks.jsonl order
    hnsw.faiss        only when the approximate index is used
    chunks.jsonl      Chunk records (+ the hash of the text that was embedded)
    documents.jsonl   cleaned document texts, so sources open without the original files
    bm25/             bm25s state over jieba terms

Writes go to a temporary sibling folder that is renamed into place, so an interrupted
build leaves the previous index intact. Loading re-computes the content hash and
refuses an index that does not match its manifest or the configured embedder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ingest import Chunk, Document

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VECTORS = "vectors.npy"
HNSW = "hnsw.faiss"
CHUNKS = "chunks.jsonl"
DOCUMENTS = "documents.jsonl"
BM25_DIR = "bm25"
_HASHED = (VECTORS, CHUNKS, DOCUMENTS)


class IndexLoadError(RuntimeError):
    """Base class: the index cannot be used as it is."""


class IndexMissing(IndexLoadError):
    pass


class IndexCorrupt(IndexLoadError):
    pass


class IndexMismatch(IndexLoadError):
    pass


@dataclass
class StoredIndex:
    """Everything an index directory holds, in memory."""

    chunks: list[Chunk]
    embed_keys: list[str]  # hash of the exact text embedded for each chunk (incremental reuse)
    vectors: np.ndarray
    documents: list[Document]
    manifest: dict = field(default_factory=dict)


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def content_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in _HASHED:
        with (folder / name).open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


def write_index(
    target: Path,
    stored: StoredIndex,
    model_id: str,
    extra_manifest: dict,
    write_extras,
) -> dict:
    """Write everything into a temp folder, then swap it in place of ``target``.

    ``write_extras(folder)`` writes the search structures (BM25, HNSW) that belong to
    the retriever rather than to the store.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        np.save(tmp / VECTORS, stored.vectors.astype(np.float32, copy=False))
        _write_jsonl(tmp / CHUNKS, ({**asdict(c), "embed_key": k} for c, k in zip(stored.chunks, stored.embed_keys)))
        _write_jsonl(tmp / DOCUMENTS, (asdict(d) for d in stored.documents))
        write_extras(tmp)
        manifest = {
            "format_version": FORMAT_VERSION,
            "model_id": model_id,
            "dimension": int(stored.vectors.shape[1]),
            "chunk_count": len(stored.chunks),
            "document_count": len(stored.documents),
            "content_hash": content_hash(tmp),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **extra_manifest,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        _fsync_tree(tmp)
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _swap_into_place(tmp: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_manifest(folder: Path) -> dict:
    folder = Path(folder)
    if not folder.is_dir() or not (folder / MANIFEST).is_file():
        raise IndexMissing(f"no index at {folder} (build it with: python -m ingest SOURCE_DIR --index {folder})")
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"index at {folder}: unreadable manifest ({exc})") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"index at {folder} has format version {manifest.get('format_version')}, this program reads "
            f"{FORMAT_VERSION}; rebuild it"
        )
    return manifest


def check_compatible(manifest: dict, model_id: str, dimension: int, folder: Path) -> None:
    if manifest.get("model_id") != model_id or manifest.get("dimension") != dimension:
        raise IndexMismatch(
            f"index at {folder} was built with {manifest.get('model_id')!r} (dim {manifest.get('dimension')}), "
            f"but the configured embedder is {model_id!r} (dim {dimension}); rebuild the index or configure "
            "the same model"
        )


def read_index(folder: Path, verify: bool = True) -> StoredIndex:
    """Load the records and vectors; raise IndexCorrupt when anything disagrees."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    try:
        if verify and content_hash(folder) != manifest.get("content_hash"):
            raise IndexCorrupt(f"index at {folder} does not match its manifest hash (modified or truncated)")
        vectors = np.load(folder / VECTORS, allow_pickle=False)
        rows = _read_jsonl(folder / CHUNKS)
        docs = [Document(**row) for row in _read_jsonl(folder / DOCUMENTS)]
    except IndexCorrupt:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise IndexCorrupt(f"index at {folder} is damaged ({exc.__class__.__name__}: {exc})") from exc
    names = {f.name for f in fields(Chunk)}
    chunks = [Chunk(**{k: v for k, v in row.items() if k in names}) for row in rows]
    keys = [row.get("embed_key", "") for row in rows]
    count = manifest.get("chunk_count")
    if vectors.ndim != 2 or len(chunks) != count or vectors.shape != (count, manifest.get("dimension")):
        raise IndexCorrupt(
            f"index at {folder} is inconsistent: {len(chunks)} chunks, vectors {vectors.shape}, manifest says "
            f"{count} x {manifest.get('dimension')}"
        )
    return StoredIndex(chunks=chunks, embed_keys=keys, vectors=vectors, documents=docs, manifest=manifest)
