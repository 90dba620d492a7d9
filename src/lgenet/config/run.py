"""One frozen configuration object per run.

``RunConfig`` holds every knob of the seed protocol (defaults = the study's values). It is built
from a YAML file and/or keyword overrides, validated once, and its resolved form is saved in the
run directory (``config.yaml``) so that a run can be audited and resumed.

Example:
    >>> cfg = RunConfig(manifest="cohort.csv", out="runs/study1")
    >>> cfg.epochs, cfg.batch_size, cfg.lr, cfg.folds
    (100, 8, 0.001, 4)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from lgenet.errors import ConfigError

__all__ = [
    "RunConfig",
    "load_config",
    "TASKS",
    "INITS",
    "HEADS",
    "FAMILIES",
    "ANATOMY_CHANNELS",
    "PRECISIONS",
    "DEVICES",
]

TASKS = ("lge", "event")
#: model families of the grid: the seed protocol's classifier, and the anatomy-aware families that
#: use a segmentation run (``segmentation_run``): the predicted LGE burden as the score
FAMILIES = ("classifier", "burden", "roi", "stack")
INITS = ("random", "imagenet", "radimagenet")
HEADS = ("flatten", "gap")
#: what the roi/stack networks see (RunConfig.anatomy_channels)
ANATOMY_CHANNELS = ("image+seg", "image")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
SELECTIONS = ("last",)
CI_METHODS = ("delong", "bootstrap")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. Defaults reproduce the seed study's protocol.

    Attributes:
        manifest: cohort CSV (see ``lgenet.data.manifest``).
        out: run directory (created; a rerun resumes finished fits).
        tasks: binary tasks to train: ``lge`` (lge_percent > lge_threshold) and/or ``event``.
        archs: backbone names from the registry (``lgenet backbones``).
        inits: initialisations: ``random``, ``imagenet``, ``radimagenet``.
        weights: ``{arch: {init: path}}`` local weight files; required for ``radimagenet``,
            optional for ``imagenet`` (downloaded through timm when online).
        image_size: input size in pixels; ``None`` = the backbone's own (224 ResNet50, 299 InceptionV3).
        head: ``flatten`` (seed: Flatten -> Dense -> ReLU -> Dropout -> logit) or ``gap``.
        families: ``classifier`` (the seed protocol, on ``archs`` x ``inits``); ``burden`` (the
            out-of-fold LGE burden of ``segmentation_run``, whole LV and basal slice, as the score);
            ``roi`` (a CNN on the basal frame's LV-centred window) and ``stack`` (every slice's window,
            attention-pooled), both fed the image and the segmenter's myocardium and enhancement
            probabilities (see :mod:`lgenet.training.anatomy`).
        anatomy_arch, anatomy_size, anatomy_spacing, anatomy_epochs: backbone (random init), window
            (pixels, mm per pixel) and epochs of the ``roi``/``stack`` families (lr, batch as above).
        anatomy_channels: what the ``roi``/``stack`` networks see: ``image+seg`` (the image and the
            segmenter's myocardium and enhancement probabilities) or ``image`` (the image alone, in all
            three channels; the segmenter only places the window).
        anatomy_aux_weight: weight of an auxiliary segmentation loss for ``roi``/``stack`` (0 = none):
            a 1x1 convolution on the backbone's last feature map predicts, per cell, the fraction of
            myocardium and of enhanced myocardium in the *expert* masks of the training patients
            (manifest column ``mask``, label values of the segmentation run); rows without a mask add
            no auxiliary term. Test patients' masks are never read.
        segmentation_run: a ``lgenet segment train`` run on this cohort (out-of-fold burdens) or a
            ``segment apply`` output (burdens of a cohort the segmenter never saw).
        burden_scale: the burden score's probability is ``sigmoid((burden - lge_threshold) / scale)``:
            a fixed monotone map (no fitting), so p >= 0.5 means burden > the threshold.
        selection: which epoch's model is evaluated on the test fold; ``last`` never looks at it.
        outcomes: after the grid, fit the covariates / image / fusion models (and Cox models when the
            manifest has ``followup_years``) in the same folds (:mod:`lgenet.outcomes`).
        covariates: manifest columns of those models; ``None`` = the presentation covariates present,
            minus those that leak a task's label.
        outcome_measures, outcome_cnn, outcome_C, outcome_recalibrate, cox_penalizer, outcome_horizon:
            see :class:`lgenet.outcomes.OutcomeSettings`.
    """

    manifest: str | None = None
    out: str = "runs/lgenet"
    tasks: tuple[str, ...] = TASKS
    archs: tuple[str, ...] = ("resnet50", "inception_v3")
    inits: tuple[str, ...] = INITS
    families: tuple[str, ...] = ("classifier",)
    segmentation_run: str | None = None
    burden_scale: float = 2.0
    outcomes: bool = True
    covariates: tuple[str, ...] | None = None
    outcome_measures: tuple[str, ...] = (
        "img_lge_percent",
        "img_lge_mass_g",
        "img_myo_mass_g",
        "img_cavity_ml",
        "img_transmurality_max",
    )
    outcome_cnn: str = "first"
    outcome_C: float | str = 1.0
    outcome_recalibrate: str = "none"
    cox_penalizer: float = 0.0
    outcome_horizon: float | None = None
    anatomy_arch: str = "resnet18"
    anatomy_size: int = 96
    anatomy_spacing: float = 1.5
    anatomy_epochs: int = 30
    anatomy_channels: str = "image+seg"
    anatomy_aux_weight: float = 0.0
    weights: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    lge_threshold: float = 5.7
    # data
    slice: str = "basal"
    nifti_slice_axis: int = 2
    nifti_basal_end: str = "last"
    image_size: int | None = None
    intensity_percentiles: tuple[float, float] = (1.0, 99.0)
    augment: bool = False
    # model
    head: str = "flatten"
    dense_units: int = 512
    dropout: float = 0.5
    # training
    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    folds: int = 4
    selection: str = "last"
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    num_threads: int | None = None
    # evaluation
    decision_threshold: float = 0.5
    ci_method: str = "delong"
    n_bootstrap: int = 2000
    confidence: float = 0.95

    def __post_init__(self) -> None:
        # normalise sequences to tuples so that the object is hashable and YAML-stable
        for name in ("tasks", "archs", "inits", "intensity_percentiles", "families", "covariates", "outcome_measures"):
            val = getattr(self, name)
            if val is None and name == "covariates":
                continue
            if isinstance(val, str):
                val = tuple(v.strip() for v in val.split(",") if v.strip())
            if not isinstance(val, (list, tuple)):
                raise ConfigError(
                    f"config parameter {name!r} must be a list (or a comma-separated string), got "
                    f"{type(val).__name__} {val!r}"
                )
            kinds = (int, float) if name == "intensity_percentiles" else (str,)
            if any(not isinstance(v, kinds) or isinstance(v, bool) for v in val):
                raise ConfigError(
                    f"config parameter {name!r} must list {'numbers' if kinds != (str,) else 'names'}, "
                    f"got {list(val)!r}"
                )
            object.__setattr__(self, name, tuple(val))
        if not isinstance(self.weights, Mapping) or not all(
            isinstance(d, Mapping) for d in dict(self.weights).values()
        ):
            raise ConfigError(
                "config parameter 'weights' must map ARCH to {INIT: PATH}, e.g. "
                "{resnet50: {radimagenet: RadImageNet-ResNet50_notop.h5}}"
            )
        object.__setattr__(
            self, "weights", {str(a): {str(i): str(p) for i, p in d.items()} for a, d in dict(self.weights).items()}
        )
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        def choice(name: str, allowed: tuple, many: bool = False) -> None:
            val = getattr(self, name)
            vals = val if many else (val,)
            if many and not vals:
                raise ConfigError(f"config parameter {name!r} must list at least one of {list(allowed)}, got none")
            for v in vals:
                if v not in allowed:
                    raise ConfigError(
                        f"config parameter {name!r} must be {'among' if many else 'one of'} {list(allowed)}, got {v!r}"
                    )

        choice("tasks", TASKS, many=True)
        choice("families", FAMILIES, many=True)
        if any(f != "classifier" for f in self.families) and not self.segmentation_run:
            raise ConfigError(
                "config parameter 'families' includes anatomy-aware families "
                f"{[f for f in self.families if f != 'classifier']}: give 'segmentation_run' "
                "(--segmentation-run, the --out of `lgenet segment train` or `segment apply`)"
            )
        if not (isinstance(self.burden_scale, (int, float)) and self.burden_scale > 0):
            raise ConfigError(
                f"config parameter 'burden_scale' must be a number > 0 (percentage points), got {self.burden_scale!r}"
            )
        choice("inits", INITS, many=True)
        if not isinstance(self.outcomes, bool):
            raise ConfigError(f"config parameter 'outcomes' must be true or false, got {self.outcomes!r}")
        from lgenet.config.outcome import OutcomeSettings  # validates the outcome parameters with their own messages

        try:
            OutcomeSettings.from_run_config(self)
        except ConfigError as exc:
            raise ConfigError(f"config: {exc}") from None
        choice("head", HEADS)
        choice("precision", PRECISIONS)
        choice("device", DEVICES)
        choice("selection", SELECTIONS)
        choice("ci_method", CI_METHODS)
        choice("nifti_basal_end", ("first", "last"))
        if not self.archs:
            raise ConfigError("config parameter 'archs' must name at least one backbone (see `lgenet backbones`)")

        def positive(name: str, integer: bool = True, minimum: float = 1) -> None:
            v = getattr(self, name)
            ok = (
                isinstance(v, int) and not isinstance(v, bool)
                if integer
                else (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
            )
            if not ok or v < minimum:
                kind = "an integer" if integer else "a finite number"
                raise ConfigError(f"config parameter {name!r} must be {kind} >= {minimum}, got {v!r}")

        positive("epochs")
        positive("anatomy_epochs")
        positive("anatomy_size", minimum=32)
        positive("anatomy_spacing", integer=False, minimum=0.1)
        positive("anatomy_aux_weight", integer=False, minimum=0)
        if self.anatomy_channels not in ANATOMY_CHANNELS:
            raise ConfigError(
                f"config parameter 'anatomy_channels' must be one of {list(ANATOMY_CHANNELS)}, "
                f"got {self.anatomy_channels!r}"
            )
        positive("batch_size")
        positive("folds", minimum=2)
        positive("dense_units")
        positive("n_bootstrap", minimum=100)
        positive("lr", integer=False, minimum=0)
        positive("weight_decay", integer=False, minimum=0)
        positive("lge_threshold", integer=False, minimum=0)
        if self.lr <= 0:
            raise ConfigError(f"config parameter 'lr' must be > 0, got {self.lr!r}")
        if self.num_threads is not None and (
            not isinstance(self.num_threads, int) or isinstance(self.num_threads, bool) or self.num_threads < 1
        ):
            raise ConfigError(
                f"config parameter 'num_threads' (--threads) must be an integer >= 1 or unset, got {self.num_threads!r}"
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**32:
            raise ConfigError(f"config parameter 'seed' must be an integer in [0, 2^32), got {self.seed!r}")
        if not (0.0 <= self.dropout < 1.0):
            raise ConfigError(f"config parameter 'dropout' must be in [0, 1), got {self.dropout!r}")
        if not (0.0 < self.decision_threshold < 1.0):
            raise ConfigError(
                f"config parameter 'decision_threshold' must be in (0, 1), got {self.decision_threshold!r}"
            )
        if not (0.5 < self.confidence < 1.0):
            raise ConfigError(f"config parameter 'confidence' must be in (0.5, 1), got {self.confidence!r}")
        if self.image_size is not None and (not isinstance(self.image_size, int) or self.image_size < 16):
            raise ConfigError(
                f"config parameter 'image_size' must be an integer >= 16 or null, got {self.image_size!r}"
            )
        lo, hi = (self.intensity_percentiles + (None, None))[:2]
        if len(self.intensity_percentiles) != 2 or not (0 <= lo < hi <= 100):
            raise ConfigError(
                "config parameter 'intensity_percentiles' must be two numbers 0 <= low < high <= 100, "
                f"got {list(self.intensity_percentiles)}"
            )
        if self.slice != "basal":
            try:
                int(self.slice)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"config parameter 'slice' must be 'basal' or a slice index, got {self.slice!r}"
                ) from None
        for arch, d in self.weights.items():
            for init in d:
                if init not in ("imagenet", "radimagenet"):
                    raise ConfigError(
                        f"config parameter 'weights' for {arch!r}: key {init!r} is not a pretrained init; "
                        "use 'imagenet' or 'radimagenet'"
                    )

    # ------------------------------------------------------------------ helpers
    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def weights_file(self, arch: str, init: str) -> str | None:
        return self.weights.get(arch, {}).get(init)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        d["weights"] = {a: dict(m) for a, m in self.weights.items()}
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown parameter(s) {unknown}; known parameters are {sorted(known)}")
        try:
            return cls(**dict(data))
        except TypeError as exc:  # wrong types that dataclass itself rejects
            raise ConfigError(f"{source}: {exc}") from None


def load_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Read a YAML config (optional) and apply keyword overrides (``None`` values are ignored)."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(
                f"config file {p} is not UTF-8 text; a config is a YAML file of parameter: value lines"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping of parameter: value, got {type(loaded).__name__}")
        data.update(loaded)
        source = str(p)
    else:
        source = "config"
    data.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig.from_dict(data, source=source)
