"""Checks for the development question set eval/questions.jsonl.

Only the standard library and pytest are used. Seeds are located relative to
this file, so the test runs from any working directory.
"""

import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
QUESTIONS = ROOT / "eval" / "questions.jsonl"

SCHEMA_KEYS = {"id", "question", "lang", "type", "docs", "evidence", "answer", "answer_keys"}
LANGS = {"zh", "zh-Hant", "en"}
TYPES = {"factoid", "number", "list", "why", "comparison", "unanswerable"}
SEED_DOCS = {
    "000_23acc2fe7a7ca56c.txt",
    "001_f21eb84e8a85de7c.txt",
    "002_236f301bd7d0f271.txt",
    "003_b8f887ea6ba329fa.txt",
    "004_14d6703fe5634065.txt",
}

# A parenthesis holding only one lowercase pinyin syllable (with or without tone
# marks), as annotated after characters in 002: 國務(wù)院, 發(fā)展, 戰(zhàn)略.
PINYIN = re.compile(
    r"\((?:[a-zü]+[āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ][a-zü]*"
    r"|[a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+)\)"
)
# Paragraph separators inside the one-line body of 003.
SPACE_RUN = re.compile(r"[\u00a0\u3000]{2,}")

# Characters that only occur in traditional script (their simplified forms differ).
TRAD_ONLY = set(
    "國這個們會發劃數與為對過時說點麼寬帶網經濟業資訊電動區產務東規標據設級項開關機構體應權術實現還讓門後來種傳統際聯護億萬達於歐總"
    "圍華見貫長劃訂計記論變邊導幹錢線練組織維綱統績續罰書條雙雜雲離難電顯驗頭題風飛養體點齊倫們備傳價優兒黨蘭併則劃戰義場處")


def normalize(text: str) -> str:
    """Strip pinyin annotations, apply NFKC and drop all whitespace (no script conversion)."""
    text = PINYIN.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", "", text)


def _load_records():
    records = []
    with QUESTIONS.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            records.append((lineno, line))
    return records


@pytest.fixture(scope="module")
def raw_lines():
    assert QUESTIONS.exists(), f"missing {QUESTIONS}"
    return _load_records()


@pytest.fixture(scope="module")
def questions(raw_lines):
    out = []
    for lineno, line in raw_lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:  # pragma: no cover - reported by test_lines_parse
            pytest.fail(f"line {lineno} does not parse: {exc}")
    return out


@pytest.fixture(scope="module")
def seed_text():
    return {name: (SEEDS / name).read_text(encoding="utf-8") for name in SEED_DOCS if (SEEDS / name).exists()}


def test_seeds_present(seed_text):
    assert set(seed_text) == SEED_DOCS


def test_pinyin_regex_on_002(seed_text):
    raw = seed_text["002_236f301bd7d0f271.txt"]
    for annotated, plain in [("國務(wù)院", "國務院"), ("發(fā)展", "發展"), ("戰(zhàn)略", "戰略")]:
        assert annotated in raw
        assert PINYIN.sub("", annotated) == plain
    cleaned = PINYIN.sub("", raw)
    assert "國家信息化發展戰略綱要" in cleaned
    # Non-pinyin parentheses survive.
    for kept in ("(Tbps)", "(ICANN)", "(5G)"):
        assert kept in cleaned
    # Almost every annotation is removed (2,500+ in the file).
    assert len(PINYIN.findall(raw)) > 2000
    assert not re.search(r"\([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]{1,6}\)", cleaned)


def test_lines_parse(raw_lines):
    assert raw_lines, "question file is empty"
    for lineno, line in raw_lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            pytest.fail(f"line {lineno} does not parse: {exc}")
        assert isinstance(rec, dict), f"line {lineno} is not an object"


def test_schema_and_values(questions):
    for rec in questions:
        assert set(rec) == SCHEMA_KEYS, f"{rec.get('id')}: keys {sorted(rec)}"
        assert isinstance(rec["id"], str) and re.fullmatch(r"q\d{3}", rec["id"]), rec["id"]
        assert isinstance(rec["question"], str) and rec["question"].strip(), rec["id"]
        assert rec["lang"] in LANGS, f"{rec['id']}: lang {rec['lang']!r}"
        assert rec["type"] in TYPES, f"{rec['id']}: type {rec['type']!r}"
        for field in ("docs", "evidence", "answer_keys"):
            assert isinstance(rec[field], list), f"{rec['id']}: {field} not a list"
            assert all(isinstance(x, str) and x for x in rec[field]), f"{rec['id']}: bad {field}"
        assert isinstance(rec["answer"], str), rec["id"]


def test_ids_unique_and_sequential(questions):
    ids = [rec["id"] for rec in questions]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert ids == [f"q{i:03d}" for i in range(1, len(ids) + 1)]


def test_unanswerable_are_empty(questions):
    for rec in questions:
        if rec["type"] == "unanswerable":
            assert rec["docs"] == [] and rec["evidence"] == [] and rec["answer_keys"] == [], rec["id"]
            assert rec["answer"] == "", rec["id"]


def test_answerable_have_support(questions):
    for rec in questions:
        if rec["type"] == "unanswerable":
            continue
        assert rec["docs"], f"{rec['id']}: no docs"
        assert rec["evidence"], f"{rec['id']}: no evidence"
        assert 1 <= len(rec["answer_keys"]) <= 4, f"{rec['id']}: {len(rec['answer_keys'])} answer keys"
        assert rec["answer"].strip(), f"{rec['id']}: empty answer"
        assert len(set(rec["docs"])) == len(rec["docs"]), f"{rec['id']}: duplicate docs"
        for doc in rec["docs"]:
            assert doc in SEED_DOCS and (SEEDS / doc).exists(), f"{rec['id']}: unknown doc {doc}"


def test_evidence_verbatim(questions, seed_text):
    for rec in questions:
        for span in rec["evidence"]:
            assert any(span in seed_text[doc] for doc in rec["docs"]), (
                f"{rec['id']}: evidence not found verbatim in {rec['docs']}: {span!r}")


def test_evidence_shape(questions):
    for rec in questions:
        for span in rec["evidence"]:
            assert "\n" not in span and "\r" not in span, f"{rec['id']}: span crosses a line: {span!r}"
            assert not SPACE_RUN.search(span), f"{rec['id']}: span crosses a paragraph break: {span!r}"
            length = len(normalize(span))
            assert 10 <= length <= 80, f"{rec['id']}: span length {length}: {span!r}"


def test_comparisons_cover_each_doc(questions, seed_text):
    for rec in questions:
        if rec["type"] != "comparison":
            continue
        assert len(rec["docs"]) >= 2, f"{rec['id']}: comparison with {len(rec['docs'])} doc(s)"
        for doc in rec["docs"]:
            assert any(span in seed_text[doc] for span in rec["evidence"]), (
                f"{rec['id']}: no evidence span from {doc}")


def test_answer_keys_in_evidence(questions):
    for rec in questions:
        if rec["type"] == "unanswerable":
            continue
        spans = [normalize(s) for s in rec["evidence"]]
        for key in rec["answer_keys"]:
            nkey = normalize(key)
            assert nkey, f"{rec['id']}: empty key"
            assert any(nkey in s for s in spans), f"{rec['id']}: key {key!r} not in evidence"


def test_number_questions_have_numeric_key(questions):
    for rec in questions:
        if rec["type"] == "number":
            assert any(re.search(r"\d", normalize(k)) for k in rec["answer_keys"]), rec["id"]


def test_question_script_matches_lang(questions):
    for rec in questions:
        text = rec["question"]
        cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
        trad = sum(1 for ch in text if ch in TRAD_ONLY)
        if rec["lang"] == "en":
            letters = sum(1 for ch in text if ch.isascii() and ch.isalpha())
            assert letters > 2 * cjk, f"{rec['id']}: not an English question"
        else:
            assert cjk > 0, f"{rec['id']}: no Chinese characters"
            if rec["lang"] == "zh-Hant":
                assert trad > 0, f"{rec['id']}: no traditional-only characters"
            else:
                assert trad == 0, f"{rec['id']}: traditional characters in a zh question"


def test_question_not_copied_from_evidence(questions):
    for rec in questions:
        q = normalize(rec["question"])
        for span in rec["evidence"]:
            assert normalize(span) not in q, f"{rec['id']}: question contains its evidence verbatim"


def test_counts_and_coverage(questions):
    assert len(questions) >= 80
    types = Counter(rec["type"] for rec in questions)
    langs = Counter(rec["lang"] for rec in questions)
    assert types["unanswerable"] >= 8, types
    assert set(types) == TYPES, types
    assert set(langs) == LANGS, langs
    covered = {doc for rec in questions for doc in rec["docs"]}
    assert covered == SEED_DOCS, SEED_DOCS - covered


def test_heldout_set_is_well_formed_and_new(questions, seed_text):
    """eval/heldout.jsonl: same schema, evidence verbatim in the seeds, keys in the evidence,
    and no question copied from the dev set (it must stay unseen by the calibration)."""
    heldout = [json.loads(line) for line in (ROOT / "eval" / "heldout.jsonl").read_text("utf-8").splitlines()
               if line.strip()]
    assert [r["id"] for r in heldout] == [f"h{i:03d}" for i in range(1, len(heldout) + 1)]
    assert sum(r["type"] == "unanswerable" for r in heldout) >= 10
    dev = {normalize(r["question"]) for r in questions}
    seeds = {name: normalize(text) for name, text in seed_text.items()}
    for rec in heldout:
        assert set(rec) == SCHEMA_KEYS and rec["lang"] in LANGS and rec["type"] in TYPES, rec["id"]
        assert normalize(rec["question"]) not in dev, rec["id"]
        if rec["type"] == "unanswerable":
            assert not (rec["docs"] or rec["evidence"] or rec["answer_keys"]), rec["id"]
            continue
        for span in rec["evidence"]:
            assert any(normalize(span) in seeds[d] for d in rec["docs"]), (rec["id"], span)
        assert all(any(normalize(k) in normalize(s) for s in rec["evidence"]) for k in rec["answer_keys"]), rec["id"]
