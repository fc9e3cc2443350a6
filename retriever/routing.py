"""Document routing: which of the index's documents a question names.

"“十四五”国家信息化规划…", "四川规划…", "工信部规划…", "綱要…": a question that names a
document should be answered from it. The names come from what the index knows about each
document, so routing works for any corpus, uploads included:

- the title and its core: the part inside 《》, the “关于印发…的通知” wrapper removed, a
  trailing （…） note dropped (``title``);
- the plan period it carries, “十三五” (``period``);
- the place it opens with, 四川省 and 四川 (``place``);
- its issuers: metadata ``issuer`` split at 、, the issuer part of the title's wrapper
  (国务院关于印发…, 工信部印发…) and the place of a provincial issuer (``issuer``);
- the words of the core title (``word``), its last word being the document type (``head``:
  规划, 纲要, 通知 …).

A question is folded (traditional → simplified, NFKC, lower case) and every name found in
it, longest first; names next to each other (at most ``_MAX_GAP`` characters apart and no
list separator such as 和/与/、 between them) form one *mention*: “国家“十三五”规划” is one
mention (国家 + 十三五 + 规划 → 000), “和四川规划” another (→ 004). A mention resolves to the
documents with the most (weighted) of its names. A mention made only of title words names
documents only when it ends in a document type and narrows to at most half of the
documents (“纲要” → 002, but “规划” alone, or “国家战略” without a document type, names
nothing); a mention whose documents are all of them names nothing either.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ingest import to_simplified

# How much one name of each kind says about a document (a mention's documents are the
# ones with the highest total).
KIND_WEIGHT = {"title": 8.0, "issuer": 3.0, "place": 3.0, "period": 2.0, "head": 1.0, "word": 1.0}
STRONG = frozenset({"title", "issuer", "place", "period"})
_MAX_GAP = 2  # characters of other text allowed between two names of one mention
_SEPARATORS = set("和与及跟同或、，,;；。.!！?？:：()（）[]【】")
_DROP = re.compile(r"[\s\"'“”‘’「」『』《》〈〉﹁﹂﹃﹄]")  # quoting marks and spaces: not part of names
_NOTE = re.compile(r"[（(][^（）()]*[）)]\s*$")  # a trailing （…） note of a title
_BOOK = re.compile(r"《([^《》]+)》")
_WRAPPER = re.compile(r"^(?P<issuer>.*?)关于(?:印发|发布|转发)?(?P<core>.+?)的(?:通知|意见|决定|批复|函)$")
_ISSUED = re.compile(r"^(?P<issuer>[^《》]{2,20}?)(?:印发|发布|出台|公布)(?P<core>.+)$")
_PERIOD = re.compile(r"十[一二三四五六七八九]五")
# "“十三五”期间", "13th Five-Year period": a plan period named as a time, not as the plan
_AS_TIME = re.compile(r"\s*(?:时期|期间|期末|末期|以来|时代|初期|中期)")
_PLACE = re.compile(r"^(?P<short>[\u4e00-\u9fff]{2,6}?)(?P<suffix>省|自治区|特别行政区|市)")
_ISSUER_SPLIT = re.compile(r"[、，,;；/]| 及 ")
_HAN = re.compile(r"[\u4e00-\u9fff]")
# a question comparing what it names with something it does not name ("Sichuan's target
# compared with the national figure"): the unnamed rest is a side of its own
_COMPARES = re.compile(r"比较|比較|相比|相较|相較|对比|對比|异同|異同|区别|區別|差异|差異"
                       r"|\b(?:compare[sd]?|comparing|comparison|versus|vs)\b", re.IGNORECASE)


def normalize(text: str) -> str:
    """Folded for matching: simplified, NFKC, lower case."""
    return to_simplified(unicodedata.normalize("NFKC", text)).lower()


def _squeeze(text: str) -> str:
    return _DROP.sub("", normalize(text))


@dataclass(frozen=True)
class Name:
    text: str  # folded, without quoting marks
    kind: str  # title | issuer | place | period | head | word
    docs: frozenset[str]


@dataclass(frozen=True)
class Mention:
    """One stretch of the question that names documents."""

    text: str
    docs: tuple[str, ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    mentions: tuple[Mention, ...] = ()
    rest: tuple[str, ...] = ()  # a comparison naming one side only: the documents of the other side

    @property
    def doc_ids(self) -> tuple[str, ...]:
        """Every named document, in order of first mention."""
        return tuple(dict.fromkeys(d for m in self.mentions for d in m.docs))

    @property
    def groups(self) -> tuple[tuple[str, ...], ...]:
        """The distinct document groups the question names (two or more: it compares them)."""
        return tuple(dict.fromkeys(m.docs for m in self.mentions))

    @property
    def sides(self) -> tuple[tuple[str, ...], ...]:
        """What a comparison compares: the named groups, and the unnamed rest when only one is named."""
        groups = self.groups
        return groups + ((self.rest,) if len(groups) == 1 and self.rest else ())

    def __bool__(self) -> bool:
        return bool(self.mentions)


def _words(text: str) -> list[str]:
    import jieba

    return [w for w in jieba.lcut(text) if len(w) >= 2 and _HAN.search(w)]


def document_names(doc_id: str, title: str, meta: dict | None = None) -> list[tuple[str, str]]:
    """(name, kind) pairs one document is known by (folded, not yet shared between documents)."""
    return _document_names(title, meta)[0]


def _document_names(title: str, meta: dict | None) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """The names, and the issuer's aliases: who the title says issued it (工信部印发…) and the
    metadata's single issuer (工业和信息化部) are one body."""
    meta = meta or {}
    names: list[tuple[str, str]] = []
    title_f = normalize(title or "").strip()
    cores: list[str] = []
    issuers: list[str] = []
    if title_f:
        names.append((_squeeze(title_f), "title"))
        base = _NOTE.sub("", title_f).strip()
        cores.append(base)
        cores.extend(_BOOK.findall(base))
        m = _WRAPPER.match(base) or _ISSUED.match(base)
        if m:
            issuers.append(m.group("issuer"))
            cores.append(_BOOK.sub(r"\1", m.group("core")))
    titled = [_squeeze(i) for i in issuers]
    raw_issuer = meta.get("issuer")
    listed = [_squeeze(i) for i in _ISSUER_SPLIT.split(normalize(raw_issuer))] if isinstance(raw_issuer, str) else []
    listed = [i for i in listed if len(i) >= 2]
    issuers.extend(listed)
    aliases = tuple(dict.fromkeys(titled + listed)) if len(titled) == 1 and len(listed) == 1 else ()
    cores = list(dict.fromkeys(c for c in (_squeeze(c) for c in cores) if len(c) >= 2))
    names.extend((c, "title") for c in cores)
    for issuer in dict.fromkeys(_squeeze(i) for i in issuers):
        if len(issuer) >= 2:
            names.append((issuer, "issuer"))
            place = _PLACE.match(issuer)
            if place:
                names.append((place.group(0), "place"))
                names.append((place.group("short"), "place"))
    for core in cores:
        for period in _PERIOD.findall(core):
            names.append((period, "period"))
        place = _PLACE.match(core)
        if place:
            names.append((place.group(0), "place"))
            names.append((place.group("short"), "place"))
    # title words: the shortest core (the document's own name) without period and place
    if cores:
        core = min(cores, key=len)
        rest = _PERIOD.sub(" ", core)
        place = _PLACE.match(rest)
        if place:
            rest = rest[place.end():]
        words = _words(rest)
        for i, word in enumerate(words):
            names.append((word, "head" if i == len(words) - 1 else "word"))
        # the document type is the title's last two characters (规划, 纲要, 意见, 方案 …), also
        # where the segmenter kept it inside a longer word (教育规划)
        if words and len(words[-1]) > 2 and re.fullmatch(r"[\u4e00-\u9fff]{2}", rest[-2:]):
            names.append((rest[-2:], "head"))
    return names, (aliases if len(aliases) > 1 else ())


@dataclass
class Router:
    """Finds the documents a question names; built from the index's document records."""

    names: dict[str, Name] = field(default_factory=dict)
    doc_ids: tuple[str, ...] = ()
    aliases: tuple[tuple[str, ...], ...] = ()  # names of one body (工信部, 工业和信息化部)

    @classmethod
    def from_documents(cls, documents: Iterable) -> "Router":
        """``documents``: records with ``doc_id``, ``title`` and (optionally) ``meta``."""
        found: dict[str, tuple[str, set[str]]] = {}
        order = {k: i for i, k in enumerate(KIND_WEIGHT)}
        ids = []
        aliases: dict[tuple[str, ...], None] = {}
        for doc in documents:
            ids.append(doc.doc_id)
            names, alias = _document_names(doc.title, getattr(doc, "meta", None))
            if alias:
                aliases[alias] = None
            for text, kind in names:
                if len(text) < 2:
                    continue
                known_kind, docs = found.get(text, (kind, set()))
                # one text, several kinds (a title that is also a word elsewhere): the strongest
                kind = kind if order[kind] < order[known_kind] else known_kind
                docs.add(doc.doc_id)
                found[text] = (kind, docs)
        names = {text: Name(text, kind, frozenset(docs)) for text, (kind, docs) in found.items()}
        return cls(names, tuple(ids), tuple(aliases))

    def names_of(self, doc_id: str) -> list[Name]:
        return [n for n in self.names.values() if doc_id in n.docs]

    def _occurrences(self, text: str) -> list[tuple[int, int, Name]]:
        """Non-overlapping name occurrences, longest names first."""
        found = []
        for name in self.names.values():
            start = text.find(name.text)
            while start >= 0:
                found.append((start, start + len(name.text), name))
                start = text.find(name.text, start + 1)
        found.sort(key=lambda o: (-(o[1] - o[0]), o[0]))
        taken = [False] * len(text)
        kept = []
        for start, end, name in found:
            if not any(taken[start:end]):
                taken[start:end] = [True] * (end - start)
                kept.append((start, end, name))
        return sorted(kept, key=lambda o: o[0])

    def route(self, *texts: str) -> Route:
        """The documents named in ``texts`` (a question, and its Chinese rendering)."""
        if len(self.doc_ids) < 2:
            return Route()
        mentions: list[Mention] = []
        for raw in texts:
            if raw:
                mentions.extend(self._mentions(normalize(raw)))
        named = {d for m in mentions for d in m.docs}
        if not mentions or named >= set(self.doc_ids):
            return Route()
        mentions = list(dict.fromkeys(mentions))
        rest = ()
        if len({m.docs for m in mentions}) == 1 and any(_COMPARES.search(t or "") for t in texts):
            rest = tuple(d for d in self.doc_ids if d not in named)
        return Route(tuple(mentions), rest)

    def _mentions(self, text: str) -> list[Mention]:
        text = _DROP.sub(lambda m: " " if m.group(0).isspace() else "", text)
        spans: list[list[tuple[int, int, Name]]] = []
        for occ in self._occurrences(text):
            if occ[2].kind == "period" and _AS_TIME.match(text, occ[1]):
                continue
            if spans:
                gap = text[spans[-1][-1][1]: occ[0]]
                if len(gap.replace(" ", "")) <= _MAX_GAP and not (set(gap) & _SEPARATORS):
                    spans[-1].append(occ)
                    continue
            spans.append([occ])
        out = []
        for span in spans:
            mention = self._resolve(text, span)
            if mention is not None:
                out.append(mention)
        return out

    def _resolve(self, text: str, span: Sequence[tuple[int, int, Name]]) -> Mention | None:
        names = [occ[2] for occ in span]
        score: dict[str, float] = {}
        for name in dict.fromkeys(names):
            for doc in name.docs:
                score[doc] = score.get(doc, 0.0) + KIND_WEIGHT[name.kind]
        best = max(score.values())
        docs = tuple(d for d in self.doc_ids if score.get(d) == best)
        if len(docs) == len(self.doc_ids):
            return None
        if not any(n.kind in STRONG for n in names):
            if not any(n.kind == "head" for n in names) or len(docs) > max(1, len(self.doc_ids) // 2):
                return None
        return Mention(text[span[0][0]: span[-1][1]], docs, tuple(n.text for n in names))
