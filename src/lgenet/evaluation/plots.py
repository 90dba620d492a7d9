"""Publication figures for the evaluation: ROC curves, AUC bar chart, confusion matrix, calibration.

Drawn on :mod:`lgenet.evaluation.canvas` (object-API figures, house style, atomic metadata-free save).

* :func:`plot_roc` -- one panel per task, up to ~six OOF ROC curves with AUC (CI) in the legend.
* :func:`plot_auc_bars` -- the seed's Figure 1 C-D: AUC by architecture (x) and initialisation
  (bar colour), CI error bars, value labels, chance line.
* :func:`plot_confusion`, :func:`plot_calibration` -- per-model panels for the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.patches import Patch
from sklearn.metrics import roc_curve

from lgenet.evaluation.canvas import (
    _LINESTYLES,
    _PALETTE,
    ARCH_LABELS,
    DPI,
    INIT_COLORS,
    INIT_LABELS,
    INIT_ORDER,
    TASK_TITLES,
    _new_figure,
    _style_axes,
    save_figure,
)
from lgenet.evaluation.metrics import AUCResult, MetricsInputError, calibration, delong_auc_ci
from lgenet.evaluation.metrics.checks import _check_labels, _check_scores, _require_both_classes

__all__ = ["plot_roc", "plot_auc_bars", "plot_confusion", "plot_calibration"]


def _n_text(ns: Sequence[tuple[int, int]]) -> str:
    sizes = sorted({n for n, _ in ns})
    poss = sorted({p for _, p in ns})
    n = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}\u2013{sizes[-1]}"
    p = str(poss[0]) if len(poss) == 1 else f"{poss[0]}\u2013{poss[-1]}"
    return f"n={n} ({p} positive)"


def _ci_text(lo: float, hi: float) -> str:
    return "CI n/a" if math.isnan(lo) or math.isnan(hi) else f"{lo:.2f}\u2013{hi:.2f}"


# ---------------------------------------------------------------------------------- ROC
def plot_roc(
    curves: Sequence[tuple[str, Any, Any, AUCResult | None]],
    *,
    title: str,
    path: str | Path,
    dpi: int = DPI,
) -> Path:
    """ROC curves of up to about six models on one task, in one square panel.

    Args:
        curves: ``(label, y_true, y_score, auc_result)`` per model; ``auc_result`` may be None, in
            which case a DeLong 95% CI is computed. The legend reads
            ``"label — AUC 0.80 (0.70–0.90)"``; the title gets the number of patients.
        title: panel title (e.g. ``"LGE burden > 5.7% — out-of-fold ROC"``).
        path: output file (``.png``, ``.pdf`` or ``.svg``).
    """
    curves = list(curves)
    if not curves:
        raise MetricsInputError("plot_roc needs at least one (label, y_true, y_score, auc) curve, got none")
    fig = _new_figure(5.6, 5.9)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], ls=":", lw=1.0, color="0.55", label="Chance (AUC 0.50)", zorder=1)
    ns: list[tuple[int, int]] = []
    conf = None
    for k, item in enumerate(curves):
        try:
            label, y_true, y_score, res = item
        except (TypeError, ValueError):
            raise MetricsInputError(
                f"plot_roc: curve {k} must be a (label, y_true, y_score, AUCResult) tuple"
            ) from None
        y = _check_labels(y_true, f"curves[{k}] y_true")
        s = _check_scores(y_score, y.size, f"curves[{k}] y_score")
        _require_both_classes(y, f"the ROC curve {label!r}")
        if res is None:
            res = delong_auc_ci(y, s)
        conf = res.confidence if conf is None else conf
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(
            fpr,
            tpr,
            color=_PALETTE[k % len(_PALETTE)],
            ls=_LINESTYLES[k % len(_LINESTYLES)],
            lw=1.8,
            drawstyle="default",
            zorder=3 + k,
            label=f"{label} \u2014 AUC {res.auc:.2f} ({_ci_text(res.lower, res.upper)})",
        )
        ns.append((int(y.size), int(y.sum())))
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.grid(True, color="0.92", lw=0.8)
    ax.set_axisbelow(True)
    ax.set_xlabel("1 \u2212 specificity (false-positive rate)", fontsize=10)
    ax.set_ylabel("Sensitivity (true-positive rate)", fontsize=10)
    _style_axes(ax)
    pct = f"{100 * (conf or 0.95):g}%"
    ax.set_title(f"{title}\n{_n_text(ns)}; AUC with {pct} CI", fontsize=11)
    handles, labels = ax.get_legend_handles_labels()
    # curves first, chance line last
    ax.legend(
        handles[1:] + handles[:1],
        labels[1:] + labels[:1],
        loc="lower right",
        fontsize=8,
        frameon=True,
        framealpha=0.95,
        edgecolor="0.8",
    )
    return save_figure(fig, path, dpi=dpi)


# ---------------------------------------------------------------------------------- AUC bars
def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def plot_auc_bars(
    metrics_rows: Sequence[Mapping[str, Any]],
    *,
    task: str,
    path: str | Path,
    task_title: str | None = None,
    dpi: int = DPI,
) -> Path:
    """Grouped bar chart of AUC by architecture (x) and initialisation (colour) -- Figure 1 C-D.

    Uses the ``task, arch, init, auc, auc_lower, auc_upper, n, n_pos`` (and optionally ``best``,
    ``ci_method``, ``confidence``) fields of :func:`lgenet.evaluation.summary.evaluate_oof` rows.
    Colours are fixed per initialisation (random grey, ImageNet blue, RadImageNet vermillion) so
    panels of different tasks match. Error bars are the AUC CI; each bar carries its value (the
    task's best model in bold); the dashed line is chance (AUC 0.5). The y axis always starts at
    0, so bar heights are proportional to the AUCs (a truncated axis would exaggerate differences).
    """
    rows = [r for r in metrics_rows if str(r.get("task")) == task]
    if not rows:
        tasks = sorted({str(r.get("task")) for r in metrics_rows})
        raise MetricsInputError(f"plot_auc_bars: no metrics rows for task {task!r}; tasks present: {tasks}")
    archs: list[str] = []
    inits_seen: list[str] = []
    cells: dict[tuple[str, str], Mapping[str, Any]] = {}
    for r in rows:
        arch, init = str(r.get("arch", "")), str(r.get("init", ""))
        if (not arch or not init) and "/" in str(r.get("model", "")):
            arch, _, init = str(r["model"]).partition("/")
        if arch not in archs:
            archs.append(arch)
        if init not in inits_seen:
            inits_seen.append(init)
        cells[(arch, init)] = r
    inits = [i for i in INIT_ORDER if i in inits_seen] + [i for i in inits_seen if i not in INIT_ORDER]
    extra_colors = iter(_PALETTE[2:])
    colors = {i: INIT_COLORS.get(i) or next(extra_colors) for i in inits}

    n_i = len(inits)
    width = 0.8 / n_i
    bottom = 0.0  # bars are lengths: a zoomed axis (e.g. from 0.3) would make 0.6 look half of 0.9

    fig = _new_figure(max(4.8, 1.25 * len(archs) * max(1, n_i) / 1.5 + 1.6), 5.0)
    ax = fig.add_subplot(1, 1, 1)
    chance = ax.axhline(0.5, ls="--", lw=1.0, color="0.3", zorder=2.5, label="Chance (AUC 0.5)")  # over the bars
    for a, arch in enumerate(archs):
        for k, init in enumerate(inits):
            r = cells.get((arch, init))
            if r is None:
                continue
            x = a + (k - (n_i - 1) / 2.0) * width
            auc, lo, hi = _num(r.get("auc")), _num(r.get("auc_lower")), _num(r.get("auc_upper"))
            ax.bar(
                x,
                auc - bottom,
                width * 0.92,
                bottom=bottom,
                color=colors[init],
                edgecolor="white",
                linewidth=0.6,
                zorder=2,
            )
            top = auc
            if not (math.isnan(lo) or math.isnan(hi)):
                ax.errorbar(
                    x,
                    auc,
                    yerr=[[max(0.0, auc - lo)], [max(0.0, hi - auc)]],
                    fmt="none",
                    ecolor="0.15",
                    elinewidth=1.0,
                    capsize=3,
                    capthick=1.0,
                    zorder=3,
                )
                top = hi
            best = r.get("best") is True or str(r.get("best")).lower() == "true"
            ax.text(
                x,
                top + 0.012,
                f"{auc:.2f}",
                ha="center",
                va="bottom",
                fontsize=8,
                fontweight="bold" if best else "normal",
                zorder=4,
            )
    ax.set_xticks(range(len(archs)))
    ax.set_xticklabels([ARCH_LABELS.get(a, a) for a in archs], fontsize=10)
    ax.set_xlim(-0.6, len(archs) - 0.4)
    ax.set_ylim(bottom, 1.07)
    ticks = np.round(np.arange(bottom, 1.0001, 0.1), 1)
    ax.set_yticks(ticks)
    ax.set_ylabel("ROC AUC (out-of-fold)", fontsize=10)
    _style_axes(ax)
    ax.spines["left"].set_bounds(bottom, 1.0)
    ax.yaxis.grid(True, color="0.92", lw=0.8)
    ax.set_axisbelow(True)

    ns = [
        (int(_num(r.get("n"))), int(_num(r.get("n_pos"))))
        for r in rows
        if not math.isnan(_num(r.get("n"))) and not math.isnan(_num(r.get("n_pos")))
    ]
    conf = _num(rows[0].get("confidence"))
    pct = "95%" if math.isnan(conf) else f"{100 * conf:g}%"
    meth = (
        str(rows[0].get("ci_method") or "")
        .replace("delong-logit", "DeLong, logit")
        .replace("delong", "DeLong")
        .replace("bootstrap", "bootstrap")
    )
    name = task_title or TASK_TITLES.get(task, task)
    sub = ", ".join(
        s for s in (_n_text(ns) if ns else "", f"error bars {pct} CI" + (f" ({meth})" if meth else "")) if s
    )
    what = "architecture and pretraining" if len(inits) > 1 else f"architecture ({INIT_LABELS.get(inits[0], inits[0])})"
    ax.set_title(f"{name}: AUC by {what}\n{sub}", fontsize=11)
    handles = [Patch(facecolor=colors[i], label=INIT_LABELS.get(i, i)) for i in inits] + [chance]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=9)
    return save_figure(fig, path, dpi=dpi)


# ---------------------------------------------------------------------------------- confusion
def plot_confusion(metrics_row: Mapping[str, Any], *, path: str | Path, dpi: int = DPI) -> Path:
    """2x2 confusion matrix (rows: actual, columns: predicted) of one model, with sens/spec/PPV/NPV.

    ``metrics_row`` is a row of :func:`evaluate_oof` (or the dict of :func:`binary_metrics`
    plus ``model``/``task``): needs ``tp, fp, tn, fn``; uses ``threshold`` and the ``*_lower`` /
    ``*_upper`` Wilson limits when present.
    """
    try:
        tp, fp, tn, fn = (int(_num(metrics_row[k])) for k in ("tp", "fp", "tn", "fn"))
    except (KeyError, ValueError) as exc:
        raise MetricsInputError(f"plot_confusion needs integer tp, fp, tn, fn in the metrics row ({exc})") from None
    mat = np.array([[tp, fn], [fp, tn]], dtype=float)
    row_tot = mat.sum(axis=1, keepdims=True)
    frac = np.divide(mat, row_tot, out=np.zeros_like(mat), where=row_tot > 0)

    fig = _new_figure(4.8, 4.9)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    names = [["TP", "FN"], ["FP", "TN"]]
    for i in range(2):
        for j in range(2):
            pct = f"{100 * frac[i, j]:.0f}% of row" if row_tot[i, 0] > 0 else "n/a"
            ax.text(
                j,
                i,
                f"{names[i][j]}\n{int(mat[i, j])}\n({pct})",
                ha="center",
                va="center",
                fontsize=11,
                color="white" if frac[i, j] > 0.6 else "black",
            )
    ax.set_xticks([0, 1])
    ax.set_xticklabels(["Predicted +", "Predicted \u2212"], fontsize=10)
    ax.set_yticks([0, 1])
    ax.set_yticklabels([f"Actual +\n(n={tp + fn})", f"Actual \u2212\n(n={fp + tn})"], fontsize=10)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)

    def m(name: str, k: int, tot: int) -> str:
        v = _num(metrics_row.get(name)) if name in metrics_row else (k / tot if tot else float("nan"))
        if math.isnan(v):
            return f"{name.upper() if len(name) == 3 else name.capitalize()} n/a"
        lo, hi = _num(metrics_row.get(f"{name}_lower")), _num(metrics_row.get(f"{name}_upper"))
        ci = "" if math.isnan(lo) or math.isnan(hi) else f" ({100 * lo:.0f}\u2013{100 * hi:.0f})"
        label = name.upper() if len(name) == 3 else name.capitalize()
        return f"{label} {100 * v:.0f}%{ci}"

    lines = (
        f"{m('sensitivity', tp, tp + fn)}   {m('specificity', tn, tn + fp)}\n"
        f"{m('ppv', tp, tp + fp)}   {m('npv', tn, tn + fn)}"
    )
    ax.set_xlabel(lines, fontsize=9, labelpad=10)
    thr = metrics_row.get("threshold")
    task = metrics_row.get("task")
    who = " \u2014 ".join(
        v for v in (TASK_TITLES.get(str(task), str(task)) if task else "", str(metrics_row.get("model") or "")) if v
    )
    head = f"{who}\n" if who else ""
    ax.set_title(f"{head}Confusion matrix at prob \u2265 {thr if thr is not None else 0.5}", fontsize=11)
    return save_figure(fig, path, dpi=dpi)


# ---------------------------------------------------------------------------------- calibration
def plot_calibration(
    y_true: Any,
    y_score: Any,
    *,
    label: str,
    path: str | Path,
    n_bins: int = 5,
    strategy: str = "quantile",
    dpi: int = DPI,
) -> Path:
    """Reliability diagram (observed fraction positive vs mean predicted probability per bin) with
    the Brier score, over a histogram of the predicted probabilities by true class."""
    cal = calibration(y_true, y_score, n_bins=n_bins, strategy=strategy)
    y = _check_labels(y_true)
    s = _check_scores(y_score, y.size, probability=True)

    fig = _new_figure(5.0, 6.0)
    gs = fig.add_gridspec(2, 1, height_ratios=(3.2, 1.0))
    ax = fig.add_subplot(gs[0])
    axh = fig.add_subplot(gs[1], sharex=ax)
    ax.plot([0, 1], [0, 1], ls=":", lw=1.0, color="0.55", label="Perfect calibration")
    ax.plot(
        cal["prob_pred"],
        cal["prob_true"],
        marker="o",
        ms=5,
        lw=1.6,
        color=_PALETTE[0],
        label=f"{label} (Brier {cal['brier']:.3f})",
    )
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_ylabel("Observed fraction positive", fontsize=10)
    ax.grid(True, color="0.92", lw=0.8)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", fontsize=8, frameon=True, framealpha=0.95, edgecolor="0.8")
    _style_axes(ax)
    ax.tick_params(labelbottom=False)
    ax.set_title(
        f"Calibration \u2014 {cal['n_bins']} {cal['strategy']} bins\nn={cal['n']} ({cal['n_pos']} positive)",
        fontsize=11,
    )
    bins = np.linspace(0, 1, 21)
    axh.hist(
        [s[y == 0], s[y == 1]],
        bins=bins,
        stacked=True,
        color=["0.7", _PALETTE[1]],
        label=["negative", "positive"],
        edgecolor="white",
        linewidth=0.4,
    )
    axh.set_xlabel("Predicted probability (points: bin mean)", fontsize=10)
    axh.set_ylabel("Patients", fontsize=9)
    axh.legend(loc="upper right", fontsize=7, frameon=False)
    _style_axes(axh)
    return save_figure(fig, path, dpi=dpi)
