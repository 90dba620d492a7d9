"""Step 1 of ``lgenet run``: validate the whole run before the first byte is written (:func:`prepare_run`).

The config, the manifest, every image (readable, a real frame, no pixels shared between patients), the
folds of every task, every backbone and weights file, the device: a failed validation leaves no trace,
so the fix the error suggests can be run in the same ``--out``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from lgenet.config import RunConfig
from lgenet.conventions.names import check_unique_names
from lgenet.data.inputs import check_distinct_inputs, inputs_record, read_frames
from lgenet.data.manifest import Cohort, load_manifest
from lgenet.data.shift import cohort_profile, frame_features
from lgenet.data.splits import assign_folds
from lgenet.errors import ConfigError, DataError
from lgenet.runs.grid import ensure_writable_dir, parse_model_key
from lgenet.runs.paths import refuse_overwrite
from lgenet.utils import sha256_file

__all__ = ["PreparedRun", "prepare_run"]

log = logging.getLogger("lgenet")


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
    from lgenet.utils import busy_cores

    free = max(1, min(cores, int(round(cores - busy_cores()))))
    if executor == "local":
        return max(1, min(free, int(torch.get_num_threads())))
    return max(1, free // max(workers, 1))


def prepare_run(cfg: RunConfig, *, progress: bool = True, executor: str = "local", workers: int = 1) -> PreparedRun:
    """Validate the whole run (see the module docstring); raise a clear error or return the plan."""
    from lgenet.models import get_spec
    from lgenet.runs.compute import resolve_device, resolve_precision
    from lgenet.training.experiment import grid_models
    from lgenet.training.jobs import initial_weights

    if cfg.manifest is None:
        raise ConfigError("config parameter 'manifest' is required: pass --manifest cohort.csv")
    if "classifier" in cfg.families:
        for arch in cfg.archs:
            get_spec(arch)
    ensure_writable_dir(cfg.out)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    cohort = load_manifest(cfg.manifest, tasks=None, lge_threshold=cfg.lge_threshold)
    # the run never writes over what it reads; its CAM overlays are named by patient ID, one file each
    refuse_overwrite(
        cfg.out,
        [cfg.manifest, cfg.segmentation_run, *(r.image for r in cohort.records), *(r.mask for r in cohort.records)],
        "--out",
    )
    check_unique_names(cohort.patient_ids, f"manifest {cfg.manifest}")
    tasks = [t for t in cfg.tasks if t in cohort.available_tasks]
    skipped = [t for t in cfg.tasks if t not in cohort.available_tasks]
    if not tasks:
        raise DataError(
            f"manifest {cfg.manifest} has labels for none of the requested tasks {list(cfg.tasks)}: "
            "fill 'lge_percent' (task lge) and/or 'event' (task event). "
            + "; ".join(cohort.why_no_labels(t) for t in skipped)
        )
    if skipped:  # since 0.2.0: a task asked for by name is never dropped silently (a misspelled label column)
        whys = [cohort.why_no_labels(t) for t in skipped]
        default = next(f.default for f in dataclasses.fields(RunConfig) if f.name == "tasks")
        if tuple(cfg.tasks) != tuple(default):
            raise DataError(
                "; ".join(whys) + f"; fix the manifest, or leave the task out of --tasks ({', '.join(tasks)})"
            )
        for w in whys:
            log.warning("%s: the task is skipped", w)
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
        from lgenet.training.burden import check_segmentation_run

        check_segmentation_run(cfg.segmentation_run, sorted({p for t in tasks for p in folds[t][1]}))
        from lgenet.runs.seg import check_segmentation_inputs

        for why in check_segmentation_inputs(
            cfg.segmentation_run, cohort.records, manifest_sha256=sha256_file(cfg.manifest)
        ):
            log.warning("%s", why)
    models_by_task = {t: list(models) for t in tasks}
    skipped_models: dict[str, str] = {}
    if {"roi", "stack"} & set(cfg.families):
        from lgenet.training.anatomy import check_anatomy_folds

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
