"""Runs on disk and how their work is done: the run-folder protocol (:mod:`~lgenet.runs.folder`) and its two
layouts (:mod:`~lgenet.runs.grid`, :mod:`~lgenet.runs.seg`), per-patient tables, model keys, jobs and executors,
and the compute record."""
