"""Executors: who runs the fit jobs of a grid.

Every executor takes the same :mod:`job <lgenet.runs.jobs>` list and calls
``on_done(outcome)`` in the driver as each job finishes; jobs write their own outputs atomically,
so the driver can be killed at any moment and a rerun resumes. Executors:

* ``local``   -- one job after another in this process (default; per-epoch progress bar);
* ``process`` -- ``workers`` jobs at a time in spawned worker processes (e.g. two single-thread
  fits side by side on a 2-core machine, or several fits sharing one GPU);
* ``ray``     -- every job a Ray task (optional extra ``lgenet[ray]``), on a local Ray instance or an
  existing cluster (``address``), with resource requests (``threads`` CPUs; ``1 / fits_per_gpu`` of a
  GPU for CUDA jobs). A task whose worker or node dies is retried (``max_retries``); a killed driver
  resumes like a local run. The run directory, the manifest and the images must be on storage that
  every node sees at the same path (a shared file system), because jobs read and write them there.

A job that raises stops the grid after the jobs already running have finished (their fits are
kept); the error is re-raised in the driver.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from lgenet.errors import ConfigError
from lgenet.runs.jobs import FitOutcome, run_job

__all__ = [
    "Execution",
    "EXECUTORS",
    "LocalExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "check_executor",
    "make_executor",
]

log = logging.getLogger("lgenet")
EXECUTORS = ("local", "process", "ray")
OnDone = Callable[[FitOutcome], None]


def _unfinished(jobs: Sequence[Any], on_done: OnDone) -> list[Any]:
    """The jobs still to run; each finished one is reported to ``on_done`` as skipped (a resume)."""
    todo = []
    for job in jobs:
        if job.done():
            on_done(FitOutcome(job, skipped=True))
        else:
            todo.append(job)
    return todo


class LocalExecutor:
    """Jobs one after another in this process."""

    name = "local"

    def __init__(self, *, progress: bool = True) -> None:
        self.progress = progress

    def run(self, jobs: Sequence[Any], on_done: OnDone) -> None:
        for job in jobs:
            if job.done():
                on_done(FitOutcome(job, skipped=True))
                continue
            bar = tqdm(total=job.total_epochs, desc=f"  {job.name}", unit="ep", leave=False, disable=not self.progress)

            def on_epoch(epoch: int, loss: float, bar=bar) -> None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")

            try:
                outcome = run_job(job, on_epoch=on_epoch)
            finally:
                bar.close()
            outcome.worker = "local"
            on_done(outcome)


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGTERM this process when its parent dies, so that a killed driver (``kill``, OOM killer,
    a closed SSH connection) leaves no worker training on for minutes. A no-op elsewhere. Jobs write atomically,
    so a worker killed mid-fit leaves nothing half-written; the rerun resumes."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: best effort only
        return
    if os.getppid() != parent_pid:  # the parent died before the request was made
        os._exit(1)


def _worker_init(threads: int | None, parent_pid: int | None = None) -> None:  # pragma: no cover - workers
    import torch

    if parent_pid is not None:
        die_with_parent(parent_pid)
    if threads:
        torch.set_num_threads(int(threads))
    logging.getLogger("lgenet").setLevel(logging.WARNING)


def _run_in_worker(job: Any) -> FitOutcome:  # pragma: no cover - runs in the worker processes
    outcome = run_job(job)
    outcome.worker = f"pid {os.getpid()}"
    return outcome


class ProcessExecutor:
    """``workers`` jobs at a time, each in a spawned worker process with its own torch threads."""

    name = "process"

    def __init__(self, workers: int = 2, *, threads: int | None = None) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self.threads = threads

    def run(self, jobs: Sequence[Any], on_done: OnDone) -> None:
        todo = _unfinished(jobs, on_done)
        if not todo:
            return
        ctx = mp.get_context("spawn")  # never fork a process that holds torch threads
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(todo)),
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(self.threads, os.getpid()),
        )
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


def _run_in_ray(job, threads: int | None):  # pragma: no cover - runs in Ray workers
    import socket

    import ray
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    logging.getLogger("lgenet").setLevel(logging.WARNING)
    outcome = run_job(job)
    node = ray.get_runtime_context().get_node_id()[:12]
    outcome.worker = f"ray node {node} on {socket.gethostname()}, pid {os.getpid()}"
    return outcome


def _unreachable(address: str | None, timeout: float = 5.0) -> str | None:
    """Why a ``HOST:PORT`` (or ``ray://HOST:PORT``) Ray address cannot be reached, or None. Checked with one
    TCP connection first: ``ray.init`` itself retries an unreachable address for minutes."""
    import socket

    if not address or address in ("auto", "local"):
        return None
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return None  # not HOST:PORT: left to Ray
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"


def check_executor(name: str, ray_address: str | None = None) -> None:
    """Refuse an executor that cannot start here, before a run writes anything (since 0.2.0): an unknown name,
    ``ray`` without Ray installed, or a ``--ray-address`` that no cluster answers."""
    if name not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {list(EXECUTORS)}, got {name!r}")
    if name != "ray":
        return
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray, which is not installed: pip install 'lgenet[ray]' (or pip install ray), "
            "or use --executor local/process; nothing was written"
        ) from None
    why = _unreachable(ray_address)
    if why is not None:
        raise ConfigError(
            f"--ray-address {ray_address}: no Ray cluster answers there ({why}); start one with `ray start --head` "
            "or leave --ray-address out for a local Ray; nothing was written"
        )


class RayExecutor:
    """Every job a Ray task with resource requests; retried when its worker or node dies (see the module
    docstring). ``address``: an existing cluster (``ray start --head`` / ``ray up`` / KubeRay / SLURM
    scripts print it); ``None`` joins the cluster that ``ray.init()`` finds (``RAY_ADDRESS``) or starts
    a local one."""

    name = "ray"

    def __init__(
        self, *, address: str | None = None, threads: int | None = None, fits_per_gpu: int = 1, max_retries: int = 3
    ) -> None:
        if fits_per_gpu < 1:
            raise ConfigError(f"--fits-per-gpu must be >= 1, got {fits_per_gpu}")
        self.address, self.threads, self.fits_per_gpu = address, threads, int(fits_per_gpu)
        self.max_retries = int(max_retries)

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'lgenet[ray]' (or pip install ray)") from None
        if not ray.is_initialized():
            why = _unreachable(self.address)
            if why is None:
                try:
                    ray.init(
                        address=self.address,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.WARNING,
                        configure_logging=False,
                    )
                except ConnectionError as exc:
                    why = str(exc)
            if why is not None:
                raise ConfigError(
                    f"--ray-address {self.address}: no Ray cluster answers there ({why}); start one "
                    "with `ray start --head` or leave --ray-address out for a local Ray"
                )
        return ray

    def resources(self, job) -> dict:
        """What one job asks of the cluster: its torch threads in CPUs, a share of a GPU for CUDA jobs."""
        gpu = str(getattr(job, "device", "cpu")).startswith("cuda")
        return {"num_cpus": max(1, int(self.threads or 1)), "num_gpus": (1.0 / self.fits_per_gpu) if gpu else 0}

    def run(self, jobs: Sequence[Any], on_done: OnDone) -> None:
        todo = _unfinished(jobs, on_done)
        if not todo:
            return
        ray = self._ray()
        task = ray.remote(_run_in_ray)
        pending = {
            task.options(max_retries=self.max_retries, retry_exceptions=False, **self.resources(job)).remote(
                job, self.threads
            ): job
            for job in todo
        }
        error: BaseException | None = None
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    job = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - re-raised below, after running jobs end
                        cause = getattr(exc, "cause", None)
                        if error is None:
                            error = cause if isinstance(cause, BaseException) else exc
                            log.error("fit %s failed: %s; waiting for the running fits to finish", job.name, error)
                            for r in pending:
                                ray.cancel(r)
                        continue
                    on_done(outcome)
        except KeyboardInterrupt:
            for r in pending:
                ray.cancel(r, force=True)
            raise
        if error is not None:
            raise error


@dataclass(frozen=True)
class Execution:
    """Who runs a run's jobs: ``executor`` (``local``, ``process`` or ``ray``), ``workers`` jobs at a time
    (``process``), the Ray cluster at ``ray_address`` (``None``: ``RAY_ADDRESS`` or a local Ray) and, with Ray
    on CUDA, ``fits_per_gpu`` jobs sharing one GPU (each asks 1/n of it)."""

    executor: str = "local"
    workers: int = 1
    ray_address: str | None = None
    fits_per_gpu: int = 1

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(f"executor must be one of {list(EXECUTORS)}, got {self.executor!r}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if not isinstance(self.fits_per_gpu, int) or self.fits_per_gpu < 1:
            raise ConfigError(f"fits_per_gpu must be >= 1, got {self.fits_per_gpu}")

    def make(self, *, threads: int | None = None, progress: bool = True):
        """The executor, with ``threads`` torch threads per job."""
        return make_executor(
            self.executor,
            workers=self.workers,
            threads=threads,
            progress=progress,
            ray_address=self.ray_address,
            fits_per_gpu=self.fits_per_gpu,
        )


def make_executor(
    name: str,
    *,
    workers: int = 1,
    threads: int | None = None,
    progress: bool = True,
    ray_address: str | None = None,
    fits_per_gpu: int = 1,
):
    """The executor called ``name`` (``local``, ``process`` or ``ray``)."""
    if name == "local":
        return LocalExecutor(progress=progress)
    if name == "process":
        return ProcessExecutor(workers, threads=threads)
    if name == "ray":
        return RayExecutor(address=ray_address, threads=threads, fits_per_gpu=fits_per_gpu)
    raise ConfigError(f"--executor must be one of {list(EXECUTORS)}, got {name!r}")
