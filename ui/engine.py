"""The state the app serves from: one shared ``qa.Assistant``, its index folder and uploads.

Kept out of ``app.py`` so the chat UI, the HTTP API and the command line can share one
object without importing Gradio: a request takes ``engine.assistant`` once and keeps it, so
an index swap (upload, removal) is seen whole or not at all.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from settings import Settings


class Engine:
    """The one loaded Assistant every session shares, and the index it reads.

    A request takes ``engine.assistant`` once and uses that object to the end, so after an
    upload it sees the old index or the new one, never a mix. Uploads build the new index
    on disk and a new Assistant (sharing the loaded models) under a lock, then swap the
    reference in one assignment.
    """

    def __init__(self, assistant, index_dir: Path | str, settings: Settings):
        self.assistant = assistant
        from retriever import is_uri

        self.index_dir = index_dir if is_uri(index_dir) else Path(index_dir)  # a folder or a database URI
        self.settings = settings
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._warmers: list[threading.Thread] = []
        self._sections: dict[str, list] = {}
        self._sections_of = None
        self._removed: set[str] = set()  # ids removed while this process ran (the source view says so)

    @classmethod
    def load(cls, index_dir: Path | str, settings: Settings) -> "Engine":
        from qa import Assistant

        return cls(Assistant.load(index_dir, settings=settings), index_dir, settings)

    def warm_up(self, assistant=None) -> None:
        """Embed the index's sentences once into the on-disk sentence cache.

        Without it each early answer embeds its candidate sentences (seconds apiece on a
        small CPU). It runs in the background: it takes the model a slice at a time and
        steps aside for questions (``retriever.embedder.ModelLock``). With the cache filled
        (every later start, and after an upload only the new sentences) it is quick.
        """
        assistant = assistant or self.assistant
        if self.settings.app.warm_up and assistant.generator_name() == "llm":
            started = time.perf_counter()
            if assistant.load_llm():  # once per process (~2 s), so the first question does not wait for it
                print(f"LLM loaded ({time.perf_counter() - started:.1f}s)", flush=True)
        if not (self.settings.app.warm_up and self.settings.qa.sentence_cache_dir):
            return
        if assistant.retriever.manifest.get("sentence_count") is not None:
            return  # the index holds every sentence's vector: nothing to embed
        cached = len(assistant.vectors)
        if cached == 0:
            print("Embedding the index's sentences once, so answers need not wait for it (about a minute)…",
                  flush=True)
        started = time.perf_counter()
        total = assistant.warm_up(save=True, stop=self._stop)
        if total > cached:
            print(f"sentence cache: {total} sentences, {total - cached} new "
                  f"({time.perf_counter() - started:.0f}s)", flush=True)

    def warm_up_in_background(self, assistant=None) -> None:
        thread = threading.Thread(target=self.warm_up, args=(assistant,), name="warm-up", daemon=True)
        self._warmers = [t for t in self._warmers if t.is_alive()] + [thread]
        thread.start()

    def close(self) -> None:
        """Stop background warm-ups (they save what they embedded) before the process exits:
        a model call still running in a thread when the interpreter ends aborts it."""
        self._stop.set()
        for thread in self._warmers:
            thread.join()

    @property
    def retriever(self):
        return self.assistant.retriever

    def stats(self) -> str:
        r = self.retriever
        return f"索引 Index: {len(r.documents)} documents · {len(r)} passages"

    def document(self, doc_id: str):
        """A document of the current index by exact id, else None (ids are never paths)."""
        return self.retriever.document(doc_id)

    # -- the library -----------------------------------------------------------------------
    @property
    def rebuilding(self) -> bool:
        """True while an upload or a removal holds the write lock (the index is being rebuilt)."""
        return self._write_lock.locked()

    def library(self) -> list:
        """The current index's documents (``retriever.DocumentInfo``), in index order. An upload
        indexed before upload times were stored shows its kept file's modification time."""
        from dataclasses import replace

        area = self.upload_area()
        out = []
        for info in self.retriever.library():
            kept = area.path_of(info.doc_id.split("/", 1)[1]) if info.origin == "upload" else None
            if kept is not None and info.uploaded_at is None and kept.is_file():
                mtime = datetime.fromtimestamp(kept.stat().st_mtime, timezone.utc)
                info = replace(info, uploaded_at=mtime.isoformat(timespec="seconds"))
            out.append(info)
        return out

    def was_removed(self, doc_id: str) -> bool:
        """Whether ``doc_id`` was removed from the index (and not added again) since the app started."""
        return doc_id in self._removed and self.document(doc_id) is None

    def conflicts(self, paths: list[Path]) -> list[str]:
        """File names among ``paths`` that are already uploaded (adding them needs a decision)."""
        from ingest.uploads import safe_name, upload_id

        names = [safe_name(Path(p).name) for p in paths]
        return [n for n in dict.fromkeys(names) if n is not None and self.document(upload_id(n)) is not None]

    def remove_documents(self, doc_ids: list[str]):
        """Remove documents from the index and swap in the index without them; returns the BuildReport.

        Under the same write lock as uploads; UnknownDocument (nothing changed) for an id the
        index does not hold. An upload's kept file is deleted from the upload area once the
        new index is in place. Answers already shown keep their quotes (they hold the text);
        their source links then say the source was removed (``was_removed``)."""
        from retriever import remove_documents

        with self._write_lock:
            report = remove_documents(self.index_dir, doc_ids, self.settings, embedder=self.retriever.embedder)
            self._removed.update(report.removed_docs)
            fresh = self._swap_in()
            self.upload_area().sweep(set(fresh.retriever.documents))
            return report

    def _swap_in(self):
        """A whole new Assistant on the index as written now (its refusal judge reads it too),
        sharing the loaded embedder, swapped in by one assignment."""
        from qa import Assistant
        from retriever import Retriever

        self.assistant.vectors.save()
        fresh = Assistant(Retriever.load(self.index_dir, self.settings, embedder=self.retriever.embedder),
                          self.settings)
        self.assistant = fresh
        return fresh

    def _free_name(self, name: str, taken: set[str]) -> str:
        """``name`` or ``stem (2).ext``, ``stem (3).ext`` … : a name no upload has yet."""
        from ingest.uploads import upload_id

        stem, suffix = Path(name).stem, Path(name).suffix
        n, candidate = 1, name
        while self.document(upload_id(candidate)) is not None or candidate in taken:
            n += 1
            candidate = f"{stem} ({n}){suffix}"
        return candidate

    def section_at(self, doc_id: str, pos: int) -> str:
        """Heading path of the passage that holds character ``pos`` (for the source view)."""
        retriever = self.retriever
        if self._sections_of is not retriever:  # forgotten after each index swap
            self._sections, self._sections_of = {}, retriever
        if doc_id not in self._sections:  # one document's passages, when its source is first viewed
            self._sections[doc_id] = ([(c.start, c.end, c.section) for c in retriever.passages_of(doc_id)]
                                      if doc_id in retriever.documents else [])
        return next((s for a, b, s in self._sections[doc_id] if a <= pos < b and s), "")

    def upload_area(self):
        from ingest.uploads import UploadArea

        cfg = self.settings.app
        if cfg.upload_dir:
            root = Path(cfg.upload_dir)
        elif isinstance(self.index_dir, Path):
            root = self.index_dir.with_name(self.index_dir.name + ".uploads")
        else:  # a database: beside the working directory, named for the database (never its password)
            where = self.index_dir.split("://", 1)[-1].rsplit("@", 1)[-1]
            root = Path(re.sub(r"[^A-Za-z0-9._-]+", "_", where).strip("_") + ".uploads")
        return UploadArea(root, cfg.upload_area_bytes)

    def check_request(self, paths: list[Path]) -> None:
        """Refuse a whole request over the per-request bounds before anything is read."""
        from ingest.uploads import UploadRefused

        cfg = self.settings.app
        if len(paths) > cfg.max_upload_files:
            raise UploadRefused(f"too many files in one upload ({len(paths)} > {cfg.max_upload_files}, "
                                "AppSettings.max_upload_files)")
        total = sum(p.stat().st_size for p in paths)
        if total > cfg.max_upload_bytes:
            raise UploadRefused(f"upload too large ({total / 1e6:.1f} MB > {cfg.max_upload_bytes / 1e6:.0f} MB "
                                "per request, AppSettings.max_upload_bytes)")

    def add_documents(self, paths: list[Path], replace: bool = False,
                      keep_both: bool = False) -> tuple[list, list[str], object | None]:
        """Ingest uploaded files as ``uploads/<name>`` documents and swap in an index that has them.

        Returns (documents added or replaced, skip messages, BuildReport or None). A name
        already uploaded is replaced only when ``replace`` says so; ``keep_both`` adds it
        under a free name (``name (2).txt``) instead. The files are kept in the
        upload area; whatever the index did not take is removed from it again. Questions
        keep being answered from the current index until the new one is swapped in.
        """
        from ingest import Skipped, ingest_paths
        from ingest.loaders import LOADERS, supported
        from ingest.uploads import PREFIX, safe_name, upload_id
        from retriever import update_index
        from retriever.library import UPLOADED_AT

        with self._write_lock:
            self.check_request(paths)
            area = self.upload_area()
            skipped: list[Skipped] = []
            wanted: list[tuple[Path, str]] = []
            for p in paths:
                name = safe_name(p.name)
                if not supported(p):
                    skipped.append(Skipped(p.name, "unsupported file type (supported: "
                                                   f"{', '.join(sorted(LOADERS))})"))
                elif name is None:
                    skipped.append(Skipped(p.name, "not a usable file name"))
                elif any(name == n for _, n in wanted):
                    skipped.append(Skipped(name, "the same file name twice in one upload"))
                elif self.document(upload_id(name)) is not None and keep_both and not replace:
                    wanted.append((p, self._free_name(name, {n for _, n in wanted})))
                elif self.document(upload_id(name)) is not None and not replace:
                    skipped.append(Skipped(name, f"already uploaded as {upload_id(name)}; choose "
                                                 "'replace uploads of the same name' to replace it"))
                else:
                    wanted.append((p, name))
            staged = area.stage(wanted)
            try:
                result = ingest_paths([s.path for s in staged], area.root, self.settings.chunk, progress=True,
                                      id_prefix=PREFIX)
                read = {Path(d.path).name for d in result.documents}
                area.rollback([s for s in staged if s.name not in read])
                staged = [s for s in staged if s.name in read]
                skipped += [Skipped(Path(s.path).name, s.reason) for s in result.skipped]
                report = None
                now = datetime.now(timezone.utc).isoformat(timespec="seconds")
                for doc in result.documents:  # stored with the document: the library shows it after a restart
                    doc.meta[UPLOADED_AT] = now
                if result.documents:
                    embedder = self.retriever.embedder
                    report = update_index(result, self.index_dir, self.settings, progress=True, roots=[],
                                          embedder=embedder)
            except BaseException:
                area.rollback(staged)
                raise
            area.commit(staged)
            messages = [f"{s.path}: {s.reason}" for s in skipped]
            if report is not None:  # e.g. "duplicate of …": show file names, not server paths
                messages += [line.replace(str(area.root) + os.sep, "") for line in report.skipped]
            if report is None:  # nothing readable: the area is as it was
                return [], messages, None
            # Its new sentences are embedded in the background, yielding the model to questions
            # (answers embed on demand meanwhile).
            fresh = self._swap_in()
            area.sweep(set(fresh.retriever.documents))  # e.g. a duplicate that was not indexed
            self.warm_up_in_background(fresh)
            changed = set(report.added_docs) | set(report.updated_docs)
            return [d for d in result.documents if d.doc_id in changed], messages, report
