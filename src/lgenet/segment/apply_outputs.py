"""What ``segment apply`` writes beside each mask (since 0.3.0 unless said): the AHA segments and bullseyes, the
DICOM SEG and SR of a DICOM input, and the overlay PNG (:mod:`lgenet.segment.apply` calls them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lgenet import __version__
from lgenet.data.stacks import Stack
from lgenet.runs.seg import AHA_FIELDS
from lgenet.segment.cases import Case, safe_id

__all__ = ["aha_outputs", "cohort_bullseye", "dicom_outputs", "overlay"]


def aha_outputs(
    c: Case,
    st: Stack,
    classes: np.ndarray,
    slice_mm,
    rv_insertion_deg: float | None,
    overlays: bool,
    out_dir: Path,
    into: list,
) -> str:
    """The AHA segments of a measured mask into ``into`` (and its bullseye); how they were oriented, or why not."""
    from lgenet.evaluation.bullseye import plot_bullseye
    from lgenet.quantify.aha import aha_segments

    aha = aha_segments(classes, st.spacing, slice_mm, affine=st.meta.get("affine"), rv_insertion_deg=rv_insertion_deg)
    if not aha.ok:
        return aha.note
    for s in aha.segments:
        into.append({"patient_id": c.patient_id, **{k: s[k] for k in AHA_FIELDS[1:-1]}, "orientation": aha.orientation})
    if overlays:
        plot_bullseye(
            {s["segment"]: s["lge_percent"] for s in aha.segments},
            out_dir / "bullseye" / f"{safe_id(c.patient_id)}.png",
            title=f"{c.patient_id}: LGE by AHA segment",
            note=f"orientation {aha.orientation}",
        )
    return aha.orientation


def cohort_bullseye(aha_rows: list[dict], path: Path) -> None:
    """The mean enhanced share per AHA segment over the patients with segments, when there are two or more."""
    from lgenet.evaluation.bullseye import plot_bullseye

    pids = {r["patient_id"] for r in aha_rows}
    if len(pids) < 2:
        return
    means = {}
    for seg in range(1, 17):
        v = np.array([r["lge_percent"] for r in aha_rows if r["segment"] == seg], float)
        v = v[np.isfinite(v)]
        means[seg] = float(v.mean()) if v.size else float("nan")
    orient = {r["orientation"].split(":")[0] for r in aha_rows}
    plot_bullseye(
        means,
        path,
        title=f"Cohort mean LGE by AHA segment (n = {len(pids)})",
        note="orientation: " + ", ".join(sorted(orient)) + " (see aha_segments.csv)",
    )


def dicom_outputs(c: Case, st: Stack, classes, m: dict, aha: list, measured: bool, out_dir: Path, run: Path, notes):
    """The DICOM SEG of a DICOM input's mask and, for a measured mask, its SR measurement report (their paths in
    the output folder); ("", "") with a note for an input that is not DICOM."""
    from lgenet.io.dicom_seg import build_dicom_seg, save_dicom
    from lgenet.io.dicom_sr import write_dicom_sr

    if st.meta.get("format") not in ("dicom", "dicom-series"):
        notes.append("no DICOM SEG or SR: the input is not a DICOM stack")
        return "", ""
    n_models = len(list(run.glob("fits/seg/fold*/model.pt")))
    name = f"{safe_id(c.patient_id)}.dcm"
    model = f"lgenet segmentation ensemble of {n_models} fold model(s)"
    seg_ds, sources = build_dicom_seg(c.image, classes, version=__version__, model=model)  # the sources read once
    seg = save_dicom(seg_ds, out_dir / "dicom_seg" / name)
    if not measured:
        return str(seg.relative_to(out_dir)), ""
    sr = write_dicom_sr(
        seg_ds,
        sources,
        m,
        out_dir / "dicom_sr" / name,
        version=__version__,
        aha=aha,
        aha_orientation=aha[0]["orientation"] if aha else "",
    )
    return str(seg.relative_to(out_dir)), str(sr.relative_to(out_dir))


def overlay(path: Path, st: Stack, classes: np.ndarray) -> Path:
    """Basal, mid and apical slices with the predicted myocardium (green) and enhancement (red)."""
    from lgenet.evaluation.canvas import _new_figure, save_figure

    s = classes.shape[0]
    picks = sorted({s - 1, s // 2, 0})[::-1]
    fig = _new_figure(3.2 * len(picks), 3.4)
    axes = fig.subplots(1, len(picks), squeeze=False)[0]
    for ax, k in zip(axes, picks):
        img = st.image[k]
        lo, hi = np.percentile(img, (1, 99))
        ax.imshow(np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1), cmap="gray", interpolation="nearest")
        for cls, colour in ((2, "#31a354"), (3, "#e31a1c"), (1, "#3182bd")):
            m = (classes[k] >= 2) if cls == 2 else (classes[k] == cls)
            if m.any():
                ax.contour(m.astype(float), levels=[0.5], colors=[colour], linewidths=0.9)
        ax.set_title({s - 1: "basal", 0: "apical"}.get(k, "mid") + f" (slice {k + 1}/{s})", fontsize=8)
        ax.set_axis_off()
    return save_figure(fig, path)
