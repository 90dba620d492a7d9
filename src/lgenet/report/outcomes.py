"""Outcomes figures (ROC, calibration, decision curve, Kaplan-Meier) and the report's Outcomes section."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import html as H

__all__ = ["outcome_figures", "outcomes_section"]

_COLORS = {"covariates": "#4C72B0", "image": "#DD8452", "fusion": "#55A868"}
_LABELS = {"covariates": "Covariates only", "image": "Image only", "fusion": "Fusion"}
_KM_COLORS = ["#4C72B0", "#CCB974", "#C44E52", "#8172B3"]


def _title(task: str, thr: float) -> str:
    return f"LGE > {thr:g}%" if task == "lge" else "Clinical event"


def _save(fig, base: Path) -> str:
    from ..evaluation.plots import save_figure

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
    lge_threshold: float = 5.7,
) -> dict[str, str]:
    """Write the task's figures as PNG and PDF under ``figdir``; returns ``{kind: png file name}``."""
    from ..evaluation.plots import _new_figure, _style_axes, plot_roc

    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    models = tres["binary"]["models"]
    title = _title(task, lge_threshold)
    curves = [(_LABELS[k], y, probs[k], None) for k in models]
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
            label=f"{_LABELS[k]} \u2014 slope {c['slope']:.2f} ({c['slope_lower']:.2f}\u2013{c['slope_upper']:.2f}), "
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
        ax.plot(th, m["decision_curve"]["model"], color=_COLORS[k], lw=1.8, label=_LABELS[k])
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
            f"Kaplan-Meier by {_LABELS[best].lower()} Cox risk (out-of-fold tertiles)\nlog-rank p = {p:.3g}"
            if p == p
            else "Kaplan-Meier",
            fontsize=10.5,
        )
        ax.legend(fontsize=8, loc="lower left")
        _style_axes(ax)
        out["km"] = _save(fig, figdir / f"outcomes_km_{task}")
    return out


# ------------------------------------------------------------------------------------------ HTML
def _ci(v, lo, hi, d: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if lo is None or hi is None:
        return f"{v:.{d}f}"
    return f"{v:.{d}f} ({lo:.{d}f}\u2013{hi:.{d}f})"


def _p(v) -> str:
    if v is None:
        return "n/a"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def outcomes_section(outcomes_dir: str | Path) -> str:
    """The report's "Outcomes" section from ``outcomes.json`` (empty string when there is none)."""
    d = Path(outcomes_dir)
    f = d / "outcomes.json"
    if not f.is_file():
        return ""
    s = json.loads(f.read_text())
    parts = [
        f"<p>Covariates-only, image-only and fusion models, cross-validated in the same patient folds "
        f"({H.esc(s['fold_source'])}); everything learned is fitted on the training folds only. "
        f"Image measures: {H.esc(s.get('segmentation_kind') or 'none (no segmentation run)')}.</p>",
        H.details("How far the folds keep the test patients out", H.esc(s["leakage_note"])),
    ]
    for note in s.get("notes", []):
        parts.append(f"<p class='note'>{H.esc(note)}</p>")
    for task, t in s["tasks"].items():
        parts.append(f"<h3>{'Clinical event' if task == 'event' else 'LGE burden'} ({H.esc(task)})</h3>")
        for k, why in t.get("skipped", {}).items():
            parts.append(f"<p class='note'>{H.esc(_LABELS.get(k, k))} model not fitted: {H.esc(why)}</p>")
        b = t.get("binary")
        if not b:
            continue
        for k, why in b.get("skipped", {}).items():
            parts.append(f"<p class='note'>{H.esc(_LABELS.get(k, k))} logistic model failed: {H.esc(why)}</p>")
        rows = []
        for k, m in b["models"].items():
            a, c = m["auc"], m["calibration"]
            rows.append(
                [
                    _LABELS[k],
                    ", ".join(m["columns"]),
                    _ci(a["auc"], a["lower"], a["upper"]),
                    f"{a['n']} ({a['n_pos']}+)",
                    _ci(c["slope"], c["slope_lower"], c["slope_upper"]),
                    _ci(c["intercept"], c["intercept_lower"], c["intercept_upper"]),
                    _ci(c["brier"], c["brier_lower"], c["brier_upper"], 3),
                ]
            )
        parts.append(
            H.table(
                ["model", "inputs", "AUC (95% CI)", "n", "calibration slope", "calibration-in-the-large", "Brier"], rows
            )
        )
        refs = b.get("references", {})
        if refs:
            rows = []
            for col, r in refs.items():
                a = r["auc"]
                vs = "; ".join(f"{_LABELS[k]} {v['diff']:+.3f} (p {_p(v['p'])})" for k, v in r["vs"].items())
                rows.append([r["what"], _ci(a["auc"], a["lower"], a["upper"]), f"{a['n']} ({a['n_pos']}+)", vs])
            parts.append(
                "<p>Clinical reference: the LGE burden itself as the score (no fitting).</p>"
                + H.table(["score", "AUC (95% CI)", "n", "\u0394AUC of each model vs this score (DeLong p)"], rows)
            )
        cmp_rows = [
            [
                f"{_LABELS[c['a']]} vs {_LABELS[c['b']]}",
                f"{c['diff']:+.3f}",
                _p(c["p"]),
                _ci(c["nri"]["nri"], c["nri"]["lower"], c["nri"]["upper"]),
            ]
            for c in b["comparisons"]
        ]
        if cmp_rows:
            parts.append(H.table(["comparison", "\u0394AUC", "DeLong p", "continuous NRI (95% CI)"], cmp_rows))
        sv = t.get("survival")
        for k, why in (sv or {}).get("skipped", {}).items():
            parts.append(f"<p class='note'>{H.esc(_LABELS.get(k, k))} Cox model failed: {H.esc(why)}</p>")
        if sv and sv.get("models"):
            rows = []
            for k, m in sv["models"].items():
                ci, td = m["c_index"], m.get("td_auc", {})
                rows.append(
                    [
                        _LABELS[k],
                        _ci(ci["c_index"], ci["lower"], ci["upper"]),
                        _ci(td["auc"], td["lower"], td["upper"]) if "auc" in td else H.esc(td.get("skipped", "")),
                        _p(m["km"]["logrank_p"]),
                    ]
                )
            parts.append(
                f"<p>Cox proportional hazards, n={sv['n']} ({sv['n_events']} events), median follow-up "
                f"{sv['median_followup']:.1f} years; time-dependent AUC at {sv['horizon']:g} years.</p>"
            )
            parts.append(
                H.table(["model", "Harrell's C (95% CI)", f"AUC({sv['horizon']:g} y)", "log-rank p (tertiles)"], rows)
            )
            cmp_rows = [
                [f"{_LABELS[c['a']]} vs {_LABELS[c['b']]}", _ci(c["diff"], c["lower"], c["upper"], 3), _p(c["p"])]
                for c in sv["comparisons"]
            ]
            if cmp_rows:
                parts.append(H.table(["comparison", "\u0394C (95% CI)", "bootstrap p"], cmp_rows))
        elif sv and sv.get("not_fitted"):
            parts.append(f"<p class='note'>Time-to-event models not fitted: {H.esc(sv['not_fitted'])}</p>")
        t1 = t.get("table1")
        if t1:
            g0, g1 = t1["groups"]
            parts.append(
                H.details(
                    f"Table 1 by {H.esc(g1)} status",
                    H.table(
                        ["", g0, g1, "all", "p", "test"],
                        [[r["column"], r["group0"], r["group1"], r["all"], _p(r["p"]), r["test"]] for r in t1["rows"]],
                    ),
                )
            )
        figs = s.get("figures", {}).get(task, {})
        imgs = []
        for kind, cap in (
            ("roc", "ROC"),
            ("calibration", "Calibration"),
            ("dca", "Decision curves"),
            ("km", "Kaplan-Meier"),
        ):
            if kind in figs and (d / "figures" / figs[kind]).is_file():
                imgs.append(H.img(d / "figures" / figs[kind], f"{cap} {task}", caption=cap, width=420))
        parts.append("".join(imgs))
    return H.section("outcomes", "Outcomes", "\n".join(parts))
