"""QA building blocks that need no index: sentence units, language, follow-up rules, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from qa.calibrate import choose
from qa.citations import CitationBuilder
from qa.followup import FollowUpRewriter, user_turns
from qa.language import EN, UNSUPPORTED, ZH, ZH_HANT, question_language
from qa.refusal import content_terms
from qa.sentences import split_passage
from retriever import Hit

TABLE = ("“十四五”信息化发展主要指标\n\n序号 类别 指标 2020 2025 属性\n"
         "2 5G用户普及率(%) 15 56 预期性\n3 1000M及以上速率的光纤接入用户\n\n(万户)\n\n640 6000 预期性\n"
         "4 IPv6活跃用户数(亿) 4.62 8 预期性\n\n注:带*的为2019年数据。")
PROSE = ("(二)北斗系统建设应用行动。\n\n行动目标:到2018年,面向“一带一路”沿线及周边国家提供基本服务;"
         "到2020年,建成由35颗卫星组成的北斗全球卫星导航系统,为全球用户提供服务。PUE值不高于1.5。")


def _hit(text: str, start: int = 100) -> Hit:
    return Hit(chunk_id="d#1", doc_id="d", title="t", section="s", text=text, start=start, end=start + len(text),
               score=1.0)


def test_sentence_units_are_verbatim_and_split_on_semicolons_not_decimals():
    units = split_passage(_hit(PROSE), 0, 150, 4)
    assert all(PROSE[u.start:u.end] == u.text for u in units)
    texts = [u.text for u in units]
    assert "到2020年,建成由35颗卫星组成的北斗全球卫星导航系统,为全球用户提供服务。" in texts
    assert "行动目标:到2018年,面向“一带一路”沿线及周边国家提供基本服务" in texts  # the ";" is left off
    assert "PUE值不高于1.5。" in texts  # "1.5" is not a sentence end
    heading = next(u for u in units if u.text.startswith("(二)"))
    assert not heading.quotable


def test_wrapped_table_rows_are_joined_and_keep_their_heading_row():
    units = split_passage(_hit(TABLE), 0, 150, 4)
    rows = {u.text.split()[0]: u for u in units if u.is_table_row}
    assert rows["3"].text == "3 1000M及以上速率的光纤接入用户\n\n(万户)\n\n640 6000 预期性"
    assert rows["4"].text == "4 IPv6活跃用户数(亿) 4.62 8 预期性"
    assert rows["4"].table_header.text == "序号 类别 指标 2020 2025 属性"
    assert not rows["序号"].quotable  # column headings answer nothing on their own
    assert not next(u for u in units if u.text.startswith("“十四五”")).quotable  # a title line
    assert all(TABLE[u.start:u.end] == u.text for u in units)


def test_citation_builder_numbers_by_first_use_and_offsets_are_document_offsets():
    a, b = _hit("甲乙丙。丁戊己。", 10), Hit(**{**_hit("庚辛。", 50).__dict__, "chunk_id": "d#2"})
    builder = CitationBuilder()
    assert builder.quote(b, 0, 3) == 1 and builder.quote(a, 4, 8) == 2 and builder.quote(a, 0, 4) == 2
    first, second = builder.citations()
    assert (first.n, first.hit.chunk_id) == (1, "d#2")
    assert second.quote == "甲乙丙。丁戊己。" and (second.quote_start, second.quote_end) == (10, 18)


@pytest.mark.parametrize("text, lang", [
    ("十四五规划对5G用户普及率提出了什么目标?", ZH), ("2020年數字經濟核心產業增加值佔GDP的比重是多少？", ZH_HANT),
    ("What role does the 车联网 demonstration play?", EN), ("Привет", UNSUPPORTED), ("🙂", UNSUPPORTED),
    ("2025?", ZH)])
def test_question_language(text, lang):
    assert question_language(text) == lang


@pytest.fixture(scope="module")
def rewriter():
    return FollowUpRewriter(content_terms, max_chars=24, max_turns=4)


@pytest.mark.parametrize("history, question, query", [
    ([("十四五规划对5G用户普及率提出了什么目标?", "…")], "那IPv6呢?", "十四五规划对IPv6提出了什么目标?"),
    ([("What 5G user penetration rate is expected by 2025?", "…")], "What about 2020?",
     "What 5G user penetration rate is expected by 2020?"),
    ([("国家十三五规划对政务服务提出了什么目标?", "…")], "那四川省呢?", "国家十三五规划对政务服务提出了什么目标? 四川省"),
    ([("北斗系统到2020年的目标是什么?", "…")], "为什么?", "北斗系统到2020年的目标是什么? 为什么?"),
    ([("北斗系统到2020年的目标是什么?", "…"), ("那2018年呢?", "…")], "它由多少颗卫星组成?",
     "北斗系统到2018年的目标是什么? 它由多少颗卫星组成?"),
    ([("十四五规划对5G用户普及率提出了什么目标?", "…")], "到2020年北斗系统由多少颗卫星组成?",
     "到2020年北斗系统由多少颗卫星组成?"),
    ([], "那IPv6呢?", "那IPv6呢?"),
])
def test_followup_rewriting(rewriter, history, question, query):
    assert rewriter.rewrite(question, history).query == query


def test_history_shapes():
    pairs = [("q1", "a1"), ["q2", "a2"]]
    messages = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                {"role": "user", "content": ("file.pdf",)}, {"role": "user", "content": [{"type": "text", "text": "q2"}]}]
    assert user_turns(pairs) == user_turns(messages) == ["q1", "q2"]
    assert user_turns(None) == [] and user_turns([42, "x"]) == []


def test_calibration_picks_the_separating_thresholds_within_the_false_refusal_limit():
    coverage = np.array([0.9, 0.8, 0.7, 0.6, 0.95, 0.3, 0.2, 0.65])
    cosine = np.array([0.9, 0.9, 0.9, 0.9, 0.8, 0.9, 0.9, 0.9])
    cross = np.array([False] * 4 + [True] + [False] * 3)
    answerable = np.array([True] * 5 + [False] * 3)
    c = choose(coverage, cosine, cross, answerable, max_false=0.0)
    assert c.false_refusal == 0.0 and c.refusal_accuracy == pytest.approx(2 / 3)
    assert 0.3 < c.evidence <= 0.6 and c.cosine <= 0.9
    free = choose(coverage, cosine, cross, answerable, max_false=None)
    assert free.balanced >= c.balanced


class _CountingEmbedder:
    model_id, dim = "fake-model", 3

    def __init__(self):
        self.calls: list[list[str]] = []

    def encode_passages(self, texts, progress=False, urgent=False):
        self.calls.append(list(texts))
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)


def test_sentence_vectors_embed_each_text_once_and_persist(tmp_path):
    from qa.sentence_vectors import SentenceVectors

    emb = _CountingEmbedder()
    vectors = SentenceVectors(emb, str(tmp_path))
    first = vectors.encode(["甲", "乙乙", "甲"])
    again = vectors.encode(["乙乙", "丙丙丙"])
    assert emb.calls == [["甲", "乙乙"], ["丙丙丙"]]
    assert first[0].tolist() == first[2].tolist() == [1, 1, 0] and again[0].tolist() == [2, 1, 0]
    assert vectors.save().is_file()
    reloaded = SentenceVectors(_CountingEmbedder(), str(tmp_path))
    assert len(reloaded) == 3 and reloaded.encode(["丙丙丙"]).tolist() == [[3, 1, 0]]
    assert reloaded.embedder.calls == []
