"""Question latency while a large upload is ingested and embedded, through the app's Engine.

A user uploading a long document must not freeze everyone else: this asks the dev
questions, one every ``interval_s`` (a busy team), while a generated document of
``size_mb`` is added, and reports latency before and during the upload, as a user of the
running app would see it.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

from settings import Settings

from .pipeline import _pcts

ROOT = Path(__file__).resolve().parents[1]


def synthetic_document(size_bytes: int, seed: int = 0) -> str:
    """Policy-like text of about ``size_bytes`` UTF-8 bytes, no passage of it repeated:
    paragraphs of seed-corpus sentences drawn at random, their figures redrawn."""
    rng = random.Random(seed)
    sentences = [s.strip() for p in sorted((ROOT / "seeds").glob("*.txt"))
                 for s in re.split(r"(?<=[。！？；])", p.read_text(encoding="utf-8")) if len(s.strip()) > 12]
    lines = ["某省数字政府建设补充规划（基准测试用）", ""]
    size = 0
    while size < size_bytes:
        picked = [rng.choice(sentences) for _ in range(rng.randint(3, 6))]
        line = re.sub(r"\d+", lambda m: str(rng.randint(1, 9999)), "".join(picked))
        lines.append(line)
        size += len(line.encode("utf-8")) + 1
    return "\n".join(lines) + "\n"


def run_upload(settings: Settings, questions_file: Path, size_mb: float, log, interval_s: float = 0.5) -> dict:
    """Builds its own seed index in a temporary folder, so it changes nothing of the user's."""
    from gradio.utils import get_upload_folder

    import app
    from retriever import build_index

    questions = [json.loads(line)["question"] for line in questions_file.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    try:
        log("upload: building the seed index …")
        build_index(ROOT / settings.app.seeds_dir, work / "index", settings, progress=False)
        cfg = settings.override("app", upload_dir=str(work / "uploads"), warm_up=True,
                                max_upload_bytes=int(size_mb * 2e6)).override("qa", sentence_cache_dir=str(work / "s"))
        engine = app.Engine.load(work / "index", cfg)
        engine.warm_up()  # as the running app has done before anyone uploads
        upload = app.make_handlers(engine)[2]

        def ask_all(qs) -> list[float]:
            out = []
            for q in qs:
                t0 = time.perf_counter()
                engine.assistant.ask(q)
                out.append(time.perf_counter() - t0)
            return out

        ask_all(questions[:5])  # warm caches, as a running app would be
        idle = ask_all(questions[:30])
        doc = Path(tempfile.mkdtemp(prefix="bench-", dir=_mkdir(get_upload_folder()))) / "bench_upload.txt"
        doc.write_text(synthetic_document(int(size_mb * 1e6)), encoding="utf-8")  # as if a browser sent it
        log(f"upload: {doc.stat().st_size / 1e6:.1f} MB, asking questions while it is ingested …")
        state: dict = {}

        def do_upload():
            t0 = time.perf_counter()
            state["log"] = upload([str(doc)])[0]
            state["seconds"] = time.perf_counter() - t0

        thread = threading.Thread(target=do_upload, daemon=True)
        thread.start()
        during: list[float] = []
        i = 0
        next_at = time.perf_counter()
        while thread.is_alive():  # a question every interval_s (a busy team), not back-to-back
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at = time.perf_counter() + interval_s
            during += ask_all([questions[i % len(questions)]])
            i += 1
        thread.join()
        engine.close()  # stops the new document's sentence warm-up
        passages = len(engine.retriever.passages_of("uploads/bench_upload.txt"))
        shutil.rmtree(doc.parent, ignore_errors=True)
        return {"upload_mb": round(size_mb, 1), "upload_seconds": round(state.get("seconds", 0), 1),
                "upload_passages": passages, "added": "Added 1 document" in state.get("log", ""),
                "idle": _pcts(idle), "during_upload": _pcts(during),
                "max_during_ms": round(max(during) * 1000, 1) if during else None,
                "embed_slice": settings.embed.background_slice, "question_interval_s": interval_s}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _mkdir(path: str) -> str:
    Path(path).mkdir(parents=True, exist_ok=True)
    return path
