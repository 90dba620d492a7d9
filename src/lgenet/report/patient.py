"""A report per patient of a ``segment apply --manifest`` output: ``reports/<ID>.html`` and ``reports/<ID>.pdf``
(``segment apply --reports``, or ``lgenet report APPLY_DIR``; since 0.3.0).

Each holds every slice with the mask's contours, the numbers with their definitions, the AHA bullseye with how it
was oriented, the status and quality flags with their reasons, the model that made the mask and its measured
(out-of-fold) accuracy, and "research use, not a medical device". Patients are named by their study-local IDs.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lgenet.report.html import esc, flag, img, kv_table, page, section, table
from lgenet.report.viewer import read_rows, read_source
from lgenet.utils import atomic_path, atomic_write_text

__all__ = ["write_patient_reports", "DEFINITIONS"]

DISCLAIMER = "Research use only, not a medical device: every mask and number is to be checked by a reader."
#: (CSV column, label, definition)
DEFINITIONS = (
    ("lge_percent_pred", "LGE % of LV myocardium (whole LV)",
     "enhanced myocardial voxels / all myocardial voxels, over every slice"),
    ("lge_percent_basal_pred", "LGE % of LV myocardium (basal slice)", "the same on the most basal slice"),
    ("myo_ml_pred", "LV myocardial volume (ml)", "myocardial voxels x voxel volume (pixel area x slice spacing)"),
    ("myo_mass_g_pred", "LV myocardial mass (g)", "myocardial volume x 1.05 g/ml"),
    ("enh_ml_pred", "enhanced volume (ml)", "enhanced voxels x voxel volume"),
    ("cavity_ml_pred", "LV cavity volume (ml)", "cavity voxels x voxel volume, on the slices acquired"),
    ("slices_with_enhancement_pred", "slices with enhancement", "slices holding any enhanced voxel"),
    ("transmurality_max_pred", "largest transmurality (%)",
     "the enhanced share of the wall along 6-degree rays from the LV centre, largest over all rays"),
    ("lge_percent_expert", "LGE % (expert mask)", "the same measure on the manifest's expert mask"),
    ("dice_myo", "Dice, myocardium (vs expert)", "2|A and B| / (|A| + |B|) over the stack"),
)  # fmt: skip


def _fmt(v) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v or "")
    return "" if not math.isfinite(x) else (f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}")


def _slices_figure(image: np.ndarray, classes: np.ndarray | None, title: str, agreement: str = ""):
    from lgenet.evaluation.canvas import _new_figure

    s = image.shape[0]
    cols = min(s, 5)
    rows = int(math.ceil(s / cols))
    fig = _new_figure(2.3 * cols, 2.5 * rows + 0.4)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for k, ax in enumerate(axes):
        ax.set_axis_off()
        if k >= s:
            continue
        im = image[k]
        lo, hi = np.percentile(im, (1, 99.5))
        ax.imshow(np.clip((im - lo) / max(hi - lo, 1e-6), 0, 1), cmap="gray", interpolation="nearest")
        if classes is not None:
            for cls, colour in ((2, "#43a047"), (3, "#e53935"), (1, "#1e88e5")):
                m = (classes[k] >= 2) if cls == 2 else (classes[k] == cls)
                if m.any():
                    ax.contour(m.astype(float), levels=[0.5], colors=[colour], linewidths=0.8)
        where = " (apex)" if k == 0 else " (base)" if k == s - 1 else ""
        agree = agreement.split(";") if agreement else []
        a = f"\nflip agreement {agree[k]}" if k < len(agree) and agree[k] else ""
        ax.set_title(f"slice {k + 1}/{s}{where}{a}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _model_text(run: Path | None) -> tuple[str, list[tuple[str, str]]]:
    """The model and its out-of-fold accuracy (seg_summary.json), as a sentence and table rows."""
    if run is None or not (run / "seg_summary.json").is_file():
        return "the segmentation run's measured accuracy is not available", []
    s = json.loads((run / "seg_summary.json").read_text())
    n_models = len(list(run.glob("fits/seg/fold*/model.pt")))
    pairs = []
    d = s.get("dice_myo") or {}
    if d:
        pairs.append(("myocardium Dice, out-of-fold", f"{d['mean']:.3f} ± {d['sd']:.3f} (n = {d['n']})"))
    a = (s.get("agreement") or {}).get("network") or {}
    if a:
        ci = f" ({a['icc_lower']:.3f}–{a['icc_upper']:.3f})" if a.get("icc_lower") is not None else ""
        pairs.append(("LGE % agreement, ICC", f"{a['icc']:.3f}{ci}, bias {a['bias']:+.2f} pp (n = {a['n']})"))
    auc = ((s.get("auc_lge") or {}).get("whole_lv")) or {}
    if auc:
        pairs.append(
            (
                f"AUC for LGE > {s.get('lge_threshold', 5.7)} %",
                f"{auc['auc']:.3f} ({auc['lower']:.3f}–{auc['upper']:.3f})",
            )
        )
    return f"ensemble of {n_models} fold model(s) of segmentation run {run.name}, trained on n = {s.get('n')}", pairs


def write_patient_reports(apply_dir: str | Path, *, on_patient: Callable[[], None] | None = None) -> list[Path]:
    """``reports/<ID>.html`` and ``.pdf`` for every patient of a ``segment apply --manifest`` output."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    from lgenet import __version__
    from lgenet.data.manifest import load_manifest
    from lgenet.data.stacks import read_stack
    from lgenet.evaluation.bullseye import plot_bullseye
    from lgenet.segment.cases import safe_id

    apply_dir = Path(apply_dir)
    rows, manifest, labels, _, cfg, kind = read_source(apply_dir)
    if kind != "segment apply":
        from lgenet.errors import ConfigError

        raise ConfigError(f"{apply_dir}: patient reports are written for `segment apply --manifest` outputs")
    run = Path(json.loads((apply_dir / "apply.json").read_text())["run"])
    model, accuracy = _model_text(run)
    recs = {r.patient_id: r for r in load_manifest(manifest, tasks=None).records}
    aha_all = read_rows(apply_dir / "aha_segments.csv") if (apply_dir / "aha_segments.csv").is_file() else []
    out_dir = apply_dir / "reports"
    out_dir.mkdir(exist_ok=True)
    written = []
    for r in rows:
        pid, name = r["patient_id"], safe_id(r["patient_id"])
        mask = apply_dir / r["mask"] if r.get("mask") else None
        st = read_stack(
            recs[pid].image, mask, labels=labels, nifti_slice_axis=cfg.nifti_slice_axis,
            nifti_basal_end=cfg.nifti_basal_end, default_spacing=cfg.pixel_spacing,
        )  # fmt: skip
        slices = _slices_figure(st.image, st.classes, f"{pid}: every slice, apex to base", r.get("slice_agreement", ""))
        aha = [a for a in aha_all if a["patient_id"] == pid]
        be_png = None
        if aha:
            buf = out_dir / f".{name}.bullseye.png"
            plot_bullseye(
                {int(a["segment"]): float(a["lge_percent"] or "nan") for a in aha},
                buf,
                title=f"{pid}: LGE by AHA segment",
                note=f"orientation {aha[0]['orientation']}",
            )
            be_png = buf.read_bytes()
            buf.unlink()
        measured = r.get("status") == "segmented"
        checks = []
        if not measured:
            checks.append(flag("No measure:", esc(f"{r.get('status')}. {r.get('notes', '')}")))
        elif r.get("quality_flag"):
            checks.append(
                flag("Quality flag:", esc(f"{r['quality_flag']} (predicted Dice {_fmt(r.get('quality_dice'))})"))
            )
        nums = [(label, _fmt(r.get(col)), d) for col, label, d in DEFINITIONS if _fmt(r.get(col)) != ""]
        body = section(
            "status",
            "Status and checks",
            "".join(checks)
            + kv_table(
                [
                    ("status", r.get("status", "")),
                    (
                        "quality score (predicted myocardium Dice)",
                        _fmt(r.get("quality_dice")) or "not available (the run has no fitted quality score)",
                    ),
                    ("notes", r.get("notes", "") or "none"),
                    ("AHA orientation", r.get("aha_orientation", "") or "not computed"),
                ]
            ),
        )
        body += section("numbers", "Measures and their definitions", table(("measure", "value", "definition"), nums))
        if be_png:
            body += section("aha", "AHA 16-segment bullseye", img(be_png, f"{pid} bullseye", width=380))
        body += section(
            "slices",
            "Every slice with the mask",
            img(_png(slices), f"{pid} slices")
            + "<p>Contours: green myocardium, red enhancement, blue LV cavity. Flip agreement: the myocardium Dice between "
            "each model's predictions on the flipped copies of the slice and their mean, averaged over the models "
            "(1 = identical); a low value marks a slice to check first.</p>",
        )
        body += section(
            "model",
            "The model and its measured accuracy",
            f"<p>{esc(model)}; lgenet {esc(__version__)}.</p>" + (kv_table(accuracy) if accuracy else ""),
        )
        html = page(f"lgenet patient report: {pid}", [esc(DISCLAIMER)], [], body)
        atomic_write_text(out_dir / f"{name}.html", html)
        pdf = out_dir / f"{name}.pdf"
        with atomic_path(pdf) as tmp, PdfPages(tmp) as pp:
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.06, 0.975, f"lgenet patient report: {pid}", va="top", fontsize=13, weight="bold")
            lines = [DISCLAIMER, "", f"status: {r.get('status', '')}"]
            if r.get("quality_flag"):
                lines.append(f"quality flag: {r['quality_flag']}")
            if r.get("notes"):
                lines.append(f"notes: {r['notes'][:300]}")
            lines += ["", *(f"{label}: {v}   ({d})" for label, v, d in nums), ""]
            lines += [f"model: {model}; lgenet {__version__}", *(f"{k}: {v}" for k, v in accuracy)]
            if aha:
                lines.append(f"AHA orientation: {aha[0]['orientation']}")
            import textwrap

            fig.text(0.06, 0.945, "\n".join(w for ln in lines for w in (textwrap.wrap(ln, 95) or [""])), va="top",
                     fontsize=8, linespacing=1.5)  # fmt: skip
            if be_png:
                from PIL import Image

                ax = fig.add_axes((0.25, 0.05, 0.5, 0.42))
                ax.imshow(np.asarray(Image.open(io.BytesIO(be_png))))
                ax.set_axis_off()
            pp.savefig(fig)
            plt.close(fig)
            pp.savefig(slices)
            plt.close("all")
        written += [out_dir / f"{name}.html", pdf]
        if on_patient is not None:
            on_patient()
    return written
