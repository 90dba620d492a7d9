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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.errors import ConfigError, ReaderError
from lgenet.io.meta import build_meta, select_index

__all__ = [
    "NIFTI_SUFFIXES",
    "NiftiVolume",
    "geometry_difference",
    "is_nifti_name",
    "load_nifti",
    "read_nifti_frame",
    "read_nifti_volume",
    "write_label_volume",
    "write_nifti_like",
]

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


@dataclass(frozen=True)
class NiftiVolume:
    """A NIfTI image as stored, and its short-axis stack.

    ``data`` is the voxel array in stored axis order, 2-D or 3-D (dimensions of size 1 after the
    third are dropped); ``zooms`` the voxel size (mm) along the three stored axes (1.0 where the
    header has none); ``image`` the nibabel image (header and affine), ``shape`` the stored shape.
    The stack convention (one home for every reader of NIfTI pairs): :meth:`stack` gives
    ``(S, a, b)`` apex -> base, with ``(a, b)`` the two stored axes other than the slice axis in
    their stored order; a 2-D image is one slice (its slice axis is 2, whatever was asked).
    """

    path: Path
    image: Any
    data: np.ndarray
    zooms: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.image.shape)

    def slice_axis(self, slice_axis: int) -> int:
        """The stored axis the slices lie along: ``slice_axis``, or 2 for a 2-D image."""
        return 2 if self.data.ndim == 2 else slice_axis

    def stack(self, slice_axis: int = 2, basal_end: str = "last", of: np.ndarray | None = None) -> np.ndarray:
        """``(S, a, b)`` ordered apex -> base (``basal_end='first'`` reverses the stored order) of the
        image's data, or of ``of``, an array shaped like ``data`` (e.g. a mask derived from it)."""
        data = self.data if of is None else np.asarray(of)
        if data.ndim == 2:
            return data[None]
        st = np.moveaxis(data, slice_axis, 0)
        return st[::-1] if basal_end == "first" else st

    def spacing(self, slice_axis: int = 2) -> tuple[float, float, float]:
        """The voxel size (mm) along the axes of :meth:`stack`: ``(dz, da, db)``."""
        ax = self.slice_axis(slice_axis)
        return (self.zooms[ax], *(z for i, z in enumerate(self.zooms) if i != ax))

    def unstack(self, stack: np.ndarray, slice_axis: int = 2, basal_end: str = "last") -> np.ndarray:
        """The inverse of :meth:`stack`: an ``(S, a, b)`` apex -> base array back in stored axis order and shape."""
        st = np.asarray(stack)
        st = st[::-1] if basal_end == "first" else st
        return np.moveaxis(st, 0, self.slice_axis(slice_axis)).reshape(self.shape)


def _problem(p: Path, what: str | None, kind: str, exc: BaseException | None = None) -> ReaderError:
    """The reader's refusals. ``what`` (e.g. ``'case P01: mask'``) names the file's role for the dataset
    readers; without it the image readers' wording is used."""
    detail = f"{type(exc).__name__}: {exc}" if exc is not None else ""
    if what:
        text = {
            "suffix": "is not a NIfTI file (expected .nii or .nii.gz)",
            "missing": "does not exist",
            "open": f"could not be read as NIfTI ({detail})",
            "data": f"could not be read as NIfTI ({detail})",
        }[kind]
        return ReaderError(f"{what} {p} {text}")
    text = {
        "suffix": "is not a NIfTI file (expected .nii or .nii.gz)",
        "missing": "no such file",
        "open": f"NIfTI file is unreadable (corrupt, truncated or not NIfTI?): {detail}",
        "data": f"NIfTI voxel data are unreadable (truncated?): {detail}",
    }[kind]
    return ReaderError(f"{p}: {text}")


def _stored_pixdims(img: Any, p: Path) -> np.ndarray:
    """``pixdim[1..3]`` as stored in the file: nibabel's header check replaces 0 by 1 and a negative
    size by its absolute value when it loads a header, so the raw header is read again unchecked."""
    from nibabel.openers import ImageOpener

    with ImageOpener(str(p)) as f:
        raw = type(img.header).from_fileobj(f, check=False)
    return np.asarray(raw["pixdim"][1:4], dtype=np.float64)


def _bad_zooms(img: Any, p: Path, ndim: int) -> list[int]:
    """The stored axes (of the first ``ndim``) whose voxel size is 0, negative or not finite."""
    try:
        pix = _stored_pixdims(img, p)
    except Exception:  # a header nibabel read once reads again; anything else is caught by the data read
        return []
    return [i for i in range(min(ndim, 3)) if not (np.isfinite(pix[i]) and pix[i] > 0)]


def _bad_zoom_text(head: str, img: Any, p: Path, bad: list[int], hint: str) -> str:
    pix = _stored_pixdims(img, p)
    shown = ", ".join(f"{v:g}" for v in pix)
    return (
        f"{head} the NIfTI header gives the voxel size (pixdim[1..3]) as ({shown}) mm: stored "
        f"ax{'es' if len(bad) > 1 else 'is'} {', '.join(map(str, bad))} "
        f"{'have' if len(bad) > 1 else 'has'} a size of 0, negative or NaN, which is not a voxel size "
        f"(it would be read as 1 mm and every volume would be wrong). {hint}"
    )


_FIX_ZOOMS = "Write the true voxel size into the header (e.g. nibabel: img.header.set_zooms(...))."


def load_nifti(
    path: str | Path, *, what: str | None = None, dtype: Any = None, unknown_zooms: bool = False
) -> NiftiVolume:
    """Read a NIfTI image (scaling applied; ``dtype`` as for :func:`numpy.asarray`, ``None`` = nibabel's).

    Raises :class:`~lgenet.errors.ReaderError` when the name is not ``.nii``/``.nii.gz``, the file is
    missing or unreadable, its data type is RGB or complex, or it is not 2-D or 3-D, and (since 0.2.0)
    when a voxel size of the header is 0, negative or NaN -- unless ``unknown_zooms``: those sizes are
    then NaN in :attr:`NiftiVolume.zooms` (unknown), for a caller that is given the size otherwise.
    """
    import nibabel as nib

    p = Path(path)
    head = f"{what} {p}:" if what else f"{p}:"
    if not is_nifti_name(p):
        raise _problem(p, what, "suffix")
    if not p.is_file():
        raise _problem(p, what, "missing")
    try:
        img = nib.load(str(p))
        kind = img.get_data_dtype()
        shape = tuple(int(s) for s in img.shape)
        zooms = tuple(float(z) for z in img.header.get_zooms())
    except Exception as exc:  # nibabel raises ImageFileError, EOFError, zlib/gzip errors...
        raise _problem(p, what, "open", exc) from None
    if kind.names is not None or kind.kind == "c":
        raise ReaderError(
            f"{head} NIfTI data type {kind} (RGB or complex) is not supported; save the image "
            "as a scalar (gray) volume."
        )
    kept = shape
    while len(kept) > 3 and kept[-1] == 1:
        kept = kept[:-1]
    if len(kept) not in (2, 3):
        raise ReaderError(
            f"{head} NIfTI image has shape {shape}; lgenet reads 2-D images and 3-D stacks "
            "(a 4-D image is accepted only when its 4th dimension is 1, e.g. not a cine series). "
            "Save the wanted time point as a 3-D volume."
        )
    bad = _bad_zooms(img, p, len(kept))
    if bad and not unknown_zooms:
        raise ReaderError(_bad_zoom_text(head, img, p, bad, _FIX_ZOOMS))
    try:
        data = np.asarray(img.dataobj, dtype=dtype)
    except Exception as exc:
        raise _problem(p, what, "data", exc) from None
    kept_zooms = [float("nan") if i in bad else z for i, z in enumerate((tuple(zooms[:3]) + (1.0, 1.0, 1.0))[:3])]
    return NiftiVolume(path=p, image=img, data=data.reshape(kept), zooms=(kept_zooms[0], kept_zooms[1], kept_zooms[2]))


def _oriented(img: Any) -> bool:
    """The header places the voxels in space (an sform or qform code is set)."""
    h = img.header
    try:
        return int(h["sform_code"]) > 0 or int(h["qform_code"]) > 0
    except (KeyError, ValueError, TypeError):
        return False


def geometry_difference(a: NiftiVolume, b: NiftiVolume, *, tol: float = 1e-3) -> str | None:
    """How the voxel grid of ``b`` differs from that of ``a`` in space, or ``None`` when they agree.

    Compared: the voxel sizes (``tol`` of a voxel): a difference counts when both the headers' sizes (pixdim,
    what lgenet measures with) and the lengths of the affines' axes differ -- some datasets (EMIDEC) leave the
    sform's axes at 1 mm, some tools write a mask's pixdim from the affine --, and when both headers place
    their voxels in space (an sform or qform), the axis directions (a mirrored or rotated axis) and the
    position of the first voxel (``tol`` of the smallest voxel, in mm). Two images whose arrays have the same shape but
    whose grids differ pair the wrong voxels.
    """
    za, zb = np.asarray(a.zooms, float), np.asarray(b.zooms, float)
    ndim = min(a.data.ndim, b.data.ndim)
    unit = float(np.nanmin(np.r_[za[:ndim], zb[:ndim], 1.0]))
    fmt = lambda v: "(" + ", ".join(f"{x:g}" for x in v) + ")"  # noqa: E731
    sizes = np.any(np.abs(za[:ndim] - zb[:ndim]) > tol * np.maximum(za[:ndim], zb[:ndim]))
    oriented = _oriented(a.image) and _oriented(b.image)
    A, B = np.asarray(a.image.affine, float), np.asarray(b.image.affine, float)
    na, nb = np.linalg.norm(A[:3, :3], axis=0), np.linalg.norm(B[:3, :3], axis=0)
    lengths = np.any(np.abs(na - nb)[:ndim] > tol * np.maximum(na, nb)[:ndim])
    if sizes and (lengths or not oriented):
        return f"voxel size {fmt(zb[:ndim])} mm instead of {fmt(za[:ndim])} mm"
    if not oriented:
        return None
    da, db = A[:3, :3] / np.where(na > 0, na, 1.0), B[:3, :3] / np.where(nb > 0, nb, 1.0)
    if np.any(np.abs(da - db) > tol):
        flipped = [i for i in range(3) if float(np.dot(da[:, i], db[:, i])) < -0.5]
        if flipped:
            return f"mirrored along stored axis {', '.join(map(str, flipped))} (the affine's direction is reversed)"
        return "rotated (the affine's axis directions differ)"
    shift = B[:3, 3] - A[:3, 3]
    if float(np.linalg.norm(shift)) > tol * unit:
        return f"shifted by {float(np.linalg.norm(shift)):.3g} mm (origin {fmt(np.round(B[:3, 3], 3))} instead of {fmt(np.round(A[:3, 3], 3))})"
    return None


def write_nifti_like(path: str | Path, stored: np.ndarray, ref: Any, dtype: Any) -> Path:
    """Write ``stored`` (an array in the stored axis order of the image ``ref``) as NIfTI with ``ref``'s
    affine and header, data type ``dtype`` and no intensity scaling; atomically."""
    import nibabel as nib

    from lgenet.utils import atomic_path

    header = ref.header.copy()
    header.set_data_dtype(dtype)
    out = nib.Nifti1Image(np.asarray(stored).astype(dtype), ref.affine, header)
    out.header.set_slope_inter(1.0, 0.0)
    path = Path(path)
    with atomic_path(path) as tmp:
        nib.save(out, str(tmp))
    return path


def _load(path: Path, slice_axis: int, basal_end: str):
    """Return the volume as an (a, b, S) float64 array apex -> base, the in-plane spacing, the slice
    thickness, the basal rule and the bits per voxel."""
    vol = load_nifti(path, dtype=np.float64, unknown_zooms=True)
    bad = [i for i, z in enumerate(vol.zooms[: vol.data.ndim]) if not np.isfinite(z)]
    ax = vol.slice_axis(slice_axis)
    if ax in bad and vol.data.ndim == 3:  # the slice thickness has no option to give it
        raise ReaderError(_bad_zoom_text(f"{path}:", vol.image, path, bad, _FIX_ZOOMS))
    if vol.data.ndim == 2:
        rule = "2-D NIfTI image: used as given (no stack to choose from)"
        thickness = None
    else:
        thickness = vol.zooms[slice_axis]
        rule = (
            f"NIfTI stored order along axis {slice_axis} with nifti_basal_end='{basal_end}' "
            f"({basal_end} stored index = base)"
        )
    st = vol.stack(slice_axis, basal_end)
    if not np.all(np.isfinite(st)):
        raise ReaderError(f"{path}: NIfTI image holds NaN or infinite values.")
    _, da, db = vol.spacing(slice_axis)
    notes = [PIXEL_SIZE_UNKNOWN] if bad else []
    bits = vol.image.get_data_dtype().itemsize * 8
    return np.moveaxis(st, 0, 2), (db, da), thickness, rule, bits, notes, _stack_affine(vol, slice_axis, basal_end)


def _stack_affine(vol: NiftiVolume, slice_axis: int, basal_end: str) -> np.ndarray | None:
    """The map of the stack's voxel (column, row, slice apex -> base) to RAS+ mm, as ``meta['affine']`` holds it for
    DICOM stacks (since 0.3.0), when the header places the voxels in space; None otherwise. The axes are the
    header's as stored: a placeholder affine stays one, and :func:`lgenet.io.geometry.patient_axes` says so."""
    if vol.data.ndim != 3 or not _oriented(vol.image):
        return None
    a = np.asarray(vol.image.affine, np.float64)
    ax = vol.slice_axis(slice_axis)
    col, row = (i for i in range(3) if i != ax)  # the stack's columns are the first other stored axis
    out = np.eye(4)
    out[:3, 0], out[:3, 1], out[:3, 2], out[:3, 3] = a[:3, col], a[:3, row], a[:3, ax], a[:3, 3]
    if basal_end == "first":  # apex -> base runs against the stored order
        out[:3, 3] = a[:3, 3] + (vol.data.shape[ax] - 1) * a[:3, ax]
        out[:3, 2] = -a[:3, ax]
    return out


#: the note of a NIfTI image whose header gives an in-plane voxel size of 0, negative or NaN
PIXEL_SIZE_UNKNOWN = "the NIfTI header's in-plane voxel size (pixdim) is 0, negative or NaN: pixel size unknown"


def read_nifti_frame(
    path: str | Path, sel: str | int = "basal", *, slice_axis: int = 2, basal_end: str = "last"
) -> tuple[np.ndarray, dict]:
    """One (rows, cols) float32 frame; ``sel`` is 'basal' or an index in apex->base order."""
    path = Path(path)
    ax = _check_params(slice_axis, basal_end)
    vol, spacing, thick, rule, bits, notes, _ = _load(path, ax, basal_end)
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
        notes=notes,
    )
    return frame, meta


def read_nifti_volume(path: str | Path, *, slice_axis: int = 2, basal_end: str = "last") -> tuple[np.ndarray, dict]:
    """The stack as float32 (S, rows, cols), apex->base."""
    path = Path(path)
    ax = _check_params(slice_axis, basal_end)
    vol, spacing, thick, rule, bits, notes, affine = _load(path, ax, basal_end)
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
        notes=notes,
        affine=affine,
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
        ref = load_nifti(src, unknown_zooms=True)  # its header and affine only
        ax = _check_params(slice_axis, basal_end) if ref.data.ndim == 3 else 2
        stored = ref.unstack(np.transpose(st, (0, 2, 1)), ax, basal_end)  # (S, rows, cols) -> (S, a, b)
        return write_nifti_like(path, stored, ref.image, dtype)
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
