"""Which language a question is in, and the assistant's own words in that language.

The assistant writes very little text of its own (refusals, input errors, a lead-in), but
what it writes must be in the asker's language: simplified Chinese, traditional Chinese
or English. Anything else is "unsupported": the corpus and the embedding model are
Chinese/English, so an Arabic-only or emoji-only question cannot be answered honestly.
"""

from __future__ import annotations

import re
import unicodedata

from ingest.language import HANT_SHARE, to_simplified

ZH, ZH_HANT, EN, UNSUPPORTED = "zh", "zh-Hant", "en", "unsupported"

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
# One Han character carries about a word; an English word is about four letters. So an
# English question quoting a Chinese term ("the 车联网 demonstration") stays English.
LATIN_PER_HAN = 4


def question_language(text: str) -> str:
    """zh | zh-Hant | en for a question, or "unsupported" when it has letters of neither script.

    A question with no letters at all (only digits, e.g. "2025?") is treated as Chinese,
    the corpus language, so it is still searched.
    """
    han = _HAN.findall(text)
    latin = _LATIN.findall(text)
    other = [ch for ch in text if ch.isalpha() and not _HAN.match(ch) and not _LATIN.match(ch)
             and unicodedata.category(ch).startswith("L")]
    if not han and not latin:
        if other or not any(ch.isdigit() for ch in text):
            return UNSUPPORTED
        return ZH
    if han and len(han) * LATIN_PER_HAN >= len(latin):
        joined = "".join(han)
        changed = sum(a != b for a, b in zip(joined, to_simplified(joined)))
        return ZH_HANT if changed / len(han) > HANT_SHARE else ZH
    return EN


MESSAGES: dict[str, dict[str, str]] = {
    "refusal": {
        ZH: "文档中没有找到这个问题的答案。",
        ZH_HANT: "文件中沒有找到這個問題的答案。",
        EN: "The documents do not cover this question.",
    },
    "related": {
        ZH: "以下段落可能相关：",
        ZH_HANT: "以下段落可能相關：",
        EN: "Possibly related passages:",
    },
    "empty": {
        ZH: "问题是空的，请输入一个问题。",
        ZH_HANT: "問題是空的，請輸入一個問題。",
        EN: "The question is empty; please type a question.",
    },
    "unsupported": {
        ZH: "目前只支持中文（简体或繁体）和英文的问题。",
        ZH_HANT: "目前只支援中文（簡體或繁體）和英文的問題。",
        EN: "Only questions in Chinese (simplified or traditional) or English are supported.",
    },
    "truncated": {
        ZH: "（问题过长，只使用了前 {n} 个字符。）",
        ZH_HANT: "（問題過長，只使用了前 {n} 個字元。）",
        EN: "(The question was too long; only its first {n} characters were used.)",
    },
    "bad_k": {
        ZH: "检索段落数 k 必须是 1 到 {max_k} 之间的整数。",
        ZH_HANT: "檢索段落數 k 必須是 1 到 {max_k} 之間的整數。",
        EN: "The number of passages k must be an integer from 1 to {max_k}.",
    },
    "lead_in": {
        ZH: "",
        ZH_HANT: "",
        EN: "From the documents (quoted in Chinese): ",
    },
}


def message(key: str, lang: str, **values: object) -> str:
    """The assistant's text for ``key`` in ``lang``; unsupported questions get the bilingual form."""
    table = MESSAGES[key]
    if lang in table:
        return table[lang].format(**values)
    return f"{table[ZH].format(**values)} / {table[EN].format(**values)}"
