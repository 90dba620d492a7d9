"""The seed protocol as one function: ``run_experiment(cfg)``.

For every task × architecture × initialisation × fold it fits one classifier on the training
patients and scores the held-out patients; every fit is independent, checkpointed and written
atomically, so a killed run resumes without redoing finished fits. Out-of-fold predictions of all
models are then evaluated together (paired: one fold assignment per task).

Run directory layout::

    config.yaml            resolved RunConfig (a rerun must match it)
    run.json               manifest SHA-256, environment, timings
    run.log                log (no DICOM identifiers; study-local patient ids only)
    folds_<task>.csv       patient_id, fold, label
    fits/<task>/<arch>__<init>/fold<k>/{model.pt, predictions.csv, fit.json}
    oof_predictions.csv    task, arch, init, model, patient_id, fold, y_true, prob
    metrics.csv / metrics.json, roc_<task>.png, auc_<task>.png
"""
from __future__ import annotations

import csv
import io
import json
import logging
import platform
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from .. import __version__
from ..config import RunConfig
from ..data.manifest import Cohort, load_manifest
from ..data.preprocess import Preprocessor
from ..data.splits import assign_folds
from ..errors import ConfigError, DataError, LgenetError, ReaderError
from ..evaluation import evaluate_oof, format_table, plot_auc_bars, plot_roc, write_metrics
from ..evaluation.metrics import AUCResult, auc_ci
from ..io import read_frame
from ..models import build_model, get_spec, rebuild_model
from ..utils import atomic_path, atomic_write_text, seed_everything, sha256_file
from .trainer import FitParams, fit, predict_proba, resolve_device, resolve_precision

__all__ = ["run_experiment", "RunResult", "fit_dir", "load_fold_model", "load_frames", "model_key"]

log = logging.getLogger("lgenet")

# config fields that may change between a run and its resumption without changing results
_RESUME_FREE = {"out", "num_threads", "device", "manifest"}


@dataclass
class RunResult:
    out_dir: Path
    metrics: list[dict] = field(default_factory=list)
    table: str = ""
    figures: list[Path] = field(default_factory=list)
    fits_run: int = 0
    fits_skipped: int = 0


def model_key(arch: str, init: str) -> str:
    return f"{arch}/{init}"


def fit_dir(out: Path, task: str, arch: str, init: str, fold: int) -> Path:
    return Path(out) / "fits" / task / f"{arch}__{init}" / f"fold{fold}"


def load_fold_model(run_dir: str | Path, task: str, model: str, fold: int) -> torch.nn.Module:
    """Fold model ``fold`` of ``task`` / ``model`` ('arch/init') in eval mode, tagged ``lgenet_fold``."""
    arch, init = model.split("/")
    f = fit_dir(Path(run_dir), task, arch, init, fold) / "model.pt"
    if not f.is_file():
        raise LgenetError(
            f"fold model {f} is missing: a run keeps the fold models of each task's best model only "
            "(run with --keep-models all to keep, predict with and explain every model)"
        )
    ckpt = torch.load(f, map_location="cpu", weights_only=True)
    net = rebuild_model(ckpt["spec"], ckpt["state_dict"]).eval()
    net.lgenet_fold = fold
    return net


def _fit_seed(seed: int, task: str, arch: str, init: str, fold: int) -> int:
    return zlib.crc32(f"{seed}|{task}|{arch}|{init}|{fold}".encode()) & 0x7FFFFFFF


# ----------------------------------------------------------------------------------- data
def load_frames(cohort: Cohort, cfg: RunConfig, *, progress: bool = True) -> list[np.ndarray]:
    """Read every manifest row's frame; report every unreadable file at once."""
    frames: list[np.ndarray] = []
    problems: list[str] = []
    for rec in tqdm(cohort.records, desc="reading images", unit="img", disable=not progress, leave=False):
        sl = rec.slice if rec.slice != "basal" else cfg.slice
        sl = sl if sl == "basal" else int(sl)
        try:
            frame, _ = read_frame(
                rec.image, slice=sl, nifti_slice_axis=cfg.nifti_slice_axis, nifti_basal_end=cfg.nifti_basal_end
            )
        except ReaderError as exc:
            problems.append(f"row {rec.row} (patient {rec.patient_id}): {exc}")
            frames.append(np.zeros((1, 1), np.float32))
            continue
        frames.append(frame)
    if problems:
        raise ReaderError(
            f"{len(problems)} image(s) listed in {cohort.path} could not be read:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    return frames


class _Tensors:
    """Preprocessed cohort as one in-memory tensor per input size."""

    def __init__(self, frames: list[np.ndarray], percentiles: tuple[float, float]):
        self.frames = frames
        self.percentiles = percentiles
        self._cache: dict[int, torch.Tensor] = {}

    def get(self, size: int) -> torch.Tensor:
        if size not in self._cache:
            pre = Preprocessor(size, self.percentiles)
            self._cache[size] = torch.stack([pre(f) for f in self.frames])
        return self._cache[size]


# ----------------------------------------------------------------------------------- run dir
def _check_or_write_config(cfg: RunConfig, out: Path) -> None:
    path = out / "config.yaml"
    if path.exists():
        old = yaml.safe_load(path.read_text()) or {}
        new = cfg.to_dict()
        diff = sorted(k for k in set(old) | set(new) if k not in _RESUME_FREE and old.get(k) != new.get(k))
        if diff:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:6])
            raise ConfigError(
                f"run directory {out} was started with different settings ({detail}). Resuming would mix "
                "results; use the same settings to resume, or a new --out for a new run"
            )
    atomic_write_text(path, cfg.to_yaml())


def _write_folds(out: Path, task: str, folds: dict[str, int], labels: dict[str, int]) -> None:
    path = out / f"folds_{task}.csv"
    if path.exists():
        with open(path, newline="") as fh:
            old = {r["patient_id"]: int(r["fold"]) for r in csv.DictReader(fh)}
        if old != folds:
            raise DataError(
                f"{path} holds a different fold assignment (the manifest's patients or labels changed since this run "
                "started). Use a new --out for the changed cohort"
            )
        return
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["patient_id", "fold", "label"])
    for pid in sorted(folds):
        w.writerow([pid, folds[pid], labels[pid]])
    atomic_write_text(path, buf.getvalue())


def _environment(device: torch.device, precision: str) -> dict:
    import sklearn
    import timm

    env = {
        "lgenet": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "precision": precision,
        "torch_threads": torch.get_num_threads(),
    }
    return env


def _add_file_log(out: Path) -> logging.Handler:
    handler = logging.FileHandler(out / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    return handler


# ----------------------------------------------------------------------------------- one fit
def _save_fit(d: Path, model: torch.nn.Module, preds: list[dict], info: dict, keep_model: bool) -> None:
    d.mkdir(parents=True, exist_ok=True)
    if keep_model:
        with atomic_path(d / "model.pt") as tmp:
            torch.save({"spec": model.spec.to_dict(), "state_dict": model.state_dict()}, tmp)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["patient_id", "fold", "y_true", "prob"], lineterminator="\n")
    w.writeheader()
    for r in preds:
        w.writerow({**r, "prob": repr(float(r["prob"]))})
    atomic_write_text(d / "predictions.csv", buf.getvalue())
    atomic_write_text(d / "fit.json", json.dumps(info, indent=2))  # written last: marks the fit done


def _read_predictions(d: Path) -> list[dict]:
    with open(d / "predictions.csv", newline="") as fh:
        return [
            {"patient_id": r["patient_id"], "fold": int(r["fold"]), "y_true": int(r["y_true"]), "prob": float(r["prob"])}
            for r in csv.DictReader(fh)
        ]


# ----------------------------------------------------------------------------------- main entry
def run_experiment(cfg: RunConfig, *, progress: bool = True, keep_models: str = "best", report: bool = True) -> RunResult:
    """Run the configured grid with cross-validation, resume finished fits, evaluate, and plot.

    Args:
        cfg: the run's configuration (``cfg.manifest`` and ``cfg.out`` are required).
        progress: show progress bars.
        keep_models: ``best`` keeps the fold models of each task's best model (for ``lgenet predict``)
            and deletes the others once a better one is found; ``all`` keeps every fold model.
        report: write the study report (report.html, figure1; CAMs take minutes on a CPU) at the
            end; without it, ``lgenet report RUN_DIR`` writes it later from the saved run.

    Returns:
        A :class:`RunResult` with the metrics rows and the printed summary table.
    """
    if cfg.manifest is None:
        raise ConfigError("config parameter 'manifest' is required: pass --manifest cohort.csv")
    if keep_models not in ("best", "all"):
        raise ConfigError(f"keep_models must be 'best' or 'all', got {keep_models!r}")
    for arch in cfg.archs:
        get_spec(arch)  # unknown names fail before anything is written
    out = Path(cfg.out)
    cohort = load_manifest(cfg.manifest, tasks=None, lge_threshold=cfg.lge_threshold)
    tasks = [t for t in cfg.tasks if t in cohort.available_tasks]
    skipped_tasks = [t for t in cfg.tasks if t not in cohort.available_tasks]
    if not tasks:
        raise DataError(
            f"manifest {cfg.manifest} has labels for none of the requested tasks {list(cfg.tasks)}: "
            "fill 'lge_percent' (task lge) and/or 'event' (task event)"
        )
    out.mkdir(parents=True, exist_ok=True)
    handler = _add_file_log(out)
    try:
        result = _run(cfg, cohort, tasks, skipped_tasks, out, progress, keep_models)
        if report:
            _write_report(out)
        return result
    finally:
        log.removeHandler(handler)
        handler.close()


def _run(cfg, cohort, tasks, skipped_tasks, out, progress, keep_models) -> RunResult:
    t_start = time.time()
    _check_or_write_config(cfg, out)
    manifest_hash = sha256_file(cfg.manifest)
    run_json = out / "run.json"
    if run_json.exists():
        prev = json.loads(run_json.read_text())
        if prev.get("manifest_sha256") not in (None, manifest_hash):
            raise DataError(
                f"manifest {cfg.manifest} changed since run directory {out} was started (SHA-256 differs). "
                "Use a new --out for the changed cohort"
            )
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    for t in skipped_tasks:
        log.info("task %s skipped: the manifest has no labels for it", t)
    log.info("lgenet %s: %d manifest rows, %d patients, tasks %s, archs %s, inits %s, device %s (%s)",
             __version__, len(cohort.records), len({r.patient_id for r in cohort.records}),
             tasks, list(cfg.archs), list(cfg.inits), device, precision)

    frames = load_frames(cohort, cfg, progress=progress)
    tensors = _Tensors(frames, tuple(cfg.intensity_percentiles))
    params = FitParams(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                       augment=cfg.augment, device=str(device), precision=precision)

    # fold assignment per task (patient-level, stratified, shared by every model)
    plan = []
    task_info = {}
    for task in tasks:
        labels = cohort.labels(task)
        pids = sorted(labels)
        folds = assign_folds(pids, [labels[p] for p in pids], n_splits=cfg.folds, random_state=cfg.seed, task=task)
        _write_folds(out, task, folds, labels)
        rows_of = {}
        for i, rec in enumerate(cohort.records):
            if rec.patient_id in labels:
                rows_of.setdefault(rec.patient_id, []).append(i)
        task_info[task] = (labels, folds, rows_of)
        for arch in cfg.archs:
            for init in cfg.inits:
                for k in range(cfg.folds):
                    plan.append((task, arch, init, k))

    result = RunResult(out_dir=out)
    weights_cache: dict[tuple[str, str], tuple] = {}
    grid = tqdm(plan, desc="grid", unit="fit", disable=not progress)
    best_auc: dict[str, tuple[float, str]] = {}
    for task, arch, init, k in grid:
        grid.set_postfix_str(f"{task} {arch}/{init} fold {k + 1}/{cfg.folds}")
        d = fit_dir(out, task, arch, init, k)
        labels, folds, rows_of = task_info[task]
        if (d / "fit.json").exists():
            result.fits_skipped += 1
        else:
            _one_fit(cfg, task, arch, init, k, d, labels, folds, rows_of, tensors, params, weights_cache, progress,
                     device, precision)
            result.fits_run += 1
        if k == cfg.folds - 1 and keep_models == "best":
            _prune_models(out, task, arch, init, cfg, best_auc)

    # --------------------------------------------------------------- evaluation
    oof = []
    for task in tasks:
        for arch in cfg.archs:
            for init in cfg.inits:
                per_patient: dict[str, list] = {}
                for k in range(cfg.folds):
                    for r in _read_predictions(fit_dir(out, task, arch, init, k)):
                        per_patient.setdefault(r["patient_id"], []).append(r)
                for pid in sorted(per_patient):
                    rs = per_patient[pid]
                    oof.append({"task": task, "arch": arch, "init": init, "model": model_key(arch, init),
                                "patient_id": pid, "fold": rs[0]["fold"], "y_true": rs[0]["y_true"],
                                "prob": float(np.mean([r["prob"] for r in rs]))})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["task", "arch", "init", "model", "patient_id", "fold", "y_true", "prob"],
                       lineterminator="\n")
    w.writeheader()
    for r in oof:
        w.writerow({**r, "prob": repr(r["prob"])})
    atomic_write_text(out / "oof_predictions.csv", buf.getvalue())

    metrics = evaluate_oof(oof, threshold=cfg.decision_threshold, confidence=cfg.confidence,
                           ci_method=cfg.ci_method, n_boot=cfg.n_bootstrap, random_state=cfg.seed)
    write_metrics(metrics, out)
    figures = []
    for task in tasks:
        curves = []
        for arch in cfg.archs:
            for init in cfg.inits:
                rs = [r for r in oof if r["task"] == task and r["arch"] == arch and r["init"] == init]
                m = next(m for m in metrics if m["task"] == task and m["model"] == model_key(arch, init))
                curves.append((m["model"], np.array([r["y_true"] for r in rs]), np.array([r["prob"] for r in rs]),
                               AUCResult(m["auc"], m["auc_lower"], m["auc_upper"], m["auc_se"], m["n"], m["n_pos"],
                                         m["n_neg"], m["ci_method"], m["confidence"])))  # the CI metrics.csv holds
        roc = out / f"roc_{task}.png"
        plot_roc(curves, title=f"ROC, task '{task}' (out-of-fold, {cfg.folds}-fold CV)", path=roc)
        bars = out / f"auc_{task}.png"
        plot_auc_bars([m for m in metrics if m["task"] == task], task=task, path=bars)
        figures += [roc, bars]
    table = format_table(metrics)
    env = _environment(device, precision)
    atomic_write_text(run_json, json.dumps({
        "manifest": str(Path(cfg.manifest).name), "manifest_sha256": manifest_hash,
        "n_rows": len(cohort.records), "tasks": tasks, "tasks_skipped": skipped_tasks,
        "fits_run": result.fits_run, "fits_skipped": result.fits_skipped,
        "seconds": round(time.time() - t_start, 1), "environment": env,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }, indent=2))
    log.info("summary:\n%s", table)
    result.metrics, result.table, result.figures = metrics, table, figures
    return result


def _write_report(out: Path) -> None:
    """The study report (report.html, figure1.png/pdf). The metrics are already saved, so a failure
    here is logged as an error, with its traceback, and the run still succeeds."""
    try:
        from ..report import write_report

        write_report(out)
    except Exception:  # any failure: the finished metrics must not be lost to a figure or CAM problem
        log.exception("the report could not be written; the run's metrics are saved. "
                      "Retry with `lgenet report %s` after fixing the problem", out)


def _one_fit(cfg, task, arch, init, k, d, labels, folds, rows_of, tensors, params, weights_cache, progress,
             device, precision) -> None:
    seed = _fit_seed(cfg.seed, task, arch, init, k)
    train_p = [p for p in sorted(labels) if folds[p] != k]
    test_p = [p for p in sorted(labels) if folds[p] == k]
    assert not set(train_p) & set(test_p)
    train_rows = [i for p in train_p for i in rows_of[p]]
    test_rows = [i for p in test_p for i in rows_of[p]]
    spec_size = cfg.image_size or get_spec(arch).input_size

    key = (arch, init)
    if key not in weights_cache:
        wf = cfg.weights_file(arch, init)
        proto = build_model(arch, init, wf, image_size=spec_size, head=cfg.head,
                            dense_units=cfg.dense_units, dropout=cfg.dropout)
        backbone_state = None if init == "random" else {n: t.clone() for n, t in proto.backbone.state_dict().items()}
        weights_cache[key] = (proto.spec, backbone_state, proto.backbone.weights_info.to_dict())
        del proto
    mspec, backbone_state, winfo = weights_cache[key]
    seed_everything(seed)
    model = rebuild_model(mspec)  # a fresh network for every fold: no fold starts from another's weights
    if backbone_state is not None:
        model.backbone.load_state_dict(backbone_state)

    x_all = tensors.get(spec_size)
    x_tr = x_all[train_rows]
    y_tr = np.array([labels[p] for p in train_p for _ in rows_of[p]])
    bar = tqdm(total=cfg.epochs, desc=f"  {task} {arch}/{init} fold {k + 1}", unit="ep", leave=False,
               disable=not progress)

    def on_epoch(epoch: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")

    try:
        res = fit(model, x_tr, y_tr, params, seed=seed, on_epoch=on_epoch)
    finally:
        bar.close()
    probs = predict_proba(model, x_all[test_rows], device=str(device), precision=precision)
    preds = []
    i = 0
    for p in test_p:
        for _ in rows_of[p]:
            preds.append({"patient_id": p, "fold": k, "y_true": labels[p], "prob": probs[i]})
            i += 1
    info = {
        "task": task, "arch": arch, "init": init, "fold": k, "seed": seed,
        "n_train_patients": len(train_p), "n_test_patients": len(test_p),
        "n_train_pos": int(sum(labels[p] for p in train_p)), "n_test_pos": int(sum(labels[p] for p in test_p)),
        "epochs": cfg.epochs, "losses": [round(v, 6) for v in res.losses], "seconds": round(res.seconds, 2),
        "train_images_per_second": round(res.images_per_second, 2), "image_size": spec_size,
        "weights": winfo, "model_spec": mspec.to_dict(), "selection": cfg.selection,
    }
    _save_fit(d, model.cpu(), preds, info, keep_model=True)
    log.info("fit %s %s/%s fold %d/%d: %d train / %d test patients, final loss %.4f, %.1f s (%.1f img/s)",
             task, arch, init, k + 1, cfg.folds, len(train_p), len(test_p), res.losses[-1] if res.losses else float("nan"),
             res.seconds, res.images_per_second)


def _prune_models(out: Path, task: str, arch: str, init: str, cfg: RunConfig, best_auc: dict) -> None:
    """Keep the fold models of the best model so far for ``task``; delete the others' model.pt."""
    rows = []
    for k in range(cfg.folds):
        rows += _read_predictions(fit_dir(out, task, arch, init, k))
    y = np.array([r["y_true"] for r in rows])
    p = np.array([r["prob"] for r in rows])
    try:
        auc = auc_ci(y, p).auc
    except LgenetError:  # e.g. a single class in a tiny cohort: keep comparing the others
        auc = float("nan")
    key = model_key(arch, init)
    prev = best_auc.get(task)
    # models are visited in a fixed order, so a resumed run prunes the same way
    if prev is None or (np.isfinite(auc) and (not np.isfinite(prev[0]) or auc > prev[0])):
        if prev is not None:
            _delete_models(out, task, prev[1], cfg)
        best_auc[task] = (auc, key)
    else:
        _delete_models(out, task, key, cfg)


def _delete_models(out: Path, task: str, key: str, cfg: RunConfig) -> None:
    arch, init = key.split("/")
    for k in range(cfg.folds):
        f = fit_dir(out, task, arch, init, k) / "model.pt"
        if f.exists():
            f.unlink()
