"""Test-only helpers that synthesise small DICOM files and short-axis series with pydicom."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"

#: Recognisable identifier values planted in every synthetic file; none may leave the reader.
IDENTIFIERS = {
    "PatientName": "Zzyzxquentin^Marmaduke",
    "PatientID": "MRN99887766",
    "PatientBirthDate": "19410203",
    "AccessionNumber": "ACC55443322",
    "InstitutionName": "Saint Elsewhere Hospital",
    "StudyDate": "20200115",
    "ReferringPhysicianName": "Doctor^Quimby",
    "StudyDescription": "CARDIAC VIABILITY Zzyzx",
    "SeriesDescription": "LGE_SAX_Marmaduke",
}
UID_ROOT = "1.2.826.0.1.3680043.8.498."


def _base(sop_class: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid(prefix=UID_ROOT)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid(prefix=UID_ROOT)
    ds.SeriesInstanceUID = generate_uid(prefix=UID_ROOT)
    for k, v in IDENTIFIERS.items():
        setattr(ds, k, v)
    ds.Modality = "MR"
    return ds


def make_image(
    pixels: np.ndarray,
    *,
    photometric: str | None = None,
    bits_stored: int | None = None,
    position: Sequence[float] | None = None,
    orientation: Sequence[float] | None = None,
    instance: int | None = 1,
    series_uid: str | None = None,
    spacing: Sequence[float] = (1.25, 1.5),
    thickness: float | None = 8.0,
    slope: float | None = None,
    intercept: float | None = None,
) -> Dataset:
    """A single-frame MR Image Storage dataset holding ``pixels`` (2-D, or (H, W, 3) RGB)."""
    ds = _base(MR_IMAGE_STORAGE)
    arr = np.asarray(pixels)
    if photometric is None:
        photometric = "RGB" if arr.ndim == 3 else "MONOCHROME2"
    if bits_stored is None:
        bits_stored = arr.dtype.itemsize * 8
    ds.set_pixel_data(arr, photometric, bits_stored)
    if series_uid is not None:
        ds.SeriesInstanceUID = series_uid
    if instance is not None:
        ds.InstanceNumber = instance
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in spacing]
    if thickness is not None:
        ds.SliceThickness = thickness
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept if intercept is not None else 0.0
    return ds


def make_enhanced(
    frames: np.ndarray,
    *,
    positions: Sequence[Sequence[float]] | None,
    orientation: Sequence[float] | None,
    slopes: Sequence[float] | None = None,
    intercepts: Sequence[float] | None = None,
    spacing: Sequence[float] = (1.25, 1.5),
) -> Dataset:
    """An Enhanced MR multi-frame dataset with per-frame positions and optional rescale."""
    ds = _base(ENHANCED_MR_STORAGE)
    arr = np.asarray(frames)
    ds.set_pixel_data(arr, "MONOCHROME2", arr.dtype.itemsize * 8)
    ds.InstanceNumber = 1
    shared = Dataset()
    meas = Dataset()
    meas.PixelSpacing = [float(v) for v in spacing]
    meas.SliceThickness = 8.0
    shared.PixelMeasuresSequence = DicomSequence([meas])
    if orientation is not None:
        ori = Dataset()
        ori.ImageOrientationPatient = [float(v) for v in orientation]
        shared.PlaneOrientationSequence = DicomSequence([ori])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per = []
    for i in range(arr.shape[0]):
        item = Dataset()
        if positions is not None:
            pos = Dataset()
            pos.ImagePositionPatient = [float(v) for v in positions[i]]
            item.PlanePositionSequence = DicomSequence([pos])
        if slopes is not None:
            pvt = Dataset()
            pvt.RescaleSlope = slopes[i]
            pvt.RescaleIntercept = intercepts[i] if intercepts is not None else 0.0
            pvt.RescaleType = "US"
            item.PixelValueTransformationSequence = DicomSequence([pvt])
        per.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per)
    return ds


def make_report() -> Dataset:
    """A Comprehensive SR object: a DICOM file without pixel data."""
    ds = _base(COMPREHENSIVE_SR)
    ds.Modality = "SR"
    ds.ValueType = "CONTAINER"
    return ds


def make_dicomdir_like() -> Dataset:
    """A stand-in for a DICOMDIR (Media Storage Directory SOP class, no pixel data)."""
    ds = _base(MEDIA_DIRECTORY)
    ds.FileSetID = "FILESET"
    return ds


def save(ds: Dataset, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def sax_geometry(normal_toward: str = "apex") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row_dir, col_dir, apex_dir) of a realistic oblique short-axis plane (LPS coordinates).

    The LV long axis (base -> apex) points left, anterior and inferior; the slice normal
    ``row x col`` points toward the apex (``normal_toward='apex'``) or toward the base.
    """
    apex = unit([0.62, -0.55, -0.56])  # left, anterior (-y), inferior (-z)
    row = unit(np.cross(apex, [0.0, 0.0, 1.0]))
    col = np.cross(apex, row)  # row x col = apex
    if normal_toward == "base":
        col = -col
    return row, col, apex


def write_sax_series(
    folder: str | Path,
    n: int = 5,
    *,
    normal_toward: str = "apex",
    write_order: str = "shuffled",
    gap: float = 8.0,
    size: tuple[int, int] = (12, 10),
    seed: int = 0,
    orientation: Sequence[float] | None = None,
    step: np.ndarray | None = None,
    series_uid: str | None = None,
) -> list[Path]:
    """Write ``n`` slices; slice ``k`` (0 = apex, n-1 = base) is filled with value ``100 * k``.

    File names do not follow anatomy (``write_order`` 'shuffled', 'apex_first', 'base_first');
    InstanceNumber follows the file order. ``step`` overrides the apex-ward step between slices.
    """
    folder = Path(folder)
    row, col, apex = sax_geometry(normal_toward)
    ori = list(row) + list(col) if orientation is None else list(orientation)
    step = apex * gap if step is None else np.asarray(step, dtype=float)
    base_point = np.array([-20.0, -180.0, 40.0])
    uid = series_uid or generate_uid(prefix=UID_ROOT)
    levels = list(range(n))  # level k sits (n-1-k) steps from the base toward the apex
    if write_order == "shuffled":
        np.random.default_rng(seed).shuffle(levels)
    elif write_order == "base_first":
        levels = levels[::-1]
    paths = []
    for i, k in enumerate(levels):
        pos = base_point + (n - 1 - k) * step
        pix = np.full(size, 100 * k, dtype=np.uint16)
        pix[0, 0] = 7  # an asymmetric marker to check orientation
        ds = make_image(pix, position=pos, orientation=ori, instance=i + 1, series_uid=uid)
        paths.append(save(ds, folder / f"IM{i:04d}.dcm"))
    return paths
