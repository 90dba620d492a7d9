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

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lgenet.errors import ConfigError, DataError

__all__ = [
    "MethodResult",
    "QuantifyResult",
    "SectorRule",
    "AHA_SECTORS",
    "quantify",
    "auto_remote_mask",
    "method_names",
    "DEFAULT_N_SD",
    "METHODS",
]

DEFAULT_N_SD = (2, 3, 5, 6)
METHODS = ("nsd", "fwhm")


@dataclass(frozen=True)
class SectorRule:
    """The automatic remote rule's sectors (see the module docstring): ``sectors`` per slice,
    ``apical_sectors`` on the apical third, sectors under ``min_sector_pixels`` pixels ignored."""

    sectors: int = 6
    apical_sectors: int = 4
    min_sector_pixels: int = 10


AHA_SECTORS = SectorRule()


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
    sectors: SectorRule = AHA_SECTORS,
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
        sectors: the automatic remote rule's sectors (:class:`SectorRule`).

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
            auto_remote_mask(img, myo, **dataclasses.asdict(sectors)),
            "remote",
        )
        rule = (
            f"auto: darkest of {sectors.sectors} angular sectors per slice ({sectors.apical_sectors} on the "
            "apical third)"
        )
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
            f"has fewer than {sectors.min_sector_pixels} pixels)"
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
