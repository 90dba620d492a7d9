"""An index of every DICOM object under a folder, read from the headers only (``lgenet import dicom``, since 0.3.0).

:func:`index_dicom_folder` walks a folder in any layout (one folder per study or per series, or every file
mixed; with or without the 128-byte preamble; single- or multi-frame) and returns one :class:`IndexedFrame` per
image frame, plus the count of what was not an image, by kind. It reads no pixel data.

The records hold the grouping keys (study, series and instance UIDs, the patient ID and study date) **in memory
only**, so that the intake can group and order them; nothing in this module writes them, and the intake
(:mod:`lgenet.data.importers.dicom_studies`) writes only study-local IDs, except to the ``--id-map`` file a user
asks for.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgenet.errors import ReaderError
from lgenet.io.dicom import (
    DICOM_SUFFIXES,
    _dcmread,
    _fg_item,
    _frames_of,
    _has_pixels,
    _image_without_pixels,
    _looks_broken,
    _modality,
    _not_an_image,
    _withhold_identifiers,
    has_dicom_preamble,
)

__all__ = ["IndexedFrame", "ArchiveIndex", "index_dicom_folder", "SKIP_KINDS"]

#: what an object that is not an image frame is counted as (keys of :attr:`ArchiveIndex.skipped`)
SKIP_KINDS = {
    "not_dicom": "not DICOM",
    "unreadable": "unreadable DICOM (corrupt or truncated)",
    "no_pixels": "DICOM without pixel data (reports, DICOMDIR, presentation states...)",
    "not_mr": "not an MR image (other modalities, segmentations...)",
    "duplicate": "copies of an image already read (the same SOP instance)",
}


@dataclass
class IndexedFrame:
    """One image frame of the archive, from its header. The UIDs, ``patient_key`` and ``study_date`` are held
    for grouping and ordering only and never written by lgenet, except to a user's ``--id-map`` file."""

    path: Path
    frame: int | None  # index inside a multi-frame file; None for a single-frame file
    n_frames_in_file: int
    sop_uid: str
    study_uid: str
    series_uid: str
    patient_key: str
    study_date: str
    series_number: int | None
    acquisition_time: str
    image_type: tuple[str, ...]
    description: str  # the series description, upper case: read for keywords only
    position: np.ndarray | None
    orientation: np.ndarray | None
    rows: int
    cols: int
    inversion_time: float | None
    trigger_time: float | None
    scanning_sequence: tuple[str, ...]
    signed: bool


@dataclass
class ArchiveIndex:
    """What :func:`index_dicom_folder` found: the image frames and the count of files skipped, by kind."""

    frames: list[IndexedFrame]
    skipped: Counter
    files_seen: int


def _number(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


def _tokens(v) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        v = v.split("\\")
    try:
        return tuple(str(t).strip().upper() for t in v if str(t).strip())
    except TypeError:
        return (str(v).strip().upper(),)


def _might_be_dicom(path: Path) -> bool:
    """The preamble, a DICOM suffix, or (a file written without the preamble) a first element of group 0002 or
    0008 in little-endian byte order; the header read then decides."""
    if has_dicom_preamble(path) or path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[:2] in (b"\x02\x00", b"\x08\x00")


def _frame_value(ds, i: int, seq: str, key: str):
    item = _fg_item(ds, i, seq)
    return item.get(key) if item is not None else None


def _records(ds, path: Path) -> list[IndexedFrame]:
    pr = _number(ds.get("PixelRepresentation"))
    intercept = _number(ds.get("RescaleIntercept"))
    signed = pr == 1 or (intercept is not None and intercept < 0)
    try:
        series_number = int(ds.get("SeriesNumber")) if str(ds.get("SeriesNumber", "")).strip() else None
    except (TypeError, ValueError):
        series_number = None
    patient_key = "|".join(
        str(ds.get(k, "") or "").strip() for k in ("PatientID", "PatientName", "PatientBirthDate")
    ).strip("|")
    frames = _frames_of(ds, path)
    multi = len(frames) > 1
    out = []
    for i, fr in enumerate(frames):
        ti = _number(ds.get("InversionTime"))
        tt = _number(ds.get("TriggerTime"))
        if multi or ti is None:  # an enhanced MR object: per-frame (or shared) functional groups
            times = _frame_value(ds, i, "MRTimingAndRelatedParametersSequence", "InversionTimes")
            if times is None:
                times = _frame_value(ds, i, "MRModifierSequence", "InversionTimes")
            if times is not None:
                vals = [_number(t) for t in (times if isinstance(times, list | tuple) else [times])]
                ti = next((t for t in vals if t is not None), ti)
        if multi:
            tt = _number(_frame_value(ds, i, "CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime"))
        frame_type = _tokens(_frame_value(ds, i, "MRImageFrameTypeSequence", "FrameType")) if multi else ()
        out.append(
            IndexedFrame(
                path=path,
                frame=fr.frame,
                n_frames_in_file=len(frames),
                sop_uid=str(ds.get("SOPInstanceUID", "") or ""),
                study_uid=str(ds.get("StudyInstanceUID", "") or ""),
                series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
                patient_key=patient_key,
                study_date=str(ds.get("StudyDate", "") or "") + str(ds.get("StudyTime", "") or ""),
                series_number=series_number,
                acquisition_time=str(ds.get("AcquisitionTime", "") or ds.get("SeriesTime", "") or ""),
                image_type=frame_type or _tokens(ds.get("ImageType")),
                description=str(ds.get("SeriesDescription", "") or "").upper(),
                position=fr.position,
                orientation=fr.orientation,
                rows=int(_number(ds.get("Rows")) or 0),
                cols=int(_number(ds.get("Columns")) or 0),
                inversion_time=ti,
                trigger_time=tt,
                scanning_sequence=_tokens(ds.get("ScanningSequence")),
                signed=bool(signed),
            )
        )
    return out


def _walk(root: Path):
    for d, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for f in sorted(files):
            if not f.startswith("."):
                yield Path(d) / f


def index_dicom_folder(root: str | Path, *, on_file: Callable[[], None] | None = None) -> ArchiveIndex:
    """Every image frame under ``root`` (recursively; hidden files and folders left out), from the headers.

    A frame whose SOP instance was already indexed (a copied file) is counted as ``duplicate`` and kept once;
    ``on_file`` is called after each file (a progress bar). Raises :class:`ReaderError` when ``root`` is not
    a folder."""
    root = Path(root)
    if not root.is_dir():
        raise ReaderError(f"{root}: not a folder; give the folder that holds the DICOM studies")
    frames: list[IndexedFrame] = []
    skipped: Counter = Counter()
    seen: set[tuple[str, int | None]] = set()
    n = 0
    with _withhold_identifiers():
        for path in _walk(root):
            n += 1
            if on_file is not None:
                on_file()
            if path.name.upper() == "DICOMDIR" or not _might_be_dicom(path):
                skipped["no_pixels" if path.name.upper() == "DICOMDIR" else "not_dicom"] += 1
                continue
            try:
                ds = _dcmread(path, header_only=True)
            except ReaderError:
                skipped["unreadable"] += 1
                continue
            if _looks_broken(ds):
                skipped["not_dicom" if not has_dicom_preamble(path) else "unreadable"] += 1
                continue
            if not _has_pixels(ds):  # an image object without its pixels is a truncated file
                skipped["unreadable" if _image_without_pixels(ds) else "no_pixels"] += 1
                continue
            if _modality(ds) != "MR" or _not_an_image(ds):
                skipped["not_mr"] += 1
                continue
            recs = [r for r in _records(ds, path) if not (r.sop_uid and (r.sop_uid, r.frame) in seen)]
            if not recs:  # every frame of this file was indexed from another copy of it
                skipped["duplicate"] += 1
            seen.update((r.sop_uid, r.frame) for r in recs)
            frames.extend(recs)
    return ArchiveIndex(frames=frames, skipped=skipped, files_seen=n)
