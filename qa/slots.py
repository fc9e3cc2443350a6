"""What a question asks for, and how much of it one sentence of the passages supplies.

Near-miss questions are the refusals that matter: the document and the topic exist, the
asked figure does not ("到2025年建成多少所软件学院" when the plan names the colleges but gives
no number; the 2015 share when the table holds 2020 and 2025). Term coverage over whole
passages cannot see that, since each word is somewhere in them. *Support* asks a single
sentence to hold the answer's frame:

- the question's content terms, idf-weighted, in the sentence or its passage title,
  section path or table header (an English question's terms are its units as the
  translator renders them in Chinese; any rendering of a unit counts);
- every year the question names: in the sentence itself when the sentence names years of
  its own (then it speaks of those: "2020年…达到7.8%" does not give the 2015 share), else
  before it in its passage, its section path or its table header ("到2025年，……" usually
  leads a list of targets, and an indicator table names its years only in the header);
- the kind of thing asked for: a quantity (多少, 几, 百分之, how many, what share…) needs a
  number that is neither a year nor one of the question's own numbers; a body (哪个部门,
  由谁, which ministry…) needs a ministry, department or agency named; a date (哪一年,
  何时, when, which year…) needs a year the question does not name, or a month or day.

A sentence that fails any of these supports nothing; the question's support is its best
sentence's share of terms. Answer-type checking is old (question-answering systems have
matched expected answer types for decades); here it is what tells a near miss from an
answer. On the dev set: AUC 0.90 against passage coverage's 0.69 (English questions 0.83),
see ``python -m qa.calibrate``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from retriever.terms import fold

from .language import EN
from .sentences import Sentence

_YEAR = re.compile(r"(?<!\d)(?:19[5-9]\d|20\d\d)(?!\d)")
_DIGITS = re.compile(r"\d+(?:\.\d+)?")
# a number in a sentence: digits, or Chinese numerals with a counter or magnitude
_NUMBER = re.compile(r"\d+(?:\.\d+)?|[一二三四五六七八九十百千两兩]+[个個项項家所颗顆座条條万萬亿億倍]|百分之")
_ASKS_QUANTITY = {
    "zh": re.compile(r"多少|百分之|(?<!哪)[几幾](?![月日号號年])"),
    EN: re.compile(r"\bhow (?:many|much)\b|\bwhat\b[^?,.]*?\b(?:value|share|percentage|proportion|rate|number|size|"
                   r"total|amount|level|scale|ratio|volume|budget|count)\b", re.IGNORECASE),
}
# a question asking which body (ministry, department, agency) does something
_ASKS_BODY = {
    "zh": re.compile(r"哪[个個些家]?(?:部门|部門|部委|单位|單位|机构|機構|部)|由谁|由誰|谁负责|誰負責|谁牵头|誰牽頭"),
    EN: re.compile(r"\b(?:which|what)\b[^?]*?\b(?:ministry|department|agency|authority|body|office|organi[sz]ation)\b"
                   r"|^\s*who\b", re.IGNORECASE),
}
# a question asking for a year or a date
_ASKS_DATE = {
    "zh": re.compile(r"哪一?年|哪一天|何时|何時|什么时候|什麼時候|[几幾]月|哪个月|哪個月"),
    EN: re.compile(r"^\s*when\b|\b(?:which|what) (?:year|date|day|month)\b", re.IGNORECASE),
}
# a named body: 国务院, …部 (not 全部, 内部, 西部, 部分, 部署…), …委(员会), …厅, …局 (not 格局…), 办公室, 人民政府
_BODY = re.compile(r"国务院|國務院|(?<![全内內外东東西南北中干幹俱总總细細局])部(?![分署门門])|委员会|委員會|委(?![托屈])"
                   r"|[厅廳]|(?<![格布结結大当當时時])局(?![面部限势勢])|办公室|辦公室|人民政府")
_DATE = re.compile(r"\d{1,2}\s*月|\d{1,2}\s*日")


@dataclass(frozen=True)
class Asked:
    """The frame an answering sentence must fill."""

    units: tuple[tuple[tuple[str, ...], float], ...]  # (folded renderings, any of which counts; idf weight)
    years: frozenset[str]
    quantity: bool  # a number is asked for
    numbers: frozenset[str] = frozenset()  # the question's own numbers: not an answer
    body: bool = False  # a ministry, department or agency is asked for
    date: bool = False  # a year or date is asked for


def asked(question: str, lang: str, content_terms: Iterable[str],
          renderings: Iterable[tuple[str, tuple[str, ...]]], idf: Callable[[str], float],
          df: Callable[[str], int]) -> Asked:
    """``content_terms``: the question's terms without question words; ``renderings``: an
    English question's units with their Chinese renderings (``Translation.units``; empty
    otherwise or when nothing was rendered, and then only terms the corpus knows count)."""
    years = frozenset(_YEAR.findall(question))
    units: list[tuple[tuple[str, ...], float]] = []
    if lang == EN and renderings:
        for english, chinese in renderings:
            rendered = [fold(c) for c in chinese if not _YEAR.fullmatch(c)]
            if not rendered or _YEAR.fullmatch(english):
                continue
            rendered = [c for c in rendered if df(c) > 0] or rendered
            units.append((tuple(rendered), sum(idf(c) for c in rendered) / len(rendered)))
    else:
        for term in dict.fromkeys(content_terms):
            if _YEAR.fullmatch(term) or (lang == EN and not _DIGITS.search(term) and df(term) == 0):
                continue
            units.append(((term,), idf(term)))
    key = EN if lang == EN else "zh"
    date = bool(_ASKS_DATE[key].search(question))
    return Asked(tuple(units), years, not date and bool(_ASKS_QUANTITY[key].search(question)),
                 frozenset(_DIGITS.findall(fold(question))), bool(_ASKS_BODY[key].search(question)), date)


def support(frame: Asked, sentence: Sentence) -> float:
    """The share (idf-weighted) of the question's terms this sentence holds, or 0 when it
    lacks a year the question names or the kind of thing it asks for."""
    hit = sentence.hit
    header = sentence.table_header.text if sentence.table_header is not None else ""
    text = fold(sentence.text)
    if frame.years:
        own = set(_YEAR.findall(text))  # a sentence naming its own years speaks of those
        before = text if own else " ".join((hit.text[: sentence.end], hit.section, header))
        if not all(year in before for year in frame.years):
            return 0.0
    if frame.quantity and not any(m.group(0) not in frame.numbers for m in _NUMBER.finditer(_YEAR.sub(" ", text))):
        return 0.0
    if frame.body and not _BODY.search(sentence.text):
        return 0.0
    if frame.date and not (set(_YEAR.findall(text)) - frame.years or _DATE.search(text)):
        return 0.0
    if not frame.units:
        return 1.0
    context = fold(" ".join((hit.title, hit.section, header, sentence.text)))
    total = sum(weight for _, weight in frame.units)
    return sum(weight for rendered, weight in frame.units if any(r in context for r in rendered)) / total


def best_support(frame: Asked, sentences: Iterable[Sentence]) -> float:
    return max((support(frame, s) for s in sentences), default=0.0)
