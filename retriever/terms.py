"""Turning text into BM25 terms: jieba words over script-folded, width-folded text.

Both the corpus and the query go through the same function, so a simplified question
matches a traditional passage (OpenCC folds both to simplified) and full-width digits
match half-width ones (NFKC).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache

import jieba

from ingest import to_simplified

jieba.setLogLevel(logging.WARNING)
_WORDLIKE = re.compile(r"[\w]", re.UNICODE)
_KEEP = set("一二三四五六七八九十百千万亿零两")  # numerals are content in policy text ("三网融合")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    import stopwordsiso

    words = set(stopwordsiso.stopwords("zh")) | set(stopwordsiso.stopwords("en"))
    return frozenset(w for w in words if not (set(w) & _KEEP))


def fold(text: str) -> str:
    return to_simplified(unicodedata.normalize("NFKC", text)).lower()


def terms(text: str) -> list[str]:
    """Search-engine-mode jieba tokens (long words also yield their sub-words)."""
    stop = stopwords()
    return [t for t in jieba.cut_for_search(fold(text)) if _WORDLIKE.search(t) and t not in stop and t.strip()]
