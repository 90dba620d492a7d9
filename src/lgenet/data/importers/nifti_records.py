"""What ``lgenet import nifti-masks`` records beside its manifest: the sidecar and the import's summary."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lgenet.conventions.labels import SegLabels
from lgenet.data.importers.cases import (
    CaseStats,
)

__all__: list[str] = []


def _sidecar(o: Any, labels: SegLabels, files: tuple, out_manifest: Path, counts: dict, pairing: dict) -> dict:
    """The import sidecar's content (``o``: the import's NiftiMaskImport options): options, definitions, counts,
    pairing and notes."""
    images, masks = files
    return {
        "dataset": o.dataset,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "manifest": str(out_manifest.resolve()),
        "frames_manifest": str((Path(o.frames_dir) / "frames.csv").resolve()) if o.frames_dir is not None else None,
        "options": {
            "images": _spec(images),
            "masks": _spec(masks),
            "image_pattern": o.image_pattern,
            "mask_pattern": o.mask_pattern,
            "pairs_csv": str(o.pairs_csv) if o.pairs_csv is not None else None,
            "myo_labels": list(labels.myo),
            "lge_labels": list(labels.lge),
            "other_labels": list(labels.non_myo),
            "slice_axis": o.slice_axis,
            "basal_end": o.basal_end,
            "clinical_csv": str(o.clinical_csv) if o.clinical_csv is not None else None,
            "id_column": o.id_column,
            "event_column": o.event_column,
            "event_min": o.event_min,
            "followup_column": o.followup_column,
            "lge_threshold": o.lge_threshold,
        },
        "definitions": {
            "lge_percent": "whole-LV: voxels with an LGE label / voxels with a myocardium label x 100, all slices",
            "lge_percent_basal": "the same on the basal slice (the frame the manifest's slice=basal selects)",
            "slice": "basal = last index of the stack ordered apex -> base",
        },
        "counts": counts,
        "pairing": pairing,
        **({"notes": dict(o.notes)} if o.notes else {}),
    }


def _spec(x: Any) -> Any:
    if x is None:
        return None
    return [str(p) for p in x] if isinstance(x, (list, tuple)) else str(x)


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
