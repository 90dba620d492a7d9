"""A manifest's stacks as segmentation cases: one stack (and mask) per patient, read and fingerprinted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lgenet.config import SegConfig
from lgenet.data.stacks import Stack, read_stack
from lgenet.errors import DataError, ReaderError

__all__ = ["Case", "cases_of", "read_case", "safe_id"]


@dataclass(frozen=True)
class Case:
    """One patient's stack in a manifest (the first row of the patient)."""

    patient_id: str
    row: int
    image: str
    mask: str | None
    lge_percent: float | None


def cases_of(cohort, *, need_masks: bool) -> list[Case]:
    by_pid: dict[str, Case] = {}
    problems = []
    for r in cohort.records:
        prev = by_pid.get(r.patient_id)
        if prev is not None:
            if Path(prev.image).resolve() != Path(r.image).resolve():
                problems.append(
                    f"patient {r.patient_id}: rows {prev.row} and {r.row} give different images; "
                    "segmentation works on one stack per patient"
                )
            continue
        if need_masks and r.mask is None:
            problems.append(
                f"row {r.row} (patient {r.patient_id}): no 'mask'; segment train needs the expert label "
                "map of every stack"
            )
        by_pid[r.patient_id] = Case(r.patient_id, r.row, str(r.image), str(r.mask) if r.mask else None, r.lge_percent)
    if problems:
        raise DataError(f"manifest {cohort.path}:\n" + "\n".join(f"  - {p}" for p in problems[:20]))
    return [by_pid[p] for p in sorted(by_pid)]


def read_case(case: Case, cfg: SegConfig, *, with_mask: bool = True) -> Stack:
    try:
        return read_stack(
            case.image,
            case.mask if with_mask else None,
            labels=cfg.seg_labels(),
            nifti_slice_axis=cfg.nifti_slice_axis,
            nifti_basal_end=cfg.nifti_basal_end,
            default_spacing=cfg.pixel_spacing,
        )
    except (ReaderError, DataError) as exc:
        raise type(exc)(f"row {case.row} (patient {case.patient_id}): {exc}") from None


def _stack_hash(st: Stack) -> str:
    h = hashlib.sha256(repr((st.image.shape, st.spacing)).encode())
    h.update(np.ascontiguousarray(st.image, np.float32).tobytes())
    if st.classes is not None:
        h.update(np.ascontiguousarray(st.classes).tobytes())
    return h.hexdigest()


def _stack_features(st: Stack) -> dict:
    from lgenet.data.shift import frame_features

    f = frame_features(st.image[-1], {"pixel_spacing": st.spacing})
    return f


def safe_id(pid: str) -> str:
    from lgenet.conventions.names import safe_name

    return safe_name(pid)
