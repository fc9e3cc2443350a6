"""Where an index lives: a folder (the zero-setup default) or a database engine.

    open_store("index", settings)                          # FAISS + bm25s files
    open_store("seekdb:///var/lib/policyqa", settings)     # seekdb embedded in this process
    open_store("seekdb://root@10.0.0.5:2881/policyqa", settings)   # a seekdb server or OceanBase
"""

from __future__ import annotations

from pathlib import Path

from settings import Settings

from .base import Change, Matches, PassageRow, Snapshot, Store, record_hash
from .folder import FolderStore

SEEKDB_SCHEME = "seekdb:"


def is_uri(location: str | Path) -> bool:
    """True for a database location, False for an index folder."""
    return isinstance(location, str) and location.startswith(SEEKDB_SCHEME)


def open_store(location: str | Path, settings: Settings, verify: bool = True) -> Store:
    """The store at ``location``; opening reads nothing yet (``open_for`` / ``snapshot`` do)."""
    if is_uri(location):
        from .seekdb import SeekdbStore  # imports the engine's client only when asked for

        return SeekdbStore.open(str(location), settings)
    return FolderStore(location, settings, verify=verify)


def index_exists(location: str | Path, settings: Settings | None = None) -> bool:
    """Whether ``location`` holds an index (sound or not) that a first-run build must not replace."""
    if not is_uri(location):
        from ..store import index_exists as folder_has_index

        return folder_has_index(location)
    from ..store import IndexMissing
    from settings import load_settings

    try:
        with open_store(location, settings or load_settings()) as store:
            store.manifest()
    except IndexMissing:
        return False
    return True


__all__ = ["Change", "FolderStore", "Matches", "PassageRow", "Snapshot", "Store", "index_exists", "is_uri", "open_store",
           "record_hash"]
