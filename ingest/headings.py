"""Recognising the numbered headings of Chinese official documents.

Official documents number their outline in a fixed hierarchy (第X编 > 第X章 > 第X节 >
一、 > （一） > 1. > （1） > 第X条). Each kind has a fixed rank, so the section path can be
kept with a simple stack even when a document skips levels. Markdown ``#`` headings
rank above all of them (ranks 1–6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CN_NUM = "一二三四五六七八九十百零〇两"
_ORD = rf"[{_CN_NUM}\d]+"

# (rank, pattern) — lower rank = higher level. The pattern matches the numbering prefix.
_KINDS: list[tuple[int, re.Pattern[str]]] = [
    (100, re.compile(rf"^第{_ORD}编")),
    (110, re.compile(rf"^第{_ORD}章")),
    (120, re.compile(rf"^第{_ORD}节")),
    (130, re.compile(rf"^[{_CN_NUM}]+\s*[、.．]")),
    (140, re.compile(rf"^[(（]\s*[{_CN_NUM}]+\s*[)）]")),
    (145, re.compile(r"^(?:专栏|專欄)\s*\d+")),  # boxed programme inside a subsection
    (150, re.compile(r"^\d{1,2}\s*[、.．](?!\d)")),
    (160, re.compile(r"^[(（]\s*\d{1,2}\s*[)）]")),
    (170, re.compile(rf"^第{_ORD}条")),
]
_MARKDOWN = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
# The heading label ends at the first sentence or clause end: "1.信息基础设施快速完善。正文…"
_LABEL_END = re.compile(r"[。！？!?；;:：]")
MAX_LABEL = 40  # a longer "label" is a numbered paragraph, not a heading


@dataclass(frozen=True)
class Heading:
    rank: int
    label: str  # the heading as shown in a section path, e.g. "（三）推动数字经济发展"


def detect_heading(paragraph: str) -> Heading | None:
    """Return the heading that opens this paragraph, or None for body text."""
    line = paragraph.strip()
    md = _MARKDOWN.match(line)
    if md:
        return Heading(rank=len(md.group(1)), label=md.group(2)[:MAX_LABEL])
    for rank, pattern in _KINDS:
        if pattern.match(line):
            end = _LABEL_END.search(line)
            label = line[: end.start()] if end else line
            if len(label) > MAX_LABEL or len(label) == len(pattern.match(line).group(0)):
                return None
            return Heading(rank=rank, label=label.strip())
    return None


class SectionTracker:
    """Keeps the current section path as headings are met in reading order."""

    def __init__(self) -> None:
        self._stack: list[Heading] = []

    def enter(self, heading: Heading) -> None:
        while self._stack and self._stack[-1].rank >= heading.rank:
            self._stack.pop()
        self._stack.append(heading)

    @property
    def path(self) -> str:
        return " > ".join(h.label for h in self._stack)
