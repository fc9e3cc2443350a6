"""Turning an elliptical follow-up ("那IPv6呢?", "What about 2025?") into a self-contained query.

Retrieval sees one query, with no memory of the chat, so a follow-up must carry the topic
of the turn before it. The rules are deliberately simple and predictable:

* "那X呢" / "X呢" / "what/how about X" / "and X?": X takes the place of the slot of the
  same kind in the previous question (a year replaces a year, a Latin-script term such as
  5G/IPv6 replaces a Latin term, a place name replaces a place name); with no such slot,
  X is appended to the previous question.
* a short question with a pronoun (它/其/该/这…, it/they/this…) or with no content terms
  of its own ("为什么?", "Why?"): the previous question is put in front of it.
* anything else is already self-contained and is searched as it is.

The previous question is itself rewritten first, so a chain of follow-ups keeps its topic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_ZH_ELLIPSIS = re.compile(r"^\s*(?:那么?|还有|另外|而)?\s*(?P<x>.+?)\s*(?:呢|怎么样|怎麼樣|又如何|如何)\s*[?？]*\s*$")
_ZH_LEAD = re.compile(r"^\s*(?:那么?|还有|另外)\s*(?P<x>.+?)\s*[?？]*\s*$")
_EN_ELLIPSIS = re.compile(r"^\s*(?:and\s+|so\s+)?(?:what|how)\s+about\s+(?P<x>.+?)\s*\?*\s*$|^\s*and\s+(?P<y>.+?)\s*\?+\s*$",
                          re.IGNORECASE)
_PRONOUN = re.compile(r"[它其该該此]|这个|這個|这些|這些|那个|那個|上述|\b(?:it|its|they|them|their|this|that|these|those)\b",
                      re.IGNORECASE)
_YEAR = re.compile(r"(?:19|20)\d\d(?:\s*年)?")
_LATIN_TERM = re.compile(r"[A-Za-z][A-Za-z0-9.\-+]*\d[A-Za-z0-9]*|[0-9]+[A-Za-z][A-Za-z0-9]*|[A-Z]{2,}[a-z]?")
_PLACE = re.compile(r"[\u4e00-\u9fff]{2,8}?(?:省|市|自治区|自治區|特别行政区|特別行政區)")
_LEADING_DE = re.compile(r"^(?:的|之)")
_HAN = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Rewrite:
    query: str  # what is searched
    rewritten: bool  # False when the question was already self-contained
    previous: str = ""  # the (rewritten) previous question the rewrite drew on
    # "slot": the follow-up's term took the place of one of the same kind (a clean query);
    # "joined": it was only put beside the previous question (a model may do better)
    method: str = ""


def user_turns(history: Any) -> list[str]:
    """The user questions of a history in either accepted shape, oldest first.

    Accepts ``[(user, assistant), ...]`` pairs and Gradio "messages"
    (``[{"role": "user", "content": ...}, ...]`` or objects with ``.role``/``.content``).
    Entries of any other shape, and non-text contents (files), are skipped.
    """
    questions: list[str] = []
    for turn in history or []:
        if isinstance(turn, dict) or hasattr(turn, "role"):
            role = turn.get("role") if isinstance(turn, dict) else getattr(turn, "role", None)
            content = turn.get("content") if isinstance(turn, dict) else getattr(turn, "content", None)
            content = _text_of(content)
            if role == "user" and content:
                questions.append(content)
        elif isinstance(turn, (list, tuple)) and turn and isinstance(turn[0], str) and turn[0].strip():
            questions.append(turn[0].strip())
    return questions


def _text_of(content: Any) -> str:
    """A message's text: a string, or the text parts of a multimodal list ({"type": "text", …})."""
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return " ".join(p for p in parts if isinstance(p, str)).strip()
    return ""


class FollowUpRewriter:
    def __init__(self, content_terms: Callable[[str], Sequence[str]], max_chars: int, max_turns: int):
        self.content_terms = content_terms  # question terms without interrogatives and stopwords
        self.max_chars = max_chars
        self.max_turns = max_turns

    def rewrite(self, question: str, history: Any = None) -> Rewrite:
        previous = ""
        for earlier in user_turns(history)[-self.max_turns:]:
            previous = self._rewrite_one(earlier, previous).query
        return self._rewrite_one(question, previous)

    def _rewrite_one(self, question: str, previous: str) -> Rewrite:
        if not previous:
            return Rewrite(question, False)
        # an English word is about three characters' worth of a Chinese question
        if _HAN.search(question):
            short = len(question) <= self.max_chars
        else:
            short = len(question.split()) <= self.max_chars // 3
        entity = _elided_entity(question) if short else ""
        if entity:
            filled = _fill_slot(previous, entity)
            return Rewrite(filled, True, previous, "joined" if filled == f"{previous} {entity}" else "slot")
        if (short and _PRONOUN.search(question)) or not self.content_terms(question):
            return Rewrite(f"{previous} {question}", True, previous, "joined")
        return Rewrite(question, False)


def _elided_entity(question: str) -> str:
    for pattern in (_EN_ELLIPSIS, _ZH_ELLIPSIS, _ZH_LEAD):
        m = pattern.match(question)
        if m:
            x = (m.groupdict().get("x") or m.groupdict().get("y") or "").strip(" ,，。?？")
            x = _LEADING_DE.sub("", x)
            if pattern is _ZH_LEAD and len(x) > 12:  # "那么…" opening a full question
                return ""
            return x
    return ""


def _fill_slot(previous: str, entity: str) -> str:
    """Put ``entity`` where the previous question had a term of the same kind."""
    for kind in (_YEAR, _LATIN_TERM, _PLACE):
        if kind.fullmatch(entity):
            slots = list(kind.finditer(previous))
            if slots:
                last = slots[-1]
                end = _noun_phrase_end(previous, last.end()) if kind is _LATIN_TERM else last.end()
                return previous[: last.start()] + entity + previous[end:]
            break
    return f"{previous} {entity}"


def _noun_phrase_end(text: str, pos: int) -> int:
    """End of the Chinese nouns compounded onto a Latin term: in "对5G用户普及率提出", the
    slot is "5G用户普及率", so "那IPv6呢" asks about IPv6, not about an "IPv6用户普及率"."""
    if not _HAN.search(text):
        return pos
    import jieba.posseg

    offset = 0
    for word in jieba.posseg.cut(text):
        start, offset = offset, offset + len(word.word)
        if start < pos:
            continue
        if not (word.flag.startswith("n") or word.flag == "vn"):
            return start
    return pos if offset < pos else offset
