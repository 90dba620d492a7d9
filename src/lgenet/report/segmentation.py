"""The segmentation part of the reports: a standalone ``seg_report.html`` for ``lgenet segment train``
and a "Segmentation" section in ``report.html`` when a grid used a segmentation run.

Figures: predicted-vs-expert LGE % (scatter + Bland-Altman, whole LV and basal slice) and a gallery of
the best- and worst-Dice patients (basal and mid slices, expert contours dashed, out-of-fold
prediction solid). Patients are named by their study-local ids only.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path

import numpy as np

import lgenet.report.html as H

__all__ = ["plot_seg_gallery", "seg_section", "write_seg_report"]

log = logging.getLogger("lgenet")


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _burden_words(r: dict) -> str:
    """The patient's whole-LV LGE burden, predicted and expert, for a gallery title (a Dice is not a burden)."""
    pred, ref = _f(r.get("lge_percent_pred")), _f(r.get("lge_percent_expert"))
    if not (math.isfinite(pred) and math.isfinite(ref)):
        return ""
    return f"\nLGE {pred:.1f}% (expert {ref:.1f}%)"


def plot_seg_gallery(run: str | Path, *, n: int = 3, path: str | Path | None = None) -> Path | None:
    """Best and worst myocardium-Dice patients of a segmentation run, expert vs out-of-fold masks."""
    from lgenet.data.manifest import load_manifest
    from lgenet.evaluation.canvas import _new_figure, save_figure
    from lgenet.segment import SegRunDir, cases_of, read_case, safe_id

    rd = SegRunDir(run)
    cfg = rd.load_config()
    if not rd.metrics_csv.is_file() or cfg.manifest is None or not Path(cfg.manifest).is_file():
        return None
    with open(rd.metrics_csv, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if math.isfinite(_f(r["dice_myo"]))]
    rows.sort(key=lambda r: _f(r["dice_myo"]))
    picks = rows[-n:][::-1] + rows[:n] if len(rows) > 2 * n else rows
    cases = {c.patient_id: c for c in cases_of(load_manifest(cfg.manifest, tasks=None), need_masks=True)}
    from lgenet.io import read_volume
    from lgenet.io.nifti import is_nifti_name

    fig = _new_figure(2 * 2.4, 2.5 * len(picks))
    axes = fig.subplots(len(picks), 2, squeeze=False)
    for i, r in enumerate(picks):
        pid = r["patient_id"]
        st = read_case(cases[pid], cfg)
        mask_file = rd.masks_dir / f"{safe_id(pid)}.nii.gz"
        if not mask_file.is_file():
            continue
        nifti_src = is_nifti_name(cases[pid].image)  # masks of DICOM inputs are (cols, rows, slices apex->base)
        pred_vals, _ = read_volume(
            mask_file,
            nifti_slice_axis=cfg.nifti_slice_axis if nifti_src else 2,
            nifti_basal_end=cfg.nifti_basal_end if nifti_src else "last",
        )
        pred = cfg.seg_labels().classes(np.rint(pred_vals).astype(np.int64), where=str(mask_file))
        s = st.image.shape[0]
        for j, k in enumerate((s - 1, s // 2)):
            ax = axes[i, j]
            img = st.image[k]
            lo, hi = np.percentile(img, (1, 99))
            ax.imshow(np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1), cmap="gray", interpolation="nearest")
            for cls_map, ls in ((st.classes[k], "--"), (pred[k], "-")):
                for sel, colour in ((cls_map >= 2, "#31a354"), (cls_map == 3, "#e31a1c")):
                    if sel.any():
                        ax.contour(sel.astype(float), levels=[0.5], colors=[colour], linewidths=0.9, linestyles=ls)
            ax.set_axis_off()
            ax.set_title(
                f"{pid} {'basal' if k == s - 1 else 'mid'}: Dice myo {_f(r['dice_myo']):.2f}"
                + (f", Dice enh {_f(r['dice_lge']):.2f}" if math.isfinite(_f(r["dice_lge"])) else "")
                + _burden_words(r),
                fontsize=7,
            )
    fig.suptitle(
        f"Best {min(n, len(picks))} and worst {min(n, len(picks))} myocardium Dice (out-of-fold)\n"
        "myocardium green, enhancement red\nexpert dashed, predicted solid",
        fontsize=8,
    )
    return save_figure(fig, path or rd.path / "figures" / "seg_gallery.png")


def _summary_table(s: dict) -> str:
    from lgenet.evaluation.segmentation import agreement_text

    def dice(name):
        return dice_of(s.get(name, {}))

    rows = [
        ("Myocardium Dice", dice("dice_myo")),
        ("Enhancement Dice (patients with expert enhancement)", dice("dice_lge")),
        (
            "Enhancement Dice, every patient (no enhancement predicted on a scar-free heart = 1, the EMIDEC "
            "challenge's convention)",
            dice("dice_lge_all"),
        ),
        ("LV cavity Dice", dice("dice_cavity")),
    ]
    for m, label in (
        ("network", "network enhancement class"),
        ("nsd5", "5-SD in the predicted myocardium"),
        ("fwhm", "FWHM in the predicted myocardium"),
    ):
        a = s.get("agreement", {}).get(m, {})
        if "icc" in a:
            rows.append(
                (
                    f"Whole-LV LGE %, {label}: ICC (95% CI); bias (limits of agreement)",
                    "; ".join(agreement_text(a)),
                )
            )
    for name, label in (("whole_lv", "predicted whole-LV burden"), ("basal_slice", "predicted basal-slice burden")):
        a = s.get("auc_lge", {}).get(name, {})
        if "auc" in a:
            rows.append(
                (
                    f"AUC for {s.get('auc_label', 'lge')}, {label}",
                    f"{a['auc']:.3f} (95% CI {a['lower']:.3f}\u2013{a['upper']:.3f}), n={a['n']} ({a['n_pos']} pos.)",
                )
            )
    table = H.table(("Out-of-fold measure", "Value"), rows)
    ap = s.get("as_applied")
    if not ap:
        return table
    arows = [
        (
            "Masks the quality score doubted (score fitted without the patient's fold)",
            f"{ap['doubted']} of {ap['patients']}: {ap['replaced']} replaced by a second look, {ap['refused']} "
            f"refused, {ap['flagged']} flagged",
        ),
        ("Myocardium Dice, every patient", dice_of(ap.get("dice_myo", {}))),
        ("LV cavity Dice", dice_of(ap.get("dice_cavity", {}))),
    ]
    a = ap.get("agreement", {}).get("network", {})
    if "icc" in a:
        arows.append(("Whole-LV LGE %, measured patients: ICC (95% CI); bias (limits of agreement)",
                      "; ".join(agreement_text(a))))  # fmt: skip
    a = ap.get("auc_lge", {}).get("whole_lv", {})
    if "auc" in a:
        arows.append(
            (
                f"AUC for {s.get('auc_label', 'lge')}, measured patients",
                f"{a['auc']:.3f} (95% CI {a['lower']:.3f}\u2013{a['upper']:.3f}), n={a['n']} ({a['n_pos']} pos.)",
            )
        )
    scan = " with the frame scan" if ap.get("frame_scan") else ""
    return (
        table
        + f"<p>The same patients as <code>segment apply</code> treats them: a mask the quality score doubts gets a "
        f"second look{scan} by its own fold's model, and is replaced only by a mask the score trusts "
        "(<code>as_applied/</code> in the run folder).</p>" + H.table(("Out-of-fold, as applied", "Value"), arows)
    )


def dice_of(v: dict) -> str:
    return "n/a" if v.get("mean") is None else f"{v['mean']:.3f} \u00b1 {(v.get('sd') or 0):.3f} (n={v['n']})"


def seg_section(run: str | Path, *, anchor: str = "segmentation", title: str = "Segmentation") -> str:
    """An HTML section with the run's summary table and figures (empty string when the run is unusable)."""
    from lgenet.segment import SegRunDir

    rd = SegRunDir(run)
    if not rd.summary_json.is_file():
        return ""
    s = json.loads(rd.summary_json.read_text())
    figs = rd.path / "figures"
    body = (
        f"<p>Two-stage MONAI UNet (localiser, then a 2.5-D segmenter in an LV-centred window), "
        f"{s['folds']}-fold patient-level cross-validation; every mask comes from the fold model that never saw "
        f"the patient (n = {s['n']}). Fold labels: {H.esc(s.get('label_source', ''))}.</p>" + _summary_table(s)
    )
    for name, cap in (
        (
            "seg_agreement.png",
            "Whole-LV LGE %: out-of-fold prediction vs expert masks (red: LGE > threshold by the expert).",
        ),
        ("seg_agreement_basal.png", "Basal-slice LGE %: prediction vs expert."),
        ("seg_gallery.png", "Best and worst myocardium Dice."),
    ):
        if (figs / name).is_file():
            body += H.img(figs / name, name, caption=cap)
    return H.section(anchor, title, body)


def write_seg_report(run: str | Path) -> Path:
    """``seg_report.html`` of a segmentation run."""
    from lgenet import __version__
    from lgenet.segment import SegRunDir
    from lgenet.utils import atomic_write_text

    rd = SegRunDir(run)
    try:
        plot_seg_gallery(rd.path)
    except Exception as exc:  # noqa: BLE001 - a gallery problem must not lose the report
        log.warning("segmentation gallery not drawn: %s", exc)
    body = seg_section(rd.path)
    page = H.page(
        "LGE segmentation report",
        [H.esc(f"lgenet {__version__} \u00b7 research use only; not a medical device")],
        [("segmentation", "Segmentation")],
        body,
    )
    return atomic_write_text(rd.path / "seg_report.html", page)
