"""``python app.py``: the chat UI over the policy-document index (Gradio, served locally).

The app only presents: answers come from one shared ``qa.Assistant`` (loaded once, used by
every session), documents are added through the same ingestion and index update as the
command line, and every piece of document text is escaped by ``ui.render`` before it is
shown. Besides the chat it serves ``/source/{doc_id}?start=&end=``, a standalone page with
the cited span highlighted, so a source link can be opened, shared and bookmarked.

    python app.py [--index DIR] [--seeds DIR] [--host 127.0.0.1] [--port 7860]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# At module level because handlers annotate ``request: gr.Request``: Gradio finds that
# parameter through typing.get_type_hints, which resolves "gr" in this module's globals
# (with a local import it fails quietly and the handler gets request=None: no user, no session).
import gradio as gr  # noqa: E402

from settings import Settings, load_settings  # noqa: E402
from ui import library as lib  # noqa: E402
from ui import render  # noqa: E402
from ui.engine import Engine  # noqa: E402,F401  (app.Engine: the shared state)

EXAMPLES = [
    "到2020年北斗系统由多少颗卫星组成?",
    "“十四五”国家信息化规划提出了哪些主要目标?",
    "What does the 13th Five-Year informatization plan say about e-government?",
    "How does the strategy plan to strengthen cybersecurity?",
]


# -- handlers ---------------------------------------------------------------------------
def uploaded_file(path: Path) -> Path:
    """``path`` if it is a file Gradio received from a client, else UploadRefused.

    The upload event carries file paths that a client can write itself; only files inside
    Gradio's upload folder (symlinks resolved) came from an upload. Anything else (a server
    path such as /etc/…) is refused before it is opened.
    """
    from gradio.utils import get_upload_folder

    from ingest.uploads import UploadRefused

    folder = Path(get_upload_folder()).resolve()
    real = Path(path).resolve()
    if folder not in real.parents or not real.is_file():
        raise UploadRefused(f"{Path(path).name} was not uploaded through this app")
    return real


def history_of(turns: list[dict]) -> list[dict]:
    """Plain-text conversation (Gradio messages format) for follow-up questions."""
    history = []
    for t in turns:
        if t.get("answer") is not None:
            history += [{"role": "user", "content": t["q"]}, {"role": "assistant", "content": t["answer"].text}]
    return history


def chat_messages(turns: list[dict], show_scores: bool, pending: str | None = None) -> list[dict]:
    """The chatbot's value: escaped HTML for every turn, rebuilt from this session's turns."""
    messages = []
    for t in turns:
        messages.append({"role": "user", "content": render.render_user(t["q"])})
        if t.get("answer") is not None:
            content = render.render_answer(t["answer"], show_scores)
        elif t.get("error"):
            content = render.render_error(t["error"])
        else:
            content = render.render_pending(pending or "", t.get("reading"))
        chip = lib.scope_chip([title for _, title in t.get("scope") or []])  # the scope it was asked in
        messages.append({"role": "assistant", "content": chip + content})
    return messages


class Handlers(NamedTuple):
    """The app's event handlers (indexable as before: respond, ask, upload come first)."""

    respond: Callable
    ask: Callable
    upload: Callable
    resolve_upload: Callable  # "replace" | "keep" | "cancel" for files whose name was already uploaded
    held_upload: Callable  # whether this session has files waiting for that decision
    delete: Callable


def make_handlers(engine: Engine, access=None):
    import gradio as gr

    from qa import Sources
    from ui.access import ADMIN, Access, allows

    access = access if access is not None else Access()  # none configured: everyone is admin

    def refused_to(request: gr.Request | None) -> str | None:
        """Why this session may not change the index (None: it may). Checked on the server, so an
        event called directly, past the hidden controls, is refused too."""
        if allows(access.user_role(getattr(request, "username", None)), ADMIN):
            return None
        return "only an admin may add or delete documents (signed in as a reader)"

    def respond(question: str, turns: list[dict], k: float, generator: str, show_scores: bool,
                scope: list[str] | None = None):
        """Stream one answer into the chat. ``turns`` is this session's own gr.State; ``scope``
        the documents it searches (the library panel's selection; empty: all)."""
        question = (question or "").strip()
        if not question:
            yield "", turns, chat_messages(turns, show_scores)
            return
        titles = [(d, getattr(engine.document(d), "title", d)) for d in scope or []]
        turn = {"q": question, "answer": None, "error": None, "scope": titles}
        turns = turns + [turn]
        yield "", turns, chat_messages(turns, show_scores)
        assistant = engine.assistant  # one consistent index for the whole answer
        partial = ""
        try:
            for piece in assistant.stream(question, history=history_of(turns[:-1]), k=int(k),
                                          generator=generator, sources=True, doc_ids=list(scope or []) or None):
                if isinstance(piece, str):
                    partial += piece
                    yield "", turns, chat_messages(turns, show_scores, partial)
                elif isinstance(piece, Sources):  # the passages being read, shown at once
                    turn["reading"] = piece
                    yield "", turns, chat_messages(turns, show_scores, partial)
                else:
                    turn["answer"] = piece
        except Exception as exc:  # noqa: BLE001 - the message goes to the user, the trace to the log
            import logging

            logging.getLogger("app").exception("answering %r failed", question)
            turn["error"] = f"无法回答 Could not answer: {exc}"
        if turn["answer"] is None and not turn["error"]:
            turn["error"] = "no answer was produced"
        yield "", turns, chat_messages(turns, show_scores)

    def ask(question: str, history: list[dict] | None = None, k: int | None = None,
            generator: str | None = None, doc_ids: list[str] | None = None) -> dict:
        """Answer one question; returns the answer text with [n] markers and its sources as JSON.

        ``history`` is an optional list of {"role", "content"} messages for follow-ups;
        ``doc_ids`` limits the answer to those documents.
        """
        if isinstance(k, float) and k.is_integer():  # JSON clients may send 5.0
            k = int(k)
        answer = engine.assistant.ask(question, history=history or [], k=k, generator=generator,
                                      doc_ids=doc_ids or None)
        return render.answer_json(answer)

    held: dict[str | None, list[Path]] = {}  # per session: files waiting for "replace / keep both / cancel"

    def upload(files, request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
        """Add uploaded files to the shared index; report what was added and what was skipped.
        When a file's name was uploaded before, nothing is added yet: the user is asked."""
        from ingest.uploads import UploadRefused

        paths = [Path(f) for f in (files or [])]
        session = getattr(request, "session_hash", None)
        held.pop(session, None)
        if not paths:
            return "", engine.stats()
        refusal = refused_to(request)
        if refusal:
            return f"<p>上传被拒绝 Upload refused: {render.esc(refusal)}</p>", engine.stats()
        try:
            paths = [uploaded_file(p) for p in paths]
        except UploadRefused as exc:
            return f"<p>上传被拒绝 Upload refused: {render.esc(str(exc))}</p>", engine.stats()
        clash = engine.conflicts(paths)
        if clash:
            held[session] = paths
            names = ", ".join(f"<code>{render.esc(n)}</code>" for n in clash)
            return (f'<p class="pq-conflict">{names} 已上传过 already uploaded — 替换 Replace it, '
                    "两者都保留 Keep both (the new file gets a new name), or 取消 Cancel? Nothing was added yet.</p>",
                    engine.stats())
        return add(paths, progress)

    def resolve_upload(choice: str, request: gr.Request = None, progress=gr.Progress(track_tqdm=True)):
        """The user's answer for held files: only "replace" replaces; "keep" adds under new names."""
        paths = held.pop(getattr(request, "session_hash", None), None)
        if not paths:
            return "<p>nothing is waiting to be added</p>", engine.stats()
        refusal = refused_to(request)
        if refusal:
            return f"<p>上传被拒绝 Upload refused: {render.esc(refusal)}</p>", engine.stats()
        if choice not in ("replace", "keep"):
            return "<p>已取消 Cancelled: nothing was added.</p>", engine.stats()
        return add(paths, progress, replace=choice == "replace", keep_both=choice == "keep")

    def held_upload(request: gr.Request = None) -> bool:
        return bool(held.get(getattr(request, "session_hash", None)))

    def add(paths: list[Path], progress, replace: bool = False, keep_both: bool = False):
        from ingest.uploads import UploadRefused
        from retriever import IndexLoadError, IndexWriteError

        try:
            progress(0, desc="reading and indexing …")
            docs, skipped, report = engine.add_documents(paths, replace=replace, keep_both=keep_both)
        except (UploadRefused, IndexLoadError, IndexWriteError) as exc:  # bad request, damaged index, full disk
            return f"<p>上传被拒绝 Upload refused: {render.esc(str(exc))}</p>", engine.stats()
        parts = []
        if docs:
            names = "".join(f"<li>{render.esc(d.title)} <code>{render.esc(d.doc_id)}</code></li>" for d in docs)
            parts.append(f"<p>已加入 Added {len(docs)} document(s), searchable now "
                         f"({render.esc(f'{report.seconds:.1f}')} s):</p><ul>{names}</ul>")
        if skipped:
            items = "".join(f"<li>{render.esc(s)}</li>" for s in skipped)
            parts.append(f"<p>跳过 Skipped {len(skipped)}:</p><ul>{items}</ul>")
        return "".join(parts) or "<p>nothing to add</p>", engine.stats()

    def delete(doc_id: str | None, request: gr.Request = None):
        """Remove one document from the shared index (after the panel's confirmation step)."""
        from retriever import IndexLoadError, IndexWriteError, UnknownDocument

        if not doc_id:
            return "<p>先选择文件 Choose a document first.</p>", engine.stats()
        refusal = refused_to(request)
        if refusal:
            return f"<p>删除被拒绝 Delete refused: {render.esc(refusal)}</p>", engine.stats()
        doc = engine.document(doc_id)
        try:
            report = engine.remove_documents([doc_id])
        except (UnknownDocument, ValueError, IndexLoadError, IndexWriteError) as exc:
            return f"<p>删除被拒绝 Delete refused: {render.esc(str(exc))}</p>", engine.stats()
        return (f"<p>已删除 Deleted {render.esc(doc.title)} <code>{render.esc(doc_id)}</code> "
                f"({render.esc(f'{report.seconds:.1f}')} s); answers that cited it keep their quotes.</p>",
                engine.stats())

    return Handlers(respond, ask, upload, resolve_upload, held_upload, delete)


# -- UI and server ------------------------------------------------------------------------
def generator_choices(engine: Engine) -> list[str]:
    """The LLM is offered where it can run here; the extractive composer always."""
    return ["llm", "extractive"] if engine.assistant.llm_notice() is None else ["extractive"]


def build_ui(engine: Engine, settings: Settings, access=None):
    import gradio as gr

    h = make_handlers(engine, access)
    respond, ask, upload = h.respond, h.ask, h.upload
    with gr.Blocks(title="政策文件问答 Policy QA", analytics_enabled=False) as demo:
        turns = gr.State([])
        scope = gr.State([])  # this session's scope (doc ids), a copy of the library panel's ticks
        gr.Markdown("## 政策文件问答 · Policy documents QA\n"
                    "Answers quote the indexed policy documents; click a source or a [n] marker to open it.",
                    elem_id="pq-title")
        # A row, not gr.Sidebar: on a phone-width window the settings column wraps below the
        # chat instead of covering it.
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=340):
                with gr.Row(equal_height=True, elem_id="pq-scope-row"):  # the scope the next questions search
                    scope_line = gr.HTML(elem_id="pq-scope")
                    clear_scope = gr.Button("清除范围 Clear scope", visible=False, scale=0, min_width=120, size="sm",
                                            elem_id="pq-scope-clear")
                chatbot = gr.Chatbot(elem_id="pq-chat", height="62vh", render_markdown=False,
                                     sanitize_html=True, allow_tags=False, buttons=["copy"],
                                     feedback_options=None, show_label=False,
                                     placeholder="问一个关于政策文件的问题 · Ask about the policy documents")
                with gr.Row(equal_height=True):
                    box = gr.Textbox(placeholder="输入问题 Type a question…", show_label=False, scale=6,
                                     lines=1, max_lines=5, elem_id="pq-question", autofocus=True, min_width=200)
                    send = gr.Button("提问 Ask", variant="primary", scale=1, min_width=80, elem_id="pq-send")
                    clear = gr.Button("清空 Clear", scale=1, min_width=80, elem_id="pq-clear")
                gr.Examples(EXAMPLES, inputs=box, label="示例 Examples")
            with gr.Column(scale=1, min_width=260, elem_id="pq-side"):
                k = gr.Slider(1, 20, value=settings.retrieval.k, step=1, label="检索段落数 Passages (k)")
                choices = generator_choices(engine)
                default = engine.assistant.generator_name()
                generator = gr.Radio(choices, label="生成方式 Generator", elem_id="pq-generator",
                                     value=default if default in choices else choices[0])
                notice = engine.assistant.llm_notice()
                if notice:
                    gr.Markdown(f"<small>{render.esc(notice)}</small>", elem_id="pq-llm-notice")
                show_scores = gr.Checkbox(False, label="显示检索分数 Show retrieval scores", elem_id="pq-scores")
                files = gr.File(file_count="multiple", type="filepath", elem_id="pq-admin-upload",
                                label="添加文件 Add documents (.txt .md .html .pdf .docx)")
                upload_log = gr.HTML(elem_id="pq-upload-log")
                with gr.Row(visible=False, elem_id="pq-upload-choice") as choice_row:  # a name already uploaded
                    replace_btn = gr.Button("替换 Replace", variant="stop", size="sm", elem_id="pq-admin-replace")
                    keep_btn = gr.Button("两者都保留 Keep both", size="sm", elem_id="pq-admin-keep-both")
                    cancel_up = gr.Button("取消 Cancel", size="sm", elem_id="pq-admin-upload-cancel")
                stats = gr.Markdown(engine.stats(), elem_id="pq-stats")

        infos = engine.library()
        with gr.Accordion("文件库 Library: the indexed documents", open=True, elem_id="pq-library-panel"):
            library_html = gr.HTML(lib.render_library(infos), elem_id="pq-library")
            with gr.Row(equal_height=False):
                scope_pick = gr.CheckboxGroup(lib.choices(infos), value=[], scale=3, elem_id="pq-scope-pick",
                                              label="范围 Scope: the next questions search only the documents "
                                                    "ticked here (none ticked: all)")
                with gr.Column(scale=1, min_width=260):
                    delete_pick = gr.Dropdown(lib.choices(infos), value=None, label="删除文件 Delete a document",
                                              elem_id="pq-admin-delete-pick")
                    delete_btn = gr.Button("删除… Delete…", variant="stop", elem_id="pq-admin-delete")
                    confirm_text = gr.HTML(visible=False, elem_id="pq-delete-question")
                    with gr.Row(visible=False) as confirm_row:
                        confirm_btn = gr.Button("确认删除 Delete for everyone", variant="stop",
                                                elem_id="pq-admin-delete-confirm")
                        cancel_del = gr.Button("取消 Cancel", elem_id="pq-admin-delete-cancel")
                    library_log = gr.HTML(elem_id="pq-library-log")
                    refresh = gr.Button("刷新 Refresh", size="sm", elem_id="pq-library-refresh")
        # what only an admin may use (upload, replace, delete); the access layer hides them from readers
        admin_controls = [files, replace_btn, keep_btn, cancel_up, delete_pick, delete_btn, confirm_btn, cancel_del]
        demo.admin_controls = admin_controls

        chat_inputs = [box, turns, k, generator, show_scores, scope]
        chat_outputs = [box, turns, chatbot]
        # Every way of asking shares one queue slot group, so settings.app.concurrency bounds
        # them together. "chat" stays callable (undocumented): a client session keeps its history.
        box.submit(respond, chat_inputs, chat_outputs, api_name="chat", api_visibility="undocumented",
                   concurrency_id="answer")
        send.click(respond, chat_inputs, chat_outputs, api_visibility="private", concurrency_id="answer")
        clear.click(lambda: ([], []), None, [turns, chatbot], api_visibility="private", queue=False)
        chatbot.clear(lambda: [], None, turns, api_visibility="private", queue=False)  # its own trash icon
        show_scores.change(chat_messages, [turns, show_scores], chatbot, api_visibility="private", queue=False)

        def show_scope(ids: list[str]):
            titles = [getattr(engine.document(d), "title", d) for d in ids or []]
            return lib.render_scope(titles), gr.update(visible=bool(titles)), list(ids or [])

        def refresh_library(ids: list[str]):
            """The list, the scope (removed documents drop out of it) and the delete picker, as indexed now."""
            infos = engine.library()
            known = {i.doc_id for i in infos}
            return (lib.render_library(infos), gr.update(choices=lib.choices(infos), value=[d for d in ids or []
                                                                                           if d in known]),
                    gr.update(choices=lib.choices(infos), value=None), engine.stats())

        def ask_delete(doc_id: str | None):
            doc = engine.document(doc_id) if doc_id else None
            if doc is None:
                return (gr.update(value="<p>先选择文件 Choose a document first.</p>", visible=True),
                        gr.update(visible=False))
            question = (f"<p>删除 Delete <b>{render.esc(doc.title)}</b> <code>{render.esc(doc.doc_id)}</code> from the "
                        "index for everyone? Its passages go; answers already given keep their quotes.</p>")
            return gr.update(value=question, visible=True), gr.update(visible=True)

        def upload_choice(request: gr.Request):
            return gr.update(visible=h.held_upload(request))

        library_outputs = [library_html, scope_pick, delete_pick, stats]
        private = {"api_visibility": "private"}
        write = {"concurrency_id": "write", "concurrency_limit": 1, **private}  # one index update at a time
        scope_pick.change(show_scope, scope_pick, [scope_line, clear_scope, scope], queue=False, **private)
        clear_scope.click(lambda: [], None, scope_pick, queue=False, **private)
        refresh.click(refresh_library, scope_pick, library_outputs, **private)
        demo.load(refresh_library, scope_pick, library_outputs, **private)  # a reload shows the index as it is now
        delete_btn.click(ask_delete, delete_pick, [confirm_text, confirm_row], queue=False, **private)
        for event in (cancel_del.click, delete_pick.change):  # the question was about the document picked
            event(lambda: (gr.update(visible=False), gr.update(visible=False)), None, [confirm_text, confirm_row],
                  queue=False, **private)
        confirm_btn.click(lambda: (gr.update(visible=False), gr.update(visible=False)), None,
                          [confirm_text, confirm_row], queue=False, **private).then(
            h.delete, delete_pick, [library_log, stats], **write).then(
            refresh_library, scope_pick, library_outputs, **private)
        # the picker is emptied after each upload: files it still listed would be sent again with the next one
        files.upload(upload, [files], [upload_log, stats], show_progress="full", **write).then(
            lambda: None, None, files, queue=False, **private).then(
            upload_choice, None, choice_row, **private).then(
            refresh_library, scope_pick, library_outputs, **private)
        for button, choice in ((replace_btn, "replace"), (keep_btn, "keep"), (cancel_up, "cancel")):
            button.click(lambda: gr.update(visible=False), None, choice_row, queue=False, **private).then(
                h.resolve_upload, gr.State(choice), [upload_log, stats], show_progress="full", **write).then(
                refresh_library, scope_pick, library_outputs, **private)
        gr.api(ask, api_name="ask", concurrency_id="answer")
    return demo


def show_by_role(demo, access) -> None:
    """Upload and delete controls start hidden and appear on page load for an admin only.

    Hiding is for the reader's eyes; the handlers check the role themselves (``refused_to``)."""
    import gradio as gr

    from ui.access import ADMIN, allows

    controls = demo.admin_controls
    for control in controls:
        control.visible = False  # before the config is sent: a reader never sees them, even briefly

    def visible(request: gr.Request):
        admin = allows(access.user_role(getattr(request, "username", None)), ADMIN)
        return [gr.update(visible=admin) for _ in controls]

    with demo:
        demo.load(visible, None, controls, api_visibility="private", queue=False)


def create_app(engine: Engine, settings: Settings, access=None):
    """FastAPI app: the source view at /source/{doc_id}, the OpenAI-compatible API at /v1 and
    /api (ui/api.py), the Gradio chat mounted at /. ``access`` (ui.access.Access; default: the
    configured credentials) puts the API behind keys and the UI behind Gradio's login."""
    import gradio as gr
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse

    from ui.access import Access, AdminUploadsOnly
    from ui.api import add_api, reader_guard
    from ui.limits import RequestBodyLimit
    from ui.style import CSS, theme

    access = access if access is not None else Access.load(settings.app.credentials or None)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.api_route("/source/{doc_id:path}", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def source(doc_id: str, start: str | None = None, end: str | None = None,
               allowed: bool = Depends(reader_guard(app, access))):
        """Serve one indexed document by id; a bad span is a 400, a removed id a 410, an unknown one a 404."""
        headers = {"Content-Security-Policy": render.SOURCE_CSP, "X-Content-Type-Options": "nosniff"}
        if not allowed:
            return HTMLResponse(render.render_error_page(401, "sign in first (the chat page asks for a login)"),
                                401, headers)
        doc = engine.document(doc_id)
        if doc is None and engine.was_removed(doc_id):  # a link in an answer given before the removal
            return HTMLResponse(render.render_error_page(410, "this source was removed from the index; the answer "
                                                              "keeps the quoted text"), 410, headers)
        if doc is None:
            return HTMLResponse(render.render_error_page(404, "no such document in the index"), 404, headers)
        try:
            span = [None if v in (None, "") else int(v) for v in (start, end)]
        except ValueError:
            return HTMLResponse(render.render_error_page(400, "start and end must be integers"), 400, headers)
        if None in span:
            span = [None, None]
        else:  # clamp into the text; an empty or reversed span shows the page without highlight
            span = [min(max(v, 0), len(doc.text)) for v in span]
        section = engine.section_at(doc.doc_id, span[0]) if span[0] is not None else ""
        return HTMLResponse(render.render_source_page(doc, span[0], span[1], section), 200, headers)

    add_api(app, engine, settings, access)
    demo = build_ui(engine, settings, access)
    if access.configured:
        show_by_role(demo, access)
    # a burst beyond the running answers and queue_size waiting ones is told the queue is full
    # (at least 1: Gradio counts an event in its queue before it starts, so 0 would refuse all)
    demo.queue(default_concurrency_limit=settings.app.concurrency, max_size=max(1, settings.app.queue_size))
    app.add_middleware(RequestBodyLimit, max_bytes=settings.app.max_upload_bytes)
    app.add_middleware(AdminUploadsOnly, access=access, gradio_app=lambda: app.state.gradio_app)
    # Gradio's login covers its page and its own API (/gradio_api/…: queue, call, upload, file)
    mounted = gr.mount_gradio_app(app, demo, path="/", theme=theme(), css=CSS, footer_links=["api"],
                                  run_history=False, max_file_size=settings.chunk.max_file_bytes,
                                  show_error=True, auth=access.login if access.configured else None,
                                  auth_message="政策文件问答 Policy QA: sign in (a reader or admin login, or a "
                                               "role name with its API key)")
    app.state.gradio_app = next(r.app for r in mounted.routes if getattr(r, "app", None) is not None
                                and hasattr(r.app, "tokens"))
    # launch() sets this; mount_gradio_app does not, and while it is False Gradio skips its
    # check that a file named in an event came from its upload folder (any server path passed).
    demo.has_launched = True
    app.state.demo = demo
    return mounted


def ensure_index(index_dir: Path | str, seeds_dir: Path, settings: Settings) -> None:
    """First run: build the index of the seed documents, with progress, before serving."""
    from retriever import IndexMissing, build_index, index_exists

    if index_exists(index_dir, settings):
        return

    if not seeds_dir.is_dir():
        raise IndexMissing(f"no index at {index_dir} and no seed folder {seeds_dir} to build it from "
                           "(pass --index DIR or --seeds DIR)")

    print(f"No index at {index_dir}: building it from {seeds_dir}/ (first run only; a few minutes on a laptop)…",
          flush=True)
    print(build_index(seeds_dir, index_dir, settings, progress=True), flush=True)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", help="index directory or seekdb:// URI (default: settings index.path)")
    parser.add_argument("--seeds", help="documents indexed on first run when the index is missing")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1; any other address, e.g. 0.0.0.0, "
                                       "needs credentials: POLICYQA_ADMIN_KEY or POLICYQA_APP_CREDENTIALS)")
    parser.add_argument("--port", type=int, help="port (default 7860)")
    parser.add_argument("--config", help="TOML settings file")
    args = parser.parse_args(argv)
    settings = load_settings(args.config).override("app", host=args.host, port=args.port, seeds_dir=args.seeds)
    host, port = settings.app.host, settings.app.port
    from retriever import is_uri

    index_dir = args.index or settings.index.path
    index_dir = index_dir if is_uri(index_dir) else Path(index_dir)
    from ui.access import HOW_TO, Access, CredentialsError

    try:
        access = Access.load(settings.app.credentials or None)
    except CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not is_loopback(host) and not access.configured:
        print(f"error: refusing to serve on {host} without credentials: anyone who can reach this machine could "
              f"ask, upload and delete. To serve a team, {HOW_TO}. To serve only this machine, leave out --host "
              "(127.0.0.1).", file=sys.stderr, flush=True)
        return 2
    started = time.perf_counter()
    from retriever import IndexLoadError

    try:
        ensure_index(index_dir, Path(settings.app.seeds_dir), settings)
        engine = Engine.load(index_dir, settings)
        engine.upload_area().sweep(set(engine.retriever.documents))
    except IndexLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = create_app(engine, settings, access)
    if access.configured:
        print(f"access: {len(access.keys)} API key(s), {len(access.logins)} login(s); readers ask, admins also "
              "upload and delete", flush=True)
    notice = engine.assistant.llm_notice()
    print(f"answers: {'LLM (' + settings.qa.llm_model + ')' if notice is None else 'extractive — ' + notice}",
          flush=True)
    engine.warm_up_in_background()  # after Gradio is set up (it patches tqdm for its progress bars)
    print(f"{engine.stats()}; ready in {time.perf_counter() - started:.1f}s", flush=True)
    print(f"Running on http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}", flush=True)

    import uvicorn

    # open event streams would otherwise hold Ctrl-C / SIGTERM for as long as a browser tab stays open
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
