"""Keys, logins and roles (ui/access.py) on the real app: 401 without a key, 403 for a reader
on an admin route, Gradio's login in front of the UI and its own API, the refusal to serve
a non-loopback address without credentials, and a reader's page without upload controls.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")  # inside gradio's queue
openai = pytest.importorskip("openai", reason="the openai client is a dev extra (pip install -e .[dev])")

from conftest import app_process, free_port, index_with_document, serving, uploaded  # noqa: E402
from ui.access import ADMIN, READER, Access, CredentialsError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "admin-key-0123456789abcdef"
READER_KEY = "reader-key-0123456789abcdef"
READER_LOGIN = ("bob", "bob-password-1")
ADMIN_LOGIN = ("alice", "alice-password-1")
QUESTION = "到2020年北斗系统由多少颗卫星组成?"
NOTE = "青松数据港建设方案\n\n青松数据港的机架总数为一万二千个。\n"
SECRET_ENV = ("POLICYQA_ADMIN_KEY", "POLICYQA_READER_KEY", "POLICYQA_ADMIN_LOGIN", "POLICYQA_READER_LOGIN",
              "POLICYQA_APP_CREDENTIALS")


def team_access() -> Access:
    return Access.load(None, {"POLICYQA_ADMIN_KEY": ADMIN_KEY, "POLICYQA_READER_KEY": READER_KEY,
                              "POLICYQA_READER_LOGIN": ":".join(READER_LOGIN),
                              "POLICYQA_ADMIN_LOGIN": ":".join(ADMIN_LOGIN)})


# -- credentials -------------------------------------------------------------------------
def test_file_and_environment_give_roles(tmp_path):
    path = tmp_path / "credentials.toml"
    path.write_text('[admin]\nkeys = ["file-admin-key-0123456"]\n'
                    '[reader]\nlogins = { carol = "carol-password", dave = "dave-password" }\n', encoding="utf-8")
    access = Access.load(path, {"POLICYQA_READER_KEY": READER_KEY})
    assert access.configured
    assert access.key_role("file-admin-key-0123456") == ADMIN and access.key_role(READER_KEY) == READER
    assert access.key_role("file-admin-key-012345") is None and access.key_role("") is None
    assert access.bearer_role(f"Bearer {READER_KEY}") == READER and access.bearer_role(READER_KEY) is None
    assert access.login("carol", "carol-password") and not access.login("carol", "dave-password")
    assert access.login("reader", READER_KEY) and not access.login("admin", READER_KEY)  # a key signs in as its role
    assert access.user_role("dave") == READER and access.user_role("admin") == ADMIN  # a key's role as a user
    assert access.user_role("mallory") is None and Access.load(None, {"POLICYQA_READER_KEY": READER_KEY}).user_role(
        "admin") is None  # no admin key: no such user
    assert ADMIN_KEY not in repr(access) and "carol-password" not in repr(access)


def test_nothing_configured_is_open_and_everyone_admin():
    access = Access.load(None, {})
    assert not access.configured and access.user_role(None) == ADMIN


@pytest.mark.parametrize("text, env, says", [
    ("", {"POLICYQA_ADMIN_KEY": "short-key"}, "at least 16 characters"),
    ("", {"POLICYQA_READER_LOGIN": "nopassword"}, "must be 'user:password'"),
    ("", {"POLICYQA_READER_LOGIN": "admin:long-enough-pw"}, "reserved"),
    ('[admin]\nkeys = ["same-key-0123456789"]\n[reader]\nkeys = ["same-key-0123456789"]\n', {}, "twice"),
    ('[editor]\nkeys = ["editor-key-0123456789"]\n', {}, "unknown section"),
    ('[admin]\nkeys = "not-a-list-0123456789"\n', {}, "list of strings"),
    ("[admin\n", {}, "cannot be read"),
])
def test_bad_credentials_are_refused_without_echoing_secrets(tmp_path, text, env, says):
    path = tmp_path / "credentials.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CredentialsError) as err:
        Access.load(path if text else None, env)
    message = str(err.value)
    assert says in message
    for secret in ("short-key", "long-enough-pw", "same-key-0123456789", "editor-key", "not-a-list"):
        assert secret not in message


# -- the app with credentials ------------------------------------------------------------------
@pytest.fixture(scope="module")
def team_settings(settings, tmp_path_factory):
    cache = tmp_path_factory.mktemp("sentences")
    return settings.override("app", warm_up=False).override("qa", sentence_cache_dir=str(cache))


@pytest.fixture(scope="module")
def team_engine(seed_index, team_settings, embedder, tmp_path_factory):
    import app

    index = index_with_document(seed_index, tmp_path_factory.mktemp("team"), "note.txt", NOTE, team_settings,
                                embedder)
    return app.Engine.load(index, team_settings)


@pytest.fixture(scope="module")
def team_served(team_engine, team_settings):
    """(base URL, FastAPI app) of the app with keys and logins for both roles."""
    import app

    application = app.create_app(team_engine, team_settings, team_access())
    with serving(application) as url:
        yield url, application


@pytest.fixture(scope="module")
def team_url(team_served):
    return team_served[0]


def api(url: str, key: str):
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=120)


def test_api_needs_a_valid_key(team_url):
    import httpx

    r = httpx.get(f"{team_url}/v1/models", timeout=30)
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    assert r.headers["www-authenticate"] == "Bearer"
    with pytest.raises(openai.AuthenticationError) as err:
        api(team_url, "wrong-" + ADMIN_KEY).chat.completions.create(
            model="policyqa", messages=[{"role": "user", "content": QUESTION}])
    assert err.value.status_code == 401 and err.value.code == "invalid_api_key"
    assert ADMIN_KEY not in err.value.response.text
    r = httpx.get(f"{team_url}/api/documents", headers={"Authorization": "Bearer nope"}, timeout=30)
    assert r.status_code == 401


def test_reader_asks_and_lists_but_may_not_delete(team_url, team_engine):
    import httpx

    reader = api(team_url, READER_KEY)
    resp = reader.chat.completions.create(model="policyqa", messages=[{"role": "user", "content": QUESTION}])
    assert "35" in resp.choices[0].message.content
    auth = {"Authorization": f"Bearer {READER_KEY}"}
    docs = httpx.get(f"{team_url}/api/documents", headers=auth, timeout=30).json()["data"]
    assert "note.txt" in {d["doc_id"] for d in docs}
    r = httpx.delete(f"{team_url}/api/documents/note.txt", headers=auth, timeout=30)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert team_engine.document("note.txt") is not None


def test_admin_deletes_and_unknown_is_404(team_url, team_engine):
    import httpx

    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    r = httpx.delete(f"{team_url}/api/documents/no-such.txt", headers=auth, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "document_not_found"
    r = httpx.delete(f"{team_url}/api/documents/note.txt", headers=auth, timeout=120)
    assert r.status_code == 200 and r.json() == {"id": "note.txt", "object": "document", "deleted": True}
    docs = httpx.get(f"{team_url}/api/documents", headers=auth, timeout=30).json()["data"]
    assert "note.txt" not in {d["doc_id"] for d in docs} and len(docs) == 5
    resp = api(team_url, ADMIN_KEY).chat.completions.create(
        model="policyqa", messages=[{"role": "user", "content": "青松数据港的机架总数是多少?"}])
    meta = resp.model_extra["policyqa"]
    assert all(c["doc_id"] != "note.txt" for c in meta["citations"] + meta["related"])


def test_source_view_needs_a_login_or_key(team_url):
    import httpx

    url = f"{team_url}/source/000_23acc2fe7a7ca56c.txt"
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {READER_KEY}"}, timeout=30).status_code == 200
    with httpx.Client(base_url=team_url, timeout=30) as browser:
        assert browser.post("/login", data={"username": "bob", "password": "wrong-password"}).status_code == 400
        assert browser.post("/login", data=dict(zip(("username", "password"), READER_LOGIN))).status_code == 200
        assert browser.get("/source/000_23acc2fe7a7ca56c.txt").status_code == 200  # the login's cookie


def test_gradio_api_is_behind_the_login(team_url):
    import httpx
    from gradio_client import Client

    r = httpx.post(f"{team_url}/gradio_api/call/ask", json={"data": [QUESTION]}, timeout=30)
    assert r.status_code == 401
    assert httpx.post(f"{team_url}/gradio_api/queue/join", json={"data": [QUESTION], "fn_index": 0,
                                                                 "session_hash": "x"}, timeout=30).status_code == 401
    with pytest.raises(Exception):  # noqa: B017 - the client's own error type for a refused login
        Client(team_url + "/", verbose=False)
    result = Client(team_url + "/", auth=READER_LOGIN, verbose=False).predict(QUESTION, api_name="/ask")
    assert "35" in result["answer"]
    result = Client(team_url + "/", auth=("reader", READER_KEY), verbose=False).predict(QUESTION, api_name="/ask")
    assert "35" in result["answer"]


def event(demo, name: str) -> tuple[int, int]:
    """(fn_index, trigger_id) of the event whose handler is called ``name``, as the page knows them."""
    for fn_index, fn in demo.fns.items():
        if getattr(fn.fn, "__name__", "") == name:
            return fn_index, fn.targets[0][0]
    raise AssertionError(f"no {name} event")


def call_event(http, demo, name: str, data: list) -> str:
    """Join Gradio's queue as the page does (with ``http``'s login cookie); the output as text."""
    import json
    import uuid

    fn_index, trigger_id = event(demo, name)
    session = uuid.uuid4().hex
    r = http.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "trigger_id": trigger_id,
                                                  "session_hash": session, "event_data": None})
    assert r.status_code == 200, r.text
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                return json.dumps(json.loads(line[5:]).get("output"), ensure_ascii=False)
    raise AssertionError("the event did not complete")


def test_reader_calling_upload_and_delete_events_directly_is_refused(team_served, team_engine):
    """Hidden controls are not the protection: the handlers check the signed-in user's role."""
    import httpx

    url, application = team_served
    demo = application.state.demo
    before = set(team_engine.retriever.documents)
    with httpx.Client(base_url=url, timeout=120) as http:
        assert http.post("/login", data=dict(zip(("username", "password"), READER_LOGIN))).status_code == 200
        r = http.post("/gradio_api/upload", files=[("files", ("reader.txt", NOTE.encode()))])
        assert r.status_code == 403 and "only an admin" in r.text  # Gradio stores no file for a reader
        # a file already in Gradio's upload folder (as if it got there), named in a crafted event
        file_data = {"path": str(uploaded("reader.txt", NOTE)), "orig_name": "reader.txt",
                     "meta": {"_type": "gradio.FileData"}}
        assert "only an admin" in call_event(http, demo, "upload", [[file_data]])
        assert "only an admin" in call_event(http, demo, "delete", ["000_23acc2fe7a7ca56c.txt"])
    assert set(team_engine.retriever.documents) == before
    with httpx.Client(base_url=url, timeout=120) as http:  # the same call as an admin goes through
        assert http.post("/login", data=dict(zip(("username", "password"), ADMIN_LOGIN))).status_code == 200
        # its own text: a copy of note.txt would be skipped as a duplicate whenever note.txt is still indexed
        admin_text = NOTE + "\n管理员上传的补充说明：本文件用于测试上传权限。"
        paths = http.post("/gradio_api/upload", files=[("files", ("admin.txt", admin_text.encode()))]).json()
        file_data = {"path": paths[0], "orig_name": "admin.txt", "meta": {"_type": "gradio.FileData"}}
        assert "Added 1 document" in call_event(http, demo, "upload", [[file_data]])
    assert team_engine.document("uploads/admin.txt") is not None


# -- start-up -----------------------------------------------------------------------------
def run_app(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=timeout)


def test_refuses_to_serve_a_network_address_without_credentials(tmp_path):
    done = run_app(["--host", "0.0.0.0", "--port", str(free_port()), "--index", str(tmp_path / "none")], {})
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0 without credentials" in done.stderr
    assert "POLICYQA_ADMIN_KEY" in done.stderr and "POLICYQA_APP_CREDENTIALS" in done.stderr
    assert not (tmp_path / "none").exists()  # refused before anything was built


def test_refuses_a_broken_credentials_file(tmp_path):
    bad = tmp_path / "credentials.toml"
    bad.write_text('[admin]\nkeys = ["tiny"]\n', encoding="utf-8")
    done = run_app(["--host", "0.0.0.0", "--index", str(tmp_path / "none")], {"POLICYQA_APP_CREDENTIALS": str(bad)})
    assert done.returncode == 2 and "at least 16 characters" in done.stderr and "tiny" not in done.stderr


# -- in a browser: a reader sees no upload or delete control -----------------------------------
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def team_app_url(seed_index, tmp_path_factory):
    """``python app.py --host 0.0.0.0`` with an admin and a reader login, as a team runs it."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium fonts-noto-cjk)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    import shutil

    index = tmp_path_factory.mktemp("team-app") / "index"
    shutil.copytree(seed_index, index)
    log = tmp_path_factory.mktemp("team-applog") / "app.log"
    clean = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env = {**clean, "HF_HUB_OFFLINE": "1", "POLICYQA_APP_WARM_UP": "0", "POLICYQA_QA_GENERATOR": "extractive",
           "POLICYQA_QA_SENTENCE_CACHE_DIR": str(tmp_path_factory.mktemp("sentences")),
           "POLICYQA_READER_LOGIN": ":".join(READER_LOGIN), "POLICYQA_ADMIN_LOGIN": ":".join(ADMIN_LOGIN)}
    with app_process(["--index", str(index), "--host", "0.0.0.0"], env, log) as url:
        yield url


def signed_in_page(browser, url: str, login: tuple[str, str]):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(url)
    page.fill("input[type=text]", login[0])
    page.fill("input[type=password]", login[1])
    page.keyboard.press("Enter")
    page.wait_for_selector("#pq-question textarea", timeout=60_000)
    page.wait_for_selector("#pq-library", timeout=60_000)
    return context, page


def test_reader_page_has_no_upload_or_delete_controls(team_app_url):
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context, page = signed_in_page(browser, team_app_url, READER_LOGIN)
            page.wait_for_timeout(1500)  # the page-load event that would show them to an admin
            assert page.locator("[id^='pq-admin-']:visible").count() == 0
            assert page.locator("#pq-admin-upload input[type=file]").count() == 0
            page.fill("#pq-question textarea", QUESTION)
            page.keyboard.press("Enter")
            page.wait_for_selector(".pq-answer:not(.pq-streaming)", timeout=120_000)
            assert "35" in page.locator(".pq-answer").last.inner_text()  # a reader asks as before
            context.close()

            context, page = signed_in_page(browser, team_app_url, ADMIN_LOGIN)
            page.wait_for_selector("#pq-admin-upload", state="visible", timeout=30_000)
            assert page.locator("#pq-admin-delete").is_visible()
            context.close()
        finally:
            browser.close()
