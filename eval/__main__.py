"""``python -m eval QUESTIONS.jsonl --index DIR --out DIR [--k 10] [--configs bm25,dense,hybrid] [--no-answers] [--generators extractive,llm]``

Runs every question through each retrieval configuration (and through the QA stage when
``qa`` is importable, once per answer generator), then writes results.jsonl, summary.json,
report.md and a chart. The LLM generator is skipped, with the reason, where it cannot run.
Malformed question lines are reported on stderr with their line number and skipped.
Exit status: 0 when the report was written (1 with --strict if a line was skipped),
2 when the question file or the index cannot be opened, 3 when --gate finds a metric
below its floor (eval/gate.toml).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from settings import load_settings

from .report import REPORT, retrieval_overall_table, write_outputs
from .runner import EvalOptions, parse_list, run_evaluation
from .schema import load_questions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("questions", help="question file (JSON lines)")
    parser.add_argument("--index", help="index directory (default from settings)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--k", type=int, help="passages retrieved per question (default 10)")
    parser.add_argument("--configs", help="retrieval configurations compared, comma-separated (default bm25,dense,hybrid)")
    parser.add_argument("--answers", action=argparse.BooleanOptionalAction, default=None,
                        help="score answers with the qa stage (default: on when qa is importable)")
    parser.add_argument("--generators",
                        help="answer generators scored side by side, comma-separated: extractive,llm "
                             "(default EvalSettings.generators, extractive)")
    parser.add_argument("--llm-translation", action="store_true",
                        help="search English questions with the LLM's Chinese rendering too, as LLM answers do")
    parser.add_argument("--limit", type=int, help="only the first N valid questions (quick runs)")
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument("--gate", nargs="?", const="", metavar="TOML",
                        help="check the quality floors (default file: EvalSettings.gate_file); exit 3 below them")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a question line was skipped")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings(args.config)
    try:
        options = EvalOptions.from_settings(
            settings, k=args.k, answers=args.answers,
            configs=parse_list(args.configs) if args.configs else None,
            generators=parse_list(args.generators) if args.generators else None,
            llm_translation=args.llm_translation or None,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        qfile = load_questions(args.questions)
    except OSError as exc:
        print(f"error: cannot read {args.questions}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for err in qfile.errors:
        print(f"{args.questions}: {err} — skipped", file=sys.stderr)
    questions = qfile.questions[: args.limit] if args.limit else qfile.questions
    if not questions:
        print(f"warning: {args.questions} holds no valid question", file=sys.stderr)

    from retriever import IndexLoadError, ModelNotFound, Retriever

    index = args.index or settings.index.path
    try:
        retriever = Retriever.load(index, settings)
    except (IndexLoadError, ModelNotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_evaluation(questions, retriever, settings, options, progress=not args.quiet,
                                skipped=qfile.errors, source=str(args.questions))
    except RuntimeError as exc:  # answers explicitly requested but qa unavailable
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = write_outputs(result, args.out)
    print(retrieval_overall_table(result.summary))
    answers = result.summary["answers"]
    if answers:
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        for name, block in answers["generators"].items():
            o = block["overall"]
            print(f"answers ({answers['config']}, {name}): key recall {fmt(o['key_recall'])}, citations correct "
                  f"{fmt(o['citation_correct'])}, refusal accuracy {fmt(o['refusal_accuracy'])}, "
                  f"false refusals {fmt(o['false_refusal_rate'])}, ungrounded-figure sentences "
                  f"{o['ungrounded_figure_sentences'] if o['ungrounded_figure_sentences'] is not None else '–'}, "
                  f"English in English {fmt(o['english_in_english'])}, first text p50 "
                  f"{fmt(o['first_text_p50_s'])} s, full answer p50 {fmt(o['total_p50_s'])} s")
        for name, why in answers["skipped"].items():
            print(f"answers ({name}): skipped — {why}")
    else:
        print(f"answers not scored: {result.summary['answers_skipped']}")
    print(f"report: {paths[REPORT]} (and {', '.join(p.name for n, p in paths.items() if n != REPORT)} in {Path(args.out)})")
    status = 0
    if args.gate is not None:
        from .gate import check_gate, load_gate

        if answers and answers["gated"] != "extractive":
            print(f"gate: answer floors are for the extractive generator; checking {answers['gated']}",
                  file=sys.stderr)
        failures = check_gate(result.summary, load_gate(args.gate or settings.eval.gate_file))
        for failure in failures:
            print(f"gate: {failure}", file=sys.stderr)
        print("gate: " + ("FAILED" if failures else "passed"))
        status = 3 if failures else 0
    if qfile.errors:
        print(f"{len(qfile.errors)} malformed line(s) skipped", file=sys.stderr)
        if args.strict and not status:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
