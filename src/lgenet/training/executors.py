"""Executors: who runs the fit jobs of a grid.

Every executor takes the same :class:`~lgenet.training.jobs.FitJob` list and calls
``on_done(outcome)`` in the driver as each job finishes; jobs write their own outputs atomically,
so the driver can be killed at any moment and a rerun resumes. Executors:

* ``local``   -- one job after another in this process (default; per-epoch progress bar);
* ``process`` -- ``workers`` jobs at a time in spawned worker processes (e.g. two single-thread
  fits side by side on a 2-core machine, or several fits sharing one GPU).

A job that raises stops the grid after the jobs already running have finished (their fits are
kept); the error is re-raised in the driver.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Sequence

from tqdm.auto import tqdm

from ..errors import ConfigError
from .jobs import FitJob, FitOutcome, run_job

__all__ = ["EXECUTORS", "LocalExecutor", "ProcessExecutor", "make_executor"]

log = logging.getLogger("lgenet")
EXECUTORS = ("local", "process")
OnDone = Callable[[FitOutcome], None]


class LocalExecutor:
    """Jobs one after another in this process."""

    name = "local"

    def __init__(self, *, progress: bool = True) -> None:
        self.progress = progress

    def run(self, jobs: Sequence[FitJob], on_done: OnDone) -> None:
        for job in jobs:
            if job.done():
                on_done(FitOutcome(job, skipped=True))
                continue
            bar = tqdm(total=job.total_epochs, desc=f"  {job.name}", unit="ep", leave=False,
                       disable=not self.progress)

            def on_epoch(epoch: int, loss: float, bar=bar) -> None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")

            try:
                outcome = run_job(job, on_epoch=on_epoch)
            finally:
                bar.close()
            outcome.worker = "local"
            on_done(outcome)


def _worker_init(threads: int | None) -> None:  # pragma: no cover - runs in the worker processes
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    logging.getLogger("lgenet").setLevel(logging.WARNING)


def _run_in_worker(job: FitJob) -> FitOutcome:  # pragma: no cover - runs in the worker processes
    outcome = run_job(job)
    outcome.worker = f"pid {os.getpid()}"
    return outcome


class ProcessExecutor:
    """``workers`` jobs at a time, each in a spawned worker process with its own torch threads."""

    name = "process"

    def __init__(self, workers: int = 2, *, threads: int | None = None, progress: bool = True) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self.threads = threads
        self.progress = progress

    def run(self, jobs: Sequence[FitJob], on_done: OnDone) -> None:
        todo = []
        for job in jobs:
            if job.done():
                on_done(FitOutcome(job, skipped=True))
            else:
                todo.append(job)
        if not todo:
            return
        ctx = mp.get_context("spawn")  # never fork a process that holds torch threads
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(todo)), mp_context=ctx,
                                   initializer=_worker_init, initargs=(self.threads,))
        pending = {pool.submit(_run_in_worker, job): job for job in todo}
        error: BaseException | None = None
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = pending.pop(fut)
                    try:
                        outcome = fut.result()
                    except BaseException as exc:  # noqa: BLE001 - re-raised below, after running jobs end
                        if error is None:
                            error = exc
                            log.error("fit %s failed: %s; waiting for the running fits to finish", job.name, exc)
                            for f in pending:
                                f.cancel()
                        continue
                    on_done(outcome)
                pending = {f: j for f, j in pending.items() if not f.cancelled()}
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if error is not None:
            raise error


def make_executor(name: str, *, workers: int = 1, threads: int | None = None, progress: bool = True):
    """The executor called ``name`` (``local`` or ``process``)."""
    if name == "local":
        return LocalExecutor(progress=progress)
    if name == "process":
        return ProcessExecutor(workers, threads=threads, progress=progress)
    raise ConfigError(f"--executor must be one of {list(EXECUTORS)}, got {name!r}")
