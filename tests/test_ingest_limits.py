"""Files that are small on disk but costly to parse are skipped with a reason, quickly.

Every file is written by the test into ``tmp_path``. Each bad file sits next to a good
one, which must still be read: a bound ends one file, never the run.
"""

from __future__ import annotations

import io
import logging
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from ingest import IngestResult, ingest_folder
from ingest.loaders import load_docx, load_html
from settings import ChunkSettings

GOOD = "各地区各部门要结合实际，认真贯彻落实本通知要求，确保各项任务按期完成。"
QUICK_S = 5.0  # a refused file costs the child's start (~0.7 s) and a cheap check, not a parse


def _ingest(folder: Path, **overrides) -> tuple[IngestResult, float]:
    started = time.monotonic()
    result = ingest_folder(folder, replace(ChunkSettings(), **overrides), progress=False)
    return result, time.monotonic() - started


def _reasons(result: IngestResult) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in result.skipped}


def _good_docx(folder: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("总体要求", level=1)
    document.add_paragraph(GOOD)
    document.save(folder / "z_good.docx")


# A DOCX written by hand, so a part can be a deflate bomb made in milliseconds -------------


def _template_parts() -> tuple[dict[str, bytes], bytes, bytes]:
    """The parts of python-docx's blank document, and its body XML split around the body."""
    import docx

    out = io.BytesIO()
    docx.Document().save(out)
    with __import__("zipfile").ZipFile(out) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    body = parts.pop("word/document.xml")
    head, _, rest = body.partition(b"<w:body>")
    sect = rest[rest.index(b"<w:sectPr"):]
    return parts, head + b"<w:body>", sect


def _deflated(head: bytes, unit: bytes, count: int, tail: bytes) -> tuple[bytes, int, int]:
    """Raw deflate, CRC and size of ``head + unit * count + tail``. After a full flush the
    compressor starts afresh, so one block compresses to the same bytes every time and is
    compressed once, then repeated: 500 MB of XML in well under a second."""
    per_block = max(1, (6 << 20) // max(1, len(unit)))
    block = unit * per_block
    blocks, rest = divmod(count, per_block)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = [packer.compress(head) + packer.flush(zlib.Z_FULL_FLUSH)]
    packed_block = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    raw += [packed_block] * blocks
    raw.append(packer.compress(unit * rest + tail) + packer.flush())
    crc = zlib.crc32(head)
    for _ in range(blocks):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(unit * rest + tail, crc)
    return b"".join(raw), crc, len(head) + len(unit) * count + len(tail)


def _zip(members: dict[str, tuple[bytes, int, int]]) -> bytes:
    """A deflated zip of (raw deflate, CRC, size) members."""
    out, central = bytearray(), bytearray()
    for name, (raw, crc, size) in members.items():
        encoded = name.encode()
        central += struct.pack("<4s6H3L5H2L", b"PK\1\2", 20, 20, 0, 8, 0, 0, crc, len(raw), size,
                               len(encoded), 0, 0, 0, 0, 0, len(out)) + encoded
        out += struct.pack("<4s5H3L2H", b"PK\3\4", 20, 0, 8, 0, 0, crc, len(raw), size, len(encoded), 0)
        out += encoded + raw
    end = struct.pack("<4s4H2LH", b"PK\5\6", 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + end)


def _docx(paragraph: bytes, count: int, extra_parts: int = 0) -> bytes:
    parts, head, tail = _template_parts()
    members = {name: _deflated(data, b"", 0, b"") for name, data in parts.items()}
    members["word/document.xml"] = _deflated(head, paragraph, count, tail)
    for i in range(extra_parts):
        members[f"customXml/item{i}.xml"] = _deflated(b"<a/>", b"", 0, b"")
    return _zip(members)


def _refused_quickly(folder: Path, name: str) -> str:
    """Ingest ``folder`` (the bad file ``name`` beside a good DOCX): the bad one is skipped in
    well under a parse's time and the good one is read. Returns the skip reason."""
    _good_docx(folder)
    result, elapsed = _ingest(folder)
    assert [d.doc_id for d in result.documents] == ["z_good.docx"]
    assert elapsed < QUICK_S
    return _reasons(result)[name]


TEXT_PARAGRAPH = f"<w:p><w:r><w:t>{GOOD}</w:t></w:r></w:p>".encode()


# DOCX ---------------------------------------------------------------------------------


def test_docx_of_empty_paragraphs_765_kb_expanding_to_500_mb(tmp_path):
    """The issue's file: 765 KB on disk, 84 million empty paragraphs, 7.9 GB to parse."""
    bomb = _docx(b"<w:p/>", 84_000_000)
    assert len(bomb) < 1_000_000
    (tmp_path / "a_bomb.docx").write_bytes(bomb)
    reason = _refused_quickly(tmp_path, "a_bomb.docx")
    assert "DOCX expands to 505 MB (limit 100 MB, ChunkSettings.max_expanded_bytes)" == reason


def test_docx_with_too_many_paragraphs(tmp_path):
    """Small even uncompressed (6 MB), but a million paragraphs: python-docx needed ~2 ms each."""
    (tmp_path / "a_many.docx").write_bytes(_docx(b"<w:p/>", 1_000_000))
    reason = _refused_quickly(tmp_path, "a_many.docx")
    assert "more than 200,000 paragraphs" in reason and "ChunkSettings.max_paragraphs" in reason, reason


def test_docx_with_too_many_parts(tmp_path):
    (tmp_path / "parts.docx").write_bytes(_docx(TEXT_PARAGRAPH, 3, extra_parts=30))
    result, _ = _ingest(tmp_path, max_zip_members=20)
    assert "ChunkSettings.max_zip_members" in _reasons(result)["parts.docx"]


def test_large_docx_parses_in_seconds(tmp_path):
    """Resolving styles once: 50,000 paragraphs took 99 s with ``paragraph.style``."""
    heading = b'<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>\xe6\xa0\x87\xe9\xa2\x98</w:t></w:r></w:p>'
    data = _docx(heading + TEXT_PARAGRAPH * 9, 2_000)  # 20,000 paragraphs
    started = time.monotonic()
    text = load_docx(data)
    assert time.monotonic() - started < 10  # ~0.6 s; the style lookups alone took 40 s
    assert text.count("# 标题\n") == 2_000 and text.count(GOOD) == 18_000


def _reference_docx_text(data: bytes) -> str:
    """The loader as it was: python-docx's own style and text resolution, paragraph by paragraph."""
    import docx

    from docx.table import Table

    document = docx.Document(io.BytesIO(data))
    lines = []
    for para in document.iter_inner_content():
        if isinstance(para, Table):  # in reading order, one pipe row a line, each cell on one line
            lines += [" | ".join(" ".join(c.text.split()).replace("|", "｜") for c in row.cells) for row in para.rows]
            continue
        style = (para.style.name or "") if para.style is not None else ""
        if style.startswith("Heading") and style[-1:].isdigit():
            lines.append(f"{'#' * int(style[-1])} {para.text}")
        elif style == "Title":
            lines.append(f"# {para.text}")
        else:
            lines.append(para.text)
    return "\n".join(lines)


def test_docx_text_identical_to_python_docx():
    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.enum.text import WD_BREAK
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    document = docx.Document()
    document.add_heading("文件标题", level=0)  # Title
    for level in (1, 2, 3):
        document.add_heading(f"第{level}级标题", level=level)
    document.styles.add_style("Heading Custom", WD_STYLE_TYPE.PARAGRAPH)
    document.add_paragraph("自定义样式名", style="Heading Custom")
    document.add_paragraph("引用段落", style="Quote")
    para = document.add_paragraph("制表\t与换行")
    para.add_run("后续").add_break(WD_BREAK.LINE)
    para.add_run("末尾")
    link = parse_xml(f'<w:hyperlink {nsdecls("w")}><w:r><w:t>链接文字</w:t></w:r></w:hyperlink>')
    document.add_paragraph("见")._p.append(link)
    odd = document.add_paragraph("未知样式")
    odd._p.style = "NoSuchStyle"  # an id the styles part lacks: the default style
    char = document.add_paragraph("字符样式")
    char._p.style = document.styles["Strong"].style_id  # a character style on a paragraph: the default
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "合并单元格"
    table.cell(1, 0).text, table.cell(1, 1).text = "指标", "目标值"
    table.cell(1, 1).add_paragraph("第二段")
    out = io.BytesIO()
    document.save(out)
    data = out.getvalue()
    assert load_docx(data) == _reference_docx_text(data)
    text = load_docx(data)
    assert "# 文件标题\n# 第1级标题\n## 第2级标题\n### 第3级标题\n自定义样式名" in text
    assert "见链接文字" in text and "指标 | 目标值 第二段" in text  # a row stays on one line


# HTML ---------------------------------------------------------------------------------


def test_html_with_too_many_tags(tmp_path):
    """2.7 MB of paragraphs: 300,000 tags, refused on the raw bytes before any soup."""
    (tmp_path / "a_tags.html").write_bytes(b"<html><body>" + b"<p>x</p>" * 300_000 + b"</body></html>")
    reason = _refused_quickly(tmp_path, "a_tags.html")
    assert "more than 250,000 tags" in reason and "ChunkSettings.max_html_tags" in reason, reason


def test_flat_html_page_is_not_quadratic():
    """Inserting line breaks next to each tag looked it up among its siblings: a page of
    30,000 flat paragraphs took 45 s."""
    page = "<html><body>" + "".join(f"<p>第{i}段。</p>" for i in range(30_000)) + "</body></html>"
    started = time.monotonic()
    text = load_html(page.encode("utf-8"))
    assert time.monotonic() - started < 10  # ~1 s
    assert "\n第29999段。\n" in text


def _reference_html_text(data: bytes) -> str:
    """The loader as it was: line breaks inserted into the soup, then get_text()."""
    from bs4 import BeautifulSoup

    from ingest.loaders import _BLOCK_TAGS, _declared_charset, load_text

    soup = BeautifulSoup(load_text(data, _declared_charset(data)), "lxml")
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header", "aside", "form", "iframe"]):
        tag.decompose()
    for level in range(1, 7):
        for tag in soup.find_all(f"h{level}"):
            tag.replace_with(f"\n{'#' * level} {tag.get_text(' ', strip=True)}\n")
    for table in soup.find_all("table"):  # a table without tables inside: pipe rows (ingest.tables)
        if table.find("table") is None:
            rows = [" | ".join(" ".join(c.get_text().split()).replace("|", "｜") for c in tr.find_all(["td", "th"]))
                    for tr in table.find_all("tr")]
            table.replace_with("\n" + "\n".join(r for r in rows if r.strip(" |")) + "\n")
    for tag in soup.find_all(["td", "th"]):
        tag.insert_after(" ")
    for tag in soup.find_all(list(_BLOCK_TAGS)):
        tag.insert_before("\n")
        tag.insert_after("\n")
    return (soup.body or soup).get_text()


PAGES = [
    """<html><head><title>标题</title><script>var x = 1;</script></head><body>
    <nav><a href="/">首页</a></nav><h1>关于<b>推进</b>数字政府<script>skip()</script>建设</h1>
    <div>加快<strong>数字政府</strong>建设<!-- 注释 --><br>第二行<![CDATA[ 数据 ]]></div>
    <table><tr><th>指标</th><th>目标</th></tr><tr><td>网上<i>可办</i>率</td><td>90%</td></tr></table>
    <ul><li>一</li><li>二<form><input value="x">表单</form></li></ul><h3>  空白  标题 </h3>
    <p>段落<span>内联</span>文字</p><footer>页脚</footer>尾部文字</body></html>""",
    "<p>没有 body 的片段</p>文字<h2>标题</h2>",
    "<html><body><div><div><p>深层<b>嵌套</b></p></div>文字</div><pre>  预格式\n文本 </pre></body></html>",
]


@pytest.mark.parametrize("page", PAGES)
def test_html_text_identical_to_soup_editing(page):
    data = page.encode("utf-8")
    assert load_html(data) == _reference_html_text(data)


# PDF ----------------------------------------------------------------------------------


def _pdf(path: Path, pages: int, lines: int = 1) -> None:
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    for page in range(pages):
        for line in range(lines):
            pdf.drawString(72, 750 - 14 * line, f"Page {page} line {line}: services shall be online by 2025.")
        pdf.showPage()
    pdf.save()


def test_pdf_with_too_many_pages(tmp_path):
    _pdf(tmp_path / "a_pages.pdf", 30)
    _pdf(tmp_path / "z_short.pdf", 3)
    result, _ = _ingest(tmp_path, max_pdf_pages=10)
    reason = _reasons(result)["a_pages.pdf"]
    assert "PDF has 30 pages" in reason and "ChunkSettings.max_pdf_pages" in reason, reason
    assert [d.doc_id for d in result.documents] == ["z_short.pdf"]


def test_pdf_text_bound_stops_extraction(tmp_path):
    _pdf(tmp_path / "long.pdf", 5, lines=40)
    result, _ = _ingest(tmp_path, max_text_chars=5_000)
    assert "ChunkSettings.max_text_chars" in _reasons(result)["long.pdf"]


def test_pdf_stream_bound_is_pypdf_own():
    """pypdf's decoded-stream bounds are lowered to max_expanded_bytes while a PDF is read."""
    import pypdf

    from ingest.limits import pdf_limits

    if not hasattr(pypdf, "get_configuration"):
        pytest.skip("this pypdf has no Configuration")
    with pdf_limits(replace(ChunkSettings(), max_expanded_bytes=1_000)):
        assert pypdf.get_configuration().zlib_maximum_output_length == 1_000
    assert pypdf.get_configuration().zlib_maximum_output_length > 1_000


# Time and memory of the parse itself --------------------------------------------------


def test_parse_past_the_time_bound_is_killed(tmp_path):
    """A valid page within every static bound whose parse takes seconds (~6 s for 100,000
    tags) is killed at the bound; the next file gets a fresh parser process."""
    page = "<html><body>" + "<div><p>段落<b>加粗</b></p></div>" * 33_000 + "</body></html>"
    (tmp_path / "a_slow.html").write_text(page, encoding="utf-8")
    _good_docx(tmp_path)
    result, elapsed = _ingest(tmp_path, parse_timeout_s=0.5)
    reason = _reasons(result)["a_slow.html"]
    assert reason == "parsing took longer than 0.5 s (ChunkSettings.parse_timeout_s)"
    assert [d.doc_id for d in result.documents] == ["z_good.docx"]
    assert elapsed < QUICK_S


def test_parse_past_the_memory_bound_fails_in_the_child(tmp_path):
    """150,000 paragraphs pass the static checks but need over 200 MB to parse."""
    (tmp_path / "a_big.docx").write_bytes(_docx(TEXT_PARAGRAPH, 150_000))
    _good_docx(tmp_path)
    result, _ = _ingest(tmp_path, parse_memory_bytes=150_000_000)
    reason = _reasons(result)["a_big.docx"]
    assert reason.endswith("more than 150 MB of memory (ChunkSettings.parse_memory_bytes)"), reason
    # the good file was parsed under the same cap, by a fresh process
    assert [d.doc_id for d in result.documents] == ["z_good.docx"]


def test_no_parser_process_falls_back_with_a_warning(tmp_path, monkeypatch, caplog):
    import ingest.sandbox as sandbox

    def refuse(*args, **kwargs):
        raise OSError("no processes here")

    monkeypatch.setattr(sandbox.subprocess, "Popen", refuse)
    _good_docx(tmp_path)
    (tmp_path / "tags.html").write_bytes(b"<p>x</p>" * 300_000)
    with caplog.at_level(logging.WARNING, logger="ingest.sandbox"):
        result, _ = _ingest(tmp_path)
    assert "no processes here" in caplog.text and "in this process" in caplog.text
    assert [d.doc_id for d in result.documents] == ["z_good.docx"]
    assert "ChunkSettings.max_html_tags" in _reasons(result)["tags.html"]  # static checks still apply


def test_parser_process_imports_no_model_code():
    """The child is a fresh interpreter with the parsers only: no torch, no retriever."""
    probe = ("import sys, ingest.sandbox, ingest.loaders, docx, bs4, pypdf; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'retriever', 'qa')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unexpected_error_in_the_child_keeps_its_name():
    from types import SimpleNamespace

    from ingest.pipeline import _unexpected_reason
    from ingest.sandbox import ParseFailed, Parser

    # settings without the loaders' bounds: the HTML loader fails on them in the child
    cfg = SimpleNamespace(parse_in_subprocess=True, parse_timeout_s=30.0, parse_memory_bytes=2 * 1024**3)
    with Parser(cfg) as parser:
        with pytest.raises(ParseFailed) as failed:
            parser.parse(".html", b"<p>x</p>")
        assert _unexpected_reason(failed.value).startswith("could not be read (AttributeError: ")
        with pytest.raises(ParseFailed):  # the same child answers the next file
            parser.parse(".html", b"<p>y</p>")
