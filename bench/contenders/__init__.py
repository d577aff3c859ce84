"""Benchmark contenders that are not jobql itself (jobql runs through `jobql serve`)."""
