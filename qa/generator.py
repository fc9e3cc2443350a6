"""The one interface both answer generators implement, and the records passed to them.

A generator receives the evidence (the self-contained query, its language, the retrieved
passages) and yields the answer as it is written: ``str`` pieces, then one ``Draft``
whose ``text`` equals the concatenation of the pieces. The assistant relays the pieces to
the user and builds the ``Answer`` from the draft, so streaming and non-streaming callers
see the same text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, Union

import numpy as np

from retriever import Hit

from .citations import CitationBuilder
from .records import Citation


@dataclass(frozen=True)
class Evidence:
    question: str  # the self-contained query (after follow-up rewriting and truncation)
    lang: str  # zh | zh-Hant | en
    hits: list[Hit]  # retrieved passages, best first
    query_vector: np.ndarray  # e5 query embedding of ``question`` (normalized)
    comparison: bool = False  # the question compares documents: quote each side
    sentences: tuple = ()  # the passages' sentences scored against the question (extractive.Scored)
    named: tuple[str, ...] = ()  # the documents the question names (retriever.Route), if any
    rendering: str = ""  # an English question's Chinese rendering, as retrieval searched it


@dataclass(frozen=True)
class Draft:
    text: str  # the answer with [n] markers
    citations: list[Citation]
    generator: str
    timings: dict[str, float] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)  # grounding counts: kept, repaired, dropped


Piece = Union[str, Draft]


class Generator(Protocol):
    name: str

    def generate(self, evidence: Evidence, builder: CitationBuilder | None = None) -> Iterator[Piece]:
        """Yield text pieces, then exactly one Draft (text == "".join(pieces)).

        ``builder`` carries citations already used earlier in the same answer, so a
        generator that continues another's answer keeps the marker numbering going.
        """
        ...


class GeneratorError(RuntimeError):
    """A generator could not produce an answer (missing model, out of memory, …)."""
