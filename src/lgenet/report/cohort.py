"""The cohort section: size, prevalence per task, LGE burden distribution, follow-up.

Patient-level: a patient with several manifest rows counts once (rows of one patient carry the
same labels; the manifest validator checks that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lgenet.data.manifest import Cohort

__all__ = ["CohortSummary", "summarise_cohort", "plot_cohort"]

TASK_NAMES = {"lge": "LGE burden > {thr:g}%", "event": "Clinical event"}


@dataclass
class CohortSummary:
    n_patients: int
    n_rows: int
    lge_threshold: float
    tasks: dict[str, dict] = field(default_factory=dict)  # task -> n, n_pos, prevalence
    lge: list[float] = field(default_factory=list)
    lge_by_event: dict[int, list[float]] = field(default_factory=dict)
    followup: list[float] = field(default_factory=list)
    n_masks: int = 0

    def lge_text(self) -> str:
        if not self.lge:
            return "no LGE burden in the manifest"
        a = np.asarray(self.lge)
        none = int((a <= 0).sum())
        high = int((a > self.lge_threshold).sum())
        q1, med, q3 = np.percentile(a, [25, 50, 75])
        hi = a[a > self.lge_threshold]
        hi_txt = (
            f"; {hi.mean():.1f}% (\u00b1{hi.std(ddof=1) if hi.size > 1 else 0:.1f}) in the > {self.lge_threshold:g}% group"
            if hi.size
            else ""
        )
        return (
            f"{len(a)} patients with LGE burden: {none} ({100 * none / len(a):.0f}%) without LGE, {high} "
            f"({100 * high / len(a):.0f}%) above {self.lge_threshold:g}%; mean {a.mean():.1f}% "
            f"(\u00b1{a.std(ddof=1) if a.size > 1 else 0:.1f}), median {med:.1f}% [IQR {q1:.1f}\u2013{q3:.1f}]{hi_txt}"
        )

    def followup_text(self) -> str:
        if not self.followup:
            return ""
        q1, med, q3 = np.percentile(self.followup, [25, 50, 75])
        return f"median follow-up {med:.1f} years [IQR {q1:.1f}\u2013{q3:.1f}] ({len(self.followup)} patients)"


def summarise_cohort(cohort: Cohort) -> CohortSummary:
    first: dict[str, object] = {}
    for r in cohort.records:
        first.setdefault(r.patient_id, r)
    s = CohortSummary(n_patients=len(first), n_rows=len(cohort.records), lge_threshold=cohort.lge_threshold)
    for task in cohort.available_tasks:
        lab = cohort.labels(task)
        n, pos = len(lab), int(sum(lab.values()))
        s.tasks[task] = {
            "n": n,
            "n_pos": pos,
            "prevalence": pos / n if n else float("nan"),
            "name": TASK_NAMES.get(task, task).format(thr=cohort.lge_threshold),
        }
    for r in first.values():
        if r.lge_percent is not None:
            s.lge.append(float(r.lge_percent))
            if r.event is not None:
                s.lge_by_event.setdefault(int(r.event), []).append(float(r.lge_percent))
        if r.followup_years is not None:
            s.followup.append(float(r.followup_years))
    s.n_masks = sum(1 for r in cohort.records if r.mask is not None)
    return s


def plot_cohort(s: CohortSummary, *, path: str | Path) -> Path | None:
    """LGE burden histogram (threshold marked) and, with events, LGE burden by event status."""
    from lgenet.evaluation.canvas import _new_figure, _style_axes, save_figure

    if not s.lge:
        return None
    two = len(s.lge_by_event) == 2
    fig = _new_figure(10.0 if two else 6.0, 3.8)
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": (1.6, 1)}) if two else [fig.add_subplot(1, 1, 1)]
    ax = axes[0]
    a = np.asarray(s.lge)
    top = max(float(a.max()), s.lge_threshold * 1.5, 1.0)
    edges = np.concatenate([[-0.25, 0.25], np.linspace(0.25, top, 25)[1:]])
    zero = int((a <= 0).sum())
    pos = a[a > 0]
    ax.bar(
        0, zero, width=0.5 * (edges[2] - edges[1]) if len(edges) > 2 else 0.5, color="0.65", label=f"no LGE (n={zero})"
    )
    if pos.size:
        lo = pos[pos <= s.lge_threshold]
        hi = pos[pos > s.lge_threshold]
        ax.hist(
            [lo, hi],
            bins=edges[1:],
            stacked=True,
            color=["#9ecae1", "#D55E00"],
            edgecolor="white",
            label=[f"0 < LGE \u2264 {s.lge_threshold:g}% (n={lo.size})", f"LGE > {s.lge_threshold:g}% (n={hi.size})"],
        )
    ax.axvline(s.lge_threshold, ls="--", color="black", lw=1)
    ax.text(s.lge_threshold, ax.get_ylim()[1] * 0.97, f" threshold {s.lge_threshold:g}%", va="top", fontsize=8)
    ax.set_xlabel("LGE burden (% of LV myocardium)", fontsize=10)
    ax.set_ylabel("Patients", fontsize=10)
    ax.set_title(f"LGE burden distribution (n={len(a)})", fontsize=11)
    ax.legend(fontsize=8, frameon=False)
    _style_axes(ax)
    if two:
        ax2 = axes[1]
        data = [s.lge_by_event.get(0, []), s.lge_by_event.get(1, [])]
        for j, d in enumerate(data):
            d = np.asarray(d)
            jit = np.linspace(-0.15, 0.15, d.size) if d.size > 1 else np.zeros(d.size)
            ax2.scatter(j + jit, d, s=12, alpha=0.6, color=["0.45", "#D55E00"][j])
            if d.size:
                ax2.plot([j - 0.25, j + 0.25], [np.median(d)] * 2, color="black", lw=2)
        ax2.axhline(s.lge_threshold, ls="--", color="black", lw=1)
        ax2.set_xticks([0, 1])
        ax2.set_xticklabels([f"no event\n(n={len(data[0])})", f"event\n(n={len(data[1])})"], fontsize=9)
        ax2.set_ylabel("LGE burden (%)", fontsize=10)
        ax2.set_title("LGE burden by outcome (bar: median)", fontsize=11)
        _style_axes(ax2)
    return save_figure(fig, path)
