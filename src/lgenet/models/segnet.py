"""Segmentation networks (MONAI) and the spec that rebuilds them offline.

Two 2-D MONAI ``UNet`` stages work together (see :mod:`lgenet.segment`):

* the **localiser** sees a whole slice at a coarse pixel size (``loc_spacing``, 4 mm on a
  ``loc_size`` px canvas) and marks the LV (cavity + myocardium), whose centroid places the window;
* with ``coarse_shift_mm`` > 0, a **coarse localiser** (the same network, trained with the LV
  anywhere within that many mm of the canvas centre) proposes where the heart is on frames whose field
  of view puts it far off-centre; the localiser also looks on a canvas centred there and keeps that
  canvas only where it sees a larger LV there, by more than ``coarse_margin`` (1.2: 20 %);
* the **segmenter** sees a ``crop`` px window at ``spacing`` mm centred on the LV, with the slices
  above and below as extra channels (2.5-D, ``context``), and labels every pixel background, LV
  cavity, normal myocardium or enhanced myocardium -- either as four mutually exclusive classes
  (softmax, the default) or, with ``regions``, as three nested regions (LV, myocardium, enhancement;
  one sigmoid each, as nnU-Net trains nested structures), which :func:`regions_to_probs` turns into
  the same four class probabilities and :func:`decode_classes` into the class map.

A fitted fold is saved as both state dicts plus its :class:`SegSpec`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lgenet.errors import ConfigError

__all__ = [
    "SegSpec",
    "build_localiser",
    "build_segmenter",
    "SEG_CLASSES",
    "SEG_REGIONS",
    "region_targets",
    "regions_to_probs",
    "decode_classes",
]

SEG_CLASSES = 4
#: the nested regions of a ``regions`` segmenter, each the union of classes >= k (k = 1, 2, 3)
SEG_REGIONS = ("lv", "myo", "lge")


@dataclass(frozen=True)
class SegSpec:
    """Everything needed to rebuild a fold's two networks and feed them exactly as in training."""

    spacing: float = 1.5
    crop: int = 96
    context: int = 1
    channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    res_units: int = 2
    loc_spacing: float = 4.0
    loc_size: int = 112
    loc_channels: tuple[int, ...] = (8, 16, 32, 64, 128)
    percentiles: tuple[float, float] = (1.0, 99.0)
    normalisation: int = 1
    loc_shift_mm: float = 20.0
    coarse_shift_mm: float = 0.0
    coarse_margin: float = 1.0  # runs made before session 8: the larger LV mass wins, by any margin
    regions: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.regions, bool):
            raise ConfigError(f"regions must be true or false, got {self.regions!r}")
        for name in ("channels", "loc_channels", "percentiles"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        levels = len(self.channels) - 1
        if self.crop % (2**levels) or self.loc_size % (2 ** (len(self.loc_channels) - 1)):
            raise ConfigError(
                f"crop ({self.crop}) and loc_size ({self.loc_size}) must be divisible by 2^(levels-1) "
                f"of their networks ({2**levels} and {2 ** (len(self.loc_channels) - 1)})"
            )
        if self.spacing <= 0 or self.loc_spacing <= 0:
            raise ConfigError("segmentation pixel sizes must be > 0 mm")
        if self.context < 0:
            raise ConfigError(f"context must be >= 0 slices, got {self.context}")
        if self.coarse_shift_mm < 0 or self.loc_shift_mm <= 0:
            raise ConfigError("loc_shift_mm must be > 0 and coarse_shift_mm >= 0 (0: no coarse localiser)")
        if not self.coarse_margin >= 1.0:
            raise ConfigError(
                f"coarse_margin must be >= 1 (how many times larger the LV mass on the re-centred "
                f"canvas must be), got {self.coarse_margin!r}"
            )
        from lgenet.data.stacks import NORMALISATION_METHODS

        if self.normalisation not in NORMALISATION_METHODS:
            raise ConfigError(
                f"normalisation must be one of {list(NORMALISATION_METHODS)} "
                f"(lgenet.data.stacks.tissue_normalise), got {self.normalisation!r}"
            )

    @property
    def in_channels(self) -> int:
        return 2 * self.context + 1

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> SegSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _unet(in_ch: int, out_ch: int, channels: tuple[int, ...], res_units: int) -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=2,
        in_channels=in_ch,
        out_channels=out_ch,
        channels=channels,
        strides=(2,) * (len(channels) - 1),
        num_res_units=res_units,
        norm="instance",
    )


def build_localiser(spec: SegSpec) -> nn.Module:
    """Whole slice (1 channel) -> logits of background / LV."""
    return _unet(1, 2, spec.loc_channels, 1)


def build_segmenter(spec: SegSpec) -> nn.Module:
    """LV window (2·context + 1 channels) -> logits of the four classes (or of the three nested regions)."""
    return _unet(spec.in_channels, len(SEG_REGIONS) if spec.regions else SEG_CLASSES, spec.channels, spec.res_units)


def region_targets(y: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) class map (0 background, 1 cavity, 2 myocardium, 3 enhancement) -> (N, 3, H, W) binary
    nested regions: LV (>= 1), myocardium incl. enhancement (>= 2), enhancement (3)."""
    y = y.round()
    return torch.cat([(y >= k).to(torch.float32) for k in (1, 2, 3)], 1)


def regions_to_probs(r: torch.Tensor) -> torch.Tensor:
    """(N, 3, ...) region probabilities (LV, myocardium, enhancement) -> (N, 4, ...) class probabilities.

    The regions are nested, so inner ones take priority: an enhancement probability also counts towards
    the myocardium and the LV (``m' = max(m, e)``, ``a' = max(a, m')``), and the classes are the
    differences of the nested regions (background ``1 - a'``, cavity ``a' - m'``, myocardium ``m' - e``,
    enhancement ``e``): non-negative, summing to 1, and cumulative sums give back the regions."""
    a, m, e = r[:, 0], r[:, 1], r[:, 2]
    m = torch.maximum(m, e)
    a = torch.maximum(a, m)
    return torch.stack([1 - a, a - m, m - e, e], 1)


def decode_classes(probs: torch.Tensor | np.ndarray, regions: bool) -> np.ndarray:
    """(N, 4, ...) class probabilities -> (N, ...) uint8 class map.

    Softmax runs take the most probable class; ``regions`` runs threshold the nested regions at 0.5, inner
    first (a voxel is enhancement if P(enh) > 0.5, else myocardium if P(myo) > 0.5, else cavity if
    P(LV) > 0.5), which is how the regions were trained. Both work on fold- or flip-averaged probabilities."""
    p = torch.as_tensor(np.asarray(probs, np.float32) if not torch.is_tensor(probs) else probs.float())
    if not regions:
        return p.argmax(1).numpy().astype(np.uint8)
    lv, myo, lge = 1 - p[:, 0], p[:, 2] + p[:, 3], p[:, 3]
    return ((lv > 0.5).to(torch.uint8) + (myo > 0.5).to(torch.uint8) + (lge > 0.5).to(torch.uint8)).numpy()


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _load(net: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    net.load_state_dict(state)
    return net.eval()
