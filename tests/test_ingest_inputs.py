"""Ingestion of the inputs users really hand us: every encoding and format, and bad files.

Every file is written by the test into ``tmp_path``; nothing here depends on the seeds.
A bad file must become one ``Skipped`` line naming the problem, never a traceback, and
never stop the good files next to it from being read.
"""

from __future__ import annotations

import io
import random
import tracemalloc
import zipfile
from pathlib import Path

import pytest

import ingest.pipeline as pipeline
from ingest import IngestResult, clean_text, ingest_folder, ingest_paths
from ingest.loaders import LOADERS
from settings import ChunkSettings

HANS = """关于推进数字政府建设的指导意见

一、总体要求
加快数字政府建设，是适应新一轮科技革命和产业变革趋势、引领驱动数字经济发展的重要举措。

（一）指导思想
坚持以人民为中心的发展思想，全面提升政府履职效能，建设人民满意的服务型政府。

1.基本原则
坚持党的全面领导，确保数字政府建设正确方向；坚持数据赋能，推进政务数据共享。

二、主要任务
构建协同高效的政府数字化履职能力体系，推动政务服务“一网通办”，到2025年基本形成体系。
"""
HANT = """關於推進數字政府建設的指導意見

一、總體要求
加快數字政府建設，是適應新一輪科技革命和產業變革趨勢、引領驅動數字經濟發展的重要舉措。

（一）指導思想
堅持以人民為中心的發展思想，全面提升政府履職效能，建設人民滿意的服務型政府。

1.基本原則
堅持黨的全面領導，確保數字政府建設正確方向；堅持數據賦能，推進政務數據共享。
"""
GOOD = "各地区各部门要结合实际，认真贯彻落实本通知要求，确保各项任务按期完成。\n" * 3


def _ingest(folder: Path) -> IngestResult:
    return ingest_folder(folder, ChunkSettings(), progress=False)


def _only_doc(result: IngestResult):
    assert result.skipped == [], result.summary()
    assert len(result.documents) == 1
    return result.documents[0]


def _section_of(result: IngestResult, text: str) -> str:
    return next(c.section for c in result.chunks if text in c.text)


def _reasons(result: IngestResult) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in result.skipped}


def _rand(n: int, seed: int, lo: int = 0, hi: int = 256) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(lo, hi) for _ in range(n))


def _docx_bytes(build) -> bytes:
    import docx

    document = docx.Document()
    build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# 1. Encodings -------------------------------------------------------------------------

ENCODED = {
    "gb18030": (HANS, lambda t: t.encode("gb18030")),
    "gbk": (HANS, lambda t: t.encode("gbk")),
    "big5": (HANT, lambda t: t.encode("big5")),
    "utf-16-bom": (HANS, lambda t: t.encode("utf-16")),  # Python writes the BOM
    "utf-16-le-no-bom": (HANS, lambda t: t.encode("utf-16-le")),
    "utf-8-bom": (HANS, lambda t: t.encode("utf-8-sig")),
    "utf-8": (HANS, lambda t: t.encode("utf-8")),
}


@pytest.mark.parametrize("name", list(ENCODED))
def test_encoding_read_back_exactly(tmp_path, name):
    original, encode = ENCODED[name]
    (tmp_path / f"{name}.txt").write_bytes(encode(original))
    result = _ingest(tmp_path)
    doc = _only_doc(result)
    assert doc.text == clean_text(original)
    assert "\ufeff" not in doc.text and "\ufffd" not in doc.text
    if name == "big5":
        assert doc.script == "Hant"
        assert "關於推進數字政府建設" in doc.text  # kept traditional, not folded to simplified
        assert _section_of(result, "堅持黨的全面領導") == "一、總體要求 > （一）指導思想 > 1.基本原則"
    else:
        assert doc.script == "Hans"
        assert _section_of(result, "坚持党的全面领导") == "一、总体要求 > （一）指导思想 > 1.基本原则"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_bom_less_utf16_of_latin_text(tmp_path, encoding):
    """ASCII in UTF-16 is valid UTF-8 full of NULs; it must not be refused as binary."""
    text = "Guidelines on Digital Government\n\nServices shall be available online by 2025.\n"
    (tmp_path / "en.txt").write_bytes(text.encode(encoding))
    assert _only_doc(_ingest(tmp_path)).text == clean_text(text)


def test_western_code_page_still_read(tmp_path):
    """The garbage check on guessed code pages must not refuse ordinary Latin-1 text."""
    text = "Le gouvernement décide de créer une agence numérique chargée de la modernisation. " * 4
    (tmp_path / "fr.txt").write_bytes(text.encode("cp1252"))
    assert "agence numérique chargée" in _only_doc(_ingest(tmp_path)).text


def test_gb18030_only_characters(tmp_path):
    """Characters GBK lacks (4-byte GB18030) prove the superset codec is used."""
    text = HANS.replace("数字政府建设", "数字政府建设（𠮷㐀€）", 1)
    (tmp_path / "gb.txt").write_bytes(text.encode("gb18030"))
    assert _only_doc(_ingest(tmp_path)).text == clean_text(text)


# 2. Formats ---------------------------------------------------------------------------


def test_markdown_headings_become_section_path(tmp_path):
    md = "# 数字政府建设方案\n\n## 适用范围\n\n本方案适用于省级以下各级政务部门的信息系统建设。\n\n## 保障措施\n\n加强组织领导，落实资金保障。\n"
    (tmp_path / "plan.md").write_text(md, encoding="utf-8")
    result = _ingest(tmp_path)
    _only_doc(result)
    assert _section_of(result, "本方案适用于") == "数字政府建设方案 > 适用范围"
    assert _section_of(result, "加强组织领导") == "数字政府建设方案 > 保障措施"


HTML_PAGE = """<!DOCTYPE html>
<html><head><meta charset="gbk"><title>关于推进数字政府建设的指导意见</title>
<style>body { color: red; } .STYLE_MARK { margin: 0 }</style>
<script>var tracking = "SCRIPT_MARK"; document.write("脚本内容");</script></head>
<body><nav><a href="/">首页</a> <a href="/list">导航菜单</a></nav>
<h1>关于推进数字政府建设的指导意见</h1>
<h2>一、总体要求</h2>
<p>加快<strong>数字政府</strong>建设，是适应新一轮科技革命和产业变革趋势的重要举措。</p>
<h2>二、主要任务</h2>
<p>构建协同高效的政府数字化履职能力体系，<a href="#">推进政务数据共享</a>，提升政务服务水平。</p>
</body></html>
"""


def test_html_cleaned_and_structured(tmp_path):
    (tmp_path / "page.html").write_bytes(HTML_PAGE.encode("gbk"))
    result = _ingest(tmp_path)
    text = _only_doc(result).text
    for noise in ["SCRIPT_MARK", "脚本内容", "STYLE_MARK", "color:", "导航菜单"]:
        assert noise not in text
    # Inline tags (<strong>, <a>) do not break the sentence they sit in.
    assert "加快数字政府建设，是适应新一轮科技革命" in text
    assert "体系，推进政务数据共享，提升政务服务水平。" in text
    assert _section_of(result, "加快数字政府建设") == "关于推进数字政府建设的指导意见 > 一、总体要求"
    assert _section_of(result, "构建协同高效") == "关于推进数字政府建设的指导意见 > 二、主要任务"


def test_html_declared_charset_beats_guessing(tmp_path):
    """"通知" in GBK is also valid UTF-8 ("֪ͨ"); the page's <meta charset> settles it."""
    page = b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head>'
    page += b"<body><p>" + "通知".encode("gbk") + b"</p><p>" + "统一平台 一站式".encode("gbk") + b"</p></body></html>"
    (tmp_path / "short.htm").write_bytes(page)
    assert _only_doc(_ingest(tmp_path)).text == "通知\n\n统一平台 一站式"


def test_html_wrong_declaration_falls_back(tmp_path):
    """A UTF-8 page still labelled gbk (a migrated site) is read as the UTF-8 it is."""
    (tmp_path / "migrated.html").write_bytes(HTML_PAGE.encode("utf-8"))  # bytes not valid GBK
    assert "是适应新一轮科技革命和产业变革趋势的重要举措。" in _only_doc(_ingest(tmp_path)).text
    # These UTF-8 bytes also decode as GB18030 (to "榧撳姳棰嗗啗..."): enough valid UTF-8 wins.
    page = '<html><head><meta charset="gb2312"></head><body><p>鼓励领军企业深度参与高校人才培养</p><p>全面推进移动办公</p>'
    page_bytes = page.encode("utf-8")
    page_bytes.decode("gb18030")  # the trap is real
    (tmp_path / "migrated.html").write_bytes(page_bytes)
    assert _only_doc(_ingest(tmp_path)).text == "鼓励领军企业深度参与高校人才培养\n\n全面推进移动办公"


def test_pdf_with_text_layer(tmp_path):
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(tmp_path / "report.pdf"))
    pdf.drawString(72, 750, "Guidelines on Digital Government.")
    pdf.drawString(72, 720, "Government services shall be available online by 2025.")
    pdf.showPage()
    pdf.drawString(72, 750, "Data sharing between departments is mandatory.")
    pdf.save()
    doc = _only_doc(_ingest(tmp_path))
    assert "Government services shall be available online by 2025." in doc.text
    assert "Data sharing between departments is mandatory." in doc.text  # second page too
    assert doc.script == "Latn"


def test_docx_heading_styles_and_tables(tmp_path):
    def build(document):
        document.add_heading("总体要求", level=1)  # no numbering: only the style makes it a heading
        document.add_heading("工作目标", level=2)
        document.add_paragraph("到2025年，政务服务事项基本实现全程网上办理。")
        table = document.add_table(rows=2, cols=2)
        table.cell(0, 0).text, table.cell(0, 1).text = "指标", "目标值"
        table.cell(1, 0).text, table.cell(1, 1).text = "政务服务事项网上可办率", "百分之九十"

    (tmp_path / "plan.docx").write_bytes(_docx_bytes(build))
    result = _ingest(tmp_path)
    doc = _only_doc(result)
    assert _section_of(result, "全程网上办理") == "总体要求 > 工作目标"
    assert "政务服务事项网上可办率" in doc.text and "百分之九十" in doc.text


# 3. Bad input -------------------------------------------------------------------------


def _broken_xml_docx() -> bytes:
    """A real DOCX whose document.xml was cut in half (a half-synced download)."""
    good = zipfile.ZipFile(io.BytesIO(_docx_bytes(lambda d: d.add_paragraph("正文内容。"))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as broken:
        for item in good.infolist():
            data = good.read(item.filename)
            broken.writestr(item, data[: len(data) // 2] if item.filename == "word/document.xml" else data)
    return out.getvalue()


def _scan_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


BAD_FILES = {
    # name: (bytes, words the reason must contain)
    "empty.txt": (b"", ["empty"]),
    "blank.txt": (" \n\t\r\n\u3000\u3000 \n".encode("utf-8"), ["whitespace"]),
    "binary.txt": (_rand(3000, 1), ["binary"]),
    "image.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _rand(3000, 2), ["binary"]),
    "garbage.txt": (_rand(4000, 3, lo=1), ["not decodable"]),  # no NUL: the guesser must refuse it
    "garbage_high.txt": (_rand(4000, 4, lo=0x80), ["not decodable"]),
    # The guesser calls these cp949 ("뻣뻣…", random Hangul); they are not documents.
    "filler.txt": (b"\xbb" * 3000, ["garbage"]),
    "hangul_noise.txt": (_rand(3000, 8, lo=0xB0, hi=0xC8), ["garbage"]),
    "scan.pdf": (_scan_pdf(), ["no text layer", "OCR"]),
    "corrupt.pdf": (_rand(3000, 5), ["not a readable PDF"]),
    "corrupt.docx": (_rand(3000, 6), ["not a readable DOCX"]),
    "broken_xml.docx": (_broken_xml_docx(), ["not a readable DOCX"]),
}
IGNORED = {"notes.xyz": b"not a supported type", "photo.png": b"\x89PNG\r\n", "data.csv": "a,b\n1,2\n".encode()}


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "good.txt").write_text(GOOD, encoding="utf-8")
    (folder / "z_same_as_good.txt").write_bytes(GOOD.encode("gb18030"))  # same content, other bytes
    for name, (data, _) in BAD_FILES.items():
        (folder / name).write_bytes(data)
    for name, data in IGNORED.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def bad_result(bad_folder) -> IngestResult:
    return _ingest(bad_folder)


def test_good_file_survives_bad_neighbours(bad_result):
    assert [d.doc_id for d in bad_result.documents] == ["good.txt"]
    assert bad_result.chunks and {c.doc_id for c in bad_result.chunks} == {"good.txt"}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_reason(bad_result, bad_folder, name):
    reasons = _reasons(bad_result)
    assert name in reasons, bad_result.summary()
    skipped = next(s for s in bad_result.skipped if Path(s.path).name == name)
    assert Path(skipped.path) == bad_folder / name
    reason = reasons[name]
    assert "\n" not in reason and "Traceback" not in reason
    for word in BAD_FILES[name][1]:
        assert word.lower() in reason.lower(), reason


def test_duplicate_names_the_first(bad_result):
    assert _reasons(bad_result)["z_same_as_good.txt"].startswith("duplicate of good.txt")


def test_unsupported_extensions_ignored(bad_result):
    assert len(bad_result.skipped) == len(BAD_FILES) + 1  # + the duplicate
    named = set(_reasons(bad_result)) | {d.doc_id for d in bad_result.documents}
    assert not named & set(IGNORED)


def test_huge_file_refused_on_size_without_reading(tmp_path):
    with open(tmp_path / "huge.txt", "wb") as fh:
        fh.truncate(200 * 1024 * 1024)  # sparse: no disk, no time
    (tmp_path / "good.txt").write_text(GOOD, encoding="utf-8")
    tracemalloc.start()
    try:
        result = _ingest(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "too large" in _reasons(result)["huge.txt"]
    assert [d.doc_id for d in result.documents] == ["good.txt"]
    assert peak < 20 * 1024 * 1024  # the 200 MB were never read


def test_file_disappearing_mid_run(tmp_path, monkeypatch):
    (tmp_path / "a_good.txt").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b_gone.txt").write_text("很快就会被删除的文件。", encoding="utf-8")
    listed = pipeline.find_files

    def list_then_delete(source):
        paths = listed(source)
        (tmp_path / "b_gone.txt").unlink()  # another process removes it after the listing
        return paths

    monkeypatch.setattr(pipeline, "find_files", list_then_delete)
    result = _ingest(tmp_path)
    assert "disappeared" in _reasons(result)["b_gone.txt"]
    assert [d.doc_id for d in result.documents] == ["a_good.txt"]


def test_missing_path_given_directly(tmp_path):
    (tmp_path / "good.txt").write_text(GOOD, encoding="utf-8")
    result = ingest_paths([tmp_path / "never.txt", tmp_path / "good.txt"], tmp_path, ChunkSettings(), progress=False)
    assert "disappeared" in _reasons(result)["never.txt"]
    assert len(result.documents) == 1


def test_unexpected_loader_error_does_not_stop_run(tmp_path, monkeypatch):
    def explode(data: bytes) -> str:
        raise RuntimeError("parser blew up\non two lines")

    monkeypatch.setitem(LOADERS, ".md", explode)
    (tmp_path / "a.md").write_text("# 标题\n\n正文。", encoding="utf-8")
    (tmp_path / "b.txt").write_text(GOOD, encoding="utf-8")
    result = _ingest(tmp_path)
    reason = _reasons(result)["a.md"]
    assert "RuntimeError" in reason and "parser blew up" in reason and "\n" not in reason
    assert [d.doc_id for d in result.documents] == ["b.txt"]


# 4. CLI -------------------------------------------------------------------------------


def test_cli_mixed_folder(bad_folder, capsys):
    from ingest.__main__ import main

    assert main([str(bad_folder), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "documents read: 1" in out
    lines = out.splitlines()
    for name, (_, words) in BAD_FILES.items():
        line = next((line for line in lines if name in line), None)
        assert line is not None, (name, out)
        assert all(word.lower() in line.lower() for word in words), line
    assert "Traceback" not in out + err


def test_cli_only_bad_files(tmp_path, capsys):
    from ingest.__main__ import main

    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(_rand(2000, 7))
    assert main([str(tmp_path), "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "empty.txt" in out and "binary.txt" in out
    assert "nothing could be ingested" in err and "Traceback" not in out + err


def test_cli_empty_folder(tmp_path, capsys):
    from ingest.__main__ import main

    assert main([str(tmp_path), "--quiet"]) != 0
    assert "Traceback" not in "".join(capsys.readouterr())


# 5. Recursion -------------------------------------------------------------------------


def test_nested_folders_and_same_names(tmp_path):
    deep = tmp_path / "2023" / "国务院" / "通知"
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text(HANS, encoding="utf-8")
    for sub, text in [("a", GOOD), ("b", HANT)]:
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "same.txt").write_text(text, encoding="utf-8")
    result = _ingest(tmp_path)
    assert result.skipped == []
    ids = [d.doc_id for d in result.documents]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert "deep.txt" in ids
    by_id = {d.doc_id: d for d in result.documents}
    same = [d for d in result.documents if Path(d.path).name == "same.txt"]
    assert {d.text for d in same} == {clean_text(GOOD), clean_text(HANT)}
    for chunk in result.chunks:  # every chunk points into its own document
        assert by_id[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text
