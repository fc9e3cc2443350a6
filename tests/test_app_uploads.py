"""Write paths of the app under attack and under load: uploads, request bounds, priority.

Each test replays what a hostile client or a busy server does: an upload event naming a
server file, an upload named like a shipped document, oversized requests, k out of range,
and questions asked while a large upload is being embedded.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # inside gradio's queue

from conftest import serving, uploaded

SEED_ID = "000_23acc2fe7a7ca56c.txt"
BEIDOU_Q = "到2020年北斗系统由多少颗卫星组成?"
FORGED = "北斗卫星导航系统建设规划\n\n到2020年，北斗系统由3颗卫星组成，覆盖本市全境。\n"
SECRET = "绝密配置文件\n\n服务器口令为天王盖地虎，只在本机保存，不得外传。\n"


@pytest.fixture
def app_settings(settings, tmp_path):
    return (settings.override("app", warm_up=False, upload_dir=str(tmp_path / "uploads"),
                              max_upload_bytes=5_000_000)
            .override("qa", sentence_cache_dir=""))


@pytest.fixture
def engine(seed_index, tmp_path, app_settings, embedder):
    """A private writable copy of the seed index (uploads change it)."""
    import shutil

    import app

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    return app.Engine.load(index, app_settings)


@pytest.fixture
def upload(engine):
    import app

    return app.make_handlers(engine)[2]


@pytest.fixture
def served(engine, app_settings):
    """(base URL, FastAPI app) of the app served by uvicorn in a thread."""
    import app

    application = app.create_app(engine, app_settings)
    with serving(application) as url:
        yield url, application


@pytest.fixture
def server(served):
    return served[0]


def _upload_event(demo) -> tuple[int, int]:
    """(fn_index, trigger_id) of the upload event, as the browser's page knows them."""
    for fn_index, fn in demo.fns.items():
        if getattr(fn.fn, "__name__", "") == "upload":
            return fn_index, fn.targets[0][0]
    raise AssertionError("no upload event")


def _queue_call(base: str, fn_index: int, trigger_id: int, data: list) -> list[dict]:
    """Join the queue as the browser does and read the event stream to completion."""
    import httpx

    session = uuid.uuid4().hex
    with httpx.Client(timeout=60) as http:
        r = http.post(f"{base}/gradio_api/queue/join", json={
            "data": data, "fn_index": fn_index, "trigger_id": trigger_id, "session_hash": session,
            "event_data": None})
        assert r.status_code == 200, r.text
        messages = []
        with http.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    messages.append(json.loads(line[5:]))
                    if messages[-1].get("msg") in ("process_completed", "close_stream"):
                        break
    return messages


# -- 1. a server file named in a crafted upload event ----------------------------------------
def test_crafted_upload_event_cannot_read_server_files(served, engine, tmp_path):
    server, application = served
    secret = tmp_path / "secret.txt"  # outside Gradio's upload folder, readable by the server
    secret.write_text(SECRET, encoding="utf-8")
    fn_index, trigger_id = _upload_event(application.state.demo)
    before = set(engine.retriever.documents)
    file_data = {"path": str(secret), "meta": {"_type": "gradio.FileData"}}
    messages = _queue_call(server, fn_index, trigger_id, [[file_data], False])
    done = [m for m in messages if m.get("msg") == "process_completed"]
    assert done, messages
    assert set(engine.retriever.documents) == before
    assert not any("天王盖地虎" in d.text for d in engine.retriever.documents.values())
    assert "天王盖地虎" not in json.dumps(messages, ensure_ascii=False)
    import httpx

    assert httpx.get(f"{server}/source/uploads%2Fsecret.txt").status_code == 404


def test_upload_handler_refuses_paths_outside_the_upload_folder(upload, engine, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    link = uploaded("innocent.txt", b"")
    link.unlink()
    link.symlink_to(secret)  # inside the folder, but pointing out of it
    for path in (secret, link):
        log_html, _ = upload([str(path)])
        assert "Upload refused" in log_html
    assert not any("天王盖地虎" in d.text for d in engine.retriever.documents.values())


# -- 2. uploads live in their own namespace ---------------------------------------------------
def test_upload_named_like_a_shipped_document_does_not_replace_it(upload, engine, app_settings):
    original = engine.document(SEED_ID).text
    log_html, _ = upload([str(uploaded(SEED_ID, FORGED))])
    assert "Added 1 document" in log_html
    assert engine.document(SEED_ID).text == original
    forged = engine.document("uploads/" + SEED_ID)
    assert forged is not None and "3颗卫星" in forged.text
    hits = engine.retriever.search(BEIDOU_Q, k=10)
    assert any(h.doc_id == SEED_ID and "35颗" in h.text for h in hits)
    answer = engine.assistant.ask(BEIDOU_Q)
    assert all(c.hit.doc_id == SEED_ID for c in answer.citations if "35" in c.quote)
    # the upload is kept in the upload area, under its name
    area = Path(app_settings.app.upload_dir)
    assert [p.name for p in area.iterdir()] == [SEED_ID]


def test_same_name_again_asks_and_only_replace_replaces(engine, app_settings):
    import app

    h = app.make_handlers(engine)
    area = Path(app_settings.app.upload_dir)
    first, second = ("甲市数据条例\n\n第一条 甲市公共数据由大数据局统一管理。\n",
                     "甲市数据条例\n\n第一条 甲市公共数据由财政局统一管理。\n")
    h.upload([str(uploaded("policy.txt", first))])
    again = [str(uploaded("policy.txt", second)), str(uploaded("other.txt", "乙市规划\n\n乙市建设五个数据中心。\n"))]
    log_html, _ = h.upload(again)
    assert "policy.txt</code> 已上传过 already uploaded" in log_html and "Nothing was added yet" in log_html
    assert h.held_upload() and engine.document("uploads/other.txt") is None  # the whole request waits
    assert "大数据局" in engine.document("uploads/policy.txt").text
    log_html, _ = h.resolve_upload("cancel")
    assert "Cancelled" in log_html and not h.held_upload() and engine.document("uploads/other.txt") is None
    assert h.resolve_upload("replace")[0] == "<p>nothing is waiting to be added</p>"  # a decision is used once

    h.upload(again)
    log_html, _ = h.resolve_upload("keep")
    assert "Added 2 document" in log_html
    assert "大数据局" in engine.document("uploads/policy.txt").text
    assert "财政局" in engine.document("uploads/policy (2).txt").text

    h.upload([str(uploaded("policy.txt", second.replace("财政局", "网信办")))])
    log_html, _ = h.resolve_upload("replace")
    assert "Added 1 document" in log_html
    assert "网信办" in engine.document("uploads/policy.txt").text
    assert "网信办" in (area / "policy.txt").read_text(encoding="utf-8")
    assert sorted(p.name for p in area.iterdir()) == ["other.txt", "policy (2).txt", "policy.txt"]  # no backup


def test_upload_area_keeps_only_indexed_files(upload, engine, app_settings):
    area = Path(app_settings.app.upload_dir)
    empty = uploaded("empty.txt", "")
    dup = uploaded("copy.txt", engine.document(SEED_ID).text)  # same text as a shipped document
    good = uploaded("good.txt", "乙省算力规划\n\n到2025年乙省算力规模达到十万标准机架。\n")
    log_html, _ = upload([str(empty), str(dup), str(good)])
    assert "empty.txt: empty file" in log_html and f"copy.txt: duplicate of {SEED_ID}" in log_html
    assert sorted(p.name for p in area.iterdir()) == ["good.txt"]
    assert str(area) not in log_html and str(good.parent) not in log_html


def test_sweep_deletes_files_whose_document_left_the_index(tmp_path):
    from ingest.uploads import UploadArea

    area = UploadArea(tmp_path / "area", 10_000)
    src = tmp_path / "a.txt"
    src.write_text("x" * 10, encoding="utf-8")
    staged = area.stage([(src, "a.txt"), (src, "b.txt")])
    area.commit(staged)
    assert area.sweep({"uploads/a.txt"}) == ["b.txt"]
    assert sorted(p.name for p in area.root.iterdir()) == ["a.txt"]
    src.write_text("y" * 10, encoding="utf-8")
    area.stage([(src, "a.txt")])  # crashed before commit: the original is put back
    assert area.sweep({"uploads/a.txt"}) == []
    assert (area.root / "a.txt").read_text(encoding="utf-8") == "x" * 10


# -- 4. bounds on one request --------------------------------------------------------------
def test_upload_request_bounds(engine, settings, tmp_path):
    import app

    before = set(engine.retriever.documents)
    files = [uploaded(f"f{i}.txt", f"丙市规划第{i}号\n\n到2025年丙市建成{i}个数据中心。\n") for i in range(3)]
    few = settings.override("app", max_upload_files=2, upload_dir=str(tmp_path / "u1"), warm_up=False)
    engine.settings = few
    log_html, _ = app.make_handlers(engine)[2]([str(f) for f in files])
    assert "too many files in one upload (3 &gt; 2" in log_html
    small = settings.override("app", max_upload_bytes=50, upload_dir=str(tmp_path / "u2"), warm_up=False)
    engine.settings = small
    log_html, _ = app.make_handlers(engine)[2]([str(f) for f in files])
    assert "upload too large" in log_html
    full = settings.override("app", upload_area_bytes=50, upload_dir=str(tmp_path / "u3"), warm_up=False)
    engine.settings = full
    log_html, _ = app.make_handlers(engine)[2]([str(f) for f in files])
    assert "upload area is full" in log_html
    assert set(engine.retriever.documents) == before
    assert not any((tmp_path / d).exists() and any((tmp_path / d).iterdir()) for d in ("u1", "u2", "u3"))


def test_upload_route_refuses_oversized_requests(server, app_settings):
    import socket

    import httpx

    limit = app_settings.app.max_upload_bytes
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:  # declares too much, sends nothing
        sock.sendall(f"POST /gradio_api/upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {limit + 1}\r\n"
                     "Content-Type: multipart/form-data; boundary=x\r\n\r\n".encode())
        reply = b""
        while b"upload too large" not in reply and (chunk := sock.recv(4096)):
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 413") and "upload too large" in reply

    def chunks():  # no Content-Length: counted as it streams; files each below the per-file bound
        for i in range(3):
            yield (f'--x\r\nContent-Disposition: form-data; name="files"; filename="part{i}.txt"\r\n'
                   "Content-Type: text/plain\r\n\r\n").encode()
            for _ in range(limit // 2 // (1 << 16)):
                yield b"a" * (1 << 16)
            yield b"\r\n"
        yield b"--x--\r\n"

    r = httpx.post(f"{server}/gradio_api/upload", content=chunks(),
                   headers={"content-type": "multipart/form-data; boundary=x"}, timeout=60)
    assert r.status_code == 413
    ok = httpx.post(f"{server}/gradio_api/upload",
                    files={"files": ("a.txt", "丁市规划\n\n内容。".encode("utf-8"), "text/plain")})
    assert ok.status_code == 200 and ok.json()[0].endswith("a.txt")


@pytest.mark.parametrize("k", [0, -3, 51, 10**6, 2.5, True])
def test_k_out_of_range_gets_its_own_message(engine, k):
    started = time.perf_counter()
    answer = engine.assistant.ask(BEIDOU_Q, k=k)
    assert answer.refused and "1 到 50" in answer.text and "问题是空的" not in answer.text
    assert time.perf_counter() - started < 1.0


def test_k_bound_in_the_api(server):
    from gradio_client import Client

    client = Client(server + "/", verbose=False)
    result = client.predict(BEIDOU_Q, None, 10**6, None, api_name="/ask")
    assert result["refused"] and "1 到 50" in result["answer"]
    result = client.predict(BEIDOU_Q, None, 50, None, api_name="/ask")
    assert not result["refused"] and "35" in result["answer"]


def test_retriever_bounds_k(engine):
    from retriever import QueryError

    assert len(engine.retriever.search(BEIDOU_Q, k=50)) > 5
    with pytest.raises(QueryError, match="from 1 to 50"):
        engine.retriever.search(BEIDOU_Q, k=51)


# -- 5. questions do not wait behind an upload ---------------------------------------------------
def test_queries_go_before_background_embedding(embedder):
    texts = [f"第{i}条 推进第{i}个数据中心建设，提升算力水平和网络安全保障能力。" * 3 for i in range(400)]
    done = threading.Event()
    t = threading.Thread(target=lambda: (embedder.encode_passages(texts), done.set()), daemon=True)
    t.start()
    time.sleep(1.0)  # the background job holds the model now
    started = time.perf_counter()
    embedder.encode_queries(["北斗系统由多少颗卫星组成"])
    waited = time.perf_counter() - started
    assert not done.is_set(), "the background job finished first: make it larger"
    t.join()
    assert waited < 3.0


def test_questions_are_answered_during_an_upload(engine, upload):
    lines = [f"第{i}条 戊市第{i}数据园区到2030年建成{i * 7}个机架，年度投资{i * 3}亿元，重点发展工业互联网与车联网。"
             for i in range(600)]
    big = uploaded("big.txt", "戊市数据园区规划\n\n" + "\n".join(lines))
    result = {}
    t = threading.Thread(target=lambda: result.update(log=upload([str(big)])[0]), daemon=True)
    t.start()
    time.sleep(3.0)
    latencies = []
    while t.is_alive() and len(latencies) < 3:
        started = time.perf_counter()
        answer = engine.assistant.ask(BEIDOU_Q)
        latencies.append(time.perf_counter() - started)
        assert "35" in answer.text
    still_running = t.is_alive()
    t.join()
    assert "Added 1 document" in result["log"]
    assert latencies and still_running, "the upload finished before the questions: make it larger"
    assert max(latencies) < 5.0, latencies


def test_model_lock_serves_queries_first_and_never_starves_background():
    """Back-to-back queries (two calls each, as an answer makes) against slices of background
    work: each query waits at most about one slice, and background work still advances."""
    from retriever.embedder import ModelLock

    lock = ModelLock(grace_s=0.2, max_yield_s=1.0)
    stop = time.monotonic() + 5
    slices, latencies = [], []

    def background():
        while time.monotonic() < stop:
            with lock.hold(urgent=False):
                time.sleep(0.25)
            slices.append(time.monotonic())

    def queries():
        while time.monotonic() < stop:
            started = time.monotonic()
            with lock.hold(urgent=True):
                time.sleep(0.03)
            time.sleep(0.03)
            with lock.hold(urgent=True):
                time.sleep(0.05)
            latencies.append(time.monotonic() - started)

    threads = [threading.Thread(target=background), threading.Thread(target=queries)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(slices) >= 3  # a plain priority rule would starve it: 0 slices
    assert max(latencies) < 0.25 + 0.11 + 0.15  # one slice + the query's own work + slack


def test_close_stops_background_warm_up(seed_index, settings, tmp_path):
    import app

    cfg = (settings.override("app", warm_up=True, upload_dir=str(tmp_path / "u"))
           .override("qa", sentence_cache_dir=str(tmp_path / "s")))
    engine = app.Engine.load(seed_index, cfg)
    engine.assistant.vectors._vectors.clear()  # cold, as on a first start with an index that holds
    engine.assistant.vectors.source = None  # no sentence vectors (written before they were stored)
    retriever = engine.assistant.retriever  # its manifest is read once per load: the copy warm-up reads
    retriever.manifest = {**retriever.manifest, "sentence_count": None}
    engine.warm_up_in_background()
    time.sleep(1.0)
    started = time.perf_counter()
    engine.close()
    assert time.perf_counter() - started < 10.0
    assert not any(t.is_alive() for t in engine._warmers)
    assert 0 < len(engine.assistant.vectors) < 2000  # stopped part-way (the seeds have ~2,100 sentences)


def test_app_start_warms_sentences_in_the_background_without_errors(tmp_path, monkeypatch):
    """``python app.py``: serves at once, the warm-up thread completes (no exception in it)."""
    import uvicorn

    import app

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text("甲市数据条例\n\n甲市公共数据由大数据局统一管理。数据共享应当依法进行。\n", encoding="utf-8")
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))

    def serve(application, **kw):  # instead of serving: wait for the warm-up, as a long-running server would
        for t in threading.enumerate():
            if t.name == "warm-up":
                t.join(timeout=120)

    monkeypatch.setattr(uvicorn, "run", serve)
    monkeypatch.setenv("POLICYQA_QA_SENTENCE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("POLICYQA_APP_WARM_UP", "1")
    assert app.main(["--index", str(tmp_path / "index"), "--seeds", str(seeds), "--port", "8125"]) == 0
    assert errors == []
    assert not any(t.name == "warm-up" and t.is_alive() for t in threading.enumerate())  # it finished
    # the index carries every sentence vector (issue 14): the warm-up had nothing to embed or save
    from retriever.store import read_index

    assert read_index(tmp_path / "index").sentence_vectors is not None
    assert not list((tmp_path / "cache").glob("sentences-*.npz"))
