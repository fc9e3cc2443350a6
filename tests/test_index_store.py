"""The index directory: incremental updates, atomic writes, and refusal of bad indexes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from retriever import IndexCorrupt, IndexMismatch, IndexMissing, Retriever, build_index, current_dir
from retriever.store import CHUNKS, LOCK, MANIFEST, VECTORS

DOC_A = "一、总体要求\n加快建设数字政府，推进政务服务一网通办。到2025年，政务服务事项全部实现网上办理。\n二、重点任务\n建设全国一体化大数据中心，优化算力布局。"
DOC_B = "一、发展目标\n推进农村宽带网络建设，行政村光纤通达率达到98%。\n二、保障措施\n加强组织领导，落实资金保障，开展考核评估。"
DOC_C = "（一）网络安全\n健全关键信息基础设施安全保护体系，提升态势感知和应急处置能力。"


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(DOC_A, encoding="utf-8")
    (folder / "b.txt").write_text(DOC_B, encoding="utf-8")
    return folder


def _build(folder, index, settings, embedder):
    """The report and how many passages went through the model (the answer-stage sentences a
    build also embeds are counted apart, by the report)."""
    before = embedder.texts_encoded
    report = build_index(folder, index, settings, progress=False)
    return report, embedder.texts_encoded - before - report.sentences_embedded


def test_incremental_update_embeds_only_what_changed(corpus, tmp_path, settings, embedder):
    index = tmp_path / "index"
    report, calls = _build(corpus, index, settings, embedder)
    total = report.chunks
    assert calls == report.embedded == total > 0

    report, calls = _build(corpus, index, settings, embedder)  # nothing changed
    assert calls == 0 and report.reused == total and report.sentences_embedded == 0

    (corpus / "c.txt").write_text(DOC_C, encoding="utf-8")  # a new document
    report, calls = _build(corpus, index, settings, embedder)
    assert report.added_docs == ["c.txt"]
    new_chunks = report.chunks - total
    assert calls == new_chunks > 0

    (corpus / "b.txt").write_text(DOC_B + "\n三、附则\n本规划自印发之日起施行。", encoding="utf-8")  # changed
    report, calls = _build(corpus, index, settings, embedder)
    assert report.updated_docs == ["b.txt"]
    assert 0 < calls < report.chunks  # a's and c's chunks are not re-embedded

    (corpus / "a.txt").unlink()  # deleted
    report, calls = _build(corpus, index, settings, embedder)
    assert report.removed_docs == ["a.txt"] and calls == 0
    r = Retriever.load(index, settings, embedder=embedder)
    assert {c.doc_id for c in r.stored.chunks} == {"b.txt", "c.txt"}
    assert all(h.doc_id != "a.txt" for h in r.search("数字政府 一网通办", k=10))
    assert "附则" in r.search("规划什么时候开始施行", k=3, mode="bm25")[0].text


def test_documents_from_other_sources_are_kept(corpus, tmp_path, settings, embedder):
    index = tmp_path / "index"
    _build(corpus, index, settings, embedder)
    other = tmp_path / "upload"
    other.mkdir()
    (other / "c.txt").write_text(DOC_C, encoding="utf-8")
    report, _ = _build(other, index, settings, embedder)
    assert report.removed_docs == [] and report.added_docs == ["c.txt"]
    r = Retriever.load(index, settings, embedder=embedder)
    assert {d.doc_id for d in r.stored.documents} == {"a.txt", "b.txt", "c.txt"}


def test_vectors_match_fresh_embeddings_after_update(corpus, tmp_path, settings, embedder):
    from retriever.build import embed_text

    index = tmp_path / "index"
    _build(corpus, index, settings, embedder)
    (corpus / "c.txt").write_text(DOC_C, encoding="utf-8")
    _build(corpus, index, settings, embedder)
    r = Retriever.load(index, settings, embedder=embedder)
    fresh = embedder.encode_passages([embed_text(c) for c in r.stored.chunks])
    assert np.allclose(fresh, r.stored.vectors, atol=1e-5)  # reused rows sit at the right place


def test_missing_index_is_refused(tmp_path, settings, embedder):
    with pytest.raises(IndexMissing, match="python -m ingest"):
        Retriever.load(tmp_path / "nothing-here", settings, embedder=embedder)


@pytest.fixture
def small_index(corpus, tmp_path, settings, embedder):
    index = tmp_path / "index"
    _build(corpus, index, settings, embedder)
    return index


def test_truncated_vectors_refused(small_index, settings, embedder):
    path = current_dir(small_index) / VECTORS
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorrupt):
        Retriever.load(small_index, settings, embedder=embedder)


def test_edited_records_refused(small_index, settings, embedder):
    path = current_dir(small_index) / CHUNKS
    path.write_text(path.read_text(encoding="utf-8").replace("数字政府", "数字政腐"), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="hash"):
        Retriever.load(small_index, settings, embedder=embedder)


def test_garbage_manifest_refused(small_index, settings, embedder):
    (small_index / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorrupt):
        Retriever.load(small_index, settings, embedder=embedder)


def test_corrupt_bm25_refused(small_index, settings, embedder):
    for f in (current_dir(small_index) / "bm25").iterdir():
        f.write_bytes(b"\x00garbage")
    with pytest.raises(IndexCorrupt):
        Retriever.load(small_index, settings, embedder=embedder)


@pytest.mark.parametrize("field, value", [("model_id", "some-other-model"), ("dimension", 768)])
def test_mismatched_embedder_refused(small_index, settings, embedder, field, value):
    manifest = json.loads((small_index / MANIFEST).read_text(encoding="utf-8"))
    manifest[field] = value
    (small_index / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexMismatch, match="rebuild"):
        Retriever.load(small_index, settings, embedder=embedder)


def test_old_format_version_refused(small_index, settings, embedder):
    manifest = json.loads((small_index / MANIFEST).read_text(encoding="utf-8"))
    manifest["format_version"] = 0
    (small_index / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexMismatch):
        Retriever.load(small_index, settings, embedder=embedder)


def test_interrupted_build_leaves_previous_index_intact(small_index, corpus, settings, embedder, monkeypatch):
    import retriever.stores.folder as folder_store

    before = json.loads((small_index / MANIFEST).read_text(encoding="utf-8"))
    generation = current_dir(small_index).name
    (corpus / "c.txt").write_text(DOC_C, encoding="utf-8")

    def explode(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C while the BM25 state was written

    monkeypatch.setattr(folder_store.SparseIndex, "build", explode)
    with pytest.raises(KeyboardInterrupt):
        build_index(corpus, small_index, settings, progress=False)
    assert json.loads((small_index / MANIFEST).read_text(encoding="utf-8")) == before
    assert Retriever.load(small_index, settings, embedder=embedder).search("数字政府", k=1)
    leftovers = [p.name for p in small_index.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert sorted(p.name for p in small_index.iterdir()) == sorted([LOCK, MANIFEST, generation])


def test_corrupt_index_is_refused_not_rebuilt(small_index, corpus, settings, embedder):
    (current_dir(small_index) / VECTORS).write_bytes(b"broken")
    with pytest.raises(IndexCorrupt, match="--rebuild"):
        build_index(corpus, small_index, settings, progress=False)
    assert (current_dir(small_index) / VECTORS).read_bytes() == b"broken"  # left as it was


def test_corrupt_index_is_rebuilt_when_asked(small_index, corpus, settings, embedder):
    (current_dir(small_index) / VECTORS).write_bytes(b"broken")
    report = build_index(corpus, small_index, settings, progress=False, rebuild=True)
    assert report.rebuilt and report.reused == 0 and report.embedded == report.chunks
    Retriever.load(small_index, settings, embedder=embedder)


def test_index_folder_is_self_contained(small_index, tmp_path, settings, embedder):
    moved = tmp_path / "moved"
    shutil.move(str(small_index), moved)
    r = Retriever.load(moved, settings, embedder=embedder)
    doc = r.document("a.txt")
    hit = r.search("一网通办", k=1)[0]
    assert doc.text[hit.start : hit.end] == hit.text
