"""The report's cell texts: numbers with their CIs, p values, task and class names."""

from __future__ import annotations

import math
from typing import Any

from lgenet.report.figure1 import TASK_LABELS

__all__ = ["num", "ci_text", "p_text", "ordinal", "is_best", "task_name", "class_names"]


def num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def ci_text(v, lo, hi, pct: bool = False) -> str:
    v, lo, hi = num(v), num(lo), num(hi)
    if math.isnan(v):
        return "n/a"
    if pct:
        s = f"{100 * v:.0f}%"
        return s if math.isnan(lo) else f"{s} ({100 * lo:.0f}\u2013{100 * hi:.0f})"
    s = f"{v:.2f}"
    return s if math.isnan(lo) else f"{s} ({lo:.2f}\u2013{hi:.2f})"


def p_text(v) -> str:
    v = num(v)
    if math.isnan(v):
        return "\u2014"
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def ordinal(v: float) -> str:
    if float(v) != int(v):
        return f"{v:g}th"
    n = int(v)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def is_best(r) -> bool:
    return r.get("best") is True or str(r.get("best")).lower() == "true"


def task_name(task: str, thr: float) -> str:
    return TASK_LABELS.get(task, task).format(thr=thr)


def class_names(task: str, thr: float) -> tuple[str, str]:
    return (f"LGE \u2264 {thr:g}%", f"LGE > {thr:g}%") if task == "lge" else ("no event", "event")
