"""``lgenet outcomes``: covariates-only, image-only and fusion models of each task, cross-validated in
the run's patient folds, with discrimination, calibration, decision curves and -- when the manifest
has ``followup_years`` -- time-to-event models (Cox) and their C-index, time-dependent AUC and
Kaplan-Meier risk groups.

Outputs (``<run>/outcomes/`` or ``--out``), every file written atomically:

    outcomes.json          every number below, the settings and what was skipped and why
    oof_outcomes.csv       per patient, task and model set: fold, label, OOF probability (and Cox risk)
    measures.csv           the image-derived measures and CNN probabilities, manifest-ready columns
    table1_<task>.csv      the cohort by label with p-values
    cox_<set>.csv          Cox coefficients on all patients (description, not validation)
    figures/               ROC, calibration, decision curves, Kaplan-Meier (PNG and PDF)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.config.outcome import OutcomeSettings
from lgenet.errors import ConfigError, DataError, LgenetError
from lgenet.outcomes.inputs import covariates_for, gather_inputs, horizon_years
from lgenet.outcomes.measures import (
    IMAGE_MEASURES,
    LOG_COLUMNS,
    write_measures,
)
from lgenet.outcomes.tables import write_cox, write_oof, write_table1
from lgenet.utils import atomic_write_text, jsonable

__all__ = ["OutcomeSettings", "run_outcomes", "MODEL_SETS"]

log = logging.getLogger("lgenet")

#: the three model families compared on each task
MODEL_SETS = ("covariates", "image", "fusion")
#: scores reported beside the event models as the clinical reference (used as they are, no fitting)
REFERENCE_SCORES = {
    "lge_percent": "LGE % of the manifest (the cohort's quantification)",
    "img_lge_percent": "predicted LGE % (segmentation, out-of-fold)",
}


# ---------------------------------------------------------------------------------------------- analysis
def _binary(
    task: str,
    pids: list[str],
    y: np.ndarray,
    fold_of: np.ndarray,
    sets: dict[str, list[str]],
    values,
    settings: OutcomeSettings,
) -> tuple[dict, dict[str, np.ndarray]]:
    from lgenet.evaluation.clinical import calibration_stats, continuous_nri, decision_curve
    from lgenet.evaluation.metrics import delong_auc_ci, delong_test
    from lgenet.outcomes.fusion import design_matrix, logistic_table, oof_logistic

    res: dict[str, Any] = {"n": int(y.size), "n_pos": int(y.sum()), "models": {}, "comparisons": []}
    probs: dict[str, np.ndarray] = {}
    res["skipped"] = {}
    for name, cols in sets.items():
        X = design_matrix(values, pids, cols, LOG_COLUMNS)
        try:
            p = oof_logistic(X, y, fold_of, C=settings.C, recalibrate=settings.recalibrate, seed=settings.seed)
        except LgenetError as exc:
            res["skipped"][name] = str(exc)
            continue
        probs[name] = p
        auc = delong_auc_ci(y, p, confidence=settings.confidence)
        res["models"][name] = {
            "columns": cols,
            "log1p": [c for c in cols if c in LOG_COLUMNS],
            "missing": {c: int(np.isnan(X[:, j]).sum()) for j, c in enumerate(cols) if np.isnan(X[:, j]).any()},
            "auc": auc.as_dict(),
            "calibration": calibration_stats(
                y, p, n_bootstrap=settings.n_bootstrap, confidence=settings.confidence, seed=settings.seed
            ),
            "decision_curve": decision_curve(y, p),
            "coefficients": logistic_table(X, y, cols, C=settings.C, seed=settings.seed),
        }
    # the clinical reference for the event task: the quantified LGE % itself as a score (no fitting)
    res["references"] = {}
    if task == "event":
        for col, what in REFERENCE_SCORES.items():
            x = np.asarray([values.get(p, {}).get(col, np.nan) for p in pids], float)
            if not np.isfinite(x).all() or len(set(y.tolist())) < 2:
                continue
            ref = {"what": what, "auc": delong_auc_ci(y, x, confidence=settings.confidence).as_dict(), "vs": {}}
            for name, pr in probs.items():
                t = delong_test(y, pr, x)
                ref["vs"][name] = {"diff": t.diff, "p": t.p_value}
            res["references"][col] = ref
    for a, b in (("fusion", "covariates"), ("fusion", "image"), ("image", "covariates")):
        if a in probs and b in probs:
            t = delong_test(y, probs[a], probs[b])
            nri = continuous_nri(y, probs[a], probs[b], n_bootstrap=settings.n_bootstrap, seed=settings.seed)
            res["comparisons"].append(
                {
                    "a": a,
                    "b": b,
                    "auc_a": t.auc_a,
                    "auc_b": t.auc_b,
                    "diff": t.diff,
                    "p": t.p_value,
                    "test": "paired DeLong",
                    "nri": nri,
                }
            )
    return res, probs


def _survival(
    pids: list[str],
    t: np.ndarray,
    e: np.ndarray,
    fold_of: np.ndarray,
    sets: dict[str, list[str]],
    values,
    settings: OutcomeSettings,
    horizon: float,
) -> tuple[dict, dict[str, np.ndarray]]:
    from lgenet.evaluation.clinical import calibration_stats
    from lgenet.evaluation.survival import c_index_ci, c_index_diff, km_groups, time_dependent_auc
    from lgenet.outcomes.fusion import cox_table, design_matrix, oof_cox

    res: dict[str, Any] = {
        "n": int(t.size),
        "n_events": int(e.sum()),
        "horizon": horizon,
        "median_followup": float(np.median(t)),
        "models": {},
        "comparisons": [],
    }
    risks: dict[str, np.ndarray] = {}
    res["skipped"] = {}
    for name, cols in sets.items():
        X = design_matrix(values, pids, cols, LOG_COLUMNS)
        try:
            lp, risk_h = oof_cox(X, t, e, fold_of, penalizer=settings.cox_penalizer, horizon=horizon)
            full = cox_table(X, t, e, cols, penalizer=settings.cox_penalizer, confidence=settings.confidence)
        except LgenetError as exc:
            res["skipped"][name] = str(exc)
            continue
        risks[name] = lp
        risks[name + "@h"] = risk_h
        m: dict[str, Any] = {
            "columns": cols,
            "c_index": c_index_ci(
                t, e, lp, n_bootstrap=settings.n_bootstrap, confidence=settings.confidence, seed=settings.seed
            ),
        }
        try:
            m["td_auc"] = time_dependent_auc(
                t, e, lp, horizon, n_bootstrap=settings.n_bootstrap, confidence=settings.confidence, seed=settings.seed
            )
        except DataError as exc:
            m["td_auc"] = {"skipped": str(exc)}
        # calibration of the predicted risk by the horizon, among patients whose status then is known
        known = (t >= horizon) | (e == 1)
        yh = ((t <= horizon) & (e == 1)).astype(int)[known]
        if known.sum() >= 10 and 0 < yh.sum() < yh.size:
            m["calibration_at_horizon"] = calibration_stats(
                yh, risk_h[known], n_bootstrap=settings.n_bootstrap, confidence=settings.confidence, seed=settings.seed
            )
            m["calibration_at_horizon"]["note"] = (
                f"patients censored before the horizon are left out ({int((~known).sum())})"
            )
        if isinstance(settings.km_groups, str):  # tertiles / median of the out-of-fold log hazard
            m["km"] = km_groups(t, e, lp, groups=settings.km_groups)
        else:  # a threshold on the predicted risk by the horizon
            m["km"] = km_groups(t, e, risk_h, groups=float(settings.km_groups))
        m["cox_all_patients"] = full
        res["models"][name] = m
    for a, b in (("fusion", "covariates"), ("fusion", "image"), ("image", "covariates")):
        if a in risks and b in risks:
            d = c_index_diff(
                t,
                e,
                risks[a],
                risks[b],
                n_bootstrap=settings.n_bootstrap,
                confidence=settings.confidence,
                seed=settings.seed,
            )
            res["comparisons"].append({"a": a, "b": b, **d})
    return res, risks


def run_outcomes(
    run_dir: str | Path | None = None,
    *,
    manifest: str | Path | None = None,
    segmentation_run: str | Path | None = None,
    out: str | Path | None = None,
    settings: OutcomeSettings | None = None,
    tasks: Sequence[str] | None = None,
    figures: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit and evaluate the covariates / image / fusion models of each task (see the module docstring).

    Give a finished ``run_dir`` (its manifest, folds, segmentation run and OOF CNN probabilities are
    used) or a ``manifest`` (folds assigned with ``settings.folds`` / ``settings.seed``).
    Returns the content of ``outcomes.json``.
    """
    from lgenet.evaluation.clinical import table_one
    from lgenet.runs.grid import RunDir, ensure_writable_dir

    t0 = time.time()
    if settings is None:
        settings = (
            OutcomeSettings.from_run_config(RunDir(run_dir).load_config()) if run_dir is not None else OutcomeSettings()
        )
    inp, cfg = gather_inputs(run_dir, manifest, segmentation_run, settings, tasks)
    # the covariates of every task, checked (values, not only names) before anything is written
    covs_of = {t: covariates_for(t, inp.cohort, settings, values=inp.values, notes=inp.notes) for t in inp.folds}
    if out is None:
        if run_dir is None:
            raise ConfigError("lgenet outcomes --manifest: give --out, the folder for the results")
        out = Path(run_dir) / "outcomes"
    out_dir = ensure_writable_dir(out, "--out")
    from lgenet.runs.paths import refuse_overwrite

    refuse_overwrite(out_dir, [manifest, segmentation_run], "--out")  # never over the cohort or the segmentation
    out_dir.mkdir(parents=True, exist_ok=True)
    cohort = inp.cohort
    fu_all = cohort.followup_years()
    summary: dict[str, Any] = {
        "format": "lgenet-outcomes/1",
        "settings": asdict(settings),
        "manifest": str(cohort.path),
        "segmentation_run": str(segmentation_run or (cfg.segmentation_run if cfg is not None else "") or ""),
        "segmentation_kind": inp.seg_kind,
        "fold_source": inp.fold_source,
        "notes": list(inp.notes),
        "tasks": {},
        "leakage_note": (
            "Imputation, scaling, coefficients and recalibration are fitted on the training folds only. "
            "The image measures and CNN probabilities of the *training* patients come from networks that "
            "were trained on other folds, which include the test fold's images (and, for a CNN, its labels): "
            "the usual approximation of stacking with cross-validated predictions, a second-order effect. "
            "Segmentation never sees an outcome label."
        ),
    }
    oof_rows: list[dict] = []
    figs: dict[str, dict[str, str]] = {}
    for task, folds in inp.folds.items():
        labels = cohort.labels(task)
        pids = sorted(p for p in folds if p in labels)
        y = np.asarray([labels[p] for p in pids], int)
        fold_of = np.asarray([folds[p] for p in pids], int)
        covs = covs_of[task]
        img = [m for m in settings.measures if m in inp.measure_cols]
        if task in inp.cnn_cols:
            img.append(inp.cnn_cols[task])
        sets: dict[str, list[str]] = {}
        skipped: dict[str, str] = {}
        if covs:
            sets["covariates"] = covs
        else:
            skipped["covariates"] = "no clinical covariate in the manifest"
        if img:
            sets["image"] = img
        else:
            skipped["image"] = "no segmentation run and no CNN probability: nothing image-derived to enter"
        if covs and img:
            sets["fusion"] = covs + img
        elif "fusion" not in skipped:
            skipped["fusion"] = "needs both covariates and image-derived measures"
        tres: dict[str, Any] = {"skipped": skipped, "sets": sets}
        if not sets:
            summary["tasks"][task] = tres
            continue
        if progress:
            log.info("outcomes: task %s, %d patients, model sets %s", task, len(pids), ", ".join(sets))
        tres["binary"], probs = _binary(task, pids, y, fold_of, sets, inp.values, settings)
        if not probs:
            summary["tasks"][task] = tres
            continue
        table_cols = list(
            dict.fromkeys(
                covs
                + [c for c in inp.measure_cols if c in img or c in IMAGE_MEASURES]
                + [c for c in img if c.startswith("cnn_")]
            )
        )
        names = (
            ("no event", "event")
            if task == "event"
            else (f"LGE <= {cohort.lge_threshold:g}%", f"LGE > {cohort.lge_threshold:g}%")
        )
        tres["table1"] = {
            "groups": list(names),
            "rows": table_one(inp.values, dict(zip(pids, y.tolist())), columns=table_cols),
        }
        write_table1(out_dir / f"table1_{task}.csv", tres["table1"])
        risks: dict[str, np.ndarray] = {}
        if task == "event":
            have = [p for p in pids if p in fu_all]
            if not fu_all:
                tres["survival"] = {
                    "not_fitted": "the manifest has no followup_years: time-to-event models need the "
                    "time to the event or to the last follow-up of every patient"
                }
            elif len(have) < len(pids):
                tres["survival"] = {
                    "not_fitted": f"followup_years is blank for {len(pids) - len(have)} of {len(pids)} "
                    "patients; fill it in for every patient of the event task"
                }
            else:
                t = np.asarray([fu_all[p] for p in pids], float)
                t = np.maximum(t, 1e-3)
                h = horizon_years(settings, t)
                tres["survival"], risks = _survival(pids, t, y, fold_of, sets, inp.values, settings, h)
                for name in tres["survival"]["models"]:
                    write_cox(out_dir / f"cox_{name}.csv", tres["survival"]["models"][name]["cox_all_patients"])
        for name in probs:
            for i, p in enumerate(pids):
                row = {
                    "patient_id": p,
                    "task": task,
                    "model_set": name,
                    "fold": int(fold_of[i]),
                    "label": int(y[i]),
                    "prob": float(probs[name][i]),
                }
                if name in risks:
                    row["cox_log_hazard"] = float(risks[name][i])
                    row["cox_risk_at_horizon"] = float(risks[name + "@h"][i])
                oof_rows.append(row)
        summary["tasks"][task] = tres
        if figures and probs:
            from lgenet.outcomes.figures import outcome_figures

            figs[task] = outcome_figures(
                task, tres, pids, y, probs, risks, out_dir / "figures", lge_threshold=cohort.lge_threshold
            )
    summary["figures"] = figs
    measure_cols = list(inp.measure_cols) + sorted({c for v in inp.values.values() for c in v if c.startswith("cnn_")})
    if measure_cols:
        write_measures(out_dir / "measures.csv", inp.values, measure_cols)
    write_oof(out_dir / "oof_outcomes.csv", oof_rows)
    summary["seconds"] = round(time.time() - t0, 1)
    summary["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    atomic_write_text(out_dir / "outcomes.json", json.dumps(jsonable(summary), indent=1) + "\n")
    return summary
