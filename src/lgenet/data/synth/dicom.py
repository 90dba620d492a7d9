"""The synthetic cohort's files: one DICOM MR series per stack and its NIfTI label map, on an oblique
short-axis geometry (see :mod:`lgenet.data.synth`)."""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.data.phantom import PhantomStack
from lgenet.errors import ConfigError
from lgenet.utils import atomic_path, atomic_write_bytes

__all__ = [
    "SERIES_DESCRIPTION",
    "TRANSFER_SYNTAXES",
    "sax_orientation",
    "SaxGeometry",
    "SeriesHeader",
    "write_dicom_series",
    "write_label_nifti",
]

SERIES_DESCRIPTION = "LGE SAX PSIR synthetic"
TRANSFER_SYNTAXES = ("explicit-le", "rle")
_UID_TAG = "lgenet-synth-v1"

# apex direction in LPS (left, anterior, inferior) used to build the short-axis planes
_APEX_LPS = np.array([0.62, -0.48, -0.62])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def sax_orientation(rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, normal) unit vectors in LPS of an oblique short-axis plane.

    ``normal = row x col`` points from the apex (left-anterior-inferior) toward the base; rows run
    toward patient left, columns toward posterior (anterior chest wall at the top of the image).
    A generator adds a few degrees of patient-to-patient variation.
    """
    a = _APEX_LPS.astype(np.float64)
    if rng is not None:
        a = a + rng.normal(0.0, 0.06, size=3)
    a = _unit(a)
    n = -a  # apex -> base
    post = np.array([0.0, 1.0, 0.0])
    col = _unit(post - np.dot(post, n) * n)
    row = _unit(np.cross(col, n))
    if rng is not None:  # small in-plane rotation
        t = rng.uniform(-0.12, 0.12)
        row, col = np.cos(t) * row + np.sin(t) * col, -np.sin(t) * row + np.cos(t) * col
    return row, col, _unit(np.cross(row, col))


def _fmt(v: float, nd: int) -> str:
    s = f"{float(v):.{nd}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "", "-") else s


class SaxGeometry:
    """DICOM geometry of one synthetic stack (LPS, mm): direction cosines and slice positions.

    ``row``/``col`` are the header's ImageOrientationPatient (rounded as written), ``normal`` =
    ``row x col`` (apex -> base) and ``positions[k]`` the ImagePositionPatient of slice k, apex
    (k = 0) -> base, stepping by ``spacing`` along ``normal``.
    """

    def __init__(self, rng: np.random.Generator, stack: PhantomStack):
        r, c, _ = sax_orientation(rng)
        # write the direction cosines rounded as in the header, and derive n from those
        self.row = np.array([float(_fmt(x, 6)) for x in r])
        self.col = np.array([float(_fmt(x, 6)) for x in c])
        self.normal = _unit(np.cross(self.row, self.col))
        S, H, W = stack.labels.shape
        dy, dx = stack.pixel_spacing
        self.dx, self.dy, self.spacing = dx, dy, stack.slice_spacing
        centre = np.array([38.0, -12.0, -45.0]) + rng.normal(0.0, 12.0, size=3)
        self.positions = []
        for k in range(S):
            ck = centre + (k - (S - 1) / 2.0) * self.spacing * self.normal
            p = ck - (W - 1) / 2.0 * dx * self.row - (H - 1) / 2.0 * dy * self.col
            self.positions.append(np.array([float(_fmt(x, 4)) for x in p]))

    def affine_ras(self) -> np.ndarray:
        """NIfTI affine (RAS) of the (x=col index, y=row index, k=slice) label array."""
        A = np.eye(4)
        A[:3, 0] = self.row * self.dx
        A[:3, 1] = self.col * self.dy
        A[:3, 2] = self.normal * self.spacing
        A[:3, 3] = self.positions[0]
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ A  # LPS -> RAS


# ----------------------------------------------------------------------------- writers
def _uid(*parts: Any) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[_UID_TAG, *[str(p) for p in parts]]))


@dataclass(frozen=True)
class SeriesHeader:
    """What a synthetic series' headers say beyond the image: ``uid_key`` (the parts its UIDs are
    derived from), the ``identifiers`` (DICOM keyword -> value), the patient's ``age`` and ``sex``
    (1 = female), the signal ``gain`` and the ``transfer_syntax`` (one of :data:`TRANSFER_SYNTAXES`)."""

    uid_key: Sequence[Any]
    identifiers: Mapping[str, str]
    age: int
    sex: int
    gain: float = 500.0
    transfer_syntax: str = "explicit-le"


def write_dicom_series(
    folder: str | Path, stack: PhantomStack, geometry: SaxGeometry, header: SeriesHeader, file_names: Sequence[str]
) -> list[Path]:
    """Write one MR Image Storage file per slice of ``stack`` into ``folder``.

    ``file_names[k]`` names slice k (apex -> base). Pixel data: uint16 (12 bits used) with
    RescaleSlope so that ``stored * slope`` = the phantom signal times ``header.gain``. Returns the paths.
    """
    uid_key, identifiers, age, sex = header.uid_key, header.identifiers, header.age, header.sex
    gain, transfer_syntax = header.gain, header.transfer_syntax
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, MRImageStorage, RLELossless

    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise ConfigError(f"transfer_syntax must be one of {TRANSFER_SYNTAXES}; got {transfer_syntax!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    S, H, W = stack.labels.shape
    real = stack.image.astype(np.float64) * float(gain)
    slope_txt = f"{max(float(real.max()), 1e-6) / 4000.0:.6g}"
    slope = float(slope_txt)
    stored = np.clip(np.rint(real / slope), 0, 4095).astype(np.uint16)
    p995 = float(np.percentile(stored, 99.5)) * slope
    study_uid = _uid(*uid_key, "study")
    series_uid = _uid(*uid_key, "series")
    frame_uid = _uid(*uid_key, "frame-of-reference")
    tsuid = RLELossless if transfer_syntax == "rle" else ExplicitVRLittleEndian
    paths = []
    for k in range(S):
        sop_uid = _uid(*uid_key, "image", k)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "LGENET_SYNTH_1"
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "IR"]
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = sop_uid
        for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "StudyTime"):
            setattr(ds, kw, identifiers.get(kw, ""))
        ds.AccessionNumber = identifiers.get("AccessionNumber", "")
        ds.Modality = "MR"
        ds.Manufacturer = "lgenet"
        ds.InstitutionName = identifiers.get("InstitutionName", "")
        ds.InstitutionAddress = identifiers.get("InstitutionAddress", "")
        ds.ReferringPhysicianName = identifiers.get("ReferringPhysicianName", "")
        ds.StationName = identifiers.get("StationName", "")
        ds.StudyDescription = "Cardiac MRI (synthetic)"
        ds.SeriesDescription = SERIES_DESCRIPTION
        ds.OperatorsName = identifiers.get("OperatorsName", "")
        ds.ManufacturerModelName = "synthetic LGE phantom"
        ds.PatientName = identifiers.get("PatientName", "")
        ds.PatientID = identifiers.get("PatientID", "")
        ds.PatientBirthDate = identifiers.get("PatientBirthDate", "")
        ds.PatientSex = "F" if sex == 1 else "M"
        ds.PatientAge = f"{int(age):03d}Y"
        for kw, v in identifiers.items():  # any further keyword a custom spec asked for
            if kw not in ds:
                setattr(ds, kw, v)
        ds.BodyPartExamined = "HEART"
        ds.ScanningSequence = ["GR", "IR"]
        ds.SequenceVariant = ["SK", "SP", "MP"]
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.SliceThickness = _fmt(stack.slice_thickness, 3)
        ds.RepetitionTime = "5.2"
        ds.EchoTime = "2.1"
        ds.InversionTime = "300"
        ds.MagneticFieldStrength = "1.5"
        ds.SpacingBetweenSlices = _fmt(stack.slice_spacing, 3)
        ds.FlipAngle = "25"
        ds.DeviceSerialNumber = identifiers.get("DeviceSerialNumber", "")
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = identifiers.get("StudyID", "")
        ds.SeriesNumber = 7
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = S - k  # 1 = basal slice
        ds.ImagePositionPatient = [_fmt(x, 4) for x in geometry.positions[k]]
        ds.ImageOrientationPatient = [_fmt(x, 6) for x in (*geometry.row, *geometry.col)]
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _fmt(float(np.dot(geometry.positions[k], geometry.normal)), 4)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = H, W
        ds.PixelSpacing = [_fmt(stack.pixel_spacing[0], 4), _fmt(stack.pixel_spacing[1], 4)]
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.WindowCenter = _fmt(0.5 * p995, 2)
        ds.WindowWidth = _fmt(max(p995, 1.0), 2)
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = slope_txt
        ds.RescaleType = "US"
        ds.LossyImageCompression = "00"
        arr = np.ascontiguousarray(stored[k])
        if tsuid == RLELossless:
            ds.compress(RLELossless, arr, generate_instance_uid=False)
        else:
            ds.PixelData = arr.tobytes()
        path = folder / file_names[k]
        with atomic_path(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        paths.append(path)
    return paths


def write_label_nifti(path: str | Path, labels: np.ndarray, geometry: SaxGeometry) -> Path:
    """Write an apex->base (S, H, W) label stack as NIfTI (x, y, slice) with a RAS affine.

    ``data[:, :, k].T == labels[k]``; pixdim = (column spacing, row spacing, slice spacing).
    The gzip stream carries no timestamp, so the file is byte-reproducible.
    """
    import nibabel as nib

    data = np.ascontiguousarray(np.asarray(labels, dtype=np.uint8).transpose(2, 1, 0))
    aff = geometry.affine_ras()
    img = nib.Nifti1Image(data, aff)
    img.header.set_xyzt_units("mm")
    img.set_qform(aff, code=1)
    img.set_sform(aff, code=1)
    img.header["descrip"] = b"lgenet synthetic LGE labels 0bg 1LV 2myo 3LGE 4RV"
    raw = img.to_bytes()
    return atomic_write_bytes(path, gzip.compress(raw, compresslevel=6, mtime=0))


# ----------------------------------------------------------------------------- cohort
