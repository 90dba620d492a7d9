"""The AHA 16-segment model on a short-axis class map: enhanced fraction and transmurality per segment (since 0.3.0).

The slices with myocardium are split, apex -> base, into thirds: apical (segments 13-16, 90 deg each), mid (7-12)
and basal (1-6, 60 deg each) (Cerqueira et al., Circulation 2002). With fewer than three such slices the model is
not applied. Within a slice, the angle of each myocardial pixel is taken about the LV cavity's centre, from the
**anterior RV insertion**, which lies between the anterior (1, 7) and anteroseptal (2, 8) segments; the septum
continues from it toward the inferior wall:

* lgenet's masks have no RV label, so by default the insertion comes from the **patient axes** of the image
  geometry: the direction from the LV toward the RV is taken as the patient's right and anterior, (-1, -1, 0)/sqrt 2
  in LPS (the septal plane lies ~45 deg from the sagittal plane, the angle of the left anterior oblique view that
  shows it edge-on), projected on the slice; the anterior insertion lies 60 deg from it toward anterior. This
  is **approximate** (hearts rotate by tens of degrees), and every output says so.
* A stack whose geometry is not an oblique plane (its normal within 15 deg of a patient axis, as in data sets
  stored with placeholder affines, EMIDEC's among them) has no usable patient axes: the model needs
  ``rv_insertion_deg``.
* ``rv_insertion_deg`` gives the insertion on the displayed slice (rows down, columns right), in degrees
  counter-clockwise from 3 o'clock, and assumes the standard display viewed from the apex (the septum
  counter-clockwise from the insertion). It overrides the geometry.

Per segment: myocardial pixels and millilitres, the enhanced share of its myocardium (``lge_percent``) and the
largest transmurality (the enhanced share of the wall along 6-degree rays from the LV centre, as in
:func:`lgenet.evaluation.segmentation.sector_measures`). The 60-degree ``lge_sectors`` count stays as it is
documented there; it measures extent, not location.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lgenet.io.geometry import OBLIQUE_MAX_COS, patient_axes

__all__ = ["AHA_NAMES", "AhaResult", "aha_segments", "rv_insertion_from_affine", "OBLIQUE_MAX_COS"]

#: segment number -> (level, name)
AHA_NAMES: dict[int, tuple[str, str]] = {
    1: ("basal", "anterior"),
    2: ("basal", "anteroseptal"),
    3: ("basal", "inferoseptal"),
    4: ("basal", "inferior"),
    5: ("basal", "inferolateral"),
    6: ("basal", "anterolateral"),
    7: ("mid", "anterior"),
    8: ("mid", "anteroseptal"),
    9: ("mid", "inferoseptal"),
    10: ("mid", "inferior"),
    11: ("mid", "inferolateral"),
    12: ("mid", "anterolateral"),
    13: ("apical", "anterior"),
    14: ("apical", "septal"),
    15: ("apical", "inferior"),
    16: ("apical", "lateral"),
}
_MIN_MYO_PX = 10
_N_RAYS = 60


@dataclass
class AhaResult:
    """Per segment (1-16): ``myo_px``, ``myo_ml``, ``lge_percent``, ``transmurality_max``; how it was oriented."""

    segments: list[dict] = field(default_factory=list)
    orientation: str = ""
    rv_insertion_deg: float | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.segments)


def rv_insertion_from_affine(affine: np.ndarray | None) -> tuple[float | None, str]:
    """The anterior RV insertion's angle on the display (rows down, columns right; degrees counter-clockwise from
    3 o'clock) that the patient axes of ``affine`` give, or ``(None, why)``."""
    axes = patient_axes(affine)
    if isinstance(axes, str):
        return None, axes
    e_col, e_row, sep, ant = axes
    ins = math.cos(math.radians(60.0)) * sep + math.sin(math.radians(60.0)) * ant
    d_col, d_row = np.linalg.lstsq(np.column_stack([e_col, e_row]), ins, rcond=None)[0]
    return math.degrees(math.atan2(-d_row, d_col)), ""


def aha_segments(
    classes: np.ndarray,
    spacing: tuple[float, float],
    slice_mm: float | None,
    *,
    affine: np.ndarray | None = None,
    rv_insertion_deg: float | None = None,
) -> AhaResult:
    """The 16 AHA segments of a class map (S, H, W; apex -> base; 1 cavity, 2 myocardium, 3 enhanced)."""
    c = np.asarray(classes)
    sy, sx = float(spacing[0]), float(spacing[1])
    if rv_insertion_deg is not None:
        ins = float(rv_insertion_deg)
        how = f"given: anterior RV insertion at {ins:.0f} deg on the display (--rv-insertion-deg)"

        def angle(dy: np.ndarray, dx: np.ndarray) -> np.ndarray:  # the septum counter-clockwise from the insertion
            return (ins + 60.0) - np.degrees(np.arctan2(-dy * sy, dx * sx))

    else:
        axes = patient_axes(affine)
        if isinstance(axes, str):
            return AhaResult(note=f"AHA segments not computed: {axes}; give --rv-insertion-deg")
        e_col, e_row, sep, ant = axes
        ins = float(rv_insertion_from_affine(affine)[0])
        how = (
            "approximate: the RV taken to lie to the patient's right and anterior of the LV (image geometry), "
            f"anterior RV insertion at {ins:.0f} deg on the display"
        )

        def angle(dy: np.ndarray, dx: np.ndarray) -> np.ndarray:  # in the patient's space: no display convention
            v = np.outer(dx, e_col) + np.outer(dy, e_row)
            return np.degrees(np.arctan2(v @ ant, v @ sep))

    levels = [k for k in range(c.shape[0]) if int((c[k] >= 2).sum()) >= _MIN_MYO_PX]
    if len(levels) < 3:
        return AhaResult(
            orientation=how,
            rv_insertion_deg=ins,
            note=f"AHA segments not computed: {len(levels)} slice(s) with myocardium, the model needs 3 or more",
        )
    apical, mid, basal = np.array_split(np.array(levels), 3)
    acc: dict[int, list] = {s: [0, 0, []] for s in AHA_NAMES}  # myo px, enhanced px, ray transmuralities
    for level, idx in (("apical", apical), ("mid", mid), ("basal", basal)):
        for k in idx:
            myo = c[k] >= 2
            ref = c[k] == 1 if int((c[k] == 1).sum()) >= 5 else myo
            yy, xx = np.nonzero(myo)
            ry, rx = np.nonzero(ref)
            # phi: degrees from the septal direction toward anterior; the anterior insertion at +60
            phi = (angle(yy - ry.mean(), xx - rx.mean()) + 180.0) % 360.0 - 180.0
            seg = _segment_of(level, phi)
            enh = c[k][yy, xx] == 3
            ray = (((phi + 180.0) / 360.0) * _N_RAYS).astype(int) % _N_RAYS
            for s in np.unique(seg):
                m = seg == s
                acc[int(s)][0] += int(m.sum())
                acc[int(s)][1] += int(enh[m].sum())
                tot = np.bincount(ray[m], minlength=_N_RAYS)
                hit = np.bincount(ray[m], weights=enh[m].astype(float), minlength=_N_RAYS)
                ok = tot > 0
                acc[int(s)][2].extend((100.0 * hit[ok] / tot[ok]).tolist())
    voxel_ml = sy * sx * float(slice_mm) / 1000.0 if slice_mm else None
    rows = []
    for s, (lvl, name) in AHA_NAMES.items():
        myo_px, enh_px, rays = acc[s]
        rows.append(
            {
                "segment": s,
                "level": lvl,
                "name": name,
                "myo_px": myo_px,
                "myo_ml": myo_px * voxel_ml if voxel_ml else float("nan"),
                "lge_percent": 100.0 * enh_px / myo_px if myo_px else float("nan"),
                "transmurality_max": max(rays) if rays else float("nan"),
            }
        )
    return AhaResult(segments=rows, orientation=how, rv_insertion_deg=ins)


def _segment_of(level: str, phi: np.ndarray) -> np.ndarray:
    """Segment numbers from the angle phi (degrees from the septal direction toward anterior, in [-180, 180))."""
    if level == "apical":  # septal [-45, 45), anterior [45, 135), lateral, inferior [-135, -45)
        out = np.full(phi.shape, 16)
        out[(phi >= -45) & (phi < 45)] = 14
        out[(phi >= 45) & (phi < 135)] = 13
        out[(phi >= -135) & (phi < -45)] = 15
        return out
    first = 1 if level == "basal" else 7
    # anteroseptal [0, 60), inferoseptal [-60, 0), inferior [-120, -60), inferolateral [-180, -120),
    # anterolateral [120, 180), anterior [60, 120)
    edges = [(0, 60, 1), (-60, 0, 2), (-120, -60, 3), (-180, -120, 4), (120, 180, 5), (60, 120, 0)]
    out = np.zeros(phi.shape, int)
    for lo, hi, off in edges:
        out[(phi >= lo) & (phi < hi)] = first + off
    return out
