"""Proxies of another centre's LGE stacks, built from one centre's stacks and their label maps.

What differs on the other centre's stacks that broke the segmenter (issue "Another centre"): 0.73-0.76 mm
pixels on 392-518-pixel matrices (a ~350 mm field of view with the whole thorax, the heart off-centre, other
round structures beside it, another orientation); only 2-6 slices, 12-23 mm apart; stored intensities 0 to
~3800 with ~29 % zero fill outside a circular field of view; wrap-around and surface-coil bright spots at the
edges. Each function here makes one of these differences from a stack (``image`` (S, H, W) float, ``classes``
(S, H, W) uint8 0..3, in-plane ``spacing`` mm, ``slice_mm``) and returns the transformed four, the classes
moved with the image (distractors carry no label):

* :func:`thorax_canvas` -- a 350 mm canvas at 0.74 mm, the heart off-centre, and distractors: flipped and
  rotated copies of the stack's own frame with its LV filled in (the right ventricle, vessels and other round
  structures of tissue-like texture; in 0.2.0 the copies kept their LV, a second heart no thorax has) and bright
  discs of vessel size;
* :func:`thick_slices` -- 2-6 slices 12-23 mm apart, taken from the stack;
* :func:`circular_fov` -- zero outside a circle that leaves ~29 % of the frame empty;
* :func:`edge_artefacts` -- wrap-around (a faint copy of the far edge) and bright surface-coil spots;
* :func:`intensity_range` -- stored integers 0 to ~3800;
* :func:`other_centre` -- all of them, in that order;
* :func:`unnulled_myocardium` -- an appearance the issue does not list but that moves LGE % between centres:
  an inversion time set off the normal myocardium's null point leaves it grey, 30-60 % of the way from its
  nulled level to the blood pool's, with the scar as bright as before (since 0.3.0);
* :func:`other_centre_unnulled` -- :func:`other_centre` with the myocardium not nulled.

Every draw comes from the ``rng`` passed in, so that a bench or a training augmentation is reproducible.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "thorax_canvas",
    "thick_slices",
    "circular_fov",
    "edge_artefacts",
    "intensity_range",
    "other_centre",
    "unnulled_myocardium",
    "other_centre_unnulled",
    "CENTRE_SHIFTS",
]

Stack4 = tuple[np.ndarray, np.ndarray, tuple[float, float], float]


def _zoom(a: np.ndarray, factor: tuple[float, float], order: int) -> np.ndarray:
    from scipy.ndimage import zoom

    return np.stack([zoom(s, factor, order=order, mode="nearest", grid_mode=True) for s in a])


def _tissue_level(img: np.ndarray) -> float:
    nz = img[img > img.min()]
    return float(np.median(nz)) if nz.size else 1.0


def _without_heart(img: np.ndarray, cls: np.ndarray, pixel_mm: float) -> np.ndarray:
    """The stack with its LV (cavity and myocardium, grown by ~10 mm) filled with the surrounding tissue's level:
    the look-alikes of :func:`thorax_canvas` are other structures of the thorax, never a second LV."""
    from scipy.ndimage import binary_dilation, gaussian_filter

    out = img.copy()
    for k in range(img.shape[0]):
        lv = cls[k] >= 1
        if not lv.any():
            continue
        grown = binary_dilation(lv, iterations=max(1, int(round(10.0 / pixel_mm))))
        ring = binary_dilation(grown, iterations=3) & ~grown
        level = float(np.median(img[k][ring])) if ring.any() else _tissue_level(img[k])
        noise = gaussian_filter(np.random.default_rng(k).normal(0, 0.05 * level, grown.shape), 1.5)
        out[k][grown] = (level + noise)[grown]
    return out


def thorax_canvas(
    image: np.ndarray,
    classes: np.ndarray,
    spacing: tuple[float, float],
    slice_mm: float,
    rng: np.random.Generator,
    *,
    fov_mm: float = 350.0,
    pixel_mm: float = 0.74,
    distractors: int = 3,
) -> Stack4:
    """The stack at ``pixel_mm`` in a ``fov_mm`` canvas, off-centre, beside ``distractors`` unlabelled look-alikes."""
    img = _zoom(image.astype(np.float32), (spacing[0] / pixel_mm, spacing[1] / pixel_mm), order=1)
    cls = _zoom(classes.astype(np.uint8), (spacing[0] / pixel_mm, spacing[1] / pixel_mm), order=0)
    s, h, w = img.shape
    n = max(int(round(fov_mm / pixel_mm)), h + 8, w + 8)
    level = _tissue_level(img)
    canvas = rng.rayleigh(0.08 * level, (s, n, n)).astype(np.float32)
    out_cls = np.zeros((s, n, n), np.uint8)
    # distractors first, so that the heart's own frame lies on top: copies of the frame, flipped or rotated
    lv_free = _without_heart(img, cls, pixel_mm)
    for _ in range(distractors):
        k = int(rng.integers(0, 4))
        copy = np.rot90(lv_free, k, axes=(1, 2))
        if rng.random() < 0.5:
            copy = copy[:, :, ::-1]
        ch, cw = copy.shape[1:]
        if ch > n or cw > n:
            continue
        r0, c0 = int(rng.integers(0, n - ch + 1)), int(rng.integers(0, n - cw + 1))
        region = canvas[:, r0 : r0 + ch, c0 : c0 + cw]
        canvas[:, r0 : r0 + ch, c0 : c0 + cw] = np.where(copy > copy.min(), 0.9 * copy, region)
    yy, xx = np.mgrid[:n, :n]
    for _ in range(int(rng.integers(1, 3))):  # bright discs of vessel size (aorta, pulmonary artery)
        cy, cx = rng.uniform(0.15 * n, 0.85 * n, 2)
        r = rng.uniform(10.0, 16.0) / pixel_mm
        d = np.hypot(yy - cy, xx - cx)
        canvas[:, d < r] = 1.6 * level
    # the heart's own frame, off-centre by up to a quarter of the canvas
    r0 = int(np.clip((n - h) / 2 + rng.uniform(-0.25, 0.25) * n, 0, n - h))
    c0 = int(np.clip((n - w) / 2 + rng.uniform(-0.25, 0.25) * n, 0, n - w))
    region = canvas[:, r0 : r0 + h, c0 : c0 + w]
    canvas[:, r0 : r0 + h, c0 : c0 + w] = np.where(img > img.min(), img, region)
    out_cls[:, r0 : r0 + h, c0 : c0 + w] = cls
    return canvas, out_cls, (pixel_mm, pixel_mm), slice_mm


def thick_slices(
    image: np.ndarray,
    classes: np.ndarray,
    spacing: tuple[float, float],
    slice_mm: float,
    rng: np.random.Generator,
    *,
    gap_mm: tuple[float, float] = (12.0, 23.0),
    count: tuple[int, int] = (2, 6),
) -> Stack4:
    """Every k-th slice (k chosen so that the slices lie 12-23 mm apart where the stack allows), 2-6 of them."""
    s = image.shape[0]
    steps = [k for k in range(1, s) if gap_mm[0] <= k * slice_mm <= gap_mm[1]] or [max(1, round(16.0 / slice_mm))]
    step = int(rng.choice(steps))
    idx = np.arange(int(rng.integers(0, step)) if step > 1 else 0, s, step)
    keep = min(len(idx), int(rng.integers(count[0], count[1] + 1)))
    start = int(rng.integers(0, len(idx) - keep + 1))
    idx = idx[start : start + keep]
    return image[idx].copy(), classes[idx].copy(), spacing, float(step * slice_mm)


def circular_fov(
    image: np.ndarray,
    classes: np.ndarray,
    spacing: tuple[float, float],
    slice_mm: float,
    rng: np.random.Generator,
    *,
    empty: float = 0.29,
) -> Stack4:
    """Zero outside a centred circle that leaves ``empty`` of the frame (the labels outside it are lost too)."""
    s, h, w = image.shape
    r = math.sqrt((1.0 - empty) * h * w / math.pi)
    yy, xx = np.mgrid[:h, :w]
    inside = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) <= r
    return (
        np.where(inside, image, 0).astype(np.float32),
        np.where(inside, classes, 0).astype(np.uint8),
        spacing,
        slice_mm,
    )


def edge_artefacts(
    image: np.ndarray,
    classes: np.ndarray,
    spacing: tuple[float, float],
    slice_mm: float,
    rng: np.random.Generator,
) -> Stack4:
    """A faint copy of the far edge folded in (wrap-around) and 2-4 bright spots near the edges (surface coils)."""
    img = image.astype(np.float32).copy()
    s, h, w = img.shape
    level = _tissue_level(img)
    band = max(4, w // 8)
    img[:, :, :band] += 0.4 * img[:, :, w - band :]  # phase-encoding wrap-around
    yy, xx = np.mgrid[:h, :w]
    for _ in range(int(rng.integers(2, 5))):
        side = int(rng.integers(0, 4))
        cy = (
            rng.uniform(0, h)
            if side in (0, 1)
            else (rng.uniform(0, 0.08) * h if side == 2 else h - rng.uniform(0, 0.08) * h)
        )
        cx = (
            rng.uniform(0, w)
            if side in (2, 3)
            else (rng.uniform(0, 0.08) * w if side == 0 else w - rng.uniform(0, 0.08) * w)
        )
        sd = rng.uniform(0.03, 0.08) * min(h, w)
        img += (3.0 * level * np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sd**2)))).astype(np.float32)
    return img, classes, spacing, slice_mm


def intensity_range(
    image: np.ndarray,
    classes: np.ndarray,
    spacing: tuple[float, float],
    slice_mm: float,
    rng: np.random.Generator,
    *,
    top: float = 3800.0,
) -> Stack4:
    """Stored integers from 0 to about ``top`` (the frame's 99.9th percentile maps to ``top``)."""
    img = image.astype(np.float32)
    lo, hi = float(img.min()), float(np.percentile(img, 99.9))
    scaled = np.clip((img - lo) / max(hi - lo, 1e-6) * top * rng.uniform(0.9, 1.0), 0, 4095)
    return np.rint(scaled).astype(np.float32), classes, spacing, slice_mm


def other_centre(
    image: np.ndarray,
    classes: np.ndarray,
    spacing: tuple[float, float],
    slice_mm: float,
    rng: np.random.Generator,
) -> Stack4:
    """Every difference at once: thick slices, the thorax canvas, edge artefacts, the circular FOV, the range."""
    return _in_turn((image, classes, spacing, slice_mm), rng, thorax_canvas, edge_artefacts)


def _in_turn(st: Stack4, rng: np.random.Generator, *middle) -> Stack4:
    """``st`` through thick slices, then ``middle`` in order, then the circular FOV and the stored range."""
    for f in (thick_slices, *middle, circular_fov, intensity_range):
        st = f(*st, rng)
    return st


def unnulled_myocardium(
    image: np.ndarray,
    classes: np.ndarray,
    spacing: tuple[float, float],
    slice_mm: float,
    rng: np.random.Generator,
    *,
    grey: tuple[float, float] = (0.3, 0.6),
) -> Stack4:
    """The normal myocardium not nulled: raised by a fraction (drawn from ``grey``) of the step from its own
    median to the LV cavity's, with ~1 mm soft edges; scar, cavity and everything else are left as they are.

    A proxy of a mis-set inversion time, which lowers the contrast between normal and enhanced myocardium and
    so moves a segmenter's enhanced share. Only the labelled myocardium is raised: other muscle with a similar
    T1 would be greyed too on a real scanner, which this leaves out."""
    from scipy.ndimage import gaussian_filter

    img = image.astype(np.float32).copy()
    normal, cavity = img[classes == 2], img[classes == 1]
    if not normal.size or not cavity.size:
        return img, classes, spacing, slice_mm
    step = max(float(np.median(cavity)) - float(np.median(normal)), 0.0)
    lift = float(rng.uniform(*grey)) * step
    sd = 1.0 / max(float(min(spacing)), 1e-3)
    for k in range(img.shape[0]):
        if (classes[k] == 2).any():
            img[k] += (lift * gaussian_filter((classes[k] == 2).astype(np.float32), sd)).astype(np.float32)
    return img, classes, spacing, slice_mm


def other_centre_unnulled(
    image: np.ndarray,
    classes: np.ndarray,
    spacing: tuple[float, float],
    slice_mm: float,
    rng: np.random.Generator,
) -> Stack4:
    """:func:`other_centre` with the normal myocardium not nulled (raised after the canvas, before the artefacts)."""
    return _in_turn((image, classes, spacing, slice_mm), rng, thorax_canvas, unnulled_myocardium, edge_artefacts)


#: name -> transform, in the order a bench reports them
CENTRE_SHIFTS = {
    "whole-thorax canvas": thorax_canvas,
    "2-6 thick slices": thick_slices,
    "circular FOV": circular_fov,
    "edge artefacts": edge_artefacts,
    "0-3800 intensities": intensity_range,
    "another centre (all)": other_centre,
    "myocardium not nulled": unnulled_myocardium,
    "another centre, not nulled": other_centre_unnulled,
}
