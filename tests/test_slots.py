"""Support (qa/slots.py): one sentence must hold what the question asks for."""

from __future__ import annotations

import math

import pytest

from qa.language import EN, ZH
from qa.refusal import content_terms
from qa.sentences import split_passage
from qa.slots import asked, best_support, support
from retriever import Hit

ANSWER = "到2025年,建成30所特色化示范性软件学院。"
NO_NUMBER = "建设一批特色化示范性软件学院,深化产教融合。"
OTHER_YEAR = "到2020年,建成30所特色化示范性软件学院。"
QUESTION = "到2025年建成多少所特色化示范性软件学院？"


def _units(text: str, title: str = "规划", section: str = "", header: str = "") -> list:
    hit = Hit(chunk_id="d#1", doc_id="d", title=title, section=section, text=text, start=0, end=len(text), score=1.0)
    return split_passage(hit, 0, 150, 4)


def _frame(question: str, lang: str = ZH, renderings=()):
    df = {"特色化": 1, "示范性": 5, "软件学院": 1, "软件": 9, "学院": 3, "建成": 20}.get
    return asked(question, lang, content_terms(question), renderings,
                 lambda t: math.log(1 + 100 / (1 + (df(t) or 0))), lambda t: df(t) or 0)


def test_the_sentence_with_the_asked_number_and_year_supports_the_question():
    frame = _frame(QUESTION)
    assert frame.years == {"2025"} and frame.quantity
    assert best_support(frame, _units(ANSWER)) > 0.8


@pytest.mark.parametrize("text", [NO_NUMBER, OTHER_YEAR])
def test_a_near_miss_sentence_supports_nothing(text):
    """The topic is there, but not the number (or only for another year): a near miss."""
    assert best_support(_frame(QUESTION), _units(text)) == 0.0


def test_a_year_before_the_sentence_in_its_passage_or_its_section_counts():
    frame = _frame(QUESTION)
    lead = _units("到2025年,主要目标如下。建成30所特色化示范性软件学院。")
    assert support(frame, lead[-1]) > 0.8
    in_section = _units("建成30所特色化示范性软件学院。", section="到2025年发展目标")
    assert best_support(frame, in_section) > 0.8
    after = _units("建成30所特色化示范性软件学院。到2025年,再议。")
    assert support(frame, after[0]) == 0.0  # a year after the sentence does not frame it


def test_an_indicator_row_gets_its_years_from_the_table_header():
    table = "序号 类别 指标 2020 2025 属性\n1 产业 软件学院数量(所) 10 30 预期性"
    frame = _frame("特色化示范性软件学院2025年要达到多少所？")
    row = _units(table)[-1]
    assert row.table_header is not None and "2025" not in row.text
    assert support(frame, row) > 0.1
    assert best_support(frame, _units(table.split("\n")[1])) == 0.0  # the same row without its header


def test_the_questions_own_numbers_are_not_an_answer():
    frame = _frame("专栏18包括多少项任务？")
    assert best_support(frame, _units("专栏18 数字孪生城市建设工程。")) == 0.0
    assert best_support(frame, _units("专栏18 包括6项任务。")) > 0.0


def test_a_question_asking_how_needs_no_number_body_or_date():
    frame = _frame("特色化示范性软件学院要怎样建设？")
    assert not (frame.quantity or frame.body or frame.date)
    assert best_support(frame, _units(NO_NUMBER)) > 0.5


def test_an_english_question_is_matched_through_its_renderings():
    renderings = (("exemplary", ("示范性", "典范")), ("software colleges", ("软件学院",)), ("2025", ("2025",)))
    frame = _frame("How many exemplary software colleges should be built by 2025?", EN, renderings)
    assert frame.quantity and frame.years == {"2025"}
    assert len(frame.units) == 2  # the year is a constraint, not a term
    assert best_support(frame, _units(ANSWER)) == pytest.approx(1.0)
    assert best_support(frame, _units(OTHER_YEAR)) == 0.0
    assert best_support(frame, _units("到2025年,建成30个数据中心。")) == 0.0



def test_a_sentence_naming_other_years_does_not_give_the_asked_year():
    """"从2015年……2020年……达到7.8%" is the 2020 figure: it does not answer for 2015."""
    frame = _frame("2015年特色化示范性软件学院有多少所？")
    passage = "从2015年起推进改革。2020年建成30所特色化示范性软件学院。"
    units = _units(passage)
    assert support(frame, units[-1]) == 0.0
    assert best_support(frame, _units("2015年起,建成30所特色化示范性软件学院。")) > 0.5


@pytest.mark.parametrize("question, lang, answer, near_miss", [
    ("特色化示范性软件学院由哪个部门牵头建设？", ZH, "教育部牵头建设特色化示范性软件学院。", "加快建设特色化示范性软件学院。"),
    ("Which ministry leads the exemplary software colleges?", EN, "教育部牵头建设特色化示范性软件学院。",
     "加快建设特色化示范性软件学院。"),
    ("特色化示范性软件学院是哪一年开始建设的？", ZH, "2019年开始建设特色化示范性软件学院。", "加快建设特色化示范性软件学院。"),
    ("When were the exemplary software colleges first built?", EN, "2019年开始建设特色化示范性软件学院。",
     "加快建设特色化示范性软件学院。"),
])
def test_a_body_or_a_date_asked_for_must_be_named(question, lang, answer, near_miss):
    renderings = (("exemplary", ("示范性",)), ("software colleges", ("软件学院",)))
    frame = _frame(question, lang, renderings if lang == EN else ())
    assert frame.body or frame.date
    assert not frame.quantity
    assert best_support(frame, _units(answer)) > 0.5
    assert best_support(frame, _units(near_miss)) == 0.0
