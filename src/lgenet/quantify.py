"""Semi-automatic LGE quantification: enhanced fraction of the myocardium by n-SD and FWHM.

This is how a group without expert scar contours turns LGE images plus a myocardium contour into
the LGE-burden labels the seed study uses (``lge`` = burden > 5.7 % of the myocardium).

Conventions
-----------
* Arrays: a 2-D frame ``(H, W)`` or a stack ``(S, H, W)`` with the slice axis first, ordered apex
  -> base (the order :func:`lgenet.io.read_volume` returns). :func:`quantify_files` does this
  re-ordering for a NIfTI pair itself.
* ``myo_mask``: anything non-zero is myocardium (the whole myocardium: normal + enhanced).
* Burden (%) = enhanced myocardial pixels / myocardial pixels x 100; per slice and whole LV
  (pixel counts pooled over slices, i.e. a volume ratio when slices are equally thick).

Methods
-------
* ``nsd`` (n-SD, n = 2, 3, 5, 6 by default): per slice, a myocardial pixel is enhanced when its
  signal is strictly above ``mean_remote + n * SD_remote`` of that slice's remote myocardium.
* ``fwhm`` (full width at half maximum): ``I_max`` = the maximum myocardial signal over the whole
  LV (the infarct core is the brightest myocardium of the heart; one maximum per LV is what a
  reader picks when clicking the brightest scar, and a per-slice maximum would call half of every
  scar-free slice enhanced). A pixel is enhanced when its signal is >= ``b + 0.5 * (I_max - b)``,
  where the baseline ``b`` is the remote mean of its slice (``fwhm_baseline='remote'``, default) or
  0 (``'zero'``, the textbook "50 % of the maximum"). Both are the same when the inversion time
  nulls remote myocardium to ~0, which is the premise of FWHM; the remote baseline keeps the rule
  valid for images stored with an intensity offset (EMIDEC images sit on a ~2048 offset, so
  "50 % of max" would call the whole myocardium enhanced) or with a non-zero nulled signal.

Automatic remote myocardium (``remote=None`` or ``'auto'``)
----------------------------------------------------------
Per slice, the myocardium is split into equal angular sectors around its own centroid (for a
closed ring that is the cavity centre): 6 sectors, as in the AHA basal and mid rings, and 4 on the
apical third of a stack (AHA apical ring; a single frame counts as non-apical). Sectors with fewer
than ``min_sector_pixels`` pixels are ignored. The remote region is the sector with the lowest
mean signal. Rationale: readers place the remote ROI in a visibly normal, contiguous segment of
the same slice; an infarct follows a coronary territory and rarely involves every sector of a
ring, so the darkest sector is normal myocardium, and its SD is the spread of normal myocardium
(a "darkest 30 % of pixels" rule would truncate the distribution and shrink the SD, lowering the
n-SD threshold). The sectors are not anatomically aligned (there is no RV insertion point in a
myocardium mask); only their count follows the AHA model. If no sector qualifies on a slice, the
remote statistics of that slice fall back to the pooled remote pixels of the other slices.
A remote mask given by the user is used per slice the same way (slices without remote pixels
use the pooled remote pixels of the whole stack).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import ConfigError, DataError, ReaderError
from .utils import atomic_path, atomic_write_text

__all__ = [
    "MethodResult",
    "QuantifyResult",
    "quantify",
    "quantify_files",
    "quantify_manifest",
    "auto_remote_mask",
    "method_names",
    "DEFAULT_N_SD",
]

DEFAULT_N_SD = (2, 3, 5, 6)
METHODS = ("nsd", "fwhm")


@dataclass
class MethodResult:
    """Outcome of one method on one image stack.

    ``percent`` is the whole-LV enhanced fraction (%); ``percent_per_slice`` is NaN on slices
    without myocardium; ``threshold`` holds the intensity threshold used on each slice (NaN where
    the slice has no myocardium).
    """

    method: str
    mask: np.ndarray
    threshold: np.ndarray
    percent: float
    percent_per_slice: np.ndarray
    enhanced_pixels: int
    myo_pixels: int
    enhanced_ml: float | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "percent": _num(self.percent),
            "enhanced_pixels": int(self.enhanced_pixels),
            "myo_pixels": int(self.myo_pixels),
            "enhanced_ml": _num(self.enhanced_ml),
            "percent_per_slice": [_num(v) for v in self.percent_per_slice],
            "threshold_per_slice": [_num(v) for v in self.threshold],
        }


@dataclass
class QuantifyResult:
    """All methods on one stack, with the remote region they shared."""

    methods: dict[str, MethodResult]
    remote_mask: np.ndarray
    remote_mean: np.ndarray
    remote_sd: np.ndarray
    remote_rule: str
    myo_pixels_per_slice: np.ndarray
    spacing: tuple[float, ...] | None = None
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> MethodResult:
        return self.methods[name]

    @property
    def percent(self) -> dict[str, float]:
        """Whole-LV burden (%) per method name."""
        return {k: m.percent for k, m in self.methods.items()}

    def summary(self) -> dict[str, Any]:
        return {
            "remote_rule": self.remote_rule,
            "remote_mean_per_slice": [_num(v) for v in self.remote_mean],
            "remote_sd_per_slice": [_num(v) for v in self.remote_sd],
            "myo_pixels_per_slice": [int(v) for v in self.myo_pixels_per_slice],
            "spacing": list(self.spacing) if self.spacing is not None else None,
            "methods": {k: m.summary() for k, m in self.methods.items()},
            "notes": list(self.notes),
        }


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def method_names(method: str | Sequence[str] = ("nsd", "fwhm"), n_sd: Iterable[float] = DEFAULT_N_SD) -> list[str]:
    """Result keys for a method selection, e.g. ``['nsd2', 'nsd3', 'nsd5', 'nsd6', 'fwhm']``."""
    methods = _parse_methods(method)
    names: list[str] = []
    for m in methods:
        if m == "nsd":
            names.extend(_nsd_name(n) for n in _parse_nsd(n_sd))
        else:
            names.append("fwhm")
    return names


def _nsd_name(n: float) -> str:
    return f"nsd{int(n)}" if float(n).is_integer() else f"nsd{float(n):g}"


def _parse_methods(method: str | Sequence[str]) -> list[str]:
    if isinstance(method, str):
        items = ["nsd", "fwhm"] if method == "all" else [m.strip() for m in method.split(",") if m.strip()]
    else:
        items = list(method)
    if not items:
        raise ConfigError(f"quantify: 'method' must be one or more of {list(METHODS)} (or 'all'), got none")
    for m in items:
        if m not in METHODS:
            raise ConfigError(f"quantify: 'method' must be one of {list(METHODS)} or 'all', got {m!r}")
    return list(dict.fromkeys(items))


def _parse_nsd(n_sd: Iterable[float] | float) -> list[float]:
    if isinstance(n_sd, (int, float)):
        n_sd = [n_sd]
    vals = [float(n) for n in n_sd]
    if not vals or any(not math.isfinite(n) or n <= 0 for n in vals):
        raise ConfigError(f"quantify: 'n_sd' must be one or more positive numbers, got {list(vals)}")
    return list(dict.fromkeys(vals))


def _as_stack(arr: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ConfigError(f"quantify: {name} must be a 2-D frame (H, W) or a stack (S, H, W), got shape {a.shape}")
    return a


def auto_remote_mask(
    image: np.ndarray,
    myo_mask: np.ndarray,
    *,
    sectors: int = 6,
    apical_sectors: int = 4,
    min_sector_pixels: int = 10,
) -> np.ndarray:
    """Remote myocardium chosen by the darkest-sector rule (see the module docstring).

    Accepts ``(H, W)`` or ``(S, H, W)`` apex -> base; returns a boolean mask of the same shape.
    """
    img = _as_stack(image, "image").astype(np.float64, copy=False)
    myo = _as_stack(myo_mask, "myo_mask") != 0
    n_slices = img.shape[0]
    n_apical = n_slices // 3 if n_slices >= 3 else 0
    out = np.zeros(myo.shape, dtype=bool)
    for k in range(n_slices):
        ys, xs = np.nonzero(myo[k])
        if ys.size == 0:
            continue
        n_sec = apical_sectors if k < n_apical else sectors
        cy, cx = ys.mean(), xs.mean()
        ang = np.arctan2(ys - cy, xs - cx)  # [-pi, pi]
        sec = np.minimum(((ang + np.pi) / (2 * np.pi) * n_sec).astype(int), n_sec - 1)
        vals = img[k][ys, xs]
        best, best_mean = None, np.inf
        for s in range(n_sec):
            sel = sec == s
            if sel.sum() < min_sector_pixels:
                continue
            m = vals[sel].mean()
            if m < best_mean:
                best, best_mean = s, m
        if best is not None:
            sel = sec == best
            out[k][ys[sel], xs[sel]] = True
    return out if np.asarray(image).ndim == 3 else out[0]


def quantify(
    image: np.ndarray,
    myo_mask: np.ndarray,
    *,
    method: str | Sequence[str] = "all",
    n_sd: Iterable[float] | float = DEFAULT_N_SD,
    remote: None | str | np.ndarray = None,
    spacing: Sequence[float] | None = None,
    fwhm_baseline: str = "remote",
    sectors: int = 6,
    apical_sectors: int = 4,
    min_sector_pixels: int = 10,
) -> QuantifyResult:
    """Enhanced fraction of the myocardium by n-SD and/or FWHM, per slice and whole LV.

    Args:
        image: LGE signal, ``(H, W)`` or ``(S, H, W)`` apex -> base.
        myo_mask: myocardium (non-zero), same shape.
        method: ``'nsd'``, ``'fwhm'``, ``'all'`` (both) or a list of them.
        n_sd: the n of the n-SD rule (one number or several; each gives a result ``nsd<n>``).
        remote: ``None``/``'auto'`` = darkest-sector rule; or a boolean mask of remote myocardium.
        spacing: voxel size in mm, in array-axis order (``(dz, dy, dx)`` or ``(dy, dx)``); gives
            the enhanced volume in mL (for a 2-D frame: mL per mm of slice thickness).
        fwhm_baseline: ``'remote'`` (default) or ``'zero'`` (see the module docstring).

    Returns:
        :class:`QuantifyResult`; ``result['nsd5'].percent`` is the whole-LV 5-SD burden in %,
        ``result['fwhm'].mask`` the FWHM enhancement mask (same shape as ``image``).

    Raises:
        ConfigError: bad option or shape mismatch.
        DataError: no myocardium, or no remote myocardium could be found.
    """
    two_d = np.asarray(image).ndim == 2
    img = _as_stack(image, "image").astype(np.float64, copy=False)
    myo = _as_stack(myo_mask, "myo_mask") != 0
    if img.shape != myo.shape:
        raise ConfigError(f"quantify: image shape {np.asarray(image).shape} and myocardium mask shape "
                          f"{np.asarray(myo_mask).shape} differ")
    if not np.isfinite(img[myo]).all():
        raise DataError("quantify: the image has non-finite values (NaN/inf) inside the myocardium")
    if not myo.any():
        raise DataError("quantify: the myocardium mask is empty; nothing to quantify")
    methods = _parse_methods(method)
    ns = _parse_nsd(n_sd) if "nsd" in methods else []
    if fwhm_baseline not in ("remote", "zero"):
        raise ConfigError(f"quantify: 'fwhm_baseline' must be 'remote' or 'zero', got {fwhm_baseline!r}")

    notes: list[str] = []
    if remote is None or (isinstance(remote, str) and remote == "auto"):
        rem = _as_stack(auto_remote_mask(img, myo, sectors=sectors, apical_sectors=apical_sectors,
                                         min_sector_pixels=min_sector_pixels), "remote")
        rule = f"auto: darkest of {sectors} angular sectors per slice ({apical_sectors} on the apical third)"
    elif isinstance(remote, str):
        raise ConfigError(f"quantify: 'remote' must be None, 'auto' or a mask array, got {remote!r}")
    else:
        rem = _as_stack(remote, "remote") != 0
        if rem.shape != img.shape:
            raise ConfigError(f"quantify: remote mask shape {np.asarray(remote).shape} differs from image shape "
                              f"{np.asarray(image).shape}")
        rule = "given mask"
    if not rem.any():
        raise DataError("quantify: no remote myocardium: the remote mask is empty (or every myocardial sector "
                        f"has fewer than {min_sector_pixels} pixels)")

    n_slices = img.shape[0]
    myo_per = myo.reshape(n_slices, -1).sum(1)
    pooled = img[rem]
    pooled_mean, pooled_sd = float(pooled.mean()), float(pooled.std())
    r_mean = np.full(n_slices, np.nan)
    r_sd = np.full(n_slices, np.nan)
    for k in range(n_slices):
        if myo_per[k] == 0:
            continue
        v = img[k][rem[k]]
        if v.size >= 2:
            r_mean[k], r_sd[k] = v.mean(), v.std()
        else:
            r_mean[k], r_sd[k] = pooled_mean, pooled_sd
            notes.append(f"slice {k}: no remote pixels; used the pooled remote of the stack")

    vox_ml = None
    if spacing is not None:
        sp = tuple(float(s) for s in spacing)
        want = 2 if two_d else 3
        if len(sp) != want or any(s <= 0 or not math.isfinite(s) for s in sp):
            raise ConfigError(f"quantify: 'spacing' must be {want} positive numbers in mm, one per array axis "
                              f"({'(dy, dx)' if two_d else '(dz, dy, dx)'}), got {list(spacing)}")
        vox_ml = float(np.prod(sp)) / 1000.0  # a 2-D frame: mm^2 -> 'mL' per mm of thickness
        spacing = sp

    results: dict[str, MethodResult] = {}
    for n in ns:
        thr = r_mean + n * r_sd
        results[_nsd_name(n)] = _apply(img, myo, thr, strict=True, name=_nsd_name(n), vox_ml=vox_ml)
    if "fwhm" in methods:
        i_max = float(img[myo].max())
        base = r_mean if fwhm_baseline == "remote" else np.where(myo_per > 0, 0.0, np.nan)
        thr = base + 0.5 * (i_max - base)
        results["fwhm"] = _apply(img, myo, thr, strict=False, name="fwhm", vox_ml=vox_ml)

    if two_d:
        for r in results.values():
            r.mask = r.mask[0]
        rem_out = rem[0]
    else:
        rem_out = rem
    return QuantifyResult(
        methods=results, remote_mask=rem_out, remote_mean=r_mean, remote_sd=r_sd, remote_rule=rule,
        myo_pixels_per_slice=myo_per, spacing=tuple(spacing) if spacing is not None else None, notes=notes,
    )


def _apply(img: np.ndarray, myo: np.ndarray, thr: np.ndarray, *, strict: bool, name: str,
           vox_ml: float | None) -> MethodResult:
    t = thr[:, None, None]
    with np.errstate(invalid="ignore"):
        enh = (img > t) if strict else (img >= t)
    enh &= myo
    n_slices = img.shape[0]
    e_per = enh.reshape(n_slices, -1).sum(1)
    m_per = myo.reshape(n_slices, -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(m_per > 0, 100.0 * e_per / np.maximum(m_per, 1), np.nan)
    n_e, n_m = int(e_per.sum()), int(m_per.sum())
    return MethodResult(
        method=name, mask=enh, threshold=np.where(m_per > 0, thr, np.nan), percent=100.0 * n_e / n_m,
        percent_per_slice=pct, enhanced_pixels=n_e, myo_pixels=n_m,
        enhanced_ml=None if vox_ml is None else n_e * vox_ml,
    )


# ---------------------------------------------------------------------------------------- files
def _load_nifti(path: str | Path, what: str):
    import nibabel as nib

    p = Path(path)
    name = p.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise ReaderError(f"{what} {p} is not a NIfTI file (expected .nii or .nii.gz)")
    if not p.is_file():
        raise ReaderError(f"{what} {p} does not exist")
    try:
        img = nib.load(str(p))
        data = np.asarray(img.dataobj)
    except Exception as exc:  # nibabel raises several types for corrupt files
        raise ReaderError(f"{what} {p} could not be read as NIfTI: {exc}") from None
    return img, data


def _to_stack(data: np.ndarray, slice_axis: int, basal_end: str) -> np.ndarray:
    if data.ndim == 2:
        data, slice_axis = data[:, :, None], 2
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ConfigError(f"expected a 3-D volume, got shape {data.shape}")
    st = np.moveaxis(data, slice_axis, 0)
    return st[::-1] if basal_end == "first" else st


def _from_stack(stack: np.ndarray, shape: tuple[int, ...], slice_axis: int, basal_end: str) -> np.ndarray:
    st = stack[::-1] if basal_end == "first" else stack
    vol = np.moveaxis(st, 0, slice_axis if len(shape) >= 3 else 2)
    return vol.reshape(shape)


def quantify_files(
    image_nifti: str | Path,
    mask_nifti: str | Path,
    out_dir: str | Path,
    *,
    myo_labels: Sequence[int] | None = (2, 3, 4),
    method: str | Sequence[str] = "all",
    n_sd: Iterable[float] | float = DEFAULT_N_SD,
    remote: None | str | Path = None,
    remote_labels: Sequence[int] | None = None,
    slice_axis: int = 2,
    basal_end: str = "last",
    fwhm_baseline: str = "remote",
    case_id: str | None = None,
) -> dict[str, Any]:
    """Quantify one NIfTI image + label map; write the enhancement masks and a summary.

    The image and the mask are paired by array index (their affines are not compared: EMIDEC's
    are not physical); their array shapes must be equal. The spacing comes from the image header.

    Writes into ``out_dir`` (atomically): ``<case>_<method>.nii.gz`` (uint8 0/1 enhancement mask on
    the image's grid, with the image's affine and header), ``<case>_quantify.json`` (whole-LV and
    per-slice burden, thresholds, remote statistics) and ``<case>_remote.nii.gz`` (the remote
    region used). Slice indices in the JSON run apex -> base.

    Args:
        myo_labels: label values forming the myocardium; ``None`` = every non-zero voxel.
        remote: ``None``/``'auto'``, or a NIfTI mask of remote myocardium on the same grid.
        remote_labels: with ``remote`` a label map, the values that mark remote (default non-zero).
        slice_axis, basal_end: where the short-axis slices run and which end is basal.

    Returns:
        the summary dict also written as JSON (``files`` lists what was written).
    """
    if basal_end not in ("first", "last"):
        raise ConfigError(f"quantify: 'basal_end' must be 'first' or 'last', got {basal_end!r}")
    if slice_axis not in (0, 1, 2):
        raise ConfigError(f"quantify: 'slice_axis' must be 0, 1 or 2, got {slice_axis!r}")
    image_nifti, mask_nifti = Path(image_nifti), Path(mask_nifti)
    case = case_id or _strip_nii(image_nifti.name)
    img_obj, img = _load_nifti(image_nifti, f"case {case}: image")
    _, lab = _load_nifti(mask_nifti, f"case {case}: mask")
    if img.shape != lab.shape:
        raise DataError(f"case {case}: mask grid {lab.shape} ({mask_nifti}) differs from image grid "
                        f"{img.shape} ({image_nifti}); image and mask are paired by array index")
    lab = np.rint(np.asarray(lab, dtype=np.float64)).astype(np.int64)
    myo_vol = (lab != 0) if myo_labels is None else np.isin(lab, list(myo_labels))
    if not myo_vol.any():
        raise DataError(f"case {case}: the mask {mask_nifti} has no myocardium (labels {list(myo_labels or [])})")
    rem_arg: Any = None
    if remote is not None and not (isinstance(remote, str) and remote == "auto"):
        _, rv = _load_nifti(remote, f"case {case}: remote mask")
        if rv.shape != img.shape:
            raise DataError(f"case {case}: remote mask grid {rv.shape} differs from image grid {img.shape}")
        rv = np.rint(np.asarray(rv, dtype=np.float64)).astype(np.int64)
        rem_vol = (rv != 0) if remote_labels is None else np.isin(rv, list(remote_labels))
        rem_arg = _to_stack(rem_vol, slice_axis, basal_end)
    zooms = tuple(float(z) for z in img_obj.header.get_zooms()[:3])
    if len(zooms) == 3:
        in_plane = [z for i, z in enumerate(zooms) if i != slice_axis]
        spacing = (zooms[slice_axis], *in_plane)
    else:
        spacing = None
    img_st = _to_stack(np.asarray(img, dtype=np.float64), slice_axis, basal_end)
    myo_st = _to_stack(myo_vol, slice_axis, basal_end)
    try:
        res = quantify(img_st, myo_st, method=method, n_sd=n_sd, remote=rem_arg, spacing=spacing,
                       fwhm_baseline=fwhm_baseline)
    except DataError as exc:
        raise DataError(f"case {case}: {exc}") from None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for name, r in res.methods.items():
        files[name] = str(_write_mask(out_dir / f"{case}_{name}.nii.gz", r.mask, img_obj, img.shape, slice_axis, basal_end))
    files["remote"] = str(_write_mask(out_dir / f"{case}_remote.nii.gz", np.asarray(res.remote_mask), img_obj,
                                      img.shape, slice_axis, basal_end))
    summary = {
        "case": case,
        "image": str(image_nifti.resolve()),
        "mask": str(mask_nifti.resolve()),
        "myo_labels": list(myo_labels) if myo_labels is not None else "non-zero",
        "slice_axis": slice_axis,
        "basal_end": basal_end,
        "slice_order": "apex -> base",
        "fwhm_baseline": fwhm_baseline,
        **res.summary(),
        "percent": {k: _num(v) for k, v in res.percent.items()},
        "files": files,
    }
    js = out_dir / f"{case}_quantify.json"
    atomic_write_text(js, json.dumps(summary, indent=2) + "\n")
    summary["files"]["summary"] = str(js)
    return summary


def _strip_nii(name: str) -> str:
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return Path(name).stem


def _write_mask(path: Path, stack: np.ndarray, ref_img, shape: tuple[int, ...], slice_axis: int, basal_end: str) -> Path:
    import nibabel as nib

    vol = _from_stack(np.asarray(stack, dtype=np.uint8), shape, slice_axis, basal_end)
    header = ref_img.header.copy()
    header.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(vol.astype(np.uint8), ref_img.affine, header)
    out.header.set_slope_inter(1.0, 0.0)
    with atomic_path(path) as tmp:
        nib.save(out, str(tmp))
    return path


def quantify_manifest(
    manifest: str | Path,
    out_dir: str | Path,
    *,
    label_method: str,
    myo_labels: Sequence[int] | None = (2, 3, 4),
    n_sd: Iterable[float] | float = DEFAULT_N_SD,
    slice_axis: int = 2,
    basal_end: str = "last",
    fwhm_baseline: str = "remote",
) -> Path:
    """Label a cohort from myocardium contours: quantify every row's NIfTI image + ``mask``.

    For each manifest row with a ``mask`` (NIfTI label map on the image's grid), runs
    :func:`quantify_files` (automatic remote) into ``out_dir/cases`` and writes
    ``out_dir/<manifest stem>.quantified.csv``: the same rows and columns with absolute paths,
    ``lge_percent`` replaced by the whole-LV burden of ``label_method`` (e.g. ``'fwhm'``, ``'nsd5'``),
    one ``lge_percent_<method>`` column per method, ``lge_percent_source`` naming the rule, and the
    previous value kept as ``lge_percent_original``. Choose ``label_method`` knowingly: see the EMIDEC
    agreement table in docs/results.md. Returns the new manifest's path.
    """
    import csv
    import io

    manifest = Path(manifest)
    if not manifest.is_file():
        raise ConfigError(f"quantify: manifest {manifest} does not exist")
    names = method_names("all", n_sd)
    if label_method not in names:
        raise ConfigError(f"quantify: label_method must be one of {names}, got {label_method!r}")
    rows = list(csv.DictReader(io.StringIO(manifest.read_text(encoding="utf-8-sig"))))
    if not rows or "image" not in rows[0] or "mask" not in rows[0]:
        raise ConfigError(f"quantify: manifest {manifest} needs 'image' and 'mask' columns and at least one row")
    base = manifest.resolve().parent
    out_dir = Path(out_dir)
    cache: dict[tuple[str, str], dict[str, Any]] = {}
    out_rows = []
    for i, row in enumerate(rows, start=1):
        pid = row.get("patient_id") or f"row{i}"
        if not row.get("mask"):
            raise DataError(f"quantify: manifest {manifest}, row {i} (patient {pid}): no mask; every row needs a "
                            "myocardium label map to be quantified")
        ip = Path(row["image"]) if Path(row["image"]).is_absolute() else base / row["image"]
        mp = Path(row["mask"]) if Path(row["mask"]).is_absolute() else base / row["mask"]
        key = (str(ip.resolve()), str(mp.resolve()))
        if key not in cache:
            cache[key] = quantify_files(ip, mp, out_dir / "cases", myo_labels=myo_labels, n_sd=n_sd,
                                        slice_axis=slice_axis, basal_end=basal_end, fwhm_baseline=fwhm_baseline,
                                        case_id=pid)
        s = cache[key]
        new = dict(row)
        new["image"], new["mask"] = key
        if "lge_percent" in row:
            new["lge_percent_original"] = row["lge_percent"]
        new["lge_percent"] = round(s["percent"][label_method], 4)
        new["lge_percent_source"] = f"{label_method} ({s['remote_rule'].split(':')[0]} remote)"
        for n in names:
            new[f"lge_percent_{n}"] = round(s["percent"][n], 4)
        out_rows.append(new)
    from .data.importers import _write_csv

    out = out_dir / f"{manifest.stem}.quantified.csv"
    _write_csv(out, out_rows, None)
    return out
