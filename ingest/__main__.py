"""``python -m ingest SOURCE [--index DIR]``: ingest a folder, optionally into an index.

``python -m ingest --list --index DIR`` prints the index's documents;
``python -m ingest --remove DOC_ID [--remove DOC_ID …] --index DIR`` removes documents;
``python -m ingest --from-index DIR --index seekdb://…`` copies an index with its vectors.

Without ``--index`` it reads, cleans and chunks, prints the summary and can write the
chunks as JSON lines. With ``--index`` it hands the result to the retriever stage,
which creates the index or updates it incrementally; a damaged or mismatched index is
refused unless ``--rebuild`` asks to discard it. Index errors (damaged, locked by another
writer, disk full) print one line and exit with status 2, leaving the index as it was.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from settings import load_settings

from .pipeline import ingest_folder


def copy(source: str, target: str, settings, rebuild: bool) -> int:
    from retriever.build import copy_index
    from retriever.store import IndexLoadError, IndexWriteError

    try:
        print(copy_index(source, target, settings, rebuild=rebuild))
    except (IndexLoadError, IndexWriteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", help="folder (searched recursively) or single file")
    parser.add_argument("--index", help="index to create or update: a directory, or seekdb:///DIR or "
                        "seekdb://USER[:PASSWORD]@HOST:PORT/DATABASE (README: Scaling out)")
    parser.add_argument("--chunks-out", help="write the chunks as JSON lines to this file")
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument("--chunk-size", type=int, help="target chunk size in characters")
    parser.add_argument("--overlap", type=int, help="overlap in characters")
    parser.add_argument("--model", help="embedding model (local directory or cached hub id)")
    parser.add_argument("--rebuild", action="store_true",
                        help="discard the existing index (even a damaged one) and index only SOURCE")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--list", action="store_true", help="list the documents of the --index (no SOURCE)")
    parser.add_argument("--remove", action="append", metavar="DOC_ID", default=[],
                        help="remove this document from the --index (repeatable; no SOURCE)")
    parser.add_argument("--from-index", metavar="INDEX",
                        help="copy this index (folder or seekdb URI) into --index with its vectors (no SOURCE)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    # a plain `kill` unwinds like Ctrl-C, so an open database write is rolled back, not left open
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.from_index:
        if args.source or not args.index:
            parser.error("--from-index takes --index and no SOURCE")
        return copy(args.from_index, args.index, load_settings(args.config), args.rebuild)
    if args.list or args.remove:
        if args.source or not args.index:
            parser.error("--list and --remove take --index DIR and no SOURCE")
        from .library import list_documents, remove

        return remove(args.index, args.remove, load_settings(args.config)) if args.remove else \
            list_documents(args.index, load_settings(args.config))
    if args.source is None:
        parser.error("SOURCE is required (or use --list / --remove with --index)")

    settings = load_settings(args.config)
    settings = settings.override("chunk", target_chars=args.chunk_size, overlap_chars=args.overlap)
    settings = settings.override("embed", model=args.model)
    source = Path(args.source)
    if not source.exists():
        print(f"error: {source} does not exist", file=sys.stderr)
        return 2
    result = ingest_folder(source, settings.chunk, progress=not args.quiet)
    if args.chunks_out:
        with open(args.chunks_out, "w", encoding="utf-8") as fh:
            for chunk in result.chunks:
                fh.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
    print(result.summary())
    if not result.documents:
        print("error: nothing could be ingested", file=sys.stderr)
        return 1
    if args.index:
        from retriever.build import update_index
        from retriever.store import IndexLoadError, IndexWriteError

        try:
            report = update_index(result, args.index, settings, progress=not args.quiet, roots=[source.resolve()],
                                  rebuild=args.rebuild)
        except (IndexLoadError, IndexWriteError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
