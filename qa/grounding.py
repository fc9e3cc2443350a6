"""Grounding check for the sentences a local LLM writes, one sentence at a time.

A small model cites well enough but invents figures: it writes 15% where the passage says
10%, or a year that no passage has. So before a sentence is shown, ``Grounder.check``
makes its markers point to listed passages and makes every figure in it occur in a passage
it cites; a sentence that fails is re-cited to a passage holding all its figures, or dropped.

Figures are compared by *value*, not by unit or spelling: "1.2万亿元", "12000亿元" and
"1.2 trillion yuan" are all 1200000000000; "百分之十", "10%", "ten percent" and a bare "10"
are all 10; "三十五颗" is 35 and "二〇二五年" is 2025. A unit slip (10 vs 10%) is rare and
harmless next to an invented number, and matching units too would drop good sentences that
say "10%" where a table says "(%) … 10".

Chinese numerals are numbers only where they read as quantities, so that names never raise
false alarms: a single character (一体化, 统一, 一是, 三大, 五年) is never a figure unless
it follows 百分之; plan names (十三五, 十四五), ordinals (第一, 第十四个五年规划), congress
names (十八大, 十九届), 二十国集团, list labels (（十一）) and the slogan 两个一百年 are
removed first; a digit string without 十/百/千 counts only as a year (二〇二五, 二零二零年).
English number words count from eleven up, or before percent or a scale word (three goals
and Five-Year Plan are not figures, thirty-five satellites is). Digits glued to Latin
letters (5G, IPv6, 1000M, 14th) are names too. cn2an was considered and not used: its
in-text mode turns 十四五 and 第一 into numbers, so the exclusions would be needed anyway,
and the converter below is twenty lines.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

__all__ = ["Checked", "Grounder", "figures"]


@dataclass(frozen=True)
class Checked:
    text: str | None  # the sentence to show, markers rewritten ([n], 1-based), or None when dropped
    status: str  # "ok" | "repaired" | "dropped"
    cited: tuple[int, ...]  # passage numbers the shown sentence cites (1-based)
    missing: tuple[str, ...]  # figures its originally cited passages lack (all, if it cited none)


# -- figures -------------------------------------------------------------------------------

_MARKER = re.compile(r"[\[［【]\s*[0-9０-９][0-9０-９,，、\s]*[\]］】]")
_CN = "零〇一二两三四五六七八九十百千万亿"
_DIGIT = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
_UNIT = {"十": 10, "百": 100, "千": 1000}
# names that look like numbers: ordinals, plan names, list labels, congresses, slogans
_NAMES = re.compile(
    rf"第[{_CN}\d]+"
    rf"|(?<![{_CN}])十[一二三四五六七八九]五(?![{_CN}])"
    rf"|[(（][{_CN}\d]{{1,3}}[)）]"
    rf"|[{_CN}]+(?=届|大|国集团)"
    r"|两个一百年")
_PERCENT_CN = re.compile(rf"百分之([{_CN}]+(?:点[{_CN}]+)?)")
_CN_RUN = re.compile(rf"[{_CN}]+(?:点[零〇一二三四五六七八九]+[万亿]*)?")
_EN = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_EN |= {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)}
_EN_WORD = "(?:" + "|".join(sorted([*_EN, "hundred", "thousand"], key=len, reverse=True)) + ")(?![a-z])"
_EN_FIRST = "(?:" + "|".join(sorted(_EN, key=len, reverse=True)) + ")(?![a-z])"  # not "thousand" alone
_EN_RUN = re.compile(rf"(?<![a-z]){_EN_FIRST}(?:(?:\s+|-)(?:and\s+)?{_EN_WORD})*", re.I)
_EN_AFTER = re.compile(r"\s*(?:%|percent|per\s*cent|hundred|thousand|million|billion|trillion)(?![a-z])", re.I)
_SCALE = {"万亿": 10**12, "千万": 10**7, "百万": 10**6, "亿": 10**8, "万": 10**4, "千": 10**3,
          "trillion": 10**12, "billion": 10**9, "million": 10**6, "thousand": 10**3, "hundred": 100}
_ARABIC = re.compile(
    r"(?<![A-Za-z\d.])(\d{1,3}(?:,\d{3})+(?!\d)|\d+)(\.\d+)?(?:\s*[多余])?"
    r"(?:\s*(万亿|千万|百万|亿|万|千(?![米瓦克帕])|(?:trillion|billion|million|thousand|hundred)(?![a-z])))?",
    re.I)


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s").convert


def _fold(text: str) -> str:
    """Full-width to half-width (NFKC) and traditional to simplified: 【１】→【1】, 萬億→万亿, 十八屆→十八届."""
    return _t2s()(unicodedata.normalize("NFKC", text))


@dataclass(frozen=True)
class _Fig:
    value: str  # canonical value, scale applied: "1200000000000"
    bare: str  # the number as written, scale left off: "1.2"
    scale: str  # "万亿", "million", … or ""


def _canon(d: Decimal) -> str:
    s = format(d.normalize(), "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


def _cn_int(s: str) -> int | None:
    """A Chinese integer numeral (三十五, 两千, 三亿五千万, 二〇二五) or None when it is not one (十四五)."""
    if not any(c in _UNIT or c in "万亿" for c in s):
        return int("".join(str(_DIGIT[c]) for c in s))
    total = section = 0
    digit: int | None = None
    for c in s:
        if c in _DIGIT:
            if digit:  # two digits in a row: 十四五, 三四
                return None
            digit = _DIGIT[c]
        elif c in _UNIT:
            section += (1 if digit is None else digit) * _UNIT[c]
            digit = None
        elif c == "万":
            section = (section + (digit or 0)) * 10**4
            digit = None
        else:  # 亿
            total = (total + section + (digit or 0)) * 10**8
            section, digit = 0, None
    value = total + section + (digit or 0)
    return value or None


def _cn_value(run: str) -> Decimal | None:
    """七点八 → 7.8, 一点二万亿 → 1.2e12, 三十五 → 35."""
    head, _, tail = run.partition("点")
    whole = _cn_int(head) if head else None
    if whole is None:
        return None
    if not tail:
        return Decimal(whole)
    frac = tail.rstrip("万亿")
    scale = _SCALE.get(tail[len(frac):], 1)
    return Decimal(f"{whole}.{''.join(str(_DIGIT[c]) for c in frac)}") * scale


def _cn_replace(m: re.Match) -> str:
    run, text = m.group(), m.string
    if len(run) < 2 or run[0] in "百千万亿":  # 一是, 统一, 千兆, 万一
        return run
    if not any(c in _UNIT or c in "万亿点" for c in run):  # a digit string is a year or nothing
        if not ("〇" in run or "零" in run or (len(run) == 4 and text.startswith("年", m.end()))):
            return run
    value = _cn_value(run)
    return run if value is None else f" {_canon(value)} "


def _en_value(run: str) -> int | None:
    """thirty-five → 35, one hundred and five → 105; None for word lists (one two)."""
    total = cur = 0
    prev = ""
    for w in re.findall(r"[a-z]+", run.lower()):
        if w == "and":
            if prev not in ("hundred", "thousand"):
                return None
            continue
        if w == "hundred":
            cur = (cur or 1) * 100
        elif w == "thousand":
            total, cur = total + (cur or 1) * 1000, 0
        else:
            v = _EN[w]
            if prev in _EN and (_EN[prev] < 20 or v >= 10):
                return None  # "one two", "thirty forty", "twenty eleven"
            cur += v
        prev = w
    return total + cur


def _en_replace(m: re.Match) -> str:
    value = _en_value(m.group())
    if value is None:
        return m.group()
    big = value > 10 or re.search("hundred|thousand", m.group(), re.I)
    if not big and not _EN_AFTER.match(m.string, m.end()):
        return m.group()  # "three goals", "Five-Year Plan"
    return f" {value} "


@lru_cache(maxsize=4096)
def _figs(text: str) -> tuple[_Fig, ...]:
    t = _MARKER.sub(" ", _fold(text))
    t = _NAMES.sub(" ", t)
    t = _PERCENT_CN.sub(lambda m: f" {_canon(v)}% " if (v := _cn_value(m.group(1))) is not None else " ", t)
    t = _CN_RUN.sub(_cn_replace, t)
    t = _EN_RUN.sub(_en_replace, t)
    out: dict[str, _Fig] = {}
    for m in _ARABIC.finditer(t):
        number, frac, scale = m.group(1), m.group(2) or "", (m.group(3) or "").lower()
        if not scale and re.match(r"[A-Za-z]", t[m.end():m.end() + 1]):
            continue  # 5G, 1000M, 14th
        bare = Decimal(number.replace(",", "") + frac)
        fig = _Fig(_canon(bare * _SCALE.get(scale, 1)), _canon(bare), scale)
        out.setdefault(fig.value + "|" + fig.scale, fig)
    return tuple(out.values())


def figures(text: str) -> list[str]:
    """The normalized figure values in ``text`` (markers excluded), in order, each once:
    figures("到2025年达到1.2万亿元，占比百分之十[2]") == ["2025", "1200000000000", "10"]."""
    return list(dict.fromkeys(f.value for f in _figs(text)))


# -- passages --------------------------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]|[a-z0-9]+")
_MIN_SHARED, _MIN_SHARE = 4, 0.4  # see Grounder._closest


def _bigrams(text: str) -> set[tuple[str, str]]:
    """Pairs of neighbouring tokens (a CJK character, or a Latin word or number) within each
    stretch between punctuation; spaces ignored, traditional folded to simplified."""
    text = _fold(_MARKER.sub(" ", text)).lower()
    grams: set[tuple[str, str]] = set()
    for part in re.split(r"[^\w\s]|_", text):
        tokens = _TOKEN.findall(part)
        grams.update(zip(tokens, tokens[1:]))
    return grams


class _Passage:
    def __init__(self, text: str):
        figs = _figs(text)
        self.values = {f.value for f in figs} | {f.bare for f in figs}
        self.unscaled = {f.value for f in figs if not f.scale}
        self.folded = _fold(text).lower()
        self.grams = _bigrams(text)

    def holds(self, f: _Fig) -> bool:
        """The value is here, or the bare number is, with its scale named elsewhere in the
        passage (a table row "在线政务服务实名用户规模(亿) 4 8" holds "8亿")."""
        return f.value in self.values or bool(f.scale) and f.bare in self.unscaled and f.scale in self.folded


# -- the check -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Cluster:
    lead: int  # start of the whitespace before the first marker
    start: int  # first marker
    end: int  # after the last marker
    numbers: tuple[int, ...]


def _clusters(sentence: str) -> list[_Cluster]:
    """Runs of markers separated only by whitespace: "[2][3]", "【1】 [4]"."""
    out: list[_Cluster] = []
    for m in _MARKER.finditer(sentence):
        nums = tuple(int(n) for n in re.findall(r"\d+", unicodedata.normalize("NFKC", m.group())))
        lead = len(sentence[:m.start()].rstrip())
        if out and lead <= out[-1].end:
            last = out.pop()
            out.append(_Cluster(last.lead, last.start, m.end(), last.numbers + nums))
        else:
            out.append(_Cluster(lead, m.start(), m.end(), nums))
    return out


_TAIL = re.compile(r"[\s。！？!?；;.…”’」』\"']*$")


def _render(numbers) -> str:
    return "".join(f"[{n}]" for n in numbers)


def _rewrite(sentence: str, clusters: list[_Cluster], numbers: list[tuple[int, ...]]) -> str:
    """Each cluster replaced by its numbers; an emptied cluster goes with the space before it."""
    out, pos = [], 0
    for c, nums in zip(clusters, numbers):
        out.append(sentence[pos:c.start] + _render(nums) if nums else sentence[pos:c.lead])
        pos = c.end
    return "".join(out) + sentence[pos:]


class Grounder:
    """Checks answer sentences against ``passages`` (index 0 is marker [1]) and counts them."""

    def __init__(self, passages: list[str]):
        self.passages = list(passages)
        self._index = [_Passage(p) for p in self.passages]
        self.kept = self.repaired = self.dropped = 0

    def counts(self) -> dict[str, int]:
        return {"kept": self.kept, "repaired": self.repaired, "dropped": self.dropped}

    def check(self, sentence: str, previous: tuple[int, ...] = ()) -> Checked:
        """Check one generated sentence; ``previous`` is what the last shown sentence cited.

        - Markers naming no listed passage are removed (a repair). Rewriting 【1】 or [1, 2]
          as [1][2], or dropping a repeated number, is formatting and stays "ok".
        - Every figure must be held by one of the cited passages (together, not each).
          Else the sentence is re-cited to the one passage holding all its figures (the
          closest in wording among several), its marker put where the last one was, or
          dropped when no passage holds them all.
        - An unmarked sentence with figures is treated the same way. One without figures is
          cited to the passage it shares enough bigrams with (``_closest``). A sentence with
          no CJK character cannot be judged that way against Chinese passages, so it
          follows ``previous`` (an English aside to the sentence before it); a Chinese one
          that shares too little is commentary the passages do not carry, and is dropped.
        - ``missing`` lists the figures the originally cited passages lack (all of them when
          it cited none), so a log shows what was wrong even when the sentence was repaired.

        Whitespace- or marker-only input is dropped without being counted: it is a
        fragment of the stream, not a sentence the model said."""
        clusters = _clusters(sentence)
        body = _MARKER.sub(" ", sentence)
        if not body.strip():
            return Checked(None, "dropped", (), ())
        numbers = [n for c in clusters for n in c.numbers]
        valid = tuple(dict.fromkeys(n for n in numbers if self._listed(n)))
        figs = _figs(body)
        missing = tuple(dict.fromkeys(f.value for f in figs if not any(self._index[n - 1].holds(f) for n in valid)))
        if valid and not missing:
            seen: set[int] = set()
            per = []
            for c in clusters:
                per.append(tuple(n for n in dict.fromkeys(c.numbers) if self._listed(n) and n not in seen))
                seen.update(per[-1])
            return self._count(_rewrite(sentence, clusters, per), valid, (), len(valid) < len(set(numbers)))
        if figs:
            target = self._holder(figs, body)
        else:
            target = self._closest(body)
            if target is None and not _CJK.search(body):
                target = tuple(dict.fromkeys(n for n in previous if self._listed(n))) or None
        if target is None:
            self.dropped += 1
            return Checked(None, "dropped", (), missing)
        if clusters:
            text = _rewrite(sentence, clusters, [()] * (len(clusters) - 1) + [target])
        else:
            cut = _TAIL.search(sentence).start()
            text = sentence[:cut] + _render(target) + sentence[cut:]
        return self._count(text, target, missing, True)

    def _count(self, text: str, cited: tuple[int, ...], missing: tuple[str, ...], repaired: bool) -> Checked:
        if repaired:
            self.repaired += 1
        else:
            self.kept += 1
        return Checked(text, "repaired" if repaired else "ok", cited, missing)

    def _listed(self, n: int) -> bool:
        return 1 <= n <= len(self.passages)

    def _overlaps(self, body: str) -> list[int]:
        grams = _bigrams(body)
        return [len(grams & p.grams) for p in self._index]

    def _holder(self, figs: tuple[_Fig, ...], body: str) -> tuple[int, ...] | None:
        """The passage holding all the figures; among several, the closest in wording. Else
        two passages that hold them together (each figure in one of them, as the rule asks of
        a sentence's cited passages): a plan's target under "1.信息基础设施进一步完善" and its
        year in the section opening above it ("（五）发展目标。到2020年，……") are two passages."""
        shared = self._overlaps(body)
        holders = [i for i, p in enumerate(self._index) if all(p.holds(f) for f in figs)]
        if holders:
            return (max(holders, key=lambda i: (shared[i], -i)) + 1,)
        n = len(self._index)
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)
                 if all(self._index[i].holds(f) or self._index[j].holds(f) for f in figs)]
        if not pairs:
            return None
        i, j = max(pairs, key=lambda ij: (shared[ij[0]] + shared[ij[1]], -ij[0], -ij[1]))
        return (i + 1, j + 1)

    def _closest(self, body: str) -> tuple[int, ...] | None:
        """The passage sharing the most bigrams with a figure-free sentence, when it shares at
        least 4 and at least 40% of the sentence's bigrams. Fewer than 4 are the common words
        of every policy text (发展, 建设, 推进); 40% means the sentence takes its wording from
        the passage, while a paraphrase of it still reaches that (verbatim is near 100%)."""
        grams = _bigrams(body)
        if not grams or not self._index:
            return None
        shared = self._overlaps(body)
        best = max(range(len(shared)), key=lambda i: (shared[i], -i))
        if shared[best] >= _MIN_SHARED and shared[best] >= _MIN_SHARE * len(grams):
            return (best + 1,)
        return None
