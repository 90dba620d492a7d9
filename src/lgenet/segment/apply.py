"""``lgenet segment apply``: the fold ensemble on a cohort without masks, or on single inputs."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgenet.conventions.names import check_unique_names
from lgenet.errors import ConfigError
from lgenet.io.geometry import rv_direction
from lgenet.runs.grid import ensure_writable_dir
from lgenet.runs.paths import refuse_overwrite
from lgenet.runs.seg import AHA_FIELDS, SEG_APPLY_FIELDS, SegRunDir, load_segmenter
from lgenet.runs.tables import number, write_rows
from lgenet.segment.apply_job import APPLY_RECORD, _check_out_dir, _input_ids, _job_record, _read_all
from lgenet.segment.apply_outputs import aha_outputs, cohort_bullseye, dicom_outputs, overlay
from lgenet.segment.cases import Case, _stack_features, cases_of, read_case, safe_id
from lgenet.segment.evaluate import evaluate_apply
from lgenet.segment.fold import _threshold_burdens
from lgenet.segment.plausibility import check_plausibility
from lgenet.segment.quality import (
    LIKELY_NOT_LV,
    LIKELY_WRONG,
    QUALITY_FILE,
    flag_line,
    predict_quality,
    quality_features,
    slice_agreement_text,
)
from lgenet.segment.rv_side import INCONSISTENT, RvSide, judge_rv_side, observe_rv_side
from lgenet.segment.second_look import second_look
from lgenet.utils import atomic_write_text, sha256_file

__all__ = [
    "APPLY_RECORD",
    "NOT_LV",
    "NO_LV",
    "SEGMENTED",
    "SegApplyOptions",
    "SegApplyResult",
    "apply_segmentation",
    "lv_status",
]


log = logging.getLogger("lgenet")


@dataclass
class SegApplyResult:
    rows: list[dict]
    csv: Path
    manifest: Path | None = None
    masks_dir: Path | None = None
    #: against the input masks, when the manifest has them (:func:`lgenet.segment.evaluate.evaluate_apply`)
    evaluation: dict | None = None


@dataclass(frozen=True)
class SegApplyOptions:
    """What ``lgenet segment apply`` segments, and how.

    ``out``: the output folder (or, with ``paths``, a CSV path whose stem names the masks' folder); ``manifest``
    (a cohort) or ``paths`` (single inputs, named by ``ids``, default ``input_001``...), one of the two; the NIfTI
    axis, basal end and pixel size of inputs without one (``None``: the run's); ``labels``: the convention of the
    manifest's masks (a name or ``cavity=..`` spec; ``None``: the import sidecar's beside the manifest, else the
    run's); ``overlays``: the overlay and bullseye PNGs; ``rv_insertion_deg``: orients the AHA segments
    (:mod:`lgenet.quantify.aha`; default: the image's patient axes, approximate); ``dicom_seg``: a DICOM SEG of each DICOM input's mask in ``dicom_seg/`` and an SR measurement report of each
    measured one in ``dicom_sr/`` (:mod:`lgenet.io.dicom_seg`, :mod:`lgenet.io.dicom_sr`; they carry the source's
    patient and study identifiers, as such objects must)."""

    out: str | Path
    manifest: str | Path | None = None
    paths: Sequence[str | Path] = ()
    ids: Sequence[str] | None = None
    nifti_slice_axis: int | None = None
    nifti_basal_end: str | None = None
    pixel_spacing: float | None = None
    labels: str | None = None
    overlays: bool = True
    dicom_seg: bool = False
    rv_insertion_deg: float | None = None  # the AHA segments' anterior RV insertion (None: from the patient axes)
    progress: bool = True
    device: str = "cpu"
    threads: int | None = None  # torch threads (None: torch's default)
    engine: str = "torch"  # torch, onnx, or auto (onnx for a bundle when ONNX Runtime is installed; since 0.3.0)
    #: a mask the run's quality score doubts is segmented again at the other places the localisers weighed, and
    #: replaced by one the score trusts (:mod:`lgenet.segment.second_look`; since 0.3.0, needs the score)
    second_look: bool = True
    #: with the second look, when no place the localisers weighed gives a trusted mask, the frame is scanned for
    #: more (:meth:`lgenet.models.seginfer.Segmenter.scan_proposals`; since 0.3.0, configuration 29)
    frame_scan: bool = True


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
    mask_labels = _mask_labels(o.labels, manifest)
    if mask_labels is not None:
        cfg_in = cfg_in.replace(labels=mask_labels.to_dict())
    out_dir = ensure_writable_dir(out, "--out")
    if manifest:
        if ids is not None:
            raise ConfigError("--ids names input paths; a --manifest names its patients in its patient_id column")
        cohort = load_manifest(manifest, tasks=None, lge_threshold=cfg.lge_threshold)
        cases = cases_of(cohort, need_masks=False)
    else:
        missing = [str(p) for p in paths if not Path(p).exists()]
        if missing:
            raise ConfigError(f"input(s) not found: {', '.join(missing[:5])}")
        names = _input_ids(ids, len(paths))
        cases = [Case(n, i + 1, str(p), None, None) for i, (n, p) in enumerate(zip(names, paths))]
    # nothing the job reads is written over (the cohort's manifest and masks, the run's out-of-fold masks)
    refuse_overwrite(out_dir, [manifest, rd.path, *(c.image for c in cases), *(c.mask for c in cases)], "--out")
    check_unique_names([c.patient_id for c in cases], f"--manifest {manifest}" if manifest else "--ids")
    from lgenet.models.seg_onnx import resolve_engine

    engine = resolve_engine(o.engine, bundle=(rd.path / "bundle.json").is_file() and o.device == "cpu")
    if engine == "onnx" and o.device != "cpu":
        raise ConfigError(f"--engine onnx runs on the CPU; with --device {o.device} use --engine torch")
    record = _job_record(rd, cfg_in, o, manifest, _read_all(cases, cfg_in, manifest), engine=engine)
    _check_out_dir(out_dir, record)
    if o.threads:
        import torch

        torch.set_num_threads(int(o.threads))
    seg = load_segmenter(rd.path, device=o.device, engine=engine)
    log.info("segmentation engine: %s", engine)
    profile = rd.read_profile()
    quality_path = rd.path / QUALITY_FILE
    quality = json.loads(quality_path.read_text()) if quality_path.is_file() else None
    if quality is None:
        log.warning(
            "%s has no quality score (%s): no mask is flagged; fit it with `lgenet segment quality %s`",
            rd.path,
            QUALITY_FILE,
            rd.path,
        )
    values = np.asarray(cfg.seg_labels().values(), np.uint16)
    rows: list[dict] = []
    aha_rows: list[dict] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / APPLY_RECORD, json.dumps(record, indent=2) + "\n")
    for c in tqdm(cases, desc="segmenting", unit="patient", disable=not o.progress):
        st = read_case(c, cfg_in, with_mask=c.mask is not None)
        notes = list(st.notes)
        far = shift_warnings(profile, _stack_features(st)) if profile else []
        if far and quality is None:  # with a quality score, the profile is one of its inputs, not a note
            notes.append("unlike the training stacks (" + "; ".join(far) + "): check the masks")
        res = seg(st.image, st.spacing)
        slice_mm = st.meta.get("slice_spacing") or st.meta.get("slice_thickness")
        judged = None
        if o.second_look and quality is not None:
            look = second_look(
                seg, st.image, st.spacing, slice_mm, quality, profile_outside=len(far), first=res, scan=o.frame_scan
            )
            judged = (look.verdict, look.quality)
            if look.chosen:
                why = "implausible" if not look.first_verdict.ok else "doubted"
                notes.append(
                    f"second look: the first mask ({why}, predicted myocardium Dice "
                    f"{look.first_quality['quality_dice']:.2f}) was replaced by the mask at another place the "
                    f"localisers weighed (predicted Dice {look.quality['quality_dice']:.2f}): check the overlay"
                )
                res = look.result
        notes += res.notes
        status, q, verdict_notes = judge_mask(
            res, st.spacing, slice_mm, quality, len(far), image=st.image, judged=judged
        )
        notes += verdict_notes
        # the RV side is reported, not acted on: as a second look's trigger it cost masks (configuration 27)
        side_of = rv_side_of(st, res.classes) if status != NO_LV else None
        if side_of is not None and side_of.verdict == INCONSISTENT:
            notes.append(
                f"RV side: the blood-like tissue beside this ring lies {side_of.off_deg:.0f} deg from the patient's "
                "right-anterior side, where the RV should be (image geometry): the ring may lie on another "
                "structure; check the overlay"
            )
        if status == NO_LV:
            res.classes = np.zeros_like(res.classes)
        for n in notes:
            log.warning("patient %s: %s", c.patient_id, n)
        m = class_measures(res.classes, st.spacing, slice_mm)
        if status != SEGMENTED:
            m = {k: (float("nan") if isinstance(v, (int, float)) else v) for k, v in m.items()}
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
            "status": status,
            "notes": " | ".join(notes),
            "slice_agreement": slice_agreement_text(res) if status != NO_LV else "",
            "fold_agreement": _mean_text(res.fold_agreement) if status != NO_LV else "",
            "rv_side": side_of.text() if side_of is not None else "",
        }
        row.update(q)
        row.update(_threshold_burdens(st.image, res.classes))
        if status != SEGMENTED:
            row.update({"localised_fraction": float("nan"), "lge_sectors_pred": "", "slices_with_enhancement_pred": ""})
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
        if status == SEGMENTED:
            row["aha_orientation"] = aha_outputs(
                c, st, res.classes, slice_mm, o.rv_insertion_deg, o.overlays, out_dir, aha_rows
            )
        if o.dicom_seg:
            mine = [r for r in aha_rows if r["patient_id"] == c.patient_id]
            row["dicom_seg"], row["dicom_sr"] = dicom_outputs(
                c, st, res.classes, m, mine, status == SEGMENTED, out_dir, rd.path, notes
            )
            row["notes"] = " | ".join(notes)
        if o.overlays:
            row["overlay"] = str(
                overlay(out_dir / "overlays" / f"{safe_id(c.patient_id)}.png", st, res.classes).relative_to(out_dir)
            )
        rows.append(row)
    if manifest:  # what was segmented (lgenet.runs.seg.check_segmentation_inputs compares a cohort with it)
        from lgenet.data.inputs import image_sha256

        inputs_record = {
            "manifest": Path(manifest).name,
            "manifest_sha256": sha256_file(manifest),
            "cases": [{"patient_id": c.patient_id, "row": c.row, "image_sha256": image_sha256(c.image)} for c in cases],
        }
        atomic_write_text(out_dir / "inputs.json", json.dumps(inputs_record, indent=1))
    csv_path = out_dir / "segmentation.csv" if manifest or Path(out).suffix == "" else Path(out)
    write_rows(csv_path, rows, SEG_APPLY_FIELDS)
    if aha_rows:
        write_rows(out_dir / "aha_segments.csv", aha_rows, AHA_FIELDS)
        if o.overlays:
            cohort_bullseye(aha_rows, out_dir / "bullseye" / "cohort_mean.png")
    result = SegApplyResult(rows=rows, csv=csv_path, masks_dir=out_dir / "masks")
    result.evaluation = evaluate_apply(rows, lge_threshold=cfg.lge_threshold)
    if result.evaluation is not None:
        atomic_write_text(csv_path.with_name("evaluation.json"), json.dumps(result.evaluation, indent=1) + "\n")
    if manifest:
        src = f"lgenet segment apply (fold ensemble of {rd.path.name}): network enhancement class, whole LV"
        result.manifest = _write_segmented_manifest(cohort, rows, out_dir / "manifest.csv", src)
    return result


def _mean_text(v) -> str:
    """The mean of a per-slice array over the slices where it is known, to 3 decimals ("" when none)."""
    if v is None:
        return ""
    a = np.asarray(v, np.float64)
    a = a[np.isfinite(a)]
    return f"{a.mean():.3f}" if a.size else ""


def _mask_labels(labels: str | None, manifest):
    """The convention of the input masks: ``--labels``, else the import sidecar's, else ``None`` (the run's)."""
    from lgenet.conventions.labels import label_convention
    from lgenet.data.importers import labels_from_import

    if labels:
        return label_convention(labels)
    found = labels_from_import(manifest) if manifest else None
    if found is None:
        return None
    log.info("labels of the manifest's masks from %s: %s", found[1].name, found[0].to_dict())
    return found[0]


#: ``status`` of a patient whose LV was segmented, and of one where none was found (:func:`lv_status`)
SEGMENTED = "segmented"
NO_LV = "no LV found"
#: ``status`` of a patient whose predicted mask is not an anatomically plausible LV
#: (:func:`lgenet.segment.plausibility.check_plausibility`; since 0.2.0)
NOT_LV = "implausible LV mask"


def rv_side_of(st, classes: np.ndarray):
    """The RV side (:mod:`lgenet.segment.rv_side`) of the mask ``classes`` drawn on stack ``st``, judged against
    the patient's right-anterior direction of its geometry; ``unknown``, with a short reason, without one."""
    affine = st.meta.get("affine")
    expected, _ = rv_direction(affine, st.spacing)
    if expected is None:
        why = "no patient geometry" if affine is None else "the geometry gives no patient axes"
        return judge_rv_side(RvSide(None, 0.0, 0), None, why)
    return judge_rv_side(observe_rv_side(st.image, classes, st.spacing), expected)


def lv_status(res) -> str:
    """:data:`NO_LV` when the localiser found the LV on no slice or no myocardium was predicted (random
    noise, another view, an empty frame): the network's output is then no measurement; else :data:`SEGMENTED`."""
    if not np.asarray(res.localised).any() or not (np.asarray(res.classes) >= 2).any():
        return NO_LV
    return SEGMENTED


def judge_mask(
    res,
    spacing,
    slice_mm,
    quality: dict | None,
    profile_outside: int,
    *,
    image: np.ndarray | None = None,
    judged: tuple | None = None,
) -> tuple[str, dict, list[str]]:
    """What ``segment apply`` makes of one segmented stack (``image``, the stack it segmented): its ``status``
    (:data:`SEGMENTED`, :data:`NO_LV`, :data:`NOT_LV` or, below the score's ``refuse_below``, ``likely not the
    LV``), the quality score's columns (empty without a score or an LV) and the notes saying why. ``judged``: the
    mask's plausibility and predicted Dice when already computed (a second look's), not computed again."""
    status = lv_status(res)
    if status != SEGMENTED:
        return status, {}, [f"{status}: no measure is reported (the mask written is empty)"]
    notes = []
    verdict = judged[0] if judged else check_plausibility(res.classes, spacing, slice_mm)
    if not verdict.ok:  # a mask on another structure: kept for review, never measured
        status = NOT_LV
        notes.append(
            f"{NOT_LV}: {verdict.reason()}; no measure is reported (the mask written is the network's, for review)"
        )
    q: dict = {}
    if quality is not None:
        q = (
            dict(judged[1])
            if judged
            else predict_quality(quality, quality_features(res, verdict, profile_outside=profile_outside, image=image))
        )
        below = flag_line(quality)
        q["quality_flag"] = LIKELY_WRONG if q["quality_dice"] < below else ""
        refuse = quality.get("refuse_below")  # absent from a score fitted before 0.3.0 added it: nothing refused
        if status == SEGMENTED and refuse is not None and q["quality_dice"] < float(refuse):
            status = LIKELY_NOT_LV
            notes.append(
                f"{LIKELY_NOT_LV}: the quality score predicts a myocardium Dice of {q['quality_dice']:.2f}, below "
                f"{float(refuse):.3g} (a heart missed): the mask most likely lies on another structure; no measure is "
                "reported (the mask written is the network's, for review)"
            )
        elif q["quality_flag"]:
            notes.append(
                f"{LIKELY_WRONG}: the quality score predicts a myocardium Dice of {q['quality_dice']:.2f} "
                f"(flagged below {below:.3g}): check the overlay"
            )
    return status, q, notes


def _write_segmented_manifest(cohort, rows, path: Path, src: str) -> Path:
    """The input manifest with lge_percent = the measured burden, ``src`` saying where it came from (whole LV; a
    previous value kept)."""
    from lgenet.data.manifest import write_manifest

    pred = {r["patient_id"]: r for r in rows}
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
