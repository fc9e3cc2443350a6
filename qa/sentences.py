"""Cutting a retrieved passage into the units an extractive answer may quote.

The extractive composer never writes text of its own, so the unit it quotes decides how
precise an answer can be: a sentence (Chinese or English end punctuation, or a
semicolon, which in policy text separates independent targets), a line of a table
(the seeds carry indicator tables as one row per line), or, for a sentence longer than
``max_chars``, a run of its clauses. Every unit keeps its offsets into the passage, so a
citation can point at the exact span in the cleaned document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.headings import detect_heading
from retriever import Hit

# A sentence ends after CJK/Latin end punctuation (plus closing quotes), or at a line end.
# A period ends an English sentence only before whitespace, so "1.5" and "No.3" stay whole.
_END = re.compile(r"(?:[。！？!?；;]+|\.(?=\s))[”’」』\"')）]*|\n")
_CLAUSE = re.compile(r"[，,、：:]")
_TRAILING = "，,、；;：: \t"  # left off a unit: a quote should not end mid-punctuation
_TABLE_FIELD = re.compile(r"\S+")
_NUMBER = re.compile(r"\d")
_SENTENCE_PUNCT = re.compile(r"[。！？!?；;，,]")
_ROW_NUMBER = re.compile(r"(\d{1,3})\s+\S")  # "9 产业转型 …": a numbered table row
_ANY_PUNCT = re.compile(r"[，,、：:；;]")  # a line without any of these reads as a title
_YEAR = re.compile(r"(?:19|20)\d\d年?")


@dataclass(frozen=True)
class Sentence:
    """One quotable unit of a passage; ``hit.text[start:end] == text``."""

    hit: Hit
    rank: int  # the passage's position in the retrieval results (0 = best)
    start: int  # offsets into hit.text
    end: int
    text: str
    is_table_row: bool = False
    table_header: "Sentence | None" = None  # the column-heading row of the table this row belongs to
    quotable: bool = True  # False for headings, titles and column-heading rows: no answer on their own

    @property
    def doc_start(self) -> int:
        return self.hit.start + self.start

    @property
    def doc_end(self) -> int:
        return self.hit.start + self.end


def is_table_row(line: str) -> bool:
    """A line of whitespace-separated cells, two or more of them numbers, without sentence punctuation."""
    cells = _TABLE_FIELD.findall(line)
    numeric = sum(bool(_NUMBER.search(c)) for c in cells)
    return len(cells) >= 3 and numeric >= 2 and not _SENTENCE_PUNCT.search(line)


def is_header_row(line: str) -> bool:
    """A table row whose only numbers are years: the column headings (序号 指标 2020 2025)."""
    cells = _TABLE_FIELD.findall(line)
    numeric = [c for c in cells if _NUMBER.search(c)]
    return bool(numeric) and len(numeric) < len(cells) and all(_YEAR.fullmatch(c) for c in numeric)


def _is_line(text: str, start: int, end: int) -> bool:
    """The unit is a whole line of the passage (a heading or title can only be that)."""
    return (start == 0 or text[start - 1] == "\n") and (end >= len(text) or text[end - 1] == "\n" or text[end] == "\n")


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and (text[end - 1] in _TRAILING or text[end - 1].isspace()):
        end -= 1
    return start, end


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut a long sentence at clause breaks into runs of at most ``max_chars`` (when possible)."""
    if end - start <= max_chars:
        return [(start, end)]
    cuts = [m.end() for m in _CLAUSE.finditer(text, start, end)]
    pieces, piece_start, last_cut = [], start, start
    for cut in cuts + [end]:
        if cut - piece_start > max_chars and last_cut > piece_start:
            pieces.append((piece_start, last_cut))
            piece_start = last_cut
        last_cut = cut
    pieces.append((piece_start, end))
    return pieces


def split_passage(hit: Hit, rank: int, max_chars: int, min_chars: int) -> list[Sentence]:
    """All quotable units of one passage, in passage order."""
    text = hit.text
    units: list[Sentence] = []
    header: Sentence | None = None
    position = 0
    bounds = [m.end() for m in _END.finditer(text)] + [len(text)]
    for bound in bounds:
        raw_start, raw_end = position, bound
        position = bound
        start, end = _trim(text, raw_start, raw_end)
        if end <= start:  # a blank line: a table may go on after it
            continue
        line = text[start:end]
        if is_table_row(line):
            heading_row = is_header_row(line)
            unit = Sentence(hit, rank, start, end, line, True, header, quotable=not heading_row)
            if heading_row:
                header = unit
            units.append(unit)
            continue
        if _SENTENCE_PUNCT.search(line):  # prose ends the table; a wrapped cell does not
            header = None
        whole_line = _is_line(text, raw_start, raw_end)
        title_like = whole_line and (detect_heading(line) is not None or not _ANY_PUNCT.search(line))
        for s, e in _split_long(text, start, end, max_chars):
            s, e = _trim(text, s, e)
            if e - s >= min_chars:
                units.append(Sentence(hit, rank, s, e, text[s:e], quotable=not title_like))
    return _merge_table_records(hit, units)


def _merge_table_records(hit: Hit, units: list[Sentence]) -> list[Sentence]:
    """Join a numbered table row wrapped over several lines ("9 产业转型 …GDP比", "重(%)",
    "7.8 10 预期性") into one unit, so the quoted row keeps its values."""
    text = hit.text
    out: list[Sentence] = []
    record: Sentence | None = None  # the row being collected
    expected: int | None = None  # the next row number
    for unit in units:
        whole = _is_line(text, unit.start, unit.end) and not _SENTENCE_PUNCT.search(unit.text)
        m = _ROW_NUMBER.match(unit.text) if whole else None
        starts_row = m is not None and (expected is None or int(m.group(1)) == expected)
        if whole and record is not None and not starts_row:
            record = Sentence(hit, record.rank, record.start, unit.end, text[record.start:unit.end], True,
                              record.table_header)
            out[-1] = record
            continue
        if starts_row:
            expected = int(m.group(1)) + 1
            record = Sentence(hit, unit.rank, unit.start, unit.end, unit.text, True, unit.table_header)
            out.append(record)
            continue
        record = None
        if not whole:
            expected = None
        out.append(unit)
    return out
