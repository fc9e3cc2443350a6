"""What the QA stage hands on: an answer whose every claim points to a passage."""

from __future__ import annotations

from dataclasses import dataclass, field

from retriever import Hit


@dataclass(frozen=True)
class Citation:
    n: int  # the marker number used in the answer text: [n]
    hit: Hit  # the passage (with doc_id, section, start/end offsets into the cleaned document)
    quote: str  # the sentence(s) of the passage the answer took
    quote_start: int = -1  # offsets of the quote in the cleaned document text (-1 if not located)
    quote_end: int = -1


@dataclass(frozen=True)
class Answer:
    question: str
    text: str  # the answer with inline [n] markers
    citations: list[Citation] = field(default_factory=list)
    refused: bool = False  # True when the corpus holds no answer
    related: list[Hit] = field(default_factory=list)  # "possibly related" passages shown with a refusal
    query: str = ""  # the self-contained query actually searched (after follow-up rewriting)
    generator: str = "extractive"  # extractive | llm | refusal | llm-refusal | message
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    checks: dict[str, int] = field(default_factory=dict)  # LLM grounding: sentences kept, repaired, dropped
    signals: dict = field(default_factory=dict)  # the refusal judge's evidence signals (for inspection)


@dataclass(frozen=True)
class Sources:
    """The passages an answer is being written from, sent ahead of the answer's text."""

    hits: list[Hit]
    query: str = ""
    generator: str = ""  # the generator that will write the answer
