"""CAM gallery: the most confident true/false positives/negatives of a model, frame beside overlay.

Cases are ranked on the **out-of-fold** probability the metrics use (``oof_predictions.csv``):

* TP -- positives called positive, highest probability first;
* FN -- positives called negative, lowest probability first (the most confidently missed);
* TN -- negatives called negative, lowest probability first;
* FP -- negatives called positive, highest probability first.

Ties are broken by patient id so the gallery is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgenet.explain.cam import METHOD_LABELS
from lgenet.explain.frames import FrameStore
from lgenet.explain.oof_store import OofCams
from lgenet.explain.overlay import CAM_CMAP, cam_to_frame, display_frame, overlay_rgb

__all__ = ["CATEGORIES", "CATEGORY_TITLES", "Case", "select_cases", "plot_gallery", "case_images"]

CATEGORIES = ("TP", "FN", "TN", "FP")
CATEGORY_TITLES = {"TP": "True positive", "FN": "False negative", "TN": "True negative", "FP": "False positive"}


@dataclass(frozen=True)
class Case:
    category: str
    index: int  # into OofCams
    patient_id: str
    prob: float
    y_true: int


def select_cases(cams: OofCams, *, threshold: float = 0.5, n: int = 1) -> dict[str, list[Case]]:
    """Up to ``n`` most confident cases of each category (one row per patient: its first frame)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    first: dict[str, int] = {}
    for i, pid in enumerate(cams.patient_ids):
        first.setdefault(pid, i)
    out: dict[str, list[Case]] = {c: [] for c in CATEGORIES}
    for pid, i in first.items():
        p, y = float(cams.oof_prob[i]), int(cams.y_true[i])
        pos = p >= threshold
        cat = ("TP" if pos else "FN") if y == 1 else ("FP" if pos else "TN")
        out[cat].append(Case(cat, i, pid, p, y))
    for cat, cases in out.items():
        desc = cat in ("TP", "FP")
        cases.sort(key=lambda c: ((-c.prob if desc else c.prob), c.patient_id))
        out[cat] = cases[:n]
    return out


def case_images(cams: OofCams, store: FrameStore, case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frame in [0, 1], CAM on the frame grid, overlay RGB)`` of a case, at frame resolution."""
    frame = store.frame(int(cams.rows[case.index]))
    f01 = display_frame(frame, store.percentiles)
    cam = cam_to_frame(cams.map(case.index), frame.shape)
    return f01, cam, overlay_rgb(f01, cam)


def _case_title(case: Case, extra: str) -> str:
    return f"{case.patient_id} \u00b7 p={case.prob:.2f}{extra}"


def plot_gallery(
    cams: OofCams,
    store: FrameStore,
    cases: dict[str, list[Case]],
    *,
    path: str | Path,
    task_title: str = "",
    truth: dict[str, str] | None = None,
    class_names: tuple[str, str] = ("negative", "positive"),
) -> Path:
    """Blocks TP | FN over TN | FP; in each, ``n`` cases, the frame and its overlay side by side.

    ``truth`` maps a patient id to a short reference string (e.g. ``"LGE 12.4%"``) shown in the
    title; ``class_names`` = (negative, positive) names the class each map explains.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from lgenet.evaluation.canvas import _new_figure, save_figure

    n = max(1, max((len(v) for v in cases.values()), default=1))
    # 2 x 2 blocks (TP FN / TN FP), each block n rows of (frame, overlay)
    fig = _new_figure(11.0, 2.75 * 2 * n + 1.0)
    gs = fig.add_gridspec(2 * n, 4)
    for b, cat in enumerate(CATEGORIES):
        rb, cb = divmod(b, 2)
        for j in range(n):
            if j >= len(cases.get(cat, [])):
                if j == 0:  # one blank panel across the block says why it is empty
                    ax = fig.add_subplot(gs[rb * n, 2 * cb : 2 * cb + 2])
                    ax.set_axis_off()
                    ax.text(
                        0.5,
                        0.5,
                        f"{CATEGORY_TITLES[cat]}:\nno case at this threshold",
                        ha="center",
                        va="center",
                        fontsize=10,
                        color="0.35",
                        transform=ax.transAxes,
                    )
                continue
            ax_f = fig.add_subplot(gs[rb * n + j, 2 * cb])
            ax_o = fig.add_subplot(gs[rb * n + j, 2 * cb + 1])
            for ax in (ax_f, ax_o):
                ax.set_xticks([])
                ax.set_yticks([])
            case = cases[cat][j]
            f01, _, over = case_images(cams, store, case)
            ax_f.imshow(f01, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax_o.imshow(over, interpolation="nearest")
            extra = f" \u00b7 {truth[case.patient_id]}" if truth and case.patient_id in truth else ""
            ax_f.set_title(
                f"{CATEGORY_TITLES[cat]} {j + 1}\n{_case_title(case, extra)}"
                if n > 1
                else f"{CATEGORY_TITLES[cat]}\n{_case_title(case, extra)}",
                fontsize=9,
            )
            cls = class_names[1] if cams.signs[case.index] > 0 else class_names[0]
            note = " (empty)" if cams.empty[case.index] else ""
            ax_o.set_title(f"\nmap for '{cls}'{note}", fontsize=9)
    label = METHOD_LABELS.get(cams.method, cams.method)
    fig.suptitle(
        f"{task_title + ': ' if task_title else ''}{label} of {cams.model} (layer {cams.layer})\n"
        "each map from the fold model that never saw the patient (out-of-fold); scaled to its own maximum",
        fontsize=11,
    )
    fig.colorbar(
        ScalarMappable(Normalize(0, 1), colormaps[CAM_CMAP]), ax=fig.axes, shrink=0.35, pad=0.01, label="CAM (relative)"
    )
    return save_figure(fig, path)
