"""Data safety of the index: writes killed at any step, two writers at once, damaged files.

These tests use a stand-in embedder (vectors from a text hash), so the writer processes
they start need no model and take a second or two each.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ingest import ingest_folder
from retriever import (IndexCorrupt, IndexLoadError, IndexMismatch, IndexWriteError, Retriever, current_dir,
                       index_exists, update_index)
from retriever.store import BM25_DIR, CRASH_ENV, FLAT_FORMAT, HNSW, LOCK, MANIFEST, VECTORS, flat_hash
from settings import IndexSettings, Settings

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DOCS = {
    "a.txt": "一、总体要求\n加快建设数字政府，推进政务服务一网通办。到2025年，政务服务事项全部实现网上办理。",
    "b.txt": "一、发展目标\n推进农村宽带网络建设，行政村光纤通达率达到98%。\n二、保障措施\n加强组织领导，落实资金保障。",
    "c.txt": "（一）网络安全\n健全关键信息基础设施安全保护体系，提升态势感知和应急处置能力。",
    "d.txt": "（二）数据要素\n建立数据资源产权、交易流通、跨境传输和安全保护等基础制度。",
}
SETTINGS = Settings()


class HashEmbedder:
    """A stand-in for the model: deterministic unit vectors from a hash of the text."""

    model_id = "test/hash-embedder"
    dim = 16

    def __init__(self, delay: float = 0.0):
        self.delay = delay  # seconds per call, to hold two writers in the middle of their update
        self.texts_encoded = 0

    def encode_passages(self, texts, progress=False):
        if texts:
            time.sleep(self.delay)
        self.texts_encoded += len(texts)
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[: self.dim], np.uint8) for t in texts]
        matrix = np.asarray(rows, np.float32).reshape(-1, self.dim) + 1
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)

    def encode_queries(self, texts):
        return self.encode_passages(texts)


# `python -m ingest` in a real process, with the stand-in embedder.
DRIVER = f"""
import os, sys
sys.path[:0] = [{str(ROOT)!r}, {str(TESTS)!r}]
import retriever.build
from test_index_safety import HashEmbedder
retriever.build.get_embedder = lambda cfg: HashEmbedder(float(os.environ.get("TEST_EMBED_DELAY", "0")))
from ingest.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def ingest_process(folder: Path, index: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(folder), "--index", str(index), "--quiet"],
                            cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def folder_with(root: Path, name: str, *files: str) -> Path:
    folder = root / name
    folder.mkdir()
    for f in files:
        (folder / f).write_text(DOCS[f], encoding="utf-8")
    return folder


def index_folder(folder: Path, index: Path, embedder=None, settings: Settings = SETTINGS, **kw):
    result = ingest_folder(folder, settings.chunk, progress=False)
    return update_index(result, index, settings, progress=False, roots=[folder.resolve()],
                        embedder=embedder or HashEmbedder(), **kw)


def documents(index: Path, **kw) -> set[str]:
    r = Retriever.load(index, SETTINGS, embedder=HashEmbedder(), **kw)
    r.search("数字政府 网络安全", k=3)  # both searches work on what was loaded
    return {d.doc_id for d in r.stored.documents}


def snapshot(index: Path) -> dict[str, bytes]:
    return {p.relative_to(index).as_posix(): p.read_bytes() for p in sorted(index.rglob("*")) if p.is_file()}


def only_current_generation(index: Path) -> bool:
    return sorted(p.name for p in index.iterdir()) == sorted([LOCK, MANIFEST, current_dir(index).name])


def make_flat(index: Path, dest: Path) -> None:
    """Copy ``index`` as an index of format 1 (files beside the manifest) would have stored it."""
    shutil.copytree(current_dir(index), dest)
    manifest = json.loads((index / MANIFEST).read_text(encoding="utf-8"))
    del manifest["generation"]
    manifest.update(format_version=FLAT_FORMAT, content_hash=flat_hash(dest))
    (dest / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


@pytest.fixture
def base(tmp_path):
    """An index of a.txt and b.txt (folder one); folder two holds c.txt, three holds d.txt."""
    index = tmp_path / "index"
    index_folder(folder_with(tmp_path, "one", "a.txt", "b.txt"), index)
    folder_with(tmp_path, "two", "c.txt")
    folder_with(tmp_path, "three", "d.txt")
    return index


@pytest.fixture
def cli(monkeypatch):
    """``python -m ingest`` in this process, with the stand-in embedder."""
    import retriever.sparse
    from ingest.__main__ import main

    monkeypatch.setattr(retriever.build, "get_embedder", lambda cfg: HashEmbedder())
    return main


# -- 7. kill -9 at each step of a write ----------------------------------------------------
@pytest.mark.parametrize("step", ["vectors", "generation", "staged", "switched"])
def test_kill_at_any_write_step_leaves_a_complete_index(base, step):
    proc = ingest_process(base.parent / "two", base, env={CRASH_ENV: step})
    proc.communicate(timeout=120)
    assert proc.returncode == -9  # really killed there
    expected = {"a.txt", "b.txt"} | ({"c.txt"} if step == "switched" else set())
    assert documents(base) == expected  # the old index or the new one, never none or a mix
    report = index_folder(base.parent / "three", base)  # the next write cleans up and keeps everything
    assert report.removed_docs == [] and documents(base) == expected | {"d.txt"}
    assert only_current_generation(base)


@pytest.mark.parametrize("first", ["load", "ingest"])
def test_index_left_between_renames_by_an_older_version_is_recovered(base, tmp_path, first):
    legacy = tmp_path / "legacy"
    make_flat(base, legacy)
    shutil.rmtree(base)
    legacy.rename(tmp_path / f".{base.name}.old-4242")  # killed after moving the index aside
    assert index_exists(base)
    if first == "load":
        assert documents(base) == {"a.txt", "b.txt"}
    index_folder(tmp_path / "two", base)
    assert documents(base) == {"a.txt", "b.txt", "c.txt"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_format_1_index_is_read_then_converted_by_the_first_write(base, tmp_path):
    flat = tmp_path / "flat"
    make_flat(base, flat)
    assert documents(flat) == {"a.txt", "b.txt"}
    index_folder(tmp_path / "two", flat)
    assert documents(flat) == {"a.txt", "b.txt", "c.txt"}
    assert only_current_generation(flat)  # the flat files are gone


def test_leftovers_of_killed_writes_are_removed(base, tmp_path):
    (tmp_path / f".{base.name}.tmp-x1y2").mkdir()  # an older version's temporary folder
    (base / "gen-20260101T000000000000Z-1").mkdir()  # a generation never switched in
    (base / ".manifest.json.tmp-1").write_text("{}", encoding="utf-8")
    index_folder(tmp_path / "two", base)
    assert only_current_generation(base)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_reader_follows_a_writer_that_switches_generations_mid_load(base, tmp_path):
    from retriever.store import load_current, read_generation

    seen = []

    def load(manifest, folder):
        seen.append(folder)
        if len(seen) == 1:  # a writer commits and removes the generation being read
            index_folder(tmp_path / "two", base)
        return read_generation(manifest, folder)

    stored = load_current(base, load)
    assert len(seen) == 2 and seen[0] != seen[1] and not seen[0].exists()
    assert {d.doc_id for d in stored.documents} == {"a.txt", "b.txt", "c.txt"}


# -- 8. two writers at once ----------------------------------------------------------------
def test_two_writers_at_once_both_updates_are_kept(base):
    slow = {"TEST_EMBED_DELAY": "3"}  # both are inside their update at the same time
    procs = [ingest_process(base.parent / name, base, env=slow) for name in ("two", "three")]
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert documents(base) == {"a.txt", "b.txt", "c.txt", "d.txt"}
    assert only_current_generation(base)


def test_second_writer_gives_up_with_one_line(base, cli, capsys, monkeypatch):
    from retriever.lock import write_lock

    monkeypatch.setenv("POLICYQA_INDEX_LOCK_TIMEOUT_S", "0.5")
    before = snapshot(base)
    with write_lock(base, IndexSettings()):
        assert cli([str(base.parent / "two"), "--index", str(base), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "being written by another process (pid " in err[-1]
    assert snapshot(base) == before


# -- 9. a damaged index and an ingest run ------------------------------------------------------
def _truncate_vectors(index):
    path = current_dir(index) / VECTORS
    path.write_bytes(path.read_bytes()[:100])


def _other_model(index):
    manifest = json.loads((index / MANIFEST).read_text(encoding="utf-8"))
    (index / MANIFEST).write_text(json.dumps({**manifest, "model_id": "another/model"}), encoding="utf-8")


@pytest.mark.parametrize("damage", [_truncate_vectors, _other_model])
def test_damaged_index_is_refused_by_ingest_and_left_untouched(base, cli, capsys, damage):
    two = base.parent / "two"
    assert cli([str(two), "--index", str(base), "--quiet"]) == 0
    damage(base)
    before = snapshot(base)
    assert cli([str(two), "--index", str(base), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--rebuild" in err[0] and "Nothing was changed" in err[0]
    assert snapshot(base) == before
    with pytest.raises(IndexLoadError):
        Retriever.load(base, SETTINGS, embedder=HashEmbedder())

    assert cli([str(two), "--index", str(base), "--quiet", "--rebuild"]) == 0  # asked for explicitly
    assert "rebuilt from scratch" in capsys.readouterr().out
    assert documents(base) == {"c.txt"} and only_current_generation(base)


# -- 10. every file is covered, every damage is a clear refusal ------------------------------
def test_bm25_state_of_another_index_is_refused(base, tmp_path):
    other = tmp_path / "other"
    index_folder(tmp_path / "two", other)
    target = current_dir(base) / BM25_DIR
    shutil.rmtree(target)
    shutil.copytree(current_dir(other) / BM25_DIR, target)
    with pytest.raises(IndexCorrupt, match="hash"):
        documents(base)
    with pytest.raises(IndexCorrupt, match="BM25 state covers"):  # caught even unhashed
        documents(base, verify=False)


def test_flipped_byte_in_any_file_is_refused(tmp_path):
    index = tmp_path / "index"
    hnsw = Settings(index=IndexSettings(kind="hnsw"))  # so hnsw.faiss is written too
    index_folder(folder_with(tmp_path, "one", "a.txt", "b.txt"), index, settings=hnsw)
    files = [p for p in sorted(current_dir(index).rglob("*")) if p.is_file()]
    assert HNSW in {p.name for p in files} and len([p for p in files if p.parent.name == BM25_DIR]) >= 4
    for path in files:
        data = path.read_bytes()
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        with pytest.raises(IndexCorrupt, match="hash"):
            Retriever.load(index, hnsw, embedder=HashEmbedder())
        path.write_bytes(data)
    (current_dir(index) / "extra.txt").write_text("x", encoding="utf-8")  # an added file counts too
    with pytest.raises(IndexCorrupt, match="hash"):
        documents(index)


@pytest.mark.parametrize("verify", [True, False])
def test_empty_vectors_file_is_refused(base, verify):
    (current_dir(base) / VECTORS).write_bytes(b"")
    with pytest.raises(IndexCorrupt):
        documents(base, verify=verify)


@pytest.mark.parametrize("text", ["[]", '"index"', "3", json.dumps({"format_version": 2}),
                                  json.dumps({"format_version": 2, "generation": "../elsewhere"})])
def test_manifest_that_is_not_a_sound_object_is_refused(base, text):
    (base / MANIFEST).write_text(text, encoding="utf-8")
    with pytest.raises(IndexCorrupt):
        documents(base)


@pytest.mark.parametrize("fail", ["records", "bm25", "manifest"])
def test_full_disk_is_one_line_and_keeps_the_previous_index(base, cli, capsys, monkeypatch, fail):
    import retriever.sparse
    import retriever.store

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if fail == "records":
        monkeypatch.setattr(retriever.store, "_write_jsonl", no_space)
    elif fail == "bm25":
        monkeypatch.setattr(retriever.sparse.SparseIndex, "save", no_space)
    else:
        monkeypatch.setattr(retriever.store.os, "replace", no_space)
    before = snapshot(base)
    assert cli([str(base.parent / "two"), "--index", str(base), "--quiet"]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: could not write the index at {base}: No space left on device; "
                   "the previous index is unchanged"]
    assert snapshot(base) == before  # nothing left behind either
    assert documents(base) == {"a.txt", "b.txt"}


def test_unwritable_location_is_one_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(IndexWriteError, match="could not lock the index"):
        index_folder(folder_with(tmp_path, "one", "a.txt"), blocker / "index")


def test_mismatched_model_refused_by_update(base):
    class Other(HashEmbedder):
        model_id = "another/model"

    with pytest.raises(IndexMismatch, match="--rebuild"):
        index_folder(base.parent / "two", base, embedder=Other())
