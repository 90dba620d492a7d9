"""The report's results: the metrics table, per-task ROC / AUC / calibration / confusion figures, key results."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

import lgenet.report.html as H
from lgenet.config import RunConfig
from lgenet.report.text import ci_text, is_best, num, p_text, task_name

__all__ = ["results_section", "key_findings"]


def _metrics_table(metrics: Sequence[dict], thr: float) -> str:
    rows, classes = [], []
    for r in metrics:
        rows.append(
            (
                H.esc(task_name(r["task"], thr)),
                H.esc(r["model"]) + (" \u2605" if is_best(r) else ""),
                ci_text(r["auc"], r.get("auc_lower"), r.get("auc_upper")),
                ci_text(r.get("sensitivity"), r.get("sensitivity_lower"), r.get("sensitivity_upper"), True),
                ci_text(r.get("specificity"), r.get("specificity_lower"), r.get("specificity_upper"), True),
                ci_text(r.get("ppv"), r.get("ppv_lower"), r.get("ppv_upper"), True),
                ci_text(r.get("npv"), r.get("npv_lower"), r.get("npv_upper"), True),
                f"{num(r.get('brier')):.3f}",
                ci_text(r.get("cal_slope"), r.get("cal_slope_lower"), r.get("cal_slope_upper")),
                ci_text(r.get("cal_intercept"), r.get("cal_intercept_lower"), r.get("cal_intercept_upper")),
                "best" if is_best(r) else p_text(r.get("delong_p_vs_best")),
                f"{int(num(r['n']))} ({int(num(r['n_pos']))})",
            )
        )
        classes.append("best" if is_best(r) else "")
    conf = num(metrics[0].get("confidence")) if metrics else 0.95
    head = (
        "Task",
        "Model",
        f"AUC ({conf:.0%} CI)",
        "Sensitivity",
        "Specificity",
        "PPV",
        "NPV",
        "Brier",
        "Calibration slope",
        "Calibration-in-the-large",
        "DeLong p vs best",
        "n (positive)",
    )
    notes = [f"{H.esc(r['model'])} ({H.esc(r['task'])}): {H.esc(r['note'])}" for r in metrics if r.get("note")]
    return (
        H.table(head, rows, num_cols=range(2, 12), row_classes=classes, raw=True)
        + '<p class="note">\u2605 highest out-of-fold AUC within the task. Threshold metrics at p \u2265 '
        f"{num(metrics[0].get('threshold')):g} with Wilson {conf:.0%} CIs. Brier: mean squared error of the "
        "probability (lower is better; 0.25 = always predicting 0.5). Calibration slope (ideal 1) and "
        "calibration-in-the-large (ideal 0) by logistic recalibration of the out-of-fold log-odds, bootstrap CIs.</p>"
        + ('<p class="note">Notes: ' + "; ".join(notes) + "</p>" if notes else "")
    )


def results_section(run: Path, metrics: Sequence[dict], oof: list[dict], cfg: RunConfig, figdir: Path) -> str:
    from lgenet.evaluation import plot_auc_bars, plot_calibration, plot_confusion, plot_roc
    from lgenet.evaluation.metrics import auc_ci, calibration

    thr = cfg.lge_threshold
    tasks = list(dict.fromkeys(r["task"] for r in metrics))
    body = [_metrics_table(metrics, thr)]
    for task in tasks:
        name = task_name(task, thr)
        rows = [r for r in metrics if r["task"] == task]
        best = next(r for r in rows if is_best(r))
        roc = run / f"roc_{task}.png"
        if not roc.is_file():
            curves = []
            for r in rows:
                sel = [o for o in oof if o["task"] == task and o["model"] == r["model"]]
                y = np.array([int(o["y_true"]) for o in sel])
                p = np.array([float(o["prob"]) for o in sel])
                curves.append((r["model"], y, p, auc_ci(y, p, method=cfg.ci_method, confidence=cfg.confidence)))
            plot_roc(curves, title=f"ROC, {name} (out-of-fold, {cfg.folds}-fold CV)", path=figdir / f"roc_{task}.png")
            roc = figdir / f"roc_{task}.png"
        bars = run / f"auc_{task}.png"
        if not bars.is_file():
            bars = plot_auc_bars(rows, task=task, path=figdir / f"auc_{task}.png", task_title=name)
        sel = [o for o in oof if o["task"] == task and o["model"] == best["model"]]
        y = np.array([int(o["y_true"]) for o in sel])
        p = np.array([float(o["prob"]) for o in sel])
        cal = plot_calibration(
            y, p, label=best["model"], path=figdir / f"calibration_{task}.png", n_bins=min(5, max(2, int(y.sum())))
        )
        brier = calibration(y, p, n_bins=min(5, max(2, int(y.sum()))))["brier"]
        conf = plot_confusion(best, path=figdir / f"confusion_{task}.png")
        body.append(
            f"<h3>{H.esc(name)}</h3>"
            f"<p>Best model <b>{H.esc(best['model'])}</b>: AUC {ci_text(best['auc'], best.get('auc_lower'), best.get('auc_upper'))}, "
            f"Brier score {brier:.3f} (prevalence {100 * num(best.get('prevalence')):.0f}%: a model always predicting "
            f"the prevalence scores {num(best.get('prevalence')) * (1 - num(best.get('prevalence'))):.3f}).</p>"
            '<div class="grid2">'
            + H.img(roc, f"ROC curves {task}", caption="Out-of-fold ROC curves of every model, AUC with CI.")
            + H.img(bars, f"AUC bars {task}", caption="AUC by architecture and initialisation (error bars: CI).")
            + H.img(
                cal,
                f"calibration {task}",
                caption=f"Calibration of the best model ({H.esc(best['model'])}): "
                "observed fraction positive per bin of predicted probability.",
            )
            + H.img(
                conf,
                f"confusion {task}",
                caption=f"Confusion matrix of the best model at p \u2265 {num(best.get('threshold')):g}.",
            )
            + "</div>"
        )
    return H.section("results", "Results", "".join(body))


def key_findings(metrics: Sequence[dict], thr: float) -> str:
    items = []
    for r in metrics:
        if is_best(r):
            items.append(
                f"<li><b>{H.esc(task_name(r['task'], thr))}</b>: best model {H.esc(r['model'])}, AUC "
                f"{ci_text(r['auc'], r.get('auc_lower'), r.get('auc_upper'))}; sensitivity {ci_text(r.get('sensitivity'), None, None, True)}, "
                f"specificity {ci_text(r.get('specificity'), None, None, True)}, PPV {ci_text(r.get('ppv'), None, None, True)}, "
                f"NPV {ci_text(r.get('npv'), None, None, True)} at p \u2265 0.5"
                + (
                    f"; at the training-fold prevalence threshold: sensitivity "
                    f"{ci_text(r.get('op_sensitivity'), r.get('op_sensitivity_lower'), r.get('op_sensitivity_upper'), True)}, "
                    f"specificity {ci_text(r.get('op_specificity'), r.get('op_specificity_lower'), r.get('op_specificity_upper'), True)}, "
                    f"PPV {ci_text(r.get('op_ppv'), None, None, True)}, NPV {ci_text(r.get('op_npv'), None, None, True)}"
                    if num(r.get("op_sensitivity")) == num(r.get("op_sensitivity"))
                    else ""
                )
                + f"; n={int(num(r['n']))} ({int(num(r['n_pos']))} positive).</li>"
            )
    return f'<div class="keybox"><b>Key results (out-of-fold)</b><ul>{"".join(items)}</ul></div>'
