"""Numbered citations: markers numbered by first use, each pointing at one passage and quote.

Both generators go through ``CitationBuilder``, so the rule "markers are 1..n in order of
first appearance, and the citation list is in marker order" holds whichever wrote the
answer, and a quote's offsets always index the cleaned document text (because
``hit.text == document.text[hit.start:hit.end]``; a table-row passage renders its row, so a
quote from it points at the whole row, ``hit.start:hit.end``).
"""

from __future__ import annotations

import re

from retriever import Hit

from .records import Citation

MARKER = re.compile(r"\[(\d+)\]")


def marker(n: int) -> str:
    return f"[{n}]"


def strip_markers(text: str) -> str:
    return MARKER.sub("", text)


class CitationBuilder:
    """Collects the passages an answer cites and the spans of each that it quotes."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}  # chunk_id -> marker number
        self._hits: list[Hit] = []
        self._spans: dict[str, list[tuple[int, int]]] = {}  # chunk_id -> quoted spans in hit.text

    def __len__(self) -> int:
        return len(self._hits)

    def number(self, hit: Hit) -> int:
        """The marker for ``hit``, assigning the next number on first use."""
        if hit.chunk_id not in self._numbers:
            self._hits.append(hit)
            self._numbers[hit.chunk_id] = len(self._hits)
        return self._numbers[hit.chunk_id]

    def quote(self, hit: Hit, start: int, end: int) -> int:
        """Record that the answer takes ``hit.text[start:end]``; returns the hit's marker."""
        n = self.number(hit)
        if 0 <= start < end <= len(hit.text):
            self._spans.setdefault(hit.chunk_id, []).append((start, end))
        return n

    def citations(self) -> list[Citation]:
        """One citation per passage, in marker order; the quote covers every span taken from it."""
        out = []
        for hit in self._hits:
            spans = self._spans.get(hit.chunk_id)
            if spans:
                start, end = min(s for s, _ in spans), max(e for _, e in spans)
            else:
                start, end = 0, len(hit.text)
            if getattr(hit, "kind", "text") == "table_row":
                # the passage renders a table row; the row's whole span is what the source shows
                doc_start, doc_end = hit.start, hit.end
            else:
                doc_start, doc_end = hit.start + start, hit.start + end
            out.append(Citation(n=self._numbers[hit.chunk_id], hit=hit, quote=hit.text[start:end],
                                quote_start=doc_start, quote_end=doc_end))
        return out
