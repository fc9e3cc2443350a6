"""``python -m ingest --list|--remove``: what an index holds, and taking documents out of it.

Both read only the index (no model is loaded): the list comes from its document and chunk
records, and a removal reuses every other passage's stored vector. Like ingestion, an
index error prints one line and exits with status 2, leaving the index as it was.
"""

from __future__ import annotations

import sys

from settings import Settings


def _console():
    from rich.console import Console

    # a pipe or a file gets whole lines (titles are long), a terminal its own width
    return Console(width=None if sys.stdout.isatty() else 240, soft_wrap=not sys.stdout.isatty())


def list_documents(index: str, settings: Settings) -> int:
    from rich.table import Table

    from retriever.library import library
    from retriever.store import IndexLoadError
    from retriever.stores import open_store

    try:
        with open_store(index, settings) as store:
            manifest = store.manifest()
            store.open_for(manifest.get("model_id"), manifest.get("dimension"))  # whatever model built it
            documents, counts = store.documents(), store.passage_counts()
    except IndexLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = Table(title=f"{index}: {len(documents)} documents, {sum(counts.values())} passages",
                  title_justify="left")
    for name, justify in [("id", "left"), ("title", "left"), ("issuer", "left"), ("date", "left"),
                          ("script", "left"), ("passages", "right"), ("origin", "left")]:
        table.add_column(name, justify=justify, overflow="fold")
    for info in library(documents, counts):
        origin = info.origin + (f" {info.uploaded_at}" if info.uploaded_at else "")
        table.add_row(info.doc_id, info.title, info.issuer or "-", info.date or "-", info.script,
                      str(info.passages), origin)
    _console().print(table)
    return 0


def remove(index: str, doc_ids: list[str], settings: Settings) -> int:
    from retriever.build import remove_documents
    from retriever.library import UnknownDocument
    from retriever.store import IndexLoadError, IndexWriteError

    try:
        report = remove_documents(index, doc_ids, settings)
    except (UnknownDocument, ValueError, IndexLoadError, IndexWriteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report)
    for doc_id in report.removed_docs:
        print(f"  removed: {doc_id}")
    return 0
