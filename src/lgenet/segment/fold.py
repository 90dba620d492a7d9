"""One segmentation fold as a job: train its two networks, segment its held-out patients."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lgenet.config import SegConfig
from lgenet.data.stacks import Stack
from lgenet.errors import DataError, LgenetError
from lgenet.runs.seg import SEG_METRIC_FIELDS, SegRunDir
from lgenet.runs.tables import rows_csv
from lgenet.segment.cases import Case, _stack_hash, cases_of, read_case, safe_id

__all__ = ["SegFoldJob", "SEG_METRIC_FIELDS", "case_row", "write_case_mask"]

log = logging.getLogger("lgenet")


@dataclass(frozen=True)
class SegFoldJob:
    """Train fold ``fold``'s two networks and segment its held-out patients (self-contained, picklable)."""

    run_dir: str
    config: SegConfig
    fold: int
    device: str = "cpu"
    precision: str = "fp32"
    threads: int | None = None

    @property
    def name(self) -> str:
        return f"segmentation fold {self.fold + 1}/{self.config.folds}"

    @property
    def total_epochs(self) -> int:
        return self.config.loc_epochs + self.config.epochs

    def done(self) -> bool:
        return (SegRunDir(self.run_dir).fold_dir(self.fold) / "fit.json").is_file()

    def execute(self, on_epoch: Callable[[int, float], None] | None = None):
        from lgenet.runs.jobs import FitOutcome
        from lgenet.utils import torch_threads

        if self.done():
            return FitOutcome(self, skipped=True)
        with torch_threads(self.threads):
            return _run_fold(self, on_epoch)


def _fold_seed(seed: int, fold: int) -> int:
    import zlib

    return zlib.crc32(f"{seed}|segmentation|{fold}".encode()) & 0x7FFFFFFF


def _run_fold(job: SegFoldJob, on_epoch) -> object:
    import torch

    from lgenet.config.seg import SegTraining
    from lgenet.data.manifest import load_manifest
    from lgenet.data.stacks import tissue_normalise
    from lgenet.models.seginfer import Segmenter
    from lgenet.runs.compute import compute_signature
    from lgenet.runs.jobs import FitOutcome
    from lgenet.segment.learn import SegTrainParams, train_fold

    cfg = job.config
    rd = SegRunDir(job.run_dir)
    record = rd.read_inputs() or {}
    want = {r["patient_id"]: r["stack_sha256"] for r in record.get("cases", [])}
    cases = cases_of(load_manifest(cfg.manifest, tasks=None, lge_threshold=cfg.lge_threshold), need_masks=True)
    folds = rd.read_folds("seg")
    stacks = {}
    for c in cases:
        if c.patient_id not in folds:
            continue
        st = read_case(c, cfg)
        if want and want.get(c.patient_id) != _stack_hash(st):
            raise DataError(
                f"patient {c.patient_id}: the image or mask changed since the run started; use the "
                "original inputs or a new --out"
            )
        stacks[c.patient_id] = st
    train = [p for p in sorted(stacks) if folds[p] != job.fold]
    test = [p for p in sorted(stacks) if folds[p] == job.fold]
    if set(train) & set(test):  # pragma: no cover - a partition by construction
        raise DataError("a patient is on both sides of the split")
    spec = cfg.spec()
    params = SegTrainParams(**SegTraining.values_of(cfg), device=job.device, precision=job.precision)
    seed = _fold_seed(cfg.seed, job.fold)
    n_loc = cfg.loc_epochs

    def epoch_cb(stage, e, v):
        if on_epoch is not None:
            on_epoch(e + (n_loc if stage == "segmenter" else 0), v)

    t0 = time.perf_counter()
    loc_state, seg_state, res = train_fold(
        [
            (
                tissue_normalise(
                    stacks[p].image, spec.percentiles, method=spec.normalisation, spacing=stacks[p].spacing
                ),
                stacks[p].classes,
                stacks[p].spacing,
            )
            for p in train
        ],
        spec,
        params,
        seed=seed,
        on_epoch=epoch_cb,
    )
    seg = Segmenter(spec, [(loc_state, seg_state, res.coarse_state)], device=job.device, tta=cfg.tta)
    rows = []
    for p in test:
        case = next(c for c in cases if c.patient_id == p)
        rows.append(_evaluate_case(case, stacks[p], seg, cfg, rd, job.fold))
    ck = {"format": "lgenet-seg-fold/1", "spec": spec.to_dict(), "localiser": loc_state, "segmenter": seg_state}
    if res.coarse_state is not None:
        ck["coarse_localiser"] = res.coarse_state
    info = {
        "fold": job.fold,
        "seed": seed,
        "n_train_patients": len(train),
        "n_test_patients": len(test),
        "train_patients": train,
        "test_patients": test,
        "n_train_slices": res.n_slices,
        "epochs": cfg.epochs,
        "loc_epochs": cfg.loc_epochs,
        "losses": [round(v, 5) for v in res.losses],
        "loc_losses": [round(v, 5) for v in res.loc_losses],
        "coarse_losses": [round(v, 5) for v in res.coarse_losses],
        "seconds_localiser": round(res.loc_seconds, 1),
        "seconds_segmenter": round(res.seconds, 1),
        "seconds_total": round(time.perf_counter() - t0, 1),
        "spec": spec.to_dict(),
        "compute": compute_signature(job.device, job.precision, job.threads),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    files = {"model.pt": lambda tmp: torch.save(ck, tmp), "predictions.csv": rows_csv(rows, SEG_METRIC_FIELDS)}
    rd.write_fit(rd.fold_dir(job.fold), files, info, indent=1)
    log.info("%s: %d train / %d test patients, %.0f s", job.name, len(train), len(test), info["seconds_total"])
    return FitOutcome(job, seconds=info["seconds_total"], final_loss=res.losses[-1] if res.losses else float("nan"))


def _evaluate_case(case: Case, st: Stack, seg, cfg: SegConfig, rd: SegRunDir, fold: int) -> dict:
    """Segment one held-out patient; write its mask; measures vs the expert's."""
    res = seg(st.image, st.spacing)
    write_case_mask(rd.masks_dir, case, st, res.classes, cfg)
    return case_row(case, st, res, cfg, fold)


def write_case_mask(folder, case: Case, st: Stack, classes: np.ndarray, cfg: SegConfig):
    """A predicted mask (classes 0-3) on the input's voxel grid, in the run's label values: ``folder/<ID>.nii.gz``."""
    from pathlib import Path

    from lgenet.io.nifti import write_label_volume

    values = np.asarray(cfg.seg_labels().values(), np.uint16)
    return write_label_volume(
        Path(folder) / f"{safe_id(case.patient_id)}.nii.gz",
        values[classes],
        case.image,
        st.meta,
        slice_axis=cfg.nifti_slice_axis,
        basal_end=cfg.nifti_basal_end,
    )


def case_row(case: Case, st: Stack, res, cfg: SegConfig, fold: int) -> dict:
    """One patient's row of ``seg_metrics.csv`` (:data:`SEG_METRIC_FIELDS`): the mask of ``res`` (a
    :class:`~lgenet.models.seginfer.SegResult`) measured against the expert's."""
    from lgenet.evaluation.segmentation import class_measures, dice

    pred, gt = res.classes, st.classes
    slice_mm = st.meta.get("slice_spacing") or st.meta.get("slice_thickness")
    mp = class_measures(pred, st.spacing, slice_mm)
    me = class_measures(gt, st.spacing, slice_mm)
    row = {
        "patient_id": case.patient_id,
        "fold": fold,
        "n_slices": int(pred.shape[0]),
        "dice_myo": dice(pred >= 2, gt >= 2),
        "dice_lge": dice(pred == 3, gt == 3),
        "dice_cavity": dice(pred == 1, gt == 1),
        "lge_label": int(me["lge_percent"] > cfg.lge_threshold) if math.isfinite(me["lge_percent"]) else "",
        "lge_percent_expert": me["lge_percent"],
        "lge_percent_pred": mp["lge_percent"],
        "lge_percent_basal_expert": me["lge_percent_basal"],
        "lge_percent_basal_pred": mp["lge_percent_basal"],
        "myo_ml_expert": me.get("myo_ml"),
        "myo_ml_pred": mp.get("myo_ml"),
        "enh_ml_expert": me.get("enh_ml"),
        "enh_ml_pred": mp.get("enh_ml"),
        "myo_mass_g_pred": mp.get("myo_mass_g"),
        "enh_mass_g_pred": mp.get("enh_mass_g"),
        "cavity_ml_pred": mp.get("cavity_ml"),
        "slices_with_enhancement_pred": mp["slices_with_enhancement"],
        "lge_sectors_pred": mp["lge_sectors"],
        "transmurality_max_pred": mp["transmurality_max"],
        "transmurality_mean_pred": mp["transmurality_mean"],
        "localised_fraction": float(np.mean(res.localised)),
        "lge_percent_manifest": case.lge_percent if case.lge_percent is not None else "",
    }
    row.update(_threshold_burdens(st.image, pred))
    return row


def _threshold_burdens(image: np.ndarray, classes: np.ndarray) -> dict:
    """n-SD and FWHM burden inside the *predicted* myocardium, remote from the predicted myocardium."""
    from lgenet.quantify import quantify

    out = {f"lge_percent_pred_{m}": float("nan") for m in ("nsd2", "nsd3", "nsd5", "nsd6", "fwhm")}
    myo = classes >= 2
    if myo.sum() < 50:
        return out
    try:
        q = quantify(image, myo, method="all", n_sd=(2, 3, 5, 6))
    except LgenetError:
        return out
    for name in out:
        key = name.replace("lge_percent_pred_", "")
        if key in q.methods:
            out[name] = float(q.methods[key].percent)
    return out
