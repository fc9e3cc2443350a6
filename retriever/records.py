"""What retrieval hands on: a chunk's fields plus how well it matched."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ingest import Chunk


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    doc_id: str
    title: str
    section: str
    text: str
    start: int
    end: int
    score: float  # the fused score that ordered the results (higher is better)
    script: str = "Hans"
    dense_score: float | None = None  # cosine similarity to the query, when dense search ran
    bm25_score: float | None = None
    dense_rank: int | None = None  # 1-based rank in each retriever's own list, for inspection
    bm25_rank: int | None = None
    kind: str = "text"  # Chunk.kind: "table_row" hits hold a rendering of document.text[start:end]

    @classmethod
    def from_chunk(cls, chunk: Chunk, score: float, **extra) -> "Hit":
        return cls(**{f.name: getattr(chunk, f.name) for f in fields(Chunk)}, score=score, **extra)

    def to_chunk(self) -> Chunk:
        return Chunk(**{f.name: getattr(self, f.name) for f in fields(Chunk)})
