"""NIfTI reader (nibabel): 2-D images and 3-D stacks of 2-D slices.

Conventions (no resampling through the affine is done):

* the slices lie along ``nifti_slice_axis`` (default 2); the two remaining axes ``(a, b)`` form
  the frame as ``frame = data[..., k].T``, i.e. rows = ``b`` (y) and columns = ``a`` (x) for the
  default axis;
* ``nifti_basal_end='last'`` (default, EMIDEC convention: index 0 apex, last index base) keeps the
  stored order; ``'first'`` reverses it, so frames always come out **apex -> base**;
* a 4-D image is accepted only when its 4th dimension is 1;
* scaling (``scl_slope``/``scl_inter``) is applied; ``pixel_spacing`` = (zoom of ``b``,
  zoom of ``a``) in mm; ``slice_thickness`` and ``slice_spacing`` = zoom of the slice axis
  (NIfTI stores only the voxel size).
"""

from __future__ import annotations

import operator
from pathlib import Path

import numpy as np

from lgenet.errors import ConfigError, ReaderError
from lgenet.io.meta import build_meta, select_index

__all__ = ["NIFTI_SUFFIXES", "is_nifti_name", "read_nifti_frame", "read_nifti_volume", "write_label_volume"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_BASAL_ENDS = ("last", "first")


def is_nifti_name(path: str | Path) -> bool:
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def _check_params(slice_axis, basal_end) -> int:
    if basal_end not in _BASAL_ENDS:
        raise ConfigError(f"nifti_basal_end must be 'last' or 'first', got {basal_end!r}")
    try:
        ax = operator.index(slice_axis)
    except TypeError:
        ax = None
    if ax is None or isinstance(slice_axis, bool) or not -3 <= ax <= 2:
        raise ConfigError(f"nifti_slice_axis must be 0, 1 or 2, got {slice_axis!r}")
    return ax % 3


def _load(path: Path, slice_axis: int, basal_end: str):
    """Return (volume proxy as (a, b, S) float array getter, zooms, meta pieces)."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        dtype = img.get_data_dtype()
        shape = tuple(int(s) for s in img.shape)
        zooms = tuple(float(z) for z in img.header.get_zooms())
    except Exception as exc:  # nibabel raises ImageFileError, EOFError, zlib/gzip errors...
        raise ReaderError(
            f"{path}: NIfTI file is unreadable (corrupt, truncated or not NIfTI?): {type(exc).__name__}: {exc}"
        ) from exc
    if dtype.names is not None or dtype.kind == "c":
        raise ReaderError(
            f"{path}: NIfTI data type {dtype} (RGB or complex) is not supported; save the image "
            "as a scalar (gray) volume."
        )
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) not in (2, 3):
        raise ReaderError(
            f"{path}: NIfTI image has shape {shape}; lgenet reads 2-D images and 3-D stacks "
            "(a 4-D image is accepted only when its 4th dimension is 1, e.g. not a cine series). "
            "Save the wanted time point as a 3-D volume."
        )
    try:
        data = np.asarray(img.dataobj, dtype=np.float64)
    except Exception as exc:
        raise ReaderError(f"{path}: NIfTI voxel data are unreadable (truncated?): {type(exc).__name__}: {exc}") from exc
    data = data.reshape(shape)
    zooms = (tuple(zooms) + (1.0, 1.0, 1.0))[:3]
    if data.ndim == 2:
        vol = data[:, :, None]  # (a, b, 1)
        a_ax, b_ax = 0, 1
        rule = "2-D NIfTI image: used as given (no stack to choose from)"
        thickness = None
    else:
        a_ax, b_ax = [i for i in range(3) if i != slice_axis]
        vol = np.moveaxis(data, slice_axis, 2)
        if basal_end == "first":
            vol = vol[:, :, ::-1]
        thickness = zooms[slice_axis]
        rule = (
            f"NIfTI stored order along axis {slice_axis} with nifti_basal_end='{basal_end}' "
            f"({basal_end} stored index = base)"
        )
    if not np.all(np.isfinite(vol)):
        raise ReaderError(f"{path}: NIfTI image holds NaN or infinite values.")
    spacing = (zooms[b_ax], zooms[a_ax])
    return vol, spacing, thickness, rule, dtype.itemsize * 8


def read_nifti_frame(
    path: str | Path, sel: str | int = "basal", *, slice_axis: int = 2, basal_end: str = "last"
) -> tuple[np.ndarray, dict]:
    """One (rows, cols) float32 frame; ``sel`` is 'basal' or an index in apex->base order."""
    path = Path(path)
    ax = _check_params(slice_axis, basal_end)
    vol, spacing, thick, rule, bits = _load(path, ax, basal_end)
    n = vol.shape[2]
    k = select_index(n, sel, path)
    frame = np.ascontiguousarray(vol[:, :, k].T, dtype=np.float32)
    meta = build_meta(
        format="nifti",
        source_kind="file",
        shape=frame.shape,
        pixel_spacing=spacing,
        slice_index=k,
        n_slices=n,
        slice_thickness=thick,
        slice_spacing=thick if n > 1 else None,
        basal_rule=rule,
        bits=bits,
    )
    return frame, meta


def read_nifti_volume(path: str | Path, *, slice_axis: int = 2, basal_end: str = "last") -> tuple[np.ndarray, dict]:
    """The stack as float32 (S, rows, cols), apex->base."""
    path = Path(path)
    ax = _check_params(slice_axis, basal_end)
    vol, spacing, thick, rule, bits = _load(path, ax, basal_end)
    out = np.ascontiguousarray(np.transpose(vol, (2, 1, 0)), dtype=np.float32)
    meta = build_meta(
        format="nifti",
        source_kind="file",
        shape=out.shape,
        pixel_spacing=spacing,
        slice_index=None,
        n_slices=out.shape[0],
        slice_thickness=thick,
        slice_spacing=thick if out.shape[0] > 1 else None,
        basal_rule=rule,
        bits=bits,
    )
    return out, meta


def write_label_volume(
    path: str | Path, stack: np.ndarray, source: str | Path, meta: dict, *, slice_axis: int = 2, basal_end: str = "last"
) -> Path:
    """Write a (S, rows, cols) apex->base label stack as NIfTI aligned with the image it came from.

    * NIfTI source: the inverse of :func:`read_nifti_volume` -- same array shape and the source's
      affine (``slice_axis``/``basal_end`` must be those the stack was read with);
    * DICOM stack with geometry (``meta['affine']``): array (cols, rows, slices apex->base) and that
      affine, the layout DICOM-to-NIfTI converters use;
    * anything else (PNG/TIFF, DICOM without geometry): (cols, rows, slices) with a diagonal affine
      of the pixel size (1 mm when unknown).

    Written atomically; the data type is uint8 (uint16 for label values above 255).
    """
    import nibabel as nib

    from lgenet.utils import atomic_path

    st = np.asarray(stack)
    dtype = np.uint8 if st.size == 0 or int(st.max(initial=0)) <= 255 else np.uint16
    src = Path(source)
    if is_nifti_name(src):
        ref = nib.load(str(src))
        shape = tuple(int(s) for s in ref.shape)
        vol = np.transpose(st, (2, 1, 0))  # (a, b, S)
        if len(shape) == 2:
            arr = vol[:, :, 0]
        else:
            ax = _check_params(slice_axis, basal_end)
            if basal_end == "first":
                vol = vol[:, :, ::-1]
            arr = np.moveaxis(vol, 2, ax)
        arr = arr.reshape(shape)
        header = ref.header.copy()
        header.set_data_dtype(dtype)
        header["scl_slope"], header["scl_inter"] = 1.0, 0.0
        img = nib.Nifti1Image(arr.astype(dtype), ref.affine, header)
    else:
        affine = meta.get("affine")
        if affine is None:
            sp = meta.get("pixel_spacing") or (1.0, 1.0)
            dz = meta.get("slice_spacing") or meta.get("slice_thickness") or 1.0
            affine = np.diag([float(sp[1]), float(sp[0]), float(dz), 1.0])
        img = nib.Nifti1Image(np.transpose(st, (2, 1, 0)).astype(dtype), np.asarray(affine, dtype=np.float64))
    path = Path(path)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path
