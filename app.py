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
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from settings import Settings, load_settings  # noqa: E402
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
        messages.append({"role": "assistant", "content": content})
    return messages


def make_handlers(engine: Engine):
    import gradio as gr

    from qa import Sources

    def respond(question: str, turns: list[dict], k: float, generator: str, show_scores: bool):
        """Stream one answer into the chat. ``turns`` is this session's own gr.State."""
        question = (question or "").strip()
        if not question:
            yield "", turns, chat_messages(turns, show_scores)
            return
        turn = {"q": question, "answer": None, "error": None}
        turns = turns + [turn]
        yield "", turns, chat_messages(turns, show_scores)
        assistant = engine.assistant  # one consistent index for the whole answer
        partial = ""
        try:
            for piece in assistant.stream(question, history=history_of(turns[:-1]), k=int(k),
                                          generator=generator, sources=True):
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
            generator: str | None = None) -> dict:
        """Answer one question; returns the answer text with [n] markers and its sources as JSON.

        ``history`` is an optional list of {"role", "content"} messages for follow-ups.
        """
        if isinstance(k, float) and k.is_integer():  # JSON clients may send 5.0
            k = int(k)
        answer = engine.assistant.ask(question, history=history or [], k=k, generator=generator)
        return render.answer_json(answer)

    def upload(files, replace: bool = False, progress=gr.Progress(track_tqdm=True)):
        """Add uploaded files to the shared index; report what was added and what was skipped."""
        from ingest.uploads import UploadRefused
        from retriever import IndexLoadError, IndexWriteError

        paths = [Path(f) for f in (files or [])]
        if not paths:
            return "", engine.stats()
        try:
            paths = [uploaded_file(p) for p in paths]
            progress(0, desc="reading and indexing …")
            docs, skipped, report = engine.add_documents(paths, replace=bool(replace))
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

    return respond, ask, upload


# -- UI and server ------------------------------------------------------------------------
def generator_choices(engine: Engine) -> list[str]:
    """The LLM is offered where it can run here; the extractive composer always."""
    return ["llm", "extractive"] if engine.assistant.llm_notice() is None else ["extractive"]


def build_ui(engine: Engine, settings: Settings):
    import gradio as gr

    respond, ask, upload = make_handlers(engine)
    with gr.Blocks(title="政策文件问答 Policy QA", analytics_enabled=False) as demo:
        turns = gr.State([])
        gr.Markdown("## 政策文件问答 · Policy documents QA\n"
                    "Answers quote the indexed policy documents; click a source or a [n] marker to open it.",
                    elem_id="pq-title")
        # A row, not gr.Sidebar: on a phone-width window the settings column wraps below the
        # chat instead of covering it.
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=340):
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
                files = gr.File(file_count="multiple", type="filepath", elem_id="pq-upload",
                                label="添加文件 Add documents (.txt .md .html .pdf .docx)")
                replace = gr.Checkbox(False, label="替换同名上传 Replace uploads of the same name",
                                      elem_id="pq-replace")
                upload_log = gr.HTML(elem_id="pq-upload-log")
                stats = gr.Markdown(engine.stats(), elem_id="pq-stats")

        chat_inputs = [box, turns, k, generator, show_scores]
        chat_outputs = [box, turns, chatbot]
        # Every way of asking shares one queue slot group, so settings.app.concurrency bounds
        # them together. "chat" stays callable (undocumented): a client session keeps its history.
        box.submit(respond, chat_inputs, chat_outputs, api_name="chat", api_visibility="undocumented",
                   concurrency_id="answer")
        send.click(respond, chat_inputs, chat_outputs, api_visibility="private", concurrency_id="answer")
        clear.click(lambda: ([], []), None, [turns, chatbot], api_visibility="private", queue=False)
        chatbot.clear(lambda: [], None, turns, api_visibility="private", queue=False)  # its own trash icon
        show_scores.change(chat_messages, [turns, show_scores], chatbot, api_visibility="private", queue=False)
        files.upload(upload, [files, replace], [upload_log, stats], api_visibility="private", concurrency_limit=1,
                     show_progress="full")
        gr.api(ask, api_name="ask", concurrency_id="answer")
    return demo


def create_app(engine: Engine, settings: Settings):
    """FastAPI app: the source view at /source/{doc_id}, the Gradio chat mounted at /."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    from ui.limits import RequestBodyLimit
    from ui.style import CSS, theme

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.api_route("/source/{doc_id:path}", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def source(doc_id: str, start: str | None = None, end: str | None = None):
        """Serve one indexed document by id; a bad span is a 400, an unknown id a 404."""
        headers = {"Content-Security-Policy": render.SOURCE_CSP, "X-Content-Type-Options": "nosniff"}
        doc = engine.document(doc_id)
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

    demo = build_ui(engine, settings)
    demo.queue(default_concurrency_limit=settings.app.concurrency)
    app.add_middleware(RequestBodyLimit, max_bytes=settings.app.max_upload_bytes)
    mounted = gr.mount_gradio_app(app, demo, path="/", theme=theme(), css=CSS, footer_links=["api"],
                                  run_history=False, max_file_size=settings.chunk.max_file_bytes,
                                  show_error=True)
    # launch() sets this; mount_gradio_app does not, and while it is False Gradio skips its
    # check that a file named in an event came from its upload folder (any server path passed).
    demo.has_launched = True
    app.state.demo = demo
    return mounted


def ensure_index(index_dir: Path, seeds_dir: Path, settings: Settings) -> None:
    """First run: build the index of the seed documents, with progress, before serving."""
    from retriever import IndexMissing, build_index, index_exists

    if index_exists(index_dir):
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
    parser.add_argument("--index", help="index directory (default: settings index.path)")
    parser.add_argument("--seeds", help="documents indexed on first run when the index is missing")
    parser.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 exposes the app)")
    parser.add_argument("--port", type=int, help="port (default 7860)")
    parser.add_argument("--config", help="TOML settings file")
    args = parser.parse_args(argv)
    settings = load_settings(args.config).override("app", host=args.host, port=args.port, seeds_dir=args.seeds)
    host, port = settings.app.host, settings.app.port
    index_dir = Path(args.index or settings.index.path)
    if not is_loopback(host):
        print(f"WARNING: binding to {host}: anyone who can reach this machine can use the app and upload "
              "documents. There is no login.", file=sys.stderr, flush=True)
    started = time.perf_counter()
    from retriever import IndexLoadError

    try:
        ensure_index(index_dir, Path(settings.app.seeds_dir), settings)
        engine = Engine.load(index_dir, settings)
        engine.upload_area().sweep(set(engine.retriever.documents))
    except IndexLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = create_app(engine, settings)
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
