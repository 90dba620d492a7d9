"""Learned LGE segmentation: ``lgenet segment train`` (K-fold CV) and ``lgenet segment apply``.

``train_segmentation(cfg)`` trains, for each patient-level fold, a localiser and a segmenter
(:mod:`lgenet.training.segmentation`) on the training patients' stacks and expert masks, then
segments the fold's held-out patients: every patient's out-of-fold mask comes from the one fold
model that never saw it. The folds are those ``lgenet run`` assigns on the same manifest (stratified
on ``lge``), so the segmentation's out-of-fold burden can serve as a model of the same grid. Run
directory::

    seg_config.yaml       the resolved SegConfig (a resume must match it)
    inputs.json           manifest SHA-256 and a content hash of every patient's stack and mask
    profile.json          the training stacks' intensity profile (apply warns on unlike inputs)
    folds_seg.csv         patient_id, fold, label (lge)
    fits/seg/fold<k>/     model.pt (both networks + spec), predictions.csv (held-out patients), fit.json
    masks/<patient>.nii.gz   out-of-fold masks on the input's voxel grid (same shape and affine)
    seg_metrics.csv       one row per patient: Dice (myocardium, enhancement, cavity), expert and
                          predicted LGE % (whole LV, basal slice; network class, n-SD, FWHM), sizes
    seg_summary.json      means, burden agreement (ICC, Bland-Altman), AUCs with CIs and n
    figures/              agreement plots, best/worst-Dice overlay gallery; seg_report.html

``apply_segmentation`` runs the fold ensemble (mean probabilities of the K folds) on a cohort
without masks (or single inputs) and writes masks, overlays, per-patient measures and a manifest
whose ``lge_percent`` is the predicted burden (the previous value, if any, kept as
``lge_percent_original``), with a source column for each.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import __version__
from .config import SegConfig
from .data.stacks import Stack, read_stack
from .errors import ConfigError, DataError, LgenetError, ReaderError
from .rundir import RunDir, ensure_writable_dir
from .utils import atomic_write_text, sha256_file

__all__ = ["SegRunDir", "SegFoldJob", "train_segmentation", "apply_segmentation", "SegRunResult", "load_segmenter",
           "SEG_METRIC_FIELDS"]

log = logging.getLogger("lgenet")

SEG_RESUME_FREE = {"out", "num_threads", "device", "manifest", "tta"}
SEG_METRIC_FIELDS = [
    "patient_id", "fold", "n_slices", "dice_myo", "dice_lge", "dice_cavity", "lge_label",
    "lge_percent_expert", "lge_percent_pred", "lge_percent_basal_expert", "lge_percent_basal_pred",
    "lge_percent_pred_nsd2", "lge_percent_pred_nsd3", "lge_percent_pred_nsd5", "lge_percent_pred_nsd6",
    "lge_percent_pred_fwhm", "myo_ml_expert", "myo_ml_pred", "enh_ml_expert", "enh_ml_pred",
    "myo_mass_g_pred", "enh_mass_g_pred", "cavity_ml_pred", "slices_with_enhancement_pred",
    "localised_fraction", "lge_percent_manifest",
]


# ----------------------------------------------------------------------------------- run directory
class SegRunDir(RunDir):
    """The segmentation run's directory (shares locking, temp clean-up and fold files with RunDir)."""

    CONFIG_NAME = "seg_config.yaml"
    WHAT = "an lgenet segmentation run"
    MAKER = "`lgenet segment train`"

    def config_class(self):
        return SegConfig

    def fold_dir(self, k: int) -> Path:
        return self.path / "fits" / "seg" / f"fold{int(k)}"

    def finished_fits(self) -> list[Path]:
        root = self.path / "fits" / "seg"
        return sorted(root.glob("fold*/fit.json")) if root.is_dir() else []

    @property
    def masks_dir(self) -> Path:
        return self.path / "masks"

    @property
    def metrics_csv(self) -> Path:
        return self.path / "seg_metrics.csv"

    @property
    def summary_json(self) -> Path:
        return self.path / "seg_summary.json"

    def load_states(self, k: int) -> tuple[dict, dict, dict]:
        """(spec dict, localiser state, segmenter state) of fold ``k``; clear errors for damaged files."""
        import warnings

        import torch

        f = self.fold_dir(k) / "model.pt"
        redo = f"delete {f.parent} and rerun `lgenet segment train` with the run's settings to refit it"
        if not f.is_file():
            raise LgenetError(f"segmentation fold model {f} is missing; {redo}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ck = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - damaged or foreign file
            from .errors import short_reason

            raise LgenetError(f"segmentation fold model {f} is unreadable ({short_reason(exc)}); {redo}") from None
        if not isinstance(ck, dict) or not {"spec", "localiser", "segmenter"} <= set(ck):
            raise LgenetError(f"{f} is not an lgenet segmentation fold model; {redo}")
        return ck["spec"], ck["localiser"], ck["segmenter"]


def load_segmenter(run_dir: str | Path, folds: Sequence[int] | None = None, *, device: str = "cpu",
                   tta: bool | None = None):
    """The fold ensemble (or the given folds) of a finished segmentation run, ready to apply."""
    from .models.segnet import SegSpec
    from .models.seginfer import Segmenter

    rd = SegRunDir(run_dir)
    cfg = rd.load_config()
    ks = list(range(cfg.folds)) if folds is None else list(folds)
    states, spec = [], None
    for k in ks:
        sd, loc, seg = rd.load_states(k)
        spec = SegSpec.from_dict(sd)
        states.append((loc, seg))
    return Segmenter(spec, states, device=device, tta=cfg.tta if tta is None else tta)


# ----------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One patient's stack in a manifest (the first row of the patient)."""

    patient_id: str
    row: int
    image: str
    mask: str | None
    lge_percent: float | None


def _cases(cohort, *, need_masks: bool) -> list[Case]:
    by_pid: dict[str, Case] = {}
    problems = []
    for r in cohort.records:
        prev = by_pid.get(r.patient_id)
        if prev is not None:
            if Path(prev.image).resolve() != Path(r.image).resolve():
                problems.append(f"patient {r.patient_id}: rows {prev.row} and {r.row} give different images; "
                                "segmentation works on one stack per patient")
            continue
        if need_masks and r.mask is None:
            problems.append(f"row {r.row} (patient {r.patient_id}): no 'mask'; segment train needs the expert label "
                            "map of every stack")
        by_pid[r.patient_id] = Case(r.patient_id, r.row, str(r.image), str(r.mask) if r.mask else None, r.lge_percent)
    if problems:
        raise DataError(f"manifest {cohort.path}:\n" + "\n".join(f"  - {p}" for p in problems[:20]))
    return [by_pid[p] for p in sorted(by_pid)]


def _read_case(case: Case, cfg: SegConfig, *, with_mask: bool = True) -> Stack:
    try:
        return read_stack(case.image, case.mask if with_mask else None, labels=cfg.seg_labels(),
                          nifti_slice_axis=cfg.nifti_slice_axis, nifti_basal_end=cfg.nifti_basal_end,
                          default_spacing=cfg.pixel_spacing)
    except (ReaderError, DataError) as exc:
        raise type(exc)(f"row {case.row} (patient {case.patient_id}): {exc}") from None


def _stack_hash(st: Stack) -> str:
    h = hashlib.sha256(repr((st.image.shape, st.spacing)).encode())
    h.update(np.ascontiguousarray(st.image, np.float32).tobytes())
    if st.classes is not None:
        h.update(np.ascontiguousarray(st.classes).tobytes())
    return h.hexdigest()


def _stack_features(st: Stack) -> dict:
    from .data.shift import frame_features

    f = frame_features(st.image[-1], {"pixel_spacing": st.spacing})
    return f


# ----------------------------------------------------------------------------------- the fold job
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
        from .training.jobs import FitOutcome
        from .utils import torch_threads

        if self.done():
            return FitOutcome(self, skipped=True)
        with torch_threads(self.threads):
            return _run_fold(self, on_epoch)


def _fold_seed(seed: int, fold: int) -> int:
    import zlib

    return zlib.crc32(f"{seed}|segmentation|{fold}".encode()) & 0x7FFFFFFF


def _run_fold(job: SegFoldJob, on_epoch) -> object:
    import torch

    from .data.stacks import tissue_normalise
    from .data.manifest import load_manifest
    from .models.seginfer import Segmenter
    from .training.jobs import FitOutcome, compute_signature
    from .training.segmentation import SegTrainParams, train_fold

    cfg = job.config
    rd = SegRunDir(job.run_dir)
    record = rd.read_inputs() or {}
    want = {r["patient_id"]: r["stack_sha256"] for r in record.get("cases", [])}
    cases = _cases(load_manifest(cfg.manifest, tasks=None, lge_threshold=cfg.lge_threshold), need_masks=True)
    folds = rd.read_folds("seg")
    stacks = {}
    for c in cases:
        if c.patient_id not in folds:
            continue
        st = _read_case(c, cfg)
        if want and want.get(c.patient_id) != _stack_hash(st):
            raise DataError(f"patient {c.patient_id}: the image or mask changed since the run started; use the "
                            "original inputs or a new --out")
        stacks[c.patient_id] = st
    train = [p for p in sorted(stacks) if folds[p] != job.fold]
    test = [p for p in sorted(stacks) if folds[p] == job.fold]
    if set(train) & set(test):  # pragma: no cover - a partition by construction
        raise DataError("a patient is on both sides of the split")
    spec = cfg.spec()
    params = SegTrainParams(epochs=cfg.epochs, loc_epochs=cfg.loc_epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                            weight_decay=cfg.weight_decay, augment=cfg.augment, device=job.device,
                            precision=job.precision)
    seed = _fold_seed(cfg.seed, job.fold)
    n_loc = cfg.loc_epochs

    def epoch_cb(stage, e, v):
        if on_epoch is not None:
            on_epoch(e + (n_loc if stage == "segmenter" else 0), v)

    t0 = time.perf_counter()
    loc_state, seg_state, res = train_fold(
        [(tissue_normalise(stacks[p].image, spec.percentiles), stacks[p].classes, stacks[p].spacing) for p in train],
        spec, params, seed=seed, on_epoch=epoch_cb)
    seg = Segmenter(spec, [(loc_state, seg_state)], device=job.device, tta=cfg.tta)
    rows = []
    for p in test:
        case = next(c for c in cases if c.patient_id == p)
        rows.append(_evaluate_case(case, stacks[p], seg, cfg, rd, job.fold))
    d = rd.fold_dir(job.fold)
    d.mkdir(parents=True, exist_ok=True)
    from .utils import atomic_path

    with atomic_path(d / "model.pt") as tmp:
        torch.save({"format": "lgenet-seg-fold/1", "spec": spec.to_dict(), "localiser": loc_state,
                    "segmenter": seg_state}, tmp)
    _write_rows(d / "predictions.csv", rows, SEG_METRIC_FIELDS)
    info = {"fold": job.fold, "seed": seed, "n_train_patients": len(train), "n_test_patients": len(test),
            "train_patients": train, "test_patients": test,
            "n_train_slices": res.n_slices, "epochs": cfg.epochs, "loc_epochs": cfg.loc_epochs,
            "losses": [round(v, 5) for v in res.losses], "loc_losses": [round(v, 5) for v in res.loc_losses],
            "seconds_localiser": round(res.loc_seconds, 1), "seconds_segmenter": round(res.seconds, 1),
            "seconds_total": round(time.perf_counter() - t0, 1), "spec": spec.to_dict(),
            "compute": compute_signature(job.device, job.precision, job.threads),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_text(d / "fit.json", json.dumps(info, indent=1))
    log.info("%s: %d train / %d test patients, %.0f s", job.name, len(train), len(test), info["seconds_total"])
    return FitOutcome(job, seconds=info["seconds_total"], final_loss=res.losses[-1] if res.losses else float("nan"))


def _num(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return v


def _evaluate_case(case: Case, st: Stack, seg, cfg: SegConfig, rd: SegRunDir, fold: int) -> dict:
    """Segment one held-out patient; write its mask; measures vs the expert's."""
    from .evaluation.segmentation import class_measures, dice
    from .io.nifti import write_label_volume

    res = seg(st.image, st.spacing)
    pred, gt = res.classes, st.classes
    slice_mm = st.meta.get("slice_spacing") or st.meta.get("slice_thickness")
    mp = class_measures(pred, st.spacing, slice_mm)
    me = class_measures(gt, st.spacing, slice_mm)
    values = np.asarray(cfg.seg_labels().values(), np.uint16)
    write_label_volume(rd.masks_dir / f"{_safe(case.patient_id)}.nii.gz", values[pred], case.image, st.meta,
                       slice_axis=cfg.nifti_slice_axis, basal_end=cfg.nifti_basal_end)
    row = {"patient_id": case.patient_id, "fold": fold, "n_slices": int(pred.shape[0]),
           "dice_myo": dice(pred >= 2, gt >= 2), "dice_lge": dice(pred == 3, gt == 3),
           "dice_cavity": dice(pred == 1, gt == 1),
           "lge_label": int(me["lge_percent"] > cfg.lge_threshold) if math.isfinite(me["lge_percent"]) else "",
           "lge_percent_expert": me["lge_percent"], "lge_percent_pred": mp["lge_percent"],
           "lge_percent_basal_expert": me["lge_percent_basal"], "lge_percent_basal_pred": mp["lge_percent_basal"],
           "myo_ml_expert": me.get("myo_ml"), "myo_ml_pred": mp.get("myo_ml"), "enh_ml_expert": me.get("enh_ml"),
           "enh_ml_pred": mp.get("enh_ml"), "myo_mass_g_pred": mp.get("myo_mass_g"),
           "enh_mass_g_pred": mp.get("enh_mass_g"), "cavity_ml_pred": mp.get("cavity_ml"),
           "slices_with_enhancement_pred": mp["slices_with_enhancement"],
           "localised_fraction": float(np.mean(res.localised)),
           "lge_percent_manifest": case.lge_percent if case.lge_percent is not None else ""}
    row.update(_threshold_burdens(st.image, pred))
    return row


def _threshold_burdens(image: np.ndarray, classes: np.ndarray) -> dict:
    """n-SD and FWHM burden inside the *predicted* myocardium, remote from the predicted myocardium."""
    from .quantify import quantify

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


def _safe(pid: str) -> str:
    from .explain.frames import safe_name

    return safe_name(pid)


def _fmt(v) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return str(v)


def _write_rows(path: Path, rows: Sequence[dict], fields: Sequence[str]) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k)) for k in fields})
    return atomic_write_text(path, buf.getvalue())


def _read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ----------------------------------------------------------------------------------- train
@dataclass
class SegRunResult:
    out_dir: Path
    summary: dict = field(default_factory=dict)
    table: str = ""
    fits_run: int = 0
    fits_skipped: int = 0
    figures: list[Path] = field(default_factory=list)


def _prepare(cfg: SegConfig, progress: bool):
    """Validate everything (manifest, stacks, masks, labels, folds) before anything is written."""
    from tqdm.auto import tqdm

    from .data.manifest import load_manifest
    from .data.shift import cohort_profile
    from .data.splits import assign_folds
    from .evaluation.segmentation import class_measures

    if cfg.manifest is None:
        raise ConfigError("lgenet segment train needs --manifest cohort.csv (rows with image and mask)")
    ensure_writable_dir(cfg.out)
    cfg.spec()  # geometry checks
    cohort = load_manifest(cfg.manifest, tasks=None, lge_threshold=cfg.lge_threshold)
    cases = _cases(cohort, need_masks=True)
    stacks, problems, hashes, feats = {}, [], {}, []
    for c in tqdm(cases, desc="reading stacks", unit="patient", disable=not progress, leave=False):
        try:
            st = _read_case(c, cfg)
        except LgenetError as exc:
            problems.append(str(exc))
            continue
        if not (st.classes >= 2).any():
            problems.append(f"row {c.row} (patient {c.patient_id}): the mask has no myocardium (labels "
                            f"{cfg.labels.get('myo')}); check --labels")
        stacks[c.patient_id] = st
        hashes[c.patient_id] = _stack_hash(st)
        feats.append(_stack_features(st))
    if problems:
        raise DataError(f"{len(problems)} stack(s) of {cfg.manifest} cannot be used:\n"
                        + "\n".join(f"  - {p}" for p in problems[:30]))
    seen: dict[str, str] = {}
    for pid, h in hashes.items():
        if h in seen:
            raise DataError(f"patients {seen[h]} and {pid} have identical image stacks and masks; every patient "
                            "needs their own")
        seen[h] = pid
    labels_manifest = cohort.labels("lge")
    source = "manifest lge_percent"
    if len(labels_manifest) == len(cases):
        labels = labels_manifest
    else:
        labels = {p: int(class_measures(st.classes)["lge_percent"] > cfg.lge_threshold) for p, st in stacks.items()}
        source = "expert masks (no lge_percent in the manifest)"
    pids = sorted(labels)
    if min(sum(labels.values()), len(pids) - sum(labels.values())) >= cfg.folds:
        folds = assign_folds(pids, [labels[p] for p in pids], n_splits=cfg.folds, random_state=cfg.seed, task="lge")
    else:  # a cohort without both classes: unstratified (still patient-level)
        from sklearn.model_selection import KFold

        if len(pids) < cfg.folds:
            raise DataError(f"{len(pids)} patients are fewer than folds={cfg.folds}; lower --folds or add patients")
        folds = {}
        for k, (_, test) in enumerate(KFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(pids)):
            for i in test:
                folds[pids[i]] = k
        source += "; unstratified (one class has fewer patients than folds)"
    record = {"manifest": Path(cfg.manifest).name, "manifest_sha256": sha256_file(cfg.manifest),
              "cases": [{"patient_id": c.patient_id, "row": c.row, "stack_sha256": hashes[c.patient_id]} for c in cases]}
    return cases, stacks, folds, labels, source, record, cohort_profile(feats)


def train_segmentation(cfg: SegConfig, *, progress: bool = True, executor: str = "local", workers: int = 1,
                       report: bool = True) -> SegRunResult:
    """K-fold segmentation CV with out-of-fold masks and metrics (see the module docstring)."""
    import torch
    from tqdm.auto import tqdm

    from .pipeline import _same_compute
    from .training.executors import make_executor
    from .training.jobs import compute_signature
    from .training.trainer import resolve_device, resolve_precision

    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    threads = int(cfg.num_threads or (torch.get_num_threads() if workers <= 1 or executor == "local"
                                      else max(1, (__import__("os").cpu_count() or 1) // workers)))
    cases, stacks, folds, labels, source, record, profile = _prepare(cfg, progress)
    rd = SegRunDir(cfg.out)
    ex = make_executor(executor, workers=workers, threads=threads, progress=progress)
    with rd.lock():
        rd.clean_temp_files()
        finished = rd.finished_fits()
        old = rd.saved_config_dict()
        reasons = []
        if old is not None:
            new = cfg.to_dict()
            diff = sorted(k for k in set(old) | set(new) if k not in SEG_RESUME_FREE and old.get(k) != new.get(k))
            if diff:
                reasons.append("started with different settings (" + ", ".join(
                    f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:6]) + ")")
        prev = rd.read_inputs()
        if prev is not None and (prev.get("manifest_sha256") != record["manifest_sha256"]
                                 or prev.get("cases") != record["cases"]):
            reasons.append("started on other inputs (the manifest, an image or a mask differs)")
        if reasons and finished:
            raise ConfigError(f"segmentation run {rd.path} was {' and '.join(reasons)}. It holds {len(finished)} "
                              "finished fold(s); resuming would mix them. Use the same settings and inputs, or a new --out")
        if reasons:
            import shutil

            for p in (rd.path / "fits", rd.masks_dir):
                if p.exists():
                    shutil.rmtree(p)
            for p in (rd.folds_path("seg"),):
                if p.exists():
                    p.unlink()
        now = compute_signature(str(device), precision, threads)
        for f in finished:
            c = json.loads(f.read_text()).get("compute")
            if c and not _same_compute(c, now):
                raise ConfigError(f"segmentation run {rd.path}: finished folds were computed with {c}; this run would "
                                  f"use {now}; resume with the same --threads/--device/--precision, or use a new --out")
        rd.write_config(cfg)
        atomic_write_text(rd.inputs_path, json.dumps(record, indent=1))
        atomic_write_text(rd.profile_path, json.dumps(profile, indent=1))
        rd.write_folds("seg", folds, labels)
        from .pipeline import _add_file_log

        handler = _add_file_log(rd)
        try:
            log.info("lgenet %s segment train: %d patients, %d folds (labels from %s), device %s (%s), %d thread(s)",
                     __version__, len(cases), cfg.folds, source, device, precision, threads)
            jobs = [SegFoldJob(str(rd.path), cfg, k, device=str(device), precision=precision, threads=threads)
                    for k in range(cfg.folds)]
            result = SegRunResult(out_dir=rd.path)
            n_done = sum(j.done() for j in jobs)
            if n_done and progress:
                print(f"resuming {rd.path}: {n_done} of {len(jobs)} folds already done")
            bar = tqdm(total=len(jobs), initial=n_done, desc="segmentation folds", unit="fold", disable=not progress)

            def on_done(o) -> None:
                if o.skipped:
                    result.fits_skipped += 1
                else:
                    result.fits_run += 1
                    bar.update(1)
                    log.info("%s done in %.0f s (%s)", o.job.name, o.seconds, o.worker or "here")

            try:
                ex.run(jobs, on_done)
            finally:
                bar.close()
            summary, table, figures = summarise_segmentation(rd, cfg, label_source=source)
            result.summary, result.table, result.figures = summary, table, figures
            if report:
                from .report.segmentation import write_seg_report

                try:
                    result.figures.append(write_seg_report(rd.path))
                except Exception as exc:  # noqa: BLE001 - the metrics are saved; the page can be redone
                    log.error("seg_report.html could not be written (%s)", exc)
        finally:
            log.removeHandler(handler)
            handler.close()
    return result


def summarise_segmentation(rd: SegRunDir, cfg: SegConfig, *, label_source: str = "") -> tuple[dict, str, list[Path]]:
    """seg_metrics.csv, seg_summary.json, agreement figures and the printed table from the fold records."""
    from .evaluation.metrics import auc_ci
    from .evaluation.segmentation import agreement, plot_agreement

    rows = []
    for k in range(cfg.folds):
        rows += _read_rows(rd.fold_dir(k) / "predictions.csv")
    rows.sort(key=lambda r: r["patient_id"])
    _write_rows(rd.metrics_csv, rows, SEG_METRIC_FIELDS)
    col = lambda name, sel=None: np.array([_num(r[name]) for r in rows if sel is None or sel(r)])  # noqa: E731
    mi = lambda r: _num(r["lge_percent_expert"]) > 0  # noqa: E731
    summary: dict = {"n": len(rows), "folds": cfg.folds, "label_source": label_source,
                     "lge_threshold": cfg.lge_threshold}
    for name, sel in (("dice_myo", None), ("dice_cavity", None), ("dice_lge", mi)):
        v = col(name, sel)
        v = v[np.isfinite(v)]
        summary[name] = {"mean": float(v.mean()) if v.size else None, "sd": float(v.std(ddof=1)) if v.size > 1 else None,
                         "median": float(np.median(v)) if v.size else None, "n": int(v.size)}
    summary["dice_lge"]["cases"] = "patients with expert enhancement"
    ref = col("lge_percent_expert")
    summary["agreement"] = {m: agreement(col(f"lge_percent_pred{'' if m == 'network' else '_' + m}"), ref)
                            for m in ("network", "nsd2", "nsd3", "nsd5", "nsd6", "fwhm")}
    summary["agreement_basal"] = agreement(col("lge_percent_basal_pred"), col("lge_percent_basal_expert"))
    y = np.array([int(r["lge_label"]) if r["lge_label"] != "" else -1 for r in rows])
    ok = y >= 0
    aucs = {}
    for name, score in (("whole_lv", "lge_percent_pred"), ("basal_slice", "lge_percent_basal_pred"),
                        ("whole_lv_nsd5", "lge_percent_pred_nsd5"), ("whole_lv_fwhm", "lge_percent_pred_fwhm")):
        s = col(score)
        good = ok & np.isfinite(s)
        try:
            a = auc_ci(y[good], s[good])
            aucs[name] = {"auc": a.auc, "lower": a.lower, "upper": a.upper, "n": a.n, "n_pos": a.n_pos}
        except LgenetError as exc:
            aucs[name] = {"error": str(exc)}
    summary["auc_lge"] = aucs
    summary["auc_label"] = f"expert whole-LV LGE > {cfg.lge_threshold:g} % (from the masks)"
    summary["localised_fraction"] = float(np.nanmean(col("localised_fraction"))) if rows else None
    fits = [json.loads((rd.fold_dir(k) / "fit.json").read_text()) for k in range(cfg.folds)]
    summary["seconds_total"] = round(sum(f.get("seconds_total", 0) for f in fits), 1)
    summary["compute"] = fits[0].get("compute") if fits else None
    atomic_write_text(rd.summary_json, json.dumps(summary, indent=2, allow_nan=True))
    figdir = rd.path / "figures"
    figures = [plot_agreement(col("lge_percent_pred"), ref, path=figdir / "seg_agreement.png",
                              title="Whole-LV LGE %: out-of-fold segmentation vs expert masks",
                              labels=[max(v, 0) for v in y]),
               plot_agreement(col("lge_percent_basal_pred"), col("lge_percent_basal_expert"),
                              path=figdir / "seg_agreement_basal.png",
                              title="Basal-slice LGE %: out-of-fold segmentation vs expert masks")]
    return summary, format_seg_summary(summary), figures


def format_seg_summary(s: dict) -> str:
    def d(name):
        v = s.get(name, {})
        return f"{v['mean']:.3f} \u00b1 {v['sd']:.3f} (n={v['n']})" if v.get("mean") is not None and v.get("sd") else "n/a"

    lines = [f"segmentation, out-of-fold ({s['folds']}-fold CV, n={s['n']} patients)",
             f"  Dice myocardium            {d('dice_myo')}",
             f"  Dice enhancement (MI)      {d('dice_lge')}",
             f"  Dice LV cavity             {d('dice_cavity')}"]
    for m in ("network", "nsd5", "fwhm"):
        a = s["agreement"].get(m, {})
        if "icc" in a:
            lines.append(f"  LGE % {m:<8} vs expert    ICC {a['icc']:.3f} ({a['icc_lower']:.3f}\u2013{a['icc_upper']:.3f}), "
                         f"r {a['pearson_r']:.3f}, bias {a['bias']:+.2f} pp, LoA {a['loa_lower']:+.1f} to "
                         f"{a['loa_upper']:+.1f}")
    for name, a in s["auc_lge"].items():
        if "auc" in a:
            lines.append(f"  AUC lge ({name:<14})   {a['auc']:.3f} (95% CI {a['lower']:.3f}\u2013{a['upper']:.3f}), "
                         f"n={a['n']} ({a['n_pos']} positive)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- apply
@dataclass
class SegApplyResult:
    rows: list[dict]
    csv: Path
    manifest: Path | None = None
    masks_dir: Path | None = None


def apply_segmentation(run_dir: str | Path, *, out: str | Path, manifest: str | Path | None = None,
                       paths: Sequence[str | Path] = (), ids: Sequence[str] | None = None,
                       nifti_slice_axis: int | None = None, nifti_basal_end: str | None = None,
                       pixel_spacing: float | None = None, overlays: bool = True, progress: bool = True,
                       device: str = "cpu") -> SegApplyResult:
    """Segment a cohort (manifest) or single inputs with a finished run's fold ensemble."""
    from tqdm.auto import tqdm

    from .data.manifest import load_manifest
    from .data.shift import shift_warnings
    from .evaluation.segmentation import class_measures, dice
    from .io.nifti import write_label_volume

    rd = SegRunDir(run_dir)
    cfg = rd.load_config()
    if bool(manifest) == bool(paths):
        raise ConfigError("lgenet segment apply: give a --manifest or input paths, one of the two")
    cfg_in = cfg.replace(nifti_slice_axis=cfg.nifti_slice_axis if nifti_slice_axis is None else nifti_slice_axis,
                         nifti_basal_end=cfg.nifti_basal_end if nifti_basal_end is None else nifti_basal_end,
                         pixel_spacing=pixel_spacing if pixel_spacing is not None else cfg.pixel_spacing)
    out_dir = ensure_writable_dir(out, "--out")
    if manifest:
        cohort = load_manifest(manifest, tasks=None, lge_threshold=cfg.lge_threshold)
        cases = _cases(cohort, need_masks=False)
    else:
        missing = [str(p) for p in paths if not Path(p).exists()]
        if missing:
            raise ConfigError(f"input(s) not found: {', '.join(missing[:5])}")
        if ids is not None and len(ids) != len(paths):
            raise ConfigError(f"--ids gives {len(ids)} id(s) for {len(paths)} input(s); give one per input, in order")
        names = list(ids) if ids is not None else [f"input_{i + 1:03d}" for i in range(len(paths))]
        cases = [Case(n, i + 1, str(p), None, None) for i, (n, p) in enumerate(zip(names, paths))]
    seg = load_segmenter(rd.path, device=device)
    profile = rd.read_profile()
    values = np.asarray(cfg.seg_labels().values(), np.uint16)
    rows = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for c in tqdm(cases, desc="segmenting", unit="patient", disable=not progress):
        st = _read_case(c, cfg_in, with_mask=c.mask is not None)
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
        mask_path = out_dir / "masks" / f"{_safe(c.patient_id)}.nii.gz"
        write_label_volume(mask_path, values[res.classes], c.image, st.meta, slice_axis=cfg_in.nifti_slice_axis,
                           basal_end=cfg_in.nifti_basal_end)
        row = {"patient_id": c.patient_id, "n_slices": int(res.classes.shape[0]),
               "lge_percent_pred": m["lge_percent"], "lge_percent_basal_pred": m["lge_percent_basal"],
               "myo_ml_pred": m.get("myo_ml"), "enh_ml_pred": m.get("enh_ml"), "myo_mass_g_pred": m.get("myo_mass_g"),
               "enh_mass_g_pred": m.get("enh_mass_g"), "cavity_ml_pred": m.get("cavity_ml"),
               "slices_with_enhancement_pred": m["slices_with_enhancement"],
               "localised_fraction": float(np.mean(res.localised)), "mask": str(mask_path.relative_to(out_dir)),
               "notes": " | ".join(notes)}
        row.update(_threshold_burdens(st.image, res.classes))
        if st.classes is not None:
            gt = st.classes
            me = class_measures(gt, st.spacing, slice_mm)
            row.update({"dice_myo": dice(res.classes >= 2, gt >= 2), "dice_lge": dice(res.classes == 3, gt == 3),
                        "dice_cavity": dice(res.classes == 1, gt == 1), "lge_percent_expert": me["lge_percent"]})
        if overlays:
            row["overlay"] = str(_overlay(out_dir / "overlays" / f"{_safe(c.patient_id)}.png", st, res.classes)
                                 .relative_to(out_dir))
        rows.append(row)
    fields = ["patient_id", "n_slices", "lge_percent_pred", "lge_percent_basal_pred", "lge_percent_pred_nsd2",
              "lge_percent_pred_nsd3", "lge_percent_pred_nsd5", "lge_percent_pred_nsd6", "lge_percent_pred_fwhm",
              "myo_ml_pred", "enh_ml_pred", "myo_mass_g_pred", "enh_mass_g_pred", "cavity_ml_pred",
              "slices_with_enhancement_pred", "localised_fraction", "dice_myo", "dice_lge", "dice_cavity",
              "lge_percent_expert", "mask", "overlay", "notes"]
    csv_path = out_dir / "segmentation.csv" if manifest or Path(out).suffix == "" else Path(out)
    _write_rows(csv_path, rows, fields)
    result = SegApplyResult(rows=rows, csv=csv_path, masks_dir=out_dir / "masks")
    if manifest:
        result.manifest = _write_segmented_manifest(cohort, rows, out_dir / "manifest.csv", rd.path)
    return result


def _write_segmented_manifest(cohort, rows, path: Path, run: Path) -> Path:
    """The input manifest with lge_percent = predicted burden (+ its source; a previous value kept)."""
    from .data.manifest import write_manifest

    pred = {r["patient_id"]: r for r in rows}
    src = f"lgenet segment apply (fold ensemble of {run.name}): network enhancement class, whole LV"
    out_rows = []
    for rec in cohort.records:
        r = {"patient_id": rec.patient_id, "image": str(rec.image), "slice": rec.slice if rec.slice != "basal" else "",
             "event": "" if rec.event is None else rec.event,
             "followup_years": "" if rec.followup_years is None else rec.followup_years,
             "mask": "" if rec.mask is None else str(rec.mask), **rec.covariates}
        p = pred.get(rec.patient_id, {})
        r["lge_percent"] = "" if not math.isfinite(_num(p.get("lge_percent_pred"))) else round(_num(p["lge_percent_pred"]), 4)
        r["lge_percent_source"] = src
        r["lge_percent_basal_pred"] = "" if not math.isfinite(_num(p.get("lge_percent_basal_pred"))) else round(
            _num(p["lge_percent_basal_pred"]), 4)
        r["lge_percent_basal_pred_source"] = src.replace("whole LV", "basal slice")
        if rec.lge_percent is not None:
            r["lge_percent_original"] = rec.lge_percent
            r["lge_percent_original_source"] = "the input manifest's lge_percent"
        out_rows.append(r)
    cols = list(dict.fromkeys(k for r in out_rows for k in r))
    return write_manifest(path, out_rows, columns=cols)


def _overlay(path: Path, st: Stack, classes: np.ndarray) -> Path:
    """Basal, mid and apical slices with the predicted myocardium (green) and enhancement (red)."""
    from .evaluation.plots import _new_figure, save_figure

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
