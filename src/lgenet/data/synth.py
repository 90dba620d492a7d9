"""Synthetic demo cohort: LGE short-axis DICOM series, NIfTI label maps and a manifest.

:func:`make_cohort` writes a complete, self-consistent study that mimics the seed cohort
(Azoulay et al., suspected cardiac sarcoidosis, 116 patients: 57% without LGE, 16% with LGE
burden > 5.7% of the myocardium, 20% clinical events, median follow-up ~5 y)::

    out_dir/
        manifest.csv              patient_id,image,slice,lge_percent,event,followup_years,
                                  age,sex,lvef,mask
        cohort_summary.json       the statistics actually reached (fractions, burden, events...)
        truth.csv                 per-patient phantom facts (basal burden, target, blobs, spacing)
        dicom/SYN001/IM_<hex>.dcm one MR Image Storage file per slice (shuffled file names)
        masks/SYN001.nii.gz       label map (x, y, slice); data[:, :, k].T = frame k, apex -> base

Images come from :mod:`lgenet.data.phantom` (label codes: 0 background, 1 LV cavity,
2 myocardium, 3 LGE, 4 RV cavity). ``lge_percent`` in the manifest is always *measured* on the
phantom's own label maps (whole LV, all slices), never the sampled target.

Clinical columns:
    ``event``: drawn from a latent logistic model ``b*log1p(lge%) + covariate effects + noise``;
    the ``round(event_rate * n)`` patients with the highest latent value have the event, so the
    overall rate is exact and the rate is clearly higher in the LGE > 5.7% group.
    ``followup_years``: time to event, or to censoring for the others (median about 5 y).
    ``age`` (years), ``sex`` (1 = female, 0 = male), ``lvef`` (%, lower with more LGE).

DICOM geometry: an oblique short-axis plane (rows toward patient left, columns toward posterior,
both perpendicular to the LV long axis), slice normal ``n = row x col`` pointing from the apex
(left-anterior-inferior) toward the base, ImagePositionPatient stepping along ``+n`` from apex to
base, so sorting by ``ImagePositionPatient . n`` gives apex -> base. InstanceNumber counts from
the **base** (1 = basal slice, as many scanners acquire), and file names are random: readers must
sort by geometry.

Identifiers: with ``identifiers="fake"`` every header carries recognisable *fake* identifiers
(``SYNTHETIC^PATIENT0007``, ``MRN-SYN-0007``, birth date, accession number, institution...) that
differ from the study-local ``patient_id``, so that privacy checks downstream have something to
find. Everything is deterministic: the same arguments give byte-identical files.
"""

from __future__ import annotations

import csv
import datetime as _dt
import gzip
import hashlib
import io
import json
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.data.phantom import LABELS, LGE, MYOCARDIUM, PhantomStack, make_phantom
from lgenet.errors import ConfigError
from lgenet.utils import atomic_path, atomic_write_bytes, atomic_write_text

__all__ = [
    "make_cohort",
    "fake_identifiers",
    "IDENTIFIER_KEYWORDS",
    "MANIFEST_COLUMNS",
    "LGE_THRESHOLD",
    "SERIES_DESCRIPTION",
    "TRANSFER_SYNTAXES",
    "sax_orientation",
    "SaxGeometry",
    "write_dicom_series",
    "write_label_nifti",
    "HAZARD",
    "true_log_hazard",
    "draw_followup",
    "tabular_cohort",
]

LGE_THRESHOLD = 5.7
SERIES_DESCRIPTION = "LGE SAX PSIR synthetic"
MANIFEST_COLUMNS = (
    "patient_id",
    "image",
    "slice",
    "lge_percent",
    "event",
    "followup_years",
    "age",
    "sex",
    "lvef",
    "mask",
)
#: header keywords that identify a person, a visit or a place; set by ``identifiers``
IDENTIFIER_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "InstitutionName",
    "InstitutionAddress",
    "AccessionNumber",
    "ReferringPhysicianName",
    "OperatorsName",
    "StationName",
    "DeviceSerialNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
)
TRANSFER_SYNTAXES = ("explicit-le", "rle")
_OUTPUTS = ("dicom", "masks", "manifest.csv", "cohort_summary.json", "truth.csv")
_UID_TAG = "lgenet-synth-v1"

# apex direction in LPS (left, anterior, inferior) used to build the short-axis planes
_APEX_LPS = np.array([0.62, -0.48, -0.62])


# ----------------------------------------------------------------------------- validation
def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_int(name: str, v: Any, lo: int, hi: int) -> int:
    if not _is_int(v) or not lo <= int(v) <= hi:
        raise ConfigError(f"{name} must be an integer between {lo} and {hi}; got {v!r}")
    return int(v)


def _check_fraction(name: str, v: Any, lo: float, hi: float, open_ends: bool = False) -> float:
    ok = _is_num(v) and math.isfinite(float(v))
    if ok:
        f = float(v)
        ok = (lo < f < hi) if open_ends else (lo <= f <= hi)
    if not ok:
        rng = f"strictly between {lo} and {hi}" if open_ends else f"between {lo} and {hi}"
        raise ConfigError(f"{name} must be a number {rng}; got {v!r}")
    return float(v)


def _check_slices(v: Any) -> tuple[int, int]:
    lo_ok, hi_ok = 3, 30
    if _is_int(v):
        pair = (int(v), int(v))
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(x) for x in v):
        pair = (int(v[0]), int(v[1]))
    else:
        raise ConfigError(
            f"n_slices must be an integer or a (min, max) pair of integers between {lo_ok} and {hi_ok}; got {v!r}"
        )
    if not (lo_ok <= pair[0] <= pair[1] <= hi_ok):
        raise ConfigError(
            f"n_slices must be an integer or a (min, max) pair with {lo_ok} <= min <= max <= {hi_ok}; got {v!r}"
        )
    return pair


def _check_identifiers(v: Any) -> Any:
    if v is None or v == "fake" or callable(v):
        return v
    if isinstance(v, Mapping):
        from pydicom.datadict import tag_for_keyword

        bad = [k for k in v if not isinstance(k, str) or tag_for_keyword(k) is None]
        if bad:
            raise ConfigError(
                f"identifiers: {bad!r} are not DICOM keywords; use keywords such as "
                f"{', '.join(IDENTIFIER_KEYWORDS[:4])}"
            )
        return v
    raise ConfigError(
        "identifiers must be 'fake', None, a dict {DICOM keyword: value or template with "
        f"{{index}}/{{patient_id}}}} or a callable (index, patient_id) -> dict; got {v!r}"
    )


def _prepare_out_dir(out_dir: Any, overwrite: bool) -> Path:
    try:
        out = Path(out_dir)
    except TypeError:
        raise ConfigError(f"out_dir must be a folder path; got {out_dir!r}") from None
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {str(out)!r} exists and is not a folder; pick an empty folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"out_dir {str(out)!r} exists and is not empty; pick an empty (or new) folder "
                "or pass overwrite=True to replace a previous synthetic cohort there"
            )
        for name in _OUTPUTS:  # remove only what a previous make_cohort wrote
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


# ----------------------------------------------------------------------------- identifiers
def _digest(*parts: Any) -> int:
    h = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big")


def _study_date(seed: int, index: int) -> _dt.date:
    return _dt.date(2012, 1, 2) + _dt.timedelta(days=_digest(seed, index, "date") % (5 * 365))


def fake_identifiers(index: int, *, seed: int = 0, age: int = 56) -> dict[str, str]:
    """Recognisable but fake identifiers for synthetic patient number ``index`` (1-based).

    Deterministic in (``index``, ``seed``, ``age``); never equal to the study-local patient_id
    (``SYN001``...)::

        >>> fake_identifiers(7)["PatientName"], fake_identifiers(7)["PatientID"]
        ('SYNTHETIC^PATIENT0007', 'MRN-SYN-0007')
    """
    d = _study_date(seed, index)
    h = _digest(seed, index, "ids")
    birth = d - _dt.timedelta(days=int(age) * 365 + int(age) // 4 + h % 365)
    minutes = 8 * 60 + (h // 365) % (9 * 60)
    return {
        "PatientName": f"SYNTHETIC^PATIENT{index:04d}",
        "PatientID": f"MRN-SYN-{index:04d}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "InstitutionName": "Synthetic General Hospital",
        "InstitutionAddress": "1 Nowhere Road, Synthville",
        "AccessionNumber": f"ACC{(h // 7919) % 10**8:08d}",
        "ReferringPhysicianName": "SYNTHETIC^REFERRER^DR",
        "OperatorsName": "SYNTHETIC^TECHNOLOGIST",
        "StationName": "SYNTH-MR01",
        "DeviceSerialNumber": "SYN-0000001",
        "StudyID": f"SYNSTUDY{index:04d}",
        "StudyDate": d.strftime("%Y%m%d"),
        "StudyTime": f"{minutes // 60:02d}{minutes % 60:02d}00",
        "SeriesDate": d.strftime("%Y%m%d"),
        "AcquisitionDate": d.strftime("%Y%m%d"),
        "ContentDate": d.strftime("%Y%m%d"),
    }


def _identifiers_for(spec: Any, index: int, patient_id: str, seed: int, age: int) -> dict[str, str]:
    blank = {k: "" for k in IDENTIFIER_KEYWORDS}
    if spec is None:
        return blank
    if spec == "fake":
        return fake_identifiers(index, seed=seed, age=age)
    if callable(spec):
        got = spec(index, patient_id)
        if not isinstance(got, Mapping):
            raise ConfigError(f"identifiers callable must return a dict of DICOM keyword -> value; got {got!r}")
        _check_identifiers(dict(got))
        items = got.items()
    else:
        items = spec.items()
    out = dict(blank)
    for k, v in items:
        text = "" if v is None else str(v)
        try:
            text = text.format(index=index, patient_id=patient_id)
        except (KeyError, IndexError, ValueError):
            pass  # not a template: used as given
        out[k] = text
    return out


# ----------------------------------------------------------------------------- geometry
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


def write_dicom_series(
    folder: str | Path,
    stack: PhantomStack,
    geometry: SaxGeometry,
    *,
    uid_key: Sequence[Any],
    identifiers: Mapping[str, str],
    age: int,
    sex: int,
    file_names: Sequence[str],
    gain: float = 500.0,
    transfer_syntax: str = "explicit-le",
) -> list[Path]:
    """Write one MR Image Storage file per slice of ``stack`` into ``folder``.

    ``file_names[k]`` names slice k (apex -> base). Pixel data: uint16 (12 bits used) with
    RescaleSlope so that ``stored * slope`` = the phantom signal times ``gain``. Returns the paths.
    """
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
def _sample_targets(rng: np.random.Generator, n: int, f_none: float, f_high: float) -> tuple[np.ndarray, np.ndarray]:
    """Target burdens (%) and groups (0 none, 1 low 0 < x <= 5.7, 2 high > 5.7), exact counts."""
    n_none = int(round(f_none * n))
    n_high = min(int(round(f_high * n)), n - n_none)
    groups = np.array([0] * n_none + [2] * n_high + [1] * (n - n_none - n_high))
    rng.shuffle(groups)
    low = rng.uniform(0.4, 5.2, size=n)
    high = np.minimum(6.3 + rng.gamma(0.35, 16.5, size=n), 50.0)
    targets = np.where(groups == 0, 0.0, np.where(groups == 1, low, high))
    return targets, groups


def _pct(x: np.ndarray) -> float:
    return round(100.0 * float(np.mean(x)), 2) if len(x) else float("nan")


def _rate(ev: np.ndarray, mask: np.ndarray) -> float | None:
    return round(float(ev[mask].mean()), 4) if mask.any() else None


def _quart(x: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in np.percentile(x, [25, 50, 75])]


#: the synthetic cohort's true proportional-hazards model: log-hazard ratio per unit of each covariate
#: (``log1p_lge_percent`` = log(1 + LGE %), age in years, LVEF in %) and the Weibull baseline's shape
HAZARD: dict[str, float] = {"log1p_lge_percent": 0.9, "age": 0.03, "lvef": -0.04, "shape": 1.5}


def true_log_hazard(lge_percent: Any, age: Any, lvef: Any) -> np.ndarray:
    """The synthetic cohort's true linear predictor ``eta`` (centred at age 56, LVEF 59 %)."""
    return (
        HAZARD["log1p_lge_percent"] * np.log1p(np.asarray(lge_percent, float))
        + HAZARD["age"] * (np.asarray(age, float) - 56.0)
        + HAZARD["lvef"] * (np.asarray(lvef, float) - 59.0)
    )


def draw_followup(
    eta: Any, censor: Any, unit_exp: Any, event_rate: float, shape: float | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Event indicators, follow-up times and the baseline scale of a Weibull proportional-hazards model.

    The event time of patient ``i`` is ``(E_i / (scale * exp(eta_i))) ** (1 / shape)`` with ``E_i`` the
    unit-exponential draw ``unit_exp[i]``; it is observed when it falls before ``censor[i]``. ``scale``
    is found by bisection so that ``round(event_rate * n)`` events are observed (exactly, unless two
    patients tie). Returns ``(event 0/1, follow-up years = min(time, censor), scale)``.
    """
    eta = np.asarray(eta, float)
    c = np.asarray(censor, float)
    e = np.asarray(unit_exp, float)
    shape = float(HAZARD["shape"] if shape is None else shape)
    k = int(round(event_rate * eta.size))

    def times(log_scale: float) -> np.ndarray:
        return (e / np.exp(log_scale + eta)) ** (1.0 / shape)

    lo, hi = -40.0, 40.0  # log scale: few events at lo, all at hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if int((times(mid) <= c).sum()) < k:
            lo = mid
        else:
            hi = mid
    t = times(hi)
    ev = (t <= c).astype(int)
    return ev, np.maximum(np.minimum(t, c), 0.01), float(np.exp(hi))


def tabular_cohort(
    n: int = 116,
    *,
    seed: int = 0,
    event_rate: float = 0.20,
    lge_fraction_none: float = 0.57,
    lge_fraction_high: float = 0.16,
) -> dict[str, np.ndarray]:
    """The synthetic cohort's clinical table without images (for survival tests and benchmarks).

    Same distributions as :func:`make_cohort` (burden targets, age, LVEF, censoring) and the same
    hazard :data:`HAZARD`; returns arrays ``lge_percent``, ``age``, ``lvef``, ``eta`` (true linear
    predictor), ``event``, ``followup_years``.
    """
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
    lge, _ = _sample_targets(rng, int(n), lge_fraction_none, lge_fraction_high)
    age = np.clip(np.round(rng.normal(56.0, 9.0, n)), 22, 88)
    lvef = np.round(np.clip(rng.normal(59.8, 10.0, n) - 0.35 * lge, 15.0, 78.0), 1)
    censor = np.clip(rng.normal(5.45, 0.75, n), 2.0, 9.0)
    eta = true_log_hazard(lge, age, lvef)
    ev, fu, _ = draw_followup(eta, censor, rng.exponential(1.0, n), event_rate)
    return {"lge_percent": lge, "age": age, "lvef": lvef, "eta": eta, "event": ev, "followup_years": fu}


def make_cohort(
    out_dir: str | Path,
    *,
    n_patients: int = 116,
    image_size: int = 128,
    n_slices: int | tuple[int, int] = (5, 8),
    seed: int = 0,
    lge_fraction_none: float = 0.57,
    lge_fraction_high: float = 0.16,
    event_rate: float = 0.20,
    identifiers: str | Mapping[str, Any] | Callable[[int, str], Mapping[str, Any]] | None = "fake",
    transfer_syntax: str = "explicit-le",
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic LGE cohort to ``out_dir`` and return the path of its ``manifest.csv``.

    Args:
        out_dir: an empty or new folder (``overwrite=True`` replaces a previous cohort there).
        n_patients: 8..100000; ids ``SYN001``, ``SYN002``...
        image_size: rows = columns of every frame, 32..1024 (field of view ~180-215 mm).
        n_slices: slices per stack, an integer or an inclusive (min, max) range, 3..30.
        seed: non-negative integer; the same arguments and seed give byte-identical files.
        lge_fraction_none: share of patients without LGE (0..1).
        lge_fraction_high: share with LGE burden > 5.7% (0..1; with ``lge_fraction_none`` <= 1);
            the rest have 0 < burden <= 5.7%. Counts are ``round(fraction * n_patients)``.
        event_rate: share of patients with a clinical event (strictly between 0 and 1).
        identifiers: ``"fake"`` (recognisable fake identifiers, see :func:`fake_identifiers`),
            ``None`` (the :data:`IDENTIFIER_KEYWORDS` tags left blank), a dict
            ``{DICOM keyword: value}`` whose string values may use ``{index}`` (1-based) /
            ``{patient_id}`` placeholders, or a callable ``(index, patient_id) -> dict``.
            Identifier keywords a custom spec leaves out stay blank. PatientSex and PatientAge
            are always written (they are the cohort's covariates, not identifiers).
        transfer_syntax: ``"explicit-le"`` (Explicit VR Little Endian) or ``"rle"`` (RLE Lossless).
        progress: show a tqdm progress bar.
        overwrite: allow a non-empty ``out_dir`` (only this generator's outputs are replaced).

    Raises:
        ConfigError: an argument is out of range (the message names it, the allowed values and
            the value received) or ``out_dir`` is not empty.
    """
    n = _check_int("n_patients", n_patients, 8, 100_000)
    size = _check_int("image_size", image_size, 32, 1024)
    s_lo, s_hi = _check_slices(n_slices)
    if not _is_int(seed) or int(seed) < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}")
    seed = int(seed)
    f_none = _check_fraction("lge_fraction_none", lge_fraction_none, 0.0, 1.0)
    f_high = _check_fraction("lge_fraction_high", lge_fraction_high, 0.0, 1.0)
    if f_none + f_high > 1.0 + 1e-9:
        raise ConfigError(
            "lge_fraction_none + lge_fraction_high must be at most 1 (the rest have 0 < LGE <= "
            f"5.7%); got {f_none} + {f_high} = {f_none + f_high:.3f}"
        )
    ev_rate = _check_fraction("event_rate", event_rate, 0.0, 1.0, open_ends=True)
    ident_spec = _check_identifiers(identifiers)
    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise ConfigError(
            f"transfer_syntax must be one of {', '.join(map(repr, TRANSFER_SYNTAXES))}; got {transfer_syntax!r}"
        )
    out = _prepare_out_dir(out_dir, bool(overwrite))

    from tqdm.auto import tqdm

    master = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    targets, groups = _sample_targets(master, n, f_none, f_high)
    latent_noise = master.exponential(1.0, size=n)  # unit-exponential draws of the survival times
    width = max(3, len(str(n)))

    rows: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    lge = np.zeros(n)
    basal = np.zeros(n)
    ages = np.zeros(n, dtype=int)
    sexes = np.zeros(n, dtype=int)
    lvefs = np.zeros(n)
    censor = np.zeros(n)
    nsl = np.zeros(n, dtype=int)
    bar = tqdm(total=n, disable=not progress, desc="synthetic LGE cohort", unit="patient")
    try:
        for i in range(n):
            pid = f"SYN{i + 1:0{width}d}"
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i)))
            S = int(rng.integers(s_lo, s_hi + 1))
            stack = make_phantom(rng, image_size=size, n_slices=S, target_lge_percent=float(targets[i]))
            geom = SaxGeometry(rng, stack)
            age = int(np.clip(round(rng.normal(56.0, 9.0)), 22, 88))
            sex = int(rng.random() < 0.40)
            lvef = float(np.clip(rng.normal(59.8, 10.0) - 0.35 * stack.lge_percent, 15.0, 78.0))
            censor[i] = float(np.clip(rng.normal(5.45, 0.75), 2.0, 9.0))
            rng.beta(1.6, 1.4)  # no longer used; drawn so that each patient's image stream is unchanged
            gain = float(rng.uniform(300.0, 1200.0))
            names: list[str] = []
            while len(names) < S:
                nm = f"IM_{rng.bytes(4).hex().upper()}.dcm"
                if nm not in names:
                    names.append(nm)
            ids = _identifiers_for(ident_spec, i + 1, pid, seed, age)
            write_dicom_series(
                out / "dicom" / pid,
                stack,
                geom,
                uid_key=(seed, pid),
                identifiers=ids,
                age=age,
                sex=sex,
                file_names=names,
                gain=gain,
                transfer_syntax=transfer_syntax,
            )
            write_label_nifti(out / "masks" / f"{pid}.nii.gz", stack.labels, geom)
            lge[i], basal[i] = stack.lge_percent, stack.basal_lge_percent
            ages[i], sexes[i], lvefs[i], nsl[i] = age, sex, round(lvef, 1), S
            rows.append({"patient_id": pid, "image": f"dicom/{pid}", "slice": "basal", "mask": f"masks/{pid}.nii.gz"})
            truth.append(
                {
                    "patient_id": pid,
                    "lge_percent": f"{stack.lge_percent:.4f}",
                    "basal_lge_percent": f"{stack.basal_lge_percent:.4f}",
                    "target_lge_percent": f"{targets[i]:.4f}",
                    "n_blobs": stack.n_blobs,
                    "n_slices": S,
                    "image_size": size,
                    "pixel_spacing_mm": _fmt(stack.pixel_spacing[0], 4),
                    "slice_spacing_mm": _fmt(stack.slice_spacing, 3),
                    "myocardium_px": int(np.count_nonzero((stack.labels == MYOCARDIUM) | (stack.labels == LGE))),
                }
            )
            bar.update(1)
    finally:
        bar.close()

    # events: a proportional-hazards (Cox) model with known coefficients (HAZARD), Weibull baseline,
    # administrative censoring at each patient's follow-up; the baseline scale is set so that exactly
    # round(rate * n) patients have their event before censoring
    eta = true_log_hazard(lge, ages, lvefs)
    events, follow, scale = draw_followup(eta, censor, latent_noise, ev_rate)
    for i, t in enumerate(truth):
        t["true_log_hazard"] = f"{eta[i]:.6f}"
    for i, r in enumerate(rows):
        r.update(
            lge_percent=f"{lge[i]:.3f}",
            event=int(events[i]),
            followup_years=f"{follow[i]:.2f}",
            age=int(ages[i]),
            sex=int(sexes[i]),
            lvef=f"{lvefs[i]:.1f}",
        )
    manifest = out / "manifest.csv"
    from lgenet.data.manifest import write_manifest

    write_manifest(manifest, rows, columns=MANIFEST_COLUMNS)

    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=list(truth[0]), lineterminator="\n")
    wr.writeheader()
    wr.writerows(truth)
    atomic_write_text(out / "truth.csv", buf.getvalue())

    lge_r = np.round(lge, 3)
    none, high = lge_r == 0, lge_r > LGE_THRESHOLD
    low = ~none & ~high
    summary = {
        "generator": "lgenet.data.synth.make_cohort",
        "seed": seed,
        "n_patients": n,
        "image_size": size,
        "n_slices_range": [s_lo, s_hi],
        "n_slices_mean": round(float(nsl.mean()), 2),
        "transfer_syntax": transfer_syntax,
        "identifiers": "fake" if ident_spec == "fake" else ("blank" if ident_spec is None else "custom"),
        "label_codes": {str(c): name for c, name in LABELS.items()},
        "lge_threshold_percent": LGE_THRESHOLD,
        "targets": {
            "lge_fraction_none": f_none,
            "lge_fraction_high": f_high,
            "event_rate": ev_rate,
        },
        "pct_no_lge": _pct(none),
        "pct_lge_0_to_5_7": _pct(low),
        "pct_lge_gt_5_7": _pct(high),
        "lge_percent_mean": round(float(lge.mean()), 3),
        "lge_percent_sd": round(float(lge.std(ddof=1)), 3),
        "lge_percent_mean_gt_5_7": round(float(lge[high].mean()), 3) if high.any() else None,
        "lge_percent_sd_gt_5_7": round(float(lge[high].std(ddof=1)), 3) if high.sum() > 1 else None,
        "pct_gt_5_7_with_lge_on_basal_slice": _pct(basal[high] > 0) if high.any() else None,
        "event_rate": round(float(events.mean()), 4),
        "event_rate_by_group": {
            "no_lge": _rate(events, none),
            "lge_0_to_5_7": _rate(events, low),
            "lge_gt_5_7": _rate(events, high),
            "lge_le_5_7": _rate(events, ~high),
        },
        "followup_years_quartiles": _quart(follow),
        "age_quartiles": _quart(ages),
        "pct_female": _pct(sexes == 1),
        "lvef_quartiles": _quart(lvefs),
        "sex_coding": "1 = female, 0 = male",
        "hazard": {
            "model": "h(t | x) = scale * shape * t^(shape - 1) * exp(eta); eta = sum(coef * x); "
            "event = time <= censoring (administrative, ~N(5.45, 0.75) years)",
            "coefficients": {k: v for k, v in HAZARD.items() if k != "shape"},
            "covariates": {"log1p_lge_percent": "log(1 + lge_percent)", "age": "years", "lvef": "percent"},
            "shape": HAZARD["shape"],
            "scale": round(float(scale), 8),
        },
    }
    atomic_write_text(out / "cohort_summary.json", json.dumps(summary, indent=2) + "\n")
    return manifest
