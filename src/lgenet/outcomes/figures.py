"""Outcomes figures: ROC, calibration, decision curves and Kaplan-Meier curves, out-of-fold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.conventions.thresholds import LGE_THRESHOLD

__all__ = ["outcome_figures", "MODEL_LABELS"]

_COLORS = {"covariates": "#4C72B0", "image": "#DD8452", "fusion": "#55A868"}
MODEL_LABELS = {"covariates": "Covariates only", "image": "Image only", "fusion": "Fusion"}
_KM_COLORS = ["#4C72B0", "#CCB974", "#C44E52", "#8172B3"]


def _title(task: str, thr: float) -> str:
    return f"LGE > {thr:g}%" if task == "lge" else "Clinical event"


def _save(fig, base: Path) -> str:
    from lgenet.evaluation.canvas import save_figure

    save_figure(fig, base.with_suffix(".pdf"))
    save_figure(fig, base.with_suffix(".png"))
    return base.with_suffix(".png").name


def outcome_figures(
    task: str,
    tres: Mapping[str, Any],
    pids: Sequence[str],
    y: np.ndarray,
    probs: Mapping[str, np.ndarray],
    risks: Mapping[str, np.ndarray],
    figdir: Path,
    *,
    lge_threshold: float = LGE_THRESHOLD,
) -> dict[str, str]:
    """Write the task's figures as PNG and PDF under ``figdir``; returns ``{kind: png file name}``."""
    from lgenet.evaluation.canvas import _new_figure, _style_axes
    from lgenet.evaluation.plots import plot_roc

    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    models = tres["binary"]["models"]
    title = _title(task, lge_threshold)
    curves = [(MODEL_LABELS[k], y, probs[k], None) for k in models]
    plot_roc(
        curves, title=f"{title}: covariates, image, fusion (out-of-fold)", path=figdir / f"outcomes_roc_{task}.pdf"
    )
    plot_roc(
        curves, title=f"{title}: covariates, image, fusion (out-of-fold)", path=figdir / f"outcomes_roc_{task}.png"
    )
    out["roc"] = f"outcomes_roc_{task}.png"

    fig = _new_figure(5.6, 5.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], ls=":", color="0.55", lw=1, label="Perfect calibration")
    for k, m in models.items():
        c = m["calibration"]
        ax.plot(
            c["prob_pred"],
            c["prob_true"],
            marker="o",
            color=_COLORS[k],
            lw=1.6,
            label=f"{MODEL_LABELS[k]} \u2014 slope {c['slope']:.2f} ({c['slope_lower']:.2f}\u2013{c['slope_upper']:.2f}), "
            f"Brier {c['brier']:.3f}",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Predicted probability (quintile bins)")
    ax.set_ylabel("Observed fraction")
    ax.set_title(f"{title}: calibration, n={int(y.size)} ({int(y.sum())} positive)", fontsize=11)
    ax.legend(fontsize=7.5, loc="upper left")
    _style_axes(ax)
    out["calibration"] = _save(fig, figdir / f"outcomes_calibration_{task}")

    fig = _new_figure(6.0, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    any_m = next(iter(models.values()))["decision_curve"]
    th = np.asarray(any_m["thresholds"])
    ax.plot(th, any_m["treat_all"], color="0.45", lw=1.2, ls="--", label="Treat all")
    ax.plot(th, any_m["treat_none"], color="0.2", lw=1.0, label="Treat none")
    top = max(0.01, any_m["prevalence"])
    for k, m in models.items():
        ax.plot(th, m["decision_curve"]["model"], color=_COLORS[k], lw=1.8, label=MODEL_LABELS[k])
    ax.set_ylim(-0.05 * top * 2, top * 1.15)
    ax.set_xlabel("Threshold probability")
    ax.set_ylabel("Net benefit")
    ax.set_title(f"{title}: decision curves (out-of-fold)", fontsize=11)
    ax.legend(fontsize=8)
    _style_axes(ax)
    out["dca"] = _save(fig, figdir / f"outcomes_dca_{task}")

    surv = tres.get("survival") or {}
    if surv.get("models"):
        best = "fusion" if "fusion" in surv["models"] else next(iter(surv["models"]))
        km = surv["models"][best]["km"]
        fig = _new_figure(6.0, 4.6)
        ax = fig.add_subplot(1, 1, 1)
        for i, g in enumerate(km["groups"]):
            if not g["n"]:
                continue
            col = _KM_COLORS[i % len(_KM_COLORS)]
            ax.step(
                g["timeline"],
                g["survival"],
                where="post",
                color=col,
                lw=1.8,
                label=f"{g['name']} risk: n={g['n']}, {g['events']} events",
            )
            ax.fill_between(g["timeline"], g["lower"], g["upper"], step="post", color=col, alpha=0.12)
        p = km["logrank_p"]
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("Years")
        ax.set_ylabel("Event-free survival")
        ax.set_title(
            f"Kaplan-Meier by {MODEL_LABELS[best].lower()} Cox risk (out-of-fold tertiles)\nlog-rank p = {p:.3g}"
            if p == p
            else "Kaplan-Meier",
            fontsize=10.5,
        )
        ax.legend(fontsize=8, loc="lower left")
        _style_axes(ax)
        out["km"] = _save(fig, figdir / f"outcomes_km_{task}")
    return out


# ------------------------------------------------------------------------------------------ HTML
