"""From the out-of-fold prediction rows to one metrics row per (task, model).

The rows are those of ``oof_predictions.csv`` (columns :data:`lgenet.conventions.schemas.OOF_COLUMNS`,
one row per (task, model, patient); ``model`` = ``"arch/init"``, derived from ``arch``/``init`` when
absent), as the run folder reads them (:meth:`lgenet.runs.grid.RunDir.read_oof`) or as training
collects them. Every patient's prediction comes from the fold model that never saw them, so pooled
metrics are honest cross-validated estimates.

:func:`evaluate_oof` computes, per (task, model): AUC with its CI (DeLong or stratified bootstrap),
sensitivity / specificity / PPV / NPV / accuracy at a threshold with Wilson CIs, Brier score,
confusion counts, which model is best within the task, and a paired DeLong p-value against that
best model. :mod:`lgenet.evaluation.metrics_files` saves and reads ``metrics.csv`` and
``metrics.json``; :mod:`lgenet.evaluation.text_table` renders the printed summary.

Example:
    >>> rows = evaluate_oof(RunDir("runs/study1").read_oof())       # doctest: +SKIP
    >>> write_metrics(rows, "runs/study1")                            # doctest: +SKIP
    >>> print(format_table(rows))                                     # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.errors import DataError
from lgenet.evaluation.metrics import MetricsInputError, SingleClassError, auc_ci, binary_metrics, delong_test
from lgenet.evaluation.oof_rows import group_rows

__all__ = ["METRIC_COLUMNS", "OPERATING_POINT", "evaluate_oof"]

_PROPS = ("sensitivity", "specificity", "ppv", "npv", "accuracy")

METRIC_COLUMNS: tuple[str, ...] = (
    "task",
    "arch",
    "init",
    "model",
    "n",
    "n_pos",
    "n_neg",
    "prevalence",
    "n_folds",
    "auc",
    "auc_lower",
    "auc_upper",
    "auc_se",
    "ci_method",
    "confidence",
    "threshold",
    *[c for p in _PROPS for c in (p, f"{p}_lower", f"{p}_upper")],
    "brier",
    "tp",
    "fp",
    "tn",
    "fn",
    "best",
    "delong_p_vs_best",
    "n_shared_vs_best",
    *[c for p in ("sensitivity", "specificity", "ppv", "npv") for c in (f"op_{p}", f"op_{p}_lower", f"op_{p}_upper")],
    *[c for p in ("cal_slope", "cal_intercept") for c in (p, f"{p}_lower", f"{p}_upper")],
    "note",
)
#: the second operating point: each fold's test patients are called positive when their probability is
#: at least the prevalence of that fold's *training* patients (a rule fixed in advance, nothing chosen
#: on the test fold; for a model trained with cross-entropy on imbalanced labels it sits near the
#: ROC's balanced point, where 0.5 often calls nobody positive)
OPERATING_POINT = "training-fold prevalence"


# ---------------------------------------------------------------------------------- evaluation
def _operating_point(
    y: np.ndarray, p: np.ndarray, fold_of: Sequence[str], confidence: float, notes: list[str]
) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV (Wilson CIs) at the :data:`OPERATING_POINT` rule."""
    out = {
        f"op_{k}{s}": float("nan")
        for k in ("sensitivity", "specificity", "ppv", "npv")
        for s in ("", "_lower", "_upper")
    }
    f = np.asarray(fold_of, dtype=object)
    if len(set(f)) < 2 or "" in set(f):
        notes.append("no fold column: the training-fold prevalence operating point is not computed")
        return out
    calls = np.zeros(y.size)
    for k in set(f):
        tr, te = f != k, f == k
        calls[te] = (p[te] >= y[tr].mean()).astype(float)
    bm = binary_metrics(y, calls, threshold=0.5, confidence=confidence)
    for k in ("sensitivity", "specificity", "ppv", "npv"):
        for s in ("", "_lower", "_upper"):
            out[f"op_{k}{s}"] = bm[k + s]
    return out


def _calibration(y: np.ndarray, p: np.ndarray, confidence: float, seed: int | None) -> dict[str, float]:
    """Calibration slope and calibration-in-the-large with bootstrap CIs (500 replicates)."""
    from lgenet.evaluation.clinical import calibration_stats

    out = {f"{k}{s}": float("nan") for k in ("cal_slope", "cal_intercept") for s in ("", "_lower", "_upper")}
    try:
        c = calibration_stats(y, p, n_bootstrap=500, confidence=confidence, seed=seed or 0)
    except MetricsInputError:  # one class among the patients: no calibration to estimate
        return out
    for k, src in (("cal_slope", "slope"), ("cal_intercept", "intercept")):
        out[k], out[k + "_lower"], out[k + "_upper"] = c[src], c[src + "_lower"], c[src + "_upper"]
    return out


def evaluate_oof(
    rows: Sequence[Mapping[str, Any]],
    *,
    threshold: float = 0.5,
    confidence: float = 0.95,
    ci_method: str = "delong",
    n_boot: int = 2000,
    random_state: int | None = 0,
) -> list[dict[str, Any]]:
    """One metrics row per (task, model) from the OOF prediction rows (e.g. ``RunDir(run).read_oof()``).

    Order: tasks and models in order of first appearance in the table (this is also the stable
    order that breaks AUC ties for ``best``). Each row has the columns of :data:`METRIC_COLUMNS`:
    AUC with CI (``ci_method`` ``"delong"`` or ``"bootstrap"``; the bootstrap restarts from
    ``random_state`` for every model, so a model's CI does not depend on the others), threshold
    metrics with Wilson CIs (positive call: ``prob >= threshold``), Brier score, confusion
    counts, ``best`` (highest AUC within the task) and ``delong_p_vs_best`` (paired two-sided
    DeLong p-value against the best model on the patients both share; NaN for the best itself).
    ``note`` explains anything unusual (models not evaluated on the same patients, a CI that
    cannot be estimated); it is ``""`` otherwise.

    Raises:
        DataError: missing columns, unparsable/duplicate rows, a patient with different labels in
            different models, or a (task, model) with only one class (AUC undefined).
    """
    if isinstance(rows, (str, Path)):
        raise TypeError(
            f"evaluate_oof takes the OOF rows, not a path ({str(rows)!r}): read a run's table with "
            "lgenet.runs.grid.RunDir(run).read_oof()"
        )
    groups = group_rows(list(rows), "OOF predictions")

    out: list[dict[str, Any]] = []
    for task, models in groups.items():
        task_rows: list[dict[str, Any]] = []
        for model, g in models.items():
            y = np.asarray(g.y, dtype=np.int64)
            p = np.asarray(g.p, dtype=float)
            try:
                res = auc_ci(y, p, method=ci_method, confidence=confidence, n_boot=n_boot, random_state=random_state)
            except SingleClassError as exc:
                raise DataError(f"task {task!r}, model {model!r}: {exc}") from None
            bm = binary_metrics(y, p, threshold=threshold, confidence=confidence)
            notes: list[str] = []
            if math.isnan(res.se):
                notes.append(
                    f"AUC CI not estimable with n_pos={res.n_pos}, n_neg={res.n_neg} (DeLong needs >= 2 of each)"
                )
            row: dict[str, Any] = {
                "task": task,
                "arch": g.arch,
                "init": g.init,
                "model": model,
                "n": res.n,
                "n_pos": res.n_pos,
                "n_neg": res.n_neg,
                "prevalence": bm["prevalence"],
                "n_folds": len(g.folds),
                "auc": res.auc,
                "auc_lower": res.lower,
                "auc_upper": res.upper,
                "auc_se": res.se,
                "ci_method": res.method,
                "confidence": res.confidence,
                "threshold": bm["threshold"],
            }
            for name in _PROPS:
                for suffix in ("", "_lower", "_upper"):
                    row[name + suffix] = bm[name + suffix]
            row.update(brier=bm["brier"], tp=bm["tp"], fp=bm["fp"], tn=bm["tn"], fn=bm["fn"])
            row.update(best=False, delong_p_vs_best=float("nan"), n_shared_vs_best=res.n, note="")
            row.update(_operating_point(y, p, g.fold_of, confidence, notes))
            row.update(_calibration(y, p, confidence, random_state))
            row["_notes"] = notes
            task_rows.append(row)

        best_i = 0
        for i, r in enumerate(task_rows):
            if r["auc"] > task_rows[best_i]["auc"]:
                best_i = i
        best = task_rows[best_i]
        best["best"] = True
        bg = models[best["model"]]
        best_map = dict(zip(bg.pids, zip(bg.y, bg.p)))
        all_same = len({frozenset(g.pids) for g in models.values()}) == 1
        if not all_same:
            best["_notes"].append("models in this task were not all evaluated on the same patients")
        for r in task_rows:
            if r is best:
                continue
            g = models[r["model"]]
            shared = [(pid, pr) for pid, pr in zip(g.pids, g.p) if pid in best_map]
            r["n_shared_vs_best"] = len(shared)
            if len(shared) != len(g.pids) or len(shared) != len(bg.pids):
                r["_notes"].append(
                    f"patients differ from best model {best['model']} ({len(g.pids)} vs {len(bg.pids)}); "
                    f"DeLong test on the {len(shared)} shared"
                )
            ys = np.asarray([best_map[pid][0] for pid, _ in shared], dtype=np.int64)
            if ys.size == 0 or ys.min() == ys.max():
                r["_notes"].append(
                    f"DeLong test vs best not possible: shared patients have n_pos={int(ys.sum())}, "
                    f"n_neg={int(ys.size - ys.sum())}"
                )
                continue
            pa = np.asarray([pr for _, pr in shared], dtype=float)
            pb = np.asarray([best_map[pid][1] for pid, _ in shared], dtype=float)
            r["delong_p_vs_best"] = delong_test(ys, pa, pb).p_value
        for r in task_rows:
            r["note"] = "; ".join(r.pop("_notes"))
            out.append({c: r[c] for c in METRIC_COLUMNS})
    return out
