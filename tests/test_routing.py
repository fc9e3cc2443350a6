"""Document routing: questions that name documents (title, short name, issuer, plan period,
province; simplified, traditional or English) search those documents first."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from retriever.routing import Route, Router, document_names

ROOT = Path(__file__).resolve().parents[1]
D000, D001, D002, D003, D004 = (
    "000_23acc2fe7a7ca56c.txt", "001_f21eb84e8a85de7c.txt", "002_236f301bd7d0f271.txt",
    "003_b8f887ea6ba329fa.txt", "004_14d6703fe5634065.txt",
)


def _seed_documents():
    meta = json.loads((ROOT / "seeds" / "metadata.json").read_text(encoding="utf-8"))
    return [SimpleNamespace(doc_id=k, title=v["title"], meta=v) for k, v in meta.items() if not k.startswith("_")]


@pytest.fixture(scope="module")
def router():
    return Router.from_documents(_seed_documents())


# -- names come from the metadata, by rule ------------------------------------------------
def test_names_are_derived_from_title_issuer_period_and_place():
    names = dict(document_names(D004, "四川省“十三五”信息化规划（川府发〔2017〕62号）",
                                {"issuer": "四川省人民政府"}))
    assert names["四川省十三五信息化规划"] == "title"  # quotes and the （…） note dropped
    assert names["十三五"] == "period"
    assert names["四川"] == "place" and names["四川省"] == "place"
    assert names["四川省人民政府"] == "issuer"
    assert names["规划"] == "head"
    names = dict(document_names(D003, "工信部印发《信息化发展规划》", {"issuer": "工业和信息化部"}))
    assert names["工信部"] == "issuer" and names["工业和信息化部"] == "issuer"
    assert names["信息化发展规划"] == "title"


def test_issuer_aliases_link_title_and_metadata(router):
    assert ("工信部", "工业和信息化部") in router.aliases


# -- one document named ----------------------------------------------------------------------
@pytest.mark.parametrize("question, expected", [
    ("四川规划为什么鼓励中小企业上云、使用云服务？", (D004,)),
    ("四川省“十三五”信息化规划的发文字号和印发日期是什么？", (D004,)),
    ("工信部规划由哪个部门牵头建立统计监测机制？", (D003,)),
    ("工信部規劃提出到2015年固定寬帶接入用戶要超過多少？", (D003,)),  # traditional
    ("《國家信息化發展戰略綱要》是在哪一份舊戰略的基礎上調整而來的？", (D002,)),
    ("綱要鼓勵有條件的地區探索開展哪些權益的網上交易？", (D002,)),  # short name, traditional
    ("战略纲要认为我国信息化发展存在哪些问题？", (D002,)),
    ("“十四五”国家信息化规划是根据哪些上位文件编制的？", (D001,)),
    ("国家“十三五”信息化规划的优先行动有哪些？", (D000,)),  # 国家 + 十三五: not Sichuan's
])
def test_a_named_document_is_routed(router, question, expected):
    assert router.route(question).doc_ids == expected


def test_a_period_shared_by_two_documents_names_both(router):
    # “十三五” alone names the national plan (000) and Sichuan's (004)
    assert set(router.route("按照“十三五”规划，5G何时商用？").doc_ids) == {D000, D004}


@pytest.mark.parametrize("question", [
    "规划为什么提倡对数字产品做人性化设计？",  # 规划 alone: four of five documents
    "从国家战略角度看，为什么要建设数字中国？",  # title words without a document type
    "推进信息化发展的重点是什么？",
    "“十三五”期间对新建数据中心的PUE提出了什么上限？",  # a period as a time, not a plan
    "网络扶贫行动计划到2020年实现多少个贫困县通网？",
])
def test_generic_words_route_nowhere(router, question):
    assert not router.route(question)


def test_a_name_of_every_document_routes_nowhere():
    docs = [SimpleNamespace(doc_id=f"d{i}", title=f"四川省{t}规划", meta={}) for i, t in enumerate(["交通", "教育"])]
    router = Router.from_documents(docs)
    assert not router.route("四川规划提出了什么？")  # names both: no preference
    assert router.route("四川省教育规划提出了什么？").doc_ids == ("d1",)


def test_english_names_route_through_the_chinese_rendering(router):
    route = router.route("What does Sichuan's plan say about IoT?", "四川 四川省 规划 物联网")
    assert route.doc_ids == (D004,)


def test_two_documents_named_separately_are_two_groups(router):
    route = router.route("国家“十三五”规划和四川规划在帮助少数民族群众使用移动终端方面有什么相同的措施？")
    assert route.groups == ((D000,), (D004,))
    route = router.route("工信部《信息化發展規劃》和「十三五」國家信息化規劃分別對IPv6提出了什麼目標？")
    assert route.groups == ((D003,), (D000,))


def test_uploaded_documents_are_named_by_their_titles():
    docs = _seed_documents() + [SimpleNamespace(
        doc_id="uploads/gd.pdf", title="广东省“数字政府”建设总体规划（2018—2020年）", meta={})]
    router = Router.from_documents(docs)
    assert router.route("广东省数字政府建设总体规划提出了哪些目标？").doc_ids == ("uploads/gd.pdf",)
    assert router.route("广东的规划提出了什么？").doc_ids == ("uploads/gd.pdf",)


def test_a_single_document_index_never_routes():
    router = Router.from_documents(_seed_documents()[:1])
    assert not router.route("国家“十三五”信息化规划")


# -- retrieval prefers the named documents ---------------------------------------------------------
def test_sichuan_question_is_answered_from_sichuan(retriever):
    route = retriever.route("四川规划在总结问题时，对全省网络安全状况是怎么评价的？")
    assert route.doc_ids == (D004,)
    hits = retriever.search("四川规划在总结问题时，对全省网络安全状况是怎么评价的？", k=5)
    assert hits[0].doc_id == D004
    assert sum(h.doc_id == D004 for h in hits) >= 4


def test_comparison_gets_the_best_passage_of_each_named_document(retriever):
    question = "国家“十三五”信息化规划和四川省“十三五”信息化规划在“互联网+政务服务”上提出了什么共同目标？"
    hits = retriever.search(question, k=5)
    assert {D000, D004} <= {h.doc_id for h in hits[:2]}
    question = "Both the MIIT informatization plan and the Sichuan plan promote the same management role. Which is it?"
    hits = retriever.search(question, k=5)
    assert {D003, D004} <= {h.doc_id for h in hits[:2]}


def test_route_modes(retriever, settings):
    question = "工信部规划对各地区、各部门提出了哪几项要求？"
    original = retriever.settings
    try:
        retriever.settings = settings.override("retrieval", route_mode="filter")
        assert {h.doc_id for h in retriever.search(question, k=10)} == {D003}
        retriever.settings = settings.override("retrieval", route_mode="off")
        assert not retriever.route(question)
        unrouted = [h.chunk_id for h in retriever.search(question, k=10)]
    finally:
        retriever.settings = original
    # an explicit empty route is the same as routing off
    assert [h.chunk_id for h in retriever.search(question, k=10, route=Route())] == unrouted
    assert retriever.search(question, k=10)[0].doc_id == D003
