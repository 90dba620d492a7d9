"""Whole short-axis stacks for the anatomy-aware models: labels, intensity normalisation, geometry.

* :class:`~lgenet.conventions.labels.SegLabels` (in :mod:`lgenet.conventions.labels`) maps a dataset's
  label values onto lgenet's four segmentation classes (0 background, 1 LV cavity, 2 normal
  myocardium, 3 enhanced myocardium incl. MVO);
* :func:`read_stack` reads an image stack (and its label map) apex -> base with the pixel size;
* :func:`tissue_normalise` scales intensities by statistics taken over the body only, so that
  zero-filled (EMIDEC), offset-free and noisy-background (other scanners) frames come out alike
  (method 1: the tissue above an Otsu threshold; method 2, the default for new segmentation runs:
  the filled body outline, with zero fill left out before the threshold);
* :func:`crop_grid` / :func:`sample` / :func:`paste_back` resample a square window of fixed pixel
  size (mm) centred anywhere on a frame, and map maps computed on it back onto the frame's grid
  (one interpolation each way; windows may extend past the frame, which reads as zero).

Coordinates are (row, col) pixel centres of the frame, as in ``frame[r, c]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lgenet.conventions.labels import EMIDEC, SegLabels
from lgenet.conventions.normalisation import NORMALISATION_METHODS
from lgenet.errors import ConfigError, DataError
from lgenet.io.geometry import SLICE_GAP_NOTE
from lgenet.io.nifti import PIXEL_SIZE_UNKNOWN

__all__ = [
    "Stack",
    "read_stack",
    "tissue_normalise",
    "otsu_threshold",
    "context_channels",
    "crop_grid",
    "sample",
    "paste_back",
    "lv_centres",
    "CLASS_NAMES",
    "NORMALISATION_METHODS",
]

CLASS_NAMES = ("background", "lv_cavity", "myocardium_normal", "enhancement")
#: the note of a one-slice stack (a 2-D image): its "whole-LV" measures are those of that slice
ONE_SLICE_NOTE = "one slice only: the whole-LV measures come from this one slice, not from a short-axis stack"


@dataclass
class Stack:
    """One patient's short-axis stack, apex -> base."""

    image: np.ndarray  # (S, H, W) float32 raw intensities
    spacing: tuple[float, float]  # (row, col) mm; assumed when the file has none (see notes)
    classes: np.ndarray | None = None  # (S, H, W) uint8 classes 0..3 when a mask was given
    meta: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_stack(
    image: str | Path,
    mask: str | Path | None = None,
    *,
    labels: SegLabels | None = None,
    nifti_slice_axis: int = 2,
    nifti_basal_end: str = "last",
    default_spacing: float | None = None,
) -> Stack:
    """The image stack (and label map, as classes) with its pixel size; clear errors for misaligned masks."""
    from lgenet.io import read_volume

    vol, meta = read_volume(image, nifti_slice_axis=nifti_slice_axis, nifti_basal_end=nifti_basal_end)
    notes = []
    spacing = meta.get("pixel_spacing")
    if not spacing:
        if default_spacing is None and PIXEL_SIZE_UNKNOWN in meta.get("notes", ()):
            raise DataError(f"{image}: {PIXEL_SIZE_UNKNOWN}; give it with --pixel-spacing MM or fix the header")
        if default_spacing is None:
            fmt = str(meta.get("format") or "")
            if fmt.startswith("dicom"):
                why = (
                    "the DICOM has no PixelSpacing (0028,0030) nor ImagerPixelSpacing (0018,1164); give the mm per "
                    "pixel with --pixel-spacing, or export the series with its geometry"
                )
            elif fmt.startswith("nifti"):
                why = "the NIfTI header's pixel size (pixdim) is missing or 0; give it with --pixel-spacing"
            else:
                why = "a PNG/TIFF has none; give it (--pixel-spacing) or use the DICOM/NIfTI file"
            raise DataError(f"{image}: the pixel size is unknown ({why})")
        spacing = (float(default_spacing), float(default_spacing))
        notes.append(f"pixel size unknown: {default_spacing} mm assumed")
    if vol.shape[0] < 1 or min(vol.shape[1:]) < 16:
        raise DataError(f"{image}: a stack of shape {tuple(vol.shape)} is too small for a short-axis LGE stack")
    classes = None
    if mask is not None:
        m, _ = read_volume(mask, nifti_slice_axis=nifti_slice_axis, nifti_basal_end=nifti_basal_end)
        if m.shape != vol.shape:
            raise DataError(
                f"{mask}: the label map has shape {tuple(m.shape)} (slices, rows, cols) but the image "
                f"{image} has {tuple(vol.shape)}; masks must lie on the image's voxel grid"
            )
        _same_grid(image, mask)
        classes = (labels or EMIDEC).classes(m, where=str(mask))
    notes += [n for n in meta.get("notes", ()) if n.startswith(SLICE_GAP_NOTE)]
    if vol.shape[0] == 1:
        notes.append(ONE_SLICE_NOTE)
    return Stack(
        image=vol.astype(np.float32, copy=False),
        spacing=(float(spacing[0]), float(spacing[1])),
        classes=classes,
        meta=meta,
        notes=notes,
    )


def _same_grid(image: str | Path, mask: str | Path) -> None:
    """Refuse a NIfTI mask whose voxel grid lies elsewhere in space than its NIfTI image's (since 0.2.0)."""
    from lgenet.io.nifti import geometry_difference, is_nifti_name, load_nifti

    if not (is_nifti_name(image) and is_nifti_name(mask)):
        return
    diff = geometry_difference(load_nifti(image, unknown_zooms=True), load_nifti(mask, unknown_zooms=True))
    if diff:
        raise DataError(
            f"{mask}: the mask's voxel grid is {diff} compared with its image {image}; the mask does not lie "
            "on the image's grid (another patient's, resampled or flipped?). Give the mask drawn on this image, "
            "or resample it onto the image's grid"
        )


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1-D sample (maximises the between-class variance of the histogram)."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi))
    p = hist.astype(np.float64) / hist.sum()
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    mt = m0[-1]
    w1 = 1.0 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1
    return float(edges[int(np.argmax(between)) + 1])


def tissue_normalise(
    vol: np.ndarray,
    percentiles: tuple[float, float] = (1.0, 99.0),
    *,
    method: int = 1,
    spacing: Sequence[float] | None = None,
) -> np.ndarray:
    """Scale a stack (S, H, W) so that the body's ``percentiles`` map to 0 and 1 (clipped to [0, 1]).

    Percentiles over *all* pixels would let a 20 % zero fill drag the low end to 0 and leave every
    tissue squeezed near 1; both methods take them over the body instead.

    * ``method=1``: the body is what lies above an Otsu threshold of the whole stack. Robust to the
      share of zero fill and to a noisy dark background, but on a frame without EMIDEC's intensity
      offset (air and nulled myocardium near 0) the threshold falls inside the tissue, the dark tissue
      is left out, and the normalised myocardium moves by ~0.3 (docs/results.md).
    * ``method=2``: zero fill (ties at the stack's minimum, when they are >= 2 % of the pixels) is left
      out before the Otsu threshold; the low percentile is taken over the *filled* body outline (the
      thresholded tissue closed over 7.5 mm -- 5 px without ``spacing`` -- and with its holes filled, per
      slice), so dark tissue inside
      the body -- nulled myocardium, lungs -- counts whether or not the scanner stored an offset; the
      high one over the same region. On EMIDEC this keeps the normalised heart within ~0.01 when the
      offset is removed (method 1: 0.3) and within ~0.06 under the other domain-shift transforms.
    * ``method=3`` (since 0.3.0): as 2, robust to a few bright spots (surface coils near the chest wall,
      wrap-around). The Otsu threshold is taken over the values clipped at their 90th percentile, so that it
      separates tissue from air rather than the spots from everything else, and the high percentile over the
      body values at or below the body median + 4 robust SDs (1.4826 MAD), so that the spots do not set the
      scale. On EMIDEC as acquired it moves the normalised heart by ~0.03 from method 2; under the bench's
      edge-artefact proxy the mean normalised cavity goes from 0.46 to 0.39 (method 2: from 0.42 to 0.07;
      docs/results/segmentation.md, configuration 18).
    """
    if method not in NORMALISATION_METHODS:
        raise ConfigError(f"normalisation method must be one of {list(NORMALISATION_METHODS)}, got {method!r}")
    a = np.asarray(vol, dtype=np.float32)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        raise DataError("the stack has no finite pixel value")
    sample = finite if finite.size <= 400_000 else np.sort(finite)[:: finite.size // 400_000]
    if method == 1:
        thr = otsu_threshold(sample)
        body = sample[sample > thr]
        if body.size < 32:
            body = sample
        lo, hi = np.percentile(body, percentiles)
    else:
        close_px = 5 if spacing is None else max(1, int(round(7.5 / float(np.mean(spacing)))))
        lo, hi = _filled_body_percentiles(a, sample, percentiles, close_px, robust=method == 3)
    if hi <= lo:
        return np.zeros_like(a, dtype=np.float32)
    out = (np.nan_to_num(a, nan=float(lo)) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


#: method 3: the Otsu threshold over the values clipped at this percentile; the high percentile over the body
#: values at most this many robust SDs above the body median
_ROBUST_CLIP_PERCENTILE = 90.0
_ROBUST_FENCE_SD = 4.0


def _filled_body_percentiles(
    a: np.ndarray, sample: np.ndarray, percentiles: tuple[float, float], close_px: int = 5, *, robust: bool = False
) -> tuple[float, float]:
    from scipy import ndimage as ndi

    mn = float(sample.min())
    values = sample
    if (sample <= mn).mean() >= 0.02 and (sample > mn).sum() >= 32:  # zero fill: ties at the minimum
        values = sample[sample > mn]
    thr = otsu_threshold(np.minimum(values, np.percentile(values, _ROBUST_CLIP_PERCENTILE)) if robust else values)
    vol = a if a.ndim == 3 else a[None]
    mask = np.nan_to_num(vol, nan=mn) > thr
    body = np.zeros_like(mask)
    struct = ndi.generate_binary_structure(2, 1)
    for k in range(vol.shape[0]):
        m = np.pad(mask[k], close_px, mode="edge")  # edge padding: closing does not erode the frame border
        m = ndi.binary_closing(m, structure=struct, iterations=close_px)[close_px:-close_px, close_px:-close_px]
        body[k] = ndi.binary_fill_holes(m | mask[k])
    inside = vol[body & np.isfinite(vol)]
    if inside.size < 32:
        inside = values
    if not robust:
        lo, hi = np.percentile(inside, percentiles)
        return float(lo), float(hi)
    lo = np.percentile(inside, percentiles[0])
    med = float(np.median(inside))
    fence = med + _ROBUST_FENCE_SD * 1.4826 * float(np.median(np.abs(inside - med)))
    kept = inside[inside <= fence]
    hi = np.percentile(kept if kept.size >= 32 else inside, percentiles[1])
    return float(lo), float(hi)


def context_channels(vol: np.ndarray | torch.Tensor, k: int, context: int = 1) -> np.ndarray | torch.Tensor:
    """Slices k-context..k+context of a (S, H, W) stack as channels (edges repeated): 2.5-D input."""
    s = vol.shape[0]
    idx = [min(max(j, 0), s - 1) for j in range(k - context, k + context + 1)]
    return vol[idx]


# ----------------------------------------------------------------------------------- geometry
def crop_grid(
    centres: torch.Tensor,
    frame_shape: tuple[int, int],
    spacing: tuple[float, float],
    *,
    size: int,
    out_spacing: float,
    theta: torch.Tensor | None = None,
) -> torch.Tensor:
    """``grid_sample`` grids (N, size, size, 2) of windows of ``size`` px at ``out_spacing`` mm.

    Args:
        centres: (N, 2) window centres in frame pixel coordinates (row, col).
        frame_shape: (H, W) of the frame the grid samples.
        spacing: the frame's (row, col) pixel size in mm.
        theta: optional (N, 2, 2) linear maps applied to the window (rotation/scale/flip for
            augmentation) before it is placed.
    """
    h, w = frame_shape
    n = centres.shape[0]
    off = (torch.arange(size, dtype=torch.float32) - (size - 1) / 2) * out_spacing  # mm from the centre
    yy, xx = torch.meshgrid(off, off, indexing="ij")
    pts = torch.stack([yy, xx], -1).reshape(1, -1, 2).expand(n, -1, -1)  # (N, P, 2) mm (row, col)
    if theta is not None:
        pts = pts @ theta.transpose(1, 2)
    rc = pts / torch.tensor(spacing, dtype=torch.float32) + centres.float()[:, None, :]
    # normalised coordinates, align_corners=False: pixel centre i -> (2i + 1) / n - 1
    gx = (2 * rc[..., 1] + 1) / w - 1
    gy = (2 * rc[..., 0] + 1) / h - 1
    return torch.stack([gx, gy], -1).reshape(n, size, size, 2)


def sample(frames: torch.Tensor, grid: torch.Tensor, *, mode: str = "bilinear") -> torch.Tensor:
    """Sample (N, C, H, W) frames on ``grid`` (zeros outside the frame)."""
    return F.grid_sample(frames, grid.to(frames.dtype), mode=mode, padding_mode="zeros", align_corners=False)


def paste_back(
    maps: torch.Tensor,
    centres: torch.Tensor,
    frame_shape: tuple[int, int],
    spacing: tuple[float, float],
    *,
    out_spacing: float,
    fill: Sequence[float] | None = None,
) -> torch.Tensor:
    """Inverse of :func:`crop_grid` + :func:`sample`: (N, C, s, s) window maps onto the (H, W) frame grid.

    Pixels of the frame outside the window get ``fill`` per channel (default: 1 for channel 0 and 0
    elsewhere, i.e. background probability 1).
    """
    n, c, s, _ = maps.shape
    h, w = frame_shape
    rows = (torch.arange(h, dtype=torch.float32)[:, None] - centres[:, 0, None, None]) * spacing[0] / out_spacing
    cols = (torch.arange(w, dtype=torch.float32)[None, :] - centres[:, 1, None, None]) * spacing[1] / out_spacing
    rows, cols = rows.expand(n, h, w), cols.expand(n, h, w)
    # window pixel index j sits at offset (j - (s - 1) / 2) -> normalised (2j + 1) / s - 1
    gy = (2 * (rows + (s - 1) / 2) + 1) / s - 1
    gx = (2 * (cols + (s - 1) / 2) + 1) / s - 1
    grid = torch.stack([gx, gy], -1)
    out = F.grid_sample(maps.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = F.grid_sample(torch.ones(n, 1, s, s), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    fill_t = torch.zeros(c)
    fill_t[0] = 1.0
    if fill is not None:
        fill_t = torch.as_tensor(fill, dtype=torch.float32)
    return out + (1 - inside) * fill_t.view(1, c, 1, 1)


def lv_centres(classes: np.ndarray, fallback: tuple[float, float] | None = None) -> np.ndarray:
    """(S, 2) per-slice centroid (row, col) of the LV (cavity + myocardium, classes 1-3).

    Slices without LV take the centroid of the whole stack's LV; a stack without any takes
    ``fallback`` (default the frame centre).
    """
    c = np.asarray(classes)
    s, h, w = c.shape
    lv = c >= 1
    if lv.any():
        rr, cc = np.nonzero(lv.sum(0))
        weights = lv.sum(0)[rr, cc]
        overall = (float(np.average(rr, weights=weights)), float(np.average(cc, weights=weights)))
    else:
        overall = fallback if fallback is not None else ((h - 1) / 2, (w - 1) / 2)
    out = np.zeros((s, 2), np.float32)
    for k in range(s):
        rr, cc = np.nonzero(lv[k])
        out[k] = (rr.mean(), cc.mean()) if rr.size else overall
    return out
