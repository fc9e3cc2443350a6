"""Evaluation: metric functions on hand-made cases, question-file validation, and the
``python -m eval`` command end to end on a few dev questions against the seed index."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from eval import metrics
from eval.normalize import contains_span, normalize, span_coverage, strip_citation_marks
from eval.schema import Question, load_questions, parse_lines

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "eval" / "questions.jsonl"


# -- normalization -----------------------------------------------------------------------------
def test_normalize_traditional_with_pinyin_matches_simplified_span():
    raw = "《國家信息化發(fā)展戰(zhàn)略綱要》提出：到２０２０年， 固定寬帶家庭普及率達到中等發達國家水平。"
    span = "到2020年,固定宽带家庭普及率达到中等发达国家水平"
    assert normalize(span) in normalize(raw)
    assert contains_span(raw, span)
    assert "fā" not in normalize(raw) and "(" not in normalize(raw)


def test_normalize_folds_width_quotes_space_and_case():
    assert normalize("「互聯網＋政務服務」 ＰＵＥ") == normalize('“互联网+政务服务”PUE') == '"互联网+政务服务"pue'
    assert normalize("a\u3000b\u00a0c\nd") == "abcd"
    assert normalize("") == ""
    # non-pinyin parentheses survive
    assert "(5g)" in normalize("第五代移動通信(5G)")


def test_strip_citation_marks():
    assert strip_citation_marks("到2020年[1]建成35颗卫星[2, 3]。") == "到2020年建成35颗卫星。"


def test_partial_span_rule():
    span = "到2020年建成由35颗卫星组成的北斗全球卫星导航系统"  # 26 characters
    n = len(normalize(span))
    # a chunk boundary cuts the span: the chunk ends after 85% / 70% of it
    cut_85 = "前文……" + span[: math.ceil(n * 0.85)]
    cut_70 = "前文……" + span[: int(n * 0.70)]
    assert span_coverage(normalize(span), normalize(cut_85)) >= 0.85
    assert contains_span(cut_85, span)
    assert not contains_span(cut_70, span)
    assert contains_span(cut_70, span, partial=0.6)
    # the next chunk starts inside the span: its tail is what counts
    assert contains_span(span[3:] + "服务全球。", span)
    # scattered pieces do not add up: the 80% must be one unbroken run
    scattered = span[:10] + "，另外，" + span[10:20]
    assert not contains_span(scattered, span)
    assert not contains_span("完全无关的一段文字", span)
    assert not contains_span("任何文字", "")


# -- retrieval metrics -------------------------------------------------------------------------
def test_first_rank_hit_at_k_and_mrr():
    assert metrics.first_rank([False, False, True, True]) == 3
    assert metrics.first_rank([False, False]) is None
    assert metrics.first_rank([]) is None
    assert metrics.hit_at_k(3, 3) and not metrics.hit_at_k(3, 2) and not metrics.hit_at_k(None, 10)
    assert metrics.reciprocal_rank(4) == 0.25
    assert metrics.reciprocal_rank(11, k=10) == 0.0
    assert metrics.reciprocal_rank(None) == 0.0
    ranks = [1, 3, None, 2]
    assert metrics.mrr(ranks, 10) == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert metrics.mrr(ranks, 2) == pytest.approx((1 + 0 + 0 + 1 / 2) / 4)
    assert metrics.hit_rate(ranks, 1) == 0.25
    assert metrics.hit_rate(ranks, 3) == 0.75
    assert math.isnan(metrics.mrr([], 10))


def test_evidence_flags_on_retrieved_texts():
    spans = ["以公民身份号码为唯一标识", "PUE值不高于1.4"]
    texts = ["无关段落。", "建設統一身份認證體系，以公民身份號碼為唯一標識。", "新建大型云计算数据中心ＰＵＥ值不高於1.4。"]
    assert metrics.evidence_flags(texts, spans) == [False, True, True]
    assert metrics.evidence_flags(texts, []) == [False, False, False]


def test_all_docs_rank_for_comparisons():
    doc_ids = ["a", "b", "a", "c"]
    flags = [False, True, True, False]
    assert metrics.all_docs_rank(doc_ids, flags, ["a", "b"]) == 3
    assert metrics.all_docs_rank(doc_ids, flags, ["b"]) == 2
    assert metrics.all_docs_rank(doc_ids, flags, ["a", "c"]) is None  # c has no evidence passage
    assert metrics.all_docs_rank(doc_ids, flags, []) is None
    assert metrics.hit_at_k(metrics.all_docs_rank(doc_ids, flags, ["a", "b"]), 3)


def test_retrieval_summary_groups_and_comparisons():
    rows = [
        {"rank": 1, "all_docs_rank": None, "type": "factoid"},
        {"rank": 4, "all_docs_rank": 6, "type": "comparison"},
        {"rank": None, "all_docs_rank": None, "type": "comparison"},
        {"rank": 2, "all_docs_rank": None, "type": "list"},
    ]
    s = metrics.retrieval_summary(rows, (1, 3, 5, 10), 10)
    assert s["n"] == 4 and s["n_comparison"] == 2
    assert s["hit@1"] == 0.25 and s["hit@3"] == 0.5 and s["hit@5"] == 0.75 and s["hit@10"] == 0.75
    assert s["mrr@10"] == pytest.approx((1 + 0.25 + 0 + 0.5) / 4)
    assert s["all_docs@5"] == 0.0 and s["all_docs@10"] == 0.5


# -- answer metrics ----------------------------------------------------------------------------
def test_key_recall_normalizes_both_sides():
    answer = "到2020年[1]，建成由35顆衛星組成的北斗系統[2]。"
    assert metrics.key_recall(answer, ["35颗", "2020年", "全球覆盖"]) == pytest.approx(2 / 3)
    assert metrics.key_recall("", ["35颗"]) == 0.0
    assert math.isnan(metrics.key_recall("anything", []))
    # a marker must not glue digits together: "1.5[1]" still holds "1.5"
    assert metrics.key_recall("不高于1.5[1]，不高于1.4[2]", ["1.5", "1.4"]) == 1.0


def test_citations_supported_and_answer_summary():
    spans = ["以公民身份号码为唯一标识"]
    assert metrics.citations_supported(["……以公民身份号码为唯一标识……"], spans)
    assert not metrics.citations_supported(["……以公民身份号码为唯一标识……", "无关"], spans)
    assert not metrics.citations_supported([], spans)
    rows = [
        {"answerable": True, "refused": False, "key_recall": 1.0, "citations_ok": True, "n_citations": 2,
         "n_supported": 2},
        {"answerable": True, "refused": False, "key_recall": 0.5, "citations_ok": False, "n_citations": 2,
         "n_supported": 1},
        {"answerable": True, "refused": True, "key_recall": 0.0, "citations_ok": None},
        {"answerable": False, "refused": True, "key_recall": None, "citations_ok": None},
        {"answerable": False, "refused": False, "key_recall": None, "citations_ok": None},
    ]
    s = metrics.answer_summary(rows)
    assert s["key_recall"] == pytest.approx(0.5)
    assert s["key_recall_answered"] == pytest.approx(0.75)
    assert s["citation_correct"] == 0.5
    assert s["citation_any"] == 1.0
    assert s["citation_precision"] == 0.75
    assert s["refusal_accuracy"] == 0.5
    assert s["false_refusal_rate"] == pytest.approx(1 / 3)


def test_percentile_and_latency_summary():
    assert metrics.percentile([3, 1, 2, 4], 50) == 2.5
    assert metrics.percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)
    assert math.isnan(metrics.percentile([], 50))
    lat = metrics.latency_summary([{"embed": 0.010, "total": 0.020}, {"embed": 0.030, "total": 0.040}])
    assert lat["embed"]["p50"] == pytest.approx(20.0) and lat["total"]["n"] == 2


# -- question file -----------------------------------------------------------------------------
GOOD = {"id": "x1", "question": "到2020年北斗系统由多少颗卫星组成？", "lang": "zh", "type": "number",
        "docs": ["000_23acc2fe7a7ca56c.txt"], "evidence": ["建成由35颗卫星组成的北斗全球卫星导航系统"],
        "answer": "35颗", "answer_keys": ["35颗"]}


def _line(**changes) -> str:
    rec = {**GOOD, **changes}
    for key in [k for k, v in changes.items() if v is ...]:
        del rec[key]
    return json.dumps(rec, ensure_ascii=False)


def test_parse_lines_reports_each_bad_line_and_keeps_the_rest():
    lines = [
        _line(id="ok1"),
        '{"id": "broken", "question": ',  # 2: bad JSON
        _line(id="m3", answer_keys=...),  # 3: missing key
        _line(id="t4", docs="000.txt"),  # 4: wrong type
        _line(id="l5", lang="fr"),  # 5: unknown lang
        "",  # 6: blank, ignored
        _line(id="y7", type="opinion"),  # 7: unknown type
        _line(id="ok1"),  # 8: duplicate id
        "[1, 2]",  # 9: not an object
        _line(id="e10", evidence=[]),  # 10: answerable without evidence
        _line(id="u11", type="unanswerable", docs=[], evidence=[], answer="", answer_keys=[]),
    ]
    result = parse_lines([line + "\n" for line in lines])
    assert [q.id for q in result.questions] == ["ok1", "u11"]
    assert [e.line for e in result.errors] == [2, 3, 4, 5, 7, 8, 9, 10]
    messages = {e.line: str(e) for e in result.errors}
    assert messages[2].startswith("line 2: not valid JSON")
    assert "missing key(s): answer_keys" in messages[3]
    assert "'docs' must be a list of strings" in messages[4]
    assert "unknown lang 'fr'" in messages[5]
    assert "unknown type 'opinion'" in messages[7]
    assert "duplicate id" in messages[8] and "line 1" in messages[8]
    assert "JSON object" in messages[9]
    assert "evidence" in messages[10]
    q = result.questions[0]
    assert isinstance(q, Question) and q.line == 1 and q.answerable and q.docs == ("000_23acc2fe7a7ca56c.txt",)
    assert not result.questions[1].answerable and result.questions[1].line == 11


def test_dev_set_parses_cleanly():
    qfile = load_questions(QUESTIONS)
    assert not qfile.errors, [str(e) for e in qfile.errors]
    assert len(qfile.questions) >= 80


# -- end to end --------------------------------------------------------------------------------
def _write_questions(path: Path, questions: list[str], bad_at: int | None = None) -> None:
    lines = list(questions)
    if bad_at is not None:
        lines.insert(bad_at - 1, '{"id": "bad", "lang": "zh"')  # truncated JSON
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def five_questions() -> list[str]:
    lines = [line for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    recs = [json.loads(line) for line in lines]
    wanted = ("factoid", "number", "comparison", "unanswerable")  # every code path: all-docs, exclusion
    picked = [next(line for rec, line in zip(recs, lines) if rec["type"] == t) for t in wanted]
    english = next(line for rec, line in zip(recs, lines) if rec["lang"] == "en" and rec["type"] == "list")
    return picked[:3] + [english] + picked[3:]


def test_command_end_to_end(tmp_path, seed_index, retriever, five_questions, capsys):
    from eval.__main__ import main

    qpath = tmp_path / "q.jsonl"
    _write_questions(qpath, five_questions, bad_at=3)
    out = tmp_path / "out"
    status = main([str(qpath), "--index", str(seed_index), "--out", str(out), "--k", "10", "--quiet",
                   "--no-answers", "--configs", "bm25,dense,hybrid"])
    captured = capsys.readouterr()
    assert status == 0
    assert "line 3:" in captured.err and "not valid JSON" in captured.err  # named, skipped, run went on
    for name in ("results.jsonl", "summary.json", "report.md", "comparison.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5 * 3
    assert {r["config"] for r in rows} == {"bm25", "dense", "hybrid"}
    for row in rows:
        assert {"id", "config", "chunk_ids", "doc_ids", "first_evidence_rank", "timings", "answers"} <= set(row)
        assert len(row["chunk_ids"]) == len(row["doc_ids"]) <= 10
        assert "total" in row["timings"]
        if not row["answerable"]:
            assert row["first_evidence_rank"] is None
    hybrid = [r for r in rows if r["config"] == "hybrid"]
    assert {"embed", "dense", "bm25", "fusion"} <= set(hybrid[0]["timings"])

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["n_questions"] == 5 and summary["n_answerable"] == 4
    assert summary["skipped_lines"][0]["line"] == 3
    assert summary["answers"] is None and "disabled" in summary["answers_skipped"]
    overall = summary["retrieval"]["hybrid"]["overall"]
    assert overall["n"] == 4
    assert {"hit@1", "hit@3", "hit@5", "hit@10", "mrr@10", "all_docs@5"} <= set(overall)
    assert 0.0 <= overall["mrr@10"] <= 1.0
    assert set(summary["retrieval"]["hybrid"]["by_lang"]) <= {"zh", "zh-Hant", "en"}
    assert "comparison" in summary["retrieval"]["hybrid"]["by_type"]
    assert summary["latency"]["hybrid"]["total"]["n"] == 5
    report = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("Retrieval, overall", "by question type", "by question language", "| hybrid |"):
        assert heading in report
    assert "line 3" in report

    # --strict turns a skipped line into a failing status; the report is still written
    assert main([str(qpath), "--index", str(seed_index), "--out", str(tmp_path / "o2"), "--quiet",
                 "--no-answers", "--configs", "bm25", "--strict"]) == 1
    assert (tmp_path / "o2" / "report.md").is_file()


def test_command_rejects_missing_index(tmp_path, capsys):
    from eval.__main__ import main

    status = main([str(QUESTIONS), "--index", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--quiet"])
    assert status == 2
    assert "no index" in capsys.readouterr().err


# -- answers, with a stand-in for the qa stage ---------------------------------------------------
@dataclass(frozen=True)
class _Citation:
    n: int
    hit: object
    quote: str


@dataclass(frozen=True)
class _Answer:
    text: str
    citations: list = field(default_factory=list)
    refused: bool = False
    timings: dict = field(default_factory=dict)
    generator: str = "extractive"
    checks: dict = field(default_factory=dict)


class _EchoAssistant:
    """Answers with the top passage (cited), refuses when a question mentions the moon."""

    def __init__(self, retriever):
        self.retriever = retriever

    def ask(self, question: str, generator: str = "extractive") -> _Answer:
        if "月球" in question or "moon" in question.lower():
            return _Answer(text="资料中没有答案。", refused=True, timings={"retrieve": 0.001, "total": 0.001},
                           generator="refusal")
        hit = self.retriever.search(question, k=1)[0]
        return _Answer(text=hit.text[:200] + "[1]", citations=[_Citation(1, hit, hit.text[:50])],
                       timings={"retrieve": 0.002, "generate": 0.001, "total": 0.003})


def test_answer_scoring_with_a_stand_in_assistant(retriever, settings, five_questions, tmp_path):
    from eval.report import write_outputs
    from eval.runner import EvalOptions, run_evaluation

    qfile = parse_lines(five_questions)
    moon = Question(id="moon", question="月球基地的建设时间表是什么？", lang="zh", type="unanswerable")
    questions = qfile.questions + [moon]
    options = EvalOptions.from_settings(settings, configs=("bm25",), k=5)
    result = run_evaluation(questions, retriever, settings, options, assistant=_EchoAssistant(retriever),
                            progress=False)
    s = result.summary
    assert s["options"]["configs"] == ["bm25", "hybrid"]  # the answer configuration is always evaluated
    answers = s["answers"]
    assert answers["config"] == "hybrid"
    assert answers["overall"]["n"] == 6 and answers["overall"]["n_answerable"] == 4
    assert answers["overall"]["false_refusal_rate"] == 0.0
    assert answers["overall"]["refusal_accuracy"] == 0.5  # the moon refused, the other one answered
    assert 0.0 <= answers["overall"]["key_recall"] <= 1.0
    assert 0.0 <= answers["overall"]["citation_correct"] <= 1.0
    assert {"retrieve", "total", "wall"} <= set(answers["latency"])
    rows = [r for r in result.rows if r["config"] == "hybrid"]
    assert all(set(r["answers"]) == {"extractive"} for r in rows)
    top_has_evidence = [r for r in rows if r["answerable"] and r["first_evidence_rank"] == 1]
    for r in top_has_evidence:  # the stand-in cites the top passage: correct exactly when it holds evidence
        assert r["answers"]["extractive"]["citations_ok"] is True
    paths = write_outputs(result, tmp_path / "out")
    assert "## Answers (hybrid retrieval)" in paths["report.md"].read_text(encoding="utf-8")


# -- generators side by side: sentence split, figure check, language, latency ----------------------
def _stub_figures(text: str) -> list[str]:
    """Stand-in for qa.grounding.figures: the digit runs of a text, markers left out."""
    import re

    return list(dict.fromkeys(re.findall(r"\d+(?:\.\d+)?", re.sub(r"\[[\d,\s]+\]", " ", text))))


def test_split_sentences_keeps_markers_decimals_and_drops_list_labels():
    text = "到2025年达到1.2万亿元[1]。占比10%。[2]另外[1, 3]\n1. 加快建设[2]\n（2）推进 3.5%[4] 4.开展示范。[5]"
    assert metrics.split_sentences(text) == ["到2025年达到1.2万亿元[1]。", "占比10%。[2]", "另外[1, 3]",
                                             "加快建设[2]", "推进 3.5%[4]", "开展示范。[5]"]
    assert metrics.split_sentences("From the documents (quoted in Chinese): 49.有序推进立法。[1]") == [
        "From the documents (quoted in Chinese): 有序推进立法。[1]"]
    assert metrics.split_sentences("The target is 1.5 percent[1]. Next one! Why?") == [
        "The target is 1.5 percent[1].", "Next one!", "Why?"]
    assert metrics.split_sentences("不高于1.5[1] 到2020年不高于1.4。[2]") == ["不高于1.5[1]", "到2020年不高于1.4。[2]"]
    assert metrics.split_sentences("") == []
    assert metrics.cited_numbers("另外[1, 3]，又见[3]和【2】") == (1, 3, 2)
    assert metrics.cited_numbers("没有标记") == ()


def test_figure_check_needs_each_figure_in_a_passage_the_sentence_cites():
    passages = {1: "到2020年建成由35颗卫星组成的系统。", 2: "规模达到1.2万亿元，年均增长10%。", 3: "到2025年覆盖率达到95%。"}
    text = ("到2020年建成35颗卫星[1]。"  # grounded in [1]
            "规模1.2万亿元[1][2]。"  # 1.2 is in [2], one of the cited passages: grounded
            "覆盖率达到95%[1]。"  # 95 is in [3], which this sentence does not cite
            "另见[7]：增长10%[7]。"  # [7] is no citation of the answer
            "加快建设[2][3]。"  # no figure; cites [3], which must not ground the 95 above
            "增长10%。")  # no marker, none after it: cites nothing
    check = metrics.figure_check(text, passages, _stub_figures)
    assert check["sentences"] == 6 and check["figure_sentences"] == 5
    assert [(u["missing"], u["cites"]) for u in check["ungrounded"]] == [(["95"], [1]), (["10"], [7]), (["10"], [])]
    assert check["ungrounded"][0]["sentence"] == "覆盖率达到95%[1]。"
    # a sentence without a marker is covered by the next marker: a quote spanning lines
    quote = "到2025年，数字经济核心产业\n增加值占比达到10%[2]。"
    assert metrics.figure_check(quote, passages, _stub_figures)["ungrounded"] == [
        {"sentence": "到2025年，数字经济核心产业", "missing": ["2025"], "cites": [2]}]
    # the marker after the full stop belongs to the sentence before it
    assert metrics.figure_check("增长10%。[2]", passages, _stub_figures)["ungrounded"] == []
    assert metrics.figure_check("", passages, _stub_figures) == {"sentences": 0, "figure_sentences": 0,
                                                                  "ungrounded": []}


def test_figure_check_with_the_real_figures():
    grounding = pytest.importorskip("qa.grounding")
    passages = {1: "到2025年，数字经济核心产业增加值达到12000亿元，占比百分之十。"}
    ok = metrics.figure_check("到2025年达到1.2万亿元，占比10%[1]。", passages, grounding.figures)
    assert ok["figure_sentences"] == 1 and ok["ungrounded"] == []
    bad = metrics.figure_check("到2025年占比15%[1]。", passages, grounding.figures)
    assert [u["missing"] for u in bad["ungrounded"]] == [["15"]]


def _row(**kw):
    base = {"answerable": True, "refused": False, "key_recall": 1.0, "citations_ok": True, "lang": "zh",
            "answer_lang": "zh", "generator": "llm", "requested": "llm", "checks": {}, "figure_check": None,
            "first_text_s": 1.0, "total_s": 2.0}
    return {**base, **kw}


def test_answer_summary_generator_metrics():
    fc = lambda n_sent, n_fig, n_bad: {"sentences": n_sent, "figure_sentences": n_fig,  # noqa: E731
                                       "ungrounded": [{"sentence": "x", "missing": ["1"], "cites": []}] * n_bad}
    rows = [
        # 9 kept, 1 repaired: 90% grounded for this answer
        _row(checks={"kept": 9, "repaired": 1, "dropped": 0, "timed_out": 0}, figure_check=fc(10, 4, 0),
             lang="en", answer_lang="en", first_text_s=1.0, total_s=3.0),
        # 0 kept, 1 dropped: pooled, the shares are 9/11, 1/11, 1/11 (not the mean of 0.9 and 0)
        _row(checks={"kept": 0, "repaired": 0, "dropped": 1, "timed_out": 1}, figure_check=fc(2, 2, 1),
             lang="en", answer_lang="zh", first_text_s=3.0, total_s=5.0),
        # the LLM failed: the extractive composer answered
        _row(generator="extractive", checks={}, figure_check=fc(3, 1, 1), lang="en", answer_lang="en",
             first_text_s=2.0, total_s=4.0),
        # a refusal: no figure check, not an English answer even though the question is English
        _row(refused=True, generator="llm-refusal", lang="en", answer_lang=None, figure_check=fc(9, 9, 9),
             first_text_s=0.5, total_s=0.5),
        _row(answerable=False, refused=True, generator="refusal", key_recall=None, citations_ok=None,
             answer_lang=None, first_text_s=None, total_s=None),  # a failed answer: no timings
    ]
    s = metrics.answer_summary(rows)
    assert s["llm_sentences"] == 11
    assert s["grounded_share"] == pytest.approx(9 / 11)
    assert s["repaired_share"] == pytest.approx(1 / 11) and s["dropped_share"] == pytest.approx(1 / 11)
    assert s["timed_out"] == 1
    assert s["sentences_checked"] == 15 and s["figure_sentences"] == 7
    assert s["ungrounded_figure_sentences"] == 2  # the refusal's check is not counted
    assert s["n_english_answered"] == 3 and s["english_in_english"] == pytest.approx(2 / 3)
    assert s["first_text_p50_s"] == pytest.approx(1.5) and s["total_p50_s"] == pytest.approx(3.5)
    assert s["first_text_p95_s"] == pytest.approx(metrics.percentile([1.0, 3.0, 2.0, 0.5], 95))
    assert s["answered_by"] == {"llm": 2, "extractive": 1, "llm-refusal": 1, "refusal": 1}
    assert s["fell_back"] == 1
    assert s["false_refusal_rate"] == pytest.approx(1 / 4) and s["refusal_accuracy"] == 1.0

    # the extractive generator: every sentence is a quote, no grounding counts -> n/a
    quotes = [_row(generator="extractive", requested="extractive", figure_check=fc(2, 1, 0))]
    e = metrics.answer_summary(quotes)
    assert e["llm_sentences"] is None and e["timed_out"] is None and e["fell_back"] is None
    assert all(math.isnan(e[k]) for k in ("grounded_share", "repaired_share", "dropped_share", "english_in_english"))
    assert e["ungrounded_figure_sentences"] == 0 and e["n_english_answered"] == 0
    # rows without the new fields (older callers) still aggregate
    old = metrics.answer_summary([{"answerable": True, "refused": False, "key_recall": 1.0, "citations_ok": True}])
    assert old["key_recall"] == 1.0 and old["ungrounded_figure_sentences"] is None
    assert math.isnan(old["first_text_p50_s"]) and old["answered_by"] == {}


class _TwoGeneratorAssistant(_EchoAssistant):
    """The echo as "extractive"; as "llm" an English sentence with a figure of its own, and
    an extractive fallback for the first question it is asked."""

    def __init__(self, retriever):
        super().__init__(retriever)
        self.asked_llm = 0

    def llm_notice(self):
        return None

    def ask(self, question: str, generator: str = "extractive") -> _Answer:
        answer = super().ask(question)
        if generator != "llm" or answer.refused:
            return answer
        self.asked_llm += 1
        if self.asked_llm == 1:
            return answer  # fell back (its generator field says extractive)
        cite = answer.citations[0]
        return _Answer(text="The plan sets a target of 987654 units[1].", citations=[cite], generator="llm",
                    checks={"kept": 1, "repaired": 0, "dropped": 1, "timed_out": 0},
                    timings={"first_text": 0.5, "total": 1.5})


def test_generators_side_by_side_with_a_stand_in_assistant(retriever, settings, five_questions, tmp_path):
    from eval.gate import check_gate
    from eval.report import write_outputs
    from eval.runner import EvalOptions, run_evaluation

    questions = parse_lines(five_questions).questions
    options = EvalOptions.from_settings(settings, configs=("hybrid",), k=5, generators=("extractive", "llm"))
    result = run_evaluation(questions, retriever, settings, options, assistant=_TwoGeneratorAssistant(retriever),
                            progress=False, figures=_stub_figures, language=lambda t: "en" if "plan" in t else "zh")
    answers = result.summary["answers"]
    assert answers["requested"] == ["extractive", "llm"] and answers["skipped"] == {}
    assert list(answers["generators"]) == ["extractive", "llm"]
    ext, llm = answers["generators"]["extractive"]["overall"], answers["generators"]["llm"]["overall"]
    # the gate reads the top level: the extractive generator's block
    assert answers["gated"] == "extractive" and answers["overall"] == ext and answers["errors"] == 0
    assert check_gate(result.summary, {"floors": {}, "answer_floors": {"key_recall": 0.0}}) == []
    n_answered = sum(1 for q in questions if "moon" not in q.question.lower() and "月球" not in q.question)
    assert llm["answered_by"].get("extractive") == 1 and llm["answered_by"].get("llm") == n_answered - 1
    assert llm["fell_back"] == 1 and ext["fell_back"] is None and ext["llm_sentences"] is None
    assert llm["llm_sentences"] == 2 * (n_answered - 1) and llm["grounded_share"] == 0.5
    # 987654 is in no passage: one ungrounded sentence per LLM answer
    llm_rows = [r["answers"]["llm"] for r in result.rows
                if r["config"] == "hybrid" and r["answers"]["llm"]["generator"] == "llm"]
    assert [len(a["figure_check"]["ungrounded"]) for a in llm_rows] == [1] * (n_answered - 1)
    assert llm_rows[0]["figure_check"]["ungrounded"][0]["missing"] == ["987654"]
    assert llm["ungrounded_figure_sentences"] >= n_answered - 1
    assert llm["first_text_p50_s"] <= llm["total_p50_s"]
    english = [q for q in questions if q.lang == "en"]
    assert answers["generators"]["llm"]["by_lang"]["en"]["n"] == len(english)
    row = next(r for r in result.rows if r["config"] == "hybrid" and r["answerable"])
    assert set(row["answers"]) == {"extractive", "llm"} and row["answers"]["llm"]["requested"] == "llm"

    report = write_outputs(result, tmp_path / "out")["report.md"].read_text(encoding="utf-8")
    assert "| metric | extractive | llm | target (llm) |" in report
    assert "| sentences with an ungrounded figure |" in report and "| 0 ✗ |" in report
    assert "n/a (every sentence is a quote)" in report and "987654" in report
    saved = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert saved["answers"]["generators"]["llm"]["overall"]["grounded_share"] == 0.5
    assert saved["answers"]["generators"]["extractive"]["overall"]["grounded_share"] is None


def test_unavailable_llm_is_skipped_and_reported(retriever, settings, five_questions, tmp_path):
    import io

    pytest.importorskip("qa")
    from eval.report import write_outputs
    from eval.runner import EvalOptions, run_evaluation

    missing = str(tmp_path / "no-such-model.gguf")
    settings = settings.override("qa", llm_model=missing)
    questions = parse_lines(five_questions).questions[:2]
    options = EvalOptions.from_settings(settings, configs=("hybrid",), k=5, generators=("extractive", "llm"))
    log = io.StringIO()
    result = run_evaluation(questions, retriever, settings, options, progress=False, log=log)
    assert "llm generator skipped:" in log.getvalue() and "no-such-model.gguf" in log.getvalue()
    answers = result.summary["answers"]
    assert list(answers["generators"]) == ["extractive"] and answers["requested"] == ["extractive", "llm"]
    assert "no-such-model.gguf" in answers["skipped"]["llm"]
    assert answers["overall"]["n"] == 2 and not answers["errors"]
    report = write_outputs(result, tmp_path / "out")["report.md"].read_text(encoding="utf-8")
    assert "**llm: skipped**" in report and "| metric | extractive | target (llm) |" in report


def test_command_rejects_unknown_generator(tmp_path, capsys):
    from eval.__main__ import main

    status = main([str(QUESTIONS), "--index", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--quiet",
                   "--generators", "extractive,gpt"])
    assert status == 2
    assert "unknown answer generator(s) ['gpt']" in capsys.readouterr().err


class _RenderingAssistant(_EchoAssistant):
    """Renders English questions as a fixed Chinese question (the LLM's rendering, stood in)."""

    def __init__(self, retriever, rendering: str):
        super().__init__(retriever)
        self.rendering, self.rendered = rendering, []

    def llm_notice(self):
        return None

    def translate(self, question: str, generator=None, timings=None):
        self.rendered.append(question)
        translation = self.retriever.translate(question)
        if translation:
            translation = translation.with_lead(self.rendering)
            timings["translate"] = 0.5
        return translation


def test_llm_translation_option_searches_english_questions_with_the_rendering(retriever, settings, tmp_path):
    from eval.report import write_outputs
    from eval.runner import EvalOptions, run_evaluation

    english = Question(id="en1", question="How many of those birds in orbit should the national system have by 2020?",
                       lang="en", type="number", docs=("000_23acc2fe7a7ca56c.txt",), evidence=("35颗卫星",),
                       answer_keys=("35",))
    chinese = Question(id="zh1", question="到2020年北斗系统由多少颗卫星组成？", lang="zh", type="number",
                       docs=("000_23acc2fe7a7ca56c.txt",), evidence=("35颗卫星",), answer_keys=("35",))
    stand_in = _RenderingAssistant(retriever, "到2020年北斗全球卫星导航系统应有多少颗卫星？")
    rank = {}
    for on in (False, True):
        options = EvalOptions.from_settings(settings, configs=("hybrid",), k=10, answers=False, llm_translation=on)
        result = run_evaluation([english, chinese], retriever, settings, options, assistant=stand_in, progress=False)
        rank[on] = next(r["first_evidence_rank"] for r in result.rows if r["id"] == "en1")
    assert stand_in.rendered == ["How many of those birds in orbit should the national system have by 2020?",
                                 "到2020年北斗系统由多少颗卫星组成？"]  # asked once per question, only when on
    assert rank[True] == 1 < rank[False]
    info = result.summary["llm_translation"]
    assert info["questions"] == 1 and info["translate"]["p50"] == 500.0
    report = write_outputs(result, tmp_path / "out")["report.md"].read_text(encoding="utf-8")
    assert "`--llm-translation`): 1 rendered, p50 0.50 s" in report
