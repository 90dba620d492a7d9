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

Label maps (:func:`quantify_files`, :func:`quantify_manifest`)
--------------------------------------------------------------
Every value of a label map must be declared: ``myo_labels`` (myocardium, default 2,3,4) or
``other_labels`` (background, cavity..., default 0,1). A mask holding any other value is refused
with the values and their voxel counts (declare them, or fix the mask); the values found are
listed in the case summary (``labels_found``).

Quantified manifest (:func:`quantify_manifest`)
-----------------------------------------------
Label values and geometry (``myo_labels``, ``other_labels``, ``slice_axis``, ``basal_end``) not
given are read from the manifest's sidecar ``<stem>.import.json`` (written by ``lgenet import``),
else the defaults; explicit values win over the sidecar (with a note). The output
``<stem>.quantified.csv`` gets its own sidecar ``<stem>.quantified.import.json`` with the values
used, so a later command reads them too. Burden columns (all % of myocardium) and their sources;
each burden column ``X`` has a text column ``X_source`` saying where its value comes from:

* ``lge_percent`` -- whole-LV burden by ``label_method`` (the label the ``lge`` task uses);
  ``lge_percent_source`` e.g. ``'nsd5 (auto remote)'`` or ``'fwhm (given remote mask)'``.
* ``lge_percent_<method>`` (``nsd2``, ..., ``fwhm``) -- whole-LV burden by each computed method;
  ``lge_percent_<method>_source`` likewise.
* ``lge_percent_original`` -- the input manifest's ``lge_percent`` (after an import: from the
  expert LGE labels of the mask); its source is the input's ``lge_percent_source`` if it had one,
  else e.g. ``'mask labels [3, 4] / [2, 3, 4], whole LV (import emidec)'``.
* ``lge_percent_basal`` and any other ``lge_percent*`` column of the input -- kept as they are
  (``lge_percent_basal``: the expert labels on the basal slice, NOT the quantification rule);
  source kept from the input or, e.g., ``'mask labels [3, 4] / [2, 3, 4], basal slice (import
  emidec)'``; ``'input manifest (source not recorded)'`` when nothing says.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.errors import ConfigError, DataError, ReaderError
from lgenet.utils import atomic_path, atomic_write_text

__all__ = [
    "MethodResult",
    "QuantifyResult",
    "quantify",
    "quantify_files",
    "quantify_manifest",
    "manifest_settings",
    "sidecar_path",
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
        raise ConfigError(
            f"quantify: image shape {np.asarray(image).shape} and myocardium mask shape "
            f"{np.asarray(myo_mask).shape} differ"
        )
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
        rem = _as_stack(
            auto_remote_mask(
                img, myo, sectors=sectors, apical_sectors=apical_sectors, min_sector_pixels=min_sector_pixels
            ),
            "remote",
        )
        rule = f"auto: darkest of {sectors} angular sectors per slice ({apical_sectors} on the apical third)"
    elif isinstance(remote, str):
        raise ConfigError(f"quantify: 'remote' must be None, 'auto' or a mask array, got {remote!r}")
    else:
        rem = _as_stack(remote, "remote") != 0
        if rem.shape != img.shape:
            raise ConfigError(
                f"quantify: remote mask shape {np.asarray(remote).shape} differs from image shape "
                f"{np.asarray(image).shape}"
            )
        rule = "given mask"
    if not rem.any():
        raise DataError(
            "quantify: no remote myocardium: the remote mask is empty (or every myocardial sector "
            f"has fewer than {min_sector_pixels} pixels)"
        )

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
            raise ConfigError(
                f"quantify: 'spacing' must be {want} positive numbers in mm, one per array axis "
                f"({'(dy, dx)' if two_d else '(dz, dy, dx)'}), got {list(spacing)}"
            )
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
        methods=results,
        remote_mask=rem_out,
        remote_mean=r_mean,
        remote_sd=r_sd,
        remote_rule=rule,
        myo_pixels_per_slice=myo_per,
        spacing=tuple(spacing) if spacing is not None else None,
        notes=notes,
    )


def _apply(
    img: np.ndarray, myo: np.ndarray, thr: np.ndarray, *, strict: bool, name: str, vox_ml: float | None
) -> MethodResult:
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
        method=name,
        mask=enh,
        threshold=np.where(m_per > 0, thr, np.nan),
        percent=100.0 * n_e / n_m,
        percent_per_slice=pct,
        enhanced_pixels=n_e,
        myo_pixels=n_m,
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
    other_labels: Sequence[int] | None = (0, 1),
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
        other_labels: the other values allowed in the mask (background, cavity...); a value in
            neither set refuses the case (:class:`~lgenet.errors.DataError`). ``None`` = any.
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
    is_auto = remote is None or (isinstance(remote, str) and remote == "auto")
    if remote_labels is not None and is_auto:
        raise ConfigError(
            "quantify: --remote-labels needs --remote MASK (a label map marking remote myocardium); "
            "leave --remote-labels out for the automatic remote"
        )
    if myo_labels is not None and other_labels is not None and set(myo_labels) & set(other_labels):
        raise ConfigError(
            f"quantify: --other-labels {list(other_labels)} overlap --myo-labels {list(myo_labels)}; "
            "a label value is either myocardium or other"
        )
    image_nifti, mask_nifti = Path(image_nifti), Path(mask_nifti)
    case = case_id or _strip_nii(image_nifti.name)
    img_obj, img = _load_nifti(image_nifti, f"case {case}: image")
    _, lab = _load_nifti(mask_nifti, f"case {case}: mask")
    if img.shape != lab.shape:
        raise DataError(
            f"case {case}: mask grid {lab.shape} ({mask_nifti}) differs from image grid "
            f"{img.shape} ({image_nifti}); image and mask are paired by array index"
        )
    lab = np.rint(np.asarray(lab, dtype=np.float64)).astype(np.int64)
    values, counts = np.unique(lab, return_counts=True)
    labels_found = {int(v): int(c) for v, c in zip(values, counts)}
    myo_vol = (lab != 0) if myo_labels is None else np.isin(lab, list(myo_labels))
    if not myo_vol.any():
        raise DataError(
            f"case {case}: the mask {mask_nifti} has no myocardium (labels {list(myo_labels or [])}); "
            f"its values (voxels): {_counts_text(labels_found)}; check --myo-labels"
        )
    if myo_labels is not None and other_labels is not None:
        declared = set(myo_labels) | set(other_labels)
        bad = {v: c for v, c in labels_found.items() if v not in declared}
        if bad:
            listed = _counts_text(bad)
            raise DataError(
                f"case {case}: mask {mask_nifti} holds label value(s) outside the declared ones: {listed}; "
                f"declared: myocardium {list(myo_labels)} (--myo-labels), other {list(other_labels)} "
                "(--other-labels). Declare them with --other-labels (e.g. --other-labels "
                f"{','.join(str(v) for v in sorted(set(other_labels) | set(list(bad)[:12])))}) or "
                "--myo-labels, or fix the mask"
            )
    rem_arg: Any = None
    if not is_auto:
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
        res = quantify(
            img_st, myo_st, method=method, n_sd=n_sd, remote=rem_arg, spacing=spacing, fwhm_baseline=fwhm_baseline
        )
    except DataError as exc:
        raise DataError(f"case {case}: {exc}") from None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for name, r in res.methods.items():
        files[name] = str(
            _write_mask(out_dir / f"{case}_{name}.nii.gz", r.mask, img_obj, img.shape, slice_axis, basal_end)
        )
    files["remote"] = str(
        _write_mask(
            out_dir / f"{case}_remote.nii.gz", np.asarray(res.remote_mask), img_obj, img.shape, slice_axis, basal_end
        )
    )
    summary = {
        "case": case,
        "image": str(image_nifti.resolve()),
        "mask": str(mask_nifti.resolve()),
        "myo_labels": list(myo_labels) if myo_labels is not None else "non-zero",
        "other_labels": list(other_labels) if other_labels is not None else "any",
        "labels_found": {str(v): c for v, c in labels_found.items()},
        "remote_labels": list(remote_labels) if remote_labels is not None else None,
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


def _counts_text(counts: dict[int, int], limit: int = 12) -> str:
    items = list(counts.items())
    text = ", ".join(f"{v} ({c} voxel{'s' if c != 1 else ''})" for v, c in items[:limit])
    return text + (f", ... ({len(items)} values in all: is this a label map?)" if len(items) > limit else "")


def _strip_nii(name: str) -> str:
    for ext in (".nii.gz", ".nii"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return Path(name).stem


def _write_mask(
    path: Path, stack: np.ndarray, ref_img, shape: tuple[int, ...], slice_axis: int, basal_end: str
) -> Path:
    import nibabel as nib

    vol = _from_stack(np.asarray(stack, dtype=np.uint8), shape, slice_axis, basal_end)
    header = ref_img.header.copy()
    header.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(vol.astype(np.uint8), ref_img.affine, header)
    out.header.set_slope_inter(1.0, 0.0)
    with atomic_path(path) as tmp:
        nib.save(out, str(tmp))
    return path


def sidecar_path(manifest: str | Path) -> Path:
    """The sidecar of a manifest: ``<stem>.import.json`` beside it."""
    manifest = Path(manifest)
    return manifest.with_name(manifest.stem + ".import.json")


def _read_sidecar(manifest: Path) -> dict[str, Any] | None:
    side = sidecar_path(manifest)
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"quantify: sidecar {side} of manifest {manifest} could not be read as JSON ({exc}); "
            "fix it, or delete it and pass --myo-labels/--other-labels"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("options", {}), dict):
        raise ConfigError(
            f"quantify: sidecar {side} has no 'options' object; fix it, or delete it and pass "
            "--myo-labels/--other-labels"
        )
    return data


def _side_labels(side: Path, opts: dict[str, Any], key: str) -> tuple[int, ...] | None:
    v = opts.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise ConfigError(f"quantify: sidecar {side}: '{key}' must be a list of integer label values, got {v!r}")
    return tuple(v)


_OPT = {
    "myo_labels": "--myo-labels",
    "other_labels": "--other-labels",
    "slice_axis": "--slice-axis",
    "basal_end": "--basal-end",
}
_DEFAULTS: dict[str, Any] = {"myo_labels": (2, 3, 4), "other_labels": (0, 1), "slice_axis": 2, "basal_end": "last"}


def manifest_settings(
    manifest: str | Path,
    *,
    myo_labels: Sequence[int] | None = None,
    other_labels: Sequence[int] | None = None,
    slice_axis: int | None = None,
    basal_end: str | None = None,
) -> dict[str, Any]:
    """Label values and geometry for quantifying ``manifest``: given values, else its sidecar's.

    A value left ``None`` comes from the sidecar ``<stem>.import.json`` (see :func:`sidecar_path`)
    when it records one, else from the defaults (myocardium 2,3,4; other 0,1; slice axis 2; basal
    end last). A given value that differs from the sidecar wins, with a note. Returns a dict with
    ``myo_labels``, ``other_labels``, ``slice_axis``, ``basal_end``, ``lge_labels`` (the import's,
    or ``None``), ``source`` (per key: 'given', 'sidecar' or 'default'), ``sidecar`` (path or
    ``None``), ``side`` (its content or ``None``) and ``notes`` (lines to show the user).

    Raises:
        ConfigError: unreadable sidecar, or myocardium and other values overlap; when one of them
            comes from the sidecar the message says to pass the other explicitly.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ConfigError(f"quantify: manifest {manifest} does not exist")
    side = _read_sidecar(manifest)
    side_p = sidecar_path(manifest)
    opts = (side or {}).get("options", {}) or {}
    given = {
        "myo_labels": None if myo_labels is None else tuple(int(v) for v in myo_labels),
        "other_labels": None if other_labels is None else tuple(int(v) for v in other_labels),
        "slice_axis": slice_axis,
        "basal_end": basal_end,
    }
    from_side: dict[str, Any] = {}
    if side is not None:
        for k in ("myo_labels", "other_labels"):
            from_side[k] = _side_labels(side_p, opts, k)
        if opts.get("slice_axis") is not None:
            if opts["slice_axis"] not in (0, 1, 2):
                raise ConfigError(
                    f"quantify: sidecar {side_p}: 'slice_axis' must be 0, 1 or 2, got {opts['slice_axis']!r}"
                )
            from_side["slice_axis"] = opts["slice_axis"]
        if opts.get("basal_end") is not None:
            if opts["basal_end"] not in ("first", "last"):
                raise ConfigError(
                    f"quantify: sidecar {side_p}: 'basal_end' must be 'first' or 'last', got {opts['basal_end']!r}"
                )
            from_side["basal_end"] = opts["basal_end"]
    lge = _side_labels(side_p, opts, "lge_labels") if side is not None else None

    out: dict[str, Any] = {}
    source: dict[str, str] = {}
    notes: list[str] = []
    for k in ("myo_labels", "other_labels", "slice_axis", "basal_end"):
        sv = from_side.get(k)
        if given[k] is not None:
            out[k], source[k] = given[k], "given"
            if sv is not None and sv != given[k]:
                notes.append(
                    f"note: {_OPT[k]} {_show(given[k])} overrides {k} {_show(sv)} of {side_p.name} "
                    "(explicit values win over the sidecar)"
                )
        elif sv is not None:
            out[k], source[k] = sv, "sidecar"
        else:
            out[k], source[k] = _DEFAULTS[k], "default"
    myo, other = set(out["myo_labels"]), set(out["other_labels"])
    if not myo:
        raise ConfigError("quantify: --myo-labels must list at least one label value")
    if myo & other:
        both = sorted(myo & other)
        sm, so = source["myo_labels"], source["other_labels"]
        if sm == so == "sidecar":
            fix = f"the sidecar {side_p} declares them as both; fix it or pass --myo-labels and --other-labels"
        elif sm == so == "given":
            fix = "a label value is either myocardium or other"
        else:
            mine, theirs = ("myo_labels", "other_labels") if sm == "given" else ("other_labels", "myo_labels")
            origin = f"read from {side_p}" if source[theirs] == "sidecar" else "(the default)"
            fix = (
                f"{_OPT[mine]} contradicts {theirs} {_show(out[theirs])} {origin}; pass {_OPT[theirs]} as well "
                "(explicit values win)"
            )
        raise ConfigError(
            f"quantify: myocardium labels {_show(out['myo_labels'])} and other labels "
            f"{_show(out['other_labels'])} overlap ({both}); {fix}"
        )
    took = [k for k in source if source[k] == "sidecar"]
    if took:
        notes.insert(
            0, f"from the manifest's sidecar {side_p.name}: " + ", ".join(f"{k} {_show(out[k])}" for k in took)
        )
    dflt = [k for k in source if source[k] == "default"]
    if dflt:
        where = (
            f"not recorded in {side_p.name}, using defaults"
            if side is not None
            else f"no sidecar {side_p.name} beside the manifest; using defaults"
        )
        notes.append(f"{where}: " + ", ".join(f"{k} {_show(out[k])}" for k in dflt))
    if lge is not None and not set(lge) <= myo:
        notes.append(
            f"note: LGE label(s) {sorted(set(lge) - myo)} of the import are not in the myocardium labels "
            f"{_show(out['myo_labels'])}; those voxels are not counted as myocardium"
        )
    return {
        **out,
        "lge_labels": lge,
        "source": source,
        "sidecar": side_p if side is not None else None,
        "side": side,
        "notes": notes,
    }


def _show(v: Any) -> str:
    return str(list(v)) if isinstance(v, tuple) else str(v)


def quantify_manifest(
    manifest: str | Path,
    out_dir: str | Path,
    *,
    label_method: str,
    myo_labels: Sequence[int] | None = None,
    other_labels: Sequence[int] | None = None,
    method: str | Sequence[str] = "all",
    n_sd: Iterable[float] | float = DEFAULT_N_SD,
    remote: None | str = None,
    remote_labels: Sequence[int] | None = None,
    slice_axis: int | None = None,
    basal_end: str | None = None,
    fwhm_baseline: str = "remote",
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Label a cohort from myocardium contours: quantify every row's NIfTI image + ``mask``.

    For each manifest row with a ``mask`` (NIfTI label map on the image's grid), runs
    :func:`quantify_files` into ``out_dir/cases`` and writes ``out_dir/<manifest stem>.quantified.csv``:
    the same rows and columns with absolute paths, ``lge_percent`` replaced by the whole-LV burden of
    ``label_method`` (e.g. ``'fwhm'``, ``'nsd5'``), one ``lge_percent_<method>`` column per computed
    method, the previous value kept as ``lge_percent_original``, and an ``X_source`` column for every
    burden column ``X`` (see the module docstring), plus the sidecar
    ``<stem>.quantified.import.json``. Choose ``label_method`` knowingly: see the EMIDEC agreement
    table in docs/results.md. Returns the new manifest's path.

    Args:
        myo_labels, other_labels, slice_axis, basal_end: ``None`` = from the manifest's sidecar
            (else the defaults); see :func:`manifest_settings`.
        method: the methods to compute (``'all'``, ``'nsd'``, ``'fwhm'``); must yield ``label_method``.
        remote: ``None``/``'auto'`` only: one remote mask cannot serve every row. Per-row remote masks
            go in an optional ``remote`` column (blank cell = automatic remote for that row).
        remote_labels: label values of the ``remote`` column's masks that mark remote myocardium.
        echo: called with each note on where the label values came from (the CLI prints them),
            once the options are checked and before the cases run; the notes also go in the sidecar.
    """
    import csv
    import io
    from datetime import datetime, timezone

    manifest = Path(manifest)
    if remote is not None and not (isinstance(remote, str) and remote == "auto"):
        raise ConfigError(
            f"quantify --manifest: --remote {remote} names one mask, which cannot apply to every row; "
            "give one remote mask per row in a 'remote' column of the manifest (blank = automatic), "
            "or leave --remote out for the automatic rule"
        )
    if not manifest.is_file():
        raise ConfigError(f"quantify: manifest {manifest} does not exist")
    names = method_names(method, n_sd)
    if label_method not in names:
        all_names = method_names("all", n_sd)
        if label_method in all_names:
            raise ConfigError(
                f"quantify: --label-method {label_method} is not computed by --method {_method_text(method)} "
                f"(computed: {names}); add its method to --method or choose one of {names}"
            )
        raise ConfigError(f"quantify: label_method must be one of {names}, got {label_method!r}")
    cfg = manifest_settings(
        manifest, myo_labels=myo_labels, other_labels=other_labels, slice_axis=slice_axis, basal_end=basal_end
    )
    text = manifest.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    header = [h for h in (reader.fieldnames or []) if h]
    rows = list(reader)
    if not rows or "image" not in header or "mask" not in header:
        raise ConfigError(f"quantify: manifest {manifest} needs 'image' and 'mask' columns and at least one row")
    has_remote = "remote" in header and any((r.get("remote") or "").strip() for r in rows)
    if remote_labels is not None and not has_remote:
        raise ConfigError(
            f"quantify --manifest: --remote-labels needs remote masks, but manifest {manifest} has no "
            "'remote' column (or it is blank on every row); put one remote mask per row in a 'remote' "
            "column, or leave --remote-labels out for the automatic rule"
        )
    side = cfg["side"] or {}
    dataset = side.get("dataset")
    if echo is not None:
        for line in cfg["notes"]:
            echo(line)

    def given_source(col: str) -> str:
        lge_l, myo_l = cfg["lge_labels"], (side.get("options") or {}).get("myo_labels")
        where = {"lge_percent": "whole LV", "lge_percent_basal": "basal slice"}.get(col)
        if where and lge_l is not None and myo_l is not None:
            return f"mask labels {list(lge_l)} / {list(myo_l)}, {where} (import {dataset or 'unknown'})"
        return "input manifest (source not recorded)"

    base = manifest.resolve().parent
    out_dir = Path(out_dir)
    produced = {"lge_percent", "lge_percent_original"} | {f"lge_percent_{n}" for n in names}
    burden_in = [c for c in header if c.startswith("lge_percent") and not c.endswith("_source")]
    skip_src = {f"{c}_source" for c in produced | set(burden_in)}

    def absolute(cell: str) -> Path:
        p = Path(cell)
        return p if p.is_absolute() else base / p

    cache: dict[tuple[str, str, str], dict[str, Any]] = {}
    out_rows = []
    for i, row in enumerate(rows, start=1):
        pid = row.get("patient_id") or f"row{i}"
        if not (row.get("mask") or "").strip():
            raise DataError(
                f"quantify: manifest {manifest}, row {i} (patient {pid}): no mask; every row needs a "
                "myocardium label map to be quantified"
            )
        ip, mp = absolute(row["image"]), absolute(row["mask"])
        rcell = (row.get("remote") or "").strip() if has_remote else ""
        rp = absolute(rcell) if rcell else None
        key = (str(ip.resolve()), str(mp.resolve()), str(rp.resolve()) if rp else "")
        if key not in cache:
            cache[key] = quantify_files(
                ip,
                mp,
                out_dir / "cases",
                myo_labels=cfg["myo_labels"],
                other_labels=cfg["other_labels"],
                method=method,
                n_sd=n_sd,
                remote=rp,
                remote_labels=remote_labels if rp else None,
                slice_axis=cfg["slice_axis"],
                basal_end=cfg["basal_end"],
                fwhm_baseline=fwhm_baseline,
                case_id=pid,
            )
        s = cache[key]
        rule = "given remote mask" if rp else "auto remote"
        new: dict[str, Any] = {}
        for c in header:
            if c in produced or c in skip_src:
                continue
            new[c] = row.get(c)
            if c in burden_in:
                new[f"{c}_source"] = row.get(f"{c}_source") or given_source(c)
        new["image"], new["mask"] = key[0], key[1]
        if "remote" in header:
            new["remote"] = key[2]
        new["lge_percent"] = round(s["percent"][label_method], 4)
        new["lge_percent_source"] = f"{label_method} ({rule})"
        if "lge_percent" in header:
            new["lge_percent_original"] = row.get("lge_percent")
            new["lge_percent_original_source"] = row.get("lge_percent_source") or given_source("lge_percent")
        for n in names:
            new[f"lge_percent_{n}"] = round(s["percent"][n], 4)
            new[f"lge_percent_{n}_source"] = f"{n} ({rule})"
        out_rows.append(new)
    from lgenet.data.importers import _write_csv

    out = out_dir / f"{manifest.stem}.quantified.csv"
    _write_csv(out, out_rows, None)
    defs = dict(side.get("definitions") or {})
    defs.update(
        {
            "lge_percent": f"whole-LV burden (%) by {label_method} (lgenet quantify); remote rule per row in "
            "lge_percent_source",
            **{f"lge_percent_{n}": f"whole-LV burden (%) by {n} (lgenet quantify)" for n in names},
            "X_source": "for every burden column X: where its value comes from",
        }
    )
    if "lge_percent" in header:
        defs["lge_percent_original"] = "the input manifest's lge_percent (source in lge_percent_original_source)"
    opts = {
        k: (list(cfg[k]) if isinstance(cfg[k], tuple) else cfg[k])
        for k in ("myo_labels", "other_labels", "slice_axis", "basal_end")
    }
    opts["lge_labels"] = list(cfg["lge_labels"]) if cfg["lge_labels"] is not None else None
    if "lge_threshold" in (side.get("options") or {}):
        opts["lge_threshold"] = side["options"]["lge_threshold"]
    new_side = {
        "dataset": dataset,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "manifest": str(out.resolve()),
        "derived_from": {
            "manifest": str(manifest.resolve()),
            "sidecar": str(cfg["sidecar"].resolve()) if cfg["sidecar"] else None,
            "options": side.get("options"),
        },
        "options": opts,
        "label_sources": cfg["source"],
        "quantify": {
            "label_method": label_method,
            "method": _method_text(method),
            "methods": names,
            "n_sd": [float(n) for n in _parse_nsd(n_sd)],
            "fwhm_baseline": fwhm_baseline,
            "remote": "per-row 'remote' column (blank = auto)" if has_remote else "auto",
            "remote_labels": list(remote_labels) if remote_labels is not None else None,
        },
        "definitions": defs,
        "label_notes": cfg["notes"],
        **({"notes": side["notes"]} if side.get("notes") else {}),
    }
    atomic_write_text(sidecar_path(out), json.dumps(new_side, indent=2) + "\n")
    return out


def _method_text(method: str | Sequence[str]) -> str:
    return method if isinstance(method, str) else ",".join(method)
