"""English → Chinese query expansion: CC-CEDICT inverted, the corpus' own names, a rule for
plan periods; and what it does for retrieval (no LLM involved anywhere)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from retriever.routing import Router
from retriever.translate import (Lexicon, Translation, Translator, cedict, gloss_keys, is_english,
                                 period_name, read_glossary)

ROOT = Path(__file__).resolve().parents[1]
D000, D003, D004 = "000_23acc2fe7a7ca56c.txt", "003_b8f887ea6ba329fa.txt", "004_14d6703fe5634065.txt"
BEIDOU = ("How many satellites should China's BeiDou global navigation system have by 2020 "
          "according to the 13th Five-Year informatization plan?")


@pytest.fixture(scope="module")
def seed_router():
    meta = json.loads((ROOT / "seeds" / "metadata.json").read_text(encoding="utf-8"))
    return Router.from_documents(SimpleNamespace(doc_id=k, title=v["title"], meta=v)
                                 for k, v in meta.items() if not k.startswith("_"))


@pytest.fixture(scope="module")
def translator(seed_router):
    return Translator(seed_router.names, seed_router.aliases)


# -- the dictionary ----------------------------------------------------------------------------
def test_cedict_ships_in_the_wheel_and_inverts():
    lex = cedict()
    assert len(lex.senses) > 50_000
    assert "宽带" in [s.zh for s in lex.senses[("broadband",)]]
    assert "物联网" in [s.zh for s in lex.senses[("iot",)]]  # "Internet of things (IoT)"
    assert "四川" in [s.zh for s in lex.senses[("sichuan",)]]  # "Sichuan province (Szechuan) in …"
    assert "工信部" in [s.zh for s in lex.senses[("miit",)]]  # initialism of its proper name


@pytest.mark.parametrize("gloss, proper, key", [
    ("to draw up a plan", False, ("draw", "up", "a", "plan")),
    ("(computer) software", False, ("software",)),
    ("Internet of things (IoT)", True, ("iot",)),
    ("Internet of things (IoT)", True, ("internet", "of", "thing")),
    ("Sichuan province (Szechuan) in southwest China, abbr. 川[Chuan1]", True, ("sichuan",)),
    ("Ministry of Industry and Information Technology (abbr)", True, ("miit",)),
])
def test_gloss_keys(gloss, proper, key):
    assert key in [k for k, _ in gloss_keys(gloss, proper)]


@pytest.mark.parametrize("gloss", ["CL:個|个[ge4]", "variant of 計劃|计划[ji4 hua4]", "surname Li", "(Tw) bicycle"])
def test_glosses_that_are_not_translations_are_skipped(gloss):
    assert gloss_keys(gloss) == []


def test_plan_periods_by_rule():
    assert period_name(13) == "十三五" and period_name(14) == "十四五" and period_name(11) == "十一五"
    t = Translator(lexicon=Lexicon(), glossary=[])
    assert t.translate("the 13th Five-Year plan").text == "十三五"
    assert t.translate("the fourteenth five year period").text.startswith("十四五")


# -- a whole question -----------------------------------------------------------------------------
def test_beidou_question_is_rendered_in_chinese(translator):
    rendering = translator.translate(BEIDOU)
    for word in ("卫星", "北斗", "导航", "2020", "十三五", "信息化", "规划"):
        assert word in rendering.text, rendering.units
    assert rendering.primary.split()[0] == "卫星"  # the best rendering of each unit, in order
    assert "how" not in rendering.text.lower() and "according" not in rendering.text


def test_corpus_names_win_over_other_renderings(translator):
    assert translator.translate("Sichuan").text.split()[0] == "四川"  # not 巴蜀, also "Sichuan"
    assert translator.translate("plan").text.split()[0] == "规划"  # the corpus' word, not 计划
    assert "纲要" in translator.translate("the Strategy Outline").text


def test_issuer_aliases_come_from_the_metadata_not_the_glossary(seed_router):
    t = Translator(seed_router.names, seed_router.aliases, glossary=[])
    assert set(t.translate("MIIT").text.split()) == {"工信部", "工业和信息化部"}
    assert set(t.translate("Ministry of Industry and Information Technology").text.split()) >= {"工信部", "工业和信息化部"}


def test_phrases_before_words_and_plurals(translator):
    units = dict(translator.translate("integrated circuits and the Internet of Things").units)
    assert "集成电路" in units["integrated circuits"]
    assert "物联网" in units["Internet of Things"]


def test_renderings_are_capped(seed_router):
    t = Translator(seed_router.names, seed_router.aliases, max_per_term=1)
    assert all(len(r) == 1 for _, r in t.translate("What is the target for rural broadband?").units)


def test_numbers_acronyms_and_chinese_pass_through(translator):
    text = translator.translate("What 2025 target for IPv6 and 5G does the connected-vehicle (车联网) plan set?").text
    for token in ("2025", "IPv6", "5G", "车联网"):
        assert token in text


def test_nothing_to_render(translator):
    assert translator.translate("What is it, and how?") == Translation("")
    assert not translator.translate("")


def test_only_english_questions_are_translated():
    assert is_english(BEIDOU)
    assert is_english("What does the 车联网 demonstration aim to enable?")
    assert not is_english("十四五规划对5G用户普及率提出了什么目标?")
    assert not is_english("IPv6规模部署的目标是什么")


def test_glossary_file_parses():
    entries = dict(read_glossary())
    assert entries[("penetration", "rate")][0] == "普及率"
    assert ("miit",) in entries


def test_translation_is_fast(translator):
    translator.translate(BEIDOU)  # first use fills caches
    start = time.perf_counter()
    for _ in range(20):
        translator.translate(BEIDOU.replace("satellites", "satellite stations"))
    assert (time.perf_counter() - start) / 20 < 0.05


def test_no_llm_is_needed():
    # in a fresh interpreter: the dictionary path imports nothing of qa/ (where the LLM lives)
    code = ("import sys; from retriever.translate import Translator; "
            "print(Translator().translate('BeiDou satellites').text); "
            "print(sorted(m for m in sys.modules if m == 'qa' or m.startswith(('qa.', 'llama_cpp'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rendering, modules = out.stdout.strip().splitlines()[-2:]
    assert "北斗" in rendering and "卫星" in rendering
    assert modules == "[]"


# -- retrieval with the rendering ------------------------------------------------------------------
def test_english_beidou_question_finds_the_beidou_passage(retriever):
    assert "北斗" in retriever.translate(BEIDOU).text
    for mode in ("hybrid", "bm25"):  # BM25 alone now finds it too: the rendering has its words
        hits = retriever.search(BEIDOU, k=5, mode=mode)
        assert any(h.doc_id == D000 and "35颗卫星" in h.text for h in hits), (mode, [h.text[:30] for h in hits])


def test_bm25_finds_nothing_without_the_rendering(retriever):
    assert retriever.search(BEIDOU, k=5, mode="bm25", translation="") == [] or not any(
        "35颗卫星" in h.text for h in retriever.search(BEIDOU, k=5, mode="bm25", translation=""))


def test_translation_raises_the_evidence(retriever):
    question = "What average annual growth rates did Sichuan target to 2020 for its electronic information industry?"
    with_it = retriever.search(question, k=10)
    without = retriever.search(question, k=10, translation="")
    assert with_it[0].doc_id == D004
    rank = lambda hits: next((i for i, h in enumerate(hits) if "年平均增速" in h.text), 99)  # noqa: E731
    assert rank(with_it) <= rank(without)
    assert rank(with_it) < 5


def test_chinese_questions_are_not_translated(retriever):
    assert retriever.translate("到2020年北斗系统由多少颗卫星组成?") == Translation("")
    retriever.search("到2020年北斗系统由多少颗卫星组成?", k=3)
    assert retriever.last_timings["translate"] < 0.01


def test_a_given_translation_is_used_as_is(retriever):
    # an LLM's rendering (or any caller's) replaces the dictionary's
    hits = retriever.search("How many satellites?", k=5, mode="bm25", translation="北斗 卫星 颗")
    assert any("北斗" in h.text for h in hits)


def test_translated_questions_fuse_with_their_own_weights(retriever):
    # with no weight on the encoder's lists, an English question's hybrid list is its BM25 list;
    # a Chinese question keeps the encoder (its weights are the untranslated ones)
    base = retriever.settings
    chinese = "到2020年北斗系统由多少颗卫星组成?"
    before = [h.chunk_id for h in retriever.search(chinese, k=5)]
    try:
        retriever.settings = base.override("retrieval", translated_dense_weight=0.0)
        hybrid = [h.chunk_id for h in retriever.search(BEIDOU, k=5)]
        assert hybrid == [h.chunk_id for h in retriever.search(BEIDOU, k=5, mode="bm25")]
        assert [h.chunk_id for h in retriever.search(chinese, k=5)] == before
        retriever.settings = base.override("retrieval", dense_weight=0.0)
        assert [h.chunk_id for h in retriever.search(chinese, k=5)] == [
            h.chunk_id for h in retriever.search(chinese, k=5, mode="bm25")]
    finally:
        retriever.settings = base


def test_a_whole_question_rendering_leads_for_the_encoder(translator):
    t = translator.translate(BEIDOU)
    led = t.with_lead("  北斗 全球 卫星导航系统 有 多少颗卫星 ")
    assert led.primary == "北斗 全球 卫星导航系统 有 多少颗卫星"  # the encoder searches the whole rendering
    assert led.text.startswith(t.text) and led.text.endswith("多少颗卫星")  # BM25 searches both
    assert led.units == t.units  # the refusal judge's per-word renderings stay
    assert t.with_lead(" ") is t and t.primary != led.primary


def test_the_corpus_usage_orders_a_words_renderings(seed_router, retriever):
    # CC-CEDICT lists 事务 ("transaction (as in a computer database)") before 交易; a corpus of
    # plans uses 交易 (电子商务交易额), and with the corpus' passage counts that wins
    usage = {"交易": 26, "事务": 3}
    plain = Translator(seed_router.names, seed_router.aliases)
    by_usage = Translator(seed_router.names, seed_router.aliases, frequency=lambda zh: usage.get(zh, 0))
    assert plain.render(("transaction",))[0] == "事务"
    assert by_usage.render(("transaction",))[0] == "交易"
    rendering = retriever.translate("What was the e-commerce transaction figure in 2020?")  # the index's counts
    assert "交易" in rendering.primary.split() and "数字" in rendering.primary.split(), rendering.primary
