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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError

__all__ = ["RunConfig", "load_config", "TASKS", "INITS", "HEADS"]

TASKS = ("lge", "event")
INITS = ("random", "imagenet", "radimagenet")
HEADS = ("flatten", "gap")
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
        selection: which epoch's model is evaluated on the test fold; ``last`` never looks at it.
    """

    manifest: str | None = None
    out: str = "runs/lgenet"
    tasks: tuple[str, ...] = TASKS
    archs: tuple[str, ...] = ("resnet50", "inception_v3")
    inits: tuple[str, ...] = INITS
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
        for name in ("tasks", "archs", "inits", "intensity_percentiles"):
            val = getattr(self, name)
            if isinstance(val, str):
                val = tuple(v.strip() for v in val.split(",") if v.strip())
            object.__setattr__(self, name, tuple(val))
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
        choice("inits", INITS, many=True)
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
            ok = isinstance(v, int) and not isinstance(v, bool) if integer else isinstance(v, (int, float))
            if not ok or v < minimum:
                kind = "an integer" if integer else "a number"
                raise ConfigError(f"config parameter {name!r} must be {kind} >= {minimum}, got {v!r}")

        positive("epochs")
        positive("batch_size")
        positive("folds", minimum=2)
        positive("dense_units")
        positive("n_bootstrap", minimum=100)
        positive("lr", integer=False, minimum=0)
        positive("weight_decay", integer=False, minimum=0)
        positive("lge_threshold", integer=False, minimum=0)
        if self.lr <= 0:
            raise ConfigError(f"config parameter 'lr' must be > 0, got {self.lr!r}")
        if not (0.0 <= self.dropout < 1.0):
            raise ConfigError(f"config parameter 'dropout' must be in [0, 1), got {self.dropout!r}")
        if not (0.0 < self.decision_threshold < 1.0):
            raise ConfigError(f"config parameter 'decision_threshold' must be in (0, 1), got {self.decision_threshold!r}")
        if not (0.5 < self.confidence < 1.0):
            raise ConfigError(f"config parameter 'confidence' must be in (0.5, 1), got {self.confidence!r}")
        if self.image_size is not None and (not isinstance(self.image_size, int) or self.image_size < 16):
            raise ConfigError(f"config parameter 'image_size' must be an integer >= 16 or null, got {self.image_size!r}")
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
                raise ConfigError(f"config parameter 'slice' must be 'basal' or a slice index, got {self.slice!r}") from None
        for arch, d in self.weights.items():
            for init in d:
                if init not in ("imagenet", "radimagenet"):
                    raise ConfigError(
                        f"config parameter 'weights' for {arch!r}: key {init!r} is not a pretrained init; "
                        "use 'imagenet' or 'radimagenet'"
                    )

    # ------------------------------------------------------------------ helpers
    def replace(self, **changes: Any) -> "RunConfig":
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
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown parameter(s) {unknown}; known parameters are {sorted(known)}"
            )
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
            loaded = yaml.safe_load(p.read_text())
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
