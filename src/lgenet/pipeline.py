"""Orchestration: ``run_experiment(cfg)`` -- validate, open the run directory, run the jobs, evaluate, report.

This layer sits above :mod:`lgenet.training` (jobs, executors, planning, evaluation) and
:mod:`lgenet.report`; neither imports it. The order of work is what makes a run safe to kill:

1. **Validate everything before the first byte is written** (:func:`prepare_run`): the config, the
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
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .config import RunConfig
from .data.inputs import check_distinct_inputs, diff_inputs, inputs_record, read_frames
from .data.manifest import Cohort, load_manifest
from .data.shift import cohort_profile, frame_features
from .data.splits import assign_folds
from .errors import ConfigError, DataError
from .rundir import RunDir, ensure_writable_dir, parse_model_key
from .utils import atomic_write_text, sha256_file

__all__ = ["run_experiment", "prepare_run", "PreparedRun", "RunResult", "RESUME_FREE"]

log = logging.getLogger("lgenet")

#: config fields that may change between a run and its resumption without changing results;
#: the compute settings (device, precision, threads per fit) are checked per fit instead
RESUME_FREE = {
    "out",
    "num_threads",
    "device",
    "manifest",
    "outcomes",
    "covariates",
    "outcome_measures",
    "outcome_cnn",
    "outcome_C",
    "outcome_recalibrate",
    "cox_penalizer",
    "outcome_horizon",
}  # change no fit


@dataclass
class RunResult:
    out_dir: Path
    metrics: list[dict] = field(default_factory=list)
    table: str = ""
    figures: list[Path] = field(default_factory=list)
    fits_run: int = 0
    fits_skipped: int = 0
    table_printed: bool = False


@dataclass
class PreparedRun:
    """A validated run, ready to write: nothing of it is on disk yet."""

    cfg: RunConfig
    cohort: Cohort
    tasks: list[str]
    skipped_tasks: list[str]
    models: list[str]
    frames: list[np.ndarray]
    inputs: dict
    profile: dict
    folds: dict[str, tuple[dict[str, int], dict[str, int]]]
    device: str
    precision: str
    threads: int
    models_by_task: dict[str, list[str]] = field(default_factory=dict)
    skipped_models: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------------- 1. validation
def _threads_per_fit(cfg: RunConfig, executor: str, workers: int, device: str) -> int:
    """Torch threads per fit: ``--threads``, else the cores left free by what runs here now
    (:func:`lgenet.utils.busy_cores`), shared by the workers. Torch threads that compete with other
    processes for a core spin and wait: on this 2-core machine, with other jobs keeping the load average
    near 3, a 2-thread segmentation epoch took ~8x its idle time and a 1-thread epoch ~1.5x the idle
    1-thread time (docs/results.md). A resume reuses the finished fits' thread count (:func:`_open_run_dir`)."""
    import torch

    if cfg.num_threads:
        return int(cfg.num_threads)
    if executor == "ray":  # the cluster's nodes are not this machine: one CPU (and thread) per task
        return 1
    cores = os.cpu_count() or 1
    if device.startswith("cuda"):
        return max(1, min(int(torch.get_num_threads()), cores // max(workers, 1)))
    from .utils import busy_cores

    free = max(1, min(cores, int(round(cores - busy_cores()))))
    if executor == "local":
        return max(1, min(free, int(torch.get_num_threads())))
    return max(1, free // max(workers, 1))


def prepare_run(cfg: RunConfig, *, progress: bool = True, executor: str = "local", workers: int = 1) -> PreparedRun:
    """Validate the whole run (see the module docstring); raise a clear error or return the plan."""
    from .models import get_spec
    from .training.experiment import grid_models
    from .training.jobs import initial_weights
    from .training.trainer import resolve_device, resolve_precision

    if cfg.manifest is None:
        raise ConfigError("config parameter 'manifest' is required: pass --manifest cohort.csv")
    if "classifier" in cfg.families:
        for arch in cfg.archs:
            get_spec(arch)
    ensure_writable_dir(cfg.out)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    cohort = load_manifest(cfg.manifest, tasks=None, lge_threshold=cfg.lge_threshold)
    tasks = [t for t in cfg.tasks if t in cohort.available_tasks]
    skipped = [t for t in cfg.tasks if t not in cohort.available_tasks]
    if not tasks:
        raise DataError(
            f"manifest {cfg.manifest} has labels for none of the requested tasks {list(cfg.tasks)}: "
            "fill 'lge_percent' (task lge) and/or 'event' (task event)"
        )
    folds = {}
    for task in tasks:
        labels = cohort.labels(task)
        pids = sorted(labels)
        folds[task] = (
            assign_folds(pids, [labels[p] for p in pids], n_splits=cfg.folds, random_state=cfg.seed, task=task),
            labels,
        )
    models = grid_models(cfg)
    for m in models:  # backbone sizes and weights files: loaded now (and cached for the local executor)
        k = parse_model_key(m)
        if k.family != "classifier":
            continue
        size = cfg.image_size or get_spec(k.arch).input_size
        initial_weights(k.arch, k.init, cfg.weights_file(k.arch, k.init), size, cfg.head, cfg.dense_units, cfg.dropout)
    if "burden" in cfg.families:
        from .training.anatomy import check_segmentation_run

        check_segmentation_run(cfg.segmentation_run, sorted({p for t in tasks for p in folds[t][1]}))
    models_by_task = {t: list(models) for t in tasks}
    skipped_models: dict[str, str] = {}
    if {"roi", "stack"} & set(cfg.families):
        from .training.anatomy import check_anatomy_folds

        for t in tasks:
            why = check_anatomy_folds(cfg.segmentation_run, folds[t][0], t)
            if why:
                drop = [m for m in models if parse_model_key(m).family in ("roi", "stack")]
                models_by_task[t] = [m for m in models if m not in drop]
                skipped_models[t] = why
        empty = [t for t in tasks if not models_by_task[t]]
        if len(empty) == len(tasks):
            raise ConfigError("families roi/stack cannot run for any task: " + "; ".join(skipped_models.values()))
        tasks = [t for t in tasks if t not in empty]
        skipped += empty
    frames, metas = read_frames(
        cohort,
        slice=cfg.slice,
        nifti_slice_axis=cfg.nifti_slice_axis,
        nifti_basal_end=cfg.nifti_basal_end,
        progress=progress,
    )
    check_distinct_inputs(cohort, frames)
    record = inputs_record(cohort, frames, sha256_file(cfg.manifest))
    profile = cohort_profile([frame_features(f, m, tuple(cfg.intensity_percentiles)) for f, m in zip(frames, metas)])
    return PreparedRun(
        cfg=cfg,
        cohort=cohort,
        tasks=tasks,
        skipped_tasks=skipped,
        models=models,
        frames=frames,
        inputs=record,
        profile=profile,
        folds=folds,
        device=str(device),
        precision=precision,
        models_by_task=models_by_task,
        skipped_models=skipped_models,
        threads=_threads_per_fit(cfg, executor, workers, str(device)),
    )


# ----------------------------------------------------------------------------------- 2. run directory
def _compute(prep: PreparedRun) -> dict:
    from .training.jobs import compute_signature

    return compute_signature(prep.device, prep.precision, prep.threads)


def _reset(rd: RunDir) -> None:
    """Forget an unfinished start (no finished fit): fold files, inputs record, cache, partial fits."""
    for p in list(rd.path.glob("folds_*.csv")) + [rd.inputs_path]:
        if p.exists():
            p.unlink()
    for d in (rd.cache_dir, rd.path / "fits"):
        if d.exists():
            shutil.rmtree(d)


def _open_run_dir(rd: RunDir, prep: PreparedRun) -> int:
    """Check a resumed directory against this run (or restart an unfinished one); returns finished fits."""
    rd.clean_temp_files()
    finished = rd.finished_fits()
    old_cfg = rd.saved_config_dict()
    if finished and old_cfg is None:
        state = "damaged" if rd.config_path.exists() else "missing"
        raise ConfigError(
            f"run directory {rd.path} holds {len(finished)} finished fit(s) but its config.yaml is {state}, "
            "so their settings cannot be checked against this run's; restore config.yaml, or use a new --out"
        )
    if finished and rd.inputs_path.exists() and rd.read_inputs() is None:
        raise ConfigError(
            f"run directory {rd.path}: inputs.json is damaged, so the finished fits' inputs cannot be "
            "checked against this run's; restore it, or use a new --out"
        )
    reasons = []
    if old_cfg is not None:
        old_cfg = {**RunConfig().to_dict(), **old_cfg}  # parameters added since: their defaults
        new = prep.cfg.to_dict()
        diff = sorted(k for k in set(old_cfg) | set(new) if k not in RESUME_FREE and old_cfg.get(k) != new.get(k))
        if diff:
            reasons.append(
                "started with different settings ("
                + ", ".join(f"{k}: {old_cfg.get(k)!r} -> {new.get(k)!r}" for k in diff[:6])
                + ")"
            )
    old_inputs = rd.read_inputs()
    if old_inputs is not None:
        d = diff_inputs(old_inputs, prep.inputs)
        if d:
            reasons.append("started on other inputs: " + "; ".join(d))
    elif finished and rd.manifest_sha256() not in (None, prep.inputs["manifest_sha256"]):
        reasons.append("started on other inputs: the manifest's content (SHA-256) differs")
    if reasons and finished:
        raise ConfigError(
            f"run directory {rd.path} was {' and '.join(reasons)}. It holds {len(finished)} finished fit(s); resuming "
            "would mix results. Use the same settings and inputs to resume, or a new --out for a new run"
        )
    if reasons:
        log.info("run directory %s holds no finished fit; starting it again (%s)", rd.path, "; ".join(reasons))
        _reset(rd)
    now = _compute(prep)
    recorded = []
    for f in finished:
        try:
            c = json.loads(f.read_text()).get("compute")
        except (OSError, ValueError):
            continue
        if c:
            recorded.append(c)
    from .training.jobs import resume_precision, same_compute

    precision = resume_precision(prep.cfg.precision, prep.precision, prep.device, recorded)
    if precision != prep.precision:
        prep.precision = precision
        now = _compute(prep)
    if recorded and not prep.cfg.num_threads and now.get("device") == "cpu" and recorded[0].get("threads"):
        t = int(recorded[0]["threads"])
        if t != prep.threads:  # not pinned by --threads: resume with the finished fits' own thread count
            msg = (
                f"resuming with {t} torch thread(s) per fit, as the finished fits used (the machine's load "
                f"would suggest {prep.threads}); pass --threads to choose"
            )
            log.warning(msg)
            prep.threads = t
            now = _compute(prep)
    for old in recorded:
        if not same_compute(old, now):
            raise ConfigError(
                f"run directory {rd.path}: finished fits were computed with {_describe(old)}; this run would use "
                f"{_describe(now)}. Their numbers differ in the last digits, so the run would mix them. Resume with "
                f"the same settings (e.g. --threads {old.get('threads')} --device {old.get('device')} --precision "
                f"{old.get('precision')}, on torch {old.get('torch')}), or use a new --out"
            )
    return len(finished)


def _describe(c: dict) -> str:
    s = f"device {c.get('device')}, precision {c.get('precision')}, torch {c.get('torch')}"
    return s + (f", {c.get('threads')} thread(s) per fit" if c.get("device") == "cpu" else "")


def _write_start(rd: RunDir, prep: PreparedRun) -> None:
    """config.yaml, inputs.json, folds_<task>.csv and the preprocessed inputs, before the first fit."""
    import torch

    from .data.preprocess import Preprocessor
    from .models import get_spec
    from .training.jobs import inputs_cache_matches, write_inputs_cache

    cfg = prep.cfg
    rd.write_config(cfg)
    atomic_write_text(rd.inputs_path, json.dumps(prep.inputs, indent=1))
    atomic_write_text(rd.profile_path, json.dumps(prep.profile, indent=1))
    for task in prep.tasks:
        folds, labels = prep.folds[task]
        rd.write_folds(task, folds, labels)
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


def _add_file_log(rd: RunDir) -> logging.Handler:
    handler = logging.FileHandler(rd.log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    return handler


# ----------------------------------------------------------------------------------- main entry
def run_experiment(
    cfg: RunConfig,
    *,
    progress: bool = True,
    keep_models: str = "best",
    report: bool = True,
    executor: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    fits_per_gpu: int = 1,
    on_metrics: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """Run the configured grid with cross-validation, resume finished fits, evaluate, plot and report.

    Args:
        cfg: the run's configuration (``cfg.manifest`` and ``cfg.out`` are required).
        progress: progress bars.
        keep_models: ``best`` keeps the fold models of each task's best model (for ``lgenet predict``);
            ``all`` keeps every fold model; ``none`` keeps none once the report (with its CAMs) is written
            (``lgenet demo``: disk; ``model.removed`` records each deleted file).
        report: write report.html and figure1 at the end (``lgenet report RUN_DIR`` does it later).
        executor: ``local`` (one fit after another), ``process`` (``workers`` fits at a time) or ``ray``
            (every fit a Ray task; needs the ``[ray]`` extra and, across machines, a shared file system).
        workers: concurrent fits for the ``process`` executor.
        ray_address: the Ray cluster to use (``None``: ``RAY_ADDRESS`` or a local Ray).
        fits_per_gpu: with ``ray`` and a CUDA device, fits that share one GPU (each asks 1/n of it).
        on_metrics: called with the result as soon as the metrics exist, before the outcomes analysis
            and the report (the CLI prints the table there, so it never waits for the CAMs).

    Returns:
        A :class:`RunResult` with the metrics rows and the printed summary table.
    """
    from .training.executors import EXECUTORS, make_executor

    if keep_models not in ("best", "all", "none"):
        raise ConfigError(f"keep_models must be 'best', 'all' or 'none', got {keep_models!r}")
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {list(EXECUTORS)}, got {executor!r}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    prep = prepare_run(cfg, progress=progress, executor=executor, workers=workers)
    rd = RunDir(cfg.out)
    with rd.lock():
        _open_run_dir(rd, prep)
        ex = make_executor(
            executor,
            workers=workers,
            threads=prep.threads,
            progress=progress,
            ray_address=ray_address,
            fits_per_gpu=fits_per_gpu,
        )
        handler = _add_file_log(rd)
        try:
            _write_start(rd, prep)
            result = _run(rd, prep, ex, progress, keep_models)
            if on_metrics is not None:
                on_metrics(result)
            if prep.cfg.outcomes:
                _run_outcomes(rd, progress)
            if report:
                _write_report(rd.path)
            if keep_models == "none":
                _remove_fold_models(rd, prep)
        finally:
            log.removeHandler(handler)
            handler.close()
    return result


def _remove_fold_models(rd: RunDir, prep: PreparedRun) -> None:
    """``keep_models='none'``: delete every fold network once the report (and its CAMs) is written."""
    from .rundir import parse_model_key

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
    from .errors import LgenetError
    from .outcomes import run_outcomes

    try:
        run_outcomes(rd.path, progress=progress)
        log.info("outcomes: %s", rd.path / "outcomes" / "outcomes.json")
    except LgenetError as exc:
        log.warning("outcomes analysis skipped: %s (run `lgenet outcomes %s` after fixing it)", exc, rd.path)


def _run(rd: RunDir, prep: PreparedRun, ex, progress: bool, keep_models: str) -> RunResult:
    from tqdm.auto import tqdm

    from .training.experiment import ModelPruner, evaluate_grid, plan_jobs

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


def _write_report(out: Path) -> None:
    """The study report. The metrics are already saved, so a failure here is logged as an error, with
    its traceback, and the run still succeeds."""
    try:
        from .report import write_report

        log.info("writing the report (out-of-fold CAMs of each task's best model, sanity checks, figures)")
        write_report(out)
    except Exception as exc:  # noqa: BLE001 - the finished metrics must not be lost to a figure or CAM problem
        import traceback

        from .errors import short_reason

        log.error(
            "the report could not be written (%s); the run's metrics are saved. Retry with `lgenet report %s` "
            "after fixing the problem (details in run.log)",
            short_reason(exc),
            out,
        )
        log.info("report failure details:\n%s", "".join(traceback.format_exception(exc)))
