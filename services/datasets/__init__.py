"""Data sets: the packaged fitz-gov evaluation data, read in one place.

Every tool (eval, bench, train) may import this package, and so may the sample-corpus writer of the ingest
CLI and the launcher. It imports nothing of ours (a contract in ``pyproject.toml``, run by ``make lint``), so
reading a data set never pulls in a pipeline, an app or a tool.
"""
