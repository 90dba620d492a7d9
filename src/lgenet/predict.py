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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig
from .data.preprocess import Preprocessor
from .errors import LgenetError
from .io import read_frame
from .rundir import RunDir
from .training.trainer import predict_proba
from .utils import atomic_write_text

__all__ = ["load_run_config", "choose_model", "load_fold_models", "predict", "write_predictions", "Prediction"]


@dataclass
class Prediction:
    input: str
    prob: float
    fold_probs: list[float]
    model: str
    task: str
    cam: str | None = None  # overlay PNG written with cam_dir


def load_run_config(run_dir: str | Path) -> RunConfig:
    return RunDir(run_dir).load_config()


def choose_model(run_dir: str | Path, task: str, model: str | None = None) -> str:
    """The model ('arch/init') to use: the named one, or the task's best by out-of-fold AUC."""
    return RunDir(run_dir).choose_model(task, model)


def load_fold_models(run_dir: str | Path, task: str, model: str, folds: int) -> list[torch.nn.Module]:
    return RunDir(run_dir).load_fold_models(task, model, folds)


def _check_inputs(paths: list[str | Path]) -> list[Path]:
    """Each path (image file, DICOM file, DICOM series folder, NIfTI) is one input; all must exist."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise LgenetError(f"input {p} does not exist")
        out.append(p)
    return out


def predict(
    run_dir: str | Path,
    task: str,
    paths: list[str | Path],
    *,
    model: str | None = None,
    slice: str | int | None = None,
    cam_dir: str | Path | None = None,
    cam_method: str = "gradcam",
    cam_layer: str | None = None,
) -> list[Prediction]:
    """Fold-ensemble probability of ``task`` for each image, DICOM file, series folder or NIfTI.

    With ``cam_dir``, also writes each input's fold-ensemble mean CAM overlay there
    (``cam_001.png``..., listed in ``cams.csv``; see :mod:`lgenet.explain.ensemble`).
    """
    cfg = load_run_config(run_dir)
    name = choose_model(run_dir, task, model)
    models = load_fold_models(run_dir, task, name, cfg.folds)
    size = models[0].spec.image_size
    pre = Preprocessor(size, tuple(cfg.intensity_percentiles))
    sl = slice if slice is not None else cfg.slice
    sl = sl if sl == "basal" else int(sl)
    inputs = _check_inputs(paths)
    x = []
    frames = []
    for p in inputs:
        frame, _ = read_frame(p, slice=sl, nifti_slice_axis=cfg.nifti_slice_axis, nifti_basal_end=cfg.nifti_basal_end)
        x.append(pre(frame))
        frames.append(frame)
    xt = torch.stack(x)
    per_fold = np.stack([predict_proba(m, xt) for m in models], axis=1)  # (N, K)
    cams: list[str | None] = [None] * len(inputs)
    if cam_dir is not None:
        from .explain.ensemble import write_ensemble_overlays

        cams = [str(c) for c in write_ensemble_overlays(
            models, frames, xt, inputs, cam_dir, method=cam_method, target_layer=cam_layer,
            threshold=cfg.decision_threshold, percentiles=tuple(cfg.intensity_percentiles))]
    return [
        Prediction(input=str(p), prob=float(per_fold[i].mean()), fold_probs=[float(v) for v in per_fold[i]],
                   model=name, task=task, cam=cams[i])
        for i, p in enumerate(inputs)
    ]


def write_predictions(preds: list[Prediction], path: str | Path) -> Path:
    """CSV (``.csv``) or JSON (``.json``) by suffix, written atomically."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        atomic_write_text(path, json.dumps([p.__dict__ for p in preds], indent=2))
        return path
    buf = io.StringIO()
    k = len(preds[0].fold_probs) if preds else 0
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["input", "task", "model", "prob"] + [f"prob_fold{i}" for i in range(k)])
    for p in preds:
        w.writerow([p.input, p.task, p.model, f"{p.prob:.6f}"] + [f"{v:.6f}" for v in p.fold_probs])
    atomic_write_text(path, buf.getvalue())
    return path
