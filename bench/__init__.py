"""Benchmarks: run as `python -m bench.<name>`; results print as tables."""
