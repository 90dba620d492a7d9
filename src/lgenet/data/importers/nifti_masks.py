"""Any dataset of NIfTI images with label-map masks on the same voxel grid -> a manifest
(:func:`import_nifti_masks`; its options: :class:`NiftiMaskImport`)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.conventions.files import import_sidecar
from lgenet.conventions.labels import EMIDEC, SegLabels
from lgenet.conventions.thresholds import LGE_THRESHOLD
from lgenet.data.importers.cases import (
    CaseError,
    CaseStats,
    _check_convention,
    case_stats,
    cavity_labels,
    import_labels,
)
from lgenet.data.importers.clinical import event_value, read_clinical
from lgenet.data.importers.nifti_records import _sidecar, _summary
from lgenet.data.importers.pairing import _pair, _pair_by_pattern, find_nifti, read_pairs_csv
from lgenet.data.manifest import write_manifest
from lgenet.errors import ConfigError, DataError
from lgenet.utils import atomic_path, atomic_write_text

__all__ = ["NiftiMaskImport", "NIFTI_MASK_DEFAULTS", "import_nifti_masks"]


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


def _fmt(v: float, nd: int = 4) -> float:
    return float(round(v, nd))


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


@dataclass(frozen=True)
class NiftiMaskImport:
    """The options of :func:`import_nifti_masks` (the defaults: the EMIDEC label convention, slices
    along axis 2 with the base last, pairing by file name, no clinical table).

    Fields:
        images, masks (arguments of :func:`import_nifti_masks`): a folder of ``.nii``/``.nii.gz`` files, a glob pattern (quote it in a
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

    """

    myo_labels: Sequence[int] | str = EMIDEC.myo
    lge_labels: Sequence[int] | str = EMIDEC.lge
    other_labels: Sequence[int] | str = EMIDEC.non_myo
    slice_axis: int = 2
    basal_end: str = "last"
    clinical_csv: str | Path | None = None
    id_column: str = "case_id"
    clinical_columns: Mapping[str, str] | Sequence[str] | None = None
    event_column: str | None = None
    event_min: float | None = None
    followup_column: str | None = None
    case_ids: Mapping[str, str] | None = None
    image_pattern: str | None = None
    mask_pattern: str | None = None
    pairs_csv: str | Path | None = None
    frames_dir: str | Path | None = None
    lge_threshold: float = LGE_THRESHOLD
    dataset: str = "nifti-masks"
    notes: Mapping[str, Any] | None = None


NIFTI_MASK_DEFAULTS = NiftiMaskImport()


def import_nifti_masks(
    images: str | Path | Sequence[str | Path] | None,
    masks: str | Path | Sequence[str | Path] | None,
    out_manifest: str | Path,
    options: NiftiMaskImport = NIFTI_MASK_DEFAULTS,
) -> Path:
    """Import image + label-map NIfTI pairs into a manifest CSV (written atomically).

    ``images``/``masks``: folders, glob patterns or lists of NIfTI files (``None`` with
    ``options.pairs_csv``); ``options``: see :class:`NiftiMaskImport`.

    Returns:
        the manifest path. A sidecar ``<stem>.import.json`` holds options, counts and notes.
    """
    o = options
    labels = _check_options(o)
    pairs, rule, ignored = _find_pairs(images, masks, o)
    clin, col_map = _clinical(o, pairs)

    out_manifest = Path(out_manifest)
    _refuse_overwrite(out_manifest, pairs, o)
    rows: list[dict[str, Any]] = []
    frame_rows: list[dict[str, Any]] = []
    stats: list[CaseStats] = []
    for cid, ip, mp in pairs:
        res = case_stats(
            ip,
            mp,
            case=cid,
            labels=labels,
            slice_axis=o.slice_axis,
            basal_end=o.basal_end,
        )
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
            if o.event_column:
                row["event"] = event_value(
                    crow.get(o.event_column, ""), o.event_min, cid, o.event_column, o.clinical_csv
                )
            if o.followup_column:
                row["followup_years"] = crow.get(o.followup_column, "") or None
            for src, dst in col_map.items():
                row[dst] = crow.get(src, "")
        rows.append(row)

    _check_convention(stats, labels)
    if o.frames_dir is not None:  # every pair read and checked first: a bad case leaves no frame behind
        for (cid, ip, mp), row in zip(pairs, rows):
            st, img_st, lab_st = case_stats(  # type: ignore[misc]
                ip, mp, case=cid, labels=labels, slice_axis=o.slice_axis, basal_end=o.basal_end, keep_arrays=True
            )
            frame_rows += _write_frames(Path(o.frames_dir), st, img_st, lab_st, row)
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
    write_manifest(out_manifest, rows, columns=columns)
    if o.frames_dir is not None:
        fcols = columns[:3] + ["slice_index", "is_basal", "lge_percent_slice"] + columns[3:]
        write_manifest(Path(o.frames_dir) / "frames.csv", frame_rows, columns=fcols)
    pairing = {"rule": rule, "ignored_images": ignored["images"], "ignored_masks": ignored["masks"]}
    side = _sidecar(o, labels, (images, masks), out_manifest, _summary(rows, stats, o.lge_threshold), pairing)
    side["options"]["cavity_labels"] = cavity_labels(stats)  # since 0.2.0: read back by labels_of_import
    atomic_write_text(import_sidecar(out_manifest), json.dumps(side, indent=2) + "\n")
    return out_manifest


def _refuse_overwrite(out_manifest: Path, pairs: list[tuple[str, Path, Path]], o: NiftiMaskImport) -> None:
    """No output (the manifest, its sidecar, the frames) is written over an input (an image, a mask, the pairs or
    clinical CSV) (since 0.2.0). The data layer sits below :func:`lgenet.runs.paths.refuse_overwrite`: the same
    rule, for the files an import writes."""
    import os

    def real(p: str | Path) -> Path:
        return Path(os.path.abspath(Path(p).expanduser())).resolve()

    inputs = {real(p): str(p) for _, ip, mp in pairs for p in (ip, mp)}
    inputs.update({real(p): str(p) for p in (o.pairs_csv, o.clinical_csv) if p})
    outs = [("--out", out_manifest), ("--out's sidecar", import_sidecar(out_manifest))]
    if o.frames_dir is not None:
        outs.append(("--frames-dir's frames.csv", Path(o.frames_dir) / "frames.csv"))
        fd = real(o.frames_dir)
        inside = [g for r, g in inputs.items() if fd == r or fd in r.parents]
        if inside:
            raise ConfigError(
                f"--frames-dir {o.frames_dir} holds the input {inside[0]}; its frames would overwrite or mix with "
                "the inputs: choose a new folder outside them"
            )
    for what, path in outs:
        given = inputs.get(real(path))
        if given is not None:
            raise ConfigError(
                f"{what} {path} is an input of this import ({given}); writing there would overwrite it: choose "
                "a new manifest path"
            )


def _check_options(o: NiftiMaskImport) -> SegLabels:
    """The declared labels as a convention; refuses options that contradict each other."""
    myo_t = _labels_tuple(o.myo_labels, "myo_labels")
    lge_t = _labels_tuple(o.lge_labels, "lge_labels")
    other_t = _labels_tuple(o.other_labels, "other_labels")
    if not myo_t:
        raise ConfigError("myo_labels must list at least one label value")
    if not set(lge_t) <= set(myo_t):
        raise ConfigError(
            f"lge_labels {list(lge_t)} must be a subset of myo_labels {list(myo_t)} "
            "(the burden is enhanced myocardium / whole myocardium)"
        )
    if set(other_t) & set(myo_t):
        raise ConfigError(f"other_labels {list(other_t)} overlap myo_labels {list(myo_t)}")
    if o.basal_end not in ("first", "last"):
        raise ConfigError(f"basal_end must be 'first' or 'last', got {o.basal_end!r}")
    if o.slice_axis not in (0, 1, 2):
        raise ConfigError(f"slice_axis must be 0, 1 or 2, got {o.slice_axis!r}")
    if o.event_min is not None and o.event_column is None:
        raise ConfigError("event_min needs event_column")
    if (o.event_column or o.followup_column or o.clinical_columns) and o.clinical_csv is None:
        raise ConfigError("event_column, followup_column and clinical_columns need clinical_csv")
    return import_labels(myo_t, lge_t, other_t)


def _find_pairs(images: Any, masks: Any, o: NiftiMaskImport) -> tuple[list[tuple[str, Path, Path]], str, dict]:
    """The (case ID, image, mask) pairs, the pairing rule in words and the files the patterns ignored."""
    ignored: dict[str, list[str]] = {"images": [], "masks": []}
    if o.pairs_csv is not None:
        if images is not None or masks is not None or o.image_pattern or o.mask_pattern or o.case_ids is not None:
            raise ConfigError(
                "pairs_csv lists the images and masks itself: give either pairs_csv, or "
                "images and masks (with image_pattern/mask_pattern or case_ids), not both"
            )
        pairs = read_pairs_csv(o.pairs_csv)
        rule = f"pairs file {o.pairs_csv}"
    else:
        if images is None or masks is None:
            raise ConfigError("give images and masks (folders, globs or lists), or pairs_csv")
        img_files = find_nifti(images, "images")
        mask_files = find_nifti(masks, "masks")
        if o.image_pattern or o.mask_pattern:
            if o.case_ids is not None:
                raise ConfigError("give either case_ids or image_pattern/mask_pattern, not both")
            pairs, ignored = _pair_by_pattern(img_files, mask_files, o.image_pattern, o.mask_pattern)
            rule = f"file-name patterns: images {o.image_pattern or '{id}.nii(.gz)'}, masks {o.mask_pattern or '{id}.nii(.gz)'}"
        else:
            shared = {p.resolve() for p in img_files} & {p.resolve() for p in mask_files}
            if shared:
                eg = sorted(p.name for p in shared)[:3]
                raise ConfigError(
                    f"--images and --masks select the same {len(shared)} file(s) (e.g. {', '.join(eg)}): each image would "
                    "be its own mask. When images and masks share a folder, tell them apart by name, e.g. "
                    "--image-pattern '{id}_LGE.nii.gz' --mask-pattern '{id}_gd.nii.gz', or list them with --pairs"
                )
            pairs = _pair(img_files, mask_files, o.case_ids)
            rule = "case IDs given" if o.case_ids is not None else "same file name"
    return pairs, rule, ignored


def _clinical(o: NiftiMaskImport, pairs: list[tuple[str, Path, Path]]) -> tuple[dict | None, dict[str, str]]:
    """The clinical rows by case ID (``None`` without a clinical file) and the columns to import."""
    clin: dict[str, dict[str, str]] | None = None
    col_map: dict[str, str] = {}
    if o.clinical_csv is not None:
        header, clin = read_clinical(Path(o.clinical_csv), o.id_column)
        if o.clinical_columns is None:
            col_map = {c: c for c in header if c != o.id_column}
        elif isinstance(o.clinical_columns, Mapping):
            col_map = dict(o.clinical_columns)
        else:
            col_map = {c: c for c in o.clinical_columns}
        for c in list(col_map) + [x for x in (o.event_column, o.followup_column) if x]:
            if c not in header:
                raise DataError(f"clinical file {o.clinical_csv} has no column {c!r}; its columns are {header}")
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
                f"no row in clinical file {o.clinical_csv} (ID column {o.id_column!r})"
                + (f"; {len(missing) - 1} more case(s) also missing: {missing[1:6]}" if len(missing) > 1 else ""),
            )
    return clin, col_map
