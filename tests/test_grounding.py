"""The grounding check on LLM answer sentences: figures must come from a cited passage."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.grounding import Checked, Grounder, figures

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def _lines(name: str) -> list[str]:
    return (SEEDS / name).read_text(encoding="utf-8").splitlines()


def _line(name: str, needle: str) -> str:
    return next(line for line in _lines(name) if needle in line)


def _between(name: str, start: str, end: str) -> str:
    text = (SEEDS / name).read_text(encoding="utf-8")
    i = text.index(start)
    return text[i : text.index(end, i)]


PLAN = "001_f21eb84e8a85de7c.txt"  # "十四五" national informatization plan
ROW = _between(PLAN, "9 产业转型 数字经济核心产业增加值占GDP比", "10 关键业务环节")  # table row: 7.8 → 10
PROSE = _line(PLAN, "数字经济核心产业增加值占GDP比重达到7.8%")  # 2020, 7.8%, 37.21万亿元
BEIDOU = _line("000_23acc2fe7a7ca56c.txt", "35颗卫星")  # 2018, 2020, 35颗
USERS = _line(PLAN, "在线政务服务实名用户规模(亿)")  # "15 在线政务服务实名用户规模(亿) 4 8 预期性"


@pytest.fixture
def g() -> Grounder:
    return Grounder([ROW, PROSE, BEIDOU])  # markers [1] [2] [3]


def test_seed_passages_are_what_the_tests_assume():
    assert "7.8 10" in ROW and "2020" not in ROW
    assert {"2020", "7.8", "37210000000000"} <= set(figures(PROSE))
    assert figures(BEIDOU) == ["2018", "2020", "35"]


# -- figures ---------------------------------------------------------------------------------

@pytest.mark.parametrize("a, b", [
    ("1.2万亿元", "12000亿元"),
    ("5亿", "500000000"),
    ("1.2 trillion yuan", "1.2万亿元"),
    ("100 million", "1亿"),
    ("35 thousand", "3.5万"),
    ("百分之十", "10%"),
    ("ten percent", "10 percent"),
    ("三十五颗", "35颗"),
    ("thirty-five satellites", "35 satellites"),
    ("两千家", "2000家"),
    ("三亿五千万", "350000000"),
    ("七点八", "7.8"),
    ("二〇二五年", "2025年"),
    ("２０２５年", "2025"),
    ("１０％", "10%"),
    ("1,000", "1，000"),
    ("1,000", "1000"),
    ("37.21萬億元", "37.21万亿元"),
])
def test_spellings_of_one_value_normalize_alike(a, b):
    assert figures(a) and figures(a) == figures(b)


def test_figures_of_a_sentence_in_order_without_markers():
    assert figures("到2025年达到1.2万亿元，占比百分之十[2]【3】") == ["2025", "1200000000000", "10"]
    assert figures("比重从7.8%提高到10%[1][2]。") == ["7.8", "10"]
    assert figures("3-5年内") == ["3", "5"]
    assert figures("2016-07-29") == ["2016", "7", "29"]


@pytest.mark.parametrize("text", [
    "“十四五”时期", "十三五规划", "《“十二五”规划》", "第一", "跃居世界第二", "一是加强统筹，二是推进一体化",
    "共建一带一路，统一标准", "党的十八大以来", "十九届四中全会", "二十国集团", "两个一百年", "（十一）加强安全",
    "三大任务和五年规划", "5G、IPv6和1000M光纤", "the 14th Five-Year Plan sets three goals", "一两年",
])
def test_names_and_ordinals_are_not_figures(text):
    assert figures(text) == []


def test_names_in_seed_text_are_not_figures_but_real_figures_are():
    assert figures(_line(PLAN, "第十四个五年规划和2035年")) == ["2035"]  # not 14, not 5
    assert "100" not in figures(_lines("002_236f301bd7d0f271.txt")[8])  # 兩個一百年 (traditional)
    assert figures("“十四五”期间到2025年建成三十五颗卫星") == ["2025", "35"]


# -- sentences with markers ------------------------------------------------------------------

def test_supported_sentence_is_kept_verbatim(g):
    s = "2020年数字经济核心产业增加值占GDP比重达到7.8%[2]。"
    assert g.check(s) == Checked(s, "ok", (2,), ())
    english = "By 2020, BeiDou was to have 35 satellites [3]."
    assert g.check(english) == Checked(english, "ok", (3,), ())


def test_invented_number_is_dropped(g):
    out = g.check("数字经济核心产业增加值占GDP比重的目标为15%[1]。")
    assert out == Checked(None, "dropped", (), ("15",))
    out = g.check("到2030年，建成由35颗卫星组成的北斗全球卫星导航系统[3]。")
    assert (out.text, out.status, out.missing) == (None, "dropped", ("2030",))
    assert g.check("北斗系统由三十六颗卫星组成[3]。").missing == ("36",)


def test_wrong_citation_is_moved_to_the_passage_holding_all_figures(g):
    # the table row holds 7.8 but not 2020: only the prose passage holds both
    out = g.check("2020年数字经济核心产业增加值占GDP比重达到7.8%[3]。")
    assert out == Checked("2020年数字经济核心产业增加值占GDP比重达到7.8%[2]。", "repaired", (2,), ("7.8",))
    # the new marker takes the last marker's place (after the full stop), earlier ones go with their space
    out = g.check("The share reached 7.8 percent [3] in 2020.[3]")
    assert (out.text, out.cited) == ("The share reached 7.8 percent in 2020.[2]", (2,))
    # the row [1] holds 7.8 and BeiDou [3] holds 2020: together they ground the sentence as cited
    assert g.check("The share reached 7.8 percent in 2020.[1][3]").status == "ok"


def test_multiplier_and_scale_words_match_the_passage(g):
    assert g.check("2020年电子商务交易额达到372100亿元[2]。").status == "ok"
    assert g.check("E-commerce transactions reached 37.21 trillion yuan in 2020 [2].").status == "ok"
    assert g.check("E-commerce transactions reached 37.21 billion yuan in 2020 [2].").status == "dropped"


def test_chinese_numerals_and_full_width_digits(g):
    assert g.check("到二〇二〇年，建成由三十五颗卫星组成的北斗系统[3]。").status == "ok"
    out = g.check("到２０２０年建成由３５颗卫星组成的北斗系统【３】。")
    assert out == Checked("到２０２０年建成由３５颗卫星组成的北斗系统[3]。", "ok", (3,), ())
    assert g.check("By 2020, BeiDou was to have thirty-five satellites [3].").status == "ok"


def test_plan_names_raise_no_false_alarm(g):
    out = g.check("“十四五”期间，北斗系统建成后为全球用户提供服务[3]。")
    assert out.status == "ok"


def test_invalid_markers_are_removed(g):
    out = g.check("2020年数字经济核心产业增加值占GDP比重达到7.8%[2][7]。")
    assert out == Checked("2020年数字经济核心产业增加值占GDP比重达到7.8%[2]。", "repaired", (2,), ())
    assert g.check("北斗系统为全球用户提供服务 [3, 0]。").text == "北斗系统为全球用户提供服务 [3]。"
    out = g.check("到2020年建成由35颗卫星组成的北斗系统 [9]。")  # only an invalid marker: re-cited
    assert (out.text, out.status, out.cited) == ("到2020年建成由35颗卫星组成的北斗系统 [3]。", "repaired", (3,))
    out = g.check("北斗系统为全球用户提供服务 [0]。")  # figure-free: cited to the closest passage, in place
    assert (out.text, out.status) == ("北斗系统为全球用户提供服务 [3]。", "repaired")


def test_marker_format_is_normalized_without_counting_a_repair(g):
    assert g.check("北斗系统为全球用户提供服务[3][3]。") == Checked("北斗系统为全球用户提供服务[3]。", "ok", (3,), ())
    assert g.check("数字经济比重7.8%【1，2】。") == Checked("数字经济比重7.8%[1][2]。", "ok", (1, 2), ())


def test_figures_may_come_from_several_cited_passages(g):
    out = g.check("2020年数字经济核心产业增加值占GDP比重为7.8%，目标为10%[1][2]。")
    assert out.status == "ok" and out.cited == (1, 2)
    # cited to the prose alone (no 10 there), it is re-cited to the two that hold its figures together
    out = g.check("2020年数字经济核心产业增加值占GDP比重为7.8%，目标为10%[2]。")
    assert (out.status, out.cited, out.missing) == ("repaired", (1, 2), ("10",))


def test_a_target_and_its_year_in_two_passages_are_cited_together():
    # Sichuan's plan: the 2025-free target list under "1.信息基础设施进一步完善" and the year in the
    # opening of the section above it are two passages; the model cited only the year's
    target = _between("004_14d6703fe5634065.txt", "1.信息基础设施进一步完善。", "2.电子信息产业规模稳步增长")
    opening = _between("004_14d6703fe5634065.txt", "(五)发展目标。", "1.信息基础设施进一步完善。")
    assert "2020" not in target and "65%" in target and "2020" in opening
    g = Grounder([target, opening])
    out = g.check("Sichuan plans to reach a fixed-broadband household penetration of 65% by 2020. [2]")
    assert (out.status, out.cited) == ("repaired", (1, 2)) and out.text.endswith("[1][2]"), out
    assert g.check("Sichuan plans a penetration of 70% by 2020. [2]").status == "dropped"  # 70 is in neither


def test_table_header_scale_covers_the_cells():
    g = Grounder([USERS])
    assert g.check("在线政务服务实名用户规模目标为8亿[1]。").status == "ok"  # "(亿) 4 8"
    assert g.check("在线政务服务实名用户规模目标为8万亿[1]。").status == "dropped"  # no 万亿 there


# -- sentences without markers ---------------------------------------------------------------

def test_unmarked_sentence_with_figures_is_cited_to_its_passage(g):
    out = g.check("2020年电子商务交易额达到37.21万亿元。")
    assert out == Checked("2020年电子商务交易额达到37.21万亿元[2]。", "repaired", (2,), ("2020", "37210000000000"))
    assert g.check("2020年电子商务交易额达到40万亿元。").status == "dropped"


def test_unmarked_figure_free_sentence_goes_to_the_closest_passage(g):
    out = g.check("农业数字化加快发展，精准作业和数字化管理大面积推广。")
    assert out == Checked("农业数字化加快发展，精准作业和数字化管理大面积推广[2]。", "repaired", (2,), ())
    assert g.check("总之，这些举措意义重大。").status == "dropped"  # nothing in common with any passage


def test_traditional_passage_is_matched_after_folding():
    g = Grounder(["北斗系统为全球用户提供服务。", "國家信息化發展戰略綱要提出，網絡強國建設邁出堅實步伐，電子商務交易額達到37.21萬億元。"])
    assert g.check("网络强国建设迈出坚实步伐。").cited == (2,)
    assert g.check("电子商务交易额达到37.21万亿元[2]。").status == "ok"


def test_unmarked_english_sentence_follows_the_previous_citation(g):
    s = "This reflects the priority given to informatization."
    assert g.check(s, previous=(3,)) == Checked("This reflects the priority given to informatization[3].",
                                               "repaired", (3,), ())
    assert g.check(s).status == "dropped"
    assert g.check(s, previous=(9,)).status == "dropped"  # no listed passage
    assert g.check("总之，这些举措意义重大。", previous=(3,)).status == "dropped"  # Chinese is judged by its words


def test_counters():
    g = Grounder([PROSE, BEIDOU])
    g.check("2020年电子商务交易额达到37.21万亿元[1]。")  # kept
    g.check("到2020年建成由35颗卫星组成的北斗系统[1]。")  # re-cited to [2]
    g.check("北斗系统为全球用户提供服务[2][5]。")  # invalid marker removed
    g.check("到2025年建成由50颗卫星组成的北斗系统[2]。")  # invented: dropped
    assert g.check("[1]") == Checked(None, "dropped", (), ())  # a fragment, not counted
    assert g.check("  \n") == Checked(None, "dropped", (), ())
    assert g.counts() == {"kept": 1, "repaired": 2, "dropped": 1}
    assert (g.kept, g.repaired, g.dropped) == (1, 2, 1)
