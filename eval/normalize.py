"""Matching text the way a reader would: script, width, spacing and glosses do not count.

Evidence spans were copied from the *raw* seed files (traditional script, pinyin glosses,
full-width or ASCII punctuation, odd spaces), while retrieved passages are *cleaned* text
and answers may be written in another script. Both sides go through ``normalize`` before
any comparison:

1. pinyin glosses removed (``ingest.clean.strip_pinyin``: 國務(wù)院 → 國務院);
2. NFKC (full-width letters, digits and most punctuation become their ASCII forms);
3. all whitespace dropped;
4. traditional → simplified (``ingest.language.to_simplified``, OpenCC t2s);
5. the remaining punctuation variants folded: every kind of quote mark becomes ``"``
   or ``'``, dashes become ``-``, middle dots ``·``, and Latin letters are lower-cased.

Containment (``contains_span``): a passage contains a span when the normalized span is a
substring of the normalized passage, or, because a chunk boundary can cut a span, when
the longest common substring of the two covers at least ``partial`` (0.8 by default,
``EvalSettings.partial_span``) of the normalized span.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache

from ingest.clean import strip_pinyin
from ingest.language import to_simplified

_WHITESPACE = re.compile(r"\s+")
_CITATION_MARK = re.compile(r"\[\d+(?:\s*[,，、]\s*\d+)*\]")
_FOLD = str.maketrans(
    {
        **{ch: '"' for ch in "“”„‟〝〞〟＂「」『』﹁﹂﹃﹄«»"},
        **{ch: "'" for ch in "‘’‚‛′`"},
        **{ch: "-" for ch in "‐‑‒–—―─━－﹣"},
        **{ch: "·" for ch in "・･•‧∙⋅"},
        "〜": "~",
        "～": "~",
    }
)


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    """The comparison form of ``text`` (see the module docstring for the steps)."""
    if not text:
        return ""
    text = strip_pinyin(text)
    text = unicodedata.normalize("NFKC", text)
    text = _WHITESPACE.sub("", text)
    text = to_simplified(text)
    return text.translate(_FOLD).lower()


def strip_citation_marks(text: str) -> str:
    """Answer text without its ``[n]`` markers (so ``2020年[1]`` still matches ``2020年``)."""
    return _CITATION_MARK.sub("", text)


def longest_common_run(a: str, b: str) -> int:
    """Length of the longest common substring of ``a`` and ``b``."""
    if not a or not b:
        return 0
    match = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size


def span_coverage(span_norm: str, text_norm: str) -> float:
    """Share of the (normalized) span found in one unbroken piece of the (normalized) text."""
    if not span_norm:
        return 0.0
    if span_norm in text_norm:
        return 1.0
    return longest_common_run(span_norm, text_norm) / len(span_norm)


def contains_span(text: str, span: str, partial: float = 0.8, *, normalized: bool = False) -> bool:
    """Does ``text`` contain the evidence ``span`` (exactly, or ≥ ``partial`` of it in one piece)?

    ``normalized=True`` says both arguments are already normalized.
    """
    if not normalized:
        text, span = normalize(text), normalize(span)
    if not span:
        return False
    return span in text or span_coverage(span, text) >= partial
