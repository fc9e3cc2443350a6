"""Cleaning rules: keep the text a reader wants, drop what a web page or archive added.

Every rule is a pattern about *kinds* of noise (pinyin glosses, space-run paragraph
separators, page trailers, licence footers, repeated titles), never a literal from one
file, so the same cleaning serves documents users add later. The original script is
kept: traditional text stays traditional.
"""

from __future__ import annotations

import re
import unicodedata

# A pinyin gloss is a parenthesised, lower-case syllable with a tone mark (or a bare
# syllable made only of pinyin letters) right after a Han character: 國務(wù)院 -> 國務院.
_TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
_SYLLABLE = rf"[bcdfghjklmnpqrstwxyz]{{0,2}}[aeiouüv{_TONED}]{{1,4}}(?:ng|n|r)?"
_PINYIN_GLOSS = re.compile(rf"(?<=[\u3400-\u9fff\uf900-\ufaff])[(（]\s*{_SYLLABLE}\s*[)）]")
# After mojibake the gloss may follow a non-Han character; a tone mark still proves it.
_TONED_GLOSS = re.compile(rf"(?<=\S)[(（]\s*[a-zü]{{0,3}}[{_TONED}][a-zü]{{0,3}}\s*[)）]")

# Debris of a byte-level mojibake next to glosses (002). The page's converter inserted
# glosses by matching GBK *bytes*, sometimes across a character boundary (理 c0ed + 條 976c
# holds ed97 = 項, so "(xiàng)" landed between 97 and 6c); the decoder then lost the stray
# byte, swallowed the "(" with it into one "?" (or U+FFFD), and read the next bytes one
# byte out of step: Han characters that mean nothing, until an ASCII byte (a GBK trail byte
# such as "l" or "W") brings it back in step. The lost byte cannot be recovered, so the
# debris is removed, never guessed at. Each rule needs a sign no normal text has:
_LOST = "[?\ufffd]"  # the lost byte: ASCII "?" or U+FFFD (a real question's full-width "？" never)
_TONED_SYLLABLE = rf"[a-zü]{{0,3}}[{_TONED}][a-zü]{{0,3}}"
# characters read one byte out of step (Han, or private-use code points the decoder made of
# byte pairs no character has)
_SHIFTED = r"[\u3400-\u9fff\uf900-\ufaff\ue000-\uf8ff]{0,8}?"
_STRAY_LETTER = r"[A-Za-z](?![A-Za-z0-9])"  # the ASCII trail byte that ends the shifted run
_GLOSS = rf"[(（]{_TONED_SYLLABLE}[)）]"
# 1. A gloss that lost its "(" to the lost byte: "?xiàng)". A question mark directly followed
#    by a lower-case toned pinyin syllable and a ")" that no "(" opened cannot occur in normal
#    writing (a "?" ends a sentence; pinyin in running text is never closed by a lone ")").
#    After it, the shifted run up to its stray trail letter (with that letter's own gloss),
#    or up to the next such broken gloss, goes too: "?qū)嵭杏欣谏虡I(yè)", "?xiàng)l", "?qū)崙".
_BROKEN_GLOSS = re.compile(
    rf"{_LOST}{_TONED_SYLLABLE}\)(?:{_SHIFTED}{_STRAY_LETTER}(?:{_GLOSS})?|{_SHIFTED}(?={_LOST}{_TONED_SYLLABLE}\)))?"
)
# 2. A Latin letter carrying a toned gloss, "W(xué)", preceded (within 8 characters, no space)
#    by lost bytes: "??茖W(xué)", "?;I(yè)". Glosses annotate Han characters; on a Latin
#    letter one only appears when that letter is the stray trail byte of a character read out
#    of step, and the "?" marks where the step was lost.
_GLOSSED_LETTER = re.compile(rf"{_LOST}+[^\sA-Za-z0-9?？。，,]{{0,8}}?[A-Za-z]{_GLOSS}")

# Runs of no-break / ideographic spaces that a web page used instead of paragraph tags:
# two or more of them in a row mean "new paragraph"; a single one is just a space.
_SPACE_RUN_BREAK = re.compile(r"[ \t]*[\u00a0\u3000\u2002\u2003]{2,}[ \t\u00a0\u3000\u2002\u2003]*")
_INLINE_SPACES = re.compile(r"[ \t\u00a0\u3000\u2002\u2003\u200b\ufeff]+")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ue000-\uf8ff]")  # controls, private use

# Lines that belong to the page around a document, not to the document.
_TRAILER_LINE = re.compile(
    r"^\s*(?:责任编辑|責任編輯|编辑|編輯|校对|校對|来源|來源|转载|轉載|转自|轉自|原标题|原標題)\s*[:：]"
    r"|public\s+domain|copyright|版权所有|版權所有|©"
    r"|本作品(?:是|在|来自|來自)|公有领域|公有領域|维基文库|維基文庫|维基百科|維基百科"
    r"|二维码|二維碼|公众平台|公眾平台|公众号|公眾號|客户端|客戶端|官方微博|分享到|打印本页|关闭窗口|關閉窗口"
    r"|精选(?:专题|文章|视频|图片)|相关(?:阅读|新闻|文章)|相關(?:閱讀|新聞|文章)|上一篇|下一篇",
    re.IGNORECASE,
)
# Header lines added by an archive (site name, navigation) rather than by the issuer.
_HEADER_LINE = re.compile(r"维基文库|維基文庫|自由的图书馆|自由的圖書館|首页\s*[>›]|首頁\s*[>›]|当前位置|當前位置")
_SENTENCE_END = re.compile(r"[。！？!?；;]\s*$")
_JUST_PUNCT = re.compile(r"^[\W_]{1,3}$")
TRAILER_ZONE = 0.35  # page furniture is only looked for in this final share of the lines
HEADER_ZONE = 12  # and in this many leading lines
SHORT_LINE = 24  # a line this short, without sentence punctuation, may be page furniture


def strip_mojibake_debris(text: str) -> str:
    """Remove what a byte-level mojibake left around pinyin glosses (see _BROKEN_GLOSS and
    _GLOSSED_LETTER); it needs the glosses still in place, so it runs before they go."""
    return _GLOSSED_LETTER.sub("", _BROKEN_GLOSS.sub("", text))


def strip_pinyin(text: str) -> str:
    """Pinyin glosses out (國務(wù)院 -> 國務院), and the mojibake debris found beside them."""
    return _TONED_GLOSS.sub("", _PINYIN_GLOSS.sub("", strip_mojibake_debris(text)))


def normalise_spaces(text: str) -> str:
    """Turn space-run separators into paragraph breaks and tidy all other whitespace."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACE_RUN_BREAK.sub("\n\n", text)
    lines = [_INLINE_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _is_furniture(line: str) -> bool:
    """Short label lines (menu items, counters) that carry no sentence."""
    return len(line) <= SHORT_LINE and not _SENTENCE_END.search(line)


def drop_trailer(lines: list[str]) -> list[str]:
    """Cut the page trailer: from the first trailer-like line of the tail block onward.

    The tail block is the run of lines at the end that are blank, trailer-like or short
    furniture; it only counts as a trailer if it holds at least one trailer-like line,
    so a document that simply ends with short lines (an annex list) keeps them.
    """
    zone_start = int(len(lines) * (1 - TRAILER_ZONE))
    cut = None
    for i in range(len(lines) - 1, zone_start - 1, -1):
        line = lines[i]
        if _TRAILER_LINE.search(line):
            cut = i
        elif line and not _is_furniture(line):
            break
    return lines if cut is None else lines[:cut]


def drop_header(lines: list[str]) -> list[str]:
    """Remove archive header lines, lone punctuation and repeated title lines at the top."""
    kept: list[str] = []
    title = next((line for line in lines if line), "")
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if i < HEADER_ZONE and line:
            repeated = line in seen and _is_furniture(line) or (line in seen and len(line) <= 80)
            breadcrumb = line != title and title and title in line and not _SENTENCE_END.search(line)
            if _HEADER_LINE.search(line) or _JUST_PUNCT.match(line) or repeated or breadcrumb:
                continue
            seen.add(line)
        kept.append(line)
    return kept


def clean_text(raw: str) -> str:
    """The full cleaning pipeline; the result is what offsets and citations point into."""
    text = unicodedata.normalize("NFC", raw)
    text = strip_pinyin(text)
    text = normalise_spaces(text)
    lines = drop_header(drop_trailer(text.split("\n")))
    return _MANY_BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
