"""Recognising tables in a cleaned document and rendering each row as a passage of its own.

Policy plans carry their targets in tables, and a table read as running text answers
nothing: "7.8 10 预期性" on a line of its own says neither which indicator nor which year.
This module finds tables in ``Document.text`` and renders every data row as one
self-describing line::

    “十四五”信息化发展主要指标｜产业转型｜数字经济核心产业增加值占GDP比重(%)：2020年 7.8，2025年 10，属性 预期性

(table title, the row's labels with carried-down merged cells and wrapped names rejoined,
every value labelled by its column heading, and the table's notes where they concern the
row). Each row keeps the span of the document text it was read from, so the source view
highlights the row itself.

Two shapes are recognised, whatever the file format was:

* **pipe tables** — one row per line, cells separated by ``|``. The HTML and DOCX loaders
  write their real tables this way, and Markdown tables have it already.
* **flattened text tables** — what plain text and PDF text layers make of a table: a
  heading line of short column labels, at least one of them a year or a target/baseline
  label ("序号 类别 指标 2020 2025 属性"), then rows that end with one value per value
  column; a long row label may wrap over lines before its values.

Both are refused unless at least ``MIN_ROWS`` rows parse, and no row label may hold
sentence punctuation, so ordinary paragraphs and numbered lists never become tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .headings import detect_heading

MIN_ROWS = 2  # fewer parsed data rows than this: not a table
MAX_CELL = 16  # a flattened heading's labels are at most this long
MAX_LABEL = 80  # a row's labels (all lead cells) are at most this long
MAX_WRAP_LINES = 3  # a wrapped row label spans at most this many lines before its values
MAX_TITLE = 40  # a table title is a short line right above the table
MAX_PIPE_CELL = 200  # a pipe-table cell longer than this is layout, not data
MAX_NOTE = 120  # a note attached to every row (one without a marker) is at most this long

_SENTENCE_PUNCT = re.compile(r"[。！？!?；;]")
_PROSE_PUNCT = re.compile(r"[。！？!?；;，,]")
# A column heading naming a year or a period: 2020, 2025年, 2020年底, 2016-2020.
_YEAR_LABEL = re.compile(r"^(?:19|20)\d{2}(?:年(?:底|末)?)?(?:\s*[-–—至~～]\s*(?:19|20)?\d{2,4}年?)?$")
# A column heading naming a target or a baseline (the value columns of a plan's table).
_VALUE_LABEL = re.compile(r"^(?:.{0,6}(?:目标|基期|基准|现状|现值|现有|完成)(?:值|数|年)?|.{0,6}值)$")
# One cell value: a number (with sign, thousands separators, %, a marker such as * or △),
# a range, or a dash for "no value".
_NUMBER = r"[-+−]?\d[\d,，]*(?:\.\d+)?"
_VALUE = re.compile(
    rf"^(?:[<>≤≥＜＞]=?|约|超过|达到)?{_NUMBER}(?:\s*[-–—~～]\s*{_NUMBER})?\s*[%‰]?[*＊△※#▲]*$|^[-–—/／]+$"
)
_SEQUENCE = re.compile(r"^\d{1,3}$")  # a row number in the first column
# Notes under a table: "注:带*的为2019年数据。", "说明：…", "资料来源：…".
_NOTE = re.compile(r"^\s*(?:注|註|说明|說明|备注|備註|资料来源|資料來源|数据来源|數據來源)\s*\d*\s*[:：]")
_MARKERS = "*＊△※#▲"
_MD_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff（）]")


@dataclass(frozen=True)
class TableRow:
    """One data row: its rendering and the span of ``Document.text`` it was read from."""

    start: int
    end: int
    text: str


@dataclass
class _Row:
    cells: list[str]  # one per column, "" where the row has no cell
    start: int
    end: int


@dataclass
class _Table:
    title: str
    header: list[str]
    rows: list[_Row]
    first_value: int  # index of the first value column (the label columns come before it)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Line:
    start: int
    end: int  # trailing whitespace excluded
    text: str  # stripped


def _lines(text: str) -> list[_Line]:
    out, offset = [], 0
    for raw in text.split("\n"):
        lead = len(raw) - len(raw.lstrip())
        body = raw.strip()
        out.append(_Line(offset + lead, offset + lead + len(body), body))
        offset += len(raw) + 1
    return out


def _join(left: str, right: str) -> str:
    """Rejoin a label wrapped over two lines: no space inside Chinese, one between words."""
    if not left or not right:
        return left + right
    if _CJK.match(right[0]) or _CJK.match(left[-1]) or right[0] in "(（%":
        return left + right
    return f"{left} {right}"


def _is_value(token: str) -> bool:
    return bool(_VALUE.match(token))


def _is_value_label(label: str) -> bool:
    return bool(_YEAR_LABEL.match(label) or _VALUE_LABEL.match(label))


def _title_above(lines: list[_Line], i: int) -> str:
    """The short line right above line ``i`` (blank lines skipped), when it reads as a title."""
    for j in range(i - 1, max(i - 4, -1), -1):
        line = lines[j].text
        if not line:
            continue
        heading = detect_heading(line)
        if heading:
            return heading.label
        if len(line) <= MAX_TITLE and not _PROSE_PUNCT.search(line) and "|" not in line:
            return line.lstrip("#").strip()
        return ""
    return ""


# -- flattened text tables ----------------------------------------------------------------------
def _flat_header(line: str) -> tuple[list[str], int] | None:
    """Column labels and the index of the first value column, if ``line`` is a table heading."""
    if not line or _PROSE_PUNCT.search(line) or "|" in line or detect_heading(line):
        return None
    labels = line.split()
    if len(labels) < 3 or any(len(x) > MAX_CELL for x in labels):
        return None
    if any(_is_value(x) and not _YEAR_LABEL.match(x) for x in labels):
        return None  # a line of data, not of labels
    first = next((k for k, x in enumerate(labels) if _is_value_label(x)), None)
    if first is None or first == 0:
        return None  # no value column, or no label column before the values
    return labels, first


def _split_values(line: str, n_tail: int, value_cols: list[bool]) -> tuple[str, list[str]] | None:
    """(label part, tail cells) when ``line`` ends with one cell per tail column."""
    tokens = line.split()
    if len(tokens) < n_tail:
        return None
    tail = tokens[len(tokens) - n_tail:]
    for token, is_value in zip(tail, value_cols):
        if is_value and not _is_value(token):
            return None
        if not is_value and (_is_value(token) or len(token) > MAX_CELL or _PROSE_PUNCT.search(token)):
            return None
    if not any(value_cols):
        return None
    head = tokens[: len(tokens) - n_tail]
    return " ".join(head), tail


def _lead_cells(parts: list[str], n_lead: int) -> list[str] | None:
    """Spread a row's label text over the label columns.

    The first line gives the cells (space separated); later lines continue the last cell
    (a wrapped name). A leading row number fills the first column; the remaining cells
    fill the label columns from the right, so a row that leaves out a merged cell (the
    category of the row above) leaves that column empty, to be carried down.
    """
    tokens = parts[0].split() if parts else []
    for more in parts[1:]:
        if tokens:
            tokens[-1] = _join(tokens[-1], more.replace(" ", ""))
        else:
            tokens = more.split()
    if not tokens:
        return None
    cells = [""] * n_lead
    if n_lead > 1 and len(tokens) > 1 and _SEQUENCE.match(tokens[0]):
        cells[0] = tokens.pop(0)
        free = list(range(1, n_lead))
    else:
        free = list(range(n_lead))
    if len(tokens) > len(free):  # more words than columns: the name holds spaces
        keep = len(free) - 1
        tokens = tokens[:keep] + [" ".join(tokens[keep:])]
    for col, token in zip(free[len(free) - len(tokens):], tokens):
        cells[col] = token
    return cells


def _flat_table(lines: list[_Line], i: int) -> tuple[_Table, int] | None:
    """The flattened table whose heading is line ``i``, and the index of the line after it."""
    parsed = _flat_header(lines[i].text)
    if parsed is None:
        return None
    header, first = parsed
    n_lead, n_tail = first, len(header) - first
    value_cols = [_is_value_label(x) for x in header[first:]]
    rows: list[_Row] = []
    pending: list[_Line] = []
    end = i + 1
    j = i + 1
    while j < len(lines):
        line = lines[j]
        if not line.text:
            j += 1
            continue
        if _NOTE.match(line.text) or _SENTENCE_PUNCT.search(line.text) or detect_heading(line.text):
            break
        split = _split_values(line.text, n_tail, value_cols)
        if split is not None:
            label, tail = split
            parts = [p.text for p in pending] + ([label] if label else [])
            cells = _lead_cells(parts, n_lead)
            if cells is None or len("".join(cells)) > MAX_LABEL:
                break
            rows.append(_Row(cells + tail, (pending[0] if pending else line).start, line.end))
            pending = []
            end = j + 1
        else:
            pending.append(line)
            if len(pending) > MAX_WRAP_LINES or sum(len(p.text) for p in pending) > MAX_LABEL:
                break
        j += 1
    if len(rows) < MIN_ROWS:
        return None
    table = _Table(_title_above(lines, i), header, rows, first)
    return table, _notes(lines, end, table)


def _notes(lines: list[_Line], j: int, table: _Table) -> int:
    """Collect the note lines right under a table into ``table.notes``; the line after them."""
    while j < len(lines):
        text = lines[j].text
        if not text:
            j += 1
            continue
        if not _NOTE.match(text):
            break
        table.notes.append(text)
        j += 1
    return j


# -- pipe tables ----------------------------------------------------------------------------------
def _pipe_cells(line: str) -> list[str] | None:
    if "|" not in line:
        return None
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    cells = [c.strip() for c in body.split("|")]
    return cells if len(cells) >= 2 else None


def _first_value_column(header: list[str], rows: list[list[str]]) -> int:
    """The first column headed by a year/target label or holding mostly numbers; else 1."""
    for k in range(1, len(header)):
        values = [r[k] for r in rows if r[k]]
        if _is_value_label(header[k]) or (values and sum(map(_is_value, values)) / len(values) >= 0.6):
            return k
    return 1


def _pipe_table(lines: list[_Line], i: int) -> tuple[_Table, int] | None:
    header = _pipe_cells(lines[i].text)
    if header is None or any(len(c) > MAX_PIPE_CELL for c in header):
        return None
    rows: list[_Row] = []
    j = i + 1
    while j < len(lines):
        text = lines[j].text
        if _MD_RULE.match(text) and "-" in text and j == i + 1:
            j += 1
            continue
        cells = _pipe_cells(text)
        if cells is None or len(cells) != len(header) or any(len(c) > MAX_PIPE_CELL for c in cells):
            break
        rows.append(_Row(cells, lines[j].start, lines[j].end))
        j += 1
    data = [r for r in rows if any(r.cells[1:])]
    if len(data) < MIN_ROWS:
        return None
    first = _first_value_column(header, [r.cells for r in data])
    table = _Table(_title_above(lines, i), header, data, first)
    return table, _notes(lines, j, table)


# -- rendering ------------------------------------------------------------------------------------
def _sequence_column(table: _Table) -> bool:
    """True when the first column only numbers the rows (it is left out of the rendering)."""
    if table.first_value < 2:
        return False
    values = [r.cells[0] for r in table.rows if r.cells[0]]
    return bool(values) and all(_SEQUENCE.match(v) for v in values)


def _value_text(label: str, value: str) -> str:
    if _YEAR_LABEL.match(label) and re.fullmatch(r"\d{4}", label):
        return f"{label}年 {value}"
    return f"{label} {value}" if label else value


def _row_notes(table: _Table, row: _Row) -> list[str]:
    """The notes that concern ``row``: those naming a marker the row's cells carry, and short
    notes without a marker (they speak of the whole table)."""
    out = []
    for note in table.notes:
        markers = [m for m in _MARKERS if m in note]
        if markers:
            if any(m in cell for m in markers for cell in row.cells):
                out.append(note)
        elif len(note) <= MAX_NOTE:
            out.append(note)
    return out


def _render(table: _Table) -> list[TableRow]:
    skip_first = _sequence_column(table)
    carried = [""] * table.first_value
    out = []
    for row in table.rows:
        labels = []
        for k in range(table.first_value):
            cell = row.cells[k]
            if skip_first and k == 0:
                continue
            if cell:
                carried[k] = cell
                # a new value in a column restarts the columns to its right (a new group)
                for later in range(k + 1, table.first_value):
                    if not row.cells[later]:
                        carried[later] = ""
            if carried[k]:
                labels.append(carried[k])
        values = [
            _value_text(table.header[k], row.cells[k])
            for k in range(table.first_value, len(table.header))
            if row.cells[k]
        ]
        if not labels or not values:
            continue
        text = "｜".join(([table.title] if table.title else []) + labels) + "：" + "，".join(values)
        notes = _row_notes(table, row)
        if notes:
            text += "（" + "；".join(n.rstrip("。.") for n in notes) + "）"
        out.append(TableRow(row.start, row.end, text))
    return out


def may_hold_table(text: str, least: int = 3) -> bool:
    """Cheap hint: ``least`` lines or more carry a number standing as a cell of its own."""
    count = 0
    for line in text.split("\n"):
        if any(_VALUE.match(token) for token in line.split()):
            count += 1
            if count >= least:
                return True
    return False


def table_rows(text: str) -> list[TableRow]:
    """Every data row of every table recognised in ``text``, in document order."""
    lines = _lines(text)
    out: list[TableRow] = []
    i = 0
    while i < len(lines):
        found = _pipe_table(lines, i) or _flat_table(lines, i) if lines[i].text else None
        if found is None:
            i += 1
            continue
        table, i = found
        out.extend(_render(table))
    return out
