"""Segmentation networks (MONAI) and the spec that rebuilds them offline.

Two 2-D MONAI ``UNet`` stages work together (see :mod:`lgenet.segment`):

* the **localiser** sees a whole slice at a coarse pixel size (``loc_spacing``, 4 mm on a
  ``loc_size`` px canvas) and marks the LV (cavity + myocardium), whose centroid places the window;
* with ``coarse_shift_mm`` > 0, a **coarse localiser** (the same network, trained with the LV
  anywhere within that many mm of the canvas centre) proposes where the heart is on frames whose field
  of view puts it far off-centre; the localiser also looks on a canvas centred there and keeps the
  canvas where it sees the larger LV;
* the **segmenter** sees a ``crop`` px window at ``spacing`` mm centred on the LV, with the slices
  above and below as extra channels (2.5-D, ``context``), and labels every pixel background, LV
  cavity, normal myocardium or enhanced myocardium.

A fitted fold is saved as both state dicts plus its :class:`SegSpec`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["SegSpec", "build_localiser", "build_segmenter", "SEG_CLASSES"]

SEG_CLASSES = 4


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

    def __post_init__(self) -> None:
        for name in ("channels", "loc_channels", "percentiles"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        levels = len(self.channels) - 1
        if self.crop % (2 ** levels) or self.loc_size % (2 ** (len(self.loc_channels) - 1)):
            raise ConfigError(f"crop ({self.crop}) and loc_size ({self.loc_size}) must be divisible by 2^(levels-1) "
                              f"of their networks ({2 ** levels} and {2 ** (len(self.loc_channels) - 1)})")
        if self.spacing <= 0 or self.loc_spacing <= 0:
            raise ConfigError("segmentation pixel sizes must be > 0 mm")
        if self.context < 0:
            raise ConfigError(f"context must be >= 0 slices, got {self.context}")
        if self.coarse_shift_mm < 0 or self.loc_shift_mm <= 0:
            raise ConfigError("loc_shift_mm must be > 0 and coarse_shift_mm >= 0 (0: no coarse localiser)")
        from ..data.stacks import NORMALISATION_METHODS

        if self.normalisation not in NORMALISATION_METHODS:
            raise ConfigError(f"normalisation must be one of {list(NORMALISATION_METHODS)} "
                              f"(lgenet.data.stacks.tissue_normalise), got {self.normalisation!r}")

    @property
    def in_channels(self) -> int:
        return 2 * self.context + 1

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "SegSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _unet(in_ch: int, out_ch: int, channels: tuple[int, ...], res_units: int) -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=in_ch, out_channels=out_ch, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=res_units, norm="instance")


def build_localiser(spec: SegSpec) -> nn.Module:
    """Whole slice (1 channel) -> logits of background / LV."""
    return _unet(1, 2, spec.loc_channels, 1)


def build_segmenter(spec: SegSpec) -> nn.Module:
    """LV window (2·context + 1 channels) -> logits of the four classes."""
    return _unet(spec.in_channels, SEG_CLASSES, spec.channels, spec.res_units)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _load(net: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    net.load_state_dict(state)
    return net.eval()
