"""The upload area: where files users upload are kept, under ids that cannot collide.

An upload is a document like any other, but from an untrusted source. Its id is
``uploads/<file name>``, a namespace no folder ingestion produces, so uploading a file
named like a shipped document adds a second document instead of replacing the original.
The original bytes are kept (so the upload can be re-read or audited) in one folder whose
total size is bounded; a file whose document is no longer in the index is deleted by
``sweep``, so the folder never holds what the index has dropped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

PREFIX = "uploads/"


class UploadRefused(ValueError):
    """The whole upload request is refused (too many files, too large, area full)."""


def upload_id(name: str) -> str:
    return PREFIX + name


def is_upload(doc_id: str) -> bool:
    return doc_id.startswith(PREFIX)


def safe_name(name: str) -> str | None:
    """The file name to store an upload under, or None if it cannot be one (hidden, empty)."""
    base = Path(name.replace("\\", "/")).name.strip()
    if not base or base.startswith(".") or any(ord(ch) < 32 for ch in base):
        return None
    return base


@dataclass
class Staged:
    """One file copied into the area, with what it replaced, until the index update settles it."""

    name: str
    path: Path
    backup: Path | None


class UploadArea:
    def __init__(self, root: str | Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path_of(self, name: str) -> Path:
        return self.root / name

    def used_bytes(self) -> int:
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.iterdir() if p.is_file() and not p.name.startswith("."))

    def stage(self, files: list[tuple[Path, str]]) -> list[Staged]:
        """Copy ``(source, name)`` pairs into the area; an existing file of the same name is
        moved aside (restored by ``rollback``). Refuses before copying anything when the area
        would exceed its bound."""
        incoming = sum(src.stat().st_size for src, _ in files)
        replaced = sum(self.path_of(n).stat().st_size for _, n in files if self.path_of(n).is_file())
        if self.used_bytes() - replaced + incoming > self.max_bytes:
            raise UploadRefused(
                f"the upload area is full ({self.used_bytes() / 1e6:.0f} MB used, {incoming / 1e6:.1f} MB more "
                f"would pass the {self.max_bytes / 1e6:.0f} MB limit, AppSettings.upload_area_bytes)")
        self.root.mkdir(parents=True, exist_ok=True)
        staged: list[Staged] = []
        try:
            for src, name in files:
                target = self.path_of(name)
                backup = None
                if target.exists():
                    backup = Path(tempfile.mkdtemp(prefix=".replaced-", dir=self.root)) / name
                    os.replace(target, backup)
                staged.append(Staged(name, target, backup))
                shutil.copyfile(src, target)
        except BaseException:
            self.rollback(staged)
            raise
        return staged

    def commit(self, staged: list[Staged]) -> None:
        """The index now holds what was staged: drop the replaced originals."""
        for s in staged:
            if s.backup is not None:
                shutil.rmtree(s.backup.parent, ignore_errors=True)

    def rollback(self, staged: list[Staged]) -> None:
        """Put the area back as it was before ``stage``."""
        for s in reversed(staged):
            s.path.unlink(missing_ok=True)
            if s.backup is not None and s.backup.exists():
                os.replace(s.backup, s.path)
                shutil.rmtree(s.backup.parent, ignore_errors=True)

    def sweep(self, indexed_ids: set[str]) -> list[str]:
        """Delete stored files whose document is not in the index; returns their names.

        A crash between ``stage`` and ``commit`` leaves a moved-aside original: it is put
        back (the index most likely still holds it, since the index is written last)."""
        if not self.root.is_dir():
            return []
        for aside in self.root.glob(".replaced-*"):
            for p in aside.iterdir():
                os.replace(p, self.path_of(p.name))
            shutil.rmtree(aside, ignore_errors=True)
        gone = []
        for p in self.root.iterdir():
            if p.is_file() and upload_id(p.name) not in indexed_ids:
                p.unlink(missing_ok=True)
                gone.append(p.name)
        return gone
