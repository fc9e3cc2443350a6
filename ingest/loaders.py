"""One loader per file format, each turning a file into raw text (before cleaning).

Structure that a format makes explicit (HTML/DOCX headings) is kept as Markdown ``#``
lines so the chunker can build section paths from it like from numbered headings.
Loaders of the rich formats (``RICH``) take the settings too: they check the bounds in
``limits`` before parsing, and ``sandbox`` runs them in a child process.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Callable

from settings import ChunkSettings

from . import limits, tables
from .decode import DecodeError, decode_bytes
from .errors import LoadError

_DEFAULTS = ChunkSettings()
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Tags that end a line; all others (<a>, <b>, <span>, ...) sit inside a sentence.
_BLOCK_TAGS = frozenset([
    "p", "div", "br", "hr", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "section",
    "article", "main", "blockquote", "pre", "center", "address", "figure", "figcaption",
])
_DROPPED_TAGS = frozenset(["script", "style", "noscript", "nav", "footer", "header", "aside", "form", "iframe"])
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_CELL_TAGS = frozenset(["td", "th"])
MAX_SPAN = 64  # a rowspan/colspan above this is clamped (a hostile page cannot blow a table up)


def load_text(data: bytes, declared: str | None = None) -> str:
    try:
        return decode_bytes(data, declared)[0]
    except DecodeError as exc:
        raise LoadError(str(exc)) from exc


def _declared_charset(data: bytes) -> str | None:
    """The ``<meta charset>`` of a page. We found it by reading bytes as ASCII, so a
    UTF-16/32 claim is necessarily wrong and ignored (as browsers do)."""
    match = _META_CHARSET.search(data[:4096])
    charset = match.group(1).decode("ascii").lower() if match else None
    return None if charset is None or charset.startswith(("utf-16", "utf-32")) else charset


def _string_types(tag):
    """The string classes ``tag.get_text()`` joins (no comments, doctypes, ...)."""
    from bs4.element import Tag

    types = getattr(tag, "interesting_string_types", None)
    return Tag.MAIN_CONTENT_STRING_TYPES if types is None else types


def _wanted(string, types) -> bool:
    return type(string) is types if isinstance(types, type) else type(string) in types


def _strings(tag):
    """The strings ``tag.get_text()`` would join, skipping dropped tags."""
    types = _string_types(tag)
    stack = [iter(tag.contents)]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
        elif child.name is None:
            if _wanted(child, types):
                yield child
        elif child.name not in _DROPPED_TAGS:
            stack.append(iter(child.contents))


def _page_text(root) -> str:
    """Text of ``root`` in one walk: headings become ``#`` lines, block tags end lines and
    cells are spaced. Editing the soup instead (insert_before/after) looks each tag up
    among its siblings, quadratic on a flat page: 30,000 paragraphs took 45 s."""
    types = _string_types(root)
    out: list[str] = []
    stack: list[tuple] = [(iter(root.contents), "")]
    while stack:
        children, closing = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            out.append(closing)
            continue
        name = child.name
        if name is None:
            if _wanted(child, types):
                out.append(child)
        elif name in _DROPPED_TAGS:
            continue
        elif name in _HEADINGS:
            words = (s.strip() for s in _strings(child))
            out.append(f"\n{'#' * _HEADINGS[name]} {' '.join(w for w in words if w)}\n")
        elif name == "table" and child.find("table") is None:
            out.append("\n" + "\n".join(_table_lines(child)) + "\n")
        elif name in _BLOCK_TAGS:
            out.append("\n")
            stack.append((iter(child.contents), "\n"))
        else:
            stack.append((iter(child.contents), " " if name in _CELL_TAGS else ""))
    return "".join(out)


def _cell_text(words) -> str:
    """One table cell on one line; a ``|`` inside it would read as a cell border."""
    return " ".join("".join(words).split()).replace("|", "｜")  # inline tags join, as in running text


def _span(tag, attr: str, most: int) -> int:
    try:
        return max(1, min(int(str(tag.get(attr, "1")).strip() or 1), most))
    except ValueError:
        return 1


def _table_lines(table) -> list[str]:
    """A (non-nested) HTML table as pipe rows, ``a | b | c``, one line per ``<tr>`` (the form
    ``ingest.tables`` reads). Merged cells are repeated in every row and column they cover,
    so each row holds its category and every column its heading."""
    lines = []
    caption = table.find("caption")
    if caption is not None:
        lines.append(_cell_text(_strings(caption)))
    below: dict[int, tuple[str, int]] = {}  # column -> (text, rows still covered) from a rowspan
    for tr in table.find_all("tr"):
        row: list[str] = []
        cells = iter(tr.find_all(_CELL_TAGS, recursive=False))
        col = 0
        while True:
            if col in below:
                text, left = below.pop(col)
                row.append(text)
                if left > 1:
                    below[col] = (text, left - 1)
                col += 1
                continue
            cell = next(cells, None)
            if cell is None:
                if not any(c >= col for c in below):
                    break
                row.append("")
                col += 1
                continue
            text = _cell_text(_strings(cell))
            down = _span(cell, "rowspan", MAX_SPAN)
            for _ in range(_span(cell, "colspan", MAX_SPAN)):
                row.append(text)
                if down > 1:
                    below[col] = (text, down - 1)
                col += 1
        if any(row):
            lines.append(" | ".join(row))
    return lines


def load_html(data: bytes, cfg: ChunkSettings = _DEFAULTS) -> str:
    """Text of the page body; only block tags break lines, so "加<b>快</b>" stays one word."""
    from bs4 import BeautifulSoup

    page = load_text(data, _declared_charset(data))
    limits.check_html(page, cfg)
    soup = BeautifulSoup(page, "lxml")
    text = _page_text(soup.body or soup)
    limits.check_text("HTML", len(text), cfg)
    return text


def _page_with_tables(page) -> str:
    """A page's text; its layout-mode text instead when that one reads as a table and the plain
    text does not. pypdf's plain mode often puts every table cell on a line of its own, which
    no reader (nor ``ingest.tables``) can put back together; layout mode keeps a row on one
    line. Layout mode is only tried on a page with several number cells, and it is slower."""
    text = page.extract_text() or ""
    if not tables.may_hold_table(text):
        return text
    try:
        layout = page.extract_text(extraction_mode="layout") or ""
    except Exception:  # noqa: BLE001 - layout mode is an extra; the plain text stands
        return text
    layout = "\n".join(" ".join(line.split()) for line in layout.split("\n"))
    return layout if len(tables.table_rows(layout)) > len(tables.table_rows(text)) else text


def load_pdf(data: bytes, cfg: ChunkSettings = _DEFAULTS) -> str:
    """Text of every page; pypdf decodes page streams lazily, so the page count and the
    text so far are checked before each page costs anything."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    pages: list[str] = []
    chars = 0
    try:
        with limits.pdf_limits(cfg):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                reader.decrypt("")
            if (count := len(reader.pages)) > cfg.max_pdf_pages:
                raise limits.over(f"PDF has {count:,} pages", "max_pdf_pages", cfg.max_pdf_pages)
            for page in reader.pages:
                pages.append(_page_with_tables(page))
                chars += len(pages[-1])
                limits.check_text("PDF", chars, cfg)
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise LoadError(f"not a readable PDF ({exc.__class__.__name__}: {exc})") from exc
    except PyPdfError as exc:  # LimitReachedError and kin: pypdf's own safety bounds
        raise LoadError(f"PDF refused by a pypdf safety limit ({exc.__class__.__name__}: {exc})") from exc
    text = "\n\n".join(pages)
    if not text.strip():
        raise LoadError("PDF has no text layer (a scan?); run OCR on it first")
    return text


def _paragraph_style_names(document) -> tuple[dict[str, str], str]:
    """Style id -> name for paragraph styles, and the default paragraph style's name.

    python-docx resolves ``paragraph.style`` with an XPath over all styles on every call
    (about 2 ms a paragraph: 99 s for 50,000); resolving each id once gives the same
    names, with its rules: first style of an id wins, unknown ids and other style types
    fall back to the default.
    """
    from docx.enum.style import WD_STYLE_TYPE

    names: dict[str, str] = {}
    for style in document.styles:
        if style.style_id and style.style_id not in names:
            names[style.style_id] = (style.name or "") if style.type == WD_STYLE_TYPE.PARAGRAPH else None
    default = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
    default_name = (default.name or "") if default is not None else ""
    return {k: v for k, v in names.items() if v is not None}, default_name


def _paragraph_text(p, run_tags: tuple, inner_tags: tuple) -> str:
    """``CT_P.text`` without its per-call XPath (which lxml compiles anew each time):
    the same children in the same order, each rendered by python-docx itself."""
    parts = []
    for child in p.iterchildren(*run_tags):
        for run in (child,) if child.tag == run_tags[0] else child.iterchildren(run_tags[0]):
            parts.extend(str(e) for e in run.iterchildren(*inner_tags))
    return "".join(parts)


def load_docx(data: bytes, cfg: ChunkSettings = _DEFAULTS) -> str:
    import zipfile

    import docx
    from docx.oxml.ns import qn
    from docx.table import Table
    from lxml import etree

    limits.check_docx(data, cfg)
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, etree.XMLSyntaxError) as exc:
        raise LoadError(f"not a readable DOCX file ({exc})") from exc
    names, default_name = _paragraph_style_names(document)
    run_tags = (qn("w:r"), qn("w:hyperlink"))  # as CT_P.text: runs, and the runs of links
    inner_tags = tuple(qn(f"w:{t}") for t in ("br", "cr", "noBreakHyphen", "ptab", "t", "tab"))  # as CT_R.text
    lines = []
    for p in document.element.body.iterchildren(qn("w:p"), qn("w:tbl")):
        if p.tag == qn("w:tbl"):  # in reading order, one pipe row a line (the form ingest.tables reads)
            for row in Table(p, document._body).rows:  # merged cells repeat in every cell they cover
                lines.append(" | ".join(
                    " ".join(" ".join(_paragraph_text(q, run_tags, inner_tags).split())
                             for q in cell._tc.iterchildren(qn("w:p"))).strip().replace("|", "｜")
                    for cell in row.cells
                ))
            continue
        style_id = p.style
        style = names.get(style_id, default_name) if style_id else default_name
        text = _paragraph_text(p, run_tags, inner_tags)
        if style.startswith("Heading") and style[-1:].isdigit():
            lines.append(f"{'#' * int(style[-1])} {text}")
        elif style == "Title":
            lines.append(f"# {text}")
        else:
            lines.append(text)
    text = "\n".join(lines)
    limits.check_text("DOCX", len(text), cfg)
    return text


# Plain-text loaders take the bytes; the RICH ones also take the settings (their bounds).
LOADERS: dict[str, Callable[..., str]] = {
    ".txt": load_text,
    ".md": load_text,
    ".markdown": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
}
RICH = frozenset({".html", ".htm", ".pdf", ".docx"})


def supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def load_raw(path: Path, data: bytes, cfg: ChunkSettings = _DEFAULTS) -> str:
    suffix = path.suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}; use {', '.join(sorted(LOADERS))}")
    return loader(data, cfg) if suffix in RICH else loader(data)
