"""One loader per file format, each turning a file into raw text (before cleaning).

Structure that a format makes explicit (HTML/DOCX headings) is kept as Markdown ``#``
lines so the chunker can build section paths from it like from numbered headings.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Callable

from .decode import DecodeError, decode_bytes


class LoadError(ValueError):
    """A user-facing reason why a file cannot be ingested (no traceback is shown)."""


_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Tags that end a line; all others (<a>, <b>, <span>, ...) sit inside a sentence.
_BLOCK_TAGS = [
    "p", "div", "br", "hr", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "section",
    "article", "main", "blockquote", "pre", "center", "address", "figure", "figcaption",
]


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


def load_html(data: bytes) -> str:
    """Text of the page body; only block tags break lines, so "加<b>快</b>" stays one word."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(load_text(data, _declared_charset(data)), "lxml")
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header", "aside", "form", "iframe"]):
        tag.decompose()
    for level in range(1, 7):
        for tag in soup.find_all(f"h{level}"):
            tag.replace_with(f"\n{'#' * level} {tag.get_text(' ', strip=True)}\n")
    for tag in soup.find_all(["td", "th"]):
        tag.insert_after(" ")
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    body = soup.body or soup
    return body.get_text()


def load_pdf(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise LoadError(f"not a readable PDF ({exc.__class__.__name__}: {exc})") from exc
    text = "\n\n".join(pages)
    if not text.strip():
        raise LoadError("PDF has no text layer (a scan?); run OCR on it first")
    return text


def load_docx(data: bytes) -> str:
    import zipfile

    import docx
    from lxml import etree

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, etree.XMLSyntaxError) as exc:
        raise LoadError(f"not a readable DOCX file ({exc})") from exc
    lines = []
    for para in document.paragraphs:
        style = (para.style.name or "") if para.style is not None else ""
        if style.startswith("Heading") and style[-1:].isdigit():
            lines.append(f"{'#' * int(style[-1])} {para.text}")
        elif style == "Title":
            lines.append(f"# {para.text}")
        else:
            lines.append(para.text)
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(lines)


LOADERS: dict[str, Callable[[bytes], str]] = {
    ".txt": load_text,
    ".md": load_text,
    ".markdown": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
}


def supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def load_raw(path: Path, data: bytes) -> str:
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}; use {', '.join(sorted(LOADERS))}")
    return loader(data)
