"""One case of an import: an image + label-map NIfTI pair checked and measured (:func:`case_stats`).

Both files are read and oriented apex -> base by :func:`lgenet.io.nifti.load_nifti`; voxels are
paired by array index, and (since 0.2.0) a mask whose grid lies elsewhere in space (voxel size,
mirrored axis, shifted origin: :func:`lgenet.io.nifti.geometry_difference`) is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lgenet.conventions.labels import EMIDEC, SegLabels
from lgenet.errors import ConfigError, DataError, ReaderError
from lgenet.io.nifti import NiftiVolume, geometry_difference, load_nifti

__all__ = ["CaseError", "CaseStats", "case_stats", "cavity_labels", "import_labels", "labels_from_import"]


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


def _strip_nii(name: str) -> str | None:
    low = name.lower()
    for ext in (".nii.gz", ".nii"):
        if low.endswith(ext):
            return name[: -len(ext)]
    return None


def _load(path: Path, case: str, what: str) -> NiftiVolume:
    try:
        return load_nifti(path, what=what)
    except ReaderError as exc:
        raise CaseError(case, str(exc)) from None


def import_labels(myo: Sequence[int], lge: Sequence[int], other: Sequence[int]) -> SegLabels:
    """The label convention of an import: myocardium, its enhanced part and every other value (no
    separate cavity: the burden needs none)."""
    return SegLabels(cavity=(), myo=tuple(myo), lge=tuple(lge), other=tuple(other))


def cavity_labels(stats: Sequence[CaseStats]) -> list[int]:
    """The non-zero 'other' labels that are the LV cavity: mostly inside the myocardium's filled outline
    in most of the cases that hold them (an RV cavity or background lies outside it)."""
    seen: dict[int, list[float]] = {}
    for st in stats:
        for v, share in st.other_enclosed.items():
            seen.setdefault(int(v), []).append(float(share))
    return sorted(v for v, shares in seen.items() if 2 * sum(s >= 0.5 for s in shares) > len(shares))


def labels_from_import(manifest: str | Path) -> tuple[SegLabels, Path] | None:
    """The label convention ``lgenet import`` recorded beside ``manifest`` (its ``.import.json`` sidecar) and
    the sidecar's path; ``None`` without a sidecar. A sidecar that cannot be read is refused by name."""
    import json

    from lgenet.conventions.files import import_sidecar
    from lgenet.conventions.labels import labels_of_import

    side = import_sidecar(manifest)
    if not side.is_file():
        return None
    try:
        opts = json.loads(side.read_text(encoding="utf-8")).get("options", {})
    except (ValueError, AttributeError, OSError) as exc:
        raise ConfigError(
            f"import sidecar {side} cannot be read ({type(exc).__name__}); pass --labels, or re-run lgenet import"
        ) from None
    if not isinstance(opts, dict) or not opts.get("myo_labels"):
        return None
    return labels_of_import(opts, where=f"import sidecar {side}"), side


def _check_convention(stats: Sequence[CaseStats], labels: SegLabels) -> None:
    """Refuse masks that contradict the *default* (EMIDEC) declaration: there, label 1 is the LV cavity
    and lies inside the myocardium's outline. A label 1 mostly outside it in most cases means another
    convention (e.g. 0 background / 1 myocardium / 2 scar), and every burden would silently be 0."""
    if (labels.myo, labels.lge, labels.non_myo) != (EMIDEC.myo, EMIDEC.lge, EMIDEC.non_myo):
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
    labels: SegLabels = EMIDEC,
    slice_axis: int = 2,
    basal_end: str = "last",
    keep_arrays: bool = False,
) -> CaseStats | tuple[CaseStats, np.ndarray, np.ndarray]:
    """Check one image/mask pair and measure its LGE burden (whole LV and basal slice).

    ``labels``: the mask's convention (myocardium, enhancement; cavity and other values together are
    the other values allowed), e.g. :func:`import_labels`. With ``keep_arrays`` also returns the image
    and label stacks, ``(S, X, Y)`` apex -> base.
    Raises :class:`CaseError` (naming the case) for every refusal listed in the module docstring.
    """
    myo_labels, lge_labels, other_labels = labels.myo, labels.lge, labels.non_myo
    image, mask = Path(image), Path(mask)
    case = case or _strip_nii(image.name) or image.name
    img_v = _load(image, case, "image")
    lab_v = _load(mask, case, "mask")
    img, lab = img_v.stack(slice_axis), lab_v.stack(slice_axis)  # shapes only: the grids compared
    if img.shape != lab.shape:
        raise CaseError(
            case,
            f"mask grid {lab_v.data.shape} ({mask}) differs from image grid {img_v.data.shape} ({image}); "
            "image and mask are paired by array index, so their array shapes must be equal",
        )
    moved = geometry_difference(img_v, lab_v)
    if moved:
        raise CaseError(
            case,
            f"mask {mask} lies elsewhere in space than its image {image}: its voxel grid is {moved}; "
            "the mask would pair the wrong voxels. Give the mask drawn on this image (or resample it onto the "
            "image's grid)",
        )
    labf = np.asarray(lab_v.data, dtype=np.float64)
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
    lab_st = lab_v.stack(slice_axis, basal_end, labi)
    img_st = img_v.stack(slice_axis, basal_end)
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
    bad_px = int(np.size(img_st) - np.isfinite(np.asarray(img_st, dtype=np.float64)).sum())
    if bad_px:
        where = "inside the myocardium" if not np.isfinite(np.asarray(img_st, dtype=np.float64)[myo]).all() else ""
        raise CaseError(
            case,
            f"image {image} has {bad_px} NaN/inf voxel(s){' ' + where if where else ''}; lgenet's readers "
            "refuse such an image later (segment train, run), so it is refused here: fill or crop them",
        )
    from scipy.ndimage import binary_fill_holes

    hull = np.stack([binary_fill_holes(m) for m in myo])
    enclosed = {}
    for v in other_labels:
        sel = lab_st == v
        if v != 0 and sel.any():
            enclosed[int(v)] = float(hull[sel].mean())
    vox_ml = float(np.prod(img_v.zooms)) / 1000.0
    st = CaseStats(
        case=case,
        image=image,
        mask=mask,
        shape=tuple(img_v.data.shape) if img_v.data.ndim == 3 else (*img_v.data.shape, 1),
        n_slices=n_slices,
        spacing=img_v.spacing(slice_axis),
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
