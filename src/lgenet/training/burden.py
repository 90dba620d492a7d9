"""The ``burden`` family of the grid: the predicted LGE burden of a segmentation run as the score.

``burden:whole/seg`` (whole LV) and ``burden:basal/seg`` (basal slice only). The burden of every patient
comes from a segmenter that never saw that patient: the out-of-fold masks of ``lgenet segment train`` on
this cohort (``seg_metrics.csv``), or ``lgenet segment apply`` on a cohort the segmenter was not trained on
(``segmentation.csv``). The score needs no fitting -- probability ``sigmoid((burden - lge_threshold) /
burden_scale)``, so p >= 0.5 means "burden above the task-lge threshold" -- and segmentation never sees a
task's labels, so the score is out-of-sample for any task's folds (it is paired with the other models of
the grid on the same patients and folds).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from lgenet.errors import ConfigError, DataError
from lgenet.runs.grid import RunDir, parse_model_key

__all__ = ["check_segmentation_run", "segmentation_scores", "fit_burden", "burden_probability"]


_BURDEN_COLUMNS = {"whole": "lge_percent_pred", "basal": "lge_percent_basal_pred"}


def _table(run: str | Path) -> tuple[Path, str]:
    from lgenet.runs.seg import segmentation_table

    return segmentation_table(run)


def segmentation_scores(run: str | Path) -> tuple[dict[str, dict[str, float]], str]:
    """``{patient_id: {'whole': %, 'basal': %}}`` and what kind of run produced them."""
    path, kind = _table(run)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for r in rows:
        vals = {}
        for k, col in _BURDEN_COLUMNS.items():
            try:
                vals[k] = float(r.get(col, "") or "nan")
            except ValueError:
                vals[k] = float("nan")
        out[r["patient_id"]] = vals
    return out, kind


def check_segmentation_run(run: str | Path, patients: list[str]) -> None:
    """Every patient of the run's tasks needs a predicted burden (clear error otherwise)."""
    scores, _ = segmentation_scores(run)
    missing = [p for p in patients if p not in scores]
    if missing:
        raise DataError(
            f"segmentation_run {run} has no predicted burden for {len(missing)} patient(s) of this cohort "
            f"(e.g. {', '.join(missing[:5])}); segment this cohort (`lgenet segment train` on it, or "
            "`lgenet segment apply --manifest` on it) and pass that run"
        )


def fit_burden(job, on_epoch=None):
    """The burden family's 'fit' for one fold: score the fold's held-out patients (no training)."""
    import time

    from lgenet.runs.jobs import FitOutcome

    cfg = job.config
    rd = RunDir(job.run_dir)
    key = parse_model_key(job.model)
    which = key.arch
    if which not in _BURDEN_COLUMNS:
        raise ConfigError(f"burden model {job.model!r}: expected burden:whole/seg or burden:basal/seg")
    scores, kind = segmentation_scores(cfg.segmentation_run)
    labels = rd.read_fold_labels(job.task)
    folds = rd.read_folds(job.task)
    rows = _rows_per_patient(rd)
    test_p = [p for p in sorted(labels) if folds[p] == job.fold]
    preds = []
    for p in test_p:
        if p not in scores:
            raise DataError(f"patient {p} has no predicted burden in {cfg.segmentation_run}")
        b = scores[p][which]
        prob = 0.0 if not math.isfinite(b) else 1.0 / (1.0 + math.exp(-(b - cfg.lge_threshold) / cfg.burden_scale))
        for _ in range(rows.get(p, 1)):
            preds.append({"patient_id": p, "fold": job.fold, "y_true": labels[p], "prob": prob})
    info = {
        "task": job.task,
        "model": job.model,
        "family": "burden",
        "arch": which,
        "init": key.init,
        "fold": job.fold,
        "n_test_patients": len(test_p),
        "score": f"{_BURDEN_COLUMNS[which]} of {kind}",
        "segmentation_run": str(Path(cfg.segmentation_run).resolve().name),
        "probability": f"sigmoid((burden - {cfg.lge_threshold}) / {cfg.burden_scale})",
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    rd.save_fit(job.task, job.model, job.fold, preds=preds, info=info)
    return FitOutcome(job)


def _rows_per_patient(rd: RunDir) -> dict[str, int]:
    rec = rd.read_inputs() or {}
    out: dict[str, int] = {}
    for r in rec.get("rows", []):
        out[r["patient_id"]] = out.get(r["patient_id"], 0) + 1
    return out


def burden_probability(burden: np.ndarray, threshold: float, scale: float) -> np.ndarray:
    b = np.asarray(burden, float)
    return np.where(np.isfinite(b), 1.0 / (1.0 + np.exp(-(b - threshold) / scale)), 0.0)
