"""Shared fixtures. Tests never reach a model hub: everything loads from local paths."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from ui.serve import free_port, serving  # noqa: E402,F401 - tests import them from here

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def seed_result():
    from ingest import ingest_folder

    return ingest_folder(SEEDS, progress=False)


@pytest.fixture(scope="session")
def seed_docs(seed_result):
    return {d.doc_id: d for d in seed_result.documents}


@pytest.fixture(scope="session")
def settings():
    from settings import Settings

    # the extractive composer unless a test asks for the LLM (tests/test_llm_reader.py does)
    return Settings().override("qa", generator="extractive")


@pytest.fixture(scope="session")
def embedder(settings):
    from retriever import get_embedder

    return get_embedder(settings.embed)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory, settings, embedder):
    """The seed corpus indexed once per test session (embedding it takes about a minute)."""
    from retriever import build_index

    path = tmp_path_factory.mktemp("seed-index") / "index"
    build_index(SEEDS, path, settings, progress=False)
    return path


@pytest.fixture(scope="session")
def retriever(seed_index, settings, embedder):
    from retriever import Retriever

    return Retriever.load(seed_index, settings, embedder=embedder)


@contextmanager
def app_process(args: list[str], env: dict, log: Path, start_s: float = 180):
    """``python app.py ARGS`` as a user starts it, its output in ``log``; yields its local URL
    once the page answers, and stops it afterwards (a start that fails shows the log)."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve().parents[1] / "app.py"), *args,
                                 "--port", str(port)], cwd=Path(__file__).resolve().parents[1], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + start_s
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"app did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def index_with_document(seed_index, root, name: str, text: str, settings, embedder):
    """A writable copy of the seed index with one more document (written into ``root``)."""
    import shutil

    from ingest import ingest_folder
    from retriever import update_index

    index = root / "index"
    shutil.copytree(seed_index, index)
    folder = root / "extra"
    folder.mkdir()
    (folder / name).write_text(text, encoding="utf-8")
    update_index(ingest_folder(folder, settings.chunk, progress=False), index, settings, progress=False,
                 roots=[folder.resolve()], embedder=embedder)
    return index


def uploaded(name: str, text: str | bytes):
    """A file where Gradio puts what a browser uploads (its upload folder), as the app receives it."""
    import uuid

    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()) / f"test-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    path = folder / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


