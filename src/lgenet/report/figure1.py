"""``figure1.png`` / ``figure1.pdf``: the seed's Figure 1, rebuilt from a run.

Layout (as in the seed)::

    A  best pipeline, LGE task            B  best pipeline, event task
    C  AUC by architecture x pretraining  D  same, event task
    E  F  G  H   frames: true positive, false negative, true negative, false positive
    I  J  K  L   their out-of-fold CAM overlays (E-I, F-J, G-K, H-L)

E-L show the LGE task when it was trained (else the first task). A missing task or CAM leaves a
panel that says why, never a silently different figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.patches import FancyBboxPatch

from lgenet.evaluation.canvas import (
    ARCH_LABELS,
    INIT_COLORS,
    INIT_LABELS,
    INIT_ORDER,
    _new_figure,
    _style_axes,
    save_figure,
)
from lgenet.explain.cam import METHOD_LABELS
from lgenet.explain.gallery import CATEGORIES, CATEGORY_TITLES, Case, case_images

__all__ = ["plot_figure1", "CamPanels", "figure_title", "TASK_LABELS"]

TASK_LABELS = {"lge": "LGE burden > {thr:g}%", "event": "Clinical event"}


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _letter(ax, letter: str, *, x: float = -0.02, y: float = 1.02) -> None:
    ax.text(x, y, letter, transform=ax.transAxes, fontsize=15, fontweight="bold", va="bottom", ha="right")


def _pct(v: Any) -> str:
    v = _num(v)
    return "n/a" if math.isnan(v) else f"{100 * v:.0f}%"


def _pipeline(
    ax, letter: str, task: str, best: Mapping[str, Any] | None, cfg, thr: float, thumb: np.ndarray | None
) -> None:
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _letter(ax, letter, x=0.0)
    name = TASK_LABELS.get(task, task).format(thr=thr)
    if best is None:
        ax.text(
            0.5,
            0.5,
            f"{name}: not trained in this run\n(no labels for it in the manifest)",
            ha="center",
            va="center",
            fontsize=10,
            color="0.4",
        )
        return
    arch, init = str(best["arch"]), str(best["init"])
    family, _, base_arch = arch.partition(":") if ":" in arch else ("classifier", "", arch)
    short = {"lge": f"LGE > {thr:g}%", "event": "event"}.get(task, task)
    thumb_title = "basal LGE frame"
    if family == "burden":  # the predicted burden itself is the score: no CNN head
        where = "basal slice" if base_arch == "basal" else "whole LV"
        thumb_title = "LGE stack (basal frame)"
        boxes = [
            ("LGE short-axis\nstack", "#eeeeee"),
            ("Segmentation\n2-D UNet\n(out of fold)", INIT_COLORS.get(init, "#cccccc")),
            (f"LGE % of the\nmyocardium\n({where})", "#eeeeee"),
            (
                f"P({short}) =\nsigmoid((LGE %\n\u2212 {cfg.lge_threshold:g}) / {getattr(cfg, 'burden_scale', 2.0):g})",
                "#fde0c5",
            ),
        ]
    elif family in ("roi", "stack"):
        thumb_title = "basal LGE frame" if family == "roi" else "LGE stack (basal frame)"
        boxes = [
            ("LGE short-axis\nstack", "#eeeeee"),
            ("Segmentation\nplaces the\nLV window", INIT_COLORS.get("seg", "#cccccc")),
            (
                f"{ARCH_LABELS.get(base_arch, base_arch)}\n"
                + ("basal window" if family == "roi" else "every slice,\nattention pool"),
                "#eeeeee",
            ),
            (f"Sigmoid\nP({short})", "#fde0c5"),
        ]
    else:
        size = cfg.image_size or {"resnet50": 224, "inception_v3": 299}.get(arch, "default")
        head = (
            "Flatten\nDense %d\nReLU\nDropout %g" % (cfg.dense_units, cfg.dropout)
            if cfg.head == "flatten"
            else "Global avg\npool"
        )
        boxes = [
            ("Basal LGE\nframe", "#eeeeee"),
            (f"{size}\u00d7{size} px\npercentile\nscaling", "#eeeeee"),
            (f"{ARCH_LABELS.get(arch, arch)}\n{INIT_LABELS.get(init, init)}", INIT_COLORS.get(init, "#cccccc")),
            (head, "#eeeeee"),
            (f"Sigmoid\nP({short})", "#fde0c5"),
        ]
    n = len(boxes)
    xs = np.linspace(0.09, 0.91, n)
    y, w, h = 0.62, 0.165, 0.42
    for k, (text, color) in enumerate(boxes):
        if k == 0 and thumb is not None:
            inset = ax.inset_axes((xs[k] - w / 2, y - h / 2 - 0.02, w, h + 0.04))
            inset.imshow(thumb, cmap="gray", vmin=0, vmax=1)
            inset.set_aspect("equal")
            inset.set_axis_off()
            inset.set_title(thumb_title, fontsize=7.5, pad=2)
        else:
            dark = color.lower() in ("#0072b2", "#d55e00")
            ax.add_patch(
                FancyBboxPatch(
                    (xs[k] - w / 2, y - h / 2),
                    w,
                    h,
                    boxstyle="round,pad=0,rounding_size=0.02",
                    facecolor=color,
                    edgecolor="0.4",
                    lw=0.8,
                    mutation_aspect=0.5,
                )
            )
            ax.text(xs[k], y, text, ha="center", va="center", fontsize=7.8, color="white" if dark else "black")
        if k < n - 1:
            ax.annotate(
                "",
                xy=(xs[k + 1] - w / 2, y),
                xytext=(xs[k] + w / 2, y),
                arrowprops=dict(arrowstyle="->", color="0.25", lw=1.2, shrinkA=1, shrinkB=1),
            )
    auc, lo, hi = (_num(best.get(k)) for k in ("auc", "auc_lower", "auc_upper"))
    ci = "" if math.isnan(lo) else f" (95% CI {lo:.2f}\u2013{hi:.2f})"
    ax.text(
        0.5,
        0.2,
        f"Best model for {name}: AUC {auc:.2f}{ci}\n"
        f"sensitivity {_pct(best.get('sensitivity'))}, specificity {_pct(best.get('specificity'))}, "
        f"PPV {_pct(best.get('ppv'))}, NPV {_pct(best.get('npv'))} at p \u2265 {_num(best.get('threshold')):g}; "
        f"n={int(_num(best.get('n')))} ({int(_num(best.get('n_pos')))} positive), {cfg.folds}-fold CV",
        ha="center",
        va="center",
        fontsize=8.5,
    )
    ax.set_title(f"Best pipeline: {name}", fontsize=11, loc="center", pad=2)


def _auc_bars(ax, letter: str, task: str, rows: Sequence[Mapping[str, Any]], thr: float) -> None:
    _letter(ax, letter)
    name = TASK_LABELS.get(task, task).format(thr=thr)
    rows = [r for r in rows if r.get("task") == task]
    if not rows:
        ax.set_axis_off()
        ax.text(
            0.5,
            0.5,
            f"{name}: not trained in this run",
            ha="center",
            va="center",
            fontsize=10,
            color="0.4",
            transform=ax.transAxes,
        )
        return
    archs = list(dict.fromkeys(str(r["arch"]) for r in rows))
    seen = list(dict.fromkeys(str(r["init"]) for r in rows))
    inits = [i for i in INIT_ORDER if i in seen] + [i for i in seen if i not in INIT_ORDER]
    width = 0.8 / len(inits)
    bottom = 0.0  # bars are lengths: the axis starts at 0, as in plot_auc_bars
    for a, arch in enumerate(archs):
        for k, init in enumerate(inits):
            r = next((r for r in rows if r["arch"] == arch and r["init"] == init), None)
            if r is None:
                continue
            x = a + (k - (len(inits) - 1) / 2) * width
            auc, lo, hi = _num(r.get("auc")), _num(r.get("auc_lower")), _num(r.get("auc_upper"))
            ax.bar(
                x,
                auc - bottom,
                width * 0.9,
                bottom=bottom,
                color=INIT_COLORS.get(init, "#56B4E9"),
                edgecolor="white",
                label=INIT_LABELS.get(init, init) if a == 0 else None,
            )
            top = auc
            if not (math.isnan(lo) or math.isnan(hi)):
                ax.errorbar(
                    x,
                    auc,
                    yerr=[[max(0, auc - lo)], [max(0, hi - auc)]],
                    fmt="none",
                    ecolor="0.15",
                    elinewidth=1,
                    capsize=3,
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
            )
    ax.axhline(0.5, ls="--", lw=1, color="0.3", zorder=2.5, label="chance (AUC 0.5)")  # over the bars
    ax.set_xticks(range(len(archs)))
    ax.set_xticklabels([ARCH_LABELS.get(a, a) for a in archs], fontsize=9.5)
    pad = 0.5 * max(0, 3 - len(archs))
    ax.set_xlim(-0.6 - pad, len(archs) - 0.4 + pad)
    ax.set_ylim(bottom, 1.08)
    ax.set_yticks(np.round(np.arange(bottom, 1.0001, 0.1), 1))
    ax.spines["left"].set_bounds(bottom, 1.0)
    ax.set_ylabel("ROC AUC (95% CI)", fontsize=9.5)
    ax.yaxis.grid(True, color="0.92")
    ax.set_axisbelow(True)
    _style_axes(ax)
    # under the tick labels, where no bar, CI or value label can reach it
    ax.legend(
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.09),
        ncol=len(inits) + 1,
        frameon=False,
        handlelength=1.8,
        columnspacing=1.4,
    )
    what = "architecture and pretraining" if len(inits) > 1 else f"architecture ({INIT_LABELS.get(inits[0], inits[0])})"
    ax.set_title(f"{name}: AUC by {what}", fontsize=10.5)


_PRETRAINED = ("imagenet", "radimagenet")


def figure_title(metrics: Sequence[Mapping[str, Any]], cfg) -> str:
    """The figure's title, true to the run: the tasks trained and the initialisations compared.

    "transfer learning" is claimed only when a pretrained init (ImageNet, RadImageNet) is among the
    evaluated models; a run of random-init models says "random initialisation". The metrics rows
    decide (what was actually evaluated); the run's config is the fallback when there are none.
    """
    tasks = list(dict.fromkeys(str(r.get("task")) for r in metrics)) or list(getattr(cfg, "tasks", ()) or ())
    inits = list(dict.fromkeys(str(r.get("init") or "") for r in metrics if r.get("init")))
    if not inits:
        inits = list(getattr(cfg, "inits", ()) or ())
    what = " and ".join(w for t, w in (("lge", "LGE detection"), ("event", "outcome prediction")) if t in tasks)
    what = what or "Prediction"
    pre = [INIT_LABELS.get(i, i) for i in INIT_ORDER if i in inits and i in _PRETRAINED]
    if pre and "random" in inits:
        how = f"deep learning: random initialisation vs transfer learning ({', '.join(pre)})"
    elif pre:
        how = f"deep transfer learning ({', '.join(pre)})"
    elif "random" in inits:
        how = "deep learning from random initialisation (no pretraining)"
    else:
        how = "deep learning"
    if "seg" in inits:  # the anatomy-aware families (burden, roi, stack) stand on a learned segmentation
        how = (f"{how}, and " if ("random" in inits or pre) else "") + "a learned LGE segmentation"
    return f"Figure 1. {what} with {how}"


@dataclass(frozen=True)
class CamPanels:
    """What panels E-L show: one task's out-of-fold CAMs and the cases drawn from them.

    Attributes:
        task: the task explained (``lge`` or ``event``).
        cams: its :class:`~lgenet.explain.oof_store.OofCams`.
        cases: the gallery's cases per category (:func:`~lgenet.explain.gallery.select_cases`).
        store: the cohort's frames (:class:`~lgenet.explain.frames.FrameStore`).
        truth: each case's reference label in words (``"LGE 7.1%"``), shown in its title.
    """

    task: str
    cams: Any
    cases: dict[str, list[Case]]
    store: Any = None
    truth: dict[str, str] | None = None


def plot_figure1(
    *,
    metrics: Sequence[Mapping[str, Any]],
    cfg,
    paths: Sequence[str | Path],
    panels: CamPanels | None = None,
    cam_note: str = "",
) -> list[Path]:
    """Draw the composite and save it to every path (``.png`` and/or ``.pdf``).

    Without ``panels`` (no CAMs), panels E-L say why, in ``cam_note``.
    """
    cam_task = panels.task if panels else None
    cams = panels.cams if panels else None
    store = panels.store if panels else None
    cases = panels.cases if panels else None
    truth = panels.truth if panels else None
    thr = cfg.lge_threshold
    fig = _new_figure(13.0, 14.8)
    # rows: A-B, C-D, a spacer (C-D's tick labels and legend must not meet the E-H titles), E-H, I-L
    gs = fig.add_gridspec(5, 4, height_ratios=(1.15, 1.75, 0.1, 1.6, 1.6))
    best = {r["task"]: r for r in metrics if r.get("best") is True or str(r.get("best")).lower() == "true"}
    thumb = None
    if cams is not None and cases:
        first = next((c[0] for c in (cases.get(k) for k in CATEGORIES) if c), None)
        if first is not None:
            thumb = case_images(cams, store, first)[0]
    for col, (task, la, lc) in enumerate((("lge", "A", "C"), ("event", "B", "D"))):
        _pipeline(fig.add_subplot(gs[0, 2 * col : 2 * col + 2]), la, task, best.get(task), cfg, thr, thumb)
        _auc_bars(fig.add_subplot(gs[1, 2 * col : 2 * col + 2]), lc, task, metrics, thr)

    top = "EFGH"
    bottom = "IJKL"
    last_overlay = None
    for j, cat in enumerate(CATEGORIES):
        ax_f = fig.add_subplot(gs[3, j])
        ax_o = fig.add_subplot(gs[4, j])
        for ax in (ax_f, ax_o):
            ax.set_xticks([])
            ax.set_yticks([])
        _letter(ax_f, top[j])
        _letter(ax_o, bottom[j])
        got = (cases or {}).get(cat) or []
        if cams is None or not got:
            why = "no case at this threshold" if cams is not None else (cam_note or "CAMs not available")
            for ax in (ax_f, ax_o):
                ax.text(
                    0.5,
                    0.5,
                    f"{CATEGORY_TITLES[cat]}:\n{why}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="0.4",
                    wrap=True,
                    transform=ax.transAxes,
                )
                for s in ax.spines.values():
                    s.set_color("0.85")
            continue
        c = got[0]
        f01, _, over = case_images(cams, store, c)
        ax_f.imshow(f01, cmap="gray", vmin=0, vmax=1)
        ax_o.imshow(over)
        ref = f" \u00b7 {truth[c.patient_id]}" if truth and c.patient_id in truth else ""
        ax_f.set_title(f"{CATEGORY_TITLES[cat]}\n{c.patient_id} \u00b7 p={c.prob:.2f}{ref}", fontsize=9.5)
        names = (f"LGE \u2264 {thr:g}%", f"LGE > {thr:g}%") if cam_task == "lge" else ("no event", "event")
        cls = names[1] if cams.signs[c.index] > 0 else names[0]
        ax_o.set_title(f"{METHOD_LABELS.get(cams.method, cams.method)} for '{cls}' (out-of-fold)", fontsize=9)
        last_overlay = ax_o
    if cams is not None and last_overlay is not None:  # what the colours mean (opacity grows with the value)
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        from lgenet.explain.overlay import CAM_CMAP

        cax = last_overlay.inset_axes((1.03, 0.0, 0.045, 1.0))  # beside panel L, which keeps its size
        cb = fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=CAM_CMAP), cax=cax)
        cb.set_label("CAM (0\u20131; opacity grows with it)", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    model = cams.model if cams is not None else ""
    name = TASK_LABELS.get(cam_task or "", cam_task or "").format(thr=thr)
    fig.suptitle(
        figure_title(metrics, cfg)
        + (
            f"\nE\u2013L: class activation maps of {model} for {name}, each from the patient's out-of-fold model"
            if model
            else ""
        ),
        fontsize=12.5,
    )
    return [save_figure(fig, p) for p in paths]
