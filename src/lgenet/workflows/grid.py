"""Orchestration: ``run_experiment(cfg)`` -- validate, open the run directory, run the jobs, evaluate, report.

This layer sits above :mod:`lgenet.training` (jobs, planning, evaluation), :mod:`lgenet.runs` (the run
folder, executors) and :mod:`lgenet.report`; none of them imports it. The order of work is what makes a run safe to kill:

1. **Validate everything before the first byte is written** (:func:`~lgenet.workflows.grid_prepare.prepare_run`): the config, the
   manifest, every image (readable, a real frame, no pixels shared between patients), the folds of
   every task, every backbone and weights file, the device. A failed validation leaves no trace, so
   the fix the error suggests can be run in the same ``--out``.
2. **Open the run directory** under a lock: remove temp files a killed process left; compare the
   saved settings, inputs (manifest and image hashes) and compute settings (device, precision,
   threads per fit) with this run's. A directory that already holds a finished fit is resumed only
   when all of them match; one that holds none is restarted with the new settings.
3. **Run the jobs** with the chosen executor; every fit is written atomically and skipped when done.
4. **Evaluate** all models together, write run.json, then the report.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lgenet import __version__
from lgenet.config import RunConfig
from lgenet.data.inputs import diff_inputs
from lgenet.errors import ConfigError
from lgenet.runs.executors import Execution, check_executor
from lgenet.runs.grid import RunDir, parse_model_key
from lgenet.utils import atomic_write_text
from lgenet.workflows.grid_prepare import PreparedRun, prepare_run

__all__ = ["run_experiment", "prepare_run", "PreparedRun", "RunResult"]

log = logging.getLogger("lgenet")


@dataclass
class RunResult:
    out_dir: Path
    metrics: list[dict] = field(default_factory=list)
    table: str = ""
    figures: list[Path] = field(default_factory=list)
    fits_run: int = 0
    fits_skipped: int = 0
    table_printed: bool = False


# ----------------------------------------------------------------------------------- 2. run directory
def _open_run_dir(rd: RunDir, prep: PreparedRun) -> int:
    """Check a resumed directory against this run (or restart an unfinished one); returns finished fits.
    The run-folder protocol (:meth:`lgenet.runs.folder.RunFolder.open`) decides; its compute decision is this run's."""
    decision = rd.open(
        prep.cfg,
        inputs_diff=lambda old: diff_inputs(old, prep.inputs),
        inputs_sha256=prep.inputs["manifest_sha256"],
        device=prep.device,
        precision=prep.precision,
        threads=prep.threads,
        threads_pinned=bool(prep.cfg.num_threads),
    )
    prep.precision, prep.threads = decision.precision, decision.threads
    return decision.finished


def _write_start(rd: RunDir, prep: PreparedRun) -> None:
    """config.yaml, inputs.json, folds_<task>.csv and the preprocessed inputs, before the first fit."""
    import torch

    from lgenet.data.preprocess import Preprocessor
    from lgenet.models import get_spec
    from lgenet.training.jobs import inputs_cache_matches, write_inputs_cache

    cfg = prep.cfg
    rd.write_start(cfg, inputs=prep.inputs, profile=prep.profile, folds={t: prep.folds[t] for t in prep.tasks})
    sizes = sorted(
        {
            cfg.image_size or get_spec(parse_model_key(m).arch).input_size
            for m in prep.models
            if parse_model_key(m).family == "classifier"
        }
    )
    pids = [r.patient_id for r in prep.cohort.records]
    frames_key = json.dumps([r["frame_sha256"] for r in prep.inputs["rows"]])
    for size in sizes:
        pre = Preprocessor(size, tuple(cfg.intensity_percentiles))
        fp = json.dumps(
            {
                "size": size,
                "percentiles": list(cfg.intensity_percentiles),
                "frames": frames_key,
                "preprocess": Preprocessor.VERSION,
            }
        )
        path = rd.inputs_cache(size)
        if not inputs_cache_matches(path, fp):
            write_inputs_cache(path, torch.stack([pre(f) for f in prep.frames]), pids, fp)


def _environment(prep: PreparedRun) -> dict:
    import sklearn
    import timm
    import torch

    dev = prep.device
    return {
        "lgenet": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "device": dev,
        "device_name": torch.cuda.get_device_name(dev) if dev.startswith("cuda") else platform.processor() or "cpu",
        "precision": prep.precision,
        "torch_threads_per_fit": prep.threads,
    }


# ----------------------------------------------------------------------------------- main entry
def run_experiment(
    cfg: RunConfig,
    *,
    progress: bool = True,
    keep_models: str = "best",
    report: bool = True,
    on_metrics: Callable[[RunResult], None] | None = None,
    execution: Execution | None = None,
    **execution_values,
) -> RunResult:
    """Run the configured grid with cross-validation, resume finished fits, evaluate, plot and report.

    Args:
        cfg: the run's configuration (``cfg.manifest`` and ``cfg.out`` are required).
        progress: progress bars.
        keep_models: ``best`` keeps the fold models of each task's best model (for ``lgenet predict``);
            ``all`` keeps every fold model; ``none`` keeps none once the report (with its CAMs) is written
            (``lgenet demo``: disk; ``model.removed`` records each deleted file).
        report: write report.html and figure1 at the end (``lgenet report RUN_DIR`` does it later).
        on_metrics: called with the result as soon as the metrics exist, before the outcomes analysis
            and the report (the CLI prints the table there, so it never waits for the CAMs).
        execution: who runs the fits (:class:`~lgenet.runs.executors.Execution`: ``local``, one fit after
            another; ``process``, ``workers`` fits at a time; ``ray``, every fit a Ray task, needing the
            ``[ray]`` extra and, across machines, a shared file system); or give its fields as keywords
            (``executor="process", workers=2``).

    Returns:
        A :class:`RunResult` with the metrics rows and the printed summary table.
    """
    if execution is None:
        try:
            execution = Execution(**execution_values)
        except TypeError as exc:
            raise ConfigError(
                f"run_experiment: {exc}; the execution settings are {list(Execution.__dataclass_fields__)}"
            ) from None
    elif execution_values:
        raise ConfigError("run_experiment: give the execution either as Execution or as keywords, not both")
    if keep_models not in ("best", "all", "none"):
        raise ConfigError(f"keep_models must be 'best', 'all' or 'none', got {keep_models!r}")
    check_executor(execution.executor, execution.ray_address)  # Ray importable before anything is written
    prep = prepare_run(cfg, progress=progress, executor=execution.executor, workers=execution.workers)
    rd = RunDir(cfg.out)
    with rd.lock():
        _open_run_dir(rd, prep)
        ex = execution.make(threads=prep.threads, progress=progress)
        with rd.file_log():
            _write_start(rd, prep)
            result = _run(rd, prep, ex, progress, keep_models)
            if on_metrics is not None:
                on_metrics(result)
            if prep.cfg.outcomes:
                _run_outcomes(rd, progress)
            if report:
                _write_report(rd.path, progress)
            if keep_models == "none":
                _remove_fold_models(rd, prep)
    return result


def _remove_fold_models(rd: RunDir, prep: PreparedRun) -> None:
    """``keep_models='none'``: delete every fold network once the report (and its CAMs) is written."""
    from lgenet.runs.grid import parse_model_key

    removed = 0
    for task, models in prep.models_by_task.items():
        for m in models:
            if parse_model_key(m).family == "classifier":
                removed += rd.delete_models(task, m, prep.cfg.folds, record=True)
    if removed:
        log.info(
            "removed %d fold model file(s) (--keep-models none); the predictions, metrics and report remain", removed
        )


def _run_outcomes(rd: RunDir, progress: bool) -> None:
    """The outcomes analysis of a finished grid; a cohort it cannot serve (no covariate, one class)
    is logged and skipped, never a failed run: ``lgenet outcomes RUN_DIR`` redoes it."""
    from lgenet.errors import LgenetError
    from lgenet.outcomes import run_outcomes

    try:
        run_outcomes(rd.path, progress=progress)
        log.info("outcomes: %s", rd.path / "outcomes" / "outcomes.json")
    except LgenetError as exc:
        log.warning("outcomes analysis skipped: %s (run `lgenet outcomes %s` after fixing it)", exc, rd.path)


def _run(rd: RunDir, prep: PreparedRun, ex, progress: bool, keep_models: str) -> RunResult:
    from tqdm.auto import tqdm

    from lgenet.training.experiment import ModelPruner, evaluate_grid, plan_jobs

    cfg = prep.cfg
    t_start = time.time()
    for t in prep.skipped_tasks:
        if t not in prep.skipped_models:
            log.info("task %s skipped: the manifest has no labels for it", t)
    log.info(
        "lgenet %s: %d manifest rows, %d patients, tasks %s, models %s, device %s (%s), %d thread(s) per fit, "
        "executor %s",
        __version__,
        len(prep.cohort.records),
        len(prep.cohort.patient_ids),
        prep.tasks,
        prep.models,
        prep.device,
        prep.precision,
        prep.threads,
        ex.name,
    )
    for t, why in prep.skipped_models.items():
        log.warning("families roi/stack skipped for task %s: %s", t, why)
    jobs = plan_jobs(
        cfg,
        rd.path,
        prep.tasks,
        models=prep.models,
        device=prep.device,
        precision=prep.precision,
        threads=prep.threads,
        models_by_task=prep.models_by_task,
    )
    n_done = sum(j.done() for j in jobs)
    if n_done:
        msg = f"resuming {rd.path}: {n_done} of {len(jobs)} fits already done, {len(jobs) - n_done} to run"
        log.info(msg)
        if progress:
            print(msg)
    result = RunResult(out_dir=rd.path)
    pruner = ModelPruner(rd, jobs, cfg.folds) if keep_models in ("best", "none") else None
    grid = tqdm(total=len(jobs), initial=n_done, desc="grid", unit="fit", disable=not progress)

    def on_done(outcome) -> None:
        if outcome.skipped:
            result.fits_skipped += 1
        else:
            result.fits_run += 1
            grid.update(1)
            grid.set_postfix_str(outcome.job.name)
            if outcome.worker.startswith(("pid", "ray")):  # the worker's own log lines stay in the worker
                log.info("fit %s done in %.1f s (%s)", outcome.job.name, outcome.seconds, outcome.worker)
        if pruner is not None:
            pruner.done(outcome)

    try:
        ex.run(jobs, on_done)
    finally:
        grid.close()
    ev = evaluate_grid(rd, cfg, prep.tasks, prep.models, prep.models_by_task)
    atomic_write_text(
        rd.run_json_path,
        json.dumps(
            {
                "manifest": Path(cfg.manifest).name,
                "manifest_sha256": prep.inputs["manifest_sha256"],
                "n_rows": len(prep.cohort.records),
                "tasks": prep.tasks,
                "tasks_skipped": prep.skipped_tasks,
                "models_skipped": prep.skipped_models,
                "fits_run": result.fits_run,
                "fits_skipped": result.fits_skipped,
                "executor": ex.name,
                "seconds": round(time.time() - t_start, 1),
                "environment": _environment(prep),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
            indent=2,
        ),
    )
    log.info("summary:\n%s", ev.table)
    result.metrics, result.table, result.figures = ev.metrics, ev.table, ev.figures
    return result


def _write_report(out: Path, progress: bool = False) -> None:
    """The study report. The metrics are already saved, so a failure here is logged as an error, with
    its traceback, and the run still succeeds."""
    try:
        from lgenet.report import write_report

        msg = "writing the report (out-of-fold CAMs of each task's best model, their sanity checks, figures)"
        log.info(msg)
        if progress:  # minutes on a CPU: say what is being done
            print(msg + "; on a CPU this takes a few minutes", flush=True)
        write_report(out)
    except Exception as exc:  # noqa: BLE001 - the finished metrics must not be lost to a figure or CAM problem
        import traceback

        from lgenet.errors import short_reason

        log.error(
            "the report could not be written (%s); the run's metrics are saved. Retry with `lgenet report %s` "
            "after fixing the problem (details in run.log)",
            short_reason(exc),
            out,
        )
        log.info("report failure details:\n%s", "".join(traceback.format_exception(exc)))
