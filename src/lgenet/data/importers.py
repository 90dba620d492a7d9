"""Dataset importers: image + label-map NIfTI pairs -> an lgenet cohort manifest.

Two entry points:

* :func:`import_nifti_masks` -- any dataset of NIfTI images with label-map masks on the same voxel
  grid. You declare which label values are myocardium, which of those are enhancement (LGE) and
  which other values may appear (background, cavity...); the slice axis and which end is basal.
* :func:`import_emidec` -- the EMIDEC training set (``Case_*/Images``, ``Case_*/Contours``,
  ``clinical.csv``) with its labels (0 background, 1 cavity, 2 myocardium, 3 infarct, 4 no-reflow;
  myocardium = {2,3,4}, LGE = {3,4}), its clinical table and the ``event`` proxy.

Per patient the manifest gets one row pointing at the *volume* with ``slice=basal`` (the reader
takes the basal frame), the whole-LV LGE burden ``lge_percent`` (enhanced / myocardial voxels x
100, all slices pooled) and the basal-slice burden ``lge_percent_basal``, ``n_slices``, the mask,
and the clinical covariates. With ``frames_dir`` every short-axis slice is also written as a
one-slice NIfTI (image and mask) plus a long ``frames.csv`` manifest (one row per slice, patient
labels repeated, ``slice_index`` apex -> base, ``lge_percent_slice``) for multi-slice work.

Images and masks are paired as files by case ID: by default the file name without ``.nii(.gz)``
(same names in both folders); with ``image_pattern``/``mask_pattern`` such as ``'{id}_LGE.nii.gz'``
and ``'{id}_gd.nii.gz'`` the ``{id}`` part of each file name (``*``/``?`` are wildcards; files
that do not match are ignored and listed in the sidecar); or from a ``pairs_csv`` with columns
``case_id,image,mask`` (paths relative to that CSV), see :func:`read_pairs_csv`. An image without
a mask or a mask without an image is refused, naming the case.

Voxels are paired by array index: the affines are never compared or resampled through
(EMIDEC's are not physical). A case is refused, with a message naming it, when: a file is not
NIfTI or cannot be read; mask and image grids (array shapes) differ; the mask holds a value that
was not declared; the mask has no myocardium at all, or none on the basal slice; its clinical row
is missing. A sidecar ``<manifest stem>.import.json`` records the options, counts and notes on the
covariates (which ones leak a label; see :data:`EMIDEC_COVARIATE_NOTES`).
"""

from __future__ import annotations

import csv
import glob as _glob
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.errors import ConfigError, DataError
from lgenet.utils import atomic_path, atomic_write_text

__all__ = [
    "CaseError",
    "CaseStats",
    "import_emidec",
    "import_nifti_masks",
    "case_stats",
    "find_nifti",
    "read_pairs_csv",
    "EMIDEC_CLINICAL_MAP",
    "EMIDEC_COVARIATES",
    "EMIDEC_COVARIATE_NOTES",
]

#: EMIDEC ``clinical.csv`` column -> manifest column. Columns not listed are not imported
#: (``source_row_case``, ``label_pathological`` duplicates ``group``, and the ``*_ml_src`` volumes
#: are computed from the expert contours, i.e. they *are* the LGE label).
EMIDEC_CLINICAL_MAP = {
    "group": "group",
    "sex": "sex",
    "age": "age",
    "tobacco": "tobacco",
    "overweight": "overweight",
    "hypertension": "hypertension",
    "diabetes": "diabetes",
    "familial_disease": "familial_disease",
    "ECG": "ecg_st_plus",
    "troponin": "troponin",
    "killip": "killip",
    "FEVG": "lvef",
    "NTP": "ntprobnp",
}

#: Clinical covariates (manifest names) known at presentation, for the covariates-only baseline.
EMIDEC_COVARIATES = (
    "sex",
    "age",
    "tobacco",
    "overweight",
    "hypertension",
    "diabetes",
    "familial_disease",
    "ecg_st_plus",
    "troponin",
    "killip",
    "lvef",
    "ntprobnp",
)

EMIDEC_COVARIATE_NOTES = {
    "sex": "0 = male, 1 = female (admission)",
    "age": "years (admission)",
    "tobacco": "EMIDEC code 0/1/2 (original 1/2/3 minus 1; meaning not documented); used as ordinal",
    "overweight": "1 = yes (admission)",
    "hypertension": "1 = yes (history, admission)",
    "diabetes": "1 = yes (history, admission)",
    "familial_disease": "1 = familial history of coronary artery disease (admission)",
    "ecg_st_plus": "ECG ST elevation, 1 = yes (presentation ECG)",
    "troponin": "troponin, raw value as published (peak/admission not documented)",
    "killip": "Killip class (max, 1-4). DEFINES the `event` proxy (Killip >= II): never a covariate "
    "for the event task; a fair covariate for the lge task",
    "lvef": "FEVG, left-ventricular ejection fraction %, raw value (modality not documented; may come "
    "from imaging during the stay, so not strictly 'at presentation')",
    "ntprobnp": "NT-proBNP, raw value",
    "group": "N/P = normal/pathological case folder; equals the whole-LV lge label in 95/100 cases, "
    "so NOT a fair covariate for the lge task (it is the diagnosis the images show)",
}


class CaseError(DataError):
    """One case of a dataset cannot be imported; ``case`` names it."""

    def __init__(self, case: str, message: str):
        self.case = case
        super().__init__(f"case {case}: {message}")


@dataclass
class CaseStats:
    """Mask-derived numbers of one case (slices ordered apex -> base)."""

    case: str
    image: Path
    mask: Path
    shape: tuple[int, ...]
    n_slices: int
    spacing: tuple[float, ...]
    myo_per_slice: np.ndarray
    lge_per_slice: np.ndarray
    lge_percent: float
    lge_percent_basal: float
    myo_ml: float
    lge_ml: float
    labels_found: tuple[int, ...] = ()
    notes: list[str] = field(default_factory=list)
    #: per non-zero 'other' label: the share of its voxels inside the myocardium's filled outline
    #: (an LV cavity lies inside it; a label outside it is not the cavity)
    other_enclosed: dict = field(default_factory=dict)

    @property
    def lge_percent_per_slice(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self.myo_per_slice > 0, 100.0 * self.lge_per_slice / np.maximum(self.myo_per_slice, 1), np.nan
            )


# ------------------------------------------------------------------------------------ helpers
def _strip_nii(name: str) -> str | None:
    low = name.lower()
    for ext in (".nii.gz", ".nii"):
        if low.endswith(ext):
            return name[: -len(ext)]
    return None


def _labels_tuple(values: Iterable[int] | str, name: str) -> tuple[int, ...]:
    if isinstance(values, str):
        values = [v for v in re.split(r"[,\s]+", values.strip()) if v]
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be integer label values, got {v!r}") from None
        if not f.is_integer():
            raise ConfigError(f"{name} must be integer label values, got {v!r}")
        out.append(int(f))
    return tuple(dict.fromkeys(out))


def find_nifti(spec: str | Path | Sequence[str | Path], what: str = "images") -> list[Path]:
    """Files named by a folder (its ``*.nii``/``*.nii.gz``), a glob pattern, a file, or a list."""
    if isinstance(spec, (list, tuple)):
        return [Path(p) for p in spec]
    s = str(spec)
    p = Path(s)
    if p.is_dir():
        files = sorted(q for q in p.iterdir() if q.is_file() and _strip_nii(q.name) is not None)
        if not files:
            raise DataError(f"{what}: no .nii or .nii.gz file in folder {p}")
        return files
    if any(ch in s for ch in "*?["):
        files = sorted(Path(q) for q in _glob.glob(s, recursive=True) if Path(q).is_file())
        if not files:
            raise DataError(f"{what}: the pattern {s!r} matches no file")
        return files
    if p.is_file():
        return [p]
    raise DataError(f"{what}: {s} is neither a folder, a file nor a glob pattern that matches files")


def _load(path: Path, case: str, what: str):
    import nibabel as nib

    if _strip_nii(path.name) is None:
        raise CaseError(case, f"{what} {path} is not a NIfTI file (expected .nii or .nii.gz)")
    if not path.is_file():
        raise CaseError(case, f"{what} {path} does not exist")
    try:
        obj = nib.load(str(path))
        data = np.asarray(obj.dataobj)
    except Exception as exc:  # nibabel raises several exception types for a corrupt file
        raise CaseError(case, f"{what} {path} could not be read as NIfTI ({type(exc).__name__}: {exc})") from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise CaseError(case, f"{what} {path} has shape {data.shape}; expected a 3-D stack (or one 2-D slice)")
    return obj, data


def _check_convention(
    stats: Sequence[CaseStats], myo: tuple[int, ...], lge: tuple[int, ...], other: tuple[int, ...]
) -> None:
    """Refuse masks that contradict the *default* (EMIDEC) declaration: there, label 1 is the LV cavity
    and lies inside the myocardium's outline. A label 1 mostly outside it in most cases means another
    convention (e.g. 0 background / 1 myocardium / 2 scar), and every burden would silently be 0."""
    if (myo, lge, other) != ((2, 3, 4), (3, 4), (0, 1)):
        return  # the user declared the labels
    with_1 = [s for s in stats if 1 in s.other_enclosed]
    outside = [s.case for s in with_1 if s.other_enclosed[1] < 0.5]
    if with_1 and len(outside) * 2 >= len(with_1):
        raise ConfigError(
            f"the masks do not follow the default label convention (0 background, 1 LV cavity, 2 myocardium, "
            f"3 infarct, 4 no-reflow): label 1 lies outside the myocardium's outline in {len(outside)} of "
            f"{len(with_1)} case(s) (e.g. {', '.join(outside[:3])}), so it is not the LV cavity and every burden would "
            "be computed from the wrong labels. Declare this dataset's labels, e.g. for 0 background / 1 myocardium "
            "/ 2 scar: --myo-labels 1,2 --lge-labels 2 --other-labels 0"
        )


def case_stats(
    image: str | Path,
    mask: str | Path,
    *,
    case: str | None = None,
    myo_labels: Sequence[int] = (2, 3, 4),
    lge_labels: Sequence[int] = (3, 4),
    other_labels: Sequence[int] = (0, 1),
    slice_axis: int = 2,
    basal_end: str = "last",
    keep_arrays: bool = False,
) -> CaseStats | tuple[CaseStats, np.ndarray, np.ndarray]:
    """Check one image/mask pair and measure its LGE burden (whole LV and basal slice).

    With ``keep_arrays`` also returns the image and label stacks, ``(S, X, Y)`` apex -> base.
    Raises :class:`CaseError` (naming the case) for every refusal listed in the module docstring.
    """
    image, mask = Path(image), Path(mask)
    case = case or _strip_nii(image.name) or image.name
    img_obj, img = _load(image, case, "image")
    _, lab = _load(mask, case, "mask")
    if img.shape != lab.shape:
        raise CaseError(
            case,
            f"mask grid {lab.shape} ({mask}) differs from image grid {img.shape} ({image}); "
            "image and mask are paired by array index, so their array shapes must be equal",
        )
    labf = np.asarray(lab, dtype=np.float64)
    if not np.isfinite(labf).all() or not np.array_equal(labf, np.rint(labf)):
        raise CaseError(case, f"mask {mask} holds non-integer values; expected a label map")
    labi = labf.astype(np.int64)
    found = tuple(int(v) for v in np.unique(labi))
    declared = set(myo_labels) | set(lge_labels) | set(other_labels)
    unknown = [v for v in found if v not in declared]
    if unknown:
        raise CaseError(
            case,
            f"mask {mask} holds label value(s) {unknown} outside the declared ones "
            f"(myocardium {list(myo_labels)}, LGE {list(lge_labels)}, other {list(other_labels)}); "
            "declare them (e.g. --other-labels) or fix the mask",
        )
    lab_st = np.moveaxis(labi, slice_axis, 0)
    img_st = np.moveaxis(img, slice_axis, 0)
    if basal_end == "first":
        lab_st, img_st = lab_st[::-1], img_st[::-1]
    myo = np.isin(lab_st, list(myo_labels))
    lge = np.isin(lab_st, list(lge_labels))
    n_slices = lab_st.shape[0]
    myo_per = myo.reshape(n_slices, -1).sum(1)
    lge_per = lge.reshape(n_slices, -1).sum(1)
    if myo_per.sum() == 0:
        raise CaseError(case, f"mask {mask} has no myocardium (no voxel with label {list(myo_labels)})")
    if myo_per[-1] == 0:
        raise CaseError(
            case,
            f"mask {mask} has no myocardium on the basal slice (slice axis {slice_axis}, "
            f"basal end '{basal_end}'); check --basal-end/--slice-axis or crop the stack",
        )
    if not np.isfinite(np.asarray(img_st, dtype=np.float64)[myo]).all():
        raise CaseError(case, f"image {image} has NaN/inf values inside the myocardium")
    from scipy.ndimage import binary_fill_holes

    hull = np.stack([binary_fill_holes(m) for m in myo])
    enclosed = {}
    for v in other_labels:
        sel = lab_st == v
        if v != 0 and sel.any():
            enclosed[int(v)] = float(hull[sel].mean())
    zooms = tuple(float(z) for z in img_obj.header.get_zooms()[:3])
    zooms = zooms + (1.0,) * (3 - len(zooms))
    vox_ml = float(np.prod(zooms)) / 1000.0
    in_plane = tuple(z for i, z in enumerate(zooms) if i != slice_axis)
    st = CaseStats(
        case=case,
        image=image,
        mask=mask,
        shape=tuple(img.shape),
        n_slices=n_slices,
        spacing=(zooms[slice_axis], *in_plane),
        myo_per_slice=myo_per,
        lge_per_slice=lge_per,
        lge_percent=100.0 * float(lge_per.sum()) / float(myo_per.sum()),
        lge_percent_basal=100.0 * float(lge_per[-1]) / float(myo_per[-1]),
        myo_ml=float(myo_per.sum()) * vox_ml,
        lge_ml=float(lge_per.sum()) * vox_ml,
        labels_found=found,
        other_enclosed=enclosed,
    )
    if keep_arrays:
        return st, np.asarray(img_st), lab_st
    return st


def _read_clinical(path: Path, id_column: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    if not path.is_file():
        raise DataError(
            f"clinical file {path} does not exist; give the CSV that holds one row per case (ID column {id_column!r})"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"clinical file {path} could not be read as UTF-8 text: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    if id_column not in header:
        raise DataError(f"clinical file {path} has no ID column {id_column!r}; its columns are {header}")
    rows: dict[str, dict[str, str]] = {}
    for i, row in enumerate(reader, start=2):
        cid = (row.get(id_column) or "").strip()
        if not cid:
            raise DataError(f"clinical file {path}, line {i}: empty {id_column!r}")
        if cid in rows:
            raise DataError(f"clinical file {path}, line {i}: case {cid} appears twice")
        rows[cid] = {k: (v or "").strip() for k, v in row.items() if k is not None}
    return header, rows


def _fmt(v: float, nd: int = 4) -> float:
    return float(round(v, nd))


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    try:
        from lgenet.data.manifest import write_manifest
    except ImportError:  # manifest module not available: plain CSV, same cell rules
        write_manifest = None
    if write_manifest is not None:
        return write_manifest(path, rows, columns=columns)
    cols = columns or list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in cols])
    return atomic_write_text(path, buf.getvalue())


def _write_frames(
    frames_dir: Path, st: CaseStats, img_st: np.ndarray, lab_st: np.ndarray, base_row: Mapping[str, Any]
) -> list[dict[str, Any]]:
    import nibabel as nib

    rows = []
    pct = st.lge_percent_per_slice
    cdir = frames_dir / st.case
    for k in range(st.n_slices):
        affine = np.diag([-1.0, -1.0, 1.0, 1.0])  # frames are not placed in space (like EMIDEC)
        paths = {}
        for kind, arr, dtype in (("image", img_st[k], np.float32), ("mask", lab_st[k], np.uint8)):
            out = nib.Nifti1Image(np.asarray(arr, dtype=dtype)[:, :, None], affine)
            out.header.set_zooms(tuple(float(z) for z in st.spacing[1:]) + (float(st.spacing[0]),))
            p = cdir / f"{st.case}_s{k:02d}_{kind}.nii.gz"
            with atomic_path(p) as tmp:
                nib.save(out, str(tmp))
            paths[kind] = p
        rows.append(
            {
                **base_row,
                "image": str(paths["image"].resolve()),
                "slice": 0,
                "mask": str(paths["mask"].resolve()),
                "slice_index": k,
                "is_basal": int(k == st.n_slices - 1),
                "lge_percent_slice": "" if math.isnan(pct[k]) else _fmt(pct[k]),
            }
        )
    return rows


# --------------------------------------------------------------------------------- importers
def import_nifti_masks(
    images: str | Path | Sequence[str | Path] | None,
    masks: str | Path | Sequence[str | Path] | None,
    out_manifest: str | Path,
    *,
    myo_labels: Sequence[int] | str = (2, 3, 4),
    lge_labels: Sequence[int] | str = (3, 4),
    other_labels: Sequence[int] | str = (0, 1),
    slice_axis: int = 2,
    basal_end: str = "last",
    clinical_csv: str | Path | None = None,
    id_column: str = "case_id",
    clinical_columns: Mapping[str, str] | Sequence[str] | None = None,
    event_column: str | None = None,
    event_min: float | None = None,
    followup_column: str | None = None,
    case_ids: Mapping[str, str] | None = None,
    image_pattern: str | None = None,
    mask_pattern: str | None = None,
    pairs_csv: str | Path | None = None,
    frames_dir: str | Path | None = None,
    lge_threshold: float = 5.7,
    dataset: str = "nifti-masks",
    notes: Mapping[str, Any] | None = None,
) -> Path:
    """Import image + label-map NIfTI pairs into a manifest CSV (written atomically).

    Args:
        images, masks: a folder of ``.nii``/``.nii.gz`` files, a glob pattern (quote it in a
            shell) or a list of paths. Images and masks are paired by case ID = file name without
            ``.nii(.gz)`` (e.g. ``imgs/P01.nii.gz`` with ``masks/P01.nii.gz``), unless ``case_ids``
            maps image path -> ID and the lists are given in the same order. ``None`` with
            ``pairs_csv``.
        image_pattern, mask_pattern: file-name patterns with one ``{id}`` placeholder, e.g.
            ``'{id}_LGE.nii.gz'`` and ``'{id}_gd.nii.gz'``: the ``{id}`` part is the case ID and
            pairs the files (``*``/``?`` are wildcards; a pattern left out = same-name rule).
            Files that do not match are ignored and listed in the sidecar (``pairing``).
        pairs_csv: a CSV with columns ``case_id,image,mask`` (paths relative to the CSV) instead
            of ``images``/``masks``; see :func:`read_pairs_csv`.
        myo_labels: label values forming the whole myocardium (normal + enhanced).
        lge_labels: the enhanced ones (must be a subset of ``myo_labels``).
        other_labels: other values allowed in the mask (background, cavity...). Any value outside
            the three sets refuses the case.
        slice_axis: array axis of the short-axis slices (NIfTI: 2). basal_end: ``'last'`` or
            ``'first'`` index is the base.
        clinical_csv: optional CSV with one row per case; ``id_column`` holds the case ID. Every
            case needs a row. ``clinical_columns`` selects columns (a list) or renames them
            (``{source: manifest_name}``); default: all but the ID column.
        event_column: clinical column giving ``event``: 0/1, or with ``event_min`` the rule
            ``value >= event_min``. followup_column: clinical column for ``followup_years``.
        frames_dir: also write every slice as a one-slice NIfTI + ``frames.csv`` there.
        lge_threshold: only used for the counts in the sidecar JSON (the manifest stores %).

    Returns:
        the manifest path. A sidecar ``<stem>.import.json`` holds options, counts and notes.
    """
    myo_t = _labels_tuple(myo_labels, "myo_labels")
    lge_t = _labels_tuple(lge_labels, "lge_labels")
    other_t = _labels_tuple(other_labels, "other_labels")
    if not myo_t:
        raise ConfigError("myo_labels must list at least one label value")
    if not set(lge_t) <= set(myo_t):
        raise ConfigError(
            f"lge_labels {list(lge_t)} must be a subset of myo_labels {list(myo_t)} "
            "(the burden is enhanced myocardium / whole myocardium)"
        )
    if set(other_t) & set(myo_t):
        raise ConfigError(f"other_labels {list(other_t)} overlap myo_labels {list(myo_t)}")
    if basal_end not in ("first", "last"):
        raise ConfigError(f"basal_end must be 'first' or 'last', got {basal_end!r}")
    if slice_axis not in (0, 1, 2):
        raise ConfigError(f"slice_axis must be 0, 1 or 2, got {slice_axis!r}")
    if event_min is not None and event_column is None:
        raise ConfigError("event_min needs event_column")
    if (event_column or followup_column or clinical_columns) and clinical_csv is None:
        raise ConfigError("event_column, followup_column and clinical_columns need clinical_csv")

    ignored: dict[str, list[str]] = {"images": [], "masks": []}
    if pairs_csv is not None:
        if images is not None or masks is not None or image_pattern or mask_pattern or case_ids is not None:
            raise ConfigError(
                "pairs_csv lists the images and masks itself: give either pairs_csv, or "
                "images and masks (with image_pattern/mask_pattern or case_ids), not both"
            )
        pairs = read_pairs_csv(pairs_csv)
        rule = f"pairs file {pairs_csv}"
    else:
        if images is None or masks is None:
            raise ConfigError("give images and masks (folders, globs or lists), or pairs_csv")
        img_files = find_nifti(images, "images")
        mask_files = find_nifti(masks, "masks")
        if image_pattern or mask_pattern:
            if case_ids is not None:
                raise ConfigError("give either case_ids or image_pattern/mask_pattern, not both")
            pairs, ignored = _pair_by_pattern(img_files, mask_files, image_pattern, mask_pattern)
            rule = f"file-name patterns: images {image_pattern or '{id}.nii(.gz)'}, masks {mask_pattern or '{id}.nii(.gz)'}"
        else:
            shared = {p.resolve() for p in img_files} & {p.resolve() for p in mask_files}
            if shared:
                eg = sorted(p.name for p in shared)[:3]
                raise ConfigError(
                    f"--images and --masks select the same {len(shared)} file(s) (e.g. {', '.join(eg)}): each image would "
                    "be its own mask. When images and masks share a folder, tell them apart by name, e.g. "
                    "--image-pattern '{id}_LGE.nii.gz' --mask-pattern '{id}_gd.nii.gz', or list them with --pairs"
                )
            pairs = _pair(img_files, mask_files, case_ids)
            rule = "case IDs given" if case_ids is not None else "same file name"

    clin: dict[str, dict[str, str]] | None = None
    col_map: dict[str, str] = {}
    if clinical_csv is not None:
        header, clin = _read_clinical(Path(clinical_csv), id_column)
        if clinical_columns is None:
            col_map = {c: c for c in header if c != id_column}
        elif isinstance(clinical_columns, Mapping):
            col_map = dict(clinical_columns)
        else:
            col_map = {c: c for c in clinical_columns}
        for c in list(col_map) + [x for x in (event_column, followup_column) if x]:
            if c not in header:
                raise DataError(f"clinical file {clinical_csv} has no column {c!r}; its columns are {header}")
        reserved = {
            "patient_id",
            "image",
            "slice",
            "lge_percent",
            "event",
            "followup_years",
            "mask",
            "lge_percent_basal",
            "n_slices",
        }
        clash = sorted(set(col_map.values()) & reserved)
        if clash:
            raise ConfigError(
                f"clinical columns would overwrite manifest column(s) {clash}; rename them "
                "with clinical_columns={source: new_name}"
            )
        missing = [cid for cid, _, _ in pairs if cid not in clin]
        if missing:
            raise CaseError(
                missing[0],
                f"no row in clinical file {clinical_csv} (ID column {id_column!r})"
                + (f"; {len(missing) - 1} more case(s) also missing: {missing[1:6]}" if len(missing) > 1 else ""),
            )

    out_manifest = Path(out_manifest)
    rows: list[dict[str, Any]] = []
    frame_rows: list[dict[str, Any]] = []
    stats: list[CaseStats] = []
    for cid, ip, mp in pairs:
        res = case_stats(
            ip,
            mp,
            case=cid,
            myo_labels=myo_t,
            lge_labels=lge_t,
            other_labels=other_t,
            slice_axis=slice_axis,
            basal_end=basal_end,
            keep_arrays=frames_dir is not None,
        )
        if frames_dir is not None:
            st, img_st, lab_st = res  # type: ignore[misc]
        else:
            st = res  # type: ignore[assignment]
        stats.append(st)
        row: dict[str, Any] = {
            "patient_id": cid,
            "image": str(ip.resolve()),
            "slice": "basal",
            "lge_percent": _fmt(st.lge_percent),
            "event": None,
            "followup_years": None,
            "mask": str(mp.resolve()),
            "lge_percent_basal": _fmt(st.lge_percent_basal),
            "n_slices": st.n_slices,
        }
        if clin is not None:
            crow = clin[cid]
            if event_column:
                row["event"] = _event_value(crow.get(event_column, ""), event_min, cid, event_column, clinical_csv)
            if followup_column:
                row["followup_years"] = crow.get(followup_column, "") or None
            for src, dst in col_map.items():
                row[dst] = crow.get(src, "")
        rows.append(row)
        if frames_dir is not None:
            frame_rows += _write_frames(Path(frames_dir), st, img_st, lab_st, row)

    _check_convention(stats, myo_t, lge_t, other_t)
    columns = [
        "patient_id",
        "image",
        "slice",
        "lge_percent",
        "event",
        "followup_years",
        "mask",
        "lge_percent_basal",
        "n_slices",
    ] + [c for c in col_map.values()]
    _write_csv(out_manifest, rows, columns)
    if frames_dir is not None:
        fcols = columns[:3] + ["slice_index", "is_basal", "lge_percent_slice"] + columns[3:]
        _write_csv(Path(frames_dir) / "frames.csv", frame_rows, fcols)

    summary = _summary(rows, stats, lge_threshold)
    side = {
        "dataset": dataset,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "manifest": str(out_manifest.resolve()),
        "frames_manifest": str((Path(frames_dir) / "frames.csv").resolve()) if frames_dir is not None else None,
        "options": {
            "images": _spec(images),
            "masks": _spec(masks),
            "image_pattern": image_pattern,
            "mask_pattern": mask_pattern,
            "pairs_csv": str(pairs_csv) if pairs_csv is not None else None,
            "myo_labels": list(myo_t),
            "lge_labels": list(lge_t),
            "other_labels": list(other_t),
            "slice_axis": slice_axis,
            "basal_end": basal_end,
            "clinical_csv": str(clinical_csv) if clinical_csv is not None else None,
            "id_column": id_column,
            "event_column": event_column,
            "event_min": event_min,
            "followup_column": followup_column,
            "lge_threshold": lge_threshold,
        },
        "definitions": {
            "lge_percent": "whole-LV: voxels with an LGE label / voxels with a myocardium label x 100, all slices",
            "lge_percent_basal": "the same on the basal slice (the frame the manifest's slice=basal selects)",
            "slice": "basal = last index of the stack ordered apex -> base",
        },
        "counts": summary,
        "pairing": {"rule": rule, "ignored_images": ignored["images"], "ignored_masks": ignored["masks"]},
        **({"notes": dict(notes)} if notes else {}),
    }
    atomic_write_text(out_manifest.with_name(out_manifest.stem + ".import.json"), json.dumps(side, indent=2) + "\n")
    return out_manifest


def _spec(x: Any) -> Any:
    if x is None:
        return None
    return [str(p) for p in x] if isinstance(x, (list, tuple)) else str(x)


def _event_value(raw: str, event_min: float | None, cid: str, col: str, src: Any) -> int | None:
    if raw == "":
        return None
    try:
        v = float(raw)
    except ValueError:
        raise CaseError(cid, f"clinical column {col!r} = {raw!r} in {src} is not a number") from None
    if event_min is not None:
        return int(v >= event_min)
    if v not in (0.0, 1.0):
        raise CaseError(
            cid, f"clinical column {col!r} = {raw!r} in {src} is not 0/1; give event_min for a rule such as value >= 2"
        )
    return int(v)


def _pair(img_files: list[Path], mask_files: list[Path], case_ids: Mapping[str, str] | None):
    if case_ids is not None:
        if len(img_files) != len(mask_files):
            raise DataError(f"{len(img_files)} images but {len(mask_files)} masks")
        return [(case_ids.get(str(i), _strip_nii(i.name) or i.name), i, m) for i, m in zip(img_files, mask_files)]

    def key(p: Path) -> str:
        return _strip_nii(p.name) or p.name

    imgs: dict[str, Path] = {}
    for p in img_files:
        if key(p) in imgs:
            raise DataError(f"two images share case ID {key(p)!r}: {imgs[key(p)]} and {p}")
        imgs[key(p)] = p
    msks: dict[str, Path] = {}
    for p in mask_files:
        if key(p) in msks:
            raise DataError(f"two masks share case ID {key(p)!r}: {msks[key(p)]} and {p}")
        msks[key(p)] = p
    no_mask = sorted(set(imgs) - set(msks))
    if no_mask:
        raise CaseError(
            no_mask[0],
            f"image {imgs[no_mask[0]]} has no mask with the same name"
            + (f" ({len(no_mask)} images lack one: {no_mask[:6]})" if len(no_mask) > 1 else ""),
        )
    no_img = sorted(set(msks) - set(imgs))
    if no_img:
        raise CaseError(no_img[0], f"mask {msks[no_img[0]]} has no image with the same name")
    return [(k, imgs[k], msks[k]) for k in sorted(imgs)]


def _pattern_regex(pattern: str, option: str) -> re.Pattern:
    if pattern.count("{id}") != 1:
        raise ConfigError(
            f"{option} {pattern!r} must hold the placeholder {{id}} exactly once (it captures the "
            "case ID), e.g. '{id}_LGE.nii.gz'"
        )
    if "/" in pattern or "\\" in pattern:
        raise ConfigError(
            f"{option} {pattern!r} must match a file name, not a path; put the folder in --images/--masks"
        )
    head, tail = pattern.split("{id}")

    def tr(text: str) -> str:
        return "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)

    return re.compile(f"^{tr(head)}(?P<id>.+){tr(tail)}$")


def _pair_by_pattern(
    img_files: list[Path], mask_files: list[Path], image_pattern: str | None, mask_pattern: str | None
):
    """Pair by the ``{id}`` part of the file names; returns (pairs, ignored file names)."""
    opts = {"images": ("--image-pattern", image_pattern), "masks": ("--mask-pattern", mask_pattern)}
    found: dict[str, dict[str, Path]] = {}
    ignored: dict[str, list[str]] = {}
    for what, files in (("images", img_files), ("masks", mask_files)):
        option, pattern = opts[what]
        rx = _pattern_regex(pattern, option) if pattern else None
        by_id: dict[str, Path] = {}
        skip: list[str] = []
        for p in files:
            if rx is None:
                cid = _strip_nii(p.name)
            else:
                m = rx.match(p.name)
                cid = m.group("id") if m else None
            if cid is None:
                skip.append(str(p))
                continue
            if cid in by_id:
                raise DataError(f"two {what} share case ID {cid!r}: {by_id[cid]} and {p}; make {option} more specific")
            by_id[cid] = p
        if not by_id:
            eg = f", e.g. {Path(files[0]).name}" if files else ""
            raise DataError(
                f"{what}: no file matches {option} {pattern or '{id}.nii(.gz)'!r} ({len(files)} file(s) looked at{eg})"
            )
        found[what], ignored[what] = by_id, skip
    imgs, msks = found["images"], found["masks"]
    both = sorted({str(p) for p in imgs.values()} & {str(p) for p in msks.values()})
    if both:
        raise ConfigError(
            f"{both[0]} matches both --image-pattern {image_pattern!r} and --mask-pattern "
            f"{mask_pattern!r}; make the patterns more specific"
        )

    def expected(pattern: str | None, cid: str) -> str:
        return pattern.replace("{id}", cid) if pattern else f"{cid}.nii.gz or {cid}.nii"

    no_mask = sorted(set(imgs) - set(msks))
    if no_mask:
        c = no_mask[0]
        raise CaseError(
            c,
            f"image {imgs[c]} has no mask: no mask file is named {expected(mask_pattern, c)!r} "
            f"(--mask-pattern {mask_pattern or '{id}.nii(.gz)'!r})"
            + (f"; {len(no_mask)} images lack one: {no_mask[:6]}" if len(no_mask) > 1 else ""),
        )
    no_img = sorted(set(msks) - set(imgs))
    if no_img:
        c = no_img[0]
        raise CaseError(
            c,
            f"mask {msks[c]} has no image: no image file is named {expected(image_pattern, c)!r} "
            f"(--image-pattern {image_pattern or '{id}.nii(.gz)'!r})"
            + (f"; {len(no_img)} masks lack one: {no_img[:6]}" if len(no_img) > 1 else ""),
        )
    return [(k, imgs[k], msks[k]) for k in sorted(imgs)], ignored


def read_pairs_csv(path: str | Path) -> list[tuple[str, Path, Path]]:
    """Read a pairs CSV (columns ``case_id,image,mask``; other columns are ignored).

    Relative paths are relative to the CSV's folder. Returns ``(case_id, image, mask)`` in file
    order. Raises :class:`~lgenet.errors.DataError` naming the line for an empty cell, a repeated
    case ID or file, an ID with '/' or '\\', or a file that does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"pairs file {path} does not exist; give a CSV with columns case_id,image,mask "
            "(paths relative to the CSV's folder)"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"pairs file {path} could not be read as UTF-8 text: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("case_id", "image", "mask") if c not in header]
    if missing:
        raise DataError(
            f"pairs file {path} lacks column(s) {missing}; its columns are {header}; expected case_id,image,mask"
        )
    base = path.resolve().parent
    out: list[tuple[str, Path, Path]] = []
    seen: dict[str, dict[str, int]] = {"case_id": {}, "image": {}, "mask": {}}
    for line, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}
        for col in ("case_id", "image", "mask"):
            if not row.get(col):
                raise DataError(
                    f"pairs file {path}, line {line}: empty {col!r}; every row needs case_id, image and mask"
                )
        cid = row["case_id"]
        if "/" in cid or "\\" in cid:
            raise DataError(f"pairs file {path}, line {line}: case_id {cid!r} holds '/' or '\\'; use a study-local ID")
        files = {}
        for col in ("image", "mask"):
            p = Path(row[col])
            p = p if p.is_absolute() else base / p
            if not p.is_file():
                raise DataError(
                    f"pairs file {path}, line {line} (case {cid}): {col} {row[col]} does not exist "
                    f"(relative paths are read from {base})"
                )
            files[col] = p
        for col, key in (
            ("case_id", cid),
            ("image", str(files["image"].resolve())),
            ("mask", str(files["mask"].resolve())),
        ):
            if key in seen[col]:
                raise DataError(
                    f"pairs file {path}, line {line}: {col} {row[col]} already appears on line "
                    f"{seen[col][key]}; each case, image and mask must appear once"
                )
            seen[col][key] = line
        out.append((cid, files["image"], files["mask"]))
    if not out:
        raise DataError(f"pairs file {path} has no rows")
    return out


def _summary(rows: list[dict[str, Any]], stats: list[CaseStats], thr: float) -> dict[str, Any]:
    lge = [s.lge_percent > thr for s in stats]
    basal = [s.lge_percent_basal > thr for s in stats]
    ev = [r["event"] for r in rows if r["event"] is not None]
    return {
        "patients": len(rows),
        "slices": int(sum(s.n_slices for s in stats)),
        "lge_positive": int(sum(lge)),
        "any_enhancement": bool(any(any(v > 0 for v in s.lge_per_slice) for s in stats)),
        "lge_positive_basal_slice": int(sum(basal)),
        "lge_positive_without_basal_enhancement": int(
            sum(1 for s, p in zip(stats, lge) if p and s.lge_per_slice[-1] == 0)
        ),
        "event_labelled": len(ev),
        "event_positive": int(sum(ev)),
        "lge_threshold": thr,
    }


def import_emidec(
    root: str | Path,
    out_manifest: str | Path,
    *,
    frames_dir: str | Path | None = None,
    event_min_killip: int = 2,
) -> Path:
    """Import the EMIDEC training set at ``root`` into a manifest (see the module docstring).

    Labels: ``lge_percent`` from the expert contours ({3,4} / {2,3,4}); ``event`` = Killip class
    >= II (``event_min_killip``), a proxy for acute heart failure at presentation -- NOT the seed
    study's follow-up endpoint (``followup_years`` stays blank). Covariates: :data:`EMIDEC_CLINICAL_MAP`
    (``ECG`` -> ``ecg_st_plus``, ``FEVG`` -> ``lvef``, ``NTP`` -> ``ntprobnp``). ``killip`` is kept
    but defines ``event``; ``group`` (N/P) almost equals the ``lge`` label.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"EMIDEC folder {root} does not exist (expected Case_*/Images, Case_*/Contours, clinical.csv)")
    cases = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("Case_"))
    if not cases:
        raise DataError(f"EMIDEC folder {root} holds no Case_* folder")
    imgs, masks, ids = [], [], {}
    for c in cases:
        ip = _one(c / "Images", c.name, "image")
        mp = _one(c / "Contours", c.name, "mask (Contours)")
        imgs.append(ip)
        masks.append(mp)
        ids[str(ip)] = c.name
    clinical = root / "clinical.csv"
    if not clinical.is_file():
        raise DataError(
            f"EMIDEC clinical file {clinical} does not exist; it holds the covariates and Killip class "
            "that defines the event label"
        )
    return import_nifti_masks(
        imgs,
        masks,
        out_manifest,
        myo_labels=(2, 3, 4),
        lge_labels=(3, 4),
        other_labels=(0, 1),
        slice_axis=2,
        basal_end="last",
        clinical_csv=clinical,
        id_column="case_id",
        clinical_columns=EMIDEC_CLINICAL_MAP,
        event_column="killip",
        event_min=event_min_killip,
        case_ids=ids,
        frames_dir=frames_dir,
        dataset="emidec",
        notes={
            "event": f"proxy: Killip class >= {event_min_killip} at presentation (acute heart failure), "
            "not the seed study's follow-up endpoint; followup_years is blank",
            "covariates": EMIDEC_COVARIATE_NOTES,
            "covariates_at_presentation": list(EMIDEC_COVARIATES),
            "not_covariate_for": {"event": ["killip"], "lge": ["group", "lge_percent_basal"]},
            "not_imported": [
                "label_pathological (= group)",
                "source_row_case",
                "myo_ml_src, inf_ml_src, pmo_ml_src (volumes from the expert contours: the LGE label itself)",
            ],
            "orientation": "slice index 0 = apex, last = base (inferred by the dataset README); affines not physical",
            "licence": "EMIDEC, CC BY-NC-SA 4.0: non-commercial use; derived data under the same licence",
        },
    )


def _one(folder: Path, case: str, what: str) -> Path:
    if not folder.is_dir():
        raise CaseError(case, f"folder {folder} for the {what} does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if len(files) != 1:
        raise CaseError(case, f"expected exactly one {what} file in {folder}, found {[p.name for p in files]}")
    return files[0]
