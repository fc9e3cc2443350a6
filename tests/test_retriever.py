"""Retrieval on the real seed index: round trip, cross-script and cross-lingual, filters, bad queries."""

from __future__ import annotations

import time

import pytest

from retriever import QueryError, Retriever, current_dir
from settings import IndexSettings, Settings


def _top_docs(hits, n=3):
    return [h.doc_id for h in hits[:n]]


def test_round_trip_finds_the_beidou_passage(retriever):
    hits = retriever.search("到2020年北斗系统由多少颗卫星组成?", k=5)
    assert len(hits) == 5
    assert hits[0].doc_id == "000_23acc2fe7a7ca56c.txt"
    assert "35颗卫星" in hits[0].text
    assert hits[0].section.endswith("(二)北斗系统建设应用行动")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    doc = retriever.document(hits[0].doc_id)
    assert doc.text[hits[0].start : hits[0].end] == hits[0].text


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_mode_finds_the_digital_economy_target(retriever, mode):
    hits = retriever.search("十四五规划中数字经济核心产业增加值占GDP比重的目标是多少", k=5, mode=mode)
    assert any(h.doc_id.startswith("001") and "核心产业增加值占GDP" in h.text for h in hits), [h.text[:40] for h in hits]


def test_simplified_question_finds_traditional_document(retriever):
    # 002 is in traditional script; the question is simplified.
    for mode in ("bm25", "hybrid"):
        hits = retriever.search("国家信息化发展战略纲要提出到2025年固定宽带家庭普及率达到什么水平", k=5, mode=mode)
        assert "002_236f301bd7d0f271.txt" in _top_docs(hits), mode


def test_traditional_question_finds_simplified_document(retriever):
    for mode in ("bm25", "hybrid"):
        hits = retriever.search("四川省「十三五」信息化規劃提出的雲計算基礎設施建設任務有哪些", k=5, mode=mode)
        assert "004_14d6703fe5634065.txt" in _top_docs(hits), mode


@pytest.mark.parametrize(
    "question, must_contain",
    [
        ("What is the 2025 target for the number of 5G users?", "5G用户普及率"),
        ("What are the goals for smart elderly care services?", "养老"),
        ("When will the BeiDou global satellite navigation system be completed?", "北斗"),
        ("What is the goal for e-government in the MIIT informatization plan?", "电子政务"),
    ],
)
def test_english_question_retrieves_chinese_passage(retriever, question, must_contain):
    for mode in ("dense", "hybrid"):
        hits = retriever.search(question, k=5, mode=mode)
        assert any(must_contain in h.text for h in hits), (mode, [h.text[:30] for h in hits])


def test_document_filter(retriever):
    only = ["004_14d6703fe5634065.txt"]
    hits = retriever.search("北斗卫星导航", k=5, doc_ids=only)
    assert hits and all(h.doc_id in only for h in hits)
    assert retriever.search("北斗卫星导航", k=5, doc_ids=["no-such-doc.txt"]) == []


def test_results_have_no_heavy_overlap(retriever):
    hits = retriever.search("5G网络建设", k=10)
    for i, a in enumerate(hits):
        for b in hits[i + 1 :]:
            if a.doc_id == b.doc_id:
                inter = min(a.end, b.end) - max(a.start, b.start)
                assert inter < 0.5 * min(a.end - a.start, b.end - b.start)


def test_per_retriever_scores_are_exposed(retriever):
    hit = retriever.search("北斗", k=1)[0]
    assert hit.dense_score is not None and -1.0 <= hit.dense_score <= 1.0
    assert hit.bm25_score is not None and hit.bm25_score > 0


@pytest.mark.parametrize("query", ["", "   \n\t", "？？！！……", "🙂🙂🚀", None])
def test_empty_or_wordless_queries_are_refused_clearly(retriever, query):
    with pytest.raises(QueryError):
        retriever.search(query, k=5)


@pytest.mark.parametrize("k", [0, -3])
def test_bad_k(retriever, k):
    with pytest.raises(QueryError):
        retriever.search("北斗", k=k)


def test_k_larger_than_collection(retriever):
    smallest = min(retriever.documents, key=lambda d: sum(c.doc_id == d for c in retriever.stored.chunks))
    rows = sum(c.doc_id == smallest for c in retriever.stored.chunks)
    k = retriever.settings.retrieval.max_k
    assert rows < k
    hits = retriever.search("信息化", k=k, doc_ids=[smallest])
    assert 0 < len(hits) <= rows


def test_very_long_query_is_bounded(retriever):
    start = time.perf_counter()
    hits = retriever.search("数字经济" * 2500, k=5)  # 10,000 characters
    assert len(hits) == 5
    assert time.perf_counter() - start < 30


def test_unknown_mode(retriever):
    with pytest.raises(QueryError):
        retriever.search("北斗", mode="magic")


def test_hnsw_agrees_with_exact_search(seed_index, embedder, tmp_path):
    import shutil

    from retriever import build_index

    from conftest import SEEDS

    settings = Settings(index=IndexSettings(kind="hnsw"))
    path = tmp_path / "hnsw"
    shutil.copytree(seed_index, path)  # so the rebuild reuses every vector and only builds the graph
    report = build_index(SEEDS, path, settings, progress=False)
    assert report.embedded == 0
    approx = Retriever.load(path, settings, embedder=embedder)
    exact = Retriever.load(seed_index, Settings(), embedder=embedder)
    assert approx.stored.manifest["index_kind"] == "hnsw"
    assert (current_dir(path) / "hnsw.faiss").is_file()
    for q in ["北斗卫星导航", "网络安全保障", "電子政務", "digital villages"]:
        a = [h.chunk_id for h in approx.search(q, k=3, mode="dense")]
        e = [h.chunk_id for h in exact.search(q, k=3, mode="dense")]
        assert a[0] == e[0]


def test_search_cli(seed_index, capsys):
    from retriever.__main__ import main

    assert main(["北斗系统卫星", "--index", str(seed_index), "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert "[1]" in out and "北斗系统建设应用行动" in out and "score" in out
    assert main(["   ", "--index", str(seed_index)]) == 2


def test_manifest_is_asked_of_the_store_once_per_load(seed_index, settings, embedder):
    """Every Assistant and the app's warm-up read it; on a database each read is a query."""
    r = Retriever.load(seed_index, settings, embedder=embedder)
    calls = []
    real = r.store.manifest
    r.store.manifest = lambda: calls.append(1) or real()
    first = r.manifest
    assert r.manifest is first and first["chunk_count"] == len(r)
    assert len(calls) == 1


def test_bm25_from_term_ids_scores_like_bm25s_on_the_strings(seed_index):
    """The folder store hands bm25s each passage's terms as 4-byte ids, not jieba's strings (a
    10^5-passage write peaked at 1.37 GB instead of 1.97): same vocabulary, same scores for the
    dev questions' terms on every seed passage, an empty passage included."""
    import json
    from pathlib import Path

    import bm25s
    import numpy as np

    from retriever.passages import keyword_text
    from retriever.sparse import SparseIndex
    from retriever.store import read_index
    from retriever.terms import terms

    texts = [keyword_text(c) for c in read_index(seed_index).chunks] + ["，。"]
    built = SparseIndex.build(iter(texts)).model
    plain = bm25s.BM25()
    plain.index([terms(t) or ["\u2205"] for t in texts], show_progress=False)
    assert set(built.vocab_dict) == set(plain.vocab_dict) and len(plain.vocab_dict) > 3000
    questions = Path(__file__).resolve().parents[1] / "eval" / "questions.jsonl"
    for line in questions.read_text(encoding="utf-8").splitlines()[:60]:
        words = [w for w in terms(json.loads(line)["question"]) if w in plain.vocab_dict]
        if words:
            assert np.array_equal(built.get_scores(words), plain.get_scores(words))
