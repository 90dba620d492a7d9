"""Is the RV where the patient's geometry says it should be? The side of a mask's ring the blood lies on (since 0.3.0).

A short-axis ring drawn on the wrong structure (the RV itself, a vessel, tissue outside the heart) can pass every
check of :mod:`lgenet.segment.plausibility`: it is a ring around a cavity, of an LV's size. What such a ring
rarely has is the LV's neighbourhood. On an LGE image the RV's blood pool, as bright as the LV cavity's, lies
against the septum, on the patient's right and anterior; the lateral wall faces lung and fat. lgenet's masks hold
no RV, so the check looks at the image beside the ring:

* on each slice with a cavity and a wall, the tissue 2-12 mm outside the epicardium is scored by how blood-like
  it is, ``(I - wall) / (cavity - wall)`` clipped to [0, 1.5] (wall: the 20th percentile of the myocardium's
  intensities, which leaves enhancement out; cavity: its median), in 12 sectors of 30 deg about the cavity's
  centre, in millimetres;
* the slice's direction is the circular mean of the sectors weighted by that score; the stack's is the mean of
  the slices' unit directions, and its **agreement** the length of that mean (1: every slice points the same way,
  0: no common direction);
* with patient geometry (:func:`lgenet.io.geometry.rv_direction`: an oblique plane, not a placeholder affine) the
  ring is **inconsistent** when the stack's direction lies more than 90 deg from the patient's right-anterior
  direction, judged only when the agreement is at least :data:`MIN_AGREEMENT`; otherwise **consistent**, or
  **unknown** with the reason.

The 90 deg half-plane is the anatomy's, not a fitted value; the 2-12 mm band and the sectors were fixed before
any measurement. ``bench/rv_side.py`` records how EMIDEC's expert rings and the proxies' predicted masks score
(EMIDEC has placeholder affines, so the bench stands in for the geometry with the other folds' mean direction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BAND_MM", "MIN_AGREEMENT", "RvSide", "observe_rv_side", "judge_rv_side"]

#: the band outside the epicardium that is looked at, mm
BAND_MM = (2.0, 12.0)
#: below this agreement between slices the stack's direction is not judged
MIN_AGREEMENT = 0.3
#: more than this many degrees from the expected direction: inconsistent
MAX_OFF_DEG = 90.0
_SECTORS = 12
_MIN_PX = 20

CONSISTENT, INCONSISTENT, UNKNOWN = "consistent", "inconsistent", "unknown"


@dataclass
class RvSide:
    """Where the blood-like tissue beside a ring lies: ``direction`` (d_row, d_col) unit vector in mm on the
    array, or None; ``agreement`` between slices (0-1); ``slices`` looked at; once judged, ``verdict``
    (consistent / inconsistent / unknown), ``off_deg`` from the expected direction and ``why``."""

    direction: np.ndarray | None
    agreement: float
    slices: int
    verdict: str = UNKNOWN
    off_deg: float = float("nan")
    why: str = ""

    def text(self) -> str:
        """The ``rv_side`` column: the verdict, with the angle off or the reason."""
        if self.verdict == UNKNOWN:
            return f"{UNKNOWN} ({self.why})" if self.why else UNKNOWN
        return f"{self.verdict} ({self.off_deg:.0f} deg from the patient's right-anterior)"


def _slice_direction(img: np.ndarray, cls: np.ndarray, spacing: tuple[float, float]) -> np.ndarray | None:
    from scipy import ndimage as ndi

    cav, myo = cls == 1, cls >= 2
    if int(cav.sum()) < _MIN_PX or int(myo.sum()) < _MIN_PX:
        return None
    sy, sx = float(spacing[0]), float(spacing[1])
    d = ndi.distance_transform_edt(~(cav | myo), sampling=(sy, sx))
    band = (d > BAND_MM[0]) & (d < BAND_MM[1])
    if int(band.sum()) < _MIN_PX:
        return None
    blood, wall = float(np.median(img[cav])), float(np.percentile(img[myo], 20))
    if not blood > wall:  # no contrast between cavity and wall: nothing to tell blood by
        return None
    cy, cx = ndi.center_of_mass(cav)
    yy, xx = np.nonzero(band)
    theta = np.arctan2((yy - cy) * sy, (xx - cx) * sx)
    score = np.clip((img[yy, xx] - wall) / (blood - wall), 0.0, 1.5)
    sector = ((theta + math.pi) / (2 * math.pi) * _SECTORS).astype(int) % _SECTORS
    n = np.bincount(sector, minlength=_SECTORS)
    mean = np.bincount(sector, weights=score, minlength=_SECTORS) / np.maximum(n, 1)
    mid = -math.pi + (np.arange(_SECTORS) + 0.5) * 2 * math.pi / _SECTORS
    v = np.array([(mean * np.sin(mid)).sum(), (mean * np.cos(mid)).sum()])
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 1e-9 else None


def observe_rv_side(image: np.ndarray, classes: np.ndarray, spacing: tuple[float, float]) -> RvSide:
    """The side of the ring of ``classes`` (S, H, W; 1 cavity, 2-3 myocardium) on which ``image`` (the raw stack it
    was drawn on) is blood-like: :class:`RvSide`, not yet judged."""
    img, cls = np.asarray(image, np.float32), np.asarray(classes)
    dirs = [v for k in range(cls.shape[0]) if (v := _slice_direction(img[k], cls[k], spacing)) is not None]
    if not dirs:
        return RvSide(None, 0.0, 0, why="no slice with a cavity, a wall and tissue beside it")
    m = np.mean(dirs, axis=0)
    agreement = float(np.linalg.norm(m))
    return RvSide(m / agreement if agreement > 1e-9 else None, agreement, len(dirs))


def judge_rv_side(obs: RvSide, expected: np.ndarray | None, why_not: str = "") -> RvSide:
    """``obs`` judged against the ``expected`` direction (d_row, d_col; from :func:`lgenet.io.geometry.rv_direction`,
    ``why_not`` its reason when None)."""
    if expected is None:
        return RvSide(obs.direction, obs.agreement, obs.slices, UNKNOWN, why=why_not or "no patient geometry")
    if obs.direction is None:
        return RvSide(obs.direction, obs.agreement, obs.slices, UNKNOWN, why=obs.why or "no direction")
    e = np.asarray(expected, float) / float(np.linalg.norm(expected))
    off = math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(obs.direction, e))))))
    if obs.agreement < MIN_AGREEMENT:
        why = f"the slices point different ways (agreement {obs.agreement:.2f} < {MIN_AGREEMENT})"
        return RvSide(obs.direction, obs.agreement, obs.slices, UNKNOWN, off, why)
    verdict = INCONSISTENT if off > MAX_OFF_DEG else CONSISTENT
    return RvSide(obs.direction, obs.agreement, obs.slices, verdict, off)
