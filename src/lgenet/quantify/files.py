"""One case of :func:`~lgenet.quantify.methods.quantify` from files: a NIfTI image and its label map.

Label maps (:func:`quantify_files`, :func:`quantify_manifest`)
--------------------------------------------------------------
Every value of a label map must be declared: ``myo_labels`` (myocardium, default 2,3,4) or
``other_labels`` (background, cavity..., default 0,1). A mask holding any other value is refused
with the values and their voxel counts (declare them, or fix the mask); the values found are
listed in the case summary (``labels_found``).

The image and the mask are read, oriented apex -> base and written back by :mod:`lgenet.io.nifti`
(:func:`~lgenet.io.nifti.load_nifti`, :class:`~lgenet.io.nifti.NiftiVolume`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.conventions.labels import EMIDEC
from lgenet.errors import ConfigError, DataError
from lgenet.io.nifti import load_nifti, write_nifti_like
from lgenet.quantify.methods import DEFAULT_N_SD, _num, quantify
from lgenet.utils import atomic_write_text

__all__ = ["MaskLayout", "QuantifySettings", "EMIDEC_LAYOUT", "QUANTIFY_DEFAULTS", "quantify_files"]


@dataclass(frozen=True)
class MaskLayout:
    """A label map's conventions: which values are myocardium, which other values may appear
    (background, cavity...) and where the short-axis slices run.

    ``myo_labels`` ``None`` = every non-zero voxel; ``other_labels`` ``None`` = any value; otherwise a
    value in neither set refuses the case (:class:`~lgenet.errors.DataError`). ``slice_axis``: the
    array axis of the slices; ``basal_end``: ``'last'`` or ``'first'`` stored index is the base.
    """

    myo_labels: Sequence[int] | None = EMIDEC.myo
    other_labels: Sequence[int] | None = EMIDEC.non_myo
    slice_axis: int = 2
    basal_end: str = "last"


@dataclass(frozen=True)
class QuantifySettings:
    """The methods to compute and their options (see :mod:`lgenet.quantify.methods`).

    ``method``: ``'all'``, ``'nsd'``, ``'fwhm'`` or a list; ``n_sd``: the n of the n-SD rule;
    ``fwhm_baseline``: ``'remote'`` or ``'zero'``; ``remote_labels``: the values of a remote label
    map that mark remote myocardium (default non-zero; only with a remote mask).
    """

    method: str | Sequence[str] = "all"
    n_sd: Iterable[float] | float = DEFAULT_N_SD
    fwhm_baseline: str = "remote"
    remote_labels: Sequence[int] | None = None


#: the EMIDEC label map: myocardium 2,3,4, other 0,1, slices along axis 2, last index basal
EMIDEC_LAYOUT = MaskLayout()
QUANTIFY_DEFAULTS = QuantifySettings()


def quantify_files(
    image_nifti: str | Path,
    mask_nifti: str | Path,
    out_dir: str | Path,
    *,
    layout: MaskLayout = EMIDEC_LAYOUT,
    settings: QuantifySettings = QUANTIFY_DEFAULTS,
    remote: None | str | Path = None,
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
        layout: the mask's label values and where its slices run (:class:`MaskLayout`).
        settings: the methods and their options (:class:`QuantifySettings`).
        remote: ``None``/``'auto'``, or a NIfTI mask of remote myocardium on the same grid (its
            values marking remote: ``settings.remote_labels``, default non-zero).
        case_id: the case's name in the files written (default: the image's file name).

    Returns:
        the summary dict also written as JSON (``files`` lists what was written).
    """
    myo_labels, other_labels = layout.myo_labels, layout.other_labels
    slice_axis, basal_end = layout.slice_axis, layout.basal_end
    method, n_sd = settings.method, settings.n_sd
    fwhm_baseline, remote_labels = settings.fwhm_baseline, settings.remote_labels
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
    img = load_nifti(image_nifti, what=f"case {case}: image")
    lab_v = load_nifti(mask_nifti, what=f"case {case}: mask")
    if img.shape != lab_v.shape:
        raise DataError(
            f"case {case}: mask grid {lab_v.shape} ({mask_nifti}) differs from image grid "
            f"{img.shape} ({image_nifti}); image and mask are paired by array index"
        )
    lab = np.rint(np.asarray(lab_v.data, dtype=np.float64)).astype(np.int64)
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
        rem_v = load_nifti(remote, what=f"case {case}: remote mask")
        if rem_v.shape != img.shape:
            raise DataError(f"case {case}: remote mask grid {rem_v.shape} differs from image grid {img.shape}")
        rv = np.rint(np.asarray(rem_v.data, dtype=np.float64)).astype(np.int64)
        rem_vol = (rv != 0) if remote_labels is None else np.isin(rv, list(remote_labels))
        rem_arg = img.stack(slice_axis, basal_end, rem_vol)
    spacing = img.spacing(slice_axis) if img.data.ndim == 3 else None
    img_st = img.stack(slice_axis, basal_end, np.asarray(img.data, dtype=np.float64))
    myo_st = img.stack(slice_axis, basal_end, myo_vol)
    try:
        res = quantify(
            img_st, myo_st, method=method, n_sd=n_sd, remote=rem_arg, spacing=spacing, fwhm_baseline=fwhm_baseline
        )
    except DataError as exc:
        raise DataError(f"case {case}: {exc}") from None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    masks = {**{name: r.mask for name, r in res.methods.items()}, "remote": np.asarray(res.remote_mask)}
    for name, mask in masks.items():
        stored = img.unstack(np.asarray(mask, dtype=np.uint8), slice_axis, basal_end)
        files[name] = str(write_nifti_like(out_dir / f"{case}_{name}.nii.gz", stored, img.image, np.uint8))
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
