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

from .errors import ConfigError

__all__ = ["RunConfig", "SegConfig", "load_config", "TASKS", "INITS", "HEADS", "FAMILIES"]

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
        from .outcomes.run import OutcomeSettings  # validates the outcome parameters with their own messages

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


@dataclass(frozen=True)
class SegConfig:
    """Everything that defines a segmentation run (``lgenet segment train``).

    Attributes:
        manifest: cohort CSV whose rows give each patient's image stack and its ``mask``.
        out: run directory (a rerun resumes finished folds).
        labels: the masks' label values: ``{cavity, myo (whole myocardium), lge (enhanced part), other}``.
        folds, seed, stratify, lge_threshold: the patient-level folds, stratified on task ``stratify``
            (``lge``, default, or ``event``) exactly as ``lgenet run`` assigns that task's folds on the
            same manifest (for ``lge`` without ``lge_percent`` in the manifest: the masks' burden).
        spacing, crop, context, channels, res_units: the segmenter's window (mm per pixel, pixels),
            2.5-D context (slices on each side) and MONAI UNet widths.
        loc_spacing, loc_size, loc_channels: the localiser's whole-slice canvas and widths.
        epochs, loc_epochs, batch_size, lr, weight_decay, augment: training (fixed in advance).
        loc_shift_mm: how far (mm, each axis) the localiser's training canvases are shifted: the range of LV
            positions around the frame centre that it learns to find.
        coarse_shift_mm: > 0 (default 120) trains a second, coarse localiser whose canvases are shifted by up to
            this many mm; at inference it proposes where the heart is, and when that lies more than
            ``loc_shift_mm`` from the frame centre the localiser also looks on a canvas centred there and keeps
            that canvas if it sees a larger LV there by ``coarse_margin`` (a large field of view puts the heart
            where the localiser never saw one). 0: one localiser, as before session 8. With the margin, on
            EMIDEC at three seeds it cost no Dice on the heart-centred frames and kept every domain shift within
            0.015 of AUC, where one localiser moved by up to 0.041 at two seeds (docs/results.md, configuration 10).
        coarse_margin: with a coarse localiser, the canvas it proposes wins only if the localiser's LV mass there
            exceeds the frame-centred canvas's by this factor (1.2; runs before session 8 used 1.0, any margin).
            On EMIDEC's centred frames every re-centring by a near tie (ratios 1.02-1.07) misplaced the windows
            (docs/results.md, "a margin for the coarse gate").
        batch_augment: draw the augmentation's geometry for a whole batch at once (torch affine grids,
            default) instead of MONAI's per-sample affine (``False``); the same kinds and ranges of
            transforms, ~10x cheaper per sample on a CPU (the intensity part stays MONAI's, per sample). On
            EMIDEC the CV took 26.9 instead of 35.5 min; over two seeds its Dice matched the per-sample
            path's (0.836/0.837 vs 0.838/0.837) and all domain shifts at once moved AUC by -0.067/-0.070
            against -0.039/-0.130 (docs/results.md, configurations 3 and 4 and their seed-1 replicate).
        normalisation: the intensity normalisation of both networks' inputs (``tissue_normalise``
            method): 2 (default since 2026-11-27, session 6) takes the percentiles over the filled body
            outline with zero fill left out, so that a frame without EMIDEC's intensity offset looks the
            same; 1 is the Otsu-body method of earlier runs (docs/results.md, configuration 5).
        regions: the segmenter predicts three nested regions (LV, myocardium incl. enhancement, enhancement;
            sigmoid, Dice + BCE per region, decoded inner region first) instead of four exclusive classes
            (softmax, ``False``, the default). On EMIDEC it lost 0.014 of enhancement and 0.028 of cavity Dice
            against the softmax (the myocardium region comes out thicker): docs/results.md, configuration 9.
        aug_intensity_scale, aug_intensity_shift: the training augmentation's linear intensity change (MONAI
            ``RandScaleIntensityd`` factors, i.e. x(1 +- scale), and ``RandShiftIntensityd`` offsets, each with
            probability 0.6, then clipped to [0, 1]); 0.5 / 0.3 (the defaults since configuration 3) were widened
            for normalisation 1, under which a frame without EMIDEC's intensity offset moved the normalised
            tissue by x1.3, -0.25 (docs/results.md, configuration 12).
        loader_workers: DataLoader worker processes that make the augmented training batches ahead of each step.
            ``None`` (default, "auto"): none on a CPU, as every run before 2026-11-28; on a GPU, where the
            per-sample augmentation on the CPU and not the network bounds the step, the cores left per fold
            less one, at most 3 (3 with 4 folds at a time on 16 cores: the whole EMIDEC CV in 2.8 min on an
            H100, docs/results.md configuration 15). The run records the number it used; the workers draw other
            random streams than the training process, so a run's folds must all use the same number (a resume
            checks it).
        tta: average flipped predictions at inference.
    """

    manifest: str | None = None
    out: str = "runs/seg"
    labels: Mapping[str, Any] = field(
        default_factory=lambda: {"cavity": [1], "myo": [2, 3, 4], "lge": [3, 4], "other": [0]}
    )
    folds: int = 4
    seed: int = 0
    stratify: str = "lge"
    lge_threshold: float = 5.7
    nifti_slice_axis: int = 2
    nifti_basal_end: str = "last"
    pixel_spacing: float | None = None
    spacing: float = 1.5
    crop: int = 96
    context: int = 1
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    res_units: int = 2
    loc_spacing: float = 4.0
    loc_size: int = 112
    loc_channels: tuple[int, ...] = (8, 16, 32, 64, 128)
    epochs: int = 120
    loc_epochs: int = 15
    loc_shift_mm: float = 20.0
    coarse_shift_mm: float = 120.0
    coarse_margin: float = 1.2
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-5
    augment: bool = True
    batch_augment: bool = True
    aug_intensity_scale: float = 0.5
    aug_intensity_shift: float = 0.3
    loader_workers: int | None = None
    normalisation: int = 2
    regions: bool = False
    tta: bool = True
    device: str = "auto"
    precision: str = "auto"
    num_threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("channels", "loc_channels"):
            val = getattr(self, name)
            if isinstance(val, str):
                val = tuple(int(v) for v in val.split(",") if v.strip())
            object.__setattr__(self, name, tuple(int(v) for v in val))
        object.__setattr__(
            self,
            "labels",
            {
                k: [int(v) for v in (vs if isinstance(vs, (list, tuple)) else [vs])]
                for k, vs in dict(self.labels).items()
            },
        )
        unknown = sorted(set(self.labels) - {"cavity", "myo", "lge", "other"})
        if unknown:
            raise ConfigError(f"segmentation labels: unknown key(s) {unknown}; use cavity, myo, lge, other")
        for name in ("folds", "epochs", "loc_epochs", "batch_size", "crop", "loc_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (2 if name == "folds" else 1):
                raise ConfigError(
                    f"config parameter {name!r} must be an integer >= {2 if name == 'folds' else 1}, got {v!r}"
                )
        if not isinstance(self.res_units, int) or isinstance(self.res_units, bool) or self.res_units < 0:
            raise ConfigError(
                f"config parameter 'res_units' must be an integer >= 0 (residual units per UNet level), "
                f"got {self.res_units!r}"
            )
        for name in ("spacing", "loc_spacing", "lr", "loc_shift_mm"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v <= 0:
                raise ConfigError(f"config parameter {name!r} must be a number > 0, got {v!r}")
        if self.device not in DEVICES:
            raise ConfigError(f"config parameter 'device' must be one of {list(DEVICES)}, got {self.device!r}")
        if self.stratify not in TASKS:
            raise ConfigError(f"config parameter 'stratify' must be one of {list(TASKS)}, got {self.stratify!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"config parameter 'precision' must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.nifti_basal_end not in ("first", "last"):
            raise ConfigError(
                f"config parameter 'nifti_basal_end' must be 'first' or 'last', got {self.nifti_basal_end!r}"
            )
        if (
            not isinstance(self.coarse_shift_mm, (int, float))
            or isinstance(self.coarse_shift_mm, bool)
            or self.coarse_shift_mm < 0
        ):
            raise ConfigError(
                f"config parameter 'coarse_shift_mm' must be a number of mm >= 0 (0: no coarse "
                f"localiser), got {self.coarse_shift_mm!r}"
            )
        if (
            not isinstance(self.coarse_margin, (int, float))
            or isinstance(self.coarse_margin, bool)
            or not self.coarse_margin >= 1.0
        ):
            raise ConfigError(
                f"config parameter 'coarse_margin' must be a number >= 1 (how many times larger the LV "
                f"mass on the re-centred canvas must be), got {self.coarse_margin!r}"
            )
        for name in ("aug_intensity_scale", "aug_intensity_shift"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ConfigError(
                    f"config parameter {name!r} must be a number in [0, 1) (the augmentation's "
                    f"intensity {'factor x(1 +- v)' if name.endswith('scale') else 'offset +- v'}), "
                    f"got {v!r}"
                )
        if self.loader_workers is not None and (
            isinstance(self.loader_workers, bool) or not isinstance(self.loader_workers, int) or self.loader_workers < 0
        ):
            raise ConfigError(
                f"config parameter 'loader_workers' must be an integer >= 0 (DataLoader worker processes "
                f"per fold; 0: none) or unset (auto), got {self.loader_workers!r}"
            )
        for name in ("regions", "augment", "batch_augment", "tta"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"config parameter {name!r} must be true or false, got {getattr(self, name)!r}")
        from .data.stacks import NORMALISATION_METHODS

        if self.normalisation not in NORMALISATION_METHODS or isinstance(self.normalisation, bool):
            raise ConfigError(
                f"config parameter 'normalisation' must be one of {list(NORMALISATION_METHODS)} "
                f"(1: Otsu body, 2: filled body), got {self.normalisation!r}"
            )
        if self.pixel_spacing is not None and (
            not isinstance(self.pixel_spacing, (int, float)) or self.pixel_spacing <= 0
        ):
            raise ConfigError(
                f"config parameter 'pixel_spacing' must be a number of mm > 0, got {self.pixel_spacing!r}"
            )

    def replace(self, **changes: Any) -> SegConfig:
        return dataclasses.replace(self, **changes)

    def seg_labels(self):
        from .data.stacks import SegLabels

        return SegLabels(**{k: tuple(v) for k, v in self.labels.items()})

    def spec(self):
        from .models.segnet import SegSpec

        return SegSpec(
            spacing=float(self.spacing),
            crop=self.crop,
            context=self.context,
            channels=self.channels,
            res_units=self.res_units,
            loc_spacing=float(self.loc_spacing),
            loc_size=self.loc_size,
            loc_channels=self.loc_channels,
            normalisation=self.normalisation,
            loc_shift_mm=float(self.loc_shift_mm),
            coarse_shift_mm=float(self.coarse_shift_mm),
            coarse_margin=float(self.coarse_margin),
            regions=self.regions,
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> SegConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown parameter(s) {unknown}; known parameters are {sorted(known)}")
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise ConfigError(f"{source}: {exc}") from None
