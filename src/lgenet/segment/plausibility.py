"""Is a predicted mask a left ventricle? Anatomical plausibility checks of a class map, before any measure.

A segmenter applied to another centre's stacks can draw its ring on the wrong structure (the RV, the aorta,
tissue outside the heart) and still report an LGE burden. These checks look at the predicted mask alone,
in millimetres, and say in words what is implausible:

* **a ring around a cavity** -- on each slice with myocardium, rays from the cavity's centre must meet
  myocardium in most directions (:attr:`PlausibilityRules.min_ring_coverage`, median over slices);
* **a wall as thick as a ventricle's** -- the ring's mean thickness, from the areas of the cavity and of
  cavity + myocardium as concentric discs, median over slices;
* **a cavity of an LV's size** -- the cavity's equivalent diameter, median over slices;
* **one heart through the stack** -- the LV centre moves little from one slice to the next;
* **a plausible myocardial mass** -- when the stack covers enough of the LV to sum it.

The limits are physiological ranges fixed in advance from the CMR literature (wall 6-12 mm normally, thinned
scar to hypertrophy ~3-25 mm; LV diameters 35-70 mm at the mid-ventricle, smaller towards the apex; LV mass
~60-250 g, up to ~450 g in hypertrophy), widened so that every expert mask of EMIDEC passes; they are not
fitted on any test fold. ``bench/plausibility.py`` records how the expert masks of EMIDEC and the failure
proxies score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["PlausibilityRules", "Plausibility", "check_plausibility"]


@dataclass(frozen=True)
class PlausibilityRules:
    """The limits of :func:`check_plausibility` (see the module docstring for where they come from)."""

    min_ring_coverage: float = 0.6
    min_wall_mm: float = 2.5
    max_wall_mm: float = 30.0
    min_cavity_mm: float = 8.0
    max_cavity_mm: float = 95.0
    max_centre_jump_mm: float = 30.0
    min_mass_g: float = 25.0
    max_mass_g: float = 500.0
    #: the mass is checked only when the slices with myocardium span at least this many mm (a stack of one or
    #: two slices holds a fraction of the LV)
    mass_min_extent_mm: float = 50.0
    rays: int = 36


@dataclass
class Plausibility:
    """The verdict: ``ok`` and, when not, the ``reasons`` in words; the measures behind it."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    ring_coverage: float = float("nan")
    wall_mm: float = float("nan")
    cavity_mm: float = float("nan")
    centre_jump_mm: float = float("nan")
    mass_g: float = float("nan")
    slices_with_lv: int = 0

    def reason(self) -> str:
        return "; ".join(self.reasons)


def _ring_coverage(cav: np.ndarray, myo: np.ndarray, spacing: tuple[float, float], rays: int) -> float:
    """Share of ``rays`` directions from the cavity's centre (in mm) along which myocardium is met."""
    ys, xs = np.nonzero(cav)
    cy, cx = ys.mean(), xs.mean()
    h, w = myo.shape
    dy, dx = spacing
    reach_mm = 4.0 * math.sqrt((cav.sum() + myo.sum()) * dy * dx / math.pi) + 5.0
    steps = np.arange(0.0, reach_mm, 0.5 * min(dy, dx))
    hits = 0
    for a in np.linspace(0.0, 2 * math.pi, rays, endpoint=False):
        yy = np.rint(cy + steps * math.sin(a) / dy).astype(int)
        xx = np.rint(cx + steps * math.cos(a) / dx).astype(int)
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        if myo[yy[inside], xx[inside]].any():
            hits += 1
    return hits / rays


def check_plausibility(
    classes: np.ndarray,
    spacing: tuple[float, float],
    slice_mm: float | None,
    rules: PlausibilityRules = PlausibilityRules(),
) -> Plausibility:
    """Whether the class map (S, H, W; 0 background, 1 LV cavity, 2 myocardium, 3 enhanced myocardium) of one
    stack, with in-plane ``spacing`` (mm) and slice distance ``slice_mm`` (None: unknown), is a plausible LV."""
    from lgenet.evaluation.segmentation import MYO_DENSITY_G_PER_ML

    c = np.asarray(classes)
    if c.ndim == 2:
        c = c[None]
    dy, dx = float(spacing[0]), float(spacing[1])
    px_mm2 = dy * dx
    cover, walls, cavs, centres = [], [], [], []
    lv_slices = []
    for k in range(c.shape[0]):
        myo, cav = c[k] >= 2, c[k] == 1
        if not myo.any():
            continue
        lv_slices.append(k)
        if not cav.any():  # an apical cap or a ring without a cavity: no ring measures on this slice
            ys, xs = np.nonzero(myo)
            centres.append((k, ys.mean() * dy, xs.mean() * dx))
            continue
        a_cav, a_all = cav.sum() * px_mm2, (cav.sum() + myo.sum()) * px_mm2
        walls.append(math.sqrt(a_all / math.pi) - math.sqrt(a_cav / math.pi))
        cavs.append(2.0 * math.sqrt(a_cav / math.pi))
        cover.append(_ring_coverage(cav, myo, (dy, dx), rules.rays))
        lv = myo | cav
        ys, xs = np.nonzero(lv)
        centres.append((k, ys.mean() * dy, xs.mean() * dx))
    out = Plausibility(ok=True, slices_with_lv=len(lv_slices))
    if not lv_slices:
        out.ok = False
        out.reasons.append("no myocardium found on any slice")
        return out
    if not cover:
        out.ok = False
        out.reasons.append("no LV cavity inside the myocardium on any slice")
        return out
    out.ring_coverage = float(np.median(cover))
    out.wall_mm = float(np.median(walls))
    out.cavity_mm = float(np.median(cavs))
    if out.ring_coverage < rules.min_ring_coverage:
        out.reasons.append(
            f"the myocardium does not surround the cavity (it meets {out.ring_coverage:.0%} of the directions from "
            f"the cavity's centre, median over slices; an LV ring meets >= {rules.min_ring_coverage:.0%})"
        )
    if not rules.min_wall_mm <= out.wall_mm <= rules.max_wall_mm:
        out.reasons.append(
            f"the wall is {out.wall_mm:.1f} mm thick (median over slices), outside an LV's "
            f"{rules.min_wall_mm:g}-{rules.max_wall_mm:g} mm"
        )
    if not rules.min_cavity_mm <= out.cavity_mm <= rules.max_cavity_mm:
        out.reasons.append(
            f"the cavity is {out.cavity_mm:.0f} mm across (median over slices), outside an LV's "
            f"{rules.min_cavity_mm:g}-{rules.max_cavity_mm:g} mm"
        )
    jumps = [math.hypot(b[1] - a[1], b[2] - a[2]) for a, b in zip(centres, centres[1:]) if b[0] - a[0] == 1]
    if jumps:
        out.centre_jump_mm = float(max(jumps))
        if out.centre_jump_mm > rules.max_centre_jump_mm:
            out.reasons.append(
                f"the LV centre moves {out.centre_jump_mm:.0f} mm between adjacent slices (one heart moves "
                f"<= {rules.max_centre_jump_mm:g} mm): the mask is on different structures"
            )
    if slice_mm:
        extent = (lv_slices[-1] - lv_slices[0] + 1) * float(slice_mm)
        myo_ml = float((c >= 2).sum()) * px_mm2 * float(slice_mm) / 1000.0
        out.mass_g = myo_ml * MYO_DENSITY_G_PER_ML
        if extent >= rules.mass_min_extent_mm and not rules.min_mass_g <= out.mass_g <= rules.max_mass_g:
            out.reasons.append(
                f"the myocardial mass is {out.mass_g:.0f} g over {extent:.0f} mm of the LV, outside "
                f"{rules.min_mass_g:g}-{rules.max_mass_g:g} g"
            )
    out.ok = not out.reasons
    return out
