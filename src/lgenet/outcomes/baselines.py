"""Image-free reference analyses on a cohort manifest.

* :func:`covariate_baseline` -- the clinical-covariates-only logistic regression an image model must
  beat: stratified K-fold out-of-fold (OOF) probabilities; imputation (median) and scaling are fitted
  on the training folds only (a scikit-learn ``Pipeline`` refitted per fold).
* :func:`ceiling_analysis` -- how far a label defined on the whole LV can be read from the one basal
  frame the seed protocol shows the network: how many whole-LV positives have no enhancement, or a
  burden <= the threshold, on the basal slice.

Both read the manifest through :func:`lgenet.data.manifest.load_manifest` (one row per patient).
Confidence intervals are left to :mod:`lgenet.evaluation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.data.importers.emidec import EMIDEC_COVARIATES
from lgenet.errors import ConfigError, DataError

__all__ = [
    "covariate_baseline",
    "ceiling_analysis",
    "format_ceiling_report",
    "default_covariates",
    "LEAKY_COVARIATES",
    "LOG_COVARIATES",
    "leaky_covariates",
]

#: Covariates refused per task because they define (or nearly equal) its label.
LEAKY_COVARIATES: dict[str, dict[str, str]] = {
    "event": {
        "killip": "Killip class >= II defines the event label",
        "event": "is the label",
    },
    "lge": {
        "group": "the N/P case group equals the whole-LV lge label in 95/100 EMIDEC cases",
        "lge_percent": "is the label",
        "lge_percent_basal": "is measured from the expert scar contours (image-derived label)",
        "label_pathological": "equals group",
    },
}
#: Right-skewed laboratory values entered as log(1 + x) (a fixed transform, no fitting).
LOG_COVARIATES = ("troponin", "ntprobnp")
#: the default covariates: those known at presentation (the EMIDEC import's list, one home)
_PRESENTATION = EMIDEC_COVARIATES


def _cohort(manifest: Any, task: str | None = None):
    from lgenet.data.manifest import Cohort, load_manifest

    if isinstance(manifest, Cohort):
        return manifest
    return load_manifest(Path(manifest), tasks=task, check_files=False)


def leaky_covariates(task: str, covariates: Sequence[str]) -> dict[str, str]:
    """``{column: why}`` for the covariates among ``covariates`` that leak ``task``'s label: those of
    :data:`LEAKY_COVARIATES` and, for ``lge``, every burden column (``lge_percent``, ``_basal``, ...)."""
    leaky = {c: why for c, why in LEAKY_COVARIATES.get(task, {}).items() if c in covariates}
    if task == "lge":
        leaky.update(
            {
                c: "an LGE burden measurement: it (nearly) defines the label"
                for c in covariates
                if c.startswith("lge_percent") and c not in leaky
            }
        )
    return leaky


def default_covariates(manifest: Any, task: str) -> list[str]:
    """Presentation covariates present in the manifest, minus the ones that leak ``task``'s label."""
    coh = _cohort(manifest)
    return [c for c in _PRESENTATION if c in coh.covariate_names and c not in LEAKY_COVARIATES.get(task, {})]


def covariate_baseline(
    manifest: Any,
    task: str,
    covariates: Sequence[str] | None = None,
    *,
    folds: int = 4,
    seed: int = 0,
    C: float = 1.0,
    log_covariates: Sequence[str] = LOG_COVARIATES,
    allow_leaky: bool = False,
) -> dict[str, Any]:
    """Covariates-only logistic regression, stratified K-fold OOF.

    Args:
        manifest: a manifest path or a loaded :class:`~lgenet.data.manifest.Cohort`.
        task: ``'lge'`` (lge_percent > the cohort's threshold) or ``'event'``.
        covariates: manifest columns to use; ``None`` = :func:`default_covariates`. A covariate
            that defines the label (:data:`LEAKY_COVARIATES`, e.g. ``killip`` for ``event``) is
            refused unless ``allow_leaky``.
        folds, seed: ``StratifiedKFold(folds, shuffle=True, random_state=seed)``.
        C: inverse L2 regularisation strength of ``LogisticRegression``.
        log_covariates: columns entered as ``log1p`` (only those present in ``covariates``).

    Returns:
        dict with ``patient_id``, ``y``, ``oof_prob`` (lists, patient order), ``auc`` (OOF,
        sklearn ``roc_auc_score``), ``fold_auc``, ``n``, ``n_pos``, ``covariates``, ``coef``
        (standardised log-odds per covariate, fitted on all patients, for description only),
        ``missing`` (blank cells per covariate, median-imputed) and the options.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if task not in ("lge", "event"):
        raise ConfigError(f"covariate_baseline: task must be 'lge' or 'event', got {task!r}")
    if not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"covariate_baseline: folds must be an integer >= 2, got {folds!r}")
    coh = _cohort(manifest, task)
    covs = list(default_covariates(coh, task) if covariates is None else covariates)
    if not covs:
        raise ConfigError("covariate_baseline: no covariate to use")
    leaky = leaky_covariates(task, covs)
    if leaky and not allow_leaky:
        raise ConfigError(
            "covariate_baseline: for task %r these covariates leak the label: %s; drop them"
            % (task, "; ".join(f"{c} ({w})" for c, w in leaky.items()))
        )
    labels = coh.labels(task)
    values = coh.covariates_numeric(covs)
    pids = sorted(labels)
    y = np.array([labels[p] for p in pids], dtype=int)
    X = np.array([[values[p][c] for c in covs] for p in pids], dtype=float)
    n_pos = int(y.sum())
    if n_pos < folds or (len(y) - n_pos) < folds:
        raise DataError(
            f"covariate_baseline: task {task!r} has {n_pos} positives and {len(y) - n_pos} negatives; "
            f"need at least {folds} of each for {folds} stratified folds"
        )
    logged = [c for c in covs if c in set(log_covariates)]
    for c in logged:
        j = covs.index(c)
        col = X[:, j]
        if np.nanmin(col) <= -1:
            raise DataError(f"covariate_baseline: {c} has values <= -1; cannot take log1p")
        X[:, j] = np.log1p(col)

    def make() -> Pipeline:
        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
                ("logreg", LogisticRegression(C=C, max_iter=5000)),
            ]
        )

    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    oof = np.full(len(y), np.nan)
    fold_of = np.full(len(y), -1)
    fold_auc = []
    for k, (tr, te) in enumerate(skf.split(X, y)):
        model = make().fit(X[tr], y[tr])
        oof[te] = model.predict_proba(X[te])[:, 1]
        fold_of[te] = k
        fold_auc.append(float(roc_auc_score(y[te], oof[te])) if len(set(y[te])) == 2 else math.nan)
    full = make().fit(X, y)
    coef = dict(zip(covs, (float(v) for v in full.named_steps["logreg"].coef_[0])))
    return {
        "task": task,
        "covariates": covs,
        "log1p": logged,
        "n": int(len(y)),
        "n_pos": n_pos,
        "folds": folds,
        "seed": seed,
        "C": C,
        "patient_id": pids,
        "y": y.tolist(),
        "oof_prob": oof.tolist(),
        "fold": fold_of.tolist(),
        "auc": float(roc_auc_score(y, oof)),
        "fold_auc": fold_auc,
        "coef": coef,
        "missing": {c: int(np.isnan(X[:, j]).sum()) for j, c in enumerate(covs)},
        "model": "Pipeline(SimpleImputer(median), StandardScaler, LogisticRegression(L2, C)) refitted per fold",
    }


def ceiling_analysis(manifest: Any, *, threshold: float | None = None) -> dict[str, Any]:
    """How well the basal slice alone carries the whole-LV ``lge`` label.

    Needs the ``lge_percent`` (whole LV) and ``lge_percent_basal`` columns of an imported manifest.
    Returns counts (whole-LV positives; of them, with no enhancement on the basal slice, with a basal
    burden <= threshold; basal-positive but whole-LV negative), the agreement of the basal-slice label
    with the whole-LV label (sensitivity, specificity, accuracy, kappa), the AUC of the basal burden as
    a score for the whole-LV label (what a perfect basal-frame burden reader could reach), and the IDs
    of the whole-LV positives a basal-frame label misses.
    """
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    coh = _cohort(manifest, "lge")
    thr = coh.lge_threshold if threshold is None else float(threshold)
    if "lge_percent_basal" not in coh.covariate_names:
        raise DataError(
            f"ceiling_analysis: manifest {coh.path} has no 'lge_percent_basal' column; "
            "make it with `lgenet import` (emidec or nifti-masks)"
        )
    basal = {p: v["lge_percent_basal"] for p, v in coh.covariates_numeric(["lge_percent_basal"]).items()}
    whole: dict[str, float] = {}
    for r in coh.records:
        if r.lge_percent is not None:
            whole.setdefault(r.patient_id, r.lge_percent)
    pids = sorted(p for p in whole if not math.isnan(basal.get(p, math.nan)))
    w = np.array([whole[p] for p in pids])
    b = np.array([basal[p] for p in pids])
    yw, yb = w > thr, b > thr
    pos = int(yw.sum())
    tp, fn = int((yw & yb).sum()), int((yw & ~yb).sum())
    fp, tn = int((~yw & yb).sum()), int((~yw & ~yb).sum())
    zero = yw & (b == 0)
    low = yw & (b > 0) & (b <= thr)
    out = {
        "threshold": thr,
        "patients": len(pids),
        "whole_lv_positive": pos,
        "basal_slice_positive": int(yb.sum()),
        "positive_with_no_basal_enhancement": int(zero.sum()),
        "positive_with_basal_burden_le_threshold": fn,
        "positive_with_basal_burden_between_0_and_threshold": int(low.sum()),
        "basal_positive_whole_lv_negative": fp,
        "whole_lv_negative_with_basal_enhancement": int((~yw & (b > 0)).sum()),
        "basal_label_vs_whole_label": {
            "tp": tp,
            "fn": fn,
            "fp": fp,
            "tn": tn,
            "sensitivity": tp / pos if pos else math.nan,
            "specificity": tn / (tn + fp) if (tn + fp) else math.nan,
            "accuracy": (tp + tn) / len(pids),
            "kappa": float(cohen_kappa_score(yw, yb)) if len(set(yw)) == 2 else math.nan,
        },
        "auc_basal_burden_for_whole_label": float(roc_auc_score(yw, b)) if len(set(yw)) == 2 else math.nan,
        "missed_positive_ids": [p for p, m in zip(pids, yw & ~yb) if m],
        "positive_no_basal_enhancement_ids": [p for p, m in zip(pids, zero) if m],
    }
    return out


def format_ceiling_report(c: Mapping[str, Any]) -> str:
    """A short Markdown report of :func:`ceiling_analysis`."""
    a = c["basal_label_vs_whole_label"]
    thr = c["threshold"]
    return "\n".join(
        [
            f"| quantity (threshold {thr:g} %) | value |",
            "|---|---|",
            f"| patients | {c['patients']} |",
            f"| whole-LV positives (lge label) | {c['whole_lv_positive']} |",
            f"| basal-slice positives | {c['basal_slice_positive']} |",
            f"| whole-LV positives with **no** enhancement on the basal slice | {c['positive_with_no_basal_enhancement']} |",
            f"| whole-LV positives with basal burden <= {thr:g} % (missed by a basal-frame label) | "
            f"{c['positive_with_basal_burden_le_threshold']} |",
            f"| basal-positive but whole-LV negative | {c['basal_positive_whole_lv_negative']} |",
            f"| basal label vs whole-LV label: sensitivity / specificity / accuracy / kappa | "
            f"{a['sensitivity']:.3f} / {a['specificity']:.3f} / {a['accuracy']:.3f} / {a['kappa']:.3f} |",
            f"| AUC of the basal-slice burden for the whole-LV label | {c['auc_basal_burden_for_whole_label']:.3f} |",
        ]
    )
