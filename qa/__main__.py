"""``python -m qa "question" [--index DIR] [--generator extractive|llm] [--k N]``

``python -m qa --warm-up [--index DIR]`` embeds every sentence of the index once and keeps
the vectors in the user cache, so later answers skip sentence embedding (the bulk of an
extractive answer's time on a CPU). Prints the answer (streamed as it is written) and its numbered sources: title, section and
the quoted sentence(s); for a refusal, the possibly related passages. Exit code 2 on user
errors (missing index, bad arguments, a question that cannot be asked).
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from settings import load_settings

from .assistant import GENERATORS, Assistant
from .records import Answer


def _print_sources(answer: Answer) -> None:
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            print(f"[{c.n}] {c.hit.title} — {c.hit.section or '(document start)'}")
            print(f"    {c.hit.doc_id} [{c.quote_start}:{c.quote_end}]")
            print(textwrap.indent(textwrap.fill(c.quote, 80), "    "))
    if answer.related:
        print()
        for i, hit in enumerate(answer.related, start=1):
            print(f"  - {hit.title} — {hit.section or '(document start)'}  ({hit.doc_id} [{hit.start}:{hit.end}])")
            print(textwrap.indent(textwrap.shorten(hit.text, 160, placeholder=" …"), "      "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa", description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?")
    parser.add_argument("--warm-up", action="store_true", help="embed all sentences of the index ahead of time")
    parser.add_argument("--index", help="index directory (default from settings: index)")
    parser.add_argument("--generator", choices=GENERATORS, help="answer generator (default from settings)")
    parser.add_argument("--k", type=int, help="number of passages to read")
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument("--timings", action="store_true", help="print the time of each stage")
    args = parser.parse_args(argv)
    if args.question is None and not args.warm_up:
        parser.error("a question is required (or --warm-up)")
    if args.k is not None and args.k <= 0:
        parser.error(f"--k must be a positive integer, got {args.k}")
    from retriever import IndexLoadError, ModelNotFound

    settings = load_settings(args.config)
    try:
        assistant = Assistant.load(args.index or settings.index.path, settings)
    except (IndexLoadError, ModelNotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.warm_up:
        n = assistant.warm_up()
        print(f"{n} sentence vectors cached in {assistant.vectors.path or 'memory only'}")
        if args.question is None:
            return 0
    answer = None
    for piece in assistant.stream(args.question, k=args.k, generator=args.generator):
        if isinstance(piece, Answer):
            answer = piece
        else:
            print(piece, end="", flush=True)
    print()
    _print_sources(answer)
    if args.timings:
        print("\n" + "  ".join(f"{k} {v * 1000:.0f} ms" for k, v in answer.timings.items()))
    if answer.refused and answer.generator == "message":  # the question itself could not be asked
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
