"""Evaluation: question-file schema, normalization, metrics, runner and reports.

    python -m eval eval/questions.jsonl --index index --out eval_out
"""

from .metrics import all_docs_rank, first_rank, hit_at_k, key_recall, mrr, reciprocal_rank
from .normalize import contains_span, normalize
from .runner import EvalOptions, EvalResult, run_evaluation
from .schema import LineError, Question, load_questions, parse_lines

__all__ = [
    "EvalOptions",
    "EvalResult",
    "LineError",
    "Question",
    "all_docs_rank",
    "contains_span",
    "first_rank",
    "hit_at_k",
    "key_recall",
    "load_questions",
    "mrr",
    "normalize",
    "parse_lines",
    "reciprocal_rank",
    "run_evaluation",
]
