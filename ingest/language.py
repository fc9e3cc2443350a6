"""Script detection and traditional→simplified folding (OpenCC).

The stored text keeps its original script; folding is only for matching (BM25 terms,
evaluation spans), so a simplified question finds a traditional passage and back.
"""

from __future__ import annotations

import re
from functools import lru_cache

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
HANT_SHARE = 0.05  # share of Han characters that simplification changes, above which text is traditional


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def detect_script(text: str) -> str:
    """Hans, Hant, or Latn for text with (almost) no Han characters."""
    sample = text[:20000]
    han = _HAN.findall(sample)
    if len(han) < max(10, len(_LATIN.findall(sample)) // 20):
        return "Latn"
    joined = "".join(han)
    changed = sum(a != b for a, b in zip(joined, to_simplified(joined)))
    return "Hant" if changed / len(han) > HANT_SHARE else "Hans"
