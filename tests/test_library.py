"""The document library: listing an index, removing documents (Python and CLI), crash safety.

Removal tests use the stand-in embedder of tests/test_index_safety.py on small documents
the tests write; the listing is checked on the real seed index.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from retriever import Retriever, UnknownDocument, current_dir, remove_documents
from retriever.library import UPLOADED_AT, library
from retriever.store import CRASH_ENV, read_index
from test_index_safety import (DRIVER, ROOT, SETTINGS, HashEmbedder, documents, folder_with, index_folder,
                               only_current_generation, snapshot)

SEEDS_META = json.loads((ROOT / "seeds" / "metadata.json").read_text(encoding="utf-8"))


@pytest.fixture
def four(tmp_path):
    """An index of a.txt, b.txt (folder one) and c.txt, d.txt (folder two)."""
    index = tmp_path / "index"
    index_folder(folder_with(tmp_path, "one", "a.txt", "b.txt"), index)
    index_folder(folder_with(tmp_path, "two", "c.txt", "d.txt"), index)
    return index


class NoModel(HashEmbedder):
    def encode_passages(self, texts, progress=False):
        raise AssertionError("a removal must not embed anything")


def test_remove_keeps_every_other_passage_and_its_vector(four, monkeypatch):
    import retriever.build

    monkeypatch.setattr(retriever.build, "get_embedder", lambda cfg: NoModel())  # no model is loaded either
    query = "农村宽带 光纤通达率 组织领导 资金保障"
    assert Retriever.load(four, SETTINGS, embedder=HashEmbedder()).search(query, k=1, mode="bm25")[0].doc_id == "b.txt"
    before = read_index(four)
    b_rows = [i for i, c in enumerate(before.chunks) if c.doc_id == "b.txt"]
    assert b_rows
    report = remove_documents(four, ["b.txt"], SETTINGS)
    after = read_index(four)
    assert report.removed_docs == ["b.txt"] and report.embedded == 0
    assert report.documents == 3 and report.chunks == len(before.chunks) - len(b_rows) == len(after.chunks)
    assert {d.doc_id for d in after.documents} == {"a.txt", "c.txt", "d.txt"}
    kept = [i for i in range(len(before.chunks)) if i not in b_rows]
    assert [c.chunk_id for c in after.chunks] == [before.chunks[i].chunk_id for i in kept]
    assert np.array_equal(after.vectors, before.vectors[kept])  # the stored vectors, bit for bit
    assert after.embed_keys == [before.embed_keys[i] for i in kept]
    r = Retriever.load(four, SETTINGS, embedder=HashEmbedder())
    assert all(h.doc_id != "b.txt" for h in r.search(query, k=10, mode="hybrid"))  # its own words: none of it
    assert only_current_generation(four)


def test_removed_document_stays_removed_when_its_folder_is_ingested_again_only_if_deleted(four):
    """A later ingest of the folder brings a removed document back while its file is still there
    (removal edits the index, not the source folders)."""
    remove_documents(four, ["a.txt"], SETTINGS)
    assert documents(four) == {"b.txt", "c.txt", "d.txt"}
    index_folder(four.parent / "one", four)
    assert documents(four) == {"a.txt", "b.txt", "c.txt", "d.txt"}


def test_unknown_id_is_a_clear_error_and_changes_nothing(four):
    before = snapshot(four)
    with pytest.raises(UnknownDocument) as err:
        remove_documents(four, ["a.txt", "nope.txt", "uploads/x.txt"], SETTINGS)
    assert isinstance(err.value, KeyError) and err.value.ids == ["nope.txt", "uploads/x.txt"]
    assert str(err.value) == f"no such document in the index at {four}: nope.txt, uploads/x.txt"
    assert snapshot(four) == before


def test_removing_every_document_is_refused(four):
    before = snapshot(four)
    with pytest.raises(ValueError, match="--rebuild"):
        remove_documents(four, ["a.txt", "b.txt", "c.txt", "d.txt"], SETTINGS)
    assert snapshot(four) == before


def _remove_process(index, *doc_ids, env=None):
    args = [a for d in doc_ids for a in ("--remove", d)]
    return subprocess.run([sys.executable, "-c", DRIVER, *args, "--index", str(index)], cwd=ROOT,
                          env={**__import__("os").environ, **(env or {})}, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("step", ["vectors", "generation", "staged", "switched"])
def test_kill_at_any_step_of_a_removal_leaves_the_old_or_the_new_index(four, step):
    proc = _remove_process(four, "b.txt", "c.txt", env={CRASH_ENV: step})
    assert proc.returncode == -9  # really killed there
    expected = {"a.txt", "d.txt"} if step == "switched" else {"a.txt", "b.txt", "c.txt", "d.txt"}
    assert documents(four) == expected  # loads, verifies its hash, searches: never a mix
    report = remove_documents(four, ["d.txt"], SETTINGS)  # the next write cleans up after the killed one
    assert documents(four) == expected - {"d.txt"} and report.removed_docs == ["d.txt"]
    assert only_current_generation(four)


def test_cli_remove_then_list(four, capsys):
    from ingest.__main__ import main

    assert main(["--remove", "b.txt", "--remove", "c.txt", "--index", str(four)]) == 0
    out = capsys.readouterr().out
    assert "removed 2 documents" in out and "embedded 0" in out and "removed: c.txt" in out
    assert documents(four) == {"a.txt", "d.txt"}
    assert main(["--remove", "b.txt", "--index", str(four)]) == 2  # already gone
    assert "no such document in the index" in capsys.readouterr().err
    assert main(["--list", "--index", str(four)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if ".txt" in line]
    assert [line.split("│")[1].strip() for line in rows] == ["a.txt", "d.txt"]


def test_cli_needs_an_index_and_no_source_for_list_and_remove(four, capsys):
    from ingest.__main__ import main

    for argv in (["--list"], ["seeds", "--list", "--index", str(four)], []):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    assert main(["--list", "--index", str(four.parent / "missing")]) == 2
    assert "no index at" in capsys.readouterr().err


def test_list_of_the_seed_index(seed_index, retriever, capsys):
    from ingest.__main__ import main

    assert main(["--list", "--index", str(seed_index)]) == 0
    out = capsys.readouterr().out
    assert f"5 documents, {len(retriever)} passages" in out
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]]
            for line in out.splitlines() if line.startswith("│")}
    assert sorted(rows) == sorted(k for k in SEEDS_META if not k.startswith("_"))
    counts = {}
    for c in retriever.stored.chunks:
        counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
    for doc_id, (_, title, issuer, date, script, passages, origin) in rows.items():
        meta = SEEDS_META[doc_id]
        assert (title, issuer, date, script) == (meta["title"], meta["issuer"], meta["date"], meta["script"])
        assert int(passages) == counts[doc_id] and origin == "corpus"


def test_library_records(retriever):
    infos = retriever.library()
    assert [i.doc_id for i in infos] == list(retriever.documents)  # Retriever.documents still works
    sichuan = next(i for i in infos if i.issuer == "四川省人民政府")
    assert sichuan.date == "2017-12-21" and sichuan.origin == "corpus" and sichuan.uploaded_at is None
    assert sum(i.passages for i in infos) == len(retriever)
    doc = retriever.document(sichuan.doc_id)
    upload = type(doc)(doc_id="uploads/x.txt", title="x", path="/tmp/x.txt", script="Hans", text="x",
                       meta={UPLOADED_AT: "2026-11-23T17:00:00+00:00"})
    info = library([upload], [])[0]
    assert (info.origin, info.uploaded_at, info.passages, info.issuer) == (
        "upload", "2026-11-23T17:00:00+00:00", 0, "")
    assert info.as_dict()["uploaded_at"] == "2026-11-23T17:00:00+00:00"
    assert current_dir(retriever.path).is_dir()
