# A single-format reader (DICOM files, multi-frame files, series folders): long because ordering a stack is.
"""DICOM reader: single files, multi-frame files and series folders (pydicom >= 3).

Pixel handling
    Pixel data are decoded by pydicom's handlers (compressed transfer syntaxes through
    pylibjpeg), then the Modality LUT / Rescale Slope+Intercept is applied (per-frame functional
    groups first for enhanced multi-frame objects), MONOCHROME1 is inverted so that bright means
    high signal, and colour images (RGB, YBR, PALETTE COLOR) become gray by BT.601 luminance
    (noted in ``meta['notes']``).

Stacks
    A series folder or a multi-frame file is a stack, returned **apex -> base** (index -1 =
    basal) by the rule in :mod:`lgenet.io.geometry`. Positions of a multi-frame file come from
    its per-frame functional groups; without geometry an explicit integer ``slice`` counts in
    InstanceNumber order (frame order inside a multi-frame file), and 'basal' is refused.
    :func:`read_dicom_volume` needs the apex->base order, so it raises wherever 'basal' would.

Series folders
    Read non-recursively; hidden files, non-DICOM files (no ``DICM`` preamble and no
    .dcm/.dicom/.ima suffix) and DICOM objects without pixel data (DICOMDIR, structured reports,
    presentation states) are ignored and counted in notes; a corrupt file is an error. All image
    files must belong to one series (SeriesInstanceUID) and share Rows x Columns.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.errors import ReaderError
from lgenet.io.geometry import order_apex_to_base, slice_gap_note
from lgenet.io.meta import build_meta, luminance, select_index

__all__ = [
    "dicom_source_frames",
    "DICOM_SUFFIXES",
    "has_dicom_preamble",
    "looks_like_dicom",
    "dicom_files_in",
    "read_dicom_frame",
    "read_dicom_volume",
]

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
log = logging.getLogger("lgenet")

#: modalities read as LGE images: MR, and the codes of secondary captures / exports of MR images
_IMAGE_MODALITIES = ("MR", "OT", "SC", "")
_NON_IMAGE_MODALITIES = {
    "SEG": "a DICOM Segmentation (a label map, not an image)",
    "RTSTRUCT": "an RT structure set (contours, not an image)",
    "PR": "a presentation state (display settings, not an image)",
    "SR": "a structured report",
    "KO": "a key-object selection document",
    "REG": "a spatial registration object",
}
_SEG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
}
_PHOTOMETRIC_OK = (
    "MONOCHROME1",
    "MONOCHROME2",
    "RGB",
    "PALETTE COLOR",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_ICT",
    "YBR_RCT",
    "YBR_PARTIAL_420",
    "YBR_PARTIAL_422",
)


@contextlib.contextmanager
def _withhold_identifiers() -> Iterator[None]:
    """pydicom's validation warnings quote header values (UIDs, names...): keep them off every channel.

    Both its ``warnings.warn`` and its ``pydicom`` logger record (which Python would print on stderr)
    are caught inside lgenet's DICOM reading; one neutral line goes to the lgenet log instead.
    """
    count = {"n": 0}

    class _Withhold(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            count["n"] += 1
            return False

    flt = _Withhold()
    pylog = logging.getLogger("pydicom")
    pylog.addFilter(flt)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        pylog.removeFilter(flt)
    n = max(count["n"], len(caught))
    if n:
        log.info(
            "%d DICOM header value(s) did not conform to the standard and were read as they are "
            "(details withheld: they may hold identifiers)",
            n,
        )


def _modality(ds) -> str:
    return str(ds.get("Modality", "") or "").strip().upper()


def _not_an_image(ds) -> str | None:
    """Why a DICOM object with pixel data is still not an LGE MR image, or None."""
    mod = _modality(ds)
    sop = str(ds.get("SOPClassUID", "") or "")
    if sop in _SEG_SOP_CLASSES:
        return f"it is a DICOM {_SEG_SOP_CLASSES[sop]} object (a label map, not an image)"
    if mod in _NON_IMAGE_MODALITIES:
        return f"its Modality is {mod}: {_NON_IMAGE_MODALITIES[mod]}"
    if mod not in _IMAGE_MODALITIES:
        return f"its Modality is {mod}, not MR: lgenet reads LGE MR images"
    try:
        bits = int(ds.get("BitsAllocated", 16) or 16)
    except (TypeError, ValueError):
        bits = 16
    if bits == 1:
        return "its pixels are 1-bit (a binary mask or overlay, not an LGE image)"
    ph = str(ds.get("PhotometricInterpretation", "") or "").strip().upper()
    if ph and ph not in _PHOTOMETRIC_OK:
        return f"its Photometric Interpretation {ph!r} is not a grey or colour image"
    return None


def _not_an_image_error(path: Path, why: str) -> ReaderError:
    return ReaderError(f"{path}: not an LGE image: {why}. Point the manifest at the LGE MR image or series folder.")


# ----------------------------------------------------------------------------- file detection
def has_dicom_preamble(path: str | Path) -> bool:
    """True if ``path`` is a file with the 128-byte preamble followed by ``DICM``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def looks_like_dicom(path: str | Path) -> bool:
    """DICM preamble, or a DICOM suffix (legacy files written without the preamble)."""
    p = Path(path)
    return p.is_file() and (has_dicom_preamble(p) or p.suffix.lower() in DICOM_SUFFIXES)


def dicom_files_in(folder: str | Path) -> tuple[list[Path], int]:
    """Non-hidden DICOM-looking files directly in ``folder`` (sorted) and the number skipped."""
    files, skipped = [], 0
    for p in sorted(Path(folder).iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        if looks_like_dicom(p):
            files.append(p)
        else:
            skipped += 1
    return files, skipped


def _dcmread(path: Path, *, header_only: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    force = not has_dicom_preamble(path)  # legacy files without preamble (suffix matched)
    try:
        # defer_size keeps large elements (pixel data) on disk but leaves their tags visible
        return pydicom.dcmread(path, force=force, defer_size=4096 if header_only else None)
    except InvalidDicomError as exc:
        raise ReaderError(f"{path}: not a valid DICOM file ({exc})") from exc
    except Exception as exc:  # truncated/corrupt files raise many kinds of errors
        # the library's message may quote header values (identifiers): give its kind only
        raise ReaderError(f"{path}: DICOM file is unreadable (corrupt or truncated?): {type(exc).__name__}") from None


def _has_pixels(ds) -> bool:
    return any(t in ds for t in _PIXEL_TAGS)


def _sop_class_name(ds) -> str:
    uid = ds.get("SOPClassUID")
    if uid is None:
        return "unknown SOP class"
    name = getattr(uid, "name", "")
    return name if name and name != str(uid) else f"SOP class {uid}"


def _image_without_pixels(ds) -> bool:
    """An image object (image SOP class, or Rows/Columns) whose pixel data are missing: a truncated file."""
    sop = str(ds.get("SOPClassUID", "") or "")
    image_class = sop.startswith("1.2.840.10008.5.1.4.1.1.") and not sop.startswith(
        (
            "1.2.840.10008.5.1.4.1.1.88.",
            "1.2.840.10008.5.1.4.1.1.11.",
            "1.2.840.10008.5.1.4.1.1.66",
            "1.2.840.10008.5.1.4.1.1.481.",
        )
    )
    return image_class or ("Rows" in ds and "Columns" in ds)


def _looks_broken(ds) -> bool:
    """No SOP class and no image tags: a forced read of a non-DICOM or garbled file."""
    return not any(t in ds for t in ("SOPClassUID", "Rows", "Modality", "SeriesInstanceUID"))


def _broken_error(path: Path) -> ReaderError:
    return ReaderError(
        f"{path}: not a readable DICOM file: no standard DICOM elements could be read "
        "(corrupt, truncated, or not DICOM at all)"
    )


def _no_pixels_error(path: Path, ds) -> ReaderError:
    if _looks_broken(ds):
        return _broken_error(path)
    if _image_without_pixels(ds):
        return ReaderError(
            f"{path}: DICOM image file has no pixel data ({_sop_class_name(ds)}): it is truncated or "
            "damaged; re-export it from the archive"
        )
    return ReaderError(
        f"{path}: DICOM object has no pixel data ({_sop_class_name(ds)}); it is not an image. "
        "Point the manifest at an image file or a series folder."
    )


# ----------------------------------------------------------------------------- header geometry
def _floats(value: Any, n: int) -> np.ndarray | None:
    if value is None:
        return None
    try:
        arr = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def _fg_item(ds, frame: int, seq: str):
    """First item of functional-group sequence ``seq`` for ``frame`` (per-frame, then shared)."""
    per = ds.get("PerFrameFunctionalGroupsSequence")
    groups = []
    if per is not None and frame < len(per):
        groups.append(per[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for g in groups:
        s = g.get(seq)
        if s:
            return s[0]
    return None


def _n_frames(ds) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


@dataclass
class _Frame:
    file: Path
    frame: int | None  # index inside a multi-frame file; None for a single-frame file
    position: np.ndarray | None
    orientation: np.ndarray | None
    instance: int | None
    thickness: float | None
    spacing: tuple | None


def _frames_of(ds, path: Path) -> list[_Frame]:
    nf = _n_frames(ds)
    try:
        inst = ds.get("InstanceNumber")
        instance = int(inst) if inst is not None and str(inst).strip() != "" else None
    except (TypeError, ValueError):
        instance = None
    out = []
    for i in range(nf):
        if nf > 1:  # top-level position of a multi-frame object describes frame 1 only
            pos_item = _fg_item(ds, i, "PlanePositionSequence")
            pos = _floats(pos_item.get("ImagePositionPatient"), 3) if pos_item else None
        else:
            pos = _floats(ds.get("ImagePositionPatient"), 3)
        ori_item = _fg_item(ds, i, "PlaneOrientationSequence")
        ori = _floats(ori_item.get("ImageOrientationPatient"), 6) if ori_item else None
        if ori is None:
            ori = _floats(ds.get("ImageOrientationPatient"), 6)
        meas = _fg_item(ds, i, "PixelMeasuresSequence")
        spacing = _floats(meas.get("PixelSpacing"), 2) if meas else None
        thick = meas.get("SliceThickness") if meas else None
        if spacing is None:
            spacing = _floats(ds.get("PixelSpacing"), 2)
        if thick is None:
            thick = ds.get("SliceThickness")
        try:
            thick = float(thick) if thick is not None else None
        except (TypeError, ValueError):
            thick = None
        out.append(
            _Frame(
                file=path,
                frame=i if nf > 1 else None,
                position=pos,
                orientation=ori,
                instance=instance,
                thickness=thick,
                spacing=None if spacing is None else tuple(spacing),
            )
        )
    return out


def _arrange(frames: list[_Frame], where: Path, explicit: bool):
    """(frames apex->base, basal rule text, median slice spacing or None)."""
    multi_file = len({f.file for f in frames}) > 1
    keys = [None if (multi_file and f.instance is None) else (f.instance or 0, f.frame or 0) for f in frames]
    idx, rule, spacing = order_apex_to_base(
        [f.position for f in frames],
        [f.orientation for f in frames],
        where=where,
        explicit=explicit,
        fallback_keys=keys,
        fallback_name="InstanceNumber order" if multi_file else "frame order",
    )
    return [frames[i] for i in idx], rule, spacing


# ----------------------------------------------------------------------------- pixels
def _stored_range(ds) -> tuple[float, float]:
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16)
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1


def _modality_fn(ds, frame: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """Rescale for one frame: per-frame/shared Pixel Value Transformation, else top level."""
    from pydicom.pixels import apply_modality_lut

    if frame is not None:
        item = _fg_item(ds, frame, "PixelValueTransformationSequence")
        if item is not None and "RescaleSlope" in item and "RescaleIntercept" in item:
            slope, icpt = float(item.RescaleSlope), float(item.RescaleIntercept)
            return lambda a: a.astype(np.float64) * slope + icpt
    return lambda a: apply_modality_lut(a, ds)


def _to_gray(ds, arr: np.ndarray, frame: int | None, notes: set) -> np.ndarray:
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        notes.add("PALETTE COLOR image converted to gray by BT.601 luminance")
        return luminance(apply_color_lut(arr, ds))
    if arr.ndim == 3:  # samples per pixel 3: pydicom already converted YBR to RGB
        notes.add(f"colour image ({photometric or 'RGB'}) converted to gray by BT.601 luminance")
        return luminance(arr)
    fn = _modality_fn(ds, frame)
    out = np.asarray(fn(arr), dtype=np.float64)
    if photometric == "MONOCHROME1":
        lo, hi = (float(v) for v in np.asarray(fn(np.array(_stored_range(ds)))).ravel())
        out = (lo + hi) - out
        notes.add("MONOCHROME1 inverted so that bright = high signal")
    return out.astype(np.float32)


def _decode(path: Path, wanted: list[int | None], notes: set) -> list[np.ndarray]:
    """Decode the frames ``wanted`` (None = the single frame) of one file as gray float32."""
    ds = _dcmread(path, header_only=False)
    if not _has_pixels(ds):
        raise _no_pixels_error(path, ds)
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # missing decoder plugin, corrupt or truncated pixel data
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        ts_name = getattr(ts, "name", None) or "unknown transfer syntax"
        raise ReaderError(f"{path}: pixel data could not be decoded ({ts_name}): {type(exc).__name__}: {exc}") from exc
    nf = _n_frames(ds)
    out = []
    for fr in wanted:
        arr = pixels[fr] if (fr is not None and nf > 1) else pixels
        out.append(_to_gray(ds, arr, fr, notes))
    return out


# ----------------------------------------------------------------------------- stacks
@dataclass
class _Stack:
    frames: list[_Frame]
    fmt: str
    source_kind: str
    header: Any  # header of one image object (for modality etc.)
    notes: list[str]


def _load_stack(path: Path) -> _Stack:
    if path.is_dir():
        return _load_series(path)
    ds = _dcmread(path, header_only=True)
    if not _has_pixels(ds):
        raise _no_pixels_error(path, ds)
    why = _not_an_image(ds)
    if why:
        raise _not_an_image_error(path, why)
    frames = _frames_of(ds, path)
    kind = "multiframe-file" if len(frames) > 1 else "file"
    return _Stack(frames, "dicom", kind, ds, [])


def _load_series(folder: Path) -> _Stack:
    files, skipped = dicom_files_in(folder)
    if not files:
        subdirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        hint = (
            f" It has {len(subdirs)} subfolder{'s' if len(subdirs) != 1 else ''}: point the "
            "manifest at the series folder itself."
            if subdirs
            else ""
        )
        raise ReaderError(f"{folder}: folder holds no DICOM files.{hint}")
    images, non_image, other = [], 0, Counter()
    for f in files:
        ds = _dcmread(f, header_only=True)
        if _has_pixels(ds):
            if _not_an_image(ds):
                other[_modality(ds) or "unknown"] += 1
            else:
                images.append((f, ds))
        elif _looks_broken(ds):
            raise _broken_error(f)
        elif _image_without_pixels(ds):
            raise ReaderError(
                f"{f}: DICOM image file of the series has no pixel data ({_sop_class_name(ds)}): it is "
                "truncated or damaged; re-export the series (lgenet never skips a slice silently)"
            )
        else:
            non_image += 1
    if not images and other:
        kinds = ", ".join(f"{n} of modality {m}" for m, n in sorted(other.items()))
        raise ReaderError(
            f"{folder}: not an LGE image series: its {sum(other.values())} DICOM object(s) with pixels are not MR "
            f"images ({kinds}). Point the manifest at the LGE MR series folder."
        )
    if not images:
        raise ReaderError(
            f"{folder}: none of the {len(files)} DICOM files holds pixel data (DICOMDIR, reports"
            " or other non-image objects only). Point the manifest at a folder of images."
        )
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in images}
    if len(series) > 1:
        raise ReaderError(
            f"{folder}: folder holds images from {len(series)} different series; lgenet reads one"
            " series per folder. Move each series into its own folder and point the manifest at "
            "the one to use."
        )
    sizes = Counter((int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)) for _, ds in images)
    if len(sizes) > 1:
        desc = ", ".join(f"{r}x{c} in {n} file{'s' if n != 1 else ''}" for (r, c), n in sizes.items())
        raise ReaderError(
            f"{folder}: images in the series have different sizes ({desc}); a series folder must "
            "hold one stack of equally sized slices."
        )
    frames = [fr for f, ds in images for fr in _frames_of(ds, f)]
    notes = []
    if skipped:
        notes.append(f"ignored {skipped} non-DICOM file{'s' if skipped != 1 else ''} in the folder")
    if non_image:
        notes.append(f"ignored {non_image} DICOM object{'s' if non_image != 1 else ''} without pixel data")
    for m, n in sorted(other.items()):
        notes.append(f"ignored {n} DICOM object{'s' if n != 1 else ''} of modality {m} (not an MR image)")
    return _Stack(frames, "dicom-series", "folder", images[0][1], notes)


def _meta(stack: _Stack, arranged: tuple, shape, *, index: int | None, notes, affine=None) -> dict:
    """The safe metadata of ``stack`` ordered as ``arranged`` (what :func:`_arrange` returns: the frames
    apex -> base, the basal rule, the slice spacing); pixel size and thickness from the frame ``index``
    (the basal one for a whole volume)."""
    ordered, rule, spacing = arranged
    frame = ordered[-1 if index is None else index]
    ds = stack.header
    return build_meta(
        format=stack.fmt,
        source_kind=stack.source_kind,
        shape=shape,
        pixel_spacing=frame.spacing,
        slice_index=index,
        n_slices=len(ordered),
        slice_thickness=frame.thickness,
        slice_spacing=spacing,
        modality=ds.get("Modality"),
        photometric=ds.get("PhotometricInterpretation"),
        bits=ds.get("BitsStored"),
        basal_rule=rule,
        notes=list(stack.notes) + sorted(notes),
        affine=affine,
    )


def read_dicom_frame(path: str | Path, sel: str | int = "basal") -> tuple[np.ndarray, dict]:
    """One frame of a DICOM file, multi-frame file or series folder (``sel``: 'basal' or int).

    Integer indices count apex->base (see the module docstring for the fallbacks).
    """
    with _withhold_identifiers():
        return _read_dicom_frame(Path(path), sel)


def _read_dicom_frame(path: Path, sel: str | int) -> tuple[np.ndarray, dict]:
    stack = _load_stack(path)
    arranged = _arrange(stack.frames, path, explicit=sel != "basal")
    ordered = arranged[0]
    k = select_index(len(ordered), sel, path)
    fr = ordered[k]
    notes: set = set()
    (img,) = _decode(fr.file, [fr.frame], notes)
    meta = _meta(stack, arranged, img.shape, index=k, notes=notes)
    return img, meta


def read_dicom_volume(path: str | Path) -> tuple[np.ndarray, dict]:
    """All frames as float32 (S, H, W), apex->base (index -1 = basal)."""
    with _withhold_identifiers():
        return _read_dicom_volume(Path(path))


def _read_dicom_volume(path: Path) -> tuple[np.ndarray, dict]:
    stack = _load_stack(path)
    arranged = _arrange(stack.frames, path, explicit=False)
    ordered = arranged[0]
    notes: set = set()
    by_file: dict[Path, list[int]] = {}
    for i, fr in enumerate(ordered):
        by_file.setdefault(fr.file, []).append(i)
    slices: list[np.ndarray | None] = [None] * len(ordered)
    for f, idxs in by_file.items():
        for i, img in zip(idxs, _decode(f, [ordered[i].frame for i in idxs], notes)):
            slices[i] = img
    vol = np.stack(slices).astype(np.float32, copy=False)
    gap = slice_gap_note([f.position for f in ordered], ordered[0].orientation)
    if gap:
        notes.add(gap)
    meta = _meta(stack, arranged, vol.shape, index=None, notes=notes, affine=_ras_affine(ordered))
    return vol, meta


def dicom_source_frames(path: str | Path) -> list[tuple[Path, int | None]]:
    """The (file, frame index or None) of every frame of the stack at ``path``, apex -> base: the order of
    :func:`read_dicom_volume`'s slices (a DICOM SEG of a mask references its source frames in this order)."""
    with _withhold_identifiers():
        stack = _load_stack(Path(path))
        ordered = _arrange(stack.frames, Path(path), explicit=False)[0]
    return [(fr.file, fr.frame) for fr in ordered]


def _ras_affine(ordered: list[_Frame]) -> np.ndarray | None:
    """Voxel (col, row, slice apex->base) -> RAS+ mm, from the frames' DICOM geometry (None without it)."""
    first, last = ordered[0], ordered[-1]
    if first.position is None or first.orientation is None or first.spacing is None:
        return None
    row_dir, col_dir = np.asarray(first.orientation[:3]), np.asarray(first.orientation[3:])
    dr, dc = first.spacing  # PixelSpacing = (between rows, between columns)
    if len(ordered) > 1 and last.position is not None:
        step = (np.asarray(last.position) - np.asarray(first.position)) / (len(ordered) - 1)
    else:
        step = np.cross(row_dir, col_dir) * (first.thickness or 1.0)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * dc  # column index moves along the row direction cosine
    lps[:3, 1] = col_dir * dr
    lps[:3, 2] = step
    lps[:3, 3] = first.position
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
