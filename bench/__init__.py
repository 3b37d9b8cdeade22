"""Benchmarks for the performance bars P1-P12 (BENCHMARKS.md); never run by the test suite.

Every figure is a ratio against a baseline measured in the same run, on the
same machine: see BENCHMARKS.md for the latest table and `bench/run_all.py`
for the one command that runs them all.
"""
