"""Serving an ASGI app in a background thread on a free loopback port.

The benchmark of the HTTP API and the tests both need the real app on a real socket
inside their own process (to reach its objects), without a second copy of this loop.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(application, timeout_s: float = 60.0) -> Iterator[str]:
    """``application`` served by uvicorn in a thread; yields its base URL, stops it on exit.
    RuntimeError when it has not started within ``timeout_s``."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"the app server on port {port} did not start within {timeout_s:g} s")
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
