"""The records ingestion hands to the next stage. Frozen so no later stage can alter them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One source file after decoding and cleaning; ``text`` is what every offset points into."""

    doc_id: str  # the file name, e.g. 000_23acc2fe7a7ca56c.txt
    title: str
    path: str
    script: str  # Hans | Hant | Latn
    text: str
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


TEXT = "text"  # Chunk.kind of a passage cut from the document: its text is a slice of it
TABLE_ROW = "table_row"  # Chunk.kind of one table row rendered as a self-describing line


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage.

    For ``kind == "text"`` (every passage but table rows) ``Document.text[start:end] == text``
    always holds. For ``kind == "table_row"`` ``text`` is a *rendering* of the row (table
    title, row labels, header-labelled values, notes) and ``start:end`` is the row's span in
    ``Document.text``: code that maps a position in ``text`` to the document must use the
    whole span for such a chunk (see ``is_rendering``).
    """

    chunk_id: str
    doc_id: str
    title: str
    section: str  # heading path, e.g. "四、重大任务和重点工程 > （三）…"
    text: str
    start: int
    end: int
    script: str = "Hans"
    kind: str = TEXT  # TEXT | TABLE_ROW; records written before this field read as TEXT

    @property
    def is_rendering(self) -> bool:
        """True when ``text`` is not a slice of the document (a table row's rendering)."""
        return self.kind != TEXT

    @staticmethod
    def make_id(doc_id: str, text: str, occurrence: int = 0) -> str:
        """Same document and text => same id, across runs and across edits elsewhere in
        the document (offsets are left out on purpose, so an insertion above a passage
        does not force it to be re-embedded). ``occurrence`` separates repeated texts."""
        digest = hashlib.sha1(f"{doc_id}\x00{occurrence}\x00{text}".encode("utf-8")).hexdigest()
        return f"{doc_id}#{digest[:12]}"


@dataclass(frozen=True)
class Skipped:
    """A file that could not be ingested, with the one-line reason shown to the user."""

    path: str
    reason: str
