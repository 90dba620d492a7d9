"""What an apply job is, checked before it writes: the input IDs, every stack read once, the job record in its
output folder (``apply.json``) and whether that folder is new, this same job, or refused (since 0.2.0)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from lgenet import __version__
from lgenet.errors import ConfigError, DataError, LgenetError
from lgenet.runs.seg import SegRunDir
from lgenet.segment.cases import Case, _stack_hash, read_case
from lgenet.utils import sha256_file

__all__ = ["APPLY_RECORD"]

log = logging.getLogger("lgenet")

#: the record of an apply job in its output folder: what it segmented, with which model and settings (since 0.2.0)
APPLY_RECORD = "apply.json"


def _input_ids(ids: Sequence[str] | None, n: int) -> list[str]:
    """The patient IDs of ``n`` input paths: ``--ids`` checked (one per input, none empty, no repeats)."""
    if ids is None:
        return [f"input_{i + 1:03d}" for i in range(n)]
    ids = [str(v).strip() for v in ids]
    if len(ids) != n:
        raise ConfigError(f"--ids gives {len(ids)} id(s) for {n} input(s); give one per input, in order")
    empty = [i + 1 for i, v in enumerate(ids) if not v]
    if empty:
        raise ConfigError(f"--ids: entry {', '.join(map(str, empty))} is empty; give an ID for every input, in order")
    seen: dict[str, int] = {}
    for i, v in enumerate(ids):
        if v in seen:
            raise ConfigError(
                f"--ids: {v!r} is given twice (inputs {seen[v] + 1} and {i + 1}); every input needs its own ID"
            )
        seen[v] = i
    return ids


def _read_all(cases: list[Case], cfg, manifest) -> list[dict]:
    """Every case read once before anything is written (a bad row fails the job up front); their content hashes."""
    problems, hashes = [], []
    for c in cases:
        try:
            st = read_case(c, cfg, with_mask=c.mask is not None)
        except LgenetError as exc:
            problems.append(str(exc))
            continue
        hashes.append({"patient_id": c.patient_id, "stack_sha256": _stack_hash(st)})
    if problems:
        where = f"manifest {manifest}" if manifest else "the inputs"
        raise DataError(
            f"{len(problems)} stack(s) of {where} cannot be segmented (nothing was written):\n"
            + "\n".join(f"  - {p}" for p in problems[:30])
        )
    return hashes


def _job_record(rd: SegRunDir, cfg, o, manifest, cases: list[dict], *, engine: str = "torch") -> dict:
    """What this apply job is: the run and its fold models, the inputs' content, the settings that change outputs."""
    models = sorted(rd.path.glob("fits/seg/fold*/model.pt"))
    return {
        "job": "lgenet segment apply",
        "lgenet": __version__,
        "run": str(rd.path.resolve()),
        "models_sha256": {str(p.relative_to(rd.path)): sha256_file(p) for p in models},
        "manifest_sha256": sha256_file(manifest) if manifest else None,
        "cases": cases,
        "settings": {
            "nifti_slice_axis": cfg.nifti_slice_axis,
            "nifti_basal_end": cfg.nifti_basal_end,
            "pixel_spacing": cfg.pixel_spacing,
            "labels": cfg.labels,
            "overlays": bool(o.overlays),
            # since 0.3.0, recorded only when on, so that an earlier job's record still matches its resume
            **({"dicom_seg": True} if getattr(o, "dicom_seg", False) else {}),
            **({"rv_insertion_deg": o.rv_insertion_deg} if getattr(o, "rv_insertion_deg", None) is not None else {}),
            **({"engine": engine} if engine != "torch" else {}),  # since 0.3.0: the networks on ONNX Runtime
            # since 0.3.0, recorded when on: a job recorded before it did no second look and resumes only without
            **({"second_look": True} if getattr(o, "second_look", False) else {}),
            # since 0.3.0 (configuration 29), recorded when on with the second look
            **({"frame_scan": True} if getattr(o, "second_look", False) and getattr(o, "frame_scan", False) else {}),
        },
    }


def _check_out_dir(out_dir: Path, record: dict) -> None:
    """An output folder is new (or empty), or holds this same job (resumed: every file rewritten), else refused."""
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    f = out_dir / APPLY_RECORD
    fix = f"choose a new --out (or delete {out_dir} to redo it)"
    if not f.is_file():
        raise ConfigError(
            f"--out {out_dir} already holds files that no `lgenet segment apply` recorded (no {APPLY_RECORD}); "
            f"new outputs would mix with them: {fix}"
        )
    try:
        prev = json.loads(f.read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{f} is unreadable: {fix}") from None
    what = {
        "run": "the segmentation run",
        "models_sha256": "the run's fold models",
        "manifest_sha256": "the manifest",
        "cases": "the inputs (patients, images or masks)",
        "settings": "the settings (--nifti-slice-axis, --nifti-basal-end, --pixel-spacing, --labels, --no-overlays, "
        "--dicom-seg, --rv-insertion-deg, --engine, --no-second-look)",
    }
    differ = [w for k, w in what.items() if not isinstance(prev, dict) or prev.get(k) != record[k]]
    if differ:
        raise ConfigError(
            f"--out {out_dir} holds the outputs of another `lgenet segment apply` job ({'; '.join(differ)} "
            f"differ from its {APPLY_RECORD}); mixing them would leave stale masks beside new ones: {fix}"
        )
    log.info("%s holds this same apply job: redoing it (the outputs are rewritten)", out_dir)
