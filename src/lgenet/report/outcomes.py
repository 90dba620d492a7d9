"""The report's Outcomes section (its figures: :mod:`lgenet.outcomes.figures`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lgenet.report.html as H

__all__ = ["outcomes_section"]

from lgenet.outcomes.figures import MODEL_LABELS as _LABELS


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
    try:
        s = json.loads(f.read_text())
        if not isinstance(s, dict) or not {"fold_source", "leakage_note", "tasks"} <= set(s):
            raise ValueError("not an lgenet outcomes.json")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        from lgenet.errors import DataError, short_reason

        raise DataError(
            f"{f} is damaged or truncated ({short_reason(exc)}); rerun `lgenet outcomes {d.parent}` to rewrite it, "
            f"or delete {d} to leave the outcomes out of the report"
        ) from None
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
                    f"Table 1 by {g1} status",  # details() escapes its summary
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
