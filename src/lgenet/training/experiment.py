"""Planning a grid and evaluating it: the two halves around the executor.

* :func:`plan_jobs` turns a run's configuration into its :class:`~lgenet.training.jobs.FitJob` list
  (task × model × fold, in a fixed order);
* :class:`ModelPruner` keeps the fold models of each task's best model only (``keep_models='best'``),
  deciding in plan order whatever order the jobs finish in, so a resumed or parallel run prunes
  exactly as a serial one;
* :func:`collect_oof` and :func:`evaluate_grid` read every fit's held-out predictions back into
  ``oof_predictions.csv`` and evaluate all models together (paired: one fold assignment per task).

Orchestration (validation, the run directory, executors, the report) lives in :mod:`lgenet.workflows.grid`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lgenet.config import RunConfig
from lgenet.errors import LgenetError
from lgenet.evaluation import evaluate_oof, format_table, plot_auc_bars, plot_roc, write_metrics
from lgenet.evaluation.metrics import AUCResult, auc_ci
from lgenet.runs.grid import RunDir, model_key, parse_model_key
from lgenet.runs.jobs import FitOutcome
from lgenet.training.jobs import FitJob

__all__ = ["plan_jobs", "grid_models", "ModelPruner", "collect_oof", "evaluate_grid", "GridEvaluation"]

log = logging.getLogger("lgenet")


BURDEN_MODELS = ("burden:whole/seg", "burden:basal/seg")


def grid_models(cfg: RunConfig) -> list[str]:
    """The model keys of the grid, in plan order: the seed classifiers (arch-major, then init), then the
    anatomy-aware families in :data:`lgenet.config.FAMILIES` order."""
    out = []
    for fam in cfg.families:
        if fam == "classifier":
            out += [model_key(arch, init) for arch in cfg.archs for init in cfg.inits]
        elif fam == "burden":
            out += list(BURDEN_MODELS)
        elif fam in ("roi", "stack"):
            out.append(f"{fam}:{cfg.anatomy_arch}/random")
    return out


def plan_jobs(
    cfg: RunConfig,
    run_dir: str | Path,
    tasks: Sequence[str],
    *,
    models: Sequence[str] | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    threads: int | None = None,
    models_by_task: dict[str, Sequence[str]] | None = None,
) -> list[FitJob]:
    """Every fit of the grid: task-major, then model, then fold."""
    from lgenet.models import get_spec

    jobs = []
    for task in tasks:
        task_models = (models_by_task or {}).get(task, models if models is not None else grid_models(cfg))
        for m in task_models:
            key = parse_model_key(m)
            size = (cfg.image_size or get_spec(key.arch).input_size) if key.family == "classifier" else 0
            for k in range(cfg.folds):
                jobs.append(
                    FitJob(
                        run_dir=str(run_dir),
                        config=cfg,
                        task=task,
                        model=m,
                        fold=k,
                        image_size=size,
                        device=device,
                        precision=precision,
                        threads=threads,
                    )
                )
    return jobs


class ModelPruner:
    """Keep ``model.pt`` of each task's best model so far; delete the others' (``keep_models='best'``).

    Models are compared in plan order, and a model is only compared once every model before it in that
    order is complete, so the outcome does not depend on which job finished first.
    """

    def __init__(self, rd: RunDir, jobs: Sequence[FitJob], folds: int) -> None:
        self.rd = rd
        self.folds = folds
        # only the seed classifiers have fold networks (the burden family scores without one)
        self.order: list[tuple[str, str]] = list(
            dict.fromkeys((j.task, j.model) for j in jobs if parse_model_key(j.model).family == "classifier")
        )
        self.remaining = {key: folds for key in self.order}
        self.next = 0
        self.best: dict[str, tuple[float, str]] = {}

    def done(self, outcome: FitOutcome) -> None:
        key = (outcome.job.task, outcome.job.model)
        if key not in self.remaining:
            return
        self.remaining[key] -= 1
        while self.next < len(self.order) and self.remaining[self.order[self.next]] == 0:
            self._compare(*self.order[self.next])
            self.next += 1

    def _compare(self, task: str, model: str) -> None:
        rows = [r for k in range(self.folds) for r in self.rd.read_predictions(task, model, k)]
        try:
            auc = auc_ci(np.array([r["y_true"] for r in rows]), np.array([r["prob"] for r in rows])).auc
        except LgenetError:  # e.g. a single class in a tiny cohort: keep comparing the others
            auc = float("nan")
        prev = self.best.get(task)
        if prev is None or (np.isfinite(auc) and (not np.isfinite(prev[0]) or auc > prev[0])):
            if prev is not None:
                self.rd.delete_models(task, prev[1], self.folds)
            self.best[task] = (auc, model)
        else:
            self.rd.delete_models(task, model, self.folds)


def collect_oof(
    rd: RunDir,
    tasks: Sequence[str],
    models: Sequence[str],
    folds: int,
    models_by_task: dict[str, Sequence[str]] | None = None,
) -> list[dict]:
    """One out-of-fold row per (task, model, patient): the mean probability over the patient's frames."""
    oof = []
    for task in tasks:
        for m in (models_by_task or {}).get(task, models):
            key = parse_model_key(m)
            per_patient: dict[str, list] = {}
            for k in range(folds):
                for r in rd.read_predictions(task, m, k):
                    per_patient.setdefault(r["patient_id"], []).append(r)
            for pid in sorted(per_patient):
                rs = per_patient[pid]
                arch = key.arch if key.family == "classifier" else f"{key.family}:{key.arch}"
                oof.append(
                    {
                        "task": task,
                        "arch": arch,
                        "init": key.init,
                        "model": m,
                        "patient_id": pid,
                        "fold": rs[0]["fold"],
                        "y_true": rs[0]["y_true"],
                        "prob": float(np.mean([r["prob"] for r in rs])),
                    }
                )
    return oof


@dataclass
class GridEvaluation:
    metrics: list[dict] = field(default_factory=list)
    table: str = ""
    figures: list[Path] = field(default_factory=list)


def evaluate_grid(
    rd: RunDir,
    cfg: RunConfig,
    tasks: Sequence[str],
    models: Sequence[str],
    models_by_task: dict[str, Sequence[str]] | None = None,
) -> GridEvaluation:
    """oof_predictions.csv, metrics.csv/json, ROC and AUC-bar plots of every task; the printed table."""
    oof = collect_oof(rd, tasks, models, cfg.folds, models_by_task)
    rd.write_oof(oof)
    metrics = evaluate_oof(
        oof,
        threshold=cfg.decision_threshold,
        confidence=cfg.confidence,
        ci_method=cfg.ci_method,
        n_boot=cfg.n_bootstrap,
        random_state=cfg.seed,
    )
    write_metrics(metrics, rd.path)
    figures = []
    for task in tasks:
        curves = []
        for m in (models_by_task or {}).get(task, models):
            rs = [r for r in oof if r["task"] == task and r["model"] == m]
            row = next(x for x in metrics if x["task"] == task and x["model"] == m)
            curves.append(
                (
                    m,
                    np.array([r["y_true"] for r in rs]),
                    np.array([r["prob"] for r in rs]),
                    AUCResult(
                        row["auc"],
                        row["auc_lower"],
                        row["auc_upper"],
                        row["auc_se"],
                        row["n"],
                        row["n_pos"],
                        row["n_neg"],
                        row["ci_method"],
                        row["confidence"],
                    ),
                )
            )
        roc = rd.path / f"roc_{task}.png"
        plot_roc(curves, title=f"ROC, task '{task}' (out-of-fold, {cfg.folds}-fold CV)", path=roc)
        bars = rd.path / f"auc_{task}.png"
        plot_auc_bars([x for x in metrics if x["task"] == task], task=task, path=bars)
        figures += [roc, bars]
    return GridEvaluation(metrics=metrics, table=format_table(metrics), figures=figures)
