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

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lgenet.config.outcome import OutcomeSettings, check_measures
from lgenet.conventions.thresholds import LGE_THRESHOLD
from lgenet.errors import ConfigError
from lgenet.settings import Settings, borrow, load_settings, setting

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
class RunConfig(Settings):
    """Everything that defines a run. Defaults reproduce the seed study's protocol; each setting is declared once,
    below (its help, allowed values and default; ``lgenet run --help`` shows them). The outcome settings are those
    of :class:`~lgenet.config.OutcomeSettings`, borrowed."""

    manifest: str | None = setting(
        None, kind="path", help="cohort CSV (see README: Manifest)", cli=True, resume_free=True
    )
    out: str = setting(
        "runs/lgenet", kind="path", help="run directory (a rerun resumes it)", cli=True, resume_free=True
    )
    tasks: tuple[str, ...] = setting(
        TASKS,
        help=f"comma-separated tasks among {list(TASKS)}: lge (lge_percent > lge_threshold) and/or event",
        choices=TASKS,
        cli=True,
    )
    archs: tuple[str, ...] = setting(
        ("resnet50", "inception_v3"),
        help="comma-separated backbones (see `lgenet backbones`)",
        nonempty=True,
        why="see `lgenet backbones`",
        cli=("--archs", "--arch"),
    )
    inits: tuple[str, ...] = setting(
        INITS, help=f"comma-separated inits among {list(INITS)}", choices=INITS, cli=("--inits", "--init")
    )
    families: tuple[str, ...] = setting(
        ("classifier",),
        help="model families: classifier (the seed CNNs), burden (the predicted LGE burden of "
        "--segmentation-run as the score), roi (a CNN on the LV-centred window) and stack "
        "(every slice's window, attention-pooled); the last three need --segmentation-run",
        choices=FAMILIES,
        cli=True,
    )
    segmentation_run: str | None = setting(
        None,
        kind="path",
        help="a `lgenet segment train` (or `segment apply`) output on this cohort",
        cli=True,
    )
    # the burden score's probability is sigmoid((burden - lge_threshold) / scale): a fixed monotone map (no
    # fitting), so p >= 0.5 means burden > the threshold
    burden_scale: float = setting(
        2.0, help="scale of the burden score's sigmoid", minimum=0, exclusive_minimum=True, why="percentage points"
    )
    outcomes: bool = setting(
        True,
        help="after the grid, fit the covariates / image / fusion models (and Cox models when the manifest has "
        "followup_years) in the same folds",
        cli_off="--no-outcomes",
        help_off="skip the covariates / image / fusion outcome models after the grid (default: fit them)",
        resume_free=True,
    )
    covariates: tuple[str, ...] | None = borrow(OutcomeSettings, "covariates", resume_free=True)
    outcome_measures: tuple[str, ...] = borrow(OutcomeSettings, "measures", cli=None, resume_free=True)
    outcome_cnn: str = borrow(OutcomeSettings, "cnn", cli=None, resume_free=True)
    outcome_C: float | str = borrow(OutcomeSettings, "C", cli=None, resume_free=True)
    outcome_recalibrate: str = borrow(OutcomeSettings, "recalibrate", cli=None, resume_free=True)
    cox_penalizer: float = borrow(OutcomeSettings, "cox_penalizer", cli=None, resume_free=True)
    outcome_horizon: float | None = borrow(OutcomeSettings, "horizon", cli=None, resume_free=True)
    anatomy_arch: str = setting("resnet18", help="backbone (random init) of the roi/stack families")
    anatomy_size: int = setting(96, help="window of the roi/stack families in pixels", minimum=32)
    anatomy_spacing: float = setting(1.5, help="mm per pixel of the roi/stack window", minimum=0.1)
    anatomy_epochs: int = setting(30, help="epochs of the roi/stack families", minimum=1)
    # image+seg: the image and the segmenter's myocardium and enhancement probabilities; image: the image alone,
    # in all three channels (the segmenter only places the window)
    anatomy_channels: str = setting("image+seg", help="what the roi/stack networks see", choices=ANATOMY_CHANNELS)
    # a 1x1 convolution on the backbone's last feature map predicts, per cell, the fraction of myocardium and of
    # enhanced myocardium in the *expert* masks of the training patients (manifest column mask); rows without a
    # mask add no auxiliary term. Test patients' masks are never read
    anatomy_aux_weight: float = setting(
        0.0, help="weight of an auxiliary segmentation loss for roi/stack (0: none)", minimum=0
    )
    # {arch: {init: path}}: required for radimagenet, optional for imagenet (downloaded through timm when online)
    weights: Mapping[str, Mapping[str, str]] = setting({}, help="local pretrained weight files", kind="any")
    lge_threshold: float = setting(LGE_THRESHOLD, help="LGE % above which task 'lge' is positive", minimum=0, cli=True)
    # data
    slice: str = setting("basal", kind="any", help="the frame of a stack: basal or a slice index")
    nifti_slice_axis: int = setting(2, help="the axis of a NIfTI stack that runs across slices", choices=(0, 1, 2))
    nifti_basal_end: str = setting("last", help="which end of that axis is the base", choices=("first", "last"))
    image_size: int | None = setting(
        None,
        kind="int",
        help="input size in px",
        minimum=16,
        default_text="the backbone's own, e.g. 224 for ResNet50, 299 for InceptionV3",
        cli=True,
    )
    intensity_percentiles: tuple[float, float] = setting((1.0, 99.0), help="intensity window percentiles")
    augment: bool = setting(False, help="light augmentation", default_text="off, as in the seed", cli=True)
    # model
    head: str = setting(
        "flatten",
        help="classification head: flatten (Flatten, Dense, ReLU, Dropout) or gap (global average pooling)",
        choices=HEADS,
        cli=True,
    )
    dense_units: int = setting(512, help="units of the flatten head's dense layer", minimum=1)
    dropout: float = setting(0.5, help="dropout of the flatten head", minimum=0, maximum=1, exclusive_maximum=True)
    # training
    epochs: int = setting(100, help="training epochs of every fit", minimum=1, cli=True)
    batch_size: int = setting(8, help="mini-batch size", minimum=1, cli=True)
    lr: float = setting(1e-3, help="learning rate (Adam)", minimum=0, exclusive_minimum=True, cli=True)
    weight_decay: float = setting(0.0, help="weight decay (Adam)", minimum=0)
    folds: int = setting(4, help="cross-validation folds", minimum=2, cli=True)
    selection: str = setting(
        "last", help="which epoch's model is evaluated on the test fold (last never looks at it)", choices=SELECTIONS
    )
    seed: int = setting(
        0,
        help="random seed of the folds and the fits",
        minimum=0,
        maximum=2**32,
        exclusive_maximum=True,
        range_text="[0, 2^32)",
        cli=True,
    )
    device: str = setting(
        "auto",
        help="where to train",
        choices=DEVICES,
        default_text="auto: cuda when available, else cpu",
        cli=True,
        resume_free=True,
    )
    precision: str = setting(
        "auto",
        help="arithmetic precision",
        choices=PRECISIONS,
        default_text="auto: bf16 on cuda and on cpus with native bf16, else fp32",
        cli=True,
    )
    num_threads: int | None = setting(
        None,
        kind="int",
        help="torch CPU threads per fit",
        minimum=1,
        default_text="the cores not busy with other jobs, shared among --workers",
        cli="--threads",
        resume_free=True,
    )
    # evaluation
    decision_threshold: float = setting(
        0.5,
        help="probability above which a prediction is positive",
        minimum=0,
        maximum=1,
        exclusive_minimum=True,
        exclusive_maximum=True,
    )
    ci_method: str = setting("delong", help="method of the AUC confidence intervals", choices=CI_METHODS, cli=True)
    n_bootstrap: int = setting(2000, help="bootstrap replicates of the AUC intervals", minimum=100)
    confidence: float = borrow(OutcomeSettings, "confidence")  # one level for every interval of a run

    # ------------------------------------------------------------------ cross-field rules
    def _check(self) -> None:
        if any(f != "classifier" for f in self.families) and not self.segmentation_run:
            raise ConfigError(
                "config parameter 'families' includes anatomy-aware families "
                f"{[f for f in self.families if f != 'classifier']}: give 'segmentation_run' "
                "(--segmentation-run, the --out of `lgenet segment train` or `segment apply`)"
            )
        check_measures(self.outcome_measures, "config parameter 'outcome_measures':")
        lo, hi = (tuple(self.intensity_percentiles) + (None, None))[:2]
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
        weights = self.weights
        if not isinstance(weights, Mapping) or not all(isinstance(d, Mapping) for d in dict(weights).values()):
            raise ConfigError(
                "config parameter 'weights' must map ARCH to {INIT: PATH}, e.g. "
                "{resnet50: {radimagenet: RadImageNet-ResNet50_notop.h5}}"
            )
        object.__setattr__(
            self, "weights", {str(a): {str(i): str(p) for i, p in d.items()} for a, d in dict(weights).items()}
        )
        for arch, d in self.weights.items():
            for init in d:
                if init not in ("imagenet", "radimagenet"):
                    raise ConfigError(
                        f"config parameter 'weights' for {arch!r}: key {init!r} is not a pretrained init; "
                        "use 'imagenet' or 'radimagenet'"
                    )

    # ------------------------------------------------------------------ helpers
    def weights_file(self, arch: str, init: str) -> str | None:
        return self.weights.get(arch, {}).get(init)


def load_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """Read a YAML config (optional) and apply keyword overrides (``None`` values are ignored); an invalid value
    from the file names the file."""
    return load_settings(RunConfig, path, **overrides)
