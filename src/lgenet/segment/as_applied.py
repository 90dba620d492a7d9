"""A segmentation run's out-of-fold figures as ``segment apply`` runs its models (since 0.3.0).

``segment train`` segments each held-out patient once (the first look; ``masks/``, ``seg_metrics.csv``).
``segment apply`` does more: a mask the quality score doubts gets a second look, with the frame scan
(:mod:`lgenet.segment.second_look`), and may be replaced. This module measures that on the run's own patients,
honestly: for a patient of fold k the score that doubts and arbitrates is fitted on the other folds' quality rows
only (``quality_rows.csv``, every condition the stored score is fitted on), and the model that looks again is fold
k's, which never saw the patient. Only the patients the first look doubts under that score are segmented again;
every other patient keeps the first look's row.

Written to :attr:`lgenet.runs.seg.SegRunDir.as_applied_dir`: ``seg_metrics.csv`` (every patient, the rows a
second look changed replaced), ``looks.csv`` (one row per doubted patient: what the first and the kept mask were
judged, whether it was replaced, what ``segment apply`` would report), ``masks/`` (the replaced masks) and
``record.json`` (written last: its presence marks the step done).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

from lgenet import __version__
from lgenet.runs.seg import SEG_METRIC_FIELDS, SegRunDir, load_segmenter
from lgenet.runs.tables import number, read_rows, write_rows
from lgenet.segment.quality import FEATURES, QUALITY_FILE, fit_quality
from lgenet.utils import atomic_write_text, sha256_file

__all__ = ["AS_APPLIED_RECORD", "LOOK_FIELDS", "as_applied", "as_applied_done", "fold_arbiters", "forget_as_applied"]

log = logging.getLogger("lgenet")

#: the file whose presence marks the step done
AS_APPLIED_RECORD = "record.json"
#: the columns of ``looks.csv``
LOOK_FIELDS = (
    "patient_id",
    "fold",
    "first_plausible",
    "first_quality_dice",
    "proposals_looked",
    "replaced",
    "kept_plausible",
    "kept_quality_dice",
    "status",
    "quality_flag",
    "dice_myo_first",
    "dice_myo_kept",
)


def as_applied_done(run_dir: str | Path) -> bool:
    """Whether the figures are measured, from the quality rows there are now (a refitted score makes them stale)."""
    rd = SegRunDir(run_dir)
    record = rd.read_json(rd.as_applied_dir / AS_APPLIED_RECORD)
    rows = rd.path / "quality_rows.csv"
    return bool(record) and rows.is_file() and record.get("quality_rows_sha256") == sha256_file(rows)


def forget_as_applied(run_dir: str | Path) -> None:
    """Remove the figures (they depend on the quality rows: a refitted score makes them stale)."""
    d = SegRunDir(run_dir).as_applied_dir
    if d.exists():
        shutil.rmtree(d)


def fold_arbiters(rows: list[dict]) -> dict[int, dict]:
    """``{fold k: the quality score fitted on the other folds' rows}`` (the conditions the stored score is fitted
    on), so that no patient's mask is judged by a score its own fold's rows helped fit."""
    from lgenet.segment.quality_fit import FIT_CONDITIONS

    fit = [r for r in rows if r["condition"] in FIT_CONDITIONS]
    return {k: fit_quality([r for r in fit if r["fold"] != k]) for k in sorted({r["fold"] for r in fit})}


def _numeric(rows: list[dict]) -> list[dict]:
    keys = (*FEATURES, "dice_myo", "lge_error_pp", "quality_dice", "plausible")
    return [{**r, "fold": int(r["fold"]), **{k: number(r[k]) for k in keys if k in r}} for r in rows]


def as_applied(run_dir: str | Path, *, progress: bool = True, scan: bool = True) -> dict:
    """Measure the run's out-of-fold patients as ``segment apply`` treats them (see the module docstring) and
    write the files; returns the record. ``scan``: the second look scans the frame (``segment apply``'s
    default, ``--no-frame-scan`` off)."""
    from tqdm.auto import tqdm

    from lgenet.data.manifest import load_manifest
    from lgenet.data.shift import shift_warnings
    from lgenet.evaluation.segmentation import dice
    from lgenet.segment.apply import SEGMENTED, judge_mask
    from lgenet.segment.cases import _stack_features, cases_of, read_case
    from lgenet.segment.fold import case_row, write_case_mask
    from lgenet.segment.second_look import doubtful, second_look

    rd = SegRunDir(run_dir)
    cfg = rd.load_config()
    rows_path = rd.path / "quality_rows.csv"
    if not (rd.path / QUALITY_FILE).is_file() or not rows_path.is_file():
        raise FileNotFoundError(f"{rd.path}: no quality score ({QUALITY_FILE}, quality_rows.csv); fit it first")
    folds = rd.read_folds("seg")
    qrows = _numeric(read_rows(rows_path))
    arbiter = fold_arbiters(qrows)
    first = {r["patient_id"]: r for r in read_rows(rd.metrics_csv)}
    doubted = sorted(
        r["patient_id"]
        for r in qrows
        if r["condition"] == "as acquired"
        and r["patient_id"] in first
        and doubtful(SimpleNamespace(ok=bool(r["plausible"])), r, arbiter[r["fold"]])
    )
    cases = {c.patient_id: c for c in cases_of(load_manifest(cfg.manifest, tasks=None), need_masks=True)}
    profile = rd.read_profile()
    out = rd.as_applied_dir
    forget_as_applied(rd.path)
    (out / "masks").mkdir(parents=True)
    models: dict = {}
    looks, changed, mismatched = [], {}, []
    for pid in tqdm(doubted, desc="second looks (out-of-fold)", unit="patient", disable=not progress):
        k, case = folds[pid], cases[pid]
        st = read_case(case, cfg)
        slice_mm = st.meta.get("slice_spacing") or st.meta.get("slice_thickness")
        outside = len(shift_warnings(profile, _stack_features(st))) if profile else 0
        if k not in models:
            models[k] = load_segmenter(rd.path, [k])
        seg, quality = models[k], arbiter[k]
        res = seg(st.image, st.spacing)
        d_first = number(first[pid]["dice_myo"])
        d0 = dice(res.classes >= 2, st.classes >= 2)
        if abs((d0 if math.isfinite(d0) else 0.0) - (d_first if math.isfinite(d_first) else 0.0)) > 1e-4:
            mismatched.append(pid)  # the fold model from disk did not reproduce its own first look
        look = second_look(seg, st.image, st.spacing, slice_mm, quality, profile_outside=outside, first=res, scan=scan)
        status, q, _ = judge_mask(
            look.result, st.spacing, slice_mm, quality, outside, image=st.image, judged=(look.verdict, look.quality)
        )
        row = first[pid]
        if look.chosen:
            row = case_row(case, st, look.result, cfg, k)
            write_case_mask(out / "masks", case, st, look.result.classes, cfg)
            changed[pid] = row
        looks.append(
            {
                "patient_id": pid,
                "fold": k,
                "first_plausible": int(look.first_verdict.ok),
                "first_quality_dice": look.first_quality["quality_dice"],
                "proposals_looked": look.looked,
                "replaced": int(bool(look.chosen)),
                "kept_plausible": int(look.verdict.ok),
                "kept_quality_dice": look.quality["quality_dice"],
                "status": status,
                "quality_flag": q.get("quality_flag", ""),
                "dice_myo_first": d_first,
                "dice_myo_kept": number(row["dice_myo"]),
            }
        )
    if mismatched:
        log.warning(
            "as applied: %d fold model(s) loaded from disk did not reproduce the first look's Dice (patients %s); "
            "the figures are those of the models on disk",
            len(mismatched),
            ", ".join(mismatched[:5]),
        )
    all_rows = [changed.get(pid, r) for pid, r in sorted(first.items())]
    write_rows(out / "seg_metrics.csv", all_rows, SEG_METRIC_FIELDS)
    write_rows(out / "looks.csv", looks, LOOK_FIELDS)
    record = {
        "lgenet": __version__,
        "scope": "out-of-fold, as `segment apply` runs the fold models: a doubted mask gets a second look"
        + (" with the frame scan" if scan else "")
        + "; the score that doubts and arbitrates is fitted without the patient's fold",
        "frame_scan": bool(scan),
        "patients": len(first),
        "doubted": len(doubted),
        "replaced": len(changed),
        "refused": sum(1 for r in looks if r["status"] != SEGMENTED),
        "flagged": sum(1 for r in looks if r["status"] == SEGMENTED and r["quality_flag"]),
        "first_look_not_reproduced": mismatched,
        "quality_rows_sha256": sha256_file(rows_path),
    }
    atomic_write_text(out / AS_APPLIED_RECORD, json.dumps(record, indent=1) + "\n")
    log.info(
        "as applied: %d of %d patients doubted, %d masks replaced by a second look, %d refused, %d flagged",
        record["doubted"],
        record["patients"],
        record["replaced"],
        record["refused"],
        record["flagged"],
    )
    return record
