"""Applying a finished run's fold models to new images.

``predict(run_dir, task, paths)`` loads the K fold models of the task's best model (highest
out-of-fold AUC in ``metrics.json``; or the model named with ``model='arch/init'``), preprocesses
each input exactly as in training (the run's saved config), and returns the mean of the K fold
probabilities (the fold ensemble) with each fold's own probability.

Note on selection: "best" is chosen by cross-validated AUC over the grid, so that model's reported
AUC carries some optimism from the choice among several models; name a model chosen in advance
with ``--model`` when that matters.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lgenet.config import RunConfig
from lgenet.data.inputs import check_frame, is_colour
from lgenet.data.preprocess import Preprocessor
from lgenet.data.shift import frame_features, shift_warnings
from lgenet.errors import ConfigError, DataError, ReaderError
from lgenet.io import read_frame
from lgenet.io.meta import parse_slice
from lgenet.runs.grid import RunDir
from lgenet.training.trainer import predict_proba
from lgenet.utils import atomic_write_text

__all__ = [
    "PredictOptions",
    "load_run_config",
    "choose_model",
    "load_fold_models",
    "predict",
    "predict_manifest",
    "evaluate_manifest",
    "write_predictions",
    "Prediction",
    "check_output_file",
]

log = logging.getLogger("lgenet")


@dataclass
class Prediction:
    input: str
    prob: float
    fold_probs: list[float]
    model: str
    task: str
    cam: str | None = None  # overlay PNG written with cam_dir
    patient_id: str = ""
    slice_index: int | None = None
    notes: list[str] = field(default_factory=list)  # warnings about this input (colour, unlike the training set)


def load_run_config(run_dir: str | Path) -> RunConfig:
    return RunDir(run_dir).load_config()


def choose_model(run_dir: str | Path, task: str, model: str | None = None) -> str:
    """The model ('arch/init') to use: the named one, or the task's best by out-of-fold AUC."""
    return RunDir(run_dir).choose_model(task, model)


def load_fold_models(run_dir: str | Path, task: str, model: str, folds: int) -> list[torch.nn.Module]:
    return RunDir(run_dir).load_fold_models(task, model, folds)


def check_output_file(path: str | Path, option: str = "-o") -> Path:
    """A clear error now, before any work, when ``path`` cannot be written as a file."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{option} {p} is an existing folder; give a file path such as {p / 'predictions.csv'}")
    if p.suffix.lower() not in (".csv", ".json"):
        raise ConfigError(f"{option} {p}: predictions are written as .csv or .json; name the file accordingly")
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {p} cannot be created: {parent} is a file, not a folder")
    return p


def _check_inputs(paths: list[str | Path], ids: list[str] | None) -> list[Path]:
    """Each path (image file, DICOM file, DICOM series folder, NIfTI) is one input; all must exist."""
    if not paths:
        raise ConfigError("predict needs at least one input image, DICOM series folder or NIfTI")
    if ids is not None and len(ids) != len(paths):
        raise ConfigError(f"--ids gives {len(ids)} id(s) for {len(paths)} input(s); give one id per input, in order")
    missing = [str(p) for p in map(Path, paths) if not p.exists()]
    if missing:
        raise ConfigError(f"input(s) not found: {', '.join(missing[:5])}")
    return [Path(p) for p in paths]


@dataclass(frozen=True)
class PredictOptions:
    """How :func:`predict` reads its inputs and what it writes besides the probabilities.

    Attributes:
        model: ``ARCH/INIT`` (default: the task's best by out-of-fold AUC).
        slice: ``'basal'`` or an index (apex->base) for every input (default: the run's).
        nifti_slice_axis, nifti_basal_end: NIfTI conventions of these inputs (default: the run's).
        cam_dir: also write each input's fold-ensemble mean CAM overlay there (``cam_001.png``...,
            listed in ``cams.csv``; see :mod:`lgenet.explain.ensemble`), with ``cam_method`` on ``cam_layer``
            (default: the backbone's own).
    """

    model: str | None = None
    slice: str | int | None = None
    nifti_slice_axis: int | None = None
    nifti_basal_end: str | None = None
    cam_dir: str | Path | None = None
    cam_method: str = "gradcam"
    cam_layer: str | None = None
    progress: bool = False  # a progress bar over the inputs (the command line shows it unless -q)


def predict(
    run_dir: str | Path,
    task: str,
    paths: list[str | Path],
    *,
    ids: list[str] | None = None,
    slices: list[str | int | None] | None = None,
    options: PredictOptions | None = None,
    **option_values,
) -> list[Prediction]:
    """Fold-ensemble probability of ``task`` for each image, DICOM file, series folder or NIfTI.

    Args:
        run_dir: the ``--out`` of a finished ``lgenet run``.
        task: ``lge`` or ``event``.
        paths: the inputs. ids: a study-local id per input (default ``input_001``...).
        slices: one slice per input (None = the options' ``slice``).
        options: :class:`PredictOptions`; or give its fields as keywords (``cam_dir=...``).

    Raises:
        ConfigError: bad option; DataError/ReaderError: an input that cannot be an LGE frame (named).
    """
    if options is None:
        try:
            options = PredictOptions(**option_values)
        except TypeError as exc:
            raise ConfigError(f"predict: {exc}; the options are {list(PredictOptions.__dataclass_fields__)}") from None
    elif option_values:
        raise ConfigError("predict: give the options either as PredictOptions or as keywords, not both")
    o = options
    model, slice, nifti_slice_axis, nifti_basal_end = o.model, o.slice, o.nifti_slice_axis, o.nifti_basal_end
    cam_dir, cam_method, cam_layer = o.cam_dir, o.cam_method, o.cam_layer
    rd = RunDir(run_dir)
    cfg = rd.load_config()
    default_slice = parse_slice(slice if slice is not None else cfg.slice)
    axis = cfg.nifti_slice_axis if nifti_slice_axis is None else nifti_slice_axis
    end = cfg.nifti_basal_end if nifti_basal_end is None else nifti_basal_end
    if axis not in (0, 1, 2):
        raise ConfigError(f"--nifti-slice-axis must be 0, 1 or 2, got {axis!r}")
    if end not in ("first", "last"):
        raise ConfigError(f"--nifti-basal-end must be 'first' or 'last', got {end!r}")
    inputs = _check_inputs(paths, ids)
    ids = list(ids) if ids is not None else [f"input_{i + 1:03d}" for i in range(len(inputs))]
    per_slice = [parse_slice(s) if s not in (None, "") else default_slice for s in (slices or [None] * len(inputs))]
    if cam_dir is not None:
        from lgenet.runs.grid import ensure_writable_dir

        ensure_writable_dir(cam_dir, "--cam")
        from lgenet.runs.paths import refuse_overwrite

        refuse_overwrite(cam_dir, [rd.path, *inputs], "--cam")  # the overlays never land in the run or an input
    name = rd.choose_model(task, model)
    models = rd.load_fold_models(task, name, cfg.folds)
    size = models[0].spec.image_size
    pre = Preprocessor(size, tuple(cfg.intensity_percentiles))
    profile = rd.read_profile()
    x, frames, notes, indices = [], [], [], []
    from tqdm.auto import tqdm

    bar = tqdm(total=len(inputs), desc="reading", unit="patient", disable=not o.progress or len(inputs) < 2)
    for i, (p, pid, sl) in enumerate(zip(inputs, ids, per_slice)):
        bar.update()
        where = f"input {i + 1} ({pid}: {p})"
        try:
            frame, meta = read_frame(p, slice=sl, nifti_slice_axis=axis, nifti_basal_end=end)
        except ReaderError as exc:
            raise ReaderError(f"input {i + 1} ({pid}): {exc}") from None
        why = check_frame(frame)
        if why:
            raise DataError(f"{where}: {why}")
        note = []
        if is_colour(meta):
            note.append("colour image converted to grey: LGE frames are greyscale, check that this is the right file")
        if profile:
            far = shift_warnings(profile, frame_features(frame, meta, tuple(cfg.intensity_percentiles)))
            if far:
                note.append(
                    "unlike the training images (" + "; ".join(far) + "): the model may not apply; check "
                    "the scanner, protocol and export of this image"
                )
        for n in note:
            log.warning("%s: %s", where, n)
        x.append(pre(frame))
        frames.append(frame)
        notes.append(note)
        indices.append(meta.get("slice_index"))
    bar.close()
    xt = torch.stack(x)
    # each fold model scores in the precision of its out-of-fold predictions, so a training patient's fold
    # probability here equals its out-of-fold one
    per_fold = np.stack(
        [predict_proba(m, xt, precision=getattr(m, "lgenet_precision", "fp32")) for m in models], axis=1
    )  # (N, K)
    cams: list[str | None] = [None] * len(inputs)
    if cam_dir is not None:
        from lgenet.explain.cam import CamSpec
        from lgenet.explain.ensemble import write_ensemble_overlays

        cams = [
            str(c)
            for c in write_ensemble_overlays(
                models,
                frames,
                xt,
                inputs,
                cam_dir,
                spec=CamSpec(method=cam_method, target_layer=cam_layer, threshold=cfg.decision_threshold),
                percentiles=tuple(cfg.intensity_percentiles),
                ids=ids,
                probs=per_fold.mean(axis=1),
            )
        ]
    return [
        Prediction(
            input=str(p),
            prob=float(per_fold[i].mean()),
            fold_probs=[float(v) for v in per_fold[i]],
            model=name,
            task=task,
            cam=cams[i],
            patient_id=ids[i],
            slice_index=indices[i],
            notes=notes[i],
        )
        for i, p in enumerate(inputs)
    ]


def predict_manifest(run_dir: str | Path, task: str, manifest: str | Path, **kw) -> list[Prediction]:
    """:func:`predict` for every row of a manifest (its ``patient_id``, ``image`` and ``slice``; labels unused)."""
    from lgenet.data.manifest import load_manifest

    cohort = load_manifest(manifest, tasks=None)
    return predict(
        run_dir,
        task,
        [r.image for r in cohort.records],
        ids=[r.patient_id for r in cohort.records],
        slices=[None if r.slice == "basal" else r.slice for r in cohort.records],
        **kw,
    )


def evaluate_manifest(
    run_dir: str | Path,
    manifest: str | Path,
    *,
    tasks: list[str] | None = None,
    out: str | Path | None = None,
    options: PredictOptions | None = None,
) -> dict[str, dict]:
    """The run's (or a classifier bundle's) fold ensemble on a labelled cohort it never saw, per task with labels in
    the manifest: AUC with its DeLong CI, sensitivity and specificity at the run's decision threshold (Wilson CIs),
    Brier score, n. ``out``: also write each task's predictions there (``predictions_<task>.csv``)."""
    from lgenet.data.manifest import load_manifest
    from lgenet.evaluation.metrics import SingleClassError, auc_ci, binary_metrics

    rd = RunDir(run_dir)
    cfg = rd.load_config()
    trained = {r["task"] for r in rd.metrics_rows()}
    tasks = list(tasks) if tasks else [t for t in cfg.tasks if t in trained]
    unknown = [t for t in tasks if t not in trained]
    if unknown:
        raise ConfigError(
            f"--task {', '.join(unknown)}: not a task of this model; it holds {', '.join(sorted(trained))}"
        )
    cohort = load_manifest(manifest, tasks=None, lge_threshold=cfg.lge_threshold)
    usable = [t for t in tasks if cohort.labels(t)]
    if not usable:
        raise ConfigError(
            f"--manifest {manifest}: nothing to evaluate: " + "; ".join(cohort.why_no_labels(t) for t in tasks)
        )
    if out is not None:
        from lgenet.runs.grid import ensure_writable_dir

        ensure_writable_dir(out, "--work")
        _refuse_foreign_files(Path(out))
    ev: dict[str, dict] = {}
    for t in usable:
        labels = cohort.labels(t)
        first = {}
        for r in cohort.records:
            first.setdefault(r.patient_id, r)
        recs = [first[p] for p in labels]
        preds = predict(
            run_dir,
            t,
            [r.image for r in recs],
            ids=[r.patient_id for r in recs],
            slices=[None if r.slice == "basal" else r.slice for r in recs],
            options=options,
        )
        y = [labels[p.patient_id] for p in preds]
        score = [p.prob for p in preds]
        try:
            a = auc_ci(y, score)
        except SingleClassError as exc:
            raise ConfigError(f"--manifest {manifest}, task {t}: {exc}; an AUC needs both classes") from None
        m = binary_metrics(y, score, threshold=cfg.decision_threshold)
        ev[t] = {
            "model": preds[0].model,
            "n": a.n,
            "n_pos": a.n_pos,
            "auc": a.auc,
            "auc_lower": a.lower,
            "auc_upper": a.upper,
            "ci_method": a.method,
            **{k: m[k] for k in ("threshold", "sensitivity", "sensitivity_lower", "sensitivity_upper", "specificity",
                                 "specificity_lower", "specificity_upper", "brier")},
            "unlike_training": sum(1 for p in preds if p.notes),
        }  # fmt: skip
        if out is not None:
            write_predictions(preds, Path(out) / _PREDICTIONS.format(task=t))
    return ev


#: an evaluation's predictions of one task, in its ``out`` folder
_PREDICTIONS = "predictions_{task}.csv"


def _refuse_foreign_files(out: Path) -> None:
    """``out`` of :func:`evaluate_manifest`: new, empty, or holding only an earlier evaluation's predictions; never a
    run's or another command's folder, whose files they would mix with. Checked before anything is written."""
    if not out.is_dir():
        return
    prefix, suffix = _PREDICTIONS.split("{task}")
    foreign = sorted(p.name for p in out.iterdir() if not (p.name.startswith(prefix) and p.name.endswith(suffix)))
    if foreign:
        more = ", ..." if len(foreign) > 3 else ""
        raise ConfigError(
            f"--work {out} already holds other files ({', '.join(foreign[:3])}{more}); the predictions would mix with "
            "them: give a new or empty folder"
        )


def write_predictions(preds: list[Prediction], path: str | Path) -> Path:
    """CSV (``.csv``) or JSON (``.json``) by suffix, written atomically."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        atomic_write_text(path, json.dumps([p.__dict__ for p in preds], indent=2))
        return path
    buf = io.StringIO()
    k = len(preds[0].fold_probs) if preds else 0
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["patient_id", "input", "slice_index", "task", "model", "prob"]
        + [f"prob_fold{i}" for i in range(k)]
        + ["notes"]
    )
    for p in preds:
        w.writerow(
            [p.patient_id, p.input, "" if p.slice_index is None else p.slice_index, p.task, p.model, f"{p.prob:.6f}"]
            + [f"{v:.6f}" for v in p.fold_probs]
            + [" | ".join(p.notes)]
        )
    atomic_write_text(path, buf.getvalue())
    return path
