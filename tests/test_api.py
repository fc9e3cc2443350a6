"""The OpenAI-compatible API (ui/api.py) against the real app on a free port, through the
official ``openai`` client: answers with sources, streaming, refusal, scope, errors, busy.

No credentials here (open on loopback, as a single user runs it); keys and roles are in
tests/test_access.py.
"""

from __future__ import annotations

import re
import threading

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # inside gradio's queue
openai = pytest.importorskip("openai", reason="the openai client is a dev extra (pip install -e .[dev])")

from conftest import serving  # noqa: E402

QUESTION = "到2020年北斗系统由多少颗卫星组成?"
# eval/questions.jsonl q093, marked unanswerable: no seed document says when the agency was founded
UNANSWERABLE = "国家数据局是在哪一年正式挂牌成立的？"
SICHUAN = "004_14d6703fe5634065.txt"
MARKER = re.compile(r"\[(\d+)\]")


@pytest.fixture(scope="module")
def api_settings(settings, tmp_path_factory):
    cache = tmp_path_factory.mktemp("sentences")
    return settings.override("app", warm_up=False).override("qa", sentence_cache_dir=str(cache))


@pytest.fixture(scope="module")
def engine(seed_index, api_settings, tmp_path_factory):
    import shutil

    import app

    index = tmp_path_factory.mktemp("api") / "index"
    shutil.copytree(seed_index, index)
    return app.Engine.load(index, api_settings)


@pytest.fixture(scope="module")
def base_url(engine, api_settings):
    import app
    from ui.access import Access

    with serving(app.create_app(engine, api_settings, Access())) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url):
    # a key the open server ignores (the client insists on one); no retries, so a 503 shows
    return openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=120)


def extra(obj) -> dict:
    """The ``policyqa`` field the client keeps as an extra attribute."""
    return (obj.model_extra or {})["policyqa"]


def ask(client, content: str, **kw):
    return client.chat.completions.create(model="policyqa", messages=[{"role": "user", "content": content}], **kw)


def test_models_are_listed(client):
    ids = [m.id for m in client.models.list()]
    assert "policyqa" in ids and "policyqa-extractive" in ids


def test_answer_carries_markers_sources_and_citations(client, base_url):
    resp = ask(client, QUESTION)
    choice = resp.choices[0]
    assert resp.object == "chat.completion" and choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    text = choice.message.content
    answer, _, listing = text.partition("\n\n来源 Sources:\n")
    assert "35" in answer and listing, text
    meta = extra(resp)
    assert meta["refused"] is False and meta["citations"]
    numbers = {c["n"] for c in meta["citations"]}
    assert set(map(int, MARKER.findall(answer))) == numbers  # every marker has its citation and back
    for c in meta["citations"]:
        assert c["url"].startswith(f"{base_url}/source/") and c["quote"] and c["doc_id"] and c["title"]
        assert 0 <= c["start"] < c["end"]
        assert f"[{c['n']}] {c['title']}" in listing and c["url"] in listing
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_citation_span_is_the_quoted_text(client, engine):
    meta = extra(ask(client, QUESTION))
    for c in meta["citations"]:
        doc = engine.document(c["doc_id"])
        assert doc.text[c["start"]:c["end"]] == c["quote"]


def test_stream_gives_the_same_message_and_citations_on_the_last_chunk(client):
    whole = ask(client, QUESTION)
    chunks = list(ask(client, QUESTION, stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2  # pieces, then the sources
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["stop"]
    assert extra(finals[0])["citations"] == extra(whole)["citations"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_stream_ends_with_done(base_url):
    import httpx

    body = {"model": "policyqa", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)


def test_refusal_has_no_citations(client):
    resp = ask(client, UNANSWERABLE)
    meta = extra(resp)
    assert meta["refused"] is True and meta["citations"] == []
    assert not MARKER.search(resp.choices[0].message.content)


def test_history_makes_a_follow_up(client):
    resp = client.chat.completions.create(model="policyqa", messages=[
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": ask(client, QUESTION).choices[0].message.content},
        {"role": "user", "content": "到2018年呢?"},
    ])
    assert "北斗" in extra(resp)["query"]  # the follow-up was searched with the first question's topic


def test_scope_keeps_every_source_in_the_chosen_document(client, engine):
    question = "宽带网络建设的目标是什么?"
    free = extra(ask(client, question))
    assert {c["doc_id"] for c in free["citations"]} != {SICHUAN}  # unscoped, other plans answer too
    scoped = extra(ask(client, question, extra_body={"doc_ids": [SICHUAN], "k": 6}))
    assert scoped["doc_ids"] == [SICHUAN] and scoped["citations"]
    assert {c["doc_id"] for c in scoped["citations"]} == {SICHUAN}


@pytest.mark.parametrize("body, code", [
    ({"messages": [{"role": "system", "content": "hi"}]}, "no_question"),
    ({"messages": [{"role": "user", "content": "   "}]}, "no_question"),
    ({"messages": [{"role": "user", "content": QUESTION}], "k": 0}, "invalid_k"),
    ({"messages": [{"role": "user", "content": QUESTION}], "k": 10_000}, "invalid_k"),
    ({"messages": [{"role": "user", "content": QUESTION}], "generator": "gpt"}, "invalid_generator"),
    ({"messages": [{"role": "user", "content": QUESTION}], "doc_ids": ["no-such.txt"]}, "unknown_document"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": QUESTION}]}, "model_not_found"),
    ({"messages": "hello"}, "invalid_request"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "unsupported_content"),
])
def test_bad_requests_are_400_in_openai_shape(client, body, code):
    fields = {"model": body.pop("model", "policyqa"), "messages": body.pop("messages")}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(**fields, extra_body=body)  # k, generator, doc_ids: extra fields
    assert err.value.status_code == 400 and err.value.code == code and err.value.message


def test_too_long_question_is_413(client, api_settings):
    with pytest.raises(openai.APIStatusError) as err:
        ask(client, "数" * (api_settings.app.max_question_chars + 1))
    assert err.value.status_code == 413 and "question too long" in err.value.message


def test_body_not_json_and_too_large(base_url, api_settings):
    import httpx

    r = httpx.post(f"{base_url}/v1/chat/completions", content=b"{nope", timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    big = b'{"messages": [' + b" " * api_settings.app.max_request_bytes + b"]}"
    r = httpx.post(f"{base_url}/v1/chat/completions", content=big, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_library_as_json_and_unknown_delete_is_404(base_url, engine):
    import httpx

    docs = httpx.get(f"{base_url}/api/documents", timeout=30).json()["data"]
    assert {d["doc_id"] for d in docs} == set(engine.retriever.documents) and len(docs) == 5
    sichuan = next(d for d in docs if d["doc_id"] == SICHUAN)
    assert "四川" in sichuan["title"] and sichuan["passages"] > 0 and sichuan["origin"] == "corpus"
    assert sichuan["url"] == f"{base_url}/source/{SICHUAN}"
    r = httpx.delete(f"{base_url}/api/documents/uploads%2Fnone.txt", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "document_not_found"
    assert len(httpx.get(f"{base_url}/api/documents", timeout=30).json()["data"]) == 5


# -- a server that admits one answer at a time and queues none -----------------------------
@pytest.fixture(scope="module")
def tiny_url(engine, api_settings):
    import app
    from ui.access import Access

    tiny = api_settings.override("app", concurrency=1, queue_size=0, busy_retry_after_s=7)
    with serving(app.create_app(engine, tiny, Access())) as url:
        yield url


def test_burst_beyond_the_queue_is_told_busy(tiny_url):
    client = openai.OpenAI(base_url=tiny_url + "/v1", api_key="unused", max_retries=0, timeout=120)
    results: list = [None] * 4
    start = threading.Barrier(len(results))

    def one(i):
        start.wait()
        try:
            results[i] = ask(client, QUESTION)
        except openai.APIStatusError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    busy = [r for r in results if isinstance(r, openai.APIStatusError)]
    answered = [r for r in results if not isinstance(r, Exception)]
    assert answered and busy, results
    for exc in busy:
        assert exc.status_code == 503 and exc.response.headers["retry-after"] == "7" and "busy" in exc.message
    assert "35" in answered[0].choices[0].message.content
    assert "35" in ask(client, QUESTION).choices[0].message.content  # the burst over, answers again


def test_client_leaving_mid_stream_frees_its_slot(tiny_url):
    import httpx

    body = {"model": "policyqa", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with httpx.stream("POST", f"{tiny_url}/v1/chat/completions", json=body, timeout=120) as r:
        assert r.status_code == 200
        next(r.iter_lines())  # the first event, then hang up
    client = openai.OpenAI(base_url=tiny_url + "/v1", api_key="unused", max_retries=6, timeout=120)
    # the one slot comes back once the abandoned answer's current step ends (503s meanwhile are retried)
    assert "35" in ask(client, QUESTION).choices[0].message.content


def test_web_ui_queue_is_bounded_too(tiny_url):
    """Gradio's queue (max_size from queue_size) turns a burst away instead of piling it up."""
    from gradio_client import Client

    client = Client(tiny_url + "/", verbose=False)
    jobs = [client.submit(QUESTION, api_name="/ask") for _ in range(6)]
    outcomes = []
    for job in jobs:
        try:
            outcomes.append(job.result(timeout=120))
        except Exception as exc:  # noqa: BLE001 - gradio_client's error for a refused event
            outcomes.append(exc)
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert refused and any("queue is full" in str(o).lower() for o in refused), outcomes
    assert any(isinstance(o, dict) and "35" in o["answer"] for o in outcomes)
