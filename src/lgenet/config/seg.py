"""``SegConfig``: everything that defines a segmentation run (``lgenet segment train``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

from lgenet.config.run import DEVICES, PRECISIONS, TASKS
from lgenet.errors import ConfigError

__all__ = ["SegConfig"]


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
        from lgenet.data.stacks import NORMALISATION_METHODS

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

    @staticmethod
    def resume_view(old: dict, new: dict) -> tuple[dict, dict]:
        """The saved and this run's settings as a resume compares them: without a coarse localiser (in both),
        the coarse margin plays no part."""
        if not float(old.get("coarse_shift_mm") or 0) and not float(new.get("coarse_shift_mm") or 0):
            old = {**old, "coarse_margin": new.get("coarse_margin")}
        return old, new

    def replace(self, **changes: Any) -> SegConfig:
        return dataclasses.replace(self, **changes)

    def seg_labels(self):
        from lgenet.conventions.labels import SegLabels

        return SegLabels(**{k: tuple(v) for k, v in self.labels.items()})

    def spec(self):
        from lgenet.models.segnet import SegSpec

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
