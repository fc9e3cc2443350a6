"""The index directory: a manifest naming one immutable generation folder.

Layout::

    index/
      manifest.json       format version, model id and dimension, counts, content hash, generation
      gen-<time>-<pid>/   the generation the manifest names:
        vectors.npy       float32, one normalized row per chunk, in chunks.jsonl order
        hnsw.faiss        only when the approximate index is used
        chunks.jsonl      Chunk records (+ the hash of the text that was embedded)
        documents.jsonl   cleaned document texts, so sources open without the original files
        sentences.jsonl   the answer stage's candidate sentences of all chunks (their texts) and
        sentence_vectors.npy  their float32 passage vectors, so answering embeds nothing
                          (absent in indexes written before they existed; an update adds them)
        bm25/             bm25s state over jieba terms
      .lock               held by the one process writing (``retriever.lock``)

A write fills a new generation folder, then switches ``manifest.json`` to it with one
atomic rename, so a reader sees the old or the new index, never a mix or nothing, and a
write killed at any point leaves a loadable index. What no manifest names (older
generations, leftovers of killed writes) is removed by the next writer. Loading
re-computes the content hash over every file of the generation before parsing any.

Format 1 indexes (everything flat beside ``manifest.json``, written before generations
existed) are read as they are; the first write converts them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TypeVar

import numpy as np

from ingest import Chunk, Document

FORMAT_VERSION = 2
FLAT_FORMAT = 1  # all files beside manifest.json; its hash covers only _FLAT_HASHED
MANIFEST = "manifest.json"
VECTORS = "vectors.npy"
HNSW = "hnsw.faiss"
CHUNKS = "chunks.jsonl"
DOCUMENTS = "documents.jsonl"
SENTENCES = "sentences.jsonl"
SENTENCE_VECTORS = "sentence_vectors.npy"
BM25_DIR = "bm25"
LOCK = ".lock"
GEN_PREFIX = "gen-"
STAGED_PREFIX = f".{MANIFEST}.tmp-"  # a manifest written but not yet switched in
_FLAT_FILES = (VECTORS, HNSW, CHUNKS, DOCUMENTS, BM25_DIR, SENTENCES, SENTENCE_VECTORS)
_FLAT_HASHED = (VECTORS, CHUNKS, DOCUMENTS)
CRASH_ENV = "POLICYQA_CRASH_AT"  # tests: kill -9 the writer at this named step
log = logging.getLogger(__name__)
T = TypeVar("T")


class IndexLoadError(RuntimeError):
    """Base class: the index cannot be used as it is."""


class IndexMissing(IndexLoadError):
    pass


class IndexCorrupt(IndexLoadError):
    pass


class IndexMismatch(IndexLoadError):
    pass


class IndexWriteError(RuntimeError):
    """The index could not be written; the previous one is still in place."""


class IndexLocked(IndexWriteError):
    """Another process kept writing the index for longer than we were willing to wait."""


@dataclass
class StoredIndex:
    """Everything an index generation holds, in memory."""

    chunks: list[Chunk]
    embed_keys: list[str]  # hash of the exact text embedded for each chunk (incremental reuse)
    vectors: np.ndarray
    documents: list[Document]
    manifest: dict = field(default_factory=dict)
    sentences: list[str] = field(default_factory=list)  # distinct sentence texts (qa/sentence_vectors.py)
    sentence_vectors: np.ndarray | None = None  # one normalized row per sentence; None: not stored


def _step(name: str) -> None:
    """A named point of a write, where tests kill the process to prove it is crash-safe."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _hash_file(digest, path: Path) -> None:
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)


def content_hash(folder: Path) -> str:
    """SHA-256 over every file of a generation with its name and size, in name order: any
    file changed, added, removed or copied in from another index changes it."""
    digest = hashlib.sha256()
    files = sorted((p.relative_to(folder).as_posix(), p) for p in Path(folder).rglob("*") if not p.is_dir())
    for name, path in files:
        encoded = name.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded + path.stat().st_size.to_bytes(8, "big"))
        _hash_file(digest, path)
    return digest.hexdigest()


def flat_hash(folder: Path) -> str:
    """The format-1 hash (three files, no names), to verify indexes written before format 2."""
    digest = hashlib.sha256()
    for name in _FLAT_HASHED:
        _hash_file(digest, Path(folder) / name)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Files first, then the folders that name them, so the generation survives a power cut."""
    for path in sorted(folder.rglob("*"), key=lambda p: p.is_dir()):
        _fsync(path)
    _fsync(folder)


# -- reading ---------------------------------------------------------------------------
def legacy_swaps(path: Path) -> list[Path]:
    """Folders an older version left beside ``path`` when killed mid-swap (newest last)."""
    path = Path(path)
    olds = [p for p in path.parent.glob(f".{path.name}.old-*") if (p / MANIFEST).is_file()]
    return sorted(olds, key=lambda p: p.stat().st_mtime)


def index_exists(path: str | Path) -> bool:
    """Whether ``path`` holds an index (sound or not) that a build must not replace."""
    path = Path(path)
    return (path / MANIFEST).is_file() or bool(legacy_swaps(path))


def read_manifest(folder: Path) -> dict:
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise IndexMissing(f"no index at {folder} (build it with: python -m ingest SOURCE_DIR --index {folder})")
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"index at {folder}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict):
        raise IndexCorrupt(f"index at {folder}: the manifest is not a JSON object")
    version = manifest.get("format_version")
    if version not in (FLAT_FORMAT, FORMAT_VERSION):
        raise IndexMismatch(
            f"index at {folder} has format version {version}, this program reads {FLAT_FORMAT} and "
            f"{FORMAT_VERSION}; rebuild it"
        )
    gen = manifest.get("generation")
    plain = isinstance(gen, str) and gen.startswith(GEN_PREFIX) and Path(gen).name == gen  # inside the folder
    if version == FORMAT_VERSION and not plain:
        raise IndexCorrupt(f"index at {folder}: the manifest names no valid generation ({gen!r})")
    if version == FLAT_FORMAT and gen is not None:
        raise IndexCorrupt(f"index at {folder}: a format {FLAT_FORMAT} manifest names a generation")
    return manifest


def generation_dir(folder: Path, manifest: dict) -> Path:
    """Where the files of the generation ``manifest`` names are (``folder`` itself for format 1)."""
    gen = manifest.get("generation")  # validated by read_manifest
    return Path(folder) if gen is None else Path(folder) / gen


def current_dir(folder: str | Path) -> Path:
    """The folder holding the current generation's files (tests and tools that inspect them)."""
    return generation_dir(Path(folder), read_manifest(Path(folder)))


def load_current(folder: str | Path, load: Callable[[dict, Path], T]) -> T:
    """``load(manifest, generation folder)`` on the current generation. Should it fail because
    a writer switched generations meanwhile (and removed the one being read), it runs again
    on the new one: a reader never has to see a half-written or vanished index."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    while True:
        try:
            return load(manifest, generation_dir(folder, manifest))
        except IndexLoadError:
            latest = read_manifest(folder)
            if latest == manifest:
                raise
            manifest = latest


def check_compatible(manifest: dict, model_id: str, dimension: int, folder: Path) -> None:
    if manifest.get("model_id") != model_id or manifest.get("dimension") != dimension:
        raise IndexMismatch(
            f"index at {folder} was built with {manifest.get('model_id')!r} (dim {manifest.get('dimension')}), "
            f"but the configured embedder is {model_id!r} (dim {dimension}); rebuild the index or configure "
            "the same model"
        )


def read_generation(manifest: dict, folder: Path, verify: bool = True) -> StoredIndex:
    """Load records and vectors of one generation; IndexCorrupt when anything disagrees."""
    names = {f.name for f in fields(Chunk)}
    try:
        if verify:
            actual = flat_hash(folder) if manifest.get("generation") is None else content_hash(folder)
            if actual != manifest.get("content_hash"):
                raise IndexCorrupt(f"index at {folder} does not match its manifest hash (modified or truncated)")
        vectors = np.load(folder / VECTORS, allow_pickle=False)
        rows = _read_jsonl(folder / CHUNKS)
        docs = [Document(**row) for row in _read_jsonl(folder / DOCUMENTS)]
        chunks = [Chunk(**{k: v for k, v in row.items() if k in names}) for row in rows]
        keys = [row.get("embed_key", "") for row in rows]
        sentences, sentence_vectors = [], None
        if manifest.get("generation") is not None and (folder / SENTENCES).is_file():  # format 1 had none
            sentences = [row["text"] for row in _read_jsonl(folder / SENTENCES)]
            sentence_vectors = np.load(folder / SENTENCE_VECTORS, allow_pickle=False)
    except IndexCorrupt:
        raise
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise IndexCorrupt(f"index at {folder} is damaged ({exc.__class__.__name__}: {exc})") from exc
    count = manifest.get("chunk_count")
    if vectors.ndim != 2 or len(chunks) != count or vectors.shape != (count, manifest.get("dimension")):
        raise IndexCorrupt(
            f"index at {folder} is inconsistent: {len(chunks)} chunks, vectors {vectors.shape}, manifest says "
            f"{count} x {manifest.get('dimension')}"
        )
    if sentence_vectors is not None and sentence_vectors.shape != (len(sentences), vectors.shape[1]):
        raise IndexCorrupt(f"index at {folder} is inconsistent: {len(sentences)} sentences, sentence vectors "
                           f"{sentence_vectors.shape}")
    return StoredIndex(chunks=chunks, embed_keys=keys, vectors=vectors, documents=docs, manifest=manifest,
                       sentences=sentences, sentence_vectors=sentence_vectors)


def read_index(folder: str | Path, verify: bool = True) -> StoredIndex:
    """The current generation's records and vectors."""
    return load_current(folder, lambda manifest, gen: read_generation(manifest, gen, verify))


# -- writing (the caller holds the write lock) -----------------------------------------------
def write_index(
    target: Path,
    stored: StoredIndex,
    model_id: str,
    extra_manifest: dict,
    write_extras,
) -> dict:
    """Write a new generation into ``target`` and switch the manifest to it.

    ``write_extras(folder)`` writes the search structures (BM25, HNSW) that belong to the
    retriever rather than to the store. Any OSError (a full disk) becomes one
    IndexWriteError, with the new generation removed and the previous index untouched.
    """
    target = Path(target)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    gen = target / f"{GEN_PREFIX}{stamp}-{os.getpid()}"
    try:
        gen.mkdir(parents=True)
        np.save(gen / VECTORS, stored.vectors.astype(np.float32, copy=False))
        _step("vectors")
        _write_jsonl(gen / CHUNKS, ({**asdict(c), "embed_key": k} for c, k in zip(stored.chunks, stored.embed_keys)))
        _write_jsonl(gen / DOCUMENTS, (asdict(d) for d in stored.documents))
        if stored.sentence_vectors is not None:
            np.save(gen / SENTENCE_VECTORS, stored.sentence_vectors.astype(np.float32, copy=False))
            _write_jsonl(gen / SENTENCES, ({"text": t} for t in stored.sentences))
        write_extras(gen)
        _fsync_tree(gen)
        _step("generation")
        manifest = {
            "format_version": FORMAT_VERSION,
            "model_id": model_id,
            "dimension": int(stored.vectors.shape[1]),
            "chunk_count": len(stored.chunks),
            "document_count": len(stored.documents),
            "sentence_count": None if stored.sentence_vectors is None else len(stored.sentences),
            "generation": gen.name,
            "content_hash": content_hash(gen),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            **extra_manifest,
        }
        _switch(target, manifest)
    except OSError as exc:
        shutil.rmtree(gen, ignore_errors=True)
        reason = exc.strerror or str(exc)
        raise IndexWriteError(
            f"could not write the index at {target}: {reason}; the previous index is unchanged"
        ) from exc
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    _step("switched")
    try:
        _fsync(target)
        remove_stale(target, gen.name)
    except OSError as exc:  # the new index is in place; leftovers go with the next write
        log.warning("index at %s written, but cleaning up failed: %s", target, exc)
    return manifest


def _switch(target: Path, manifest: dict) -> None:
    """The commit: write the new manifest beside the old one, then rename it over it."""
    staged = target / f"{STAGED_PREFIX}{os.getpid()}"
    try:
        with staged.open("w", encoding="utf-8") as fh:
            fh.write(json.dumps(manifest, ensure_ascii=False, indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        _step("staged")
        os.replace(staged, target / MANIFEST)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def remove_stale(target: Path, keep: str | None) -> None:
    """Remove what no manifest names: generations other than ``keep``, staged manifests, the
    flat files of a converted format-1 index, and the temporary folders older versions left."""
    target = Path(target)
    for entry in target.iterdir():
        name = entry.name
        if (name.startswith(GEN_PREFIX) and name != keep) or name.startswith(STAGED_PREFIX) or (
            keep is not None and name in _FLAT_FILES
        ):
            _remove(entry)
    for entry in target.parent.glob(f".{target.name}.tmp-*"):
        _remove(entry)
    if (target / MANIFEST).is_file():
        for entry in target.parent.glob(f".{target.name}.old-*"):
            _remove(entry)  # an older version died after its swap: the index in place is newer


def recover_legacy_swap(target: Path) -> None:
    """Put back the index an older version moved aside and was killed before replacing."""
    olds = legacy_swaps(target)
    if (target / MANIFEST).is_file() or not olds:
        return
    old = olds[-1]
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(old.iterdir(), key=lambda p: p.name == MANIFEST):  # the manifest last
        if (target / entry.name).exists():
            _remove(target / entry.name)
        os.replace(entry, target / entry.name)
    old.rmdir()
    log.warning("index at %s recovered from %s, where an interrupted write had left it", target, old)


def tidy(target: Path) -> None:
    """Before a write: remove leftovers of killed writes. A damaged or foreign index is left
    exactly as it is."""
    target = Path(target)
    try:
        manifest = read_manifest(target)
    except IndexMissing:
        manifest = None
    except IndexLoadError:
        return
    keep = manifest.get("generation") if manifest else None
    remove_stale(target, keep)
