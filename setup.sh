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
echo "setup done: .venv is ready"
