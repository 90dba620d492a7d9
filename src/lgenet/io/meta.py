"""Helpers shared by the readers: the safe-metadata whitelist, slice selection, colour -> gray.

Safe metadata
-------------
Every reader returns ``(array, meta)`` where ``meta`` is built by :func:`build_meta` and holds
*only* the keys in :data:`META_KEYS`, all plain Python values (JSON-serialisable):

===================  ==========================================================================
``format``           ``'dicom'``, ``'dicom-series'``, ``'nifti'``, ``'png'`` or ``'tiff'``
``source_kind``      ``'file'``, ``'multiframe-file'`` (one DICOM holding a stack) or ``'folder'``
``shape``            shape of the returned array: ``(H, W)`` or ``(S, H, W)``
``pixel_spacing``    ``(row, col)`` spacing in mm, or ``None`` when unknown (PNG/TIFF)
``slice_index``      chosen index in apex->base order (``None`` for :func:`read_volume`)
``n_slices``         number of slices in the stack the frame was taken from (1 for 2-D images)
``slice_thickness``  mm or ``None``
``slice_spacing``    median centre-to-centre distance between sorted slices (mm) or ``None``
``modality``         DICOM Modality code (e.g. ``'MR'``) or ``None``
``photometric``      DICOM Photometric Interpretation / Pillow mode as read, or ``None``
``bits``             bits per stored sample (DICOM BitsStored, raster bit depth, NIfTI dtype)
``basal_rule``       one sentence saying how the stack was ordered and the base chosen
``notes``            list of short remarks (colour converted to gray, files ignored...)
``affine``           stacks from DICOM geometry, and NIfTI stacks whose header places the voxels in
                     space (since 0.3.0): 4x4 map of voxel (col, row, slice apex->base)
                     to RAS+ mm (as a NIfTI affine), or ``None``
===================  ==========================================================================

File names, folder names and every other header field (patient name/ID, dates, UIDs,
institution...) are never copied: file names can themselves hold identifiers.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.errors import ConfigError, ReaderError

__all__ = [
    "META_KEYS",
    "FORMATS",
    "build_meta",
    "safe_code",
    "check_slice",
    "parse_slice",
    "select_index",
    "luminance",
]

META_KEYS = (
    "format",
    "source_kind",
    "shape",
    "pixel_spacing",
    "slice_index",
    "n_slices",
    "slice_thickness",
    "slice_spacing",
    "modality",
    "photometric",
    "bits",
    "basal_rule",
    "notes",
    "affine",
)
FORMATS = ("dicom", "dicom-series", "nifti", "png", "tiff")
_SOURCE_KINDS = ("file", "multiframe-file", "folder")

# DICOM code strings (CS) are upper-case letters, digits, space and underscore, <= 16 chars.
_CODE_RE = re.compile(r"^[A-Z0-9_ ;]{1,16}$")
# ITU-R BT.601 luma weights (what Pillow's convert('L') uses).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def _opt_float(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def safe_code(value: Any) -> str | None:
    """Return ``value`` as a short code string if it looks like a DICOM CS value, else ``None``.

    Used for Modality and Photometric Interpretation so that a malformed header cannot smuggle
    free text (which could hold identifiers) into the metadata.
    """
    if value is None:
        return None
    text = str(value).strip().upper()
    return text if _CODE_RE.match(text) else None


def _affine(a: Any) -> list[list[float]] | None:
    if a is None:
        return None
    m = np.asarray(a, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        return None
    return [[float(v) for v in row] for row in m]


def build_meta(
    *,
    format: str,
    source_kind: str,
    shape: Iterable[int],
    n_slices: int,
    basal_rule: str,
    slice_index: int | None = None,
    pixel_spacing: Iterable[float] | None = None,
    slice_thickness: float | None = None,
    slice_spacing: float | None = None,
    modality: Any = None,
    photometric: Any = None,
    bits: int | None = None,
    notes: Iterable[str] = (),
    affine: Any = None,
) -> dict:
    """Assemble the whitelisted metadata dict (see the module docstring); nothing else gets in.

    One keyword-only parameter per key of :data:`META_KEYS` (hence more than 8): the signature *is*
    the whitelist, so a reader cannot pass a field that is not on it, and each reader names the
    keys it knows.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    if source_kind not in _SOURCE_KINDS:
        raise ValueError(f"source_kind must be one of {_SOURCE_KINDS}, got {source_kind!r}")
    spacing = None
    if pixel_spacing is not None:
        vals = [_opt_float(v) for v in pixel_spacing]
        if len(vals) == 2 and all(v is not None and v > 0 for v in vals):
            spacing = (vals[0], vals[1])
    meta = {
        "format": format,
        "source_kind": source_kind,
        "shape": tuple(int(s) for s in shape),
        "pixel_spacing": spacing,
        "slice_index": None if slice_index is None else int(slice_index),
        "n_slices": int(n_slices),
        "slice_thickness": _opt_float(slice_thickness),
        "slice_spacing": _opt_float(slice_spacing),
        "modality": safe_code(modality),
        "photometric": safe_code(photometric),
        "bits": None if bits is None else int(bits),
        "basal_rule": str(basal_rule),
        "notes": [str(n) for n in notes],
        "affine": _affine(affine),
    }
    assert tuple(meta) == META_KEYS  # internal invariant, not user input
    return meta


def check_slice(sel: Any) -> str | int:
    """Validate a ``slice`` argument: ``'basal'`` or an integer. Returns the normalised value."""
    if isinstance(sel, str):
        if sel.strip().lower() == "basal":
            return "basal"
    elif not isinstance(sel, (bool, np.bool_)):
        try:
            return operator.index(sel)
        except TypeError:
            pass
    raise ConfigError(f"slice must be 'basal' or an integer index (apex->base order, -1 = basal), got {sel!r}")


def parse_slice(text: Any) -> str | int:
    """``'basal'`` or an integer from user text (``'3'``, ``'-1'``) or a value; a clear error otherwise."""
    if isinstance(text, str):
        t = text.strip()
        if t.lower() == "basal":
            return "basal"
        try:
            return int(t)
        except ValueError:
            raise ConfigError(
                f"slice must be 'basal' or an integer index (apex->base order, -1 = basal), got {text!r}"
            ) from None
    return check_slice(text)


def select_index(n: int, sel: str | int, path: str | Path) -> int:
    """Resolve ``sel`` ('basal' or an int, negative counts from the end) against ``n`` slices.

    Slices are in apex->base order, so ``'basal'`` is ``n - 1``.
    """
    if sel == "basal":
        return n - 1
    k = int(sel)
    if not -n <= k < n:
        raise ReaderError(
            f"{path}: slice index {k} is out of range: the stack has {n} slice"
            f"{'s' if n != 1 else ''} (valid indices 0..{n - 1} or -{n}..-1, ordered apex->base;"
            f" use 'basal' for the last one)"
        )
    return k % n


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Gray level of an (..., 3) or (..., 4) RGB(A) array by BT.601 luma; alpha is ignored."""
    rgb = np.asarray(rgb)
    return (rgb[..., :3].astype(np.float64) @ _LUMA).astype(np.float32)
