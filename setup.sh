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
