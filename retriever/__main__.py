"""``python -m retriever "question" [--index DIR] [--k 5] [--mode hybrid|dense|bm25]``

Prints the hits with their section paths and scores: the quickest way to see what the
assistant would read before answering.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from settings import load_settings

from .search import MODES, QueryError, Retriever
from .store import IndexLoadError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retriever", description=__doc__.splitlines()[0])
    parser.add_argument("query")
    parser.add_argument("--index", help="index directory (default from settings: index)")
    parser.add_argument("--k", type=int, help="number of passages")
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--doc", action="append", dest="doc_ids", help="restrict to this document id (repeatable)")
    parser.add_argument("--config", help="TOML settings file")
    args = parser.parse_args(argv)
    settings = load_settings(args.config)
    try:
        retriever = Retriever.load(args.index or settings.index.path, settings)
        hits = retriever.search(args.query, k=args.k, mode=args.mode, doc_ids=args.doc_ids)
    except (IndexLoadError, QueryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not hits:
        print("no passages found")
    for rank, hit in enumerate(hits, start=1):
        parts = [f"score {hit.score:.4f}"]
        if hit.dense_score is not None:
            parts.append(f"dense {hit.dense_score:.3f} (#{hit.dense_rank})")
        if hit.bm25_score is not None:
            parts.append(f"bm25 {hit.bm25_score:.2f} (#{hit.bm25_rank})")
        print(f"[{rank}] {hit.title} — {hit.section or '(document start)'}")
        print(f"    {hit.doc_id} [{hit.start}:{hit.end}]  " + ", ".join(parts))
        print(textwrap.indent(textwrap.shorten(hit.text, 240, placeholder=" …"), "    "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
