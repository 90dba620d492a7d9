"""Whole-thorax training canvases for the localisers (``SegConfig.loc_thorax``, since 0.3.0).

EMIDEC's frames are cropped around the heart, so a localiser trained on them alone has never seen the rest of a
thorax: on another centre's 350 mm fields of view it drew the LV on the RV or on tissue near the frame centre while
the heart lay centimetres away. Each composite here is one training slice's localiser canvas (``loc_size`` pixels at
``loc_spacing`` mm, already tissue-normalised) moved off-centre inside a larger simulated field of view, with
unlabelled look-alikes around it:

* patches of *other patients'* frames with their LV cut out and filled with the patch's own tissue level (right
  ventricles, chest wall, liver, great vessels of tissue-like texture, never a second LV);
* bright discs of vessel size (aorta, pulmonary artery) and bright crescents (a right ventricle's blood pool);
* the field of view's edge: zero outside a rectangle of 300-420 mm and, half the time, outside a circle that leaves
  about 29 % of it empty; sometimes bright surface-coil spots at that edge.

The target is the slice's own LV, moved with it (the look-alikes carry no label), so that the localiser learns to
find the LV anywhere in the field of view and to leave the rest. Everything is drawn from one generator seeded per
fold, so a fold's canvases are reproducible. The bench's other-centre proxy (:mod:`lgenet.data.centre_shift`) builds
its look-alikes differently (from the patient's own full-resolution frame, before normalisation), so that it does
not merely replay this augmentation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

__all__ = ["thorax_composites"]


def thorax_composites(
    x: torch.Tensor,
    y: torch.Tensor,
    groups: Sequence[int],
    *,
    spacing_mm: float,
    per_slice: float,
    seed: int,
    max_shift_mm: float = 90.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``round(per_slice * N)`` composites from (N, 1, L, L) localiser canvases ``x`` and LV targets ``y``.

    ``groups``: the patient of each slice (look-alike patches come from other patients); ``spacing_mm``: the
    canvases' pixel size; ``max_shift_mm``: how far the slice's frame moves from the canvas centre, each axis."""
    n, _, size, _ = x.shape
    count = int(round(per_slice * n))
    if count <= 0 or n == 0:
        return x[:0], y[:0]
    rng = np.random.default_rng(int(seed) % (2**63))
    xs = x[:, 0].numpy()
    ys = y[:, 0].numpy() > 0.5
    groups = np.asarray(groups)
    cut = [_without_lv(xs[i], ys[i], spacing_mm) for i in range(n)]
    out_x = np.zeros((count, size, size), np.float32)
    out_y = np.zeros((count, size, size), np.float32)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    for k in range(count):
        i = int(rng.integers(0, n))
        others = np.flatnonzero(groups != groups[i])
        out_x[k], out_y[k] = _compose(i, xs, ys, cut, others, rng, yy, xx, spacing_mm, max_shift_mm)
    return torch.from_numpy(out_x)[:, None], torch.from_numpy(out_y)[:, None]


def _without_lv(frame: np.ndarray, lv: np.ndarray, spacing_mm: float) -> np.ndarray:
    """The canvas with its LV and myocardium (the LV target dilated by ~12 mm) filled with the surrounding tissue."""
    if not lv.any():
        return frame
    grown = ndimage.binary_dilation(lv, iterations=max(1, int(round(12.0 / spacing_mm))))
    ring = ndimage.binary_dilation(grown, iterations=2) & ~grown & (frame > 0.02)
    level = (
        float(np.median(frame[ring]))
        if ring.any()
        else float(np.median(frame[frame > 0.02] if (frame > 0.02).any() else frame))
    )
    out = frame.copy()
    out[grown] = level
    return ndimage.gaussian_filter(out, 0.7) * grown + out * ~grown


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(a)
    h, w = a.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = a[ys, xs]
    return out


def _compose(i, xs, ys, cut, others, rng, yy, xx, mm, max_shift_mm):
    size = xs.shape[-1]
    c = (size - 1) / 2
    canvas = rng.rayleigh(rng.uniform(0.02, 0.08), (size, size)).astype(np.float32)
    # look-alikes: LV-free patches of other patients' frames, turned and flipped
    for _ in range(int(rng.integers(2, 6))):
        if others.size == 0:
            break
        j = int(rng.choice(others))
        src = np.rot90(cut[j], int(rng.integers(0, 4)))
        if rng.random() < 0.5:
            src = src[:, ::-1]
        p = int(rng.integers(int(50 / mm), int(150 / mm) + 1))
        body = np.argwhere(src > 0.05)
        if body.size == 0:
            continue
        r0, c0 = body[int(rng.integers(0, len(body)))] - p // 2
        r0, c0 = int(np.clip(r0, 0, size - p)), int(np.clip(c0, 0, size - p))
        patch = src[r0 : r0 + p, c0 : c0 + p]
        t0, t1 = int(rng.integers(0, size - p + 1)), int(rng.integers(0, size - p + 1))
        region = canvas[t0 : t0 + p, t1 : t1 + p]
        canvas[t0 : t0 + p, t1 : t1 + p] = np.where(patch > 0.05, patch, region)
    # bright discs of vessel size and bright crescents
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0.1 * size, 0.9 * size, 2)
        d = np.hypot(yy - cy, xx - cx)
        r = rng.uniform(9.0, 17.0) / mm
        if rng.random() < 0.6:
            canvas[d < r] = rng.uniform(0.7, 1.0)
        else:
            ang = np.arctan2(yy - cy, xx - cx)
            a0 = rng.uniform(-math.pi, math.pi)
            arc = np.cos(ang - a0) > rng.uniform(-0.2, 0.4)
            canvas[(d > r) & (d < 2.0 * r) & arc] = rng.uniform(0.6, 1.0)
    # the slice's own frame, moved off-centre: its body over the look-alikes
    lim = max_shift_mm / mm
    dy, dx = (int(round(v)) for v in rng.uniform(-lim, lim, 2))
    frame, lv = _shift(xs[i], dy, dx), _shift(ys[i].astype(np.float32), dy, dx)
    canvas = np.where(frame > 0.05, frame, canvas)
    # and over the frame's edges, away from the LV, so that the frame's rectangle is no clue to where the LV is
    if lv.any():
        near = ndimage.binary_dilation(lv > 0.5, iterations=int(round(35.0 / mm)))
        for _ in range(int(rng.integers(0, 3))):
            if others.size == 0:
                break
            src = np.rot90(cut[int(rng.choice(others))], int(rng.integers(0, 4)))
            p = int(rng.integers(int(40 / mm), int(100 / mm) + 1))
            r0, c0 = (int(v) for v in rng.integers(0, size - p + 1, 2))
            t0, t1 = (int(v) for v in rng.integers(0, size - p + 1, 2))
            patch = src[r0 : r0 + p, c0 : c0 + p]
            free = ~near[t0 : t0 + p, t1 : t1 + p] & (patch > 0.05)
            region = canvas[t0 : t0 + p, t1 : t1 + p]
            canvas[t0 : t0 + p, t1 : t1 + p] = np.where(free, patch, region)
    # the field of view: a rectangle of 300-420 mm, half the time a circle inside it
    half = rng.uniform(150.0, 210.0, 2) / mm
    inside = (np.abs(yy - c) <= half[0]) & (np.abs(xx - c) <= half[1])
    if rng.random() < 0.5:
        r = math.sqrt((1 - 0.29) * 4 * half[0] * half[1] / math.pi)
        inside &= np.hypot(yy - c, xx - c) <= r
    if rng.random() < 0.3:  # surface-coil spots at the edge
        edge = np.argwhere(inside & ~ndimage.binary_erosion(inside, iterations=3))
        for _ in range(int(rng.integers(1, 4))):
            if edge.size == 0:
                break
            ey, ex = edge[int(rng.integers(0, len(edge)))]
            sd = rng.uniform(8.0, 25.0) / mm
            canvas += 1.2 * np.exp(-((yy - ey) ** 2 + (xx - ex) ** 2) / (2 * sd * sd)).astype(np.float32)
    canvas = np.clip(np.where(inside, canvas, 0.0), 0.0, 1.0).astype(np.float32)
    return canvas, (lv > 0.5) & inside
