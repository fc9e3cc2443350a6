"""Shared fixtures. Tests never reach a model hub: everything loads from local paths."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session")
def seed_result():
    from ingest import ingest_folder

    return ingest_folder(SEEDS, progress=False)


@pytest.fixture(scope="session")
def seed_docs(seed_result):
    return {d.doc_id: d for d in seed_result.documents}
