"""The question file: one JSON object per line, validated field by field.

    {"id": "q001", "question": "...", "lang": "zh|zh-Hant|en",
     "type": "factoid|number|list|why|comparison|unanswerable",
     "docs": ["000_….txt"], "evidence": ["span copied from the raw file"],
     "answer": "reference answer", "answer_keys": ["short strings an answer must contain"]}

A malformed line (bad JSON, a missing key, a wrong type, an unknown type or language,
a repeated id) becomes a ``LineError`` naming its line number; the other lines are
still read, so one bad line never stops an evaluation run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

LANGS = ("zh", "zh-Hant", "en")
TYPES = ("factoid", "number", "list", "why", "comparison", "unanswerable")
REQUIRED = ("id", "question", "lang", "type", "docs", "evidence", "answer", "answer_keys")
LIST_FIELDS = ("docs", "evidence", "answer_keys")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    lang: str
    type: str
    docs: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    answer: str = ""
    answer_keys: tuple[str, ...] = ()
    line: int = 0  # line number in the source file (1-based), for messages

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class QuestionFile:
    path: str
    questions: list[Question] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


class QuestionError(ValueError):
    """One line does not describe a valid question."""


def parse_question(obj: object, line: int = 0) -> Question:
    """Validate one decoded JSON value; raise QuestionError with a precise reason."""
    if not isinstance(obj, dict):
        raise QuestionError(f"expected a JSON object, got {type(obj).__name__}")
    missing = [key for key in REQUIRED if key not in obj]
    if missing:
        raise QuestionError(f"missing key(s): {', '.join(missing)}")
    for key in ("id", "question", "lang", "type", "answer"):
        if not isinstance(obj[key], str):
            raise QuestionError(f"{key!r} must be a string, got {type(obj[key]).__name__}")
    for key in LIST_FIELDS:
        value = obj[key]
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise QuestionError(f"{key!r} must be a list of strings")
    if not obj["id"].strip():
        raise QuestionError("'id' is empty")
    if not obj["question"].strip():
        raise QuestionError("'question' is empty")
    if obj["lang"] not in LANGS:
        raise QuestionError(f"unknown lang {obj['lang']!r} (expected one of {', '.join(LANGS)})")
    if obj["type"] not in TYPES:
        raise QuestionError(f"unknown type {obj['type']!r} (expected one of {', '.join(TYPES)})")
    if obj["type"] != "unanswerable" and not [s for s in obj["evidence"] if s.strip()]:
        raise QuestionError(f"an answerable ({obj['type']}) question needs at least one evidence span")
    return Question(
        id=obj["id"],
        question=obj["question"],
        lang=obj["lang"],
        type=obj["type"],
        docs=tuple(obj["docs"]),
        evidence=tuple(s for s in obj["evidence"] if s.strip()),
        answer=obj["answer"],
        answer_keys=tuple(k for k in obj["answer_keys"] if k.strip()),
        line=line,
    )


def parse_lines(lines, path: str = "<questions>") -> QuestionFile:
    """Parse an iterable of text lines; blank lines are ignored."""
    result = QuestionFile(path=str(path))
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            result.errors.append(LineError(lineno, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        try:
            question = parse_question(obj, lineno)
        except QuestionError as exc:
            qid = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
            result.errors.append(LineError(lineno, f"{qid + ': ' if qid else ''}{exc}"))
            continue
        if question.id in seen:
            result.errors.append(LineError(lineno, f"{question.id}: duplicate id (first on line {seen[question.id]})"))
            continue
        seen[question.id] = lineno
        result.questions.append(question)
    return result


def load_questions(path: str | Path) -> QuestionFile:
    """Read a question file; raises OSError only when the file itself cannot be read."""
    path = Path(path)
    with path.open(encoding="utf-8-sig") as fh:
        return parse_lines(fh, str(path))
