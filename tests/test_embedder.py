"""Any sentence-transformers model from a local path works, with its own prompts; nothing is downloaded."""

from __future__ import annotations

import numpy as np
import pytest

from retriever import ModelNotFound, Retriever
from retriever.embedder import Embedder
from settings import EmbedSettings, Settings


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, embedder):
    """A small random BERT with its own prompts, saved like any sentence-transformers model."""
    import shutil
    from pathlib import Path

    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    from retriever.e5convert import ensure_e5_model
    from tokenizers import Tokenizer

    source = ensure_e5_model(embedder.cfg.cache_dir)
    out = tmp_path_factory.mktemp("tiny-st")
    bert_dir = out / "bert"
    vocab_size = Tokenizer.from_file(str(source / "tokenizer.json")).get_vocab_size()
    config = BertConfig(vocab_size=vocab_size + 10, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(bert_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, bert_dir / name)
    transformer = models.Transformer(str(bert_dir), max_seq_length=128)
    st = SentenceTransformer(modules=[transformer, models.Pooling(32, "mean"), models.Normalize()],
                             prompts={"query": "Q> ", "passage": "P> "})
    st.save(str(out / "model"))
    return out / "model"


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_local_model_with_its_own_prompts(tiny_model_dir, backend):
    from sentence_transformers import SentenceTransformer

    emb = Embedder(EmbedSettings(model=str(tiny_model_dir), query_prompt="ignored: ", passage_prompt="ignored: ",
                                 backend=backend, cache_dir=str(tiny_model_dir.parent / "cache")))
    assert emb.dim == 32 and emb.backend == backend
    q = emb.encode_queries(["北斗卫星"])[0]
    model = SentenceTransformer(str(tiny_model_dir), device="cpu", local_files_only=True)
    direct = model.encode(["Q> 北斗卫星"], normalize_embeddings=True)[0]
    wrong = model.encode(["ignored: 北斗卫星"], normalize_embeddings=True)[0]
    assert np.allclose(q, direct, atol=1e-5)
    assert not np.allclose(q, wrong, atol=1e-3)
    assert np.isclose(np.linalg.norm(q), 1.0, atol=1e-5)


def test_index_with_another_model_is_refused_by_the_default_one(tiny_model_dir, tmp_path, embedder):
    from conftest import SEEDS

    settings = Settings(embed=EmbedSettings(model=str(tiny_model_dir), cache_dir=str(tiny_model_dir.parent / "cache")))
    tiny = Embedder(settings.embed)
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "004.txt").write_bytes((SEEDS / "004_14d6703fe5634065.txt").read_bytes()[:3000])
    index = tmp_path / "index"
    from retriever.build import update_index
    from ingest import ingest_folder

    update_index(ingest_folder(folder, progress=False), index, settings, progress=False, embedder=tiny)
    assert Retriever.load(index, settings, embedder=tiny).search("信息化", k=2)
    from retriever import IndexMismatch

    with pytest.raises(IndexMismatch):
        Retriever.load(index, Settings(), embedder=embedder)


def test_unknown_hub_name_fails_clearly_without_downloading(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFound, match="not available offline"):
        Embedder(EmbedSettings(model="no-such-org/no-such-model-xyz"))


def test_default_model_is_loaded_once(settings, embedder):
    from retriever import get_embedder

    assert get_embedder(settings.embed) is embedder
    assert embedder.dim == 384
