"""Mojibake debris beside pinyin glosses is removed, and nothing else (issue 11, section 4).

002 was converted by a tool that inserted pinyin glosses by matching GBK bytes, sometimes
across a character boundary; decoding then lost a byte ("?"), swallowed the gloss's "(",
and read a few characters one byte out of step ("地理?xiàng)l件", "??茖W(xué)"). The rules
in ``ingest.clean`` remove that debris; these tests pin exactly what they remove.
"""

from __future__ import annotations

import pytest

import ingest.clean as clean
from eval.normalize import normalize

from conftest import SEEDS

SEED_IDS = ["000_23acc2fe7a7ca56c", "001_f21eb84e8a85de7c", "002_236f301bd7d0f271", "003_b8f887ea6ba329fa",
            "004_14d6703fe5634065"]
# What the cleaned 002 held before the rules, each piece between the intact text around it.
DEBRIS_002 = [
    ("地理", "?xiàng)l", "件惡劣"),  # 條件: the gloss of 項 (ed97) landed inside 條 (976c)
    ("電子文件管理", "?xiàng)l", "例"),
    ("無序", "?yàn)E", "用的現象"),  # 濫用
    ("軍事訓練向", "?qū)崙?zhàn)", "化轉變"),  # 實戰化
    ("信息化領域", "?qū)嵭杏欣谏虡I", "運作"),  # 實行有利於商業 read one byte out of step
    ("空間基礎設施", "??茖W", "規劃和利用"),  # 科學
    ("普遍服務水平", "??茖W", "靈活選擇"),
    ("文化生產的規", "?;I", "化水平"),
]


def _raw(seed: str) -> str:
    return (SEEDS / f"{seed}.txt").read_text(encoding="utf-8")


def _clean_without_debris_rules(raw: str, monkeypatch) -> str:
    with monkeypatch.context() as m:
        m.setattr(clean, "strip_mojibake_debris", lambda text: text)
        return clean.clean_text(raw)


def test_debris_gone_from_002(seed_docs):
    text = seed_docs["002_236f301bd7d0f271.txt"].text
    assert "?" not in text and "\ufffd" not in text
    for before, debris, after in DEBRIS_002:
        assert debris not in text
        assert before + after in text, (before, after)
    for fragment in ["xiàng)", "yàn)", "qū)", "zhàn)", "茖W", "嵭杏欣", "崙"]:
        assert fragment not in text


def test_exactly_the_debris_is_removed_from_002(monkeypatch):
    raw = _raw("002_236f301bd7d0f271")
    before = _clean_without_debris_rules(raw, monkeypatch)
    expected = before
    for left, debris, right in DEBRIS_002:
        assert left + debris + right in expected, debris
        expected = expected.replace(left + debris + right, left + right, 1)
    assert clean.clean_text(raw) == expected
    assert len(before) - len(expected) == sum(len(d) for _, d, _ in DEBRIS_002) == 54


@pytest.mark.parametrize("seed", [s for s in SEED_IDS if not s.startswith("002")])
def test_other_seeds_unchanged(seed, monkeypatch):
    raw = _raw(seed)
    assert clean.strip_mojibake_debris(raw) == raw
    assert clean.clean_text(raw) == _clean_without_debris_rules(raw, monkeypatch)


@pytest.mark.parametrize("text", [
    "这是问题吗?是的。",  # a question mark ends a sentence
    "What?(Tbps) is not pinyin.",  # untoned parenthesis after "?"
    "是否达标?(见附表)",
    "他说:“为什么?”然后离开。",
    "网速达到48太比特/秒(Tbps),支撐",
    "国务(wù)院",  # an intact gloss is the gloss rule's business, not debris
    "A股(gǔ)市场",  # a glossed character after a Latin letter, but no lost byte before it
    "对吗? Xiàng先生说",
])
def test_rules_leave_normal_text_alone(text):
    assert clean.strip_mojibake_debris(text) == text


def test_each_rule_on_its_own():
    assert clean.strip_mojibake_debris("地理?xiàng)l件") == "地理件"
    assert clean.strip_mojibake_debris("設施??茖W(xué)規劃") == "設施規劃"
    assert clean.strip_mojibake_debris("向?qū)崙?zhàn)化") == "向化"
    # the replacement character counts as a lost byte as well
    assert clean.strip_mojibake_debris("無序\ufffdyàn)E用") == "無序用"
    # the shifted run is bounded: a letter further away than 8 characters is not taken
    assert clean.strip_mojibake_debris("甲?zhàn)一二三四五六七八九十A股") == "甲一二三四五六七八九十A股"


def test_eval_matching_sees_the_same_text(seed_docs):
    """Evidence spans copied from the raw file normalize to text found in the cleaned document."""
    span = "居住分散、位置偏遠(yuǎn)、地理?xiàng)l件惡劣的地區(qū)"
    assert normalize(span) in normalize(seed_docs["002_236f301bd7d0f271.txt"].text)
