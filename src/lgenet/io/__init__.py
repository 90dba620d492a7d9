"""Image readers: one 2-D frame (or a stack) and *safe* metadata from DICOM, NIfTI, PNG or TIFF.

>>> frame, meta = read_frame("P001/series_07")           # doctest: +SKIP
>>> frame.dtype, frame.ndim, meta["format"], meta["slice_index"] == meta["n_slices"] - 1
(dtype('float32'), 2, 'dicom-series', True)

What a path is decides the reader:

=========================================  ===============================================
a folder                                   DICOM series (one series, sorted along its normal)
``*.nii`` / ``*.nii.gz``                   NIfTI 2-D image or 3-D stack
``*.png`` / ``*.tif`` / ``*.tiff``         raster image (Pillow)
``DICM`` preamble, or ``.dcm/.dicom/.ima``  DICOM file (single or multi-frame)
=========================================  ===============================================

Stacks always come out **apex -> base**: index -1 is the basal slice and an integer ``slice``
counts in that order for every format (for NIfTI with the default ``nifti_basal_end='last'`` it
is the stored index). How the base is found for DICOM is documented in :mod:`lgenet.io.dicom`
and reported in ``meta['basal_rule']``. The metadata keys are listed in :mod:`lgenet.io.meta`;
no identifying header field or file name ever leaves this package.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from lgenet.errors import LgenetError, ReaderError
from lgenet.io.dicom import dicom_files_in, looks_like_dicom, read_dicom_frame, read_dicom_volume
from lgenet.io.meta import META_KEYS, check_slice
from lgenet.io.nifti import is_nifti_name, read_nifti_frame, read_nifti_volume
from lgenet.io.raster import raster_format, read_raster

__all__ = ["read_frame", "read_volume", "detect_format", "SUPPORTED_KINDS", "META_KEYS"]

SUPPORTED_KINDS = (
    "a DICOM file (.dcm, .dicom, .ima or any file with the DICM preamble)",
    "a folder holding one DICOM series",
    "a NIfTI image (.nii, .nii.gz)",
    "a PNG or TIFF image (.png, .tif, .tiff)",
)


def _unsupported(path: Path, why: str) -> ReaderError:
    kinds = "; ".join(SUPPORTED_KINDS)
    return ReaderError(f"{path}: {why}. Supported inputs: {kinds}.")


def detect_format(path: str | Path) -> str:
    """Which reader handles ``path``: 'dicom-series', 'nifti', 'png', 'tiff' or 'dicom'.

    Cheap (reads at most 132 bytes per file). Raises :class:`ReaderError` when the path does not
    exist or is not a supported kind (the message lists the supported kinds).
    """
    p = Path(path)
    if not p.exists():
        raise ReaderError(f"{p}: no such file or folder")
    if p.is_dir():
        files, _ = dicom_files_in(p)
        if not files:
            subdirs = sum(1 for q in p.iterdir() if q.is_dir() and not q.name.startswith("."))
            hint = (
                f" (it has {subdirs} subfolder{'s' if subdirs != 1 else ''}: point at the series folder itself)"
                if subdirs
                else ""
            )
            raise _unsupported(p, f"folder holds no DICOM files{hint}")
        return "dicom-series"
    if is_nifti_name(p):
        return "nifti"
    fmt = raster_format(p)
    if fmt is not None:
        return fmt
    if looks_like_dicom(p):
        return "dicom"
    suffix = "".join(p.suffixes[-2:]) or "no suffix"
    raise _unsupported(p, f"unsupported image kind ({suffix}, and no DICOM 'DICM' preamble)")


def _guarded(fn):
    """Any failure of a reader's library becomes a :class:`ReaderError` naming the file (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(path, *args, **kwargs):
        try:
            return fn(path, *args, **kwargs)
        except LgenetError:
            raise
        except MemoryError:
            raise ReaderError(f"{path}: the image is too large to read into memory") from None
        except RecursionError:
            raise ReaderError(f"{path}: the file's structure is too deeply nested to read (corrupt?)") from None
        except Exception as exc:  # noqa: BLE001 - a library's own error on a file it cannot read
            raise ReaderError(
                f"{path}: the file could not be read as an image ({type(exc).__name__}); it is "
                "corrupt or not of the kind its name says"
            ) from None

    return wrapper


@_guarded
def read_frame(
    path: str | Path,
    *,
    slice: str | int = "basal",
    nifti_slice_axis: int = 2,
    nifti_basal_end: str = "last",
) -> tuple[np.ndarray, dict]:
    """Read one 2-D frame as float32 ``(H, W)`` plus safe metadata.

    Args:
        path: DICOM file, DICOM series folder, NIfTI, PNG or TIFF (see the module docstring).
        slice: ``'basal'`` or an integer index into the stack ordered apex->base (negative
            indices count from the base: -1 = basal). 2-D images accept 'basal', 0 and -1.
        nifti_slice_axis: NIfTI axis along which the slices lie (0, 1 or 2).
        nifti_basal_end: ``'last'`` (EMIDEC: last stored index = base) or ``'first'``.

    Returns:
        ``(frame, meta)``; ``meta`` holds only the keys in :data:`META_KEYS`.

    Raises:
        ReaderError: unsupported, unreadable or non-image file; index out of range; a DICOM
            stack whose base cannot be found (then give an explicit integer ``slice``).
        ConfigError: ``slice``/``nifti_*`` arguments of the wrong kind.
    """
    sel = check_slice(slice)
    p = Path(path)
    fmt = detect_format(p)
    if fmt in ("dicom", "dicom-series"):
        return read_dicom_frame(p, sel)
    if fmt == "nifti":
        return read_nifti_frame(p, sel, slice_axis=nifti_slice_axis, basal_end=nifti_basal_end)
    frame, meta = read_raster(p)
    if sel != "basal" and sel not in (0, -1):
        raise ReaderError(
            f"{p}: slice index {sel} is out of range: a {fmt.upper()} image holds 1 slice "
            "(valid indices 0 or -1, or 'basal')"
        )
    return frame, meta


@_guarded
def read_volume(
    path: str | Path, *, nifti_slice_axis: int = 2, nifti_basal_end: str = "last"
) -> tuple[np.ndarray, dict]:
    """Read the whole stack as float32 ``(S, H, W)`` ordered apex->base (index -1 = basal).

    A single 2-D image gives ``S = 1``. ``meta['slice_index']`` is None. ``read_volume(p)[0][k]``
    equals ``read_frame(p, slice=k)[0]``. Raises :class:`ReaderError` when a DICOM stack cannot be
    ordered apex->base (no geometry, or not short-axis-like).
    """
    p = Path(path)
    fmt = detect_format(p)
    if fmt in ("dicom", "dicom-series"):
        return read_dicom_volume(p)
    if fmt == "nifti":
        return read_nifti_volume(p, slice_axis=nifti_slice_axis, basal_end=nifti_basal_end)
    frame, meta = read_raster(p)
    meta = {**meta, "shape": (1, *frame.shape), "slice_index": None}
    return frame[None], meta
