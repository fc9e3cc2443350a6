"""Ingestion on the real seed corpus: cleaning, structure and chunk invariants."""

from __future__ import annotations

import re

from ingest import ingest_folder
from settings import ChunkSettings

from conftest import SEEDS

PINYIN = re.compile(r"[(（][a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]{1,6}[)）]")
def text_chunks(result):
    """The passages cut from the text (table-row passages are renderings: tests/test_ingest_tables.py)."""
    return [c for c in result.chunks if c.kind == "text"]


TRAILER_WORDS = ["责任编辑", "Public domain", "微信公众平台", "精选专题", "扫描下面的二维码", "維基文庫", "维基文库", "轉載", "本作品是"]


def test_all_seeds_read(seed_result):
    assert len(seed_result.documents) == 5
    assert seed_result.skipped == []
    assert {d.script for d in seed_result.documents} == {"Hans", "Hant"}
    assert {d.doc_id: d.script for d in seed_result.documents}["002_236f301bd7d0f271.txt"] == "Hant"


def test_titles_come_from_metadata(seed_docs):
    assert seed_docs["001_f21eb84e8a85de7c.txt"].title == "“十四五”国家信息化规划"
    assert all(c.title == seed_docs[c.doc_id].title for c in ingest_folder(SEEDS, progress=False).chunks)


def test_no_pinyin_annotations_left_in_002(seed_result):
    raw = (SEEDS / "002_236f301bd7d0f271.txt").read_text(encoding="utf-8")
    assert len(PINYIN.findall(raw)) > 2000  # the file really has them
    chunks = [c for c in seed_result.chunks if c.doc_id == "002_236f301bd7d0f271.txt"]
    assert chunks
    for chunk in chunks:
        assert not PINYIN.findall(chunk.text), chunk.text[:80]
    text = "".join(c.text for c in chunks)
    assert "國務院" in text and "發展" in text and "戰略" in text
    assert "(一)" in text or "（一）" in text  # real parentheses survive


def test_no_trailer_text_in_any_chunk(seed_result):
    for chunk in seed_result.chunks:
        for word in TRAILER_WORDS:
            assert word not in chunk.text, (chunk.doc_id, word)


def test_trailers_really_were_there():
    raw = "".join(p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt"))
    for word in ["责任编辑", "Public domain", "微信公众平台"]:
        assert word in raw


def test_content_before_trailer_kept(seed_docs):
    # The last real sentence of 000 sits right above its trailer; it must survive.
    assert seed_docs["000_23acc2fe7a7ca56c.txt"].text.endswith("推动由医疗救治向健康服务转变。")
    # 004 ends with a short annex list that looks like furniture but is content.
    assert "重点任务分工方案" in seed_docs["004_14d6703fe5634065.txt"].text


def test_repeated_title_removed(seed_docs):
    text = seed_docs["000_23acc2fe7a7ca56c.txt"].text
    assert text.count("国务院关于印发“十三五”国家信息化规划的通知(5)") == 1
    assert seed_docs["001_f21eb84e8a85de7c.txt"].text.count("“十四五”国家信息化规划\n") == 1


def test_003_split_into_paragraphs(seed_docs):
    raw = (SEEDS / "003_b8f887ea6ba329fa.txt").read_text(encoding="utf-8")
    assert raw.count("\n") <= 2
    paragraphs = [p for p in seed_docs["003_b8f887ea6ba329fa.txt"].text.split("\n") if p.strip()]
    assert len(paragraphs) > 80
    assert "\u00a0" not in seed_docs["003_b8f887ea6ba329fa.txt"].text


def test_offsets_round_trip(seed_result, seed_docs):
    assert len(text_chunks(seed_result)) > 200
    for chunk in text_chunks(seed_result):
        assert seed_docs[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text


def test_chunks_cover_every_sentence(seed_result, seed_docs):
    """Nothing between chunks is lost: every non-space character is in some chunk."""
    for doc_id, doc in seed_docs.items():
        covered = bytearray(len(doc.text))
        for c in (c for c in text_chunks(seed_result) if c.doc_id == doc_id):
            covered[c.start : c.end] = b"\x01" * (c.end - c.start)
        missing = [ch for ch, flag in zip(doc.text, covered) if not flag and not ch.isspace()]
        assert missing == [], (doc_id, "".join(missing)[:50])


def test_section_paths(seed_result):
    def section_of(doc_prefix: str, text: str) -> str:
        return next(c.section for c in seed_result.chunks if c.doc_id.startswith(doc_prefix) and text in c.text)

    assert section_of("001", "科学统筹 5G 网络布局") == (
        "四、重大任务和重点工程 > (一)建设泛在智联的数字基础设施体系 > 专栏 1 5G 创新应用工程 > 1.加快 5G 网络建设"
    )
    assert section_of("001", "行动目标:到2023年全国养老数据管理水平") == "五、优先行动 > (十)智慧养老服务拓展行动"
    assert section_of("004", "增强窄带物联网") == (
        "三、主要任务与重点工程 > (七)建设新一代信息基础设施 > 2.积极部署物联网感知设施"
    )
    assert section_of("004", "“十二五”期间,全省加速升级") == (
        "一、发展现状和面临形势 > (一)发展现状 > 1.信息基础设施快速完善"
    )
    assert section_of("000", "面向“一带一路”沿线及周边国家提供基本服务") == "五、优先行动 > (二)北斗系统建设应用行动"


def test_chunk_sizes_within_bounds(seed_result):
    cfg = ChunkSettings()
    sizes = [len(c.text) for c in seed_result.chunks]
    assert max(sizes) <= cfg.max_chars
    assert sorted(sizes)[len(sizes) // 2] >= 120  # not shredded into single sentences


def test_chunks_end_on_sentence_boundaries(seed_result):
    ends = "。！？；;!?”"
    enders = sum(1 for c in text_chunks(seed_result) if c.text[-1] in ends)
    assert enders / len(text_chunks(seed_result)) > 0.9


def test_overlap_between_neighbours(seed_result):
    cfg = ChunkSettings()
    chunks = text_chunks(seed_result)
    overlaps = [a.end - b.start for a, b in zip(chunks, chunks[1:]) if a.doc_id == b.doc_id and a.section == b.section]
    assert any(o > 0 for o in overlaps)
    assert all(o <= cfg.overlap_chars for o in overlaps)


def test_no_overlap_when_disabled():
    result = ingest_folder(SEEDS, ChunkSettings(overlap_chars=0), progress=False)
    chunks = text_chunks(result)
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:]) if a.doc_id == b.doc_id)


def test_chunk_size_is_configurable():
    small = ingest_folder(SEEDS, ChunkSettings(target_chars=150, max_chars=250, overlap_chars=0), progress=False)
    assert max(len(c.text) for c in small.chunks) <= 250
    assert len(small.chunks) > len(ingest_folder(SEEDS, progress=False).chunks)


def test_ids_stable_and_unique(seed_result):
    again = ingest_folder(SEEDS, progress=False)
    assert [c.chunk_id for c in again.chunks] == [c.chunk_id for c in seed_result.chunks]
    assert len({c.chunk_id for c in seed_result.chunks}) == len(seed_result.chunks)


def test_ingest_cli_summary(tmp_path, capsys):
    from ingest.__main__ import main

    out = tmp_path / "chunks.jsonl"
    assert main([str(SEEDS), "--quiet", "--chunks-out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "documents read: 5" in printed
    assert len(out.read_text(encoding="utf-8").splitlines()) > 200
