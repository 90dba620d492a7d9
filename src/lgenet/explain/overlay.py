"""CAM overlays on the original frame: colour blending and metadata-free PNGs.

A CAM computed on the model's S x S input is mapped back to the frame's own pixel grid with
:meth:`lgenet.data.preprocess.Preprocessor.to_frame` (undoing the square padding and the resize),
so an overlay has the original frame's resolution and orientation (rows and columns as read).

The heat map is blended with an opacity proportional to the CAM value, so the anatomy stays
visible where the map is low (a constant 50% blend tints the whole frame blue).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from lgenet.data.preprocess import Preprocessor, scale_intensity
from lgenet.utils import atomic_write_bytes

__all__ = ["CAM_CMAP", "display_frame", "cam_to_frame", "overlay_rgb", "gray_rgb", "write_png", "png_bytes"]

CAM_CMAP = "jet"
_MAX_ALPHA = 0.7


def display_frame(frame: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)) -> np.ndarray:
    """A frame as float32 in [0, 1] for display (the same robust scaling as the model input)."""
    return scale_intensity(np.asarray(frame, dtype=np.float32), tuple(percentiles))


def cam_to_frame(
    cam: np.ndarray,
    frame_shape: tuple[int, int],
    size: int | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
) -> np.ndarray:
    """An (S, S) map on the model input -> the (H, W) frame grid, clipped to [0, 1]."""
    cam = np.asarray(cam, dtype=np.float32)
    pre = Preprocessor(size or cam.shape[-1], tuple(percentiles))
    return np.clip(pre.to_frame(cam, tuple(frame_shape)), 0.0, 1.0).astype(np.float32)


def gray_rgb(frame01: np.ndarray) -> np.ndarray:
    g = np.clip(np.asarray(frame01, dtype=np.float32), 0, 1)
    return (np.repeat(g[..., None], 3, axis=2) * 255 + 0.5).astype(np.uint8)


def overlay_rgb(
    frame01: np.ndarray, cam01: np.ndarray, *, cmap: str = CAM_CMAP, max_alpha: float = _MAX_ALPHA
) -> np.ndarray:
    """(H, W, 3) uint8: the gray frame with the CAM's colour map blended in proportion to the CAM."""
    from matplotlib import colormaps

    f = np.clip(np.asarray(frame01, dtype=np.float32), 0, 1)
    c = np.clip(np.asarray(cam01, dtype=np.float32), 0, 1)
    if f.shape != c.shape:
        raise ValueError(f"frame {f.shape} and CAM {c.shape} must have the same shape (map the CAM with cam_to_frame)")
    heat = colormaps[cmap](c)[..., :3].astype(np.float32)
    alpha = (max_alpha * c)[..., None]
    out = (1 - alpha) * f[..., None] + alpha * heat
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) or (H, W, 3) uint8 array; no text chunks (no metadata at all)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write ``rgb`` as a metadata-free PNG, atomically."""
    return atomic_write_bytes(path, png_bytes(rgb))
