"""What the index holds, document by document: the records a library view lists.

The facts come from the index alone (``Document.meta`` as ingestion stored it, passage
counts from the chunk records), so the list is the same in the app, the HTTP API and the
command line, and it survives a restart: an upload's time is a meta field written when it
was ingested (``UPLOADED_AT``), not a file date that a copy or a backup would change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Literal

from ingest import Chunk, Document
from ingest.uploads import PREFIX as UPLOAD_PREFIX  # the id namespace of documents users uploaded

UPLOADED_AT = "uploaded_at"  # Document.meta key: ISO 8601 time (UTC) the upload was indexed
Origin = Literal["corpus", "upload"]


class UnknownDocument(KeyError):
    """A document id that is not in the index (removal, scope). ``ids`` lists every unknown one."""

    def __init__(self, ids: Iterable[str], where: str = "the index"):
        self.ids = list(ids)
        super().__init__(f"no such document in {where}: {', '.join(self.ids)}")

    def __str__(self) -> str:  # KeyError's own str() would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    title: str
    issuer: str  # from the folder's metadata.json; "" when not known
    date: str  # as the metadata gives it ("2016-12", "2017-12-21"); "" when not known
    script: str  # Hans | Hant | Latn
    passages: int  # chunks in the index, table rows included
    origin: Origin
    uploaded_at: str | None = None  # uploads only

    def as_dict(self) -> dict:
        return asdict(self)


def origin_of(doc_id: str) -> Origin:
    return "upload" if doc_id.startswith(UPLOAD_PREFIX) else "corpus"


def library(documents: Iterable[Document], passages: Iterable[Chunk] | Mapping[str, int]) -> list[DocumentInfo]:
    """One record per document, in index order (corpus first as it was built, uploads after);
    ``passages``: the index's chunks, or how many each document has."""
    counts = passages if isinstance(passages, Mapping) else Counter(c.doc_id for c in passages)
    out = []
    for d in documents:
        meta = d.meta or {}
        origin = origin_of(d.doc_id)
        out.append(DocumentInfo(
            doc_id=d.doc_id, title=d.title, issuer=str(meta.get("issuer") or ""), date=str(meta.get("date") or ""),
            script=d.script, passages=counts.get(d.doc_id, 0), origin=origin,
            uploaded_at=(str(meta[UPLOADED_AT]) if origin == "upload" and meta.get(UPLOADED_AT) else None)))
    return out


def check_known(doc_ids: Iterable[str], known: Iterable[str] | dict, where: str = "the index") -> list[str]:
    """``doc_ids`` as a list without repeats, or UnknownDocument naming every id not in ``known``."""
    ids = list(dict.fromkeys([doc_ids] if isinstance(doc_ids, str) else doc_ids))
    missing = [d for d in ids if d not in known]
    if missing:
        raise UnknownDocument(missing, where)
    return ids
