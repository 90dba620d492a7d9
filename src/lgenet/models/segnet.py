"""Segmentation networks (MONAI) and the spec that rebuilds them offline.

Two 2-D MONAI ``UNet`` stages work together (see :mod:`lgenet.segment`):

* the **localiser** sees a whole slice at a coarse pixel size (``loc_spacing``, 4 mm on a
  ``loc_size`` px canvas) and marks the LV (cavity + myocardium), whose centroid places the window;
* with ``coarse_shift_mm`` > 0, a **coarse localiser** (the same network, trained with the LV
  anywhere within that many mm of the canvas centre) proposes where the heart is on frames whose field
  of view puts it far off-centre; the localiser also looks on a canvas centred there and keeps that
  canvas only where it sees a larger LV there, by more than ``coarse_margin`` (1.0 since 0.3.0, with the coarse
  localiser trained on whole-thorax composites; 1.2 in 0.1.0-0.2.0);
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

import numpy as np
import torch
from torch import nn

from lgenet.errors import ConfigError
from lgenet.settings import setting
from lgenet.settings.segmentation import SegNetwork

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
class SegSpec(SegNetwork.record_view()):
    """Everything needed to rebuild a fold's two networks and feed them exactly as in training: the network settings
    (:class:`~lgenet.settings.segmentation.SegNetwork`, declared once) and the input percentiles. Saved with every
    fold model; a field that a spec saved before it existed lacks takes its declared ``absent`` value (e.g.
    ``normalisation`` 1, ``coarse_shift_mm`` 0, ``coarse_margin`` 1.0: what those runs did)."""

    LABEL = "segmentation spec parameter {name!r}"
    COERCE_NUMBERS = True  # the spec saved with a fold model holds floats for its float settings

    percentiles: tuple[float, float] = setting(
        (1.0, 99.0), help="intensity percentiles of tissue_normalise", item="float", length=2
    )

    def _check(self) -> None:
        levels = len(self.channels) - 1
        if self.crop % (2**levels) or self.loc_size % (2 ** (len(self.loc_channels) - 1)):
            raise ConfigError(
                f"crop ({self.crop}) and loc_size ({self.loc_size}) must be divisible by 2^(levels-1) "
                f"of their networks ({2**levels} and {2 ** (len(self.loc_channels) - 1)})"
            )

    @property
    def in_channels(self) -> int:
        return 2 * self.context + 1

    @classmethod
    def from_dict(cls, d: dict, *, source: str | None = None) -> SegSpec:
        """A saved spec (keys it does not know are left out; those it lacks take their ``absent`` values)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return super().from_dict({k: v for k, v in d.items() if k in known}, source=source)


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
