"""Creating or incrementally updating an index from an ingestion result.

Only passages whose embedded text is new are sent through the model; vectors of
unchanged passages are reused from the existing index. Documents that were ingested
from the same source before and are gone now are removed; documents from other
sources are kept, so several folders (and uploads) can share one index. A damaged or
mismatched index is refused rather than rebuilt, unless a rebuild is asked for.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ingest import Chunk, Document, IngestResult
from settings import Settings, load_settings

from .embedder import Embedder, get_embedder
from .library import check_known
from .passages import embed_key, embed_text, keyword_text
from .store import IndexCorrupt, IndexMismatch, IndexMissing, check_compatible
from .stores import Change, PassageRow, Snapshot, Store, open_store, record_hash

__all__ = ["BuildReport", "build_index", "copy_index", "embed_key", "embed_text", "keyword_text", "remove_documents",
           "update_index"]


@dataclass
class BuildReport:
    path: str
    documents: int = 0
    chunks: int = 0
    embedded: int = 0  # passages that went through the model this run
    reused: int = 0
    sentences_embedded: int = 0  # answer-stage sentences embedded this run (the rest were reused)
    sentences_reused: int = 0
    added_docs: list[str] = field(default_factory=list)
    updated_docs: list[str] = field(default_factory=list)
    removed_docs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    index_kind: str = "flat"
    seconds: float = 0.0
    rebuilt: bool = False  # the previous index was discarded, not updated

    def __str__(self) -> str:
        lines = [
            f"index {self.path}: {self.documents} documents, {self.chunks} chunks ({self.index_kind}); "
            f"embedded {self.embedded}, reused {self.reused}; sentences embedded {self.sentences_embedded}, "
            f"reused {self.sentences_reused}; added {len(self.added_docs)}, "
            f"updated {len(self.updated_docs)}, removed {len(self.removed_docs)} documents in {self.seconds:.1f}s"
            + ("; rebuilt from scratch (the previous index was discarded)" if self.rebuilt else "")
        ]
        lines += [f"  not indexed: {s}" for s in self.skipped]
        return "\n".join(lines)


def _previous(store: Store, embedder: Embedder) -> Snapshot:
    """The existing index, to update. A damaged or mismatched one is refused, never silently
    replaced: rebuilding would drop every document not given in this run."""
    path = store.location
    try:
        snapshot = store.snapshot()
        if snapshot.manifest is not None:
            check_compatible(snapshot.manifest, embedder.model_id, embedder.dim, path)
        return snapshot
    except (IndexCorrupt, IndexMismatch) as exc:
        raise type(exc)(
            f"{exc}. Nothing was changed. To discard it and index only the documents given now, run: "
            f"python -m ingest SOURCE --index {path} --rebuild (documents from other sources will be lost)"
        ) from exc


def _within(path: str, roots: list[Path]) -> bool:
    p = Path(path).resolve()
    return any(p == r or r in p.parents for r in roots)


def _merge_documents(old: list[Document], result: IngestResult, roots: list[Path], report: BuildReport):
    """New document list: old ones outside the ingested source, plus everything read now."""
    new_ids = {d.doc_id for d in result.documents}
    failed = {str(Path(s.path).resolve()) for s in result.skipped}
    kept: list[Document] = []
    by_id = {d.doc_id: d for d in old}
    for doc in old:
        if doc.doc_id in new_ids:
            continue
        if _within(doc.path, roots) and str(Path(doc.path).resolve()) not in failed:
            report.removed_docs.append(doc.doc_id)  # it was here before and is gone now
            continue
        kept.append(doc)
    hashes = {d.content_hash: d.doc_id for d in kept}
    fresh: list[Document] = []
    for doc in result.documents:
        if doc.content_hash in hashes:
            report.skipped.append(f"{doc.path}: duplicate of {hashes[doc.content_hash]} (already indexed)")
            continue
        previous = by_id.get(doc.doc_id)
        if previous is None:
            report.added_docs.append(doc.doc_id)
        elif previous.content_hash != doc.content_hash or previous.title != doc.title:
            report.updated_docs.append(doc.doc_id)
        fresh.append(doc)
    return kept, fresh


def _sentence_texts(settings: Settings):
    from qa.sentence_vectors import sentence_texts  # the answer stage defines what a sentence is

    return lambda chunks: sentence_texts(chunks, settings.qa)


def update_index(result: IngestResult, path: str | Path, settings: Settings | None = None,
                 progress: bool = True, roots: list[Path] | None = None,
                 embedder: Embedder | None = None, rebuild: bool = False) -> BuildReport:
    """Create the index at ``path`` (a folder or a database URI) or bring it up to date with
    ``result``, holding its write lock throughout. ``rebuild`` discards the existing index
    (even a damaged one) instead."""
    settings = settings or load_settings()
    embedder = embedder or get_embedder(settings.embed)
    with open_store(path, settings) as store, store.write_lock():
        return _update(result, store, settings, progress, roots, embedder, rebuild)


def _update(result: IngestResult, store: Store, settings: Settings, progress: bool, roots: list[Path] | None,
            embedder: Embedder, rebuild: bool) -> BuildReport:
    started = time.perf_counter()
    report = BuildReport(path=store.location, rebuilt=rebuild)
    previous = Snapshot([], {}, None) if rebuild else _previous(store, embedder)
    if roots is None:
        roots = sorted({Path(d.path).resolve().parent for d in result.documents} |
                       {Path(s.path).resolve().parent for s in result.skipped})
    kept_docs, fresh_docs = _merge_documents(previous.documents, result, roots, report)
    fresh_ids = {d.doc_id for d in fresh_docs}
    kept_ids = {d.doc_id for d in kept_docs}
    old_docs = {d.doc_id: d for d in previous.documents}

    chunks = [c for c in result.chunks if c.doc_id in fresh_ids]
    keys = [embed_key(embed_text(c)) for c in chunks]
    # a passage whose stored record is identical is left alone; the others are written, their
    # vectors reused by embedded text where the store has it, embedded otherwise
    changed = _changed(previous, chunks, keys)
    cache = store.vectors(list({keys[i] for i in changed})) if previous.manifest else {}
    todo = sorted({keys[i]: i for i in reversed(changed) if keys[i] not in cache}.values())
    vectors = embedder.encode_passages([embed_text(chunks[i]) for i in todo], progress=progress)
    cache.update({keys[i]: v for i, v in zip(todo, vectors)})
    kept_passages = sum(doc in kept_ids for doc, _ in previous.passages.values())
    report.embedded, report.reused = len(todo), kept_passages + len(chunks) - len(todo)

    change = Change(
        model_id=embedder.model_id, dimension=embedder.dim, rebuild=rebuild,
        documents=[d for d in fresh_docs if d.doc_id not in old_docs or asdict(old_docs[d.doc_id]) != asdict(d)],
        removed_docs=list(report.removed_docs),
        passages=_rows(chunks, keys, cache, changed),
        stale_chunks=_stale(previous, chunks, fresh_ids),
        manifest={"chunk_settings": vars(settings.chunk)},
        sentence_texts=_sentence_texts(settings),
        embed_sentences=lambda texts: embedder.encode_passages(texts, progress=progress))
    _apply(store, change, report)
    report.seconds = time.perf_counter() - started
    return report


def _changed(previous: Snapshot, chunks: list[Chunk], keys: list[str]) -> list[int]:
    """Indexes of the passages a write must carry: those whose stored record differs or is
    missing (an identical one is left alone, vector and all)."""
    return [i for i, (c, k) in enumerate(zip(chunks, keys))
            if previous.passages.get(c.chunk_id) != (c.doc_id, record_hash(c, k))]


def _stale(previous: Snapshot, chunks: list[Chunk], docs: set[str]) -> list[str]:
    """Stored passages of ``docs`` that the new chunks no longer hold."""
    current = {c.chunk_id for c in chunks}
    return [cid for cid, (doc, _) in previous.passages.items() if doc in docs and cid not in current]


def _rows(chunks: list[Chunk], keys: list[str], vectors: dict, indexes: list[int]) -> list[PassageRow]:
    return [PassageRow(chunks[i], keys[i], np.asarray(vectors[keys[i]], dtype=np.float32), keyword_text(chunks[i]))
            for i in indexes]


def _apply(store: Store, change: Change, report: BuildReport) -> None:
    manifest = store.apply(change)
    report.documents, report.chunks = manifest["document_count"], manifest["chunk_count"]
    report.index_kind = manifest.get("index_kind", report.index_kind)
    report.sentences_embedded, report.sentences_reused = change.sentences_embedded, change.sentences_reused


def remove_documents(path: str | Path, doc_ids: Sequence[str], settings: Settings | None = None,
                     embedder: Embedder | None = None, progress: bool = False) -> BuildReport:
    """Remove documents and their passages from the index at ``path`` in one write.

    Every other passage keeps its stored vector, so nothing is embedded and no model is
    loaded (``embedder``, when given, is only checked against the index). Held under the
    write lock and written like any update: a crash leaves the old index or the new one.
    UnknownDocument (a KeyError) names ids the index does not hold, before anything changes;
    removing every document is refused (an index holds at least one)."""
    settings = settings or load_settings()
    started = time.perf_counter()
    with open_store(path, settings) as store, store.write_lock():
        path = store.location  # what messages name (a database location without its password)
        try:
            previous = store.snapshot()
        except (IndexCorrupt, IndexMismatch) as exc:
            raise type(exc)(f"{exc}. Nothing was removed.") from exc
        if previous.manifest is None:
            raise IndexMissing(f"no index at {path} (build it with: python -m ingest SOURCE_DIR --index {path})")
        if embedder is not None:
            check_compatible(previous.manifest, embedder.model_id, embedder.dim, path)
        ids = check_known(doc_ids, {d.doc_id for d in previous.documents}, f"the index at {path}")
        gone = set(ids)
        if all(d.doc_id in gone for d in previous.documents):
            raise ValueError(f"refusing to remove every document of the index at {path}; to start over, run "
                             f"python -m ingest SOURCE --index {path} --rebuild")
        report = BuildReport(path=path, removed_docs=ids,
                             reused=sum(doc not in gone for doc, _ in previous.passages.values()))
        _apply(store, Change(model_id=previous.manifest["model_id"], dimension=previous.manifest["dimension"],
                             removed_docs=ids, manifest={"chunk_settings": vars(settings.chunk)},
                             sentence_texts=_sentence_texts(settings)), report)
    report.seconds = time.perf_counter() - started
    return report


def copy_index(source: str | Path, target: str | Path, settings: Settings | None = None,
               rebuild: bool = False) -> BuildReport:
    """Copy the index at ``source`` into ``target`` (a folder into seekdb, or back) with its
    vectors: nothing is embedded and no model is loaded. Documents already in ``target``
    are updated, others kept (``rebuild``: discarded)."""
    settings = settings or load_settings()
    started = time.perf_counter()
    with open_store(source, settings) as src:
        source = src.location  # messages name locations without passwords
        manifest = src.manifest()
        src.open_for(manifest["model_id"], manifest["dimension"])
        documents = src.documents()
        chunks = [c for d in documents for c in src.passages_of(d.doc_id)]
        keys = [embed_key(embed_text(c)) for c in chunks]
        vectors = src.vectors(keys)
        missing = sorted({k for k in keys if k not in vectors})
        if missing:
            raise IndexCorrupt(f"index at {source}: {len(missing)} passages have no stored vector")
        sentences = _sentence_texts(settings)
        stored_sentences = src.sentence_vectors(sentences(chunks))

    def from_source(texts: list[str]) -> np.ndarray:
        lost = [t for t in texts if t not in stored_sentences]
        if lost:
            raise IndexCorrupt(f"index at {source} holds no vector for {len(lost)} answer sentences; update it "
                               f"first (python -m ingest SOURCE --index {source})")
        return np.stack([stored_sentences[t] for t in texts])

    with open_store(target, settings) as dst, dst.write_lock():
        target = dst.location
        report = BuildReport(path=target, rebuilt=rebuild, reused=len(chunks))
        previous = Snapshot([], {}, None) if rebuild else dst.snapshot()
        if previous.manifest is not None:
            check_compatible(previous.manifest, manifest["model_id"], manifest["dimension"], target)
        known = {d.doc_id for d in previous.documents}
        report.added_docs = [d.doc_id for d in documents if d.doc_id not in known]
        report.updated_docs = [d.doc_id for d in documents if d.doc_id in known]
        change = Change(
            model_id=manifest["model_id"], dimension=manifest["dimension"], rebuild=rebuild, documents=documents,
            passages=_rows(chunks, keys, vectors, _changed(previous, chunks, keys)),
            stale_chunks=_stale(previous, chunks, {d.doc_id for d in documents}),
            manifest={k: v for k, v in manifest.items() if k == "chunk_settings"},
            sentence_texts=sentences, embed_sentences=from_source)
        _apply(dst, change, report)
    report.seconds = time.perf_counter() - started
    return report


def build_index(source: str | Path, path: str | Path, settings: Settings | None = None,
                progress: bool = True, rebuild: bool = False) -> BuildReport:
    """Ingest ``source`` and create or update the index at ``path`` in one call."""
    from ingest import ingest_folder

    settings = settings or load_settings()
    source = Path(source)
    result = ingest_folder(source, settings.chunk, progress=progress)
    roots = [source.resolve()]
    report = update_index(result, path, settings, progress=progress, roots=roots, rebuild=rebuild)
    report.skipped = [f"{s.path}: {s.reason}" for s in result.skipped] + report.skipped
    return report
