"""Tables become rows a reader can use (issue 11, section 3).

A table row is a passage of its own (``Chunk.kind == "table_row"``) whose text is a
self-describing rendering and whose offsets are the row's span in the document. Checked on
the seeds (the 14th Five-Year indicator table of 001, and no table anywhere else), on every
format that can carry a table, and downstream: index records, citations and search.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from ingest import Chunk, Document, ingest_folder
from ingest.records import TABLE_ROW, TEXT
from ingest.tables import table_rows

from conftest import SEEDS

T001 = "001_f21eb84e8a85de7c.txt"
TITLE = "“十四五”信息化发展主要指标"


def rows_of(result, doc_id: str) -> list[Chunk]:
    return [c for c in result.chunks if c.doc_id == doc_id and c.kind == TABLE_ROW]


def _only(result) -> tuple[Document, list[Chunk]]:
    assert len(result.documents) == 1, result.skipped
    doc = result.documents[0]
    return doc, rows_of(result, doc.doc_id)


# -- the seeds ------------------------------------------------------------------------------
def test_row_passages_per_seed(seed_result):
    """Only 001 has a table (17 numbered rows and the un-numbered overall row)."""
    counts = Counter(c.doc_id[:3] for c in seed_result.chunks if c.kind == TABLE_ROW)
    assert dict(counts) == {"001": 18}
    assert all(c.kind == TEXT for c in seed_result.chunks if not c.doc_id.startswith("001"))


def test_issue_example_row(seed_result):
    texts = [c.text for c in rows_of(seed_result, T001)]
    assert (f"{TITLE}｜产业转型｜数字经济核心产业增加值占GDP比重(%)：2020年 7.8，2025年 10，属性 预期性"
            in texts)


def test_wrapped_names_rejoined_and_categories_carried(seed_result):
    by_name = {c.text.split("｜")[-1].split("：")[0]: c for c in rows_of(seed_result, T001)}
    # names the text wraps over two or three lines
    for name in ["1000M及以上速率的光纤接入用户(万户)", "每万人口新一代信息技术产业发明专利拥有量(件)",
                 "IT项目投资占全社会固定资产投资总额的比例(%)", "计算机、通信和其他电子设备制造业研发经费投入强度(%)",
                 "关键业务环节全面数字化的企业比例(%)"]:
        assert name in by_name, sorted(by_name)
    # "2 5G用户普及率(%) 15 56 预期性" has no category: it is the one of the row above
    assert by_name["5G用户普及率(%)"].text == f"{TITLE}｜数字设施｜5G用户普及率(%)：2020年 15，2025年 56，属性 预期性"
    assert by_name["电子诉讼占比(%)"].text.startswith(f"{TITLE}｜政务服务｜")
    assert by_name["数字中国发展指数"].text.startswith(f"{TITLE}｜总体发展水平｜")
    assert not any(c.text.split("｜")[1].isdigit() for c in by_name.values())  # the row numbers are left out


def test_note_attached_to_the_rows_it_concerns(seed_result):
    noted = [c for c in rows_of(seed_result, T001) if "2019年数据" in c.text]
    assert len(noted) == 1
    assert "IT项目投资" in noted[0].text and "2020年 3.5*" in noted[0].text


def test_row_offsets_point_at_the_row(seed_result, seed_docs):
    doc = seed_docs[T001]
    rows = rows_of(seed_result, T001)
    header = doc.text.index("序号 类别 指标 2020 2025 属性")
    note = doc.text.index("注:带*的为2019年数据")
    previous_end = header
    for row in rows:
        source = doc.text[row.start:row.end]
        assert header < row.start < row.end < note
        assert row.start >= previous_end  # in order, never overlapping
        previous_end = row.end
        # the span starts at the row's first cell and ends with its attribute
        assert source == source.strip() and source.endswith("预期性")
        # every value of the rendering is in the span the source view highlights
        for value in row.text.split("：", 1)[1].split("（")[0].split("，"):
            assert value.split()[-1] in source, (value, source)
    nine = next(r for r in rows if "数字经济核心产业" in r.text)
    assert doc.text[nine.start:nine.end] == "9 产业转型 数字经济核心产业增加值占GDP比\n\n重(%)\n\n7.8 10 预期性"


def test_rows_have_the_tables_section(seed_result):
    assert {c.section for c in rows_of(seed_result, T001)} == {"二、总体部署 > (三)发展目标"}


def test_no_row_passage_from_prose(seed_result, seed_docs):
    """A row's source is short lines without sentence punctuation: never a paragraph or a list item."""
    for row in (c for c in seed_result.chunks if c.kind == TABLE_ROW):
        source = seed_docs[row.doc_id].text[row.start:row.end]
        lines = [line for line in source.split("\n") if line.strip()]
        assert 1 <= len(lines) <= 4
        assert all(len(line) <= 50 and "。" not in line and "；" not in line for line in lines), source


def test_row_ids_stable_and_unique(seed_result):
    again = rows_of(ingest_folder(SEEDS, progress=False), T001)
    first = rows_of(seed_result, T001)
    assert [c.chunk_id for c in again] == [c.chunk_id for c in first]
    assert [c.chunk_id for c in first] == [Chunk.make_id(T001, c.text) for c in first]
    assert len({c.chunk_id for c in seed_result.chunks}) == len(seed_result.chunks)


def test_text_chunks_still_hold_the_table(seed_result, seed_docs):
    """Rows are added: the table text stays in the ordinary passages (nothing lost if misread)."""
    joined = "".join(c.text for c in seed_result.chunks if c.doc_id == T001 and c.kind == TEXT)
    assert "9 产业转型 数字经济核心产业增加值占GDP比" in joined and "7.8 10 预期性" in joined


# -- ordinary text never becomes a table ----------------------------------------------------
NOT_TABLES = [
    # a numbered list with years and numbers
    "主要目标\n1. 到2020年，宽带网络覆盖90%以上的贫困村。\n2. 到2025年，5G用户普及率达到56%。\n3. 到2035年，基本建成数字中国。",
    # a heading-like line of labels, followed by prose, not rows
    "序号 类别 指标 2020 2025 属性\n本表列出的指标将在年度报告中更新，具体数值见附件。\n下一段正文。",
    # short lines ending in numbers, but no heading line
    "网民规模 9.89 12\n5G用户普及率 15 56\n光纤用户 640 6000",
    # one row only
    "指标 2020 2025\n网民规模 9.89 12",
    # a date line and an issuing number
    "川府发〔2017〕62号 2017年12月21日\n各市(州)人民政府,省政府各部门:\n2016 2017 2018\n现印发你们。",
    # pipe characters in running text
    "选择 A|B 两种方案之一。\n然后 C|D 再比较。",
]


@pytest.mark.parametrize("text", NOT_TABLES)
def test_ordinary_text_is_no_table(text):
    assert table_rows(text) == []


# -- every format that carries a table ------------------------------------------------------
def _ingest(folder: Path):
    return ingest_folder(folder, progress=False)


FLAT = """二、发展目标
到2025年，数字化发展水平显著提升。
主要指标
序号 领域 指标 2020年 2025年 属性
1 基础设施 千兆宽带用户数
(万户)
640 6000 预期性
2 5G基站数(万个) 71.8 360 预期性
3 数字经济 核心产业增加值占比(%) 7.8 10 约束性
注：2020年为预估数。
三、主要任务
加快建设网络。"""


def test_text_file_table(tmp_path):
    (tmp_path / "plan.txt").write_text(FLAT, encoding="utf-8")
    doc, rows = _only(_ingest(tmp_path))
    assert [r.text for r in rows] == [
        "主要指标｜基础设施｜千兆宽带用户数(万户)：2020年 640，2025年 6000，属性 预期性（注：2020年为预估数）",
        "主要指标｜基础设施｜5G基站数(万个)：2020年 71.8，2025年 360，属性 预期性（注：2020年为预估数）",
        "主要指标｜数字经济｜核心产业增加值占比(%)：2020年 7.8，2025年 10，属性 约束性（注：2020年为预估数）",
    ]
    assert doc.text[rows[0].start:rows[0].end] == "1 基础设施 千兆宽带用户数\n(万户)\n640 6000 预期性"
    assert {r.section for r in rows} == {"二、发展目标"}


HTML_TABLE = """<html><body><h1>数字政府建设方案</h1><p>为加快建设，制定本方案。</p>
<table><caption>主要指标</caption>
<tr><th>类别</th><th>指标</th><th>2020年</th><th>2025年</th></tr>
<tr><td rowspan="2">政务<b>服务</b></td><td>网上可办率(%)</td><td>80</td><td>90</td></tr>
<tr><td>电子证照<i>共享</i>率(%)</td><td>50</td><td>95</td></tr>
<tr><td>数据</td><td>开放数据集(个)</td><td>1,200</td><td>5,000</td></tr>
</table><p>各地要抓好落实。</p></body></html>"""


def test_html_table(tmp_path):
    (tmp_path / "plan.html").write_text(HTML_TABLE, encoding="utf-8")
    doc, rows = _only(_ingest(tmp_path))
    assert [r.text for r in rows] == [
        "主要指标｜政务服务｜网上可办率(%)：2020年 80，2025年 90",
        "主要指标｜政务服务｜电子证照共享率(%)：2020年 50，2025年 95",  # the rowspan repeats the category
        "主要指标｜数据｜开放数据集(个)：2020年 1,200，2025年 5,000",
    ]
    assert doc.text[rows[1].start:rows[1].end] == "政务服务 | 电子证照共享率(%) | 50 | 95"
    assert doc.text.index("为加快建设") < rows[0].start < doc.text.index("各地要抓好落实")  # in reading order


def test_html_layout_table_is_no_data_table(tmp_path):
    page = ("<html><body><table><tr><td><p>第一段正文很长，讲述背景。</p></td><td>侧栏</td></tr>"
            "<tr><td><table><tr><td>嵌套</td></tr></table></td><td>链接</td></tr></table></body></html>")
    (tmp_path / "layout.html").write_text(page, encoding="utf-8")
    _, rows = _only(_ingest(tmp_path))
    assert rows == []


def _docx(build) -> bytes:
    import docx

    document = docx.Document()
    build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_docx_table_in_reading_order(tmp_path):
    def build(document):
        document.add_paragraph("主要指标")
        table = document.add_table(rows=4, cols=4)
        for i, row in enumerate([["类别", "指标", "2020", "2025"], ["数字设施", "网民规模(亿)", "9.89", "12"],
                                 ["", "5G用户普及率(%)", "15", "56"], ["创新能力", "专利|发明(件)", "2.7", "5.2"]]):
            for j, value in enumerate(row):
                table.cell(i, j).text = value
        table.cell(1, 0).merge(table.cell(2, 0)).text = "数字设施"  # a vertically merged category
        document.add_paragraph("表后正文。")

    (tmp_path / "plan.docx").write_bytes(_docx(build))
    doc, rows = _only(_ingest(tmp_path))
    assert [r.text for r in rows] == [
        "主要指标｜数字设施｜网民规模(亿)：2020年 9.89，2025年 12",
        "主要指标｜数字设施｜5G用户普及率(%)：2020年 15，2025年 56",
        "主要指标｜创新能力｜专利｜发明(件)：2020年 2.7，2025年 5.2",  # a "|" in a cell is no border
    ]
    assert rows[-1].end < doc.text.index("表后正文")


def test_markdown_table(tmp_path):
    md = "# 规划\n\n表1 主要目标\n\n| 指标 | 2020 | 2025 |\n|---|---:|---:|\n| 网民规模(亿) | 9.89 | 12 |\n| 5G普及率(%) | 15 | 56 |\n"
    (tmp_path / "plan.md").write_text(md, encoding="utf-8")
    _, rows = _only(_ingest(tmp_path))
    assert [r.text for r in rows] == ["表1 主要目标｜网民规模(亿)：2020年 9.89，2025年 12",
                                      "表1 主要目标｜5G普及率(%)：2020年 15，2025年 56"]


def test_pdf_table_from_the_text_layer(tmp_path):
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = canvas.Canvas(str(tmp_path / "plan.pdf"))
    pdf.setFont("STSong-Light", 10)
    y = 780
    for line in ["二、发展目标", "到2025年，数字中国建设取得决定性进展。", "主要指标"]:
        pdf.drawString(72, y, line)
        y -= 20
    for row in [["序号", "类别", "指标", "2020", "2025", "属性"], ["1", "数字设施", "网民规模(亿)", "9.89", "12", "预期性"],
                ["2", "", "5G用户普及率(%)", "15", "56", "预期性"], ["3", "创新能力", "发明专利拥有量(件)", "2.7", "5.2", "预期性"]]:
        for x, cell in zip([72, 110, 180, 380, 430, 480], row):  # one text object per cell
            pdf.drawString(x, y, cell)
        y -= 16
    pdf.drawString(72, y - 10, "三、主要任务")
    pdf.save()
    doc, rows = _only(_ingest(tmp_path))
    assert [r.text for r in rows] == [
        "主要指标｜数字设施｜网民规模(亿)：2020年 9.89，2025年 12，属性 预期性",
        "主要指标｜数字设施｜5G用户普及率(%)：2020年 15，2025年 56，属性 预期性",
        "主要指标｜创新能力｜发明专利拥有量(件)：2020年 2.7，2025年 5.2，属性 预期性",
    ]
    assert "到2025年，数字中国建设取得决定性进展。" in doc.text
    assert doc.text[rows[0].start:rows[0].end] == "1 数字设施 网民规模(亿) 9.89 12 预期性"


# -- downstream: records, index, citations, search ------------------------------------------
def test_index_records_keep_the_kind_and_old_records_read_as_text(seed_index, tmp_path):
    import shutil

    from retriever.store import current_dir, read_generation, read_index, read_manifest

    stored = read_index(seed_index)
    assert Counter(c.kind for c in stored.chunks)[TABLE_ROW] == 18
    # a record written before the field existed (no "kind") reads as a text passage
    copy = tmp_path / "old"
    shutil.copytree(current_dir(seed_index), copy)
    rows = [json.loads(line) for line in (copy / "chunks.jsonl").read_text("utf-8").splitlines()]
    (copy / "chunks.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "kind"}, ensure_ascii=False) + "\n" for r in rows),
        encoding="utf-8")
    old = read_generation(read_manifest(seed_index), copy, verify=False)
    assert {c.kind for c in old.chunks} == {TEXT}


def test_citation_of_a_row_highlights_the_whole_row(seed_result):
    from qa.citations import CitationBuilder
    from retriever import Hit

    row = next(c for c in rows_of(seed_result, T001) if "数字经济核心产业" in c.text)
    text = next(c for c in seed_result.chunks if c.kind == TEXT)
    builder = CitationBuilder()
    i = row.text.index("2025年 10")
    builder.quote(Hit.from_chunk(row, 1.0), i, i + len("2025年 10"))
    builder.quote(Hit.from_chunk(text, 0.5), 0, 5)
    cited_row, cited_text = builder.citations()
    assert cited_row.quote == "2025年 10"
    assert (cited_row.quote_start, cited_row.quote_end) == (row.start, row.end)
    assert (cited_text.quote_start, cited_text.quote_end) == (text.start, text.start + 5)


def test_search_finds_the_row_beside_the_text_passage(retriever):
    hits = retriever.search("十四五期间数字经济核心产业增加值占GDP比重的目标是多少？", k=5)
    kinds = {h.kind for h in hits if "数字经济核心产业增加值占GDP比" in h.text}
    assert TABLE_ROW in kinds
    row = next(h for h in hits if h.kind == TABLE_ROW and "数字经济核心产业" in h.text)
    assert "2025年 10" in row.text


def test_rows_of_one_document_do_not_fill_the_list(retriever):
    """A question sharing only the years with the table gets at most table_rows_per_doc rows."""
    cap = retriever.settings.retrieval.table_rows_per_doc
    for query in ["2020 2025", "What target does the plan set for 2025?", "十四五 信息化 主要指标"]:
        hits = retriever.search(query, k=10)
        assert sum(h.kind == TABLE_ROW for h in hits) <= cap, query


def test_extractive_answer_quotes_the_row_once(retriever, settings):
    from qa import Assistant

    assistant = Assistant(retriever, settings.override("qa", generator="extractive", sentence_cache_dir=""))
    answer = assistant.ask("十四五期间数字经济核心产业增加值占GDP比重的目标是多少？")
    rows = [c for c in answer.citations if c.hit.kind == TABLE_ROW]
    assert rows and "2025年 10" in rows[0].quote, answer.text
    assert (rows[0].quote_start, rows[0].quote_end) == (rows[0].hit.start, rows[0].hit.end)
    assert "7.8 10 预期性" not in answer.text  # the same row, flattened in a text passage, is not quoted again
    # rows share title and headings, so a second row is quoted only when the question names it
    both = assistant.ask("网民规模和5G用户普及率2025年的目标分别是多少？")
    names = {c.quote.split("：")[0].split("｜")[-1] for c in both.citations if c.hit.kind == TABLE_ROW}
    assert names == {"网民规模(亿)", "5G用户普及率(%)"}, both.text
    one = assistant.ask("十四五规划对IPv6提出了什么目标?")
    assert [c.hit.kind for c in one.citations].count(TABLE_ROW) == 1, one.text
