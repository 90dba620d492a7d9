"""The basal rule: ordering the slices of a stack apex -> base from their patient geometry.

Slices are sorted along the slice normal ``n = row_dir x col_dir`` (from Image Orientation
(Patient)) by ``s = p . n`` (``p`` = Image Position (Patient)). In DICOM patient coordinates (LPS:
+x left, +y posterior, +z superior) the LV apex points left-anterior-inferior,
``a = (1, -1, -1)/sqrt(3)``; the base is the end of the stack lying furthest toward
right-posterior-superior, i.e. the slice with the smallest ``p . a``. The result is apex -> base
(index -1 = basal).

Nothing is guessed:

* ``|n . a| < 0.1`` (not a short-axis-like stack): :class:`ReaderError`, unless the caller has an
  explicit index, which then counts along ``+n`` (ascending ``s``);
* orientation/position missing: :class:`ReaderError`, unless explicit, which then counts in the
  caller's fallback order (InstanceNumber, or frame order inside a multi-frame file);
* non-parallel slices, or two slices at the same position: :class:`ReaderError`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from lgenet.errors import ReaderError

__all__ = [
    "APEX_DIRECTION",
    "LV_TO_RV_RAS",
    "OBLIQUE_MAX_COS",
    "SLICE_GAP_NOTE",
    "order_apex_to_base",
    "patient_axes",
    "rv_direction",
    "slice_gap_note",
    "slice_normal",
]

#: Unit vector toward the LV apex in DICOM patient coordinates (LPS): left-anterior-inferior.
APEX_DIRECTION = np.array([1.0, -1.0, -1.0]) / np.sqrt(3.0)
MIN_SAX_COS = 0.1  # |n . a| below this: stack not short-axis-like
MIN_PARALLEL_COS = 0.99  # normals more than ~8 degrees apart: not one stack
SAME_POSITION_MM = 0.01

RULE_GEOMETRY = (
    "DICOM geometry: slices sorted along the slice normal; base = end furthest toward "
    "right-posterior-superior (smallest p.a, a = (1,-1,-1)/sqrt(3) in LPS)"
)

#: a slice normal within 15 deg of a patient axis: not an oblique short-axis plane (placeholder geometry, as in
#: data sets stored with diagonal affines, EMIDEC's among them)
OBLIQUE_MAX_COS = float(np.cos(np.radians(15.0)))
#: from the LV toward the RV in RAS+: the patient's right and anterior (LPS (-1, -1, 0)/sqrt 2); the septal plane
#: lies ~45 deg from the sagittal plane, the angle of the left anterior oblique view that shows it edge-on
LV_TO_RV_RAS = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)
ANTERIOR_RAS = np.array([0.0, 1.0, 0.0])


def patient_axes(affine) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | str:
    """(column step, row step, septal direction, anterior direction) in RAS from a stack's voxel -> RAS+
    ``affine`` (its columns: column index, row index, slice apex -> base; ``meta['affine']``), the two directions
    projected on the slice plane and orthonormal; or, as a string, why the geometry gives no patient axes
    (none, degenerate, or not an oblique plane, as placeholder affines are)."""
    if affine is None:
        return "the stack has no patient geometry"
    a = np.asarray(affine, float)[:3, :3]
    e_col, e_row = a[:, 0], a[:, 1]
    normal = np.cross(e_col, e_row)
    if np.linalg.norm(normal) < 1e-9:
        return "the stack's geometry is degenerate"
    normal /= np.linalg.norm(normal)
    if float(np.max(np.abs(normal))) > OBLIQUE_MAX_COS:
        return (
            "the stack's geometry is not an oblique short-axis plane (its normal lies within 15 deg of a patient "
            "axis, as with placeholder affines): it gives no patient axes"
        )
    sep = LV_TO_RV_RAS - float(np.dot(LV_TO_RV_RAS, normal)) * normal
    if np.linalg.norm(sep) < 0.2:
        return "the patient's right-anterior direction lies nearly along the slice normal"
    sep /= np.linalg.norm(sep)
    ant = ANTERIOR_RAS - float(np.dot(ANTERIOR_RAS, normal)) * normal - float(np.dot(ANTERIOR_RAS, sep)) * sep
    if np.linalg.norm(ant) < 1e-6:
        return "the anterior direction lies along the septal direction"
    return e_col, e_row, sep, ant / np.linalg.norm(ant)


def rv_direction(affine, spacing: tuple[float, float]) -> tuple[np.ndarray | None, str]:
    """Where the RV should lie on the slice, from the patient axes of ``affine``: a unit vector ``(d_row, d_col)``
    in millimetres on the array (rows down, columns right; ``spacing`` = (row, col) mm), or ``(None, why)``."""
    axes = patient_axes(affine)
    if isinstance(axes, str):
        return None, axes
    e_col, e_row, sep, _ = axes
    # voxel steps (columns, rows) that move along the septal direction, then in mm on the array
    d_col, d_row = np.linalg.lstsq(np.column_stack([e_col, e_row]), sep, rcond=None)[0]
    v = np.array([d_row * float(spacing[0]), d_col * float(spacing[1])])
    n = float(np.linalg.norm(v))
    if n < 1e-9:
        return None, "the stack's geometry is degenerate"
    return v / n, ""


#: how the note of a stack with a missing slice begins (:func:`slice_gap_note`)
SLICE_GAP_NOTE = "slice positions have a gap"
#: a step between neighbouring slices longer than this multiple of the median step is a gap
SLICE_GAP_FACTOR = 1.5


def slice_gap_note(positions: Sequence[np.ndarray | None], orientation: np.ndarray | None) -> str | None:
    """A note when slices of an ordered stack are missing: a step between neighbouring slice positions
    (along the slice normal) longer than :data:`SLICE_GAP_FACTOR` times the median step; else None.
    Slices are counted 1.. in the given (apex -> base) order."""
    n = slice_normal(orientation)
    if n is None or len(positions) < 3 or any(p is None for p in positions):
        return None
    s = np.array([float(np.dot(p, n)) for p in positions])
    steps = np.abs(np.diff(s))
    med = float(np.median(steps))
    if med <= 0:
        return None
    wide = [int(i) for i in np.nonzero(steps > SLICE_GAP_FACTOR * med)[0]]
    if not wide:
        return None
    where = ", ".join(f"{i + 1}-{i + 2} ({steps[i]:.1f} mm)" for i in wide[:5])
    missing = int(sum(round(steps[i] / med) - 1 for i in wide))
    return (
        f"{SLICE_GAP_NOTE} between slices {where} against a median step of {med:.1f} mm: about "
        f"{max(missing, 1)} slice(s) missing, so whole-LV volumes and burdens count only the slices present"
    )


def slice_normal(orientation: np.ndarray | None) -> np.ndarray | None:
    """Unit ``row x col`` from the 6 Image Orientation (Patient) values, or None if degenerate."""
    if orientation is None:
        return None
    n = np.cross(orientation[:3], orientation[3:])
    norm = float(np.linalg.norm(n))
    return n / norm if norm > 1e-6 else None


def order_apex_to_base(
    positions: Sequence[np.ndarray | None],
    orientations: Sequence[np.ndarray | None],
    *,
    where: str | Path,
    explicit: bool,
    fallback_keys: Sequence[Hashable | None],
    fallback_name: str,
) -> tuple[list[int], str, float | None]:
    """Indices of the slices in apex->base order, the rule used, and the median slice spacing.

    Args:
        positions, orientations: per slice, (3,) and (6,) arrays or None when missing.
        where: file/folder named in error messages.
        explicit: the caller has an explicit integer index, so a direction-less order is
            acceptable (geometry missing, or stack not short-axis-like).
        fallback_keys: sort keys used when geometry is missing (None = key missing).
        fallback_name: how that order is described ("InstanceNumber order", "frame order").
    """
    n_slices = len(positions)
    if n_slices == 1:
        return [0], "single image: used as given (no stack to choose from)", None
    normals = [slice_normal(o) for o in orientations]
    if any(p is None for p in positions) or any(n is None for n in normals):
        return _fallback(fallback_keys, fallback_name, where, explicit)

    n0 = normals[0]
    cos = np.abs([float(np.dot(n, n0)) for n in normals])
    if cos.min() < MIN_PARALLEL_COS:
        angle = np.degrees(np.arccos(min(1.0, float(cos.min()))))
        raise ReaderError(
            f"{where}: the images are not parallel slices of one stack (slice normals differ by "
            f"up to {angle:.0f} degrees; a localizer or another view may be mixed in). Keep one "
            "short-axis stack per folder."
        )
    s = np.array([float(np.dot(p, n0)) for p in positions])
    order = np.argsort(s, kind="stable")
    gaps = np.diff(s[order])
    if np.any(gaps < SAME_POSITION_MM):
        n_dup = int(np.sum(gaps < SAME_POSITION_MM)) + 1
        raise ReaderError(
            f"{where}: {n_dup} images share the same slice position (duplicate positions: "
            "several cine phases, inversion times or repeated acquisitions?). Keep one image "
            "per slice position."
        )
    spacing = float(np.median(gaps))
    c = float(np.dot(n0, APEX_DIRECTION))
    if abs(c) < MIN_SAX_COS:
        if explicit:
            rule = (
                "stack is not short-axis-like (|n.a| < 0.1), so apex/base is unknown; the "
                "explicit index counts along the slice normal n = row x col (ascending p.n)"
            )
            return [int(i) for i in order], rule, spacing
        raise ReaderError(
            f"{where}: cannot tell the base from the apex: the slice normal is almost "
            f"perpendicular to the expected LV long axis (|n.a| = {abs(c):.2f} < {MIN_SAX_COS}),"
            " so this does not look like a short-axis stack. Give an explicit integer 'slice' "
            "index in the manifest (it then counts along the slice normal, ascending p.n)."
        )
    # ascending s moves toward the apex when n.a > 0, so apex->base is then descending s
    idx = order[::-1] if c > 0 else order
    return [int(i) for i in idx], RULE_GEOMETRY, spacing


def _fallback(keys, name: str, where, explicit: bool):
    if not explicit:
        raise ReaderError(
            f"{where}: slice orientation/position tags (Image Orientation/Position (Patient)) are "
            "missing, so the basal slice cannot be found. Give an explicit integer 'slice' index "
            f"in the manifest; it will count in {name} (apex/base direction unknown)."
        )
    if any(k is None for k in keys) or len(set(keys)) != len(keys):
        raise ReaderError(
            f"{where}: slice geometry is missing and the {name} is missing or repeats, so the "
            "slices cannot be ordered. Point the manifest at a single DICOM file instead."
        )
    idx = sorted(range(len(keys)), key=lambda i: keys[i])
    rule = f"no slice geometry: explicit index counts in {name} (apex/base direction unknown)"
    return idx, rule, None
