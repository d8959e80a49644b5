"""Benchmarks: standalone scripts that bring up the whole pipeline and print figures.

Run them from the repository root, e.g. `.venv/bin/python benchmarks/orchestration.py`.
See benchmarks/README.md.
"""
