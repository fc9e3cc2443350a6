"""Cheap checks that refuse a rich file before a parser spends memory and time on it.

A file's size on disk says little about its cost: a 765 KB .docx of empty paragraphs
expands to 500 MB of XML and took 7.9 GB to parse. These checks read only zip headers
and stream raw bytes, so a hostile file is refused in milliseconds with a reason naming
the setting that bounds it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import zipfile
import zlib
from typing import Iterator

from settings import ChunkSettings

from .errors import LoadError

_DOCX_PARAGRAPH = re.compile(rb"<w:p[\s/>]")
_OVERLAP = len(b"<w:p>") - 1  # a match cut at a block edge is completed in the next block
_HTML_TAG = re.compile(r"<[A-Za-z]")  # start tags only; end tags add no element
_STREAM_BLOCK = 1 << 20  # bytes decompressed at a time while counting


def mb(n: int | float) -> str:
    return f"{n / 1e6:,.0f} MB"


def over(what: str, setting: str, limit: int | str | None = None) -> LoadError:
    """The one wording of every limit reason: what, the bound unless ``what`` says it,
    and the setting to raise."""
    bound = "" if limit is None else f"limit {limit if isinstance(limit, str) else f'{limit:,}'}, "
    return LoadError(f"{what} ({bound}ChunkSettings.{setting})")


def check_docx(data: bytes, cfg: ChunkSettings) -> None:
    """Refuse a DOCX whose parts expand too far or whose body has too many paragraphs.

    Declared sizes come from the zip directory and bound what python-docx reads: zipfile
    never returns more than a member declares (a lying header fails its CRC instead). The
    XML parts (body, headers, notes: whatever the package names its main part) are then
    streamed to count ``<w:p>`` elements, stopping once past the bound.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise LoadError(f"not a readable DOCX file ({exc})") from exc
    with archive:
        members = archive.infolist()
        if len(members) > cfg.max_zip_members:
            raise over(f"DOCX has {len(members):,} parts", "max_zip_members", cfg.max_zip_members)
        declared = sum(m.file_size for m in members)
        if declared > cfg.max_expanded_bytes:
            raise over(f"DOCX expands to {mb(declared)}", "max_expanded_bytes", mb(cfg.max_expanded_bytes))
        paragraphs = 0
        try:
            for member in members:
                if not member.filename.endswith(".xml"):
                    continue
                tail = b""
                with archive.open(member) as part:
                    while block := part.read(_STREAM_BLOCK):
                        buf = tail + block
                        paragraphs += len(_DOCX_PARAGRAPH.findall(buf))
                        if paragraphs > cfg.max_paragraphs:
                            raise over(f"DOCX has more than {cfg.max_paragraphs:,} paragraphs", "max_paragraphs")
                        tail = buf[-_OVERLAP:]
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise LoadError(f"not a readable DOCX file ({exc})") from exc


def check_html(page: str, cfg: ChunkSettings) -> None:
    """Refuse a page with more elements than a soup may hold; counted on the decoded text
    (on bytes, UTF-16 would hide its tags)."""
    for count, _ in enumerate(_HTML_TAG.finditer(page), 1):
        if count > cfg.max_html_tags:
            raise over(f"HTML has more than {cfg.max_html_tags:,} tags", "max_html_tags")


def check_text(kind: str, chars: int, cfg: ChunkSettings) -> None:
    if chars > cfg.max_text_chars:
        raise over(f"{kind} text has more than {cfg.max_text_chars:,} characters", "max_text_chars")


@contextlib.contextmanager
def pdf_limits(cfg: ChunkSettings) -> Iterator[None]:
    """pypdf's own bounds on decoded stream sizes, lowered to ``max_expanded_bytes`` where
    this pypdf has them (a ``Configuration``); an older pypdf keeps its built-in ones."""
    try:
        from pypdf import apply_configuration, get_configuration
    except ImportError:
        yield
        return
    current = get_configuration()
    bounds = {
        f.name: min(getattr(current, f.name), cfg.max_expanded_bytes)
        for f in dataclasses.fields(current)
        if f.name.endswith("output_length") or f.name == "maximum_declared_stream_length"
    }
    with apply_configuration(**bounds):
        yield
