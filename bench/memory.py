"""Memory measurement: resident set size (psutil), sampled in a thread to catch the peak."""

from __future__ import annotations

import gc
import resource
import sys
import threading
import time

import psutil

MB = 1024 * 1024
SAMPLE_S = 0.02


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / MB


def max_rss_mb() -> float:
    """Peak RSS of this process since it started (the kernel's own high-water mark)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (MB if sys.platform == "darwin" else 1024)


def hwm_mb() -> float:
    """Peak RSS of this program since it was exec'd: Linux keeps ``ru_maxrss`` across exec,
    so a spawned child would report its parent's peak; ``VmHWM`` belongs to this image."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return max_rss_mb()


class PeakRSS:
    """``with PeakRSS() as m: ...`` then ``m.start_mb``, ``m.peak_mb``, ``m.end_mb``, ``m.delta_mb``.

    The peak is sampled every 20 ms, so a spike shorter than that can be missed;
    ``max_rss_mb()`` is the exact high-water mark for the whole process. ``pid`` samples
    another process instead (a database server) with its child processes, or only its
    children with ``children_only`` (the engine process an embedded database starts).
    """

    def __init__(self, interval: float = SAMPLE_S, pid: int | None = None, children_only: bool = False):
        self.interval = interval
        self.pid = pid
        self.children_only = children_only
        self.start_mb = self.peak_mb = self.end_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rss_mb(self) -> float:
        if self.pid is None:
            return rss_mb()
        try:
            proc = psutil.Process(self.pid)
            procs = proc.children(recursive=True) + ([] if self.children_only else [proc])
            return sum(p.memory_info().rss for p in procs) / MB
        except psutil.Error:  # it exited (or a child did, between listing and reading)
            return 0.0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss_mb())
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        gc.collect()
        self.start_mb = self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.end_mb = self._rss_mb()
        self.peak_mb = max(self.peak_mb, self.end_mb)

    @property
    def delta_mb(self) -> float:
        """Growth of the resident set during the block (what the block kept, roughly)."""
        return self.end_mb - self.start_mb

    @property
    def peak_delta_mb(self) -> float:
        return self.peak_mb - self.start_mb

    def as_dict(self) -> dict:
        return {"rss_start_mb": round(self.start_mb, 1), "rss_peak_mb": round(self.peak_mb, 1),
                "rss_end_mb": round(self.end_mb, 1), "rss_delta_mb": round(self.delta_mb, 1)}


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
