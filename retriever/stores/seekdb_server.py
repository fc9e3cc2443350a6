"""Start and stop the seekdb server the ``pylibseekdb`` wheel ships, on a loopback port.

For one machine serving several processes (the app and an ingest at once, several app
workers), for the tests and the benchmark. A team runs its own seekdb or OceanBase and
points ``--index seekdb://user@host:port/db`` at it instead.

    python -m retriever.stores.seekdb_server /var/lib/policyqa-seekdb --port 2881
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

from settings import IndexSettings, load_settings


class ServerError(RuntimeError):
    pass


def binary() -> Path:
    """The server executable inside the installed wheel."""
    try:
        import pylibseekdb
    except ImportError as exc:
        raise ServerError("seekdb is not installed (pip install pyseekdb)") from exc
    path = Path(pylibseekdb.__file__).with_name("seekdb")
    if not path.is_file():
        raise ServerError(f"the seekdb wheel carries no server binary at {path}")
    return path


class SeekdbServer:
    """``with SeekdbServer(DIR) as server: server.uri("policyqa")``: a server for the block."""

    def __init__(self, base_dir: str | Path, port: int | None = None, cfg: IndexSettings | None = None):
        from ui.serve import free_port

        self.base_dir = Path(base_dir).resolve()
        self.port = port or free_port()
        self.cfg = cfg or IndexSettings()
        self.process: subprocess.Popen | None = None

    def uri(self, database: str, user: str = "root") -> str:
        return f"seekdb://{user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> "SeekdbServer":
        self.base_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(binary()), "--nodaemon", f"--base-dir={self.base_dir}", "--port", str(self.port),
               "--log-level", "WARN", "--parameter", f"memory_limit={self.cfg.seekdb_memory_limit}",
               "--parameter", f"datafile_size={self.cfg.seekdb_datafile_size}",
               "--parameter", f"log_disk_size={self.cfg.seekdb_log_disk_size}"]
        log = (self.base_dir / "server.out").open("ab")
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.base_dir,
                                        start_new_session=True)
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import pymysql

        deadline = time.monotonic() + self.cfg.seekdb_start_timeout_s
        while True:
            if self.process.poll() is not None:
                tail = (self.base_dir / "server.out").read_text(errors="replace")[-800:]
                raise ServerError(f"seekdb exited with status {self.process.returncode} on start:\n{tail}")
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2).close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerError(f"seekdb did not accept connections on port {self.port} within "
                                      f"{self.cfg.seekdb_start_timeout_s:g} s (logs in {self.base_dir / 'log'})")
                time.sleep(0.5)

    def stop(self, timeout_s: float = 60.0) -> None:
        """Ask the server to stop (SIGTERM), kill it if it has not within ``timeout_s``."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stop it the hard way (tests: a server that dies mid-write)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "SeekdbServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retriever.stores.seekdb_server", description=__doc__.splitlines()[0])
    parser.add_argument("base_dir", help="where the server keeps its data and logs")
    parser.add_argument("--port", type=int, default=2881)
    parser.add_argument("--config", help="TOML settings file (index.seekdb_* sizes)")
    args = parser.parse_args(argv)
    server = SeekdbServer(args.base_dir, args.port, load_settings(args.config).index)
    try:
        server.start()
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"seekdb serving {server.base_dir} on 127.0.0.1:{server.port}; index location: "
          f"{server.uri('policyqa')} (Ctrl-C stops it)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a plain `kill` stops the server too
    try:
        server.process.wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
