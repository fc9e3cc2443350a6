"""Answers scoped to chosen documents, and the app state's library operations (real model, seed index)."""

from __future__ import annotations

import shutil
import threading

import pytest

from qa import Assistant, Sources
from retriever import UnknownDocument

SICHUAN = "004_14d6703fe5634065.txt"
PLAN_14 = "001_f21eb84e8a85de7c.txt"
QUESTION = "到2020年信息化发展的主要目标是什么?"
NEW_DOC = "青松数据港建设方案\n\n青松数据港的机架总数为一万二千个，由青松市数据局统一运营。\n"


@pytest.fixture(scope="module")
def assistant(retriever, settings):
    return Assistant(retriever, settings)


def _read(assistant, question, **kw):
    """(hits read, Answer) of one streamed answer."""
    hits, answer = [], None
    for piece in assistant.stream(question, sources=True, **kw):
        if isinstance(piece, Sources):
            hits = piece.hits
        elif not isinstance(piece, str):
            answer = piece
    return hits, answer


def _docs(hits, answer):
    return {h.doc_id for h in hits} | {c.hit.doc_id for c in answer.citations} | {h.doc_id for h in answer.related}


def test_scope_limits_every_passage_and_citation(assistant):
    hits, answer = _read(assistant, QUESTION)
    assert _docs(hits, answer) - {SICHUAN}, "unscoped, this question reads other documents too"
    hits, answer = _read(assistant, QUESTION, doc_ids=[SICHUAN])
    assert hits and not answer.refused and answer.citations
    assert _docs(hits, answer) == {SICHUAN}


def test_follow_up_keeps_the_scope(assistant):
    first = assistant.ask(QUESTION, doc_ids=[SICHUAN])
    history = [(QUESTION, first.text)]
    hits, answer = _read(assistant, "那电子政务方面呢?", history=history)
    assert _docs(hits, answer) - {SICHUAN}, "unscoped, the follow-up reads other documents too"
    hits, answer = _read(assistant, "那电子政务方面呢?", history=history, doc_ids=[SICHUAN])
    assert hits and _docs(hits, answer) == {SICHUAN}


def test_comparison_extras_stay_in_the_scope(assistant):
    question = "四川省规划和“十四五”国家信息化规划在宽带网络方面的目标有什么不同?"
    hits, answer = _read(assistant, question)
    assert {SICHUAN, PLAN_14} <= {h.doc_id for h in hits}  # unscoped: both named documents
    hits, answer = _read(assistant, question, doc_ids=[SICHUAN])
    assert _docs(hits, answer) == {SICHUAN}
    hits, answer = _read(assistant, question, doc_ids=[SICHUAN, PLAN_14])
    assert {h.doc_id for h in hits} == {SICHUAN, PLAN_14}


def test_unknown_scope_is_a_clear_error_and_empty_scope_is_the_whole_index(assistant):
    with pytest.raises(UnknownDocument, match="nope.txt") as err:
        assistant.ask(QUESTION, doc_ids=[SICHUAN, "nope.txt"])
    assert err.value.ids == ["nope.txt"]
    assert _docs(*_read(assistant, QUESTION, doc_ids=[])) - {SICHUAN}


# -- the app state: library, removal, upload time -------------------------------------------
@pytest.fixture
def engine(seed_index, tmp_path, settings, embedder):
    from ui.engine import Engine

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    app_settings = (settings.override("app", warm_up=False, upload_dir=str(tmp_path / "uploads"))
                    .override("qa", sentence_cache_dir=""))
    return Engine.load(index, app_settings)


def test_engine_removes_an_upload_from_index_disk_and_search(engine, tmp_path, monkeypatch):
    import retriever

    src = tmp_path / "qingsong.txt"
    src.write_text(NEW_DOC, encoding="utf-8")
    docs, _, _ = engine.add_documents([src])
    assert [d.doc_id for d in docs] == ["uploads/qingsong.txt"]
    stored = engine.upload_area().path_of("qingsong.txt")
    assert stored.read_text(encoding="utf-8") == NEW_DOC
    info = next(i for i in engine.library() if i.doc_id == "uploads/qingsong.txt")
    assert info.origin == "upload" and info.uploaded_at and info.passages >= 1 and info.title == "青松数据港建设方案"
    assert engine.assistant.retriever.search("青松数据港的机架总数", k=1)[0].doc_id == "uploads/qingsong.txt"

    seen = {}
    original = retriever.remove_documents

    def watched(*args, **kw):
        seen["rebuilding"] = engine.rebuilding
        return original(*args, **kw)

    monkeypatch.setattr(retriever, "remove_documents", watched)
    old = engine.assistant
    assert not engine.rebuilding
    report = engine.remove_documents(["uploads/qingsong.txt"])
    assert seen == {"rebuilding": True} and not engine.rebuilding
    assert report.removed_docs == ["uploads/qingsong.txt"] and report.embedded == 0
    assert engine.assistant is not old  # swapped in whole
    assert not stored.exists() and list(engine.upload_area().root.iterdir()) == []
    assert "uploads/qingsong.txt" not in {i.doc_id for i in engine.library()} and len(engine.library()) == 5
    assert all(h.doc_id != "uploads/qingsong.txt" for h in engine.assistant.retriever.search("青松数据港的机架总数"))
    assert engine.was_removed("uploads/qingsong.txt") and not engine.was_removed("nope.txt")
    assert old.retriever.document("uploads/qingsong.txt") is not None  # a request already running keeps its index


def test_engine_unknown_removal_changes_nothing(engine):
    from retriever.store import read_manifest

    before = read_manifest(engine.index_dir)
    assistant = engine.assistant
    with pytest.raises(UnknownDocument):
        engine.remove_documents([SICHUAN, "uploads/never.txt"])
    assert read_manifest(engine.index_dir) == before and engine.assistant is assistant
    assert len(engine.library()) == 5 and not engine.was_removed(SICHUAN)


def test_upload_time_survives_a_restart_and_keep_both_adds_a_second_name(engine, tmp_path):
    from ui.engine import Engine

    src = tmp_path / "plan.txt"
    src.write_text(NEW_DOC, encoding="utf-8")
    engine.add_documents([src])
    assert engine.conflicts([src, tmp_path / "other.txt"]) == ["plan.txt"]
    src.write_text(NEW_DOC.replace("一万二千", "两万"), encoding="utf-8")
    docs, _, _ = engine.add_documents([src], keep_both=True)
    assert [d.doc_id for d in docs] == ["uploads/plan (2).txt"]
    assert "一万二千" in engine.document("uploads/plan.txt").text  # the first one is untouched
    first = {i.doc_id: i.uploaded_at for i in engine.library() if i.origin == "upload"}
    restarted = Engine.load(engine.index_dir, engine.settings)
    assert {i.doc_id: i.uploaded_at for i in restarted.library() if i.origin == "upload"} == first
    assert all(first.values())


def test_rebuilding_is_true_while_an_upload_holds_the_lock(engine):
    engine._write_lock.acquire()
    try:
        assert engine.rebuilding
        done = threading.Event()
        threading.Thread(target=lambda: (engine.library(), done.set()), daemon=True).start()
        assert done.wait(5), "reading the library must not wait for the write lock"
    finally:
        engine._write_lock.release()
    assert not engine.rebuilding


def test_delete_handler_then_the_source_link_says_removed(engine, tmp_path):
    import httpx

    import app
    from conftest import serving, uploaded

    h = app.make_handlers(engine)
    log_html, _ = h.upload([str(uploaded("qingsong.txt", NEW_DOC))])
    assert "Added 1 document" in log_html
    answer = engine.assistant.ask("青松数据港的机架总数是多少?")
    url = next(c for c in answer.citations if c.hit.doc_id == "uploads/qingsong.txt")
    link = app.render.citation_url(url)
    assert h.delete(None)[0] == "<p>先选择文件 Choose a document first.</p>"
    with serving(app.create_app(engine, engine.settings)) as base:
        assert httpx.get(base + link).status_code == 200
        log_html, stats = h.delete("uploads/qingsong.txt")
        assert "已删除 Deleted 青松数据港建设方案" in log_html and "5 documents" in stats
        gone = httpx.get(base + link)
        assert gone.status_code == 410 and "removed from the index" in gone.text
        assert httpx.get(base + "/source/uploads%2Fnever.txt").status_code == 404
    assert "no such document" in h.delete("uploads/qingsong.txt")[0]  # twice: a clear refusal
    assert not engine.upload_area().path_of("qingsong.txt").exists()
    # the answer given before keeps its quote, rendered from its own stored text
    html = app.render.render_answer(answer)
    assert "一万二千" in html and url.quote[:10] in html


def test_an_upload_indexed_without_its_time_shows_its_files_time(engine, tmp_path):
    import os

    from retriever.library import UPLOADED_AT

    src = tmp_path / "old.txt"
    src.write_text(NEW_DOC, encoding="utf-8")
    engine.add_documents([src])
    del engine.document("uploads/old.txt").meta[UPLOADED_AT]  # as an older version indexed it
    os.utime(engine.upload_area().path_of("old.txt"), (1_700_000_000, 1_700_000_000))
    info = next(i for i in engine.library() if i.doc_id == "uploads/old.txt")
    assert info.uploaded_at == "2023-11-14T22:13:20+00:00"
