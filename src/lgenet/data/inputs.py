"""The cohort's training frames: read, checked, and fingerprinted before a run writes anything.

* :func:`read_frames` reads every manifest row's frame (the run's slice rule) and reports every
  unreadable or unusable image at once, naming row, patient and file;
* :func:`check_distinct_inputs` refuses two patients that share pixels: the same file reached by
  two paths (symlinks), a file inside another patient's series folder, or identical pixel content;
* :func:`inputs_record` is what ``inputs.json`` holds: the manifest's SHA-256 and a content hash of
  every row's frame, so that a resume whose inputs changed is refused (see :func:`diff_inputs`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lgenet.data.manifest import Cohort
from lgenet.errors import DataError, ReaderError

__all__ = [
    "read_frames",
    "frame_sha256",
    "image_sha256",
    "check_frame",
    "check_distinct_inputs",
    "inputs_record",
    "diff_inputs",
    "MIN_FRAME_SIDE",
    "is_colour",
]

log = logging.getLogger("lgenet")

#: the smallest frame side accepted (an LGE short-axis frame is ~120-512 px; 1 x 1 images are errors)
MIN_FRAME_SIDE = 16


def frame_sha256(frame: np.ndarray) -> str:
    """SHA-256 of a frame's pixel content (shape + float32 values): equal pixels, equal hash."""
    a = np.ascontiguousarray(np.asarray(frame, dtype=np.float32))
    h = hashlib.sha256(repr(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def image_sha256(path: str | Path) -> str:
    """SHA-256 of an image's *file content*: a file's bytes, or every file of a series folder (recursively).

    What a segmentation run records per patient (``image_sha256`` in its ``inputs.json``) and what a grid run
    or ``lgenet outcomes`` recomputes from its own manifest to be sure the run segmented the same images
    (:func:`lgenet.runs.seg.check_segmentation_inputs`). Exact: the same bytes, the same hash, so a patient
    whose image is another file is told apart even when the ID matches. Cheap: bytes are hashed, no DICOM or
    NIfTI is decoded (the grid reads one frame per patient, the segmentation the whole stack, so their pixel
    hashes cannot be compared; the files they both read can). Independent of where the cohort lies and of the
    file names inside a series folder (the per-file digests are sorted), so a copied cohort matches."""
    from lgenet.utils import sha256_file

    p = Path(path)
    if p.is_dir():
        digests = sorted(sha256_file(f) for f in p.rglob("*") if f.is_file())
        h = hashlib.sha256(b"folder")
        for d in digests:
            h.update(d.encode())
        return h.hexdigest()
    return sha256_file(p)


def check_frame(frame: np.ndarray) -> str | None:
    """Why ``frame`` cannot be an LGE frame (too small, constant, no finite pixel), or None."""
    a = np.asarray(frame)
    if a.ndim != 2:
        return f"the frame has shape {a.shape}; expected a 2-D image"
    if min(a.shape) < MIN_FRAME_SIDE:
        return (
            f"the frame is only {a.shape[0]} x {a.shape[1]} pixels; an LGE short-axis frame needs at least "
            f"{MIN_FRAME_SIDE} x {MIN_FRAME_SIDE}"
        )
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return "the frame has no finite pixel value"
    if float(finite.max()) == float(finite.min()):
        return f"every pixel of the frame has the same value ({float(finite.min()):g}): it is blank, not an image"
    return None


_COLOUR = ("RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCBCR", "LAB", "HSV", "YBR", "PALETTE")


def is_colour(meta: dict) -> bool:
    """True when the reader converted a colour image (PNG/TIFF mode or DICOM photometric) to grey."""
    ph = str(meta.get("photometric") or "").upper().replace(" ", "")
    return any(ph.startswith(c) for c in _COLOUR)


def read_frames(
    cohort: Cohort,
    *,
    slice: str | int = "basal",
    nifti_slice_axis: int = 2,
    nifti_basal_end: str = "last",
    progress: bool = True,
) -> tuple[list[np.ndarray], list[dict]]:
    """Every row's frame and safe metadata; one :class:`ReaderError` listing every bad row."""
    from lgenet.io import read_frame

    frames: list[np.ndarray] = []
    metas: list[dict] = []
    problems: list[str] = []
    for rec in tqdm(cohort.records, desc="reading images", unit="img", disable=not progress, leave=False):
        sl = rec.slice if rec.slice != "basal" else slice
        sl = sl if sl == "basal" else int(sl)
        where = f"row {rec.row} (patient {rec.patient_id}), {rec.image}"
        try:
            frame, meta = read_frame(
                rec.image, slice=sl, nifti_slice_axis=nifti_slice_axis, nifti_basal_end=nifti_basal_end
            )
        except ReaderError as exc:
            problems.append(f"row {rec.row} (patient {rec.patient_id}): {exc}")
            frame, meta = np.zeros((1, 1), np.float32), {}
        else:
            why = check_frame(frame)
            if why:
                problems.append(f"{where}: {why}")
            elif is_colour(meta):
                log.warning(
                    "%s: a colour (RGB) image was converted to grey; LGE frames are greyscale — check that "
                    "this is the right file",
                    where,
                )
        frames.append(frame)
        metas.append(meta)
    if problems:
        raise ReaderError(
            f"{len(problems)} image(s) listed in {cohort.path} could not be used:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    return frames, metas


def check_distinct_inputs(cohort: Cohort, frames: Sequence[np.ndarray]) -> None:
    """Refuse rows of *different* patients whose images are the same file, nested, or equal in content."""
    problems: list[str] = []
    resolved = [Path(r.image).resolve() for r in cohort.records]
    hashes = [frame_sha256(f) for f in frames]
    recs = cohort.records
    for i in range(len(recs)):
        for j in range(i + 1, len(recs)):
            a, b = recs[i], recs[j]
            if a.patient_id == b.patient_id:
                continue
            pa, pb = resolved[i], resolved[j]
            why = None
            if pa == pb:
                why = f"both point to the same file or folder ({pb})"
            elif pa in pb.parents or pb in pa.parents:
                inner, outer = (pb, pa) if pa in pb.parents else (pa, pb)
                why = f"{inner} lies inside the other's series folder {outer}"
            elif hashes[i] == hashes[j]:
                why = "their frames have identical pixel content"
            if why:
                problems.append(f"rows {a.row} (patient {a.patient_id}) and {b.row} (patient {b.patient_id}): {why}")
    if problems:
        raise DataError(
            f"manifest {cohort.path}: the same pixels would serve two patients (results would mix them):\n"
            + "\n".join(f"  - {p}" for p in problems[:20])
            + ("\n  ..." if len(problems) > 20 else "")
            + "\nGive every patient their own image (check symlinks and series folders)"
        )


def inputs_record(cohort: Cohort, frames: Sequence[np.ndarray], manifest_sha256: str) -> dict:
    """The run's inputs: the manifest hash and, per row, the patient and a hash of its frame's pixels."""
    return {
        "manifest": Path(cohort.path).name,
        "manifest_sha256": manifest_sha256,
        "rows": [
            {"row": r.row, "patient_id": r.patient_id, "frame_sha256": frame_sha256(f)}
            for r, f in zip(cohort.records, frames)
        ],
    }


def diff_inputs(old: dict, new: dict) -> list[str]:
    """Human-readable differences between two :func:`inputs_record` results (empty = same inputs)."""
    out = []
    if old.get("manifest_sha256") != new.get("manifest_sha256"):
        out.append("the manifest's content (SHA-256) differs")
    o = {(r["patient_id"], r["row"]): r["frame_sha256"] for r in old.get("rows", [])}
    n = {(r["patient_id"], r["row"]): r["frame_sha256"] for r in new.get("rows", [])}
    changed = sorted(f"row {k[1]} (patient {k[0]})" for k in set(o) & set(n) if o[k] != n[k])
    added = sorted(f"row {k[1]} (patient {k[0]})" for k in set(n) - set(o))
    removed = sorted(f"row {k[1]} (patient {k[0]})" for k in set(o) - set(n))
    if changed:
        out.append(f"the image of {len(changed)} row(s) changed: {', '.join(changed[:5])}")
    if added:
        out.append(f"{len(added)} row(s) are new: {', '.join(added[:5])}")
    if removed:
        out.append(f"{len(removed)} row(s) were removed: {', '.join(removed[:5])}")
    return out
