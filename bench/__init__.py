"""Benchmarks (``python -m bench``): pipeline throughput and latency on this machine, and how
exact and approximate dense search scale with synthetic collections. Not tests: numbers."""
