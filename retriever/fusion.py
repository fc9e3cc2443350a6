"""Combining ranked lists from several retrievers, and pruning overlapping passages.

Reciprocal rank fusion needs no score calibration between BM25 and cosine, which is why
it is the default; the weighted mode min-max normalises each list first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ranked:
    """One retriever's result: keys best first (row ids, chunk ids: whatever the store names
    its passages by), with that retriever's own scores."""

    name: str
    ids: list
    scores: np.ndarray
    weight: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.ids, np.ndarray):
            object.__setattr__(self, "ids", self.ids.tolist())


def rrf(lists: list[Ranked], k: int = 60) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, row in enumerate(ranked.ids, start=1):
            fused[row] = fused.get(row, 0.0) + ranked.weight / (k + rank)
    return fused


def weighted(lists: list[Ranked]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranked in lists:
        if len(ranked.scores) == 0:
            continue
        lo, hi = float(ranked.scores.min()), float(ranked.scores.max())
        span = hi - lo or 1.0
        for row, score in zip(ranked.ids, ranked.scores.tolist()):
            fused[row] = fused.get(row, 0.0) + ranked.weight * (score - lo) / span
    return fused


def overlap_share(a: tuple[str, int, int], b: tuple[str, int, int]) -> float:
    """Share of the shorter span covered by both (0 for different documents)."""
    if a[0] != b[0]:
        return 0.0
    inter = min(a[2], b[2]) - max(a[1], b[1])
    return max(inter, 0) / max(min(a[2] - a[1], b[2] - b[1]), 1)
