"""``lgenet segment apply``: the fold ensemble on a cohort without masks, or on single inputs."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgenet.data.stacks import Stack
from lgenet.errors import ConfigError
from lgenet.runs.grid import ensure_writable_dir
from lgenet.runs.seg import SegRunDir, load_segmenter
from lgenet.runs.tables import number, write_rows
from lgenet.segment.cases import Case, _stack_features, cases_of, read_case, safe_id
from lgenet.segment.fold import _threshold_burdens

__all__ = ["SegApplyOptions", "SegApplyResult", "apply_segmentation"]

log = logging.getLogger("lgenet")


@dataclass
class SegApplyResult:
    rows: list[dict]
    csv: Path
    manifest: Path | None = None
    masks_dir: Path | None = None


@dataclass(frozen=True)
class SegApplyOptions:
    """What ``lgenet segment apply`` segments, and how.

    ``out``: the output folder (or, with ``paths``, a CSV path whose stem names the masks' folder); ``manifest``
    (a cohort) or ``paths`` (single inputs, named by ``ids``, default ``input_001``...), one of the two; the NIfTI
    axis, basal end and pixel size of inputs without one (``None``: the run's); ``overlays``: the overlay PNGs."""

    out: str | Path
    manifest: str | Path | None = None
    paths: Sequence[str | Path] = ()
    ids: Sequence[str] | None = None
    nifti_slice_axis: int | None = None
    nifti_basal_end: str | None = None
    pixel_spacing: float | None = None
    overlays: bool = True
    progress: bool = True
    device: str = "cpu"
    threads: int | None = None  # torch threads (None: torch's default)


def apply_segmentation(run_dir: str | Path, options: SegApplyOptions) -> SegApplyResult:
    """Segment a cohort (manifest) or single inputs with a finished run's fold ensemble."""
    from tqdm.auto import tqdm

    from lgenet.data.manifest import load_manifest
    from lgenet.data.shift import shift_warnings
    from lgenet.evaluation.segmentation import class_measures, dice
    from lgenet.io.nifti import write_label_volume

    o = options
    out, manifest, paths, ids = o.out, o.manifest, list(o.paths), o.ids
    rd = SegRunDir(run_dir)
    cfg = rd.load_config()
    if bool(manifest) == bool(paths):
        raise ConfigError("lgenet segment apply: give a --manifest or input paths, one of the two")
    cfg_in = cfg.replace(
        nifti_slice_axis=cfg.nifti_slice_axis if o.nifti_slice_axis is None else o.nifti_slice_axis,
        nifti_basal_end=cfg.nifti_basal_end if o.nifti_basal_end is None else o.nifti_basal_end,
        pixel_spacing=o.pixel_spacing if o.pixel_spacing is not None else cfg.pixel_spacing,
    )
    out_dir = ensure_writable_dir(out, "--out")
    if manifest:
        cohort = load_manifest(manifest, tasks=None, lge_threshold=cfg.lge_threshold)
        cases = cases_of(cohort, need_masks=False)
    else:
        missing = [str(p) for p in paths if not Path(p).exists()]
        if missing:
            raise ConfigError(f"input(s) not found: {', '.join(missing[:5])}")
        if ids is not None and len(ids) != len(paths):
            raise ConfigError(f"--ids gives {len(ids)} id(s) for {len(paths)} input(s); give one per input, in order")
        names = list(ids) if ids is not None else [f"input_{i + 1:03d}" for i in range(len(paths))]
        cases = [Case(n, i + 1, str(p), None, None) for i, (n, p) in enumerate(zip(names, paths))]
    if o.threads:
        import torch

        torch.set_num_threads(int(o.threads))
    seg = load_segmenter(rd.path, device=o.device)
    profile = rd.read_profile()
    values = np.asarray(cfg.seg_labels().values(), np.uint16)
    rows = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for c in tqdm(cases, desc="segmenting", unit="patient", disable=not o.progress):
        st = read_case(c, cfg_in, with_mask=c.mask is not None)
        notes = list(st.notes)
        if profile:
            far = shift_warnings(profile, _stack_features(st))
            if far:
                notes.append("unlike the training stacks (" + "; ".join(far) + "): check the masks")
        res = seg(st.image, st.spacing)
        notes += res.notes
        for n in notes:
            log.warning("patient %s: %s", c.patient_id, n)
        slice_mm = st.meta.get("slice_spacing") or st.meta.get("slice_thickness")
        m = class_measures(res.classes, st.spacing, slice_mm)
        mask_path = out_dir / "masks" / f"{safe_id(c.patient_id)}.nii.gz"
        write_label_volume(
            mask_path,
            values[res.classes],
            c.image,
            st.meta,
            slice_axis=cfg_in.nifti_slice_axis,
            basal_end=cfg_in.nifti_basal_end,
        )
        row = {
            "patient_id": c.patient_id,
            "n_slices": int(res.classes.shape[0]),
            "lge_percent_pred": m["lge_percent"],
            "lge_percent_basal_pred": m["lge_percent_basal"],
            "myo_ml_pred": m.get("myo_ml"),
            "enh_ml_pred": m.get("enh_ml"),
            "myo_mass_g_pred": m.get("myo_mass_g"),
            "enh_mass_g_pred": m.get("enh_mass_g"),
            "cavity_ml_pred": m.get("cavity_ml"),
            "slices_with_enhancement_pred": m["slices_with_enhancement"],
            "lge_sectors_pred": m["lge_sectors"],
            "transmurality_max_pred": m["transmurality_max"],
            "transmurality_mean_pred": m["transmurality_mean"],
            "localised_fraction": float(np.mean(res.localised)),
            "mask": str(mask_path.relative_to(out_dir)),
            "notes": " | ".join(notes),
        }
        row.update(_threshold_burdens(st.image, res.classes))
        if st.classes is not None:
            gt = st.classes
            me = class_measures(gt, st.spacing, slice_mm)
            row.update(
                {
                    "dice_myo": dice(res.classes >= 2, gt >= 2),
                    "dice_lge": dice(res.classes == 3, gt == 3),
                    "dice_cavity": dice(res.classes == 1, gt == 1),
                    "lge_percent_expert": me["lge_percent"],
                }
            )
        if o.overlays:
            row["overlay"] = str(
                _overlay(out_dir / "overlays" / f"{safe_id(c.patient_id)}.png", st, res.classes).relative_to(out_dir)
            )
        rows.append(row)
    fields = [
        "patient_id",
        "n_slices",
        "lge_percent_pred",
        "lge_percent_basal_pred",
        "lge_percent_pred_nsd2",
        "lge_percent_pred_nsd3",
        "lge_percent_pred_nsd5",
        "lge_percent_pred_nsd6",
        "lge_percent_pred_fwhm",
        "myo_ml_pred",
        "enh_ml_pred",
        "myo_mass_g_pred",
        "enh_mass_g_pred",
        "cavity_ml_pred",
        "slices_with_enhancement_pred",
        "lge_sectors_pred",
        "transmurality_max_pred",
        "transmurality_mean_pred",
        "localised_fraction",
        "dice_myo",
        "dice_lge",
        "dice_cavity",
        "lge_percent_expert",
        "mask",
        "overlay",
        "notes",
    ]
    if manifest:  # what was segmented (lgenet.runs.seg.check_segmentation_inputs compares a cohort with it)
        import json

        from lgenet.data.inputs import image_sha256
        from lgenet.utils import atomic_write_text, sha256_file

        record = {
            "manifest": Path(manifest).name,
            "manifest_sha256": sha256_file(manifest),
            "cases": [{"patient_id": c.patient_id, "row": c.row, "image_sha256": image_sha256(c.image)} for c in cases],
        }
        atomic_write_text(out_dir / "inputs.json", json.dumps(record, indent=1))
    csv_path = out_dir / "segmentation.csv" if manifest or Path(out).suffix == "" else Path(out)
    write_rows(csv_path, rows, fields)
    result = SegApplyResult(rows=rows, csv=csv_path, masks_dir=out_dir / "masks")
    if manifest:
        result.manifest = _write_segmented_manifest(cohort, rows, out_dir / "manifest.csv", rd.path)
    return result


def _write_segmented_manifest(cohort, rows, path: Path, run: Path) -> Path:
    """The input manifest with lge_percent = predicted burden (+ its source; a previous value kept)."""
    from lgenet.data.manifest import write_manifest

    pred = {r["patient_id"]: r for r in rows}
    src = f"lgenet segment apply (fold ensemble of {run.name}): network enhancement class, whole LV"
    out_rows = []
    for rec in cohort.records:
        r = {
            "patient_id": rec.patient_id,
            "image": str(rec.image),
            "slice": rec.slice if rec.slice != "basal" else "",
            "event": "" if rec.event is None else rec.event,
            "followup_years": "" if rec.followup_years is None else rec.followup_years,
            "mask": "" if rec.mask is None else str(rec.mask),
            **rec.covariates,
        }
        p = pred.get(rec.patient_id, {})
        r["lge_percent"] = (
            "" if not math.isfinite(number(p.get("lge_percent_pred"))) else round(number(p["lge_percent_pred"]), 4)
        )
        r["lge_percent_source"] = src
        r["lge_percent_basal_pred"] = (
            ""
            if not math.isfinite(number(p.get("lge_percent_basal_pred")))
            else round(number(p["lge_percent_basal_pred"]), 4)
        )
        r["lge_percent_basal_pred_source"] = src.replace("whole LV", "basal slice")
        if rec.lge_percent is not None:
            r["lge_percent_original"] = rec.lge_percent
            r["lge_percent_original_source"] = "the input manifest's lge_percent"
        out_rows.append(r)
    cols = list(dict.fromkeys(k for r in out_rows for k in r))
    return write_manifest(path, out_rows, columns=cols)


def _overlay(path: Path, st: Stack, classes: np.ndarray) -> Path:
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
