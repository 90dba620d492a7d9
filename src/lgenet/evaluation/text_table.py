"""The printed summary of a run's metrics: one fixed-width line per (task, model)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lgenet.evaluation.metrics_files import common_setting

__all__ = ["format_table"]


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _pct(v: Any) -> str:
    f = _f(v)
    return "n/a" if math.isnan(f) else f"{100 * f:.0f}%"


def _p(v: Any) -> str:
    f = _f(v)
    if math.isnan(f):
        return "n/a"
    return "<0.001" if f < 0.001 else f"{f:.3f}"


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, (str, int, np.integer, np.bool_)) and str(v).strip().lower() in ("true", "1"))


def _auc_text(m: Mapping[str, Any]) -> str:
    conf = _f(m.get("confidence"))
    pct = "95" if math.isnan(conf) else f"{100 * conf:g}"
    auc, lo, hi = _f(m.get("auc")), _f(m.get("auc_lower")), _f(m.get("auc_upper"))
    ci = f"{pct}% CI n/a" if math.isnan(lo) or math.isnan(hi) else f"{pct}% CI {lo:.2f}\u2013{hi:.2f}"
    return f"AUC {auc:.2f} ({ci}), n={m.get('n')} ({m.get('n_pos')}+)"


#: one line per model family present in a table: what its rows are
_FAMILY_LEGEND = (
    ("classifier", "ARCH/INIT: the seed study's protocol, a CNN on the basal frame (at this run's budget)."),
    (
        "burden",
        "burden:whole/seg, burden:basal/seg: the segmentation's predicted LGE % (whole LV, basal slice) "
        "as the score, out of fold, no fitting.",
    ),
    ("roi", "roi:ARCH/INIT: a CNN on the basal frame's LV-centred window (placed by the segmenter)."),
    ("stack", "stack:ARCH/INIT: every slice's LV-centred window, attention-pooled into one patient probability."),
)


def format_table(metrics: Iterable[Mapping[str, Any]]) -> str:
    """Fixed-width text summary, one line per model per task, best AUC in each task marked ``*``.

    Every AUC is printed with its CI and n, e.g.
    ``lge    * resnet50/imagenet  AUC 0.80 (95% CI 0.70–0.90), n=116 (19+)  63%  79%  34%  88%  best``.
    """
    metrics = list(metrics)
    if not metrics:
        return "(no models evaluated)"
    header = ("task", "", "model", "AUC (CI), n (positives)", "sens", "spec", "PPV", "NPV", "p vs best")
    lines: list[tuple[str, ...]] = []
    for m in metrics:
        is_best = _truthy(m.get("best"))
        lines.append(
            (
                str(m.get("task", "")),
                "*" if is_best else "",
                str(m.get("model", "")),
                _auc_text(m),
                _pct(m.get("sensitivity")),
                _pct(m.get("specificity")),
                _pct(m.get("ppv")),
                _pct(m.get("npv")),
                "best" if is_best else _p(m.get("delong_p_vs_best")),
            )
        )
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    right = {4, 5, 6, 7, 8}

    def fmt(r: tuple[str, ...]) -> str:
        cells = [r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in range(len(r))]
        return "  ".join(cells).rstrip()

    out = [fmt(header), "  ".join("-" * w for w in widths)]
    prev_task = None
    for m, r in zip(metrics, lines):
        if prev_task is not None and r[0] != prev_task:
            out.append("")
        prev_task = r[0]
        out.append(fmt(r))
    thr = common_setting(metrics, "threshold")
    meth = common_setting(metrics, "ci_method")
    out.append("")
    out.append(
        f"* best AUC within task. AUC CI: {meth}. sens/spec/PPV/NPV at prob >= {thr}. "
        "p vs best: paired two-sided DeLong test against the task's best model."
    )
    fams = {
        str(m.get("model", "")).split(":", 1)[0] if ":" in str(m.get("model", "")) else "classifier" for m in metrics
    }
    for fam, text in _FAMILY_LEGEND:
        if fam in fams:
            out.append(text)
    notes = [(m.get("task"), m.get("model"), m.get("note")) for m in metrics if m.get("note")]
    for t, mod, note in notes:
        out.append(f"note [{t} {mod}]: {note}")
    return "\n".join(out)
