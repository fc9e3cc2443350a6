"""The chat in a real browser: headless Chromium (Debian's, driven by Playwright) against
``python app.py`` started as a subprocess, the way a user runs it.

Screenshots land in artifacts/screenshots/ for a person to look at (layout, CJK fonts,
narrow windows). Skipped only when /usr/bin/chromium is missing (CI installs it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium fonts-noto-cjk)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUESTION = "到2020年北斗系统由多少颗卫星组成?"
ANSWER_TIMEOUT_MS = 120_000

from conftest import app_process, index_with_document  # noqa: E402
from test_app import EVIL_DOC, EVIL_QUESTION  # noqa: E402  (same markup document as the unit tests)


@pytest.fixture(scope="module")
def browser_index(seed_index, tmp_path_factory, settings, embedder):
    """The seed index plus the markup document, in a copy this module may add uploads to."""
    return index_with_document(seed_index, tmp_path_factory.mktemp("browser"), "evil.txt", EVIL_DOC, settings,
                               embedder)


@pytest.fixture(scope="module")
def app_url(browser_index, tmp_path_factory):
    """``python app.py --index … --port …`` as a user starts it; stopped after the module."""
    log = tmp_path_factory.mktemp("applog") / "app.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "POLICYQA_APP_CONCURRENCY": "2", "POLICYQA_APP_WARM_UP": "0",
           "POLICYQA_QA_SENTENCE_CACHE_DIR": str(tmp_path_factory.mktemp("sentences"))}
    with app_process(["--index", str(browser_index)], env, log) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Watch:
    """Records what must never happen on a page: dialogs, page errors, calls off this machine."""

    def __init__(self, page, base: str):
        self.dialogs, self.errors, self.external = [], [], []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:"))
                else self.external.append(r.url))


def new_page(browser, url: str, width: int = 1280, height: int = 900):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    watch = Watch(page, url)
    page.goto(url)
    page.wait_for_selector("#pq-question textarea")
    return context, page, watch


def ask(page, question: str):
    """Type a question, press Enter, wait for the finished answer; returns the last bot message."""
    done_before = page.locator(".pq-answer:not(.pq-streaming), .pq-refusal, .pq-error").count()
    page.fill("#pq-question textarea", question)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('.pq-answer:not(.pq-streaming), .pq-refusal, .pq-error').length > n",
        arg=done_before, timeout=ANSWER_TIMEOUT_MS)
    return page.locator("[data-testid='bot']").last


def test_answer_streams_with_linked_sources_and_source_view(browser, app_url):
    context, page, watch = new_page(browser, app_url)
    # count DOM updates of the streaming answer: several pieces arrive before the final one
    page.evaluate("""() => { window.__pieces = 0; new MutationObserver(() => {
        if (document.querySelector('.pq-streaming')) window.__pieces++; })
        .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
    ask(page, QUESTION)
    answer = page.locator(".pq-answer").last
    assert "[1]" in answer.inner_text()
    assert "35" in answer.inner_text()
    assert page.evaluate("window.__pieces") >= 1, "the answer never showed in its streaming state"
    cite = answer.locator("a.pq-cite").first
    assert re.match(r"^/source/[^?]+\?start=\d+&end=\d+#hl$", cite.get_attribute("href"))
    source = page.locator(".pq-sources a.pq-src").first
    quote = page.locator(".pq-sources blockquote.pq-quote").first.inner_text().strip()
    page.screenshot(path=SHOTS / "01_answer.png", full_page=True)

    with context.expect_page() as opened:
        source.click()
    view = opened.value
    view.wait_for_load_state()
    mark = view.locator("mark#hl")
    assert mark.count() == 1
    marked = " ".join(mark.inner_text().split())
    assert " ".join(quote.rstrip("…").split())[:20] in marked
    box, viewport = mark.bounding_box(), view.viewport_size
    assert box and 0 <= box["y"] < viewport["height"], "the highlighted span was not scrolled into view"
    assert view.locator("h1").inner_text().strip()
    view.screenshot(path=SHOTS / "02_source_view.png")

    with context.expect_page() as opened:  # the [n] marker opens the same place
        cite.click()
    marker_view = opened.value
    marker_view.wait_for_load_state()
    assert marker_view.url.split("/source/")[1] == cite.get_attribute("href").split("/source/")[1]
    assert watch.dialogs == [] and watch.errors == [] and watch.external == []
    context.close()


def test_markup_in_documents_runs_nothing(browser, app_url):
    context, page, watch = new_page(browser, app_url)
    ask(page, EVIL_QUESTION)
    page.screenshot(path=SHOTS / "03_markup_document.png", full_page=True)
    chat = page.locator("#pq-chat")
    assert "<script>alert('xss')</script>" in chat.inner_text()
    assert chat.locator("script, img[src='x']").count() == 0
    links = chat.locator("a.pq-src")
    href = next(h for h in (links.nth(i).get_attribute("href") for i in range(links.count())) if "evil.txt" in h)
    view = context.new_page()
    view_watch = Watch(view, app_url)
    view.goto(app_url.rstrip("/") + href)
    assert "<script>alert('xss')</script>" in view.locator("main").inner_text()
    assert '<img src=x onerror="window.__pwned=1;alert(1)">' in view.locator("main").inner_text()
    view.screenshot(path=SHOTS / "04_markup_source_view.png")
    assert view.evaluate("window.__pwned") is None and page.evaluate("window.__pwned") is None
    assert watch.dialogs == [] and view_watch.dialogs == []
    assert view.goto(app_url + "source/..%2F..%2Fetc%2Fpasswd").status == 404
    context.close()


def test_two_browser_sessions_do_not_share_history(browser, app_url):
    ctx_a, page_a, _ = new_page(browser, app_url)
    ctx_b, page_b, _ = new_page(browser, app_url)
    ask(page_a, QUESTION)
    ask(page_b, "“十四五”国家信息化规划提出了哪些主要目标?")
    ask(page_a, "到2018年呢?")
    users_a = page_a.locator("[data-testid='user']").all_inner_texts()
    users_b = page_b.locator("[data-testid='user']").all_inner_texts()
    assert [u.strip() for u in users_a] == [QUESTION, "到2018年呢?"]
    assert [u.strip() for u in users_b] == ["“十四五”国家信息化规划提出了哪些主要目标?"]
    page_a.locator("#pq-clear").click()
    page_a.wait_for_function("() => !document.querySelector('#pq-chat .pq-answer')")
    assert page_b.locator(".pq-answer").count() == 1  # clearing one session leaves the other alone
    ctx_a.close()
    ctx_b.close()


def test_refusal_is_shown_with_linked_related_passages(browser, app_url):
    context, page, watch = new_page(browser, app_url)
    ask(page, "火星殖民地计划在2050年移民多少人?")
    bot = page.locator("[data-testid='bot']").last
    assert bot.locator(".pq-refusal").count() == 1 and bot.locator("a.pq-cite").count() == 0
    related = bot.locator(".pq-related a.pq-src")
    if related.count():  # passages are offered when retrieval found any
        assert re.match(r"^/source/[^?]+\?start=\d+&end=\d+#hl$", related.first.get_attribute("href"))
    page.screenshot(path=SHOTS / "08_refusal.png", full_page=True)
    assert watch.dialogs == [] and watch.errors == []
    context.close()


def test_narrow_window_and_long_answer(browser, app_url):
    context, page, watch = new_page(browser, app_url, width=420, height=860)
    ask(page, "What does the 13th Five-Year informatization plan say about e-government?")
    page.screenshot(path=SHOTS / "05_narrow_420px.png", full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 420 + 1, f"the page scrolls sideways at 420px ({width}px wide)"
    context.close()
    context, page, watch = new_page(browser, app_url, width=1280, height=900)
    page.locator("#pq-scores input").check()
    ask(page, "“十四五”国家信息化规划提出了哪些主要目标和重大任务?")
    assert page.locator(".pq-scores").count() >= 1
    page.screenshot(path=SHOTS / "06_long_answer_with_scores.png", full_page=True)
    context.close()


def test_upload_in_browser_then_searchable(browser, app_url, tmp_path):
    good = tmp_path / "browser_upload.txt"
    good.write_text("青松数据港建设方案\n\n青松数据港的机架总数为一万二千个。\n", encoding="utf-8")
    bad = tmp_path / "notes.exe"
    bad.write_bytes(b"MZ")
    context, page, watch = new_page(browser, app_url)
    page.locator("#pq-admin-upload input[type=file]").set_input_files([str(good), str(bad)])
    page.wait_for_selector("#pq-upload-log li", timeout=ANSWER_TIMEOUT_MS)
    log = page.locator("#pq-upload-log").inner_text()
    assert "browser_upload.txt" in log and "notes.exe: unsupported file type" in log
    ask(page, "青松数据港的机架总数是多少?")
    # answered or refused with "possibly related" passages: either way the new file is linked
    assert page.locator("[data-testid='bot']").last.locator("a.pq-src[href^='/source/uploads%2Fbrowser_upload.txt']").count()
    page.screenshot(path=SHOTS / "07_after_upload.png", full_page=True)
    context.close()


# -- the library panel: list, scope, delete ---------------------------------------------------
SICHUAN = "004_14d6703fe5634065.txt"
SEED_IDS = ["000_23acc2fe7a7ca56c.txt", "001_f21eb84e8a85de7c.txt", "002_236f301bd7d0f271.txt",
            "003_b8f887ea6ba329fa.txt", SICHUAN]
BROAD = "到2020年信息化发展的主要目标是什么?"


def source_ids(bot) -> list[str]:
    """The documents the sources (or "possibly related" passages) of one answer link to."""
    from urllib.parse import unquote

    links = bot.locator("a.pq-src")
    return [unquote(links.nth(i).get_attribute("href").split("/source/")[1].split("?")[0])
            for i in range(links.count())]


def library_ids(page) -> list[str]:
    rows = page.locator("#pq-library tr[data-doc-id]")
    return [rows.nth(i).get_attribute("data-doc-id") for i in range(rows.count())]


def test_library_lists_the_seed_documents_and_opens_them(browser, app_url):
    context, page, watch = new_page(browser, app_url)
    page.wait_for_selector("#pq-library tr[data-doc-id]")
    assert set(SEED_IDS) <= set(library_ids(page))
    row = page.locator(f"#pq-library tr[data-doc-id='{SICHUAN}']")
    assert "四川省人民政府" in row.inner_text() and "2017-12-21" in row.inner_text() and "corpus" in row.inner_text()
    page.locator("#pq-library-panel").screenshot(path=SHOTS / "09_library.png")
    with context.expect_page() as opened:
        row.locator("a.pq-lib-doc").click()
    view = opened.value
    view.wait_for_load_state()
    assert view.url.endswith("/source/004_14d6703fe5634065.txt") and "四川省" in view.locator("h1").inner_text()
    assert watch.dialogs == [] and watch.errors == [] and watch.external == []
    context.close()


def test_scope_to_the_sichuan_plan_and_clear_it(browser, app_url):
    context, page, watch = new_page(browser, app_url)
    page.wait_for_selector("#pq-library tr[data-doc-id]")
    page.locator("#pq-scope-pick label", has_text="四川省").click()
    page.wait_for_selector("#pq-scope .pq-scope")
    assert "四川省" in page.locator("#pq-scope").inner_text()
    first = ask(page, BROAD)
    ids = source_ids(first)
    assert ids and set(ids) == {SICHUAN}, ids
    assert "范围 Scope: 四川省" in first.inner_text()
    follow = ask(page, "那电子政务方面呢?")  # a follow-up keeps the scope
    assert set(source_ids(follow)) == {SICHUAN}
    page.screenshot(path=SHOTS / "10_scoped_answer.png", full_page=True)
    page.locator("#pq-scope-clear").click()  # one click clears it
    page.wait_for_function("() => !document.querySelector('#pq-scope .pq-scope')")
    unscoped = ask(page, BROAD)
    assert set(source_ids(unscoped)) - {SICHUAN}, "without the scope other documents answer too"
    assert "范围 Scope" not in unscoped.inner_text()
    assert watch.dialogs == [] and watch.errors == []
    context.close()


def test_upload_then_delete_is_gone_from_search_disk_and_after_reload(browser, app_url, browser_index, tmp_path):
    name, doc_id = "library_delete.txt", "uploads/library_delete.txt"
    question = "白鹭数据岛的服务器总数是多少?"
    good = tmp_path / name
    good.write_text("白鹭数据岛建设方案\n\n白鹭数据岛的服务器总数为三万八千台。\n", encoding="utf-8")
    stored = browser_index.with_name(browser_index.name + ".uploads") / name
    context, page, watch = new_page(browser, app_url)
    page.locator("#pq-admin-upload input[type=file]").set_input_files([str(good)])
    page.wait_for_selector(f"#pq-library tr[data-doc-id='{doc_id}']", timeout=ANSWER_TIMEOUT_MS)
    assert stored.is_file()
    assert "upload" in page.locator(f"#pq-library tr[data-doc-id='{doc_id}']").inner_text()
    before = ask(page, question)
    assert doc_id in source_ids(before)

    # the same name again: asked, and Cancel adds nothing
    page.locator("#pq-admin-upload input[type=file]").set_input_files([str(good)])
    page.wait_for_selector("#pq-admin-replace", state="visible", timeout=ANSWER_TIMEOUT_MS)
    assert "already uploaded" in page.locator("#pq-upload-log").inner_text()
    page.locator("#pq-admin-upload-cancel").click()
    page.wait_for_function("() => document.querySelector('#pq-upload-log').innerText.includes('Cancelled')")
    assert library_ids(page).count(doc_id) == 1 and "三万八千" in stored.read_text(encoding="utf-8")
    # ... and Replace replaces it with the file just chosen
    good.write_text("白鹭数据岛建设方案\n\n白鹭数据岛的服务器总数为四万台。\n", encoding="utf-8")
    page.locator("#pq-admin-upload input[type=file]").set_input_files([str(good)])
    page.wait_for_selector("#pq-admin-replace", state="visible", timeout=ANSWER_TIMEOUT_MS)
    page.locator("#pq-admin-replace").click()
    page.wait_for_function("() => document.querySelector('#pq-upload-log').innerText.includes('Added 1')",
                           timeout=ANSWER_TIMEOUT_MS)
    assert "四万台" in stored.read_text(encoding="utf-8") and library_ids(page).count(doc_id) == 1

    page.locator("#pq-admin-delete-pick input").click()
    page.get_by_role("option", name=re.compile("library_delete")).click()
    page.locator("#pq-admin-delete").click()
    page.wait_for_selector("#pq-admin-delete-confirm", state="visible")
    assert "白鹭数据岛建设方案" in page.locator("#pq-delete-question").inner_text()
    page.screenshot(path=SHOTS / "11_delete_confirm.png", full_page=True)
    page.locator("#pq-admin-delete-confirm").click()
    page.wait_for_selector(f"#pq-library tr[data-doc-id='{doc_id}']", state="detached", timeout=ANSWER_TIMEOUT_MS)
    assert "已删除 Deleted" in page.locator("#pq-library-log").inner_text()
    assert not stored.exists()
    assert doc_id in source_ids(before)  # the earlier answer keeps its sources ...
    link = before.locator("a.pq-src[href*='library_delete']").first.get_attribute("href")
    view = context.new_page()
    assert view.goto(app_url.rstrip("/") + link).status == 410  # ... whose page says the source was removed
    assert "removed" in view.locator("main").inner_text()
    after = ask(page, question)
    assert doc_id not in source_ids(after)

    page.reload()
    page.wait_for_selector("#pq-library tr[data-doc-id]")
    assert doc_id not in library_ids(page) and set(SEED_IDS) <= set(library_ids(page))
    assert doc_id not in source_ids(ask(page, question)) and not stored.exists()
    assert watch.dialogs == [] and watch.errors == []
    context.close()
