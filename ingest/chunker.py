"""Cutting a cleaned document into passages that a reader could cite on their own.

A chunk never crosses a section boundary (so its section path is true for all of it),
follows paragraph and sentence boundaries, and only cuts inside a sentence when that
sentence alone is longer than the maximum. Offsets index the cleaned text exactly,
which is what lets a citation open and highlight the passage it came from.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from settings import ChunkSettings

from .headings import SectionTracker, detect_heading
from .records import TABLE_ROW, Chunk, Document
from .tables import table_rows

_SENTENCE = re.compile(r"[^。！？!?；;\n]*(?:[。！？!?；;]+[”’」』\"')）]*|\n|$)")
_CLAUSE_BREAK = re.compile(r"[，,、：:]")


@dataclass(frozen=True)
class Span:
    """A sentence (or piece of one) located in the cleaned text."""

    start: int
    end: int
    section: str
    is_heading: bool

    @property
    def size(self) -> int:
        return self.end - self.start


def _split_long(start: int, end: int, text: str, max_chars: int) -> list[tuple[int, int]]:
    """Cut an over-long sentence at clause breaks, or hard at max_chars if it has none."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        window = text[start : start + max_chars]
        breaks = [m.end() for m in _CLAUSE_BREAK.finditer(window) if m.end() > max_chars // 3]
        cut = start + (breaks[-1] if breaks else max_chars)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def sentence_spans(text: str, max_chars: int) -> list[Span]:
    """All sentences of the document in order, each tagged with its section path."""
    spans: list[Span] = []
    tracker = SectionTracker()
    offset = 0
    for paragraph in text.split("\n"):
        heading = detect_heading(paragraph) if paragraph.strip() else None
        if heading:
            tracker.enter(heading)
        first = True
        for m in _SENTENCE.finditer(paragraph):
            s, e = m.start(), m.end()
            while e > s and paragraph[e - 1].isspace():
                e -= 1
            while s < e and paragraph[s].isspace():
                s += 1
            if s == e:
                continue
            for ps, pe in _split_long(offset + s, offset + e, text, max_chars):
                spans.append(Span(ps, pe, tracker.path, is_heading=bool(heading) and first))
                first = False
        offset += len(paragraph) + 1
    return spans


def _group(spans: list[Span], cfg: ChunkSettings) -> list[list[Span]]:
    """Pack sentences into chunks: close at the target size, at the cap, or at a new section.

    A chunk that so far holds only headings is not closed at a section change: a bare
    heading is useless as a passage, so it travels with the first body text below it.
    """
    groups: list[list[Span]] = []
    current: list[Span] = []
    for span in spans:
        if current:
            size = span.end - current[0].start
            only_headings = all(s.is_heading for s in current)
            new_section = span.section != current[-1].section and not only_headings
            full = current[-1].end - current[0].start >= cfg.target_chars
            if new_section or full or size > cfg.max_chars:
                groups.append(current)
                current = _overlap(current, span, cfg) if not new_section else []
        current.append(span)
    if current:
        groups.append(current)
    return _merge_small(groups, cfg)


def _overlap(previous: list[Span], nxt: Span, cfg: ChunkSettings) -> list[Span]:
    """Trailing sentences of the previous chunk to repeat at the start of the next one."""
    carried: list[Span] = []
    for span in reversed(previous[1:]):
        if span.is_heading or nxt.end - span.start > cfg.max_chars:
            break
        if sum(s.size for s in carried) + span.size > cfg.overlap_chars:
            break
        carried.insert(0, span)
    return carried


def _merge_small(groups: list[list[Span]], cfg: ChunkSettings) -> list[list[Span]]:
    """Fold a too-small last piece of a section into the chunk before it when it fits."""
    merged: list[list[Span]] = []
    for group in groups:
        size = group[-1].end - group[0].start
        if merged and size < cfg.min_chars:
            prev = merged[-1]
            fits = group[-1].end - prev[0].start <= cfg.max_chars
            if prev[-1].section == group[0].section and fits:
                merged[-1] = prev + [s for s in group if s.start >= prev[-1].end]
                continue
        merged.append(group)
    return merged


def _section_at(spans: list[Span], pos: int) -> str:
    """Section path of the sentence that holds (or last precedes) offset ``pos``."""
    i = bisect.bisect_right([s.start for s in spans], pos) - 1
    return spans[i].section if i >= 0 else ""


def chunk_document(doc: Document, cfg: ChunkSettings | None = None) -> list[Chunk]:
    """The document's passages: text chunks in order, then one chunk per table row.

    Table rows are *added*: the text chunks still cover the table as it stands in the
    document, so nothing is lost if a table is misread, and a row chunk (``kind`` TABLE_ROW,
    a rendering of the row, see ``ingest.tables``) points at the row's span.
    """
    cfg = cfg or ChunkSettings()
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    spans = sentence_spans(doc.text, cfg.max_chars)
    for group in _group(spans, cfg):
        start, end = group[0].start, group[-1].end
        text = doc.text[start:end]
        body = next((s for s in group if not s.is_heading), group[-1])
        nth = seen.get(text, 0)
        seen[text] = nth + 1
        chunks.append(
            Chunk(
                chunk_id=Chunk.make_id(doc.doc_id, text, nth),
                doc_id=doc.doc_id,
                title=doc.title,
                section=body.section,
                text=text,
                start=start,
                end=end,
                script=doc.script,
            )
        )
    for row in table_rows(doc.text):
        nth = seen.get(row.text, 0)
        seen[row.text] = nth + 1
        chunks.append(
            Chunk(
                chunk_id=Chunk.make_id(doc.doc_id, row.text, nth),
                doc_id=doc.doc_id,
                title=doc.title,
                section=_section_at(spans, row.start),
                text=row.text,
                start=row.start,
                end=row.end,
                script=doc.script,
                kind=TABLE_ROW,
            )
        )
    return chunks
