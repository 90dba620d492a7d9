"""Out-of-fold CAMs for a finished run: every patient explained by the fold model that never saw it.

For task ``T`` and model ``arch/init`` the run holds K fold models; fold model ``k`` was trained on
the patients whose test fold (``folds_T.csv``) is not ``k``. A patient of test fold ``k`` is
therefore explained **only** by fold model ``k`` -- the model whose out-of-fold prediction the
metrics use. Before any CAM is computed, every patient is checked against that fit's own record
of its test patients (``fits/T/arch__init/fold<k>/predictions.csv``); a patient that fold model
``k`` trained on stops the computation with an error.

Results are cached in the run directory (``cams/<task>/<arch>__<init>/``, the files of
:mod:`lgenet.explain.oof_store`) so that a re-report never recomputes (nor retrains). The cache is
reused only when its fingerprint matches (fold models' fit records, manifest hash, method, layer,
target, threshold, input size); otherwise it is recomputed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from lgenet.config import RunConfig
from lgenet.errors import DataError, LgenetError
from lgenet.explain.cam import CamResult, check_method, compute_cams
from lgenet.explain.frames import FrameStore, safe_name
from lgenet.explain.oof_store import OofCams, load_cams, method_slug, save_cams
from lgenet.runs.grid import RunDir, parse_model_key

__all__ = [
    "OutOfFoldError",
    "oof_cams",
    "oof_cams_multi",
    "fit_spec",
    "read_folds",
    "fold_test_patients",
    "cam_dir",
    "CACHE_VERSION",
]

log = logging.getLogger("lgenet")
CACHE_VERSION = 2


class OutOfFoldError(LgenetError):
    """A patient would be explained by a fold model that was trained on it."""


# ----------------------------------------------------------------------------------- run files
def read_folds(run_dir: str | Path, task: str) -> dict[str, int]:
    """``{patient_id: test fold}`` of ``task`` from the run's ``folds_<task>.csv``."""
    return RunDir(run_dir).read_folds(task)


def fold_test_patients(run_dir: str | Path, task: str, model: str, fold: int) -> set[str]:
    """The patients fold model ``fold`` was *tested* on, from that fit's own predictions.csv."""
    return RunDir(run_dir).fold_test_patients(task, model, fold)


def _read_oof(run_dir: Path, task: str, model: str) -> dict[str, float]:
    return {r["patient_id"]: float(r["prob"]) for r in RunDir(run_dir).read_oof(task, model)}


def cam_dir(run_dir: str | Path, task: str, model: str) -> Path:
    return Path(run_dir) / "cams" / task / parse_model_key(model).slug


def _fingerprint(run_dir: Path, task: str, model: str, folds: int, **extra) -> dict:
    rd = RunDir(run_dir)
    return {
        "version": CACHE_VERSION,
        "task": task,
        "model": model,
        "fits": rd.fits_fingerprint(task, model, folds),
        "manifest_sha256": rd.manifest_sha256(),
        **extra,
    }


# ----------------------------------------------------------------------------------- main entry
def fit_spec(run_dir: str | Path, task: str, model: str, fold: int = 0) -> dict:
    """The fold model's :class:`~lgenet.models.ModelSpec` as a dict, from its fit.json (no weights loaded)."""
    return RunDir(run_dir).fit_spec(task, model, fold)


def full_layer_name(spec: dict, target_layer: str | None) -> str:
    """The CAM layer's module path in the LgeNet (``backbone.layer4``) for a spec and a user's name."""
    if target_layer is None:
        return f"backbone.{spec['target_layer']}"
    if target_layer.split(".")[0] in ("backbone", "adapter", "head"):
        return target_layer
    return f"backbone.{target_layer}"


def oof_cams(
    run_dir: str | Path,
    task: str,
    model: str,
    store: FrameStore,
    *,
    method: str = "gradcam",
    target_layer: str | None = None,
    target: str = "predicted",
    refresh: bool = False,
) -> OofCams:
    """Out-of-fold CAMs of ``task``/``model`` for every labelled manifest row (cached).

    Args:
        run_dir: a finished run directory.
        task, model: e.g. ``"lge"``, ``"resnet50/radimagenet"``.
        store: the cohort's frames (:class:`FrameStore`); read only when the cache is stale.
        method, target_layer, target: see :func:`lgenet.explain.compute_cams`.
        refresh: recompute even when the cache is valid.

    Raises:
        OutOfFoldError: a patient's fold model was trained on that patient.
        LgenetError: a fold model is missing.
    """
    return oof_cams_multi(
        run_dir, task, model, store, methods=(method,), target_layer=target_layer, target=target, refresh=refresh
    )[check_method(method)]


def oof_cams_multi(
    run_dir: str | Path,
    task: str,
    model: str,
    store: FrameStore,
    *,
    methods=("gradcam",),
    target_layer: str | None = None,
    target: str = "predicted",
    refresh: bool = False,
) -> dict[str, OofCams]:
    """:func:`oof_cams` for several methods at once; each fold model is loaded once for all of them."""
    run_dir = Path(run_dir)
    cfg: RunConfig = store.cfg
    methods = list(dict.fromkeys(check_method(m) for m in methods))
    folds = read_folds(run_dir, task)
    spec = fit_spec(run_dir, task, model)
    layer = full_layer_name(spec, target_layer)
    size = int(spec["image_size"])
    out: dict[str, OofCams] = {}
    todo: list[str] = []
    fps: dict[str, dict] = {}
    paths: dict[str, Path] = {}
    for m in methods:
        fps[m] = _fingerprint(
            run_dir,
            task,
            model,
            cfg.folds,
            method=m,
            layer=layer,
            target=target,
            threshold=cfg.decision_threshold,
            image_size=size,
            percentiles=list(cfg.intensity_percentiles),
            slice=str(cfg.slice),
        )
        paths[m] = cam_dir(run_dir, task, model) / f"{method_slug(m)}__{safe_name(layer)}__{target}.npz"
        cached = (
            None if refresh or not paths[m].is_file() else load_cams(paths[m], task, model, m, layer, target, fps[m])
        )
        if cached is not None:
            cached.from_cache = True
            out[m] = cached
        else:
            todo.append(m)
    if not todo:
        return out

    oof = _read_oof(run_dir, task, model)
    rows = [i for i, r in enumerate(store.cohort.records) if r.patient_id in folds]
    missing = sorted({store.cohort.records[i].patient_id for i in rows} - set(oof))
    if missing:
        raise DataError(f"patients {missing[:5]} of task {task!r} have no out-of-fold prediction for {model}")
    n = len(rows)
    maps = {m: np.zeros((n, size, size), np.uint8) for m in todo}
    logits = np.zeros(n, np.float32)
    signs = np.zeros(n, np.int8)
    grid = (0, 0)
    fold_of = np.array([folds[store.cohort.records[i].patient_id] for i in rows], np.int16)
    from tqdm.auto import tqdm

    # a bar on a terminal only (disable=None): the report phase is never silent for minutes
    bar = tqdm(total=cfg.folds, desc=f"CAMs {task} {model} ({', '.join(todo)})", unit="fold", disable=None, leave=False)
    for k in range(cfg.folds):
        idx = [j for j in range(n) if fold_of[j] == k]
        bar.update(1)
        if not idx:
            continue
        pids = [store.cohort.records[rows[j]].patient_id for j in idx]
        tested = fold_test_patients(run_dir, task, model, k)
        trained_on = sorted(set(pids) - tested)
        if trained_on:
            raise OutOfFoldError(
                f"task {task!r}, {model}: fold model {k} was not tested on patient(s) {trained_on[:5]} (they were in "
                f"its training set); their CAMs must come from their own test fold's model. folds_{task}.csv and the "
                "fits disagree: rerun the report after checking the run directory"
            )
        net = RunDir(run_dir).load_fold_model(task, model, k)
        x = store.inputs([rows[j] for j in idx], size)
        for m in todo:
            res = _cams_for_fold(
                net, k, pids, x, method=m, target_layer=layer, target=target, threshold=cfg.decision_threshold
            )
            maps[m][idx] = np.rint(res.maps * 255).astype(np.uint8)
            logits[idx] = res.logits
            signs[idx] = res.signs
            grid = res.grid
        del net
    bar.close()
    shapes = np.array([store.frame(i).shape for i in rows], np.int32).reshape(n, 2)
    for m in todo:
        c = OofCams(
            task=task,
            model=model,
            method=m,
            layer=layer,
            target=target,
            rows=np.array(rows, np.int32),
            patient_ids=[store.cohort.records[i].patient_id for i in rows],
            folds=fold_of,
            y_true=np.array([_label(store, task, i) for i in rows], np.int8),
            logits=logits.copy(),
            signs=signs.copy(),
            oof_prob=np.array([oof[store.cohort.records[i].patient_id] for i in rows], np.float64),
            maps_u8=maps[m],
            frame_shapes=shapes,
            path=paths[m],
            fingerprint=fps[m],
            grid=grid,
        )
        _check_probabilities(c)
        save_cams(c)
        out[m] = c
    return {m: out[m] for m in methods}


def _cams_for_fold(model: torch.nn.Module, fold: int, patient_ids: list[str], x: torch.Tensor, **kw) -> CamResult:
    """CAMs of the test patients of ``fold`` by that fold's model (one call per fold; tests hook it)."""
    if getattr(model, "lgenet_fold", fold) != fold:
        raise OutOfFoldError(f"CAMs of fold {fold}'s patients requested from fold model {model.lgenet_fold}")
    return compute_cams(model, x, **kw)


def _label(store: FrameStore, task: str, i: int) -> int:
    return int(store.cohort.labels(task)[store.cohort.records[i].patient_id])


def _check_probabilities(c: OofCams) -> None:
    """The explaining model must be the one whose out-of-fold prediction the metrics use."""
    by_pid: dict[str, list[float]] = {}
    for pid, p in zip(c.patient_ids, c.prob):
        by_pid.setdefault(pid, []).append(float(p))
    worst = max((abs(np.mean(v) - c.oof_prob[c.patient_ids.index(pid)]), pid) for pid, v in by_pid.items())
    if worst[0] > 0.05:
        log.warning(
            "task %s, %s: the CAM model's probability for patient %s differs from its out-of-fold "
            "prediction by %.3f (training used another precision or device?)",
            c.task,
            c.model,
            worst[1],
            worst[0],
        )
