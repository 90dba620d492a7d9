"""The run directory: one module owns its layout, its records and its fold models.

Everything that ``lgenet run`` writes, and everything that ``predict``, ``explain`` and ``report``
read back, goes through :class:`RunDir`. Layout::

    config.yaml            the resolved RunConfig (a resume must match it)
    inputs.json            written when the run starts: manifest SHA-256 and a content hash of every
                           image (a resume whose inputs differ is refused)
    profile.json           the training frames' intensity profile (new inputs are compared with it)
    run.json               environment, timings, fit counts (written when the run finishes)
    run.log                the log (study-local patient ids only)
    .lock                  held while a driver works on the directory (one driver at a time)
    cache/inputs_<S>.safetensors   the preprocessed cohort at S px, read by every fit job
    folds_<task>.csv       patient_id, fold, label: one assignment per task, shared by every model
    fits/<task>/<model slug>/fold<k>/
        fit.json           written last: marks the fit done (seed, losses, compute, timing)
        predictions.csv    the fold's held-out patients
        model.pt           the fold model (kept for each task's best model; --keep-models all)
        model.removed      instead of model.pt after --keep-models none: the deleted file's size
    oof_predictions.csv    task, arch, init, model, patient_id, fold, y_true, prob
    metrics.csv / metrics.json, roc_<task>.png, auc_<task>.png, report.html, figures/, cams/

A *model key* names one model of the grid: ``arch/init`` for the seed protocol's classifier
(``resnet50/radimagenet``), ``family:arch/init`` for the other families. Its folder name (*slug*)
replaces ``/`` by ``__`` and ``:`` by ``--``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

from lgenet.config import RunConfig
from lgenet.conventions.schemas import OOF_COLUMNS
from lgenet.errors import ConfigError, DataError, LgenetError, short_reason
from lgenet.runs.folder import RunBusyError, RunFolder, ensure_writable_dir
from lgenet.runs.keys import SEED_FAMILY, ModelKey, model_key, parse_model_key
from lgenet.utils import atomic_write_text

__all__ = [
    "RunDir",
    "ModelKey",
    "model_key",
    "parse_model_key",
    "PREDICTION_FIELDS",
    "RunBusyError",
    "ensure_writable_dir",
]

log = logging.getLogger("lgenet")

PREDICTION_FIELDS = ["patient_id", "fold", "y_true", "prob"]


class RunDir(RunFolder):
    """Paths, records and fold models of one grid run directory (see the module docstring); the lock,
    the records and the resume protocol are :class:`~lgenet.runs.folder.RunFolder`'s."""

    FITS = "fit(s)"
    #: config fields that may change between a run and its resumption without changing results (declared
    #: ``resume_free``); the compute settings (device, precision, threads per fit) are checked per fit instead
    RESUME_FREE = RunConfig.resume_free_names()

    def config_class(self):
        return RunConfig

    def config_defaults(self) -> dict:
        """A config saved before a setting existed: the setting's declared ``absent`` value (for the grid's
        settings, their default: each was added with the old behaviour as its default)."""
        return RunConfig.absent_values()

    def reset(self) -> None:
        """Forget an unfinished start (no finished fit): fold files, inputs record, cache, partial fits."""
        import shutil

        for p in list(self.path.glob("folds_*.csv")) + [self.inputs_path]:
            if p.exists():
                p.unlink()
        for d in (self.cache_dir, self.path / "fits"):
            if d.exists():
                shutil.rmtree(d)

    # ------------------------------------------------------------------ paths
    @property
    def run_json_path(self) -> Path:
        return self.path / "run.json"

    @property
    def oof_path(self) -> Path:
        return self.path / "oof_predictions.csv"

    @property
    def metrics_json_path(self) -> Path:
        return self.path / "metrics.json"

    @property
    def cache_dir(self) -> Path:
        return self.path / "cache"

    def inputs_cache(self, size: int) -> Path:
        return self.cache_dir / f"inputs_{int(size)}.safetensors"

    def fit_dir(self, task: str, model: str | ModelKey, fold: int) -> Path:
        return self.path / "fits" / task / parse_model_key(model).slug / f"fold{int(fold)}"

    def model_path(self, task: str, model: str | ModelKey, fold: int) -> Path:
        return self.fit_dir(task, model, fold) / "model.pt"

    def run_json(self) -> dict:
        try:
            return json.loads(self.run_json_path.read_text()) if self.run_json_path.is_file() else {}
        except (OSError, ValueError):
            return {}

    # ------------------------------------------------------------------ fits
    def fit_done(self, task: str, model: str | ModelKey, fold: int) -> bool:
        return (self.fit_dir(task, model, fold) / "fit.json").is_file()

    def finished_fits(self) -> list[Path]:
        root = self.path / "fits"
        return sorted(root.glob("*/*/fold*/fit.json")) if root.is_dir() else []

    def fit_info(self, task: str, model: str | ModelKey, fold: int) -> dict:
        p = self.fit_dir(task, model, fold) / "fit.json"
        if not p.is_file():
            raise DataError(f"{p} is missing: fit {task} {model} fold {fold} has not finished")
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{p} is damaged ({short_reason(exc)}); delete its folder {p.parent} and rerun `lgenet run` with the "
                "same settings to refit it"
            ) from None

    def fit_spec(self, task: str, model: str | ModelKey, fold: int = 0) -> dict:
        """The fold model's spec (``ModelSpec.to_dict()``) from fit.json, without loading weights."""
        return self.fit_info(task, model, fold)["model_spec"]

    def read_predictions(self, task: str, model: str | ModelKey, fold: int) -> list[dict]:
        p = self.fit_dir(task, model, fold) / "predictions.csv"
        if not p.is_file():
            raise DataError(f"{p} is missing: fit {task} {model} fold {fold} has not finished")
        try:
            with open(p, newline="") as fh:
                return [
                    {
                        "patient_id": r["patient_id"],
                        "fold": int(r["fold"]),
                        "y_true": int(r["y_true"]),
                        "prob": float(r["prob"]),
                    }
                    for r in csv.DictReader(fh)
                ]
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise DataError(
                f"{p} is damaged ({short_reason(exc)}); delete its folder {p.parent} and rerun `lgenet run` with the "
                "same settings to refit it"
            ) from None

    def fold_test_patients(self, task: str, model: str | ModelKey, fold: int) -> set[str]:
        """The patients fold model ``fold`` was *tested* on, from that fit's own predictions.csv."""
        return {r["patient_id"] for r in self.read_predictions(task, model, fold)}

    def save_fit(
        self, task: str, model: str | ModelKey, fold: int, *, preds: Sequence[dict], info: dict, net=None
    ) -> Path:
        """Write one fit atomically: model.pt (when ``net`` is given), predictions.csv, then fit.json."""
        d = self.fit_dir(task, model, fold)
        files: dict = {}
        if net is not None:
            import torch

            files["model.pt"] = lambda tmp: torch.save(
                {"format": "lgenet-fold-model/1", "spec": net.spec.to_dict(), "state_dict": net.state_dict()}, tmp
            )
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=PREDICTION_FIELDS, lineterminator="\n")
        w.writeheader()
        for r in preds:
            w.writerow({k: (repr(float(r[k])) if k == "prob" else r[k]) for k in PREDICTION_FIELDS})
        files["predictions.csv"] = buf.getvalue()
        if net is not None:
            (d / "model.removed").unlink(missing_ok=True)
        return self.write_fit(d, files, info)

    def load_fold_model(self, task: str, model: str | ModelKey, fold: int):
        """Fold model ``fold`` in eval mode, tagged ``lgenet_fold`` and ``lgenet_precision`` (the precision its fit
        computed the out-of-fold predictions in: ``lgenet predict`` and the CAMs score in it too); clear errors for
        missing or damaged files."""
        import torch

        from lgenet.models import rebuild_model

        f = self.model_path(task, model, fold)
        key = parse_model_key(model) if isinstance(model, str) else model
        if key.family == "burden":  # no network: the score is the segmentation run's predicted burden
            cfg = self.load_config()
            raise LgenetError(
                f"model {key} of run {self.path} has no fold model: a burden model's score is the predicted LGE "
                f"burden of its segmentation run ({cfg.segmentation_run}). Segment new images with `lgenet segment "
                f"apply --run {cfg.segmentation_run} IMAGE... -o seg.csv` instead"
            )
        if not f.is_file() and _removed_size(f.parent) is not None:
            raise LgenetError(
                f"fold model {f} was not kept: the run was made with --keep-models none (as `lgenet "
                "demo` is); rerun `lgenet run` with --keep-models best or all to predict with or explain it"
            )
        if not f.is_file():
            raise LgenetError(
                f"fold model {f} is missing: a run keeps the fold models of each task's best model only "
                "(run with --keep-models all to keep, predict with and explain every model)"
            )
        redo = f"delete the fit folder {f.parent} and rerun `lgenet run` with the run's settings to refit it"
        try:
            with warnings.catch_warnings():  # torch's notes on foreign pickles talk of unsafe loading
                warnings.simplefilter("ignore")
                ckpt = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any failure to unpickle: a damaged or foreign file
            raise LgenetError(
                f"fold model {f} is unreadable ({short_reason(exc)}): it is truncated or was not "
                f"written by lgenet; {redo}"
            ) from None
        if not isinstance(ckpt, dict) or "spec" not in ckpt or "state_dict" not in ckpt:
            raise LgenetError(f"fold model {f} is not an lgenet fold model (no spec/state_dict); {redo}")
        try:
            net = rebuild_model(ckpt["spec"], ckpt["state_dict"]).eval()
        except Exception as exc:  # noqa: BLE001 - the spec or the weights do not fit
            raise LgenetError(
                f"fold model {f} does not match its own architecture ({short_reason(exc)}); {redo}"
            ) from None
        net.lgenet_fold = int(fold)
        try:  # inference in the precision the fold's out-of-fold predictions were computed in
            net.lgenet_precision = str(self.fit_info(task, model, fold).get("compute", {}).get("precision", "fp32"))
        except LgenetError:
            net.lgenet_precision = "fp32"
        return net

    def load_fold_models(self, task: str, model: str | ModelKey, folds: int) -> list:
        have = sorted(
            p.parent.name for p in (self.path / "fits" / task / parse_model_key(model).slug).glob("fold*/fit.json")
        )
        if len(have) != folds:
            raise ConfigError(
                f"{self.config_path} says {folds} folds but {task} {model} has {len(have)} finished fold "
                f"fit(s) ({', '.join(have) or 'none'}): config.yaml was edited or the run has not finished; "
                "restore it, or rerun `lgenet run` with the run's settings"
            )
        return [self.load_fold_model(task, model, k) for k in range(folds)]

    def delete_models(self, task: str, model: str | ModelKey, folds: int, *, record: bool = False) -> int:
        """Delete the fold models of ``model``; returns how many files went. ``record``: leave ``model.removed``
        (the file's size) beside the fit, so that caches derived from the model (CAMs) stay valid and errors
        can say why it is gone."""
        n = 0
        for k in range(folds):
            f = self.model_path(task, model, k)
            if f.exists():
                if record:
                    atomic_write_text(f.with_name("model.removed"), str(f.stat().st_size))
                f.unlink()
                n += 1
        return n

    def fits_fingerprint(self, task: str, model: str | ModelKey, folds: int) -> dict:
        """What a cache of derived results (CAMs) depends on: each fold's fit record and model file size."""
        import hashlib

        out = {}
        for k in range(folds):
            d = self.fit_dir(task, model, k)
            h = hashlib.sha256((d / "fit.json").read_bytes()).hexdigest()[:16] if (d / "fit.json").is_file() else None
            size = (d / "model.pt").stat().st_size if (d / "model.pt").is_file() else _removed_size(d)
            out[str(k)] = [h, size]
        return out

    # ------------------------------------------------------------------ out-of-fold predictions, metrics
    def write_oof(self, rows: Sequence[dict]) -> Path:
        """Write oof_predictions.csv (the columns of :data:`~lgenet.conventions.schemas.OOF_COLUMNS`,
        probabilities at full precision) atomically."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=OOF_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({**{k: r[k] for k in OOF_COLUMNS}, "prob": repr(float(r["prob"]))})
        return atomic_write_text(self.oof_path, buf.getvalue())

    def read_oof(self, task: str | None = None, model: str | None = None) -> list[dict]:
        """Rows of oof_predictions.csv (strings), optionally of one task and/or model."""
        p = self.oof_path
        if not p.is_file():
            raise DataError(f"{p} is missing: the run has not finished; rerun `lgenet run` with the same settings")
        try:
            with open(p, newline="") as fh:
                reader = csv.DictReader(fh)
                missing = [c for c in OOF_COLUMNS if c not in (reader.fieldnames or [])]
                if missing:
                    raise DataError(
                        f"{p} is damaged (no column(s) {missing}); rerun `lgenet run` with the same settings "
                        "to rewrite it"
                    )
                return [
                    r for r in reader if (task is None or r["task"] == task) and (model is None or r["model"] == model)
                ]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DataError(
                f"{p} is unreadable ({short_reason(exc)}); rerun `lgenet run` with the same settings"
            ) from None

    def metrics_rows(self) -> list[dict]:
        p = self.metrics_json_path
        if not p.is_file():
            raise ConfigError(
                f"{self.path} has no metrics.json: the run has not finished; rerun `lgenet run` to complete it"
            )
        try:
            return json.loads(p.read_text())["metrics"]
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"{p} is damaged ({short_reason(exc)}); rerun `lgenet run` with the same settings to rewrite it"
            ) from None

    def choose_model(self, task: str, model: str | None = None, *, family: str | None = SEED_FAMILY) -> str:
        """The model key to use for ``task``: the named one, or the task's best by out-of-fold AUC among
        ``family`` (default the seed classifiers: the models with fold networks to apply and explain)."""
        metrics = self.metrics_rows()
        rows = [r for r in metrics if r["task"] == task]
        if not rows:
            tasks = sorted({r["task"] for r in metrics})
            raise ConfigError(f"task {task!r} was not trained in {self.path}; trained tasks: {tasks}")
        names = [r["model"] for r in rows]
        if model is not None:
            if model not in names:
                raise ConfigError(f"model {model!r} is not in run {self.path} for task {task!r}; choose one of {names}")
            return model
        pool = [r for r in rows if family is None or parse_model_key(r["model"]).family == family]
        if not pool:
            raise ConfigError(f"run {self.path} has no {family} model for task {task!r}; its models: {names}")
        best = [r for r in pool if r.get("best")]
        if best:
            return best[0]["model"]

        def auc(r) -> float:
            try:
                v = float(r.get("auc"))
            except (TypeError, ValueError):
                return float("-inf")
            return v if v == v else float("-inf")

        return max(pool, key=auc)["model"]  # first of the highest, in table order


def _removed_size(fit_dir: Path) -> int | None:
    """The size of a fold model deleted on purpose (``keep_models='none'``), or None."""
    try:
        return int((Path(fit_dir) / "model.removed").read_text().strip())
    except (OSError, ValueError):
        return None
