"""A fit as a self-contained job: what any executor (the local loop, a process pool, Ray) runs.

A :class:`FitJob` is small, frozen and picklable: the run's :class:`~lgenet.config.RunConfig`, which
model of which task on which fold, its seed, and where its inputs and outputs live (all inside the run
directory). :func:`run_fit_job` needs nothing else: it reads the preprocessed cohort from
``cache/inputs_<S>.safetensors`` and the task's labels and folds from ``folds_<task>.csv``, trains a
fresh network on the training patients, scores the held-out ones and writes the fit atomically
(model.pt, predictions.csv, then fit.json, which marks it done). A job whose fit is already done
returns at once, so a retried or resumed job never redoes a finished fit.

Reproducibility: the fit's seed is derived from the run's seed and (task, arch, init, fold) only,
never from the executor or the order of completion, and the job sets its own torch thread count.
On the CPU, the same job with the same ``threads`` and torch build gives bit-identical predictions
whichever executor runs it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from lgenet.config import RunConfig
from lgenet.errors import DataError
from lgenet.runs.compute import compute_signature, resume_precision, same_compute
from lgenet.runs.grid import RunDir, parse_model_key
from lgenet.runs.jobs import FitOutcome, run_job
from lgenet.training.trainer import FitParams, fit, fit_seed, predict_proba
from lgenet.utils import seed_everything, torch_threads

__all__ = [
    "FitJob",
    "FitOutcome",
    "run_job",
    "run_fit_job",
    "fit_seed",
    "compute_signature",
    "same_compute",
    "resume_precision",
    "read_inputs_cache",
    "write_inputs_cache",
    "inputs_cache_matches",
    "initial_weights",
]

log = logging.getLogger("lgenet")


@dataclass(frozen=True)
class FitJob:
    """One fit of the grid (see the module docstring)."""

    run_dir: str
    config: RunConfig
    task: str
    model: str
    fold: int
    image_size: int
    device: str = "cpu"
    precision: str = "fp32"
    threads: int | None = None
    keep_model: bool = True

    @property
    def name(self) -> str:
        return f"{self.task} {self.model} fold {self.fold + 1}/{self.config.folds}"

    @property
    def seed(self) -> int:
        k = parse_model_key(self.model)
        return fit_seed(self.config.seed, self.task, k.arch, k.init, self.fold)

    @property
    def inputs(self) -> Path:
        return RunDir(self.run_dir).inputs_cache(self.image_size)

    @property
    def out_dir(self) -> Path:
        return RunDir(self.run_dir).fit_dir(self.task, self.model, self.fold)

    def done(self) -> bool:
        return RunDir(self.run_dir).fit_done(self.task, self.model, self.fold)

    @property
    def total_epochs(self) -> int:
        fam = parse_model_key(self.model).family
        return {"classifier": self.config.epochs, "burden": 1}.get(fam, self.config.anatomy_epochs)

    def execute(self, on_epoch: Callable[[int, float], None] | None = None) -> FitOutcome:
        return run_fit_job(self, on_epoch=on_epoch)


# ----------------------------------------------------------------------------------- inputs cache
def inputs_cache_matches(path: Path, fingerprint: str) -> bool:
    """True when ``path`` holds the preprocessed inputs that ``fingerprint`` describes."""
    if not path.is_file():
        return False
    try:
        return _cache_meta(path).get("fingerprint") == fingerprint
    except Exception:  # noqa: BLE001 - an unreadable cache is rewritten
        return False


def write_inputs_cache(path: Path, x: torch.Tensor, patient_ids: list[str], fingerprint: str) -> None:
    """Save the preprocessed cohort (N, 1, S, S) with its row -> patient map, atomically."""
    from safetensors.torch import save_file

    from lgenet.utils import atomic_path

    meta = {"patient_ids": json.dumps(list(patient_ids)), "fingerprint": fingerprint}
    with atomic_path(path) as tmp:
        save_file({"x": x.contiguous()}, str(tmp), metadata=meta)


def _cache_meta(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})


def read_inputs_cache(path: Path) -> tuple[torch.Tensor, list[str]]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise DataError(f"{path} is missing: the run's preprocessed inputs were not written; rerun `lgenet run`")
    meta = _cache_meta(path)
    return load_file(str(path))["x"], json.loads(meta["patient_ids"])


# ----------------------------------------------------------------------------------- initial weights
@lru_cache(maxsize=2)
def initial_weights(
    arch: str, init: str, weights_file: str | None, image_size: int, head: str, dense_units: int, dropout: float
):
    """(ModelSpec, backbone state or None, weights provenance) for a (backbone, init): built once per process.

    Raises the weights loader's clear errors (missing file, wrong architecture...), which is why the
    driver calls it before anything is written.
    """
    from lgenet.models import build_model

    proto = build_model(
        arch, init, weights_file, image_size=image_size, head=head, dense_units=dense_units, dropout=dropout
    )
    state = None if init == "random" else {n: t.clone() for n, t in proto.backbone.state_dict().items()}
    return proto.spec, state, proto.backbone.weights_info.to_dict()


# ----------------------------------------------------------------------------------- the job
def run_fit_job(job: FitJob, *, on_epoch: Callable[[int, float], None] | None = None) -> FitOutcome:
    """Run one fit (or return at once when it is already done). See the module docstring."""
    if job.done():
        return FitOutcome(job, skipped=True)
    family = parse_model_key(job.model).family
    runner = FAMILIES.get(family)
    if runner is None:
        raise DataError(f"model family {family!r} of {job.model!r} is unknown; known: {sorted(FAMILIES)}")
    with torch_threads(job.threads):
        return runner(job, on_epoch)


def _task_rows(
    rd: RunDir, task: str, row_pids: list[str]
) -> tuple[dict[str, int], dict[str, int], dict[str, list[int]]]:
    labels = rd.read_fold_labels(task)
    folds = rd.read_folds(task)
    rows_of: dict[str, list[int]] = {}
    for i, pid in enumerate(row_pids):
        if pid in labels:
            rows_of.setdefault(pid, []).append(i)
    missing = sorted(set(labels) - set(rows_of))
    if missing:
        raise DataError(
            f"patients {missing[:5]} of {rd.folds_path(task)} have no image in the run's inputs cache; "
            "the run directory is inconsistent: use a new --out"
        )
    return labels, folds, rows_of


def _fit_classifier(job: FitJob, on_epoch) -> FitOutcome:
    """The seed protocol's classifier: one frame per row, a fresh network per fold."""
    from lgenet.models import rebuild_model

    cfg = job.config
    rd = RunDir(job.run_dir)
    key = parse_model_key(job.model)
    x_all, row_pids = read_inputs_cache(job.inputs)
    labels, folds, rows_of = _task_rows(rd, job.task, row_pids)
    k = job.fold
    train_p = [p for p in sorted(labels) if folds[p] != k]
    test_p = [p for p in sorted(labels) if folds[p] == k]
    if set(train_p) & set(test_p):  # pragma: no cover - folds are a partition by construction
        raise DataError(f"{job.name}: a patient is on both sides of the split")
    train_rows = [i for p in train_p for i in rows_of[p]]
    test_rows = [i for p in test_p for i in rows_of[p]]

    mspec, backbone_state, winfo = initial_weights(
        key.arch, key.init, cfg.weights_file(key.arch, key.init), job.image_size, cfg.head, cfg.dense_units, cfg.dropout
    )
    seed = job.seed
    seed_everything(seed)
    net = rebuild_model(mspec)  # a fresh network for every fold: no fold starts from another's weights
    if backbone_state is not None:
        net.backbone.load_state_dict(backbone_state)
    params = FitParams(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        augment=cfg.augment,
        device=job.device,
        precision=job.precision,
    )
    y_tr = np.array([labels[p] for p in train_p for _ in rows_of[p]])
    res = fit(net, x_all[train_rows], y_tr, params, seed=seed, on_epoch=on_epoch)
    probs = predict_proba(net, x_all[test_rows], device=job.device, precision=job.precision)
    preds, i = [], 0
    for p in test_p:
        for _ in rows_of[p]:
            preds.append({"patient_id": p, "fold": k, "y_true": labels[p], "prob": probs[i]})
            i += 1
    info = {
        "task": job.task,
        "model": job.model,
        "family": key.family,
        "arch": key.arch,
        "init": key.init,
        "fold": k,
        "seed": seed,
        "n_train_patients": len(train_p),
        "n_test_patients": len(test_p),
        "n_train_pos": int(sum(labels[p] for p in train_p)),
        "n_test_pos": int(sum(labels[p] for p in test_p)),
        "epochs": cfg.epochs,
        "losses": [round(v, 6) for v in res.losses],
        "seconds": round(res.seconds, 2),
        "train_images_per_second": round(res.images_per_second, 2),
        "image_size": job.image_size,
        "weights": winfo,
        "model_spec": mspec.to_dict(),
        "selection": cfg.selection,
        "compute": compute_signature(job.device, job.precision, job.threads),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    rd.save_fit(job.task, job.model, k, preds=preds, info=info, net=net.cpu() if job.keep_model else None)
    final = res.losses[-1] if res.losses else float("nan")
    log.info(
        "fit %s: %d train / %d test patients, final loss %.4f, %.1f s (%.1f img/s)",
        job.name,
        len(train_p),
        len(test_p),
        final,
        res.seconds,
        res.images_per_second,
    )
    return FitOutcome(job, seconds=res.seconds, images_per_second=res.images_per_second, final_loss=final)


def _fit_burden(job: FitJob, on_epoch) -> FitOutcome:
    from lgenet.training.burden import fit_burden

    return fit_burden(job, on_epoch)


def _fit_anatomy(job: FitJob, on_epoch) -> FitOutcome:
    from lgenet.training.anatomy import fit_anatomy

    return fit_anatomy(job, on_epoch)


# family name -> runner(job, on_epoch) -> FitOutcome; new model families register here
FAMILIES: dict[str, Callable[[FitJob, Callable | None], FitOutcome]] = {
    "classifier": _fit_classifier,
    "burden": _fit_burden,
    "roi": _fit_anatomy,
    "stack": _fit_anatomy,
}
