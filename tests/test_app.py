"""The chat app without a browser: rendering, the source view, uploads, sessions, the API.

Document text is untrusted input here: a document holding ``<script>`` or an ``onerror``
attribute must come out as visible characters in every place the app shows text.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # inside gradio's queue

from qa.records import Answer, Citation
from retriever import Hit
from ui import render

from conftest import index_with_document, serving, uploaded

EVIL = "<script>alert('xss')</script>"
EVIL_IMG = '<img src=x onerror="window.__pwned=1;alert(1)">'
EVIL_DOC = (  # the markup is in the title too, so any answer citing this document shows some
    f"星河量子通信试验区管理办法{EVIL}\n\n"
    "第一章 总则\n\n"
    f"第一条 星河量子通信试验区的主管单位是星河市{EVIL}数据管理办公室。\n"
    f"第二条 试验区的建设期限为五年，标识为{EVIL_IMG}，*强调* 与 $$x$$ 按原样显示。\n"
    "第三条 本办法自发布之日起施行。\n"
)
EVIL_QUESTION = "星河量子通信试验区的主管单位是哪个单位?"


def make_hit(**over) -> Hit:
    base = dict(chunk_id="d.txt#1", doc_id="d.txt", title=f"标题{EVIL}", section=f"一、{EVIL_IMG}",
                text=f"正文{EVIL}正文", start=10, end=30, score=0.5, dense_score=0.9, bm25_score=3.0)
    base.update(over)
    return Hit(**base)


def answer_with(text: str, citations=(), **over) -> Answer:
    return Answer(question="q", text=text, citations=list(citations), **over)


# -- rendering ---------------------------------------------------------------------------
def test_answer_html_escapes_everything_and_links_markers():
    hit = make_hit()
    cit = Citation(n=1, hit=hit, quote=f"引文{EVIL}", quote_start=12, quote_end=20)
    html = render.render_answer(answer_with(f"答案{EVIL}[1]，又见[2]。", [cit]), show_scores=True)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in html  # answer, title and quote
    assert "&lt;img src=x onerror=&quot;" in html  # the section
    url = "/source/d.txt?start=12&amp;end=20#hl"
    assert f'<a class="pq-cite" href="{url}" target="_blank" rel="noopener">[1]</a>' in html
    assert "[2]" in html and 'href="/source/d.txt?start=12&amp;end=20#hl" target="_blank" rel="noopener">[2]' not in html
    assert '<a class="pq-src"' in html and "来源 Sources" in html
    assert "dense 0.900" in html and "bm25 3.00" in html
    timed = render.render_answer(answer_with("a[1]", [cit], timings={"retrieve": 0.25}), show_scores=True)
    assert "extractive · retrieve 0.25s" in timed


def test_scores_hidden_unless_asked():
    cit = Citation(n=1, hit=make_hit(), quote="q", quote_start=12, quote_end=20)
    assert "pq-scores" not in render.render_answer(answer_with("a[1]", [cit]), show_scores=False)


def test_citation_without_located_quote_links_the_passage():
    cit = Citation(n=1, hit=make_hit(start=5, end=50), quote="")
    assert render.citation_url(cit) == "/source/d.txt?start=5&end=50#hl"


def test_refusal_shows_related_passages_linked():
    related = [make_hit(chunk_id="r#1", doc_id="r.txt", start=3, end=9)]
    html = render.render_answer(answer_with(f"文件中没有答案{EVIL}", refused=True, related=related))
    assert "pq-refusal" in html and "可能相关" in html
    assert 'href="/source/r.txt?start=3&amp;end=9#hl"' in html
    assert "<script" not in html and "&lt;script&gt;" in html


def test_source_url_encodes_the_id_as_one_segment():
    assert render.source_url("a/../b c.txt", 1, 2) == "/source/a%2F..%2Fb%20c.txt?start=1&end=2#hl"
    assert render.source_url("x.txt") == "/source/x.txt"
    assert render.source_url("x.txt", 5, 5) == "/source/x.txt"


def test_pending_and_user_messages_are_escaped():
    assert "<script" not in render.render_pending(EVIL)
    assert render.render_user("a<b>\nc") == "a&lt;b&gt;<br>c"


def test_pending_answer_lists_the_passages_being_read_escaped():
    from qa import Sources

    html = render.render_pending("", Sources(hits=[make_hit(), make_hit(chunk_id="d.txt#2", start=40, end=50)]))
    assert "正在阅读 Reading 2 passages" in html and html.count("/source/d.txt?start=") == 2
    assert "<script" not in html and "&lt;script" in html
    assert "pq-reading" not in render.render_pending("部分")


def test_answer_json_is_plain_data():
    cit = Citation(n=1, hit=make_hit(), quote="引文", quote_start=12, quote_end=20)
    data = render.answer_json(answer_with("答案[1]", [cit], query="q2", related=[make_hit()]))
    assert data["answer"] == "答案[1]" and data["query"] == "q2" and data["refused"] is False
    assert data["sources"][0]["url"] == "/source/d.txt?start=12&end=20#hl"
    assert data["sources"][0]["title"] == f"标题{EVIL}"  # raw: a client escapes for its own medium
    assert data["related"][0]["text"] == f"正文{EVIL}正文"


def test_source_page_marks_span_and_escapes():
    class Doc:
        doc_id, title, script = "e.txt", f"T{EVIL}", "Hant"
        text = f"前文{EVIL}重点句子{EVIL_IMG}后文"

    start = Doc.text.index("重点")
    page = render.render_source_page(Doc, start, start + 4, section=EVIL)
    assert '<mark id="hl">重点句子</mark>' in page
    assert page.count("<script>") == 1  # only the page's own scroll script
    assert "<img" not in page and 'lang="zh-Hant"' in page


# -- the app with a real index -------------------------------------------------------------
@pytest.fixture(scope="module")
def app_index(seed_index, tmp_path_factory, settings, embedder):
    """A writable copy of the seed index plus one document full of markup."""
    return index_with_document(seed_index, tmp_path_factory.mktemp("app"), "evil.txt", EVIL_DOC, settings, embedder)


@pytest.fixture(scope="module")
def app_settings(settings, tmp_path_factory):
    """No background warm-up (it would compete with the tests for CPU); a private sentence cache."""
    cache = tmp_path_factory.mktemp("sentences")
    return settings.override("app", warm_up=False).override("qa", sentence_cache_dir=str(cache))


@pytest.fixture(scope="module")
def engine(app_index, app_settings, embedder):
    import app

    return app.Engine.load(app_index, app_settings)


@pytest.fixture(scope="module")
def client(engine, app_settings):
    from fastapi.testclient import TestClient

    import app

    return TestClient(app.create_app(engine, app_settings))


def test_source_view_highlights_and_escapes(client, engine):
    doc = engine.document("evil.txt")
    start = doc.text.index("星河量子通信试验区的主管单位")
    end = doc.text.index("。", start) + 1
    resp = client.get(f"/source/evil.txt?start={start}&end={end}")
    assert resp.status_code == 200
    page = resp.text
    assert '<mark id="hl">星河量子通信试验区的主管单位是星河市&lt;script&gt;' in page
    assert page.count("<script>") == 1 and "<img" not in page
    assert "&lt;img src=x onerror=" in page
    assert "第一章 总则" in page  # the section of the span
    assert "script-src 'sha256-" in resp.headers["content-security-policy"]


@pytest.mark.parametrize("path", [
    "/source/..%2F..%2Fetc%2Fpasswd",
    "/source/%2e%2e/%2e%2e/etc/passwd",
    "/source/../../etc/passwd",
    "/source/%2Fetc%2Fpasswd",
    "/source/no-such-doc.txt",
    "/source/evil.txt%00",
    "/source/",
])
def test_source_view_serves_only_indexed_ids(client, path):
    resp = client.get(path)
    assert resp.status_code == 404
    assert "root:" not in resp.text


@pytest.mark.parametrize("query,status", [
    ("start=abc&end=3", 400),
    ("start=1.5&end=3", 400),
    ("start=" + "9" * 5000 + "&end=1", 400),  # too many digits for int(): refused, not a 500
    ("start=-50&end=99999999999999999999", 200),
    ("start=40&end=10", 200),
    ("start=5", 200),
    ("", 200),
])
def test_source_view_bad_spans_never_500(client, query, status):
    resp = client.get(f"/source/evil.txt?{query}")
    assert resp.status_code == status


def test_source_view_clamps_span(client, engine):
    text = engine.document("evil.txt").text
    page = client.get("/source/evil.txt?start=-50&end=99999999").text
    assert '<mark id="hl">星河量子' in page and page.count("</mark>") == 1
    assert render.esc(text[-5:]) + "</mark>" in page
    assert "<mark" not in client.get("/source/evil.txt?start=40&end=10").text


def test_source_view_section_reads_only_the_viewed_document(engine, monkeypatch):
    """The heading path shown above a source comes from that document's passages alone (on
    a database, reading every document's on the first view was one query per document)."""
    retriever = engine.retriever
    doc_id = next(d for d in retriever.documents if d.startswith("001_"))
    passage = next(c for c in retriever.passages_of(doc_id) if c.section)
    asked = []
    real = retriever.passages_of
    monkeypatch.setattr(retriever, "passages_of", lambda d: asked.append(d) or real(d))
    engine._sections_of = None  # as after an index swap
    assert engine.section_at(doc_id, passage.start) == passage.section
    assert engine.section_at(doc_id, passage.start) == passage.section
    assert asked == [doc_id]
    assert engine.section_at("no-such-doc", 0) == ""


def test_answer_about_markup_document_is_escaped(engine):
    answer = engine.assistant.ask(EVIL_QUESTION)
    html = render.render_answer(answer, show_scores=True)
    assert "<script" not in html and "<img" not in html
    cited = answer.citations if not answer.refused else []
    related = answer.related if answer.refused else []
    assert any(c.hit.doc_id == "evil.txt" for c in cited) or any(h.doc_id == "evil.txt" for h in related)
    assert "&lt;script&gt;" in html


def test_chat_shows_the_passages_before_the_answer(engine):
    import app

    respond = app.make_handlers(engine)[0]
    states = [chat[-1]["content"] for _, _, chat in respond(EVIL_QUESTION, [], 5, "extractive", False)]
    reading = next(i for i, html in enumerate(states) if "pq-reading" in html)
    answered = next(i for i, html in enumerate(states) if "pq-sources" in html or "pq-refusal" in html)
    assert reading < answered and "pq-reading" not in states[-1]  # the final answer lists its own sources
    assert "pq-streaming" in states[reading]


def test_upload_adds_document_and_reports_skipped(engine, tmp_path):
    import app

    good = uploaded("uploaded_policy.txt", "银河数据交易所管理规定\n\n第一条 银河数据交易所的年度交易上限为八千亿元。\n")
    empty = uploaded("empty.txt", "")
    binary = uploaded("tool.exe", b"MZ\x00\x01")
    before = len(engine.retriever.documents)
    upload = app.make_handlers(engine).upload
    log_html, stats = upload([str(good), str(empty), str(binary)])
    assert "uploaded_policy.txt" in log_html and "Added 1 document" in log_html
    assert "empty.txt: empty file" in log_html
    assert "tool.exe: unsupported file type" in log_html
    assert str(good.parent) not in log_html  # only file names are shown, not server paths
    assert len(engine.retriever.documents) == before + 1 and f"{before + 1} documents" in stats
    hits = engine.retriever.search("银河数据交易所的年度交易上限是多少?", k=3)
    assert hits[0].doc_id == "uploads/uploaded_policy.txt"  # uploads have a namespace of their own
    # the shared Assistant reads the new index (answered, or refused with it as related,
    # depending on the refusal calibration: either way it finds the new document)
    answer = engine.assistant.ask("银河数据交易所的年度交易上限是多少?")
    found = [c.hit.doc_id for c in answer.citations] + [h.doc_id for h in answer.related]
    assert "uploads/uploaded_policy.txt" in found


def test_upload_of_only_bad_files_changes_nothing(engine, tmp_path):
    import app

    bad = uploaded("scan.pdf", b"%PDF-1.4 not really")
    copy = uploaded("copy_of_evil.txt", EVIL_DOC)  # same text as an indexed document
    assistant = engine.assistant
    upload = app.make_handlers(engine).upload
    log_html, _ = upload([str(bad), str(copy)])
    assert "scan.pdf:" in log_html and "Added" not in log_html
    assert "copy_of_evil.txt: duplicate of evil.txt" in log_html and str(copy.parent) not in log_html
    assert set(engine.retriever.documents) == set(assistant.retriever.documents)


@pytest.fixture(scope="module")
def server(engine, app_settings):
    """The app served by uvicorn in a thread, for gradio_client."""
    import app

    with serving(app.create_app(engine, app_settings)) as url:
        yield url + "/"


def test_api_ask_returns_answer_and_sources(server):
    from gradio_client import Client

    result = Client(server, verbose=False).predict("到2020年北斗系统由多少颗卫星组成?", api_name="/ask")
    assert not result["refused"] and "[1]" in result["answer"]
    assert "35" in result["answer"]
    first = result["sources"][0]
    assert first["n"] == 1 and first["url"].startswith("/source/") and first["quote"]


def _user_texts(chat: list[dict]) -> list[str]:
    """User messages of a chatbot value (Gradio 6 sends content as a list of typed parts)."""
    out = []
    for m in chat:
        if m["role"] == "user":
            content = m["content"]
            out.append(content if isinstance(content, str) else "".join(p.get("text", "") for p in content))
    return out


def test_two_sessions_keep_their_own_history(server):
    from gradio_client import Client

    a, b = Client(server, verbose=False), Client(server, verbose=False)
    a.predict("到2020年北斗系统由多少颗卫星组成?", 5, "extractive", False, api_name="/chat")
    b.predict("“十四五”国家信息化规划提出了哪些主要目标?", 5, "extractive", False, api_name="/chat")
    _, chat_a = a.predict("到2018年呢?", 5, "extractive", False, api_name="/chat")
    _, chat_b = b.predict("What does the plan say about e-government?", 5, "extractive", False, api_name="/chat")
    users_a, users_b = _user_texts(chat_a), _user_texts(chat_b)
    assert users_a == ["到2020年北斗系统由多少颗卫星组成?", "到2018年呢?"]
    assert users_b == ["“十四五”国家信息化规划提出了哪些主要目标?", "What does the plan say about e-government?"]


# -- start-up ------------------------------------------------------------------------------
def test_first_run_builds_index_then_warms_sentence_cache(tmp_path, settings, embedder, capsys):
    import app

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text("甲市数据条例\n\n第一条 甲市公共数据由大数据局统一管理。\n", encoding="utf-8")
    (seeds / "b.txt").write_text("乙省算力规划\n\n到2025年乙省算力规模达到十万标准机架。\n", encoding="utf-8")
    index = tmp_path / "index"
    cfg = settings.override("qa", sentence_cache_dir=str(tmp_path / "cache"))
    app.ensure_index(index, seeds, cfg)
    assert (index / "manifest.json").is_file()
    assert "building it from" in capsys.readouterr().out
    engine = app.Engine.load(index, cfg)
    engine.warm_up()
    assert "sentence cache:" not in capsys.readouterr().out  # the index carries them (issue 14): nothing to embed
    from qa.sentence_vectors import sentence_texts

    texts = sentence_texts(engine.retriever.passages_of("a.txt"), cfg.qa)
    restarted = app.Engine.load(index, cfg).assistant
    assert texts and set(restarted.retriever.sentence_vectors(texts)) == set(texts)  # answers embed none of them
    assert not list((tmp_path / "cache").glob("sentences-*.npz"))
    app.ensure_index(index, seeds, cfg)  # an existing index is used as it is
    assert "building" not in capsys.readouterr().out


def test_main_binds_localhost_and_refuses_exposure_without_credentials(app_index, monkeypatch, capsys):
    import uvicorn

    import app

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: served.update(kw))
    monkeypatch.setenv("POLICYQA_APP_PORT", "8123")
    monkeypatch.setenv("POLICYQA_APP_WARM_UP", "0")
    assert app.main(["--index", str(app_index)]) == 0
    assert served["host"] == "127.0.0.1" and served["port"] == 8123
    out = capsys.readouterr()
    assert "Running on http://127.0.0.1:8123" in out.out and "WARNING" not in out.err
    for name in ("POLICYQA_ADMIN_KEY", "POLICYQA_READER_KEY", "POLICYQA_ADMIN_LOGIN", "POLICYQA_READER_LOGIN",
                 "POLICYQA_APP_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    served.clear()
    assert app.main(["--index", str(app_index), "--host", "0.0.0.0", "--port", "8124"]) == 2
    assert not served and "refusing to serve on 0.0.0.0 without credentials" in capsys.readouterr().err
    monkeypatch.setenv("POLICYQA_ADMIN_KEY", "k" * 24)  # with a key it serves (tests/test_access.py: the roles)
    assert app.main(["--index", str(app_index), "--host", "0.0.0.0", "--port", "8124"]) == 0
    assert served["host"] == "0.0.0.0" and served["port"] == 8124


def test_main_without_index_or_seeds_says_so(tmp_path, monkeypatch, capsys):
    import app

    monkeypatch.setenv("POLICYQA_APP_WARM_UP", "0")
    assert app.main(["--index", str(tmp_path / "none"), "--seeds", str(tmp_path / "missing")]) == 2
    assert "no seed folder" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_main_reports_a_broken_index(tmp_path, monkeypatch, capsys):
    import app

    broken = tmp_path / "index"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json", encoding="utf-8")
    monkeypatch.setenv("POLICYQA_APP_WARM_UP", "0")
    assert app.main(["--index", str(broken)]) == 2
    assert "error:" in capsys.readouterr().err


def test_concurrent_requests_each_get_their_own_answer(server):
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    questions = ["到2020年北斗系统由多少颗卫星组成?", "“十四五”国家信息化规划提出了哪些主要目标?",
                 "How does the strategy plan to strengthen cybersecurity?", EVIL_QUESTION]

    def one(q):
        return Client(server, verbose=False).predict(q, api_name="/ask")

    with ThreadPoolExecutor(len(questions)) as pool:
        results = list(pool.map(one, questions))
    assert [r["question"] for r in results] == questions
    assert "35" in results[0]["answer"]
