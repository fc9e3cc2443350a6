"""One writer per index: an exclusive ``flock`` on ``<index>/.lock``.

Two writers each reading the old index and writing their own update would lose one
update, so ``update_index`` (the CLI and the app alike) holds this lock from reading the
previous index to switching in the new one. The kernel releases it when the holder dies,
so a killed writer never leaves the index locked. Readers take no lock: generations are
switched atomically (``retriever.store``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from settings import IndexSettings

from .store import (LOCK, MANIFEST, IndexLocked, IndexMissing, IndexWriteError, legacy_swaps, recover_legacy_swap,
                    tidy)

log = logging.getLogger(__name__)


def _holder(path: Path) -> str:
    try:
        return (path / LOCK).read_text(encoding="utf-8").strip() or "unknown process"
    except OSError:
        return "unknown process"


@contextmanager
def write_lock(path: str | Path, cfg: IndexSettings) -> Iterator[None]:
    """Hold the index's write lock, waiting up to ``cfg.lock_timeout_s`` for another writer;
    on entry, leftovers of killed writes are cleaned up."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fh = (path / LOCK).open("a+", encoding="utf-8")
    except OSError as exc:
        raise IndexWriteError(f"could not lock the index at {path}: {exc.strerror or exc}") from exc
    try:
        deadline = time.monotonic() + cfg.lock_timeout_s
        waiting = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexLocked(
                        f"index at {path} is being written by another process ({_holder(path)}); gave up after "
                        f"{cfg.lock_timeout_s:g} s, try again when it has finished"
                    ) from None
                if not waiting:
                    log.warning("index at %s is being written by another process (%s); waiting up to %g s",
                                path, _holder(path), cfg.lock_timeout_s)
                    waiting = True
                time.sleep(cfg.lock_poll_s)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}\n")  # only for the message another writer shows
            fh.flush()
        except OSError:
            pass
        try:
            recover_legacy_swap(path)
        except OSError as exc:  # building on without it would drop the documents it holds
            raise IndexWriteError(f"could not recover the index at {path} from {legacy_swaps(path)}: "
                                  f"{exc.strerror or exc}") from exc
        try:
            tidy(path)
        except OSError as exc:
            log.warning("index at %s: could not remove leftovers of earlier writes: %s", path, exc)
        yield
    finally:
        fh.close()  # releases the lock


def recover(path: str | Path, cfg: IndexSettings) -> None:
    """Before reading: put back an index that an older version left half-swapped."""
    path = Path(path)
    if legacy_swaps(path) and not path.joinpath(MANIFEST).is_file():
        try:
            with write_lock(path, cfg):
                pass
        except IndexWriteError as exc:
            raise IndexMissing(f"no usable index at {path}: {exc}") from exc
