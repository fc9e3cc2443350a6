"""seekdb / OceanBase as a store: HNSW vectors, BM25 full text and hybrid search in the engine.

Locations::

    seekdb:///abs/dir                          embedded: the engine (``pylibseekdb``) inside this
                                               process, its data in DIR; one process at a time
    seekdb://user[:password]@host:port/db      a seekdb server (``retriever/stores/seekdb_server.py``
                                               starts the one the wheel ships) or an OceanBase
                                               cluster (hybrid search needs OceanBase CE >= 4.4.1);
                                               the password may come from $POLICYQA_SEEKDB_PASSWORD

Plain SQL over four tables, not pyseekdb's collections: a collection holds one text, one
vector and a JSON metadata column, while an index needs passages with their fields and
per-passage record hashes, documents, the answer stage's sentence vectors and a manifest,
all written in one transaction. The server is reached with pymysql (the MySQL protocol
OceanBase speaks), the embedded engine through ``pylibseekdb``'s DB-API connection, whose
cursor takes no parameters: values are escaped with pymysql's own escaping for both.

Findings that shaped it (seekdb 1.4.0):
- the ``space`` full-text parser drops tokens under 3 characters by default; Chinese terms
  are mostly 2, so the index sets ``min_token_size=1``. Passages are stored as the jieba
  terms of their keyword text joined by spaces (``retriever.terms``: traditional folded to
  simplified), the same terms the folder store's BM25 sees; queries are tokenized alike.
- a vector index is built asynchronously by default (an ``APPROXIMATE`` query right after an
  insert finds nothing); ``SYNC_MODE=IMMEDIATE`` makes written rows searchable at commit.
- isolation is READ COMMITTED: a reader sees a write whole once it commits, or not at all,
  when the write is one transaction (changes of up to ``index.seekdb_txn_rows`` passages;
  larger loads commit in steps of that size and a reader may see a load in progress).
- writers are serialized by a row lock (``SELECT … FOR UPDATE`` on ``pq_lock`` in a
  transaction of a connection of their own), which the server releases when the holder's
  connection dies: a killed ingest never leaves the index locked (measured: an ingest process
  SIGKILLed with 40 MB written and uncommitted, the next writer had its rows at once, and the
  write was rolled back).
- a server that dies or is stopped while a write's transaction is open keeps that
  transaction after its restart when its redo had reached the log (always at a clean
  shutdown; after a kill, for the test's few-KB write but not for two rows): it comes back
  ACTIVE with no session and no expiry (``oceanbase.V$OB_TRANSACTION_WRITE_STATE``:
  SESSION_ID 0, TX_EXPIRED_TIME NULL), ``ob_trx_timeout`` does not apply to it, and it was
  still there 29 minutes after the restart (the longest watched). Reads are unaffected (the
  index reads as before the write, consistent); writes to the rows it touched wait (1205
  after ``ob_query_timeout``) and ``DROP TABLE`` hangs, so a rebuild in place is no way out
  either. The way out is a copy: ``python -m ingest --from-index OLD --index NEW`` reads the
  old database and writes a new one (tried: reading and copying its table worked). The
  embedded engine is such a server inside the process: a process that exits with a write
  open shuts it down cleanly and leaves the same transaction behind, so ``apply`` rolls back
  before any exception leaves it (KeyboardInterrupt too) and ``close`` closes the
  connection, which rolls back as well.
- ingest costs, per passage, CPU (a 10,000-passage load into the server, 384 dimensions):
  about 0.8 ms in this process (jieba terms 0.55, JSON and escaping) and 1.0 ms in the engine
  (0.2 the row, 0.45 the FULLTEXT index, 0.35 the HNSW graph; building both indexes after
  the load instead cost more, 1.5 ms). Batches are tokenized one ahead in a thread, so the
  two overlap: 420-430 inline vs 560-700 passages/s ahead, 2 cores with other work running.
  The ceiling on 2 cores is therefore ~1,100/s; 3,000/s needs ~5-6 busy cores, i.e. several
  writer connections (not done: the unit of atomicity is one connection's transaction).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from urllib.parse import unquote, urlsplit

import numpy as np

from ingest import Chunk, Document
from settings import Settings

from ..store import FORMAT_VERSION, IndexCorrupt, IndexLoadError, IndexLocked, IndexMissing, IndexWriteError
from ..terms import terms
from .base import Change, Matches, Snapshot, Store, iter_batches, record_hash

log = logging.getLogger(__name__)
PASSWORD_ENV = "POLICYQA_SEEKDB_PASSWORD"
T_MANIFEST, T_DOCS, T_PASSAGES, T_SENTENCES, T_LOCK = "pq_manifest", "pq_documents", "pq_passages", "pq_sentences", \
    "pq_lock"
_EMBEDDED_LOCK = threading.Lock()
_EMBEDDED_DIR: str | None = None  # the engine opens one data directory per process


class StoreUnavailable(IndexLoadError):
    """The database cannot be reached or refuses us (server down, wrong credentials)."""


class BadLocation(IndexLoadError, ValueError):
    """A seekdb location that names no directory or no database."""


@dataclass(frozen=True)
class Location:
    embedded: bool
    path: str = ""  # embedded: the data directory
    host: str = ""
    port: int = 2881
    user: str = "root"
    password: str = ""
    database: str = "policyqa"

    @classmethod
    def parse(cls, uri: str) -> "Location":
        parts = urlsplit(uri)
        if parts.scheme != "seekdb":
            raise BadLocation(f"not a seekdb location: {uri!r}")
        if not parts.netloc:  # seekdb:///abs/dir
            if not parts.path.startswith("/") or parts.path == "/":
                raise BadLocation(f"an embedded seekdb location needs an absolute directory: seekdb:///abs/dir, "
                                 f"got {uri!r}")
            return cls(embedded=True, path=parts.path, database="policyqa")
        shown = uri if parts.password is None else uri.replace(f":{parts.password}@", ":***@", 1)  # for messages
        database = parts.path.strip("/")
        if not database or "/" in database:
            raise BadLocation(f"a seekdb server location names one database: seekdb://user@host:port/db, got {shown!r}")
        try:
            port = parts.port or 2881
        except ValueError as exc:
            raise BadLocation(f"a seekdb server location needs a numeric port: seekdb://user@host:port/db, got "
                              f"{shown!r}") from exc
        password = unquote(parts.password) if parts.password is not None else os.environ.get(PASSWORD_ENV, "")
        return cls(embedded=False, host=parts.hostname or "127.0.0.1", port=port,
                   user=unquote(parts.username or "root"), password=password, database=database)

    def __str__(self) -> str:  # for messages: never the password
        if self.embedded:
            return f"seekdb://{self.path}"
        return f"seekdb://{self.user}@{self.host}:{self.port}/{self.database}"


def parse_location(uri: str) -> Location:
    """``seekdb:///abs/dir`` or ``seekdb://user[:password]@host:port/db`` as a Location (BadLocation if neither)."""
    return Location.parse(uri)


def _vector(v: np.ndarray) -> str:
    values = np.asarray(v, dtype=np.float32).tolist()
    return "[" + ",".join(["%.7g"] * len(values)) % tuple(values) + "]"  # 1.4x an f-string per value


_END = object()


def _ahead(items: Iterator) -> Iterator:
    """``items``, each computed in a worker thread while the caller uses the previous one: the
    next batch is tokenized (jieba, in Python) while the engine writes this one (the client
    waits on the socket, without the GIL), so a load takes the larger of the two, not the sum."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="seekdb-prepare") as pool:
        pending = pool.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(next, items, _END)
            yield item


def _parse_vector(text) -> np.ndarray:
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("ascii")
    return np.asarray(json.loads(text), dtype=np.float32)


def _sentence_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class _Connection:
    """One DB-API connection with parameter escaping that works for both engines."""

    def __init__(self, raw, embedded: bool, where: str):
        self.raw = raw
        self.embedded = embedded
        self.where = where

    def execute(self, sql: str, params: Sequence = ()) -> list[tuple]:
        import pymysql

        if params:
            sql = sql % tuple(pymysql.converters.escape_item(p, "utf8mb4") for p in params)
        cur = self.raw.cursor()
        try:
            cur.execute(sql)
            try:
                return list(cur.fetchall() or [])
            except Exception:  # noqa: BLE001 - a statement without a result set
                return []
        finally:
            cur.close()

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        try:
            self.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection may be gone; the server rolls back then
            pass

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:  # noqa: BLE001
            pass


def _errors():
    """The engine's error classes (pymysql's for a server; pylibseekdb raises its own)."""
    import pymysql

    classes: list[type] = [pymysql.err.Error, OSError]
    try:
        import pylibseekdb

        classes += [c for c in vars(pylibseekdb).values() if isinstance(c, type) and issubclass(c, Exception)]
    except ImportError:
        pass
    return tuple(classes)


class SeekdbStore(Store):
    def __init__(self, location: Location, settings: Settings):
        self.loc = location
        self.location = str(location)
        self.settings = settings
        self.cfg = settings.index
        self._local = threading.local()  # a connection per thread: the app answers in several at once
        self._opened: list[_Connection] = []
        self._opened_lock = threading.Lock()
        self._manifest: dict | None = None
        self._dim: int | None = None
        self._df: dict[str, int] = {}  # term -> passages holding it, until the next write

    @classmethod
    def open(cls, uri: str, settings: Settings) -> "SeekdbStore":
        return cls(Location.parse(uri), settings)

    # -- connections -------------------------------------------------------------------
    def _connect(self, database: str | None) -> _Connection:
        """A new connection to ``database`` (None: none selected). Errors become IndexLoadError
        subclasses that say what to do."""
        errors = _errors()
        try:
            if self.loc.embedded:
                return self._connect_embedded(database)
            import pymysql

            raw = pymysql.connect(host=self.loc.host, port=self.loc.port, user=self.loc.user,
                                  password=self.loc.password, database=database, autocommit=True,
                                  connect_timeout=self.cfg.seekdb_connect_timeout_s, charset="utf8mb4")
            return _Connection(raw, False, self.location)
        except IndexLoadError:
            raise
        except errors as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            if code == 1045:
                raise StoreUnavailable(f"{self.location}: access denied for user {self.loc.user!r} (wrong password? "
                                       f"give it in the URI or ${PASSWORD_ENV})") from exc
            if code == 1049:
                raise IndexMissing(f"no database {self.loc.database!r} at {self.location} (build the index with: "
                                   f"python -m ingest SOURCE_DIR --index {self.location})") from exc
            raise StoreUnavailable(f"cannot reach the seekdb server at {self.loc.host}:{self.loc.port} "
                                   f"({exc.__class__.__name__}: {exc}); is it running? (python -m "
                                   "retriever.stores.seekdb_server DIR starts one)") from exc

    def _connect_embedded(self, database: str | None) -> _Connection:
        global _EMBEDDED_DIR
        try:
            import pylibseekdb
        except ImportError as exc:
            raise StoreUnavailable(f"{self.location}: the embedded engine is not installed (pip install pyseekdb)") \
                from exc
        with _EMBEDDED_LOCK:
            if _EMBEDDED_DIR is None:
                os.makedirs(self.loc.path, exist_ok=True)
                pylibseekdb.open(db_dir=self.loc.path)
                _EMBEDDED_DIR = self.loc.path
            elif os.path.abspath(_EMBEDDED_DIR) != os.path.abspath(self.loc.path):
                raise StoreUnavailable(f"{self.location}: this process already runs the embedded engine on "
                                       f"{_EMBEDDED_DIR}; one data directory per process (use a server for more)")
        conn = _Connection(pylibseekdb.connect(database="test", autocommit=True), True, self.location)
        if not database:
            return conn
        found = conn.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s", [database])
        conn.close()
        if not found or not found[0][0]:
            raise IndexMissing(f"no index at {self.location} (build it with: python -m ingest SOURCE_DIR "
                               f"--index seekdb://{self.loc.path})")
        return _Connection(pylibseekdb.connect(database=database, autocommit=True), True, self.location)

    @property
    def conn(self) -> _Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(self.loc.database)
            # the HNSW beam of this connection's searches (see IndexSettings.seekdb_ef_search)
            try:
                conn.execute(f"SET SESSION ob_hnsw_ef_search = {int(self.cfg.seekdb_ef_search)}")
            except _errors() as exc:  # an engine without the variable searches with its own default
                log.warning("%s: cannot set ob_hnsw_ef_search (%s); searching with the engine's default",
                            self.location, exc)
            self._local.conn = conn
            with self._opened_lock:
                self._opened.append(conn)
        return conn

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        try:
            return self.conn.execute(sql, params)
        except IndexLoadError:
            raise
        except _errors() as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            if code == 1146:  # table missing: the database exists but holds no index
                raise IndexMissing(f"no index at {self.location} (build it with: python -m ingest SOURCE_DIR "
                                   f"--index {self.location})") from exc
            raise StoreUnavailable(f"{self.location}: {exc.__class__.__name__}: {exc}") from exc

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._opened_lock:
                self._opened = [c for c in self._opened if c is not conn]

    # -- reading ---------------------------------------------------------------------
    def manifest(self) -> dict:
        rows = self._query(f"SELECT v FROM {T_MANIFEST} WHERE k = 'manifest'")
        if not rows:
            raise IndexMissing(f"no index at {self.location} (build it with: python -m ingest SOURCE_DIR "
                               f"--index {self.location})")
        try:
            manifest = json.loads(rows[0][0])
        except ValueError as exc:
            raise IndexCorrupt(f"index at {self.location}: unreadable manifest ({exc})") from exc
        if manifest.get("format_version") != FORMAT_VERSION or manifest.get("store") != "seekdb":
            raise IndexCorrupt(f"index at {self.location}: the manifest is not a seekdb index of format "
                               f"{FORMAT_VERSION} ({manifest.get('format_version')!r})")
        self._manifest = manifest
        self._dim = int(manifest["dimension"])
        return manifest

    def documents(self) -> list[Document]:
        rows = self._query(f"SELECT body FROM {T_DOCS} ORDER BY seq")
        return [Document(**json.loads(body)) for (body,) in rows]

    def passage_counts(self) -> dict[str, int]:
        return {doc: int(n) for doc, n in self._query(f"SELECT doc_id, COUNT(*) FROM {T_PASSAGES} GROUP BY doc_id")}

    def passages(self, keys: Sequence) -> list[Chunk | None]:
        found: dict[str, Chunk] = {}
        for batch in iter_batches(list(dict.fromkeys(keys)), self.cfg.seekdb_batch):
            marks = ",".join(["%s"] * len(batch))
            for cid, body in self._query(f"SELECT chunk_id, chunk FROM {T_PASSAGES} WHERE chunk_id IN ({marks})",
                                         batch):
                found[cid] = Chunk(**json.loads(body))
        return [found.get(k) for k in keys]  # None: removed by a writer since the search

    def passages_of(self, doc_id: str) -> list[Chunk]:
        rows = self._query(f"SELECT chunk FROM {T_PASSAGES} WHERE doc_id = %s", [doc_id])
        return sorted((Chunk(**json.loads(body)) for (body,) in rows), key=lambda c: (c.start, c.end))

    @staticmethod
    def _filter(doc_ids: Sequence[str] | None) -> tuple[str, list]:
        if doc_ids is None:
            return "", []
        return f" AND doc_id IN ({','.join(['%s'] * len(doc_ids))})", list(doc_ids)

    def dense(self, vector: np.ndarray, n: int, doc_ids: Sequence[str] | None = None) -> Matches:
        if doc_ids is not None and not doc_ids or n <= 0:
            return Matches.empty()
        where, params = self._filter(doc_ids)
        v = _vector(vector)
        rows = self._query(f"SELECT chunk_id, cosine_distance(embedding, %s) FROM {T_PASSAGES} WHERE 1=1{where} "
                           f"ORDER BY cosine_distance(embedding, %s) APPROXIMATE LIMIT {int(n)}", [v, *params, v])
        return Matches([r[0] for r in rows], np.asarray([1.0 - float(r[1]) for r in rows], dtype=np.float32))

    def keyword(self, text: str, n: int, doc_ids: Sequence[str] | None = None) -> Matches:
        words = " ".join(terms(text))
        if not words or n <= 0 or doc_ids is not None and not doc_ids:
            return Matches.empty()
        where, params = self._filter(doc_ids)
        rows = self._query(f"SELECT chunk_id, MATCH(terms) AGAINST(%s) AS s FROM {T_PASSAGES} "
                           f"WHERE MATCH(terms) AGAINST(%s){where} ORDER BY s DESC LIMIT {int(n)}",
                           [words, words, *params])
        rows = [r for r in rows if float(r[1]) > 0]
        return Matches([r[0] for r in rows], np.asarray([float(r[1]) for r in rows], dtype=np.float32))

    def hybrid(self, text: str, vector: np.ndarray, n: int, doc_ids: Sequence[str] | None = None,
               rrf_k: int = 60) -> Matches:
        """The engine's own hybrid search (DBMS_HYBRID_SEARCH, RRF over full text and kNN)."""
        words = " ".join(terms(text))
        if n <= 0 or doc_ids is not None and not doc_ids:
            return Matches.empty()
        knn: dict = {"field": "embedding", "k": n, "num_candidates": max(n, self.cfg.seekdb_ef_search),
                     "query_vector": np.asarray(vector, dtype=np.float32).round(7).tolist()}
        parm: dict = {"knn": knn, "size": n, "_source": ["chunk_id"],
                      "rank": {"rrf": {"rank_window_size": n, "rank_constant": rrf_k}}}
        filters = [{"terms": {"doc_id": list(doc_ids)}}] if doc_ids is not None else []
        if filters:
            knn["filter"] = filters
        if words:
            parm["query"] = {"bool": {"must": [{"query_string": {"fields": ["terms"], "query": words}}],
                                      **({"filter": filters} if filters else {})}}
        self._query("SET @pq_search = %s", [json.dumps(parm, ensure_ascii=False)])
        sql = self._query(f"SELECT DBMS_HYBRID_SEARCH.GET_SQL('{T_PASSAGES}', @pq_search)")
        rows = self._query(str(sql[0][0]).strip().strip("'\"")) if sql and sql[0][0] else []
        ids = [r[0] for r in rows]
        scores = [float(r[-1]) for r in rows]
        return Matches(ids, np.asarray(scores, dtype=np.float32))

    def document_frequency(self, term: str) -> int:
        if not term.strip():
            return 0
        if term not in self._df:
            if len(self._df) > 100_000:
                self._df.clear()
            rows = self._query(f"SELECT COUNT(*) FROM {T_PASSAGES} WHERE MATCH(terms) AGAINST(%s)", [term])
            self._df[term] = int(rows[0][0]) if rows else 0
        return self._df[term]

    def sentence_vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        ids = {_sentence_id(t): t for t in texts}
        out: dict[str, np.ndarray] = {}
        for batch in iter_batches(list(ids), self.cfg.seekdb_batch):
            marks = ",".join(["%s"] * len(batch))
            for sid, vec in self._query(f"SELECT id, vec FROM {T_SENTENCES} WHERE id IN ({marks})", batch):
                out[ids[sid]] = _parse_vector(vec)
        return out

    def __len__(self) -> int:
        return int(self._query(f"SELECT COUNT(*) FROM {T_PASSAGES}")[0][0])

    # -- writing ---------------------------------------------------------------------
    def _ensure_database(self) -> None:
        """A write may create the database (a first ingest into a fresh server)."""
        try:
            self.conn
        except IndexMissing:
            admin = self._connect(None)
            try:
                admin.execute(f"CREATE DATABASE IF NOT EXISTS `{self.loc.database}`")
            finally:
                admin.close()
        self._query(f"CREATE TABLE IF NOT EXISTS {T_LOCK} (name varchar(32) PRIMARY KEY, holder varchar(256))")
        self._query(f"CREATE TABLE IF NOT EXISTS {T_MANIFEST} (k varchar(64) PRIMARY KEY, v longtext)")
        self._query(f"INSERT IGNORE INTO {T_LOCK} VALUES ('write', '')")

    def _ensure_tables(self, dim: int) -> None:
        m, ef_c, ef_s = self.cfg.seekdb_hnsw_m, self.cfg.seekdb_ef_construction, self.cfg.seekdb_ef_search
        self._query(f"CREATE TABLE IF NOT EXISTS {T_DOCS} (doc_id varchar(1024) PRIMARY KEY, seq bigint, "
                    "body longtext)")
        self._query(
            f"CREATE TABLE IF NOT EXISTS {T_PASSAGES} (chunk_id varchar(1100) PRIMARY KEY, doc_id varchar(1024), "
            f"record_hash char(40), embed_key char(40), chunk longtext, terms longtext, embedding vector({dim}), "
            "INDEX by_doc (doc_id), INDEX by_key (embed_key), "
            "FULLTEXT INDEX ft (terms) WITH PARSER space PARSER_PROPERTIES=(min_token_size=1, max_token_size=84), "
            f"VECTOR INDEX vi (embedding) WITH (DISTANCE=cosine, TYPE=hnsw, LIB=vsag, M={m}, "
            f"EF_CONSTRUCTION={ef_c}, EF_SEARCH={ef_s}, SYNC_MODE=IMMEDIATE)) ORGANIZATION=HEAP")
        self._query(f"CREATE TABLE IF NOT EXISTS {T_SENTENCES} (id char(40) PRIMARY KEY, vec vector({dim}))")

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        self._ensure_database()
        lock = self._connect(self.loc.database)  # a connection of its own: its transaction holds the row
        try:
            deadline = time.monotonic() + self.cfg.lock_timeout_s
            waiting = False
            while True:
                try:
                    lock.begin()
                    lock.execute(f"SELECT name FROM {T_LOCK} WHERE name = 'write' FOR UPDATE NOWAIT")
                    break
                except _errors() as exc:
                    lock.rollback()
                    if time.monotonic() >= deadline:
                        raise IndexLocked(f"index at {self.location} is being written by another process; gave up "
                                          f"after {self.cfg.lock_timeout_s:g} s ({exc})") from exc
                    if not waiting:
                        log.warning("index at %s is being written by another process; waiting up to %g s",
                                    self.location, self.cfg.lock_timeout_s)
                        waiting = True
                    time.sleep(self.cfg.lock_poll_s)
            yield
        finally:
            lock.rollback()  # releases the row
            lock.close()

    def snapshot(self) -> Snapshot:
        try:
            manifest = self.manifest()
        except IndexMissing:
            return Snapshot([], {}, None)
        passages = {cid: (doc, h) for cid, doc, h in
                    self._query(f"SELECT chunk_id, doc_id, record_hash FROM {T_PASSAGES}")}
        return Snapshot(self.documents(), passages, manifest)

    def vectors(self, embed_keys: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for batch in iter_batches(list(dict.fromkeys(embed_keys)), self.cfg.seekdb_batch):
            marks = ",".join(["%s"] * len(batch))
            for key, vec in self._query(f"SELECT embed_key, embedding FROM {T_PASSAGES} WHERE embed_key IN ({marks})",
                                        batch):
                out.setdefault(key, _parse_vector(vec))
        return out

    def apply(self, change: Change) -> dict:
        errors = _errors()
        try:
            return self._apply(change)
        except (IndexMissing, IndexCorrupt, IndexWriteError):  # e.g. from embed_sentences
            self.conn.rollback()
            raise
        except (StoreUnavailable, *errors) as exc:
            self.conn.rollback()
            self.close()
            if exc.args and exc.args[0] == 1205:  # see the module docstring: a crash's leftover transaction
                raise IndexWriteError(
                    f"could not write the index at {self.location}: rows it needs are still locked by a write that "
                    "a crash or stop of the database server interrupted, and seekdb does not release them (still "
                    "held 29 minutes after a restart here). Nothing was changed and the index can still be read; "
                    f"to write again, copy it: python -m ingest --from-index {self.location} --index NEW_LOCATION (a "
                    "folder or another database), then use that") from exc
            raise IndexWriteError(f"could not write the index at {self.location} ({exc.__class__.__name__}: "
                                  f"{exc}); what was not committed is rolled back — run the same command again "
                                  "(unchanged passages are not embedded twice)") from exc
        except BaseException:  # Ctrl-C, exit: never leave the transaction open (module docstring)
            self.conn.rollback()
            raise
        finally:
            self._df.clear()

    def _apply(self, change: Change) -> dict:
        db = self.conn
        self._ensure_tables(change.dimension)
        if change.rebuild:
            for table in (T_PASSAGES, T_DOCS, T_SENTENCES):
                db.execute(f"DROP TABLE IF EXISTS {table}")
            db.execute(f"DELETE FROM {T_MANIFEST}")
            self._ensure_tables(change.dimension)
        step = self.cfg.seekdb_txn_rows
        written = 0
        # a writer that hangs with its connection open (its process stopped, not dead) holds its
        # locks until the engine times the transaction out: bound that (default: a day). A dead
        # connection is rolled back at once; a server crash is another matter (module docstring)
        db.execute("SET SESSION ob_trx_timeout = %s", [int(self.cfg.seekdb_txn_timeout_s * 1e6)])
        db.begin()

        def progress(rows: int) -> None:
            nonlocal written
            written += rows
            if written >= step:  # a load this large commits in steps (see the module docstring)
                db.commit()
                db.begin()
                written = 0

        for batch in iter_batches(list(change.removed_docs), self.cfg.seekdb_batch):
            marks = ",".join(["%s"] * len(batch))
            db.execute(f"DELETE FROM {T_PASSAGES} WHERE doc_id IN ({marks})", batch)
            db.execute(f"DELETE FROM {T_DOCS} WHERE doc_id IN ({marks})", batch)
        for batch in iter_batches(list(change.stale_chunks), self.cfg.seekdb_batch):
            db.execute(f"DELETE FROM {T_PASSAGES} WHERE chunk_id IN ({','.join(['%s'] * len(batch))})", batch)
        seq = int(db.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {T_DOCS}")[0][0])
        for doc in change.documents:
            seq += 1
            db.execute(f"INSERT INTO {T_DOCS} (doc_id, seq, body) VALUES (%s, %s, %s) "
                       "ON DUPLICATE KEY UPDATE body = VALUES(body)",
                       [doc.doc_id, seq, json.dumps(asdict(doc), ensure_ascii=False)])
        for sql, params, rows in _ahead(self._passage_statements(change.passages)):
            db.execute(sql, params)
            progress(rows)
        self._write_sentences(change)
        counts = db.execute(f"SELECT (SELECT COUNT(*) FROM {T_PASSAGES}), (SELECT COUNT(*) FROM {T_DOCS})")[0]
        manifest = {
            "format_version": FORMAT_VERSION, "store": "seekdb", "model_id": change.model_id,
            "dimension": int(change.dimension), "chunk_count": int(counts[0]), "document_count": int(counts[1]),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "index_kind": "seekdb-hnsw",
            **change.manifest,
        }
        db.execute(f"REPLACE INTO {T_MANIFEST} (k, v) VALUES ('manifest', %s)", [json.dumps(manifest)])
        db.commit()
        self._manifest = manifest
        return manifest

    def _passage_statements(self, passages: Sequence) -> Iterator[tuple[str, list, int]]:
        """One REPLACE per batch of passages: (sql, params, rows)."""
        for batch in iter_batches(passages, self.cfg.seekdb_batch):
            params = []
            for row in batch:
                params += [row.chunk.chunk_id, row.chunk.doc_id, record_hash(row.chunk, row.embed_key),
                           row.embed_key, json.dumps(asdict(row.chunk), ensure_ascii=False),
                           " ".join(terms(row.keyword_text)) or "\u2205", _vector(row.vector)]
            yield (f"REPLACE INTO {T_PASSAGES} (chunk_id, doc_id, record_hash, embed_key, chunk, terms, embedding) "
                   f"VALUES {', '.join(['(%s, %s, %s, %s, %s, %s, %s)'] * len(batch))}", params, len(batch))

    def _write_sentences(self, change: Change) -> None:
        """Sentence vectors of the written passages: stored ones kept, the others embedded. A
        sentence of a removed passage stays (keyed by its text, it may serve another)."""
        if change.sentence_texts is None or not change.passages:
            return
        texts = change.sentence_texts([row.chunk for row in change.passages])
        known = set(self.sentence_vectors(texts)) if texts else set()
        todo = [t for t in texts if t not in known]
        change.sentences_reused = len(texts) - len(todo)
        if not todo or change.embed_sentences is None:
            return
        vectors = change.embed_sentences(todo)
        change.sentences_embedded = len(todo)
        for batch in iter_batches(list(zip(todo, vectors)), self.cfg.seekdb_batch):
            self.conn.execute(f"REPLACE INTO {T_SENTENCES} (id, vec) VALUES {', '.join(['(%s, %s)'] * len(batch))}",
                              [x for t, v in batch for x in (_sentence_id(t), _vector(v))])
