"""What the outcomes analysis is fitted on: the cohort, its folds, the covariates, the image measures and the
CNN probabilities of a run (or a manifest)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.config.outcome import OutcomeSettings
from lgenet.conventions.thresholds import LGE_THRESHOLD
from lgenet.errors import ConfigError, DataError, ManifestError
from lgenet.outcomes.measures import (
    IMAGE_MEASURES,
    cnn_scores,
    segmentation_measures,
)

__all__ = ["gather_inputs", "covariates_for", "horizon_years"]

log = logging.getLogger("lgenet")


@dataclass
class _Inputs:
    cohort: Any
    folds: dict[str, dict[str, int]]
    fold_source: str
    values: dict[str, dict[str, float]]
    measure_cols: list[str]
    cnn_cols: dict[str, str] = field(default_factory=dict)  # task -> column
    seg_kind: str | None = None
    notes: list[str] = field(default_factory=list)


def _cnn_column(task: str, cfg, settings: OutcomeSettings, available: set[str]) -> tuple[str | None, str]:
    from lgenet.runs.grid import model_key, parse_model_key

    if settings.cnn == "none" or cfg is None:
        return None, "no CNN probability (cnn = none)" if settings.cnn == "none" else "no training run"
    if settings.cnn == "first":
        fam = cfg.families[0]
        if fam == "classifier":
            key = model_key(cfg.archs[0], cfg.inits[0])
        elif fam == "burden":
            key = "burden:whole/seg"
        else:
            key = model_key(cfg.anatomy_arch, "random", fam)
    else:
        key = settings.cnn
    col = f"cnn_{task}_{parse_model_key(key).slug}"
    if col not in available:
        if settings.cnn == "first":
            return None, f"the run has no out-of-fold probability of {key} for task {task}"
        raise ConfigError(f"--cnn {key}: the run has no out-of-fold probability of that model for task {task!r}")
    return col, key


def gather_inputs(run_dir, manifest, segmentation_run, settings: OutcomeSettings, tasks) -> tuple[_Inputs, Any]:
    from lgenet.data.manifest import load_manifest
    from lgenet.data.splits import assign_folds
    from lgenet.runs.grid import RunDir, parse_model_key

    cfg = rd = None
    if run_dir is not None:
        rd = RunDir(run_dir)
        cfg = rd.load_config()
        if not manifest and cfg.manifest and not Path(cfg.manifest).is_file():
            raise ConfigError(
                f"the run's manifest {cfg.manifest} (recorded in {rd.config_path}) is not found"
                + (f" from {Path.cwd()}" if not Path(cfg.manifest).is_absolute() else "")
                + ": pass it with --manifest PATH (or run from the folder the run was started in)"
            )
        manifest = manifest or cfg.manifest
        segmentation_run = segmentation_run or cfg.segmentation_run
    if not manifest:
        raise ConfigError("lgenet outcomes: give a finished run directory or --manifest")
    cohort = load_manifest(
        manifest, tasks=None, check_files=False, lge_threshold=cfg.lge_threshold if cfg is not None else LGE_THRESHOLD
    )
    want = tuple(tasks) if tasks else (cfg.tasks if cfg is not None else cohort.available_tasks)
    folds: dict[str, dict[str, int]] = {}
    notes: list[str] = []
    for t in want:
        if t not in cohort.available_tasks:
            notes.append(f"task {t}: no labelled patient in the manifest; skipped")
            continue
        if rd is not None and rd.folds_path(t).is_file():
            folds[t] = rd.read_folds(t)
        else:
            labels = cohort.labels(t)
            folds[t] = assign_folds(
                list(labels), list(labels.values()), n_splits=settings.folds, random_state=settings.seed, task=t
            )
    if not folds:
        raise DataError(f"lgenet outcomes: no task to analyse in {manifest} (tasks asked: {list(want)})")
    values: dict[str, dict[str, float]] = {p: {} for p in cohort.patient_ids}
    cov_names = [c for c in cohort.covariate_names]
    if cov_names:
        try:
            for p, v in cohort.covariates_numeric(cov_names).items():
                values[p].update(v)
        except ManifestError:
            # a non-numeric column (e.g. a text group): keep the numeric ones only
            for c in cov_names:
                try:
                    for p, v in cohort.covariates_numeric([c]).items():
                        values[p].update(v)
                except ManifestError:
                    notes.append(f"manifest column {c!r} is not numeric; it is not used as a covariate")
    for p in values:  # the manifest's own burden (expert / n-SD) is a column like any other
        rec = cohort.records_for(p)[0]
        if rec.lge_percent is not None:
            values[p]["lge_percent"] = float(rec.lge_percent)
    seg_kind = None
    measure_cols: list[str] = []
    if segmentation_run:
        meas, seg_kind = segmentation_measures(segmentation_run, manifest=manifest)
        from lgenet.runs.seg import check_segmentation_inputs
        from lgenet.utils import sha256_file

        for why in check_segmentation_inputs(segmentation_run, cohort.records, manifest_sha256=sha256_file(manifest)):
            log.warning("outcomes: %s", why)
            notes.append(why)
        missing = [p for p in cohort.patient_ids if p not in meas]
        if missing:
            notes.append(
                f"segmentation run has no measures for {len(missing)} patient(s) (median-imputed): "
                + ", ".join(missing[:5])
            )
        for p, v in meas.items():
            if p in values:
                values[p].update(v)
        measure_cols = list(IMAGE_MEASURES)
    inputs = _Inputs(
        cohort=cohort,
        folds=folds,
        fold_source="run" if cfg is not None else f"assign_folds(folds={settings.folds}, seed={settings.seed})",
        values=values,
        measure_cols=measure_cols,
        seg_kind=seg_kind,
        notes=notes,
    )
    if cfg is not None:
        cs = cnn_scores(run_dir)
        avail = {c for v in cs.values() for c in v}
        for p, v in cs.items():
            if p in values:
                values[p].update(v)
        for t in folds:
            col, why = _cnn_column(t, cfg, settings, avail)
            if col:
                inputs.cnn_cols[t] = col
                what = (
                    f"the burden score of {why} (a sigmoid of the segmentation's predicted LGE burden, no CNN "
                    "classifier)"
                    if parse_model_key(why).family == "burden"
                    else f"the out-of-fold CNN probability of {why}"
                )
                inputs.notes.append(f"task {t}: {what} enters the image and fusion models")
            else:
                inputs.notes.append(f"task {t}: {why}")
    return inputs, cfg


def covariates_for(
    task: str,
    cohort,
    settings: OutcomeSettings,
    *,
    values: dict[str, dict[str, float]] | None = None,
    notes: list[str] | None = None,
) -> list[str]:
    """The covariates of ``task``'s models. With ``values`` (:func:`gather_inputs`' per-patient values), since
    0.2.0 a covariate that carries nothing (no numeric value: blank or text; one value for every patient) or
    whose values leak the label (equal to, or perfectly rank-correlated with, the task's label source, whatever
    its name) is refused when asked for by ``--covariates`` and dropped with a note (``notes`` and the log)
    when it is a default one."""
    from lgenet.outcomes.baselines import default_covariates, leaky_covariates

    covs = list(default_covariates(cohort, task) if settings.covariates is None else settings.covariates)
    absent = [c for c in covs if c not in cohort.covariate_names and c != "lge_percent"]
    if absent:
        raise ConfigError(
            f"covariates {absent} are not columns of the manifest; its covariate columns: "
            f"{', '.join(cohort.covariate_names) or 'none'}"
        )
    leaky = leaky_covariates(task, covs)
    if leaky:
        if settings.covariates is None:
            covs = [c for c in covs if c not in leaky]
        else:
            raise ConfigError(
                f"for task {task!r} these covariates leak the label: "
                + "; ".join(f"{c} ({w})" for c, w in leaky.items())
                + "; drop them from --covariates"
            )
    if values is None:
        return covs
    useless = {c: why for c in covs if (why := _carries_nothing(c, values))}
    useless.update({c: why for c in covs if c not in useless and (why := _leaks_by_value(task, c, cohort, values))})
    if useless and settings.covariates is not None:
        raise ConfigError(
            f"task {task!r}: covariate(s) of --covariates that cannot enter the outcome models: "
            + "; ".join(f"{c} {w}" for c, w in useless.items())
            + f"; drop them from --covariates (manifest {cohort.path})"
        )
    for c, why in useless.items():
        msg = f"task {task}: manifest column {c!r} {why}; it is not used as a covariate"
        log.warning("outcomes: %s", msg)
        if notes is not None:
            notes.append(msg)
    return [c for c in covs if c not in useless]


def _carries_nothing(column: str, values: dict[str, dict[str, float]]) -> str | None:
    """Why ``column`` carries no information into a model (None when it does): no numeric value at all
    (every cell blank, or a text column, which :func:`gather_inputs` leaves out), or one value for everyone.
    Either would enter the models as a constant after the median imputation."""
    vals = [values[p].get(column) for p in values]
    finite = {float(v) for v in vals if v is not None and np.isfinite(v)}
    if not finite:
        return "has no numeric value (every cell is blank or text)"
    if len(finite) == 1:
        return f"has the same value ({finite.pop():g}) for every patient"
    return None


def _leaks_by_value(task: str, column: str, cohort, values: dict[str, dict[str, float]]) -> str | None:
    """Why ``column`` leaks ``task``'s label by its values, whatever its name (None when it does not): equal
    to, or perfectly rank-correlated with (Spearman |rho| = 1 on the patients with both), the label source
    (``lge_percent`` for ``lge``) or the binary label itself."""
    from scipy.stats import rankdata

    sources: dict[str, dict[str, float]] = {"the label": {p: float(v) for p, v in cohort.labels(task).items()}}
    if task == "lge":
        sources["lge_percent (the label's source)"] = {
            p: float(v["lge_percent"]) for p, v in values.items() if "lge_percent" in v
        }
    for what, src in sources.items():
        pairs = [
            (float(values[p][column]), s)
            for p, s in src.items()
            if p in values and column in values[p] and np.isfinite(values[p][column]) and np.isfinite(s)
        ]
        if len(pairs) < 3:
            continue
        a, b = (np.asarray(x, float) for x in zip(*pairs))
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            continue
        ra, rb = rankdata(a), rankdata(b)
        rho = float(np.corrcoef(ra, rb)[0, 1])
        if np.array_equal(a, b):
            return f"equals {what} on all {len(pairs)} patients (it leaks the label)"
        if abs(rho) > 1 - 1e-9:
            return f"is perfectly rank-correlated with {what} (Spearman rho {rho:+.0f}; it leaks the label)"
    return None


def horizon_years(settings: OutcomeSettings, fu: np.ndarray) -> float:
    if settings.horizon is not None:
        return float(settings.horizon)
    return max(0.5, round(float(np.median(fu)) * 2) / 2)
