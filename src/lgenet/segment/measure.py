"""The correction round trip: masks corrected in ITK-SNAP or 3D Slicer, measured again (``lgenet segment measure``,
since 0.3.0).

``segment apply`` writes each patient's mask as ``masks/<ID>.nii.gz`` (and, with ``--dicom-seg``, a DICOM SEG as
``dicom_seg/<ID>.dcm``). A reader corrects them in place or into another folder; :func:`measure_masks` reads the
corrected masks beside the cohort's images, recomputes every measure (LGE % whole LV and basal slice, volumes,
masses, the AHA segments) and writes a manifest whose ``lge_percent`` says it came from corrected masks, ready for
``lgenet run`` or ``lgenet outcomes``. A corrected mask is the reader's verdict: it is measured as drawn (no
plausibility refusal); a mask without myocardium gets no number, with its reason.

The label values of NIfTI masks are those the apply job wrote: the segmentation run's (found through the
``apply.json`` beside ``masks/``), or ``--labels``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from lgenet.errors import ConfigError, DataError, LgenetError
from lgenet.runs.grid import ensure_writable_dir
from lgenet.runs.paths import refuse_overwrite
from lgenet.runs.seg import AHA_FIELDS, SegRunDir
from lgenet.runs.tables import write_rows
from lgenet.segment.cases import safe_id
from lgenet.utils import atomic_write_text

__all__ = ["MEASURE_FIELDS", "MeasureOptions", "measure_masks", "CORRECTED_SOURCE"]

#: measures.csv: one row per patient
MEASURE_FIELDS = [
    "patient_id",
    "lge_percent",
    "lge_percent_basal",
    "myo_ml",
    "myo_mass_g",
    "enh_ml",
    "enh_mass_g",
    "cavity_ml",
    "n_slices",
    "mask",
    "aha_orientation",
    "notes",
]
#: the manifest's ``lge_percent_source`` for burdens measured on corrected masks
CORRECTED_SOURCE = "corrected masks (lgenet segment measure): enhanced / myocardium, whole LV"
_RECORD = "measure.json"


@dataclass(frozen=True)
class MeasureOptions:
    """``manifest``: the cohort; ``masks``: the folder of corrected masks (``<ID>.nii.gz``, or ``<ID>.dcm`` DICOM
    SEGs with ``dicom_seg``); ``out``: a new folder; ``labels``: the NIfTI masks' convention (default: the run's,
    through ``apply.json`` beside the masks); ``rv_insertion_deg``: orients the AHA segments."""

    manifest: str | Path
    masks: str | Path
    out: str | Path
    dicom_seg: bool = False
    labels: str | None = None
    rv_insertion_deg: float | None = None
    overlays: bool = True


def _labels_and_cfg(o: MeasureOptions):
    """The masks' label convention and the run config giving the NIfTI axes (or defaults)."""
    from lgenet.config import SegConfig
    from lgenet.conventions.labels import label_convention

    rec = Path(o.masks).resolve().parent / "apply.json"
    cfg = None
    if rec.is_file():
        try:
            run = json.loads(rec.read_text()).get("run")
            cfg = SegRunDir(run).load_config() if run else None
        except (LgenetError, OSError, ValueError, KeyError):  # a moved or damaged run: --labels decides, below
            cfg = None
    if o.labels:
        return label_convention(o.labels), cfg or SegConfig()
    if cfg is None:
        if o.dicom_seg:
            return None, SegConfig()
        raise ConfigError(
            f"--masks {o.masks}: no apply.json beside it names the segmentation run whose label values the masks "
            "use; give them with --labels (e.g. emidec, or cavity=1,myo=2+3,lge=3,other=0)"
        )
    return cfg.seg_labels(), cfg


def _mask_of(masks: Path, pid: str, dicom: bool) -> Path | None:
    names = [f"{safe_id(pid)}.dcm"] if dicom else [f"{safe_id(pid)}.nii.gz", f"{safe_id(pid)}.nii"]
    return next((masks / n for n in names if (masks / n).is_file()), None)


def measure_masks(o: MeasureOptions) -> dict:
    """Measure every patient of ``o.manifest`` on its corrected mask; returns the paths written and the rows."""
    from lgenet.data.manifest import load_manifest
    from lgenet.data.stacks import read_stack
    from lgenet.evaluation.bullseye import plot_bullseye
    from lgenet.evaluation.segmentation import class_measures
    from lgenet.io.dicom_seg import read_dicom_seg
    from lgenet.quantify.aha import aha_segments
    from lgenet.segment.apply import _write_segmented_manifest
    from lgenet.segment.apply_outputs import cohort_bullseye

    masks = Path(o.masks)
    if not masks.is_dir():
        raise ConfigError(f"--masks {masks}: not a folder; give the folder of corrected masks (<ID>.nii.gz)")
    cohort = load_manifest(o.manifest, tasks=None)
    labels, cfg = _labels_and_cfg(o)
    found = {r.patient_id: _mask_of(masks, r.patient_id, o.dicom_seg) for r in cohort.records}
    missing = [p for p, f in found.items() if f is None]
    if missing:
        kind = "<ID>.dcm DICOM SEG" if o.dicom_seg else "<ID>.nii.gz"
        raise DataError(
            f"--masks {masks}: no corrected mask ({kind}) for {len(missing)} patient(s) of {o.manifest}: "
            f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''} (nothing was written)"
        )
    out = ensure_writable_dir(o.out, "--out")
    refuse_overwrite(out, [o.manifest, masks, *(r.image for r in cohort.records)], "--out")
    record = {
        "job": "lgenet segment measure",
        "manifest": str(Path(o.manifest).resolve()),
        "masks": str(masks.resolve()),
    }
    if out.is_dir() and any(out.iterdir()):
        prev = out / _RECORD
        same = prev.is_file() and json.loads(prev.read_text() or "{}").get("masks") == record["masks"]
        if not same:
            raise ConfigError(f"--out {out} already holds other files: choose a new folder (or delete it to redo it)")
    stacks = {}
    for r in cohort.records:  # every mask read before anything is written
        try:
            if o.dicom_seg:
                st = read_stack(
                    r.image, None, nifti_slice_axis=cfg.nifti_slice_axis, nifti_basal_end=cfg.nifti_basal_end
                )
                st.classes = read_dicom_seg(found[r.patient_id], r.image)
            else:
                st = read_stack(
                    r.image,
                    found[r.patient_id],
                    labels=labels,
                    nifti_slice_axis=cfg.nifti_slice_axis,
                    nifti_basal_end=cfg.nifti_basal_end,
                )
        except LgenetError as exc:
            raise DataError(f"row {r.row} (patient {r.patient_id}): {exc} (nothing was written)") from None
        stacks[r.patient_id] = st
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / _RECORD, json.dumps(record, indent=1) + "\n")
    rows, aha_rows = [], []
    for r in cohort.records:
        st = stacks[r.patient_id]
        slice_mm = st.meta.get("slice_spacing") or st.meta.get("slice_thickness")
        m = class_measures(st.classes, st.spacing, slice_mm)
        notes = list(st.notes)
        has_myo = bool((st.classes >= 2).any())
        if not has_myo:
            notes.append("the corrected mask has no myocardium: no measure")
        row = {"patient_id": r.patient_id, "n_slices": int(st.classes.shape[0]), "mask": str(found[r.patient_id])}
        for k in MEASURE_FIELDS[1:8]:
            v = m.get(k, float("nan"))
            row[k] = v if has_myo and v is not None and math.isfinite(float(v)) else float("nan")
        if has_myo:
            aha = aha_segments(
                st.classes, st.spacing, slice_mm, affine=st.meta.get("affine"), rv_insertion_deg=o.rv_insertion_deg
            )
            row["aha_orientation"] = aha.orientation if aha.ok else aha.note
            for s in aha.segments:
                aha_rows.append(
                    {"patient_id": r.patient_id, **{k: s[k] for k in AHA_FIELDS[1:-1]}, "orientation": aha.orientation}
                )
            if aha.ok and o.overlays:
                plot_bullseye(
                    {s["segment"]: s["lge_percent"] for s in aha.segments},
                    out / "bullseye" / f"{safe_id(r.patient_id)}.png",
                    title=f"{r.patient_id}: LGE by AHA segment (corrected mask)",
                    note=f"orientation {aha.orientation}",
                )
        row["notes"] = " | ".join(notes)
        rows.append(row)
    write_rows(out / "measures.csv", rows, MEASURE_FIELDS)
    if aha_rows:
        write_rows(out / "aha_segments.csv", aha_rows, AHA_FIELDS)
        if o.overlays:
            cohort_bullseye(aha_rows, out / "bullseye" / "cohort_mean.png")
    pred = [
        {
            "patient_id": x["patient_id"],
            "lge_percent_pred": x["lge_percent"],
            "lge_percent_basal_pred": x["lge_percent_basal"],
        }
        for x in rows
    ]
    manifest = _write_segmented_manifest(cohort, pred, out / "manifest.csv", CORRECTED_SOURCE)
    return {"rows": rows, "manifest": manifest, "measures": out / "measures.csv", "aha": bool(aha_rows)}
