"""Parsing rich files (.docx .pdf .html) in a child process bounded in time and memory.

The checks in ``limits`` refuse the known bombs cheaply; this contains the rest. A parse
that runs past ``parse_timeout_s`` is killed, and one that allocates past
``parse_memory_bytes`` fails in the child, never in the app. The child is a fresh
interpreter running ``serve``, not a fork: the app holds torch and its threads, where a
fork can deadlock, and its address space (1 GB with torch imported) would eat the cap.
One child serves every file of a run (starting it costs ~0.7 s, a file ~1 ms more than
in-process) and is replaced after a file ends it.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
import traceback
from pathlib import Path

from settings import ChunkSettings

from .errors import LoadError
from .limits import mb, over

log = logging.getLogger(__name__)
_ROOT = Path(__file__).resolve().parents[1]  # holds ingest/ and settings.py
_HEADER = struct.Struct("!Q")  # length of the pickled message that follows
_READ_BLOCK = 1 << 20
_CHILD = "import sys; from ingest.sandbox import serve; serve(int(sys.argv[1]))"


def _write(stream, message) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    """``n`` bytes from a pipe; TimeoutError past ``deadline``, EOFError if the child died."""
    buf = bytearray()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                raise TimeoutError
        chunk = os.read(fd, min(n - len(buf), _READ_BLOCK))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _read(fd: int, deadline: float | None = None):
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return pickle.loads(_read_exact(fd, size, deadline))


class ParseFailed(Exception):
    """An error the child did not anticipate, carried back by name (see ``error_type``)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _timeout_reason(cfg: ChunkSettings) -> LoadError:
    return over(f"parsing took longer than {cfg.parse_timeout_s:g} s", "parse_timeout_s")


def _memory_reason(cfg: ChunkSettings, died: str = "") -> LoadError:
    need = f"more than {mb(cfg.parse_memory_bytes)} of memory"
    what = f"the parser process died ({died}), most likely needing {need}" if died else f"parsing needs {need}"
    return over(what, "parse_memory_bytes")


class Parser:
    """Parses rich files for one run; the child starts on the first one (``with`` closes it).

    Where no child can be started (no ``select.poll``/``resource``, or the start fails)
    files are parsed in this process, with the static checks but without the bounds.
    """

    def __init__(self, cfg: ChunkSettings) -> None:
        self.cfg = cfg
        self._proc: subprocess.Popen | None = None
        self._in_process = not cfg.parse_in_subprocess or not hasattr(select, "poll") or os.name != "posix"

    def __enter__(self) -> "Parser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def parse(self, suffix: str, data: bytes) -> str:
        from .loaders import load_raw

        if self._in_process or not self._start():
            return load_raw(Path("file" + suffix), data, self.cfg)
        proc = self._proc
        try:
            _write(proc.stdin, (suffix, data, self.cfg))
            reply = _read(proc.stdout.fileno(), time.monotonic() + self.cfg.parse_timeout_s)
        except TimeoutError:
            self._stop()
            raise _timeout_reason(self.cfg) from None
        except (EOFError, OSError):
            raise self._died(self._stop()) from None
        except BaseException:  # a garbled reply, Ctrl-C: the child's state is unknown
            self._stop()
            raise
        kind, *rest = reply
        if kind == "ok":
            return rest[0]
        if kind == "refused":
            raise LoadError(rest[0])
        if kind == "memory":
            self._stop()  # the child exits after a MemoryError; its heap is not worth keeping
            raise _memory_reason(self.cfg)
        error_type, message, trace = rest
        log.debug("parser child failed on a %s file:\n%s", suffix, trace)
        raise ParseFailed(error_type, message)

    def close(self) -> None:
        self._stop()

    def _died(self, returncode: int | None) -> LoadError:
        if returncode == -signal.SIGALRM:  # the child's own timer: the parent was not reading
            return _timeout_reason(self.cfg)
        if returncode is not None and returncode < 0:  # killed: the OOM killer, or a failed allocation in C
            return _memory_reason(self.cfg, died=_describe(returncode))
        return LoadError(f"the parser process ended unexpectedly ({_describe(returncode)})")

    def _start(self) -> bool:
        if self._proc is not None:
            return True
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
        started = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(self.cfg.parse_memory_bytes)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True,
                start_new_session=True,  # a terminal's Ctrl-C is the parent's to handle
            )
            if _read(self._proc.stdout.fileno()) != ("ready",):
                raise OSError("unexpected first message")
        except (OSError, EOFError, pickle.UnpicklingError, struct.error) as exc:
            self._stop()
            log.warning("cannot start the parser process (%s); parsing in this process, "
                        "without the time and memory bounds", exc)
            self._in_process = True
            return False
        log.debug("parser process %d ready in %.2f s", self._proc.pid, time.monotonic() - started)
        return True

    def _stop(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        return code


def _describe(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def _cap_memory(limit: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _out_of_memory(exc: BaseException | None) -> bool:
    """Whether the cap caused ``exc``: a MemoryError, or libxml2's ERR_NO_MEMORY, which
    lxml raises as a syntax error ("unknown error") and a loader may have wrapped."""
    from lxml import etree

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError):
            return True
        log_entries = getattr(exc, "error_log", None) if isinstance(exc, etree.LxmlError) else None
        if log_entries and any(e.type == etree.ErrorTypes.ERR_NO_MEMORY for e in log_entries):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def serve(memory_bytes: int) -> None:
    """The child: read (suffix, bytes, settings), answer with the text or the reason."""
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library's stray print must not corrupt the replies
    requests = sys.stdin.buffer.fileno()
    # Import the parsers before the cap, so the cap bounds parsing, not importing.
    import bs4  # noqa: F401
    import docx  # noqa: F401
    import pypdf  # noqa: F401

    from .loaders import load_raw

    _cap_memory(memory_bytes)
    _write(channel, ("ready",))
    while True:
        try:
            suffix, data, cfg = _read(requests)
        except EOFError:
            return
        # A backstop if the parent is gone: SIGALRM's default action ends this process.
        signal.setitimer(signal.ITIMER_REAL, cfg.parse_timeout_s)
        try:
            reply = ("ok", load_raw(Path("file" + suffix), data, cfg))
        except Exception as exc:  # noqa: BLE001 - reported to the parent by name
            if _out_of_memory(exc):
                reply = ("memory",)
            elif isinstance(exc, LoadError):
                reply = ("refused", str(exc))
            else:
                reply = ("error", exc.__class__.__name__, str(exc), traceback.format_exc())
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        del data
        try:
            _write(channel, reply)
        except MemoryError:
            _write(channel, ("memory",))
        if reply[0] == "memory":
            return
