"""Benchmarks: `python -m bench.NAME`, each printing its figures and ending with one JSON line."""
