"""Ingesting a folder: every readable file becomes a Document and its Chunks.

A bad file never stops the run; it becomes a ``Skipped`` record whose one-line reason
names the problem, and the caller decides the exit status from what was read. Rich
formats are parsed by a ``sandbox.Parser`` (a child process bounded in time and memory)
that lives as long as the run.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from settings import ChunkSettings

from .chunker import chunk_document
from .clean import clean_text
from .language import detect_script
from .loaders import RICH, LoadError, load_raw, supported
from .records import Chunk, Document, Skipped
from .sandbox import ParseFailed, Parser

log = logging.getLogger(__name__)
METADATA_FILE = "metadata.json"  # optional per-folder facts: {file name: {title, issuer, date, ...}}
MAX_TITLE = 80


@dataclass
class IngestResult:
    documents: list[Document] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"documents read: {len(self.documents)}, skipped: {len(self.skipped)}, chunks: {len(self.chunks)}"
        ]
        lines += [f"  skipped {s.path}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


def find_files(source: Path) -> list[Path]:
    """Supported files under ``source`` (a folder, searched recursively, or one file)."""
    if source.is_file():
        return [source]
    return sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and supported(p) and not any(part.startswith(".") for part in p.relative_to(source).parts)
    )


def _metadata_for(path: Path) -> dict:
    meta_file = path.parent / METADATA_FILE
    if not meta_file.is_file():
        return {}
    try:
        entries = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", meta_file, exc)
        return {}
    entry = entries.get(path.name, {}) if isinstance(entries, dict) else {}
    return entry if isinstance(entry, dict) else {}


def _default_title(text: str, path: Path) -> str:
    first = next((line.strip() for line in text.split("\n") if line.strip()), path.stem)
    return first[:MAX_TITLE]


def read_document(path: Path, doc_id: str, cfg: ChunkSettings, parser: Parser | None = None) -> Document:
    """Load, decode and clean one file; raise LoadError with a user-facing reason.

    ``parser`` parses rich formats; without one, a child process is started for this file.
    """
    try:
        size = path.stat().st_size
        if size == 0:
            raise LoadError("empty file")
        if size > cfg.max_file_bytes:
            raise LoadError(f"too large ({size / 1e6:.0f} MB > {cfg.max_file_bytes / 1e6:.0f} MB limit)")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise LoadError("file disappeared during the run") from exc
    except PermissionError as exc:
        raise LoadError("permission denied") from exc
    except IsADirectoryError as exc:
        raise LoadError("is a directory") from exc
    except OSError as exc:
        raise LoadError(f"cannot read ({exc.strerror or exc})") from exc
    if path.suffix.lower() in RICH:
        with contextlib.nullcontext(parser) if parser is not None else Parser(cfg) as rich:
            raw = rich.parse(path.suffix.lower(), data)
    else:
        raw = load_raw(path, data, cfg)
    text = clean_text(raw)
    if not text.strip():
        raise LoadError("no text left after cleaning (empty or only whitespace/boilerplate)")
    meta = _metadata_for(path)
    return Document(
        doc_id=doc_id,
        title=str(meta.get("title") or _default_title(text, path)),
        path=str(path),
        script=str(meta.get("script") or detect_script(text)),
        text=text,
        meta=meta,
    )


def _unexpected_reason(exc: Exception) -> str:
    """One line for an error no loader anticipated (a library failing on odd input): the
    file is skipped like any bad file rather than ending the run with a traceback."""
    detail = " ".join(str(exc).split())[:200]
    name = exc.error_type if isinstance(exc, ParseFailed) else exc.__class__.__name__
    return f"could not be read ({name}{': ' + detail if detail else ''})"


def _doc_id(path: Path, root: Path, taken: set[str], prefix: str = "") -> str:
    """The file name; the relative path only when two files share a name."""
    if prefix + path.name not in taken:
        return prefix + path.name
    return prefix + (path.relative_to(root).as_posix() if root in path.parents else str(path))


def ingest_paths(paths: Iterable[Path], root: Path, cfg: ChunkSettings, progress: bool = True,
                 id_prefix: str = "") -> IngestResult:
    """``id_prefix`` puts the documents in a namespace of their own (uploads: ``uploads/``)."""
    result = IngestResult()
    by_hash: dict[str, str] = {}
    taken: set[str] = set()
    paths = list(paths)
    with Parser(cfg) as parser:  # one child process for the run's rich files
        for path in tqdm(paths, desc="ingest", unit="file", disable=not progress):
            doc_id = _doc_id(path, root, taken, id_prefix)
            try:
                doc = read_document(path, doc_id, cfg, parser)
            except LoadError as exc:
                result.skipped.append(Skipped(str(path), str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - a bad file must never stop the run
                log.debug("unexpected error reading %s", path, exc_info=True)
                result.skipped.append(Skipped(str(path), _unexpected_reason(exc)))
                continue
            if doc.content_hash in by_hash:
                result.skipped.append(Skipped(str(path), f"duplicate of {by_hash[doc.content_hash]} (same content)"))
                continue
            by_hash[doc.content_hash] = doc_id
            taken.add(doc_id)
            result.documents.append(doc)
            result.chunks.extend(chunk_document(doc, cfg))
    return result


def ingest_folder(source: str | Path, cfg: ChunkSettings | None = None, progress: bool = True) -> IngestResult:
    source = Path(source)
    root = source if source.is_dir() else source.parent
    return ingest_paths(find_files(source), root, cfg or ChunkSettings(), progress=progress)
