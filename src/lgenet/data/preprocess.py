"""Frame preprocessing: robust intensity scaling, square padding, resizing.

The output of :class:`Preprocessor` is a (1, S, S) float32 tensor in [0, 1]; the model's
:class:`~lgenet.models.InputAdapter` turns it into the 3-channel input convention of its weights,
so nothing here depends on the weights. Steps:

1. clip to the (low, high) intensity percentiles of the frame (default 1st and 99th) and map that
   range linearly to [0, 1] — LGE intensities are arbitrary units that differ between scanners;
2. pad the shorter side symmetrically with 0 (dark) to a square, so anatomy keeps its aspect ratio;
3. resize to S x S (bilinear, antialiased).

:meth:`Preprocessor.to_frame` maps a map computed on the S x S input (a Grad-CAM, say) back onto
the original frame's pixel grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lgenet.errors import DataError

__all__ = ["Preprocessor", "scale_intensity", "augment_batch"]


def scale_intensity(frame: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)) -> np.ndarray:
    """Clip to the given percentiles and map linearly to [0, 1] (float32)."""
    a = np.asarray(frame, dtype=np.float32)
    if a.ndim != 2:
        raise DataError(f"expected a 2-D frame, got shape {a.shape}")
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        raise DataError("frame has no finite pixel values")
    lo, hi = np.percentile(finite, percentiles)
    if hi <= lo:  # constant image: keep it, as zeros
        return np.zeros_like(a, dtype=np.float32)
    out = (np.nan_to_num(a, nan=lo) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Preprocessor:
    """Frame (H, W) -> tensor (1, size, size) in [0, 1]."""

    size: int
    percentiles: tuple[float, float] = (1.0, 99.0)

    #: bumped whenever the output for the same frame and settings changes (invalidates cached inputs)
    VERSION = 1

    def _pad(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        h, w = shape
        side = max(h, w)
        top = (side - h) // 2
        left = (side - w) // 2
        return top, side - h - top, left, side - w - left

    def __call__(self, frame: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(scale_intensity(frame, self.percentiles))
        top, bottom, left, right = self._pad(tuple(x.shape))
        x = F.pad(x[None, None], (left, right, top, bottom), value=0.0)
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        return x[0].clamp_(0.0, 1.0).contiguous()

    def to_frame(self, m: np.ndarray | torch.Tensor, frame_shape: tuple[int, int]) -> np.ndarray:
        """Map an (S, S) array computed on the model input back to the (H, W) frame grid."""
        t = torch.as_tensor(np.asarray(m, dtype=np.float32))[None, None]
        h, w = frame_shape
        side = max(h, w)
        t = F.interpolate(t, size=(side, side), mode="bilinear", align_corners=False)
        top, _, left, _ = self._pad((h, w))
        return t[0, 0, top : top + h, left : left + w].numpy()


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Light geometric + intensity augmentation of a (N, 1, S, S) batch (off by default).

    Random rotation (±10°), scaling (0.9–1.1), translation (±5 %) and gamma (0.8–1.25), drawn from
    ``generator`` so that a seeded run is reproducible.
    """
    n = x.shape[0]
    u = torch.rand(n, 5, generator=generator)
    ang = (u[:, 0] - 0.5) * (2 * np.pi * 10 / 180)
    sc = 0.9 + 0.2 * u[:, 1]
    tx, ty = (u[:, 2] - 0.5) * 0.1, (u[:, 3] - 0.5) * 0.1
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    gamma = torch.exp((u[:, 4] - 0.5) * 2 * np.log(1.25)).view(n, 1, 1, 1).to(x.dtype)
    return out.clamp(0, 1).pow(gamma)
