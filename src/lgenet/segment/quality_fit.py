"""Fitting a segmentation run's quality score (:mod:`lgenet.segment.quality`) on its own out-of-fold patients.

Each fold model segments the patients it did not train on, as acquired and under the other-centre proxies of
:mod:`lgenet.data.centre_shift` (:data:`FIT_CONDITIONS`, one seeded draw per patient and proxy), and every such
mask gives one row: its features, its myocardium Dice and its LGE % error against the expert mask moved the same
way. The regression the run keeps (``quality.json``) is fitted on all rows; the accuracy written beside it is
cross-fitted: the rows of fold k are scored by a regression fitted on the other folds' rows only.
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from lgenet.runs.seg import SegRunDir, load_segmenter
from lgenet.runs.tables import write_rows
from lgenet.segment.quality import FEATURES, FLAG_BELOW, QUALITY_FILE, fit_quality, predict_quality, quality_features
from lgenet.utils import atomic_write_text

__all__ = ["FIT_CONDITIONS", "condition_rng", "quality_rows", "cross_fitted", "flag_rates", "fit_run_quality"]

log = logging.getLogger("lgenet")

#: the proxies the stored score is fitted on ("as acquired" is the stack itself)
FIT_CONDITIONS = ("as acquired", "whole-thorax canvas", "2-6 thick slices", "another centre (all)")

Transform = Callable[..., tuple]


def _conditions(names: Sequence[str], extra: Mapping[str, Transform] | None) -> dict[str, Transform | None]:
    from lgenet.data.centre_shift import CENTRE_SHIFTS

    table: dict[str, Transform | None] = {"as acquired": None, **CENTRE_SHIFTS, **(extra or {})}
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown quality condition(s) {unknown}; known: {sorted(table)}")
    return {n: table[n] for n in names}


def condition_rng(patient_id: str, condition: str, draw: int = 0) -> np.random.Generator:
    """The seeded generator of one patient's proxy under one condition: draw 0 is the one every score and bench
    has used; draw k > 0 another, independent set of canvases, slices and artefacts for the same patients."""
    key = f"{patient_id}|{condition}" if not draw else f"{patient_id}|{condition}|draw{int(draw)}"
    return np.random.default_rng(zlib.crc32(key.encode()))


def quality_rows(
    run_dir: str | Path,
    *,
    conditions: Sequence[str] = FIT_CONDITIONS,
    extra: Mapping[str, Transform] | None = None,
    progress: bool = True,
    limit: int | None = None,
    draw: int = 0,
) -> list[dict]:
    """One row per out-of-fold patient and condition: features, Dice, LGE % (predicted and expert) and error;
    ``draw``: which seeded draw of the proxies (:func:`condition_rng`)."""
    from tqdm.auto import tqdm

    from lgenet.data.manifest import load_manifest
    from lgenet.data.shift import frame_features, shift_warnings
    from lgenet.evaluation.segmentation import class_measures, dice
    from lgenet.segment.cases import cases_of, read_case
    from lgenet.segment.plausibility import check_plausibility

    rd = SegRunDir(run_dir)
    cfg = rd.load_config()
    folds = rd.read_folds("seg")
    profile = rd.read_profile()
    table = _conditions(conditions, extra)
    cases = [c for c in cases_of(load_manifest(cfg.manifest, tasks=None), need_masks=True) if c.patient_id in folds]
    if limit:
        cases = cases[:limit]
    models = {k: load_segmenter(rd.path, [k]) for k in sorted({folds[c.patient_id] for c in cases})}
    rows = []
    bar = tqdm(total=len(cases) * len(table), desc="quality rows", unit="mask", disable=not progress)
    for c in cases:
        st = read_case(c, cfg)
        slice_mm = float(st.meta.get("slice_spacing") or st.meta.get("slice_thickness") or 10.0)
        for name, f in table.items():
            img, cls, sp, smm = st.image.astype(np.float32), st.classes, st.spacing, slice_mm
            if f is not None:
                rng = condition_rng(c.patient_id, name, draw)
                img, cls, sp, smm = f(img, cls, sp, smm, rng)
            res = models[folds[c.patient_id]](img, sp)
            verdict = check_plausibility(res.classes, sp, smm)
            # the profile of the basal frame, as segment apply reads it (lgenet.segment.cases._stack_features)
            outside = len(shift_warnings(profile, frame_features(img[-1], {"pixel_spacing": sp}))) if profile else 0
            mp, me = class_measures(res.classes), class_measures(cls)
            row = {
                "patient_id": c.patient_id,
                "fold": folds[c.patient_id],
                "condition": name,
                "n_slices": int(img.shape[0]),
                **quality_features(res, verdict, profile_outside=outside, image=img),
                "dice_myo": dice(res.classes >= 2, cls >= 2),
                "lge_percent_pred": mp["lge_percent"],
                "lge_percent_expert": me["lge_percent"],
                "plausible": int(verdict.ok),
            }
            err = row["lge_percent_pred"] - row["lge_percent_expert"]
            row["lge_error_pp"] = abs(err) if math.isfinite(err) else float("nan")
            if not math.isfinite(row["dice_myo"]):
                row["dice_myo"] = 0.0  # the expert mask lost its myocardium under the proxy: nothing to hit
            rows.append(row)
            bar.update(1)
    bar.close()
    return rows


def cross_fitted(
    rows: Sequence[dict], *, fit_conditions: Sequence[str] = FIT_CONDITIONS, features: Sequence[str] | None = None
) -> list[dict]:
    """``rows`` with ``quality_dice`` / ``quality_lge_error_pp`` from a regression fitted on the *other* folds'
    rows whose condition is in ``fit_conditions`` (every condition of the row's fold is scored); ``features``:
    the score's inputs (default :data:`~lgenet.segment.quality.FEATURES`), e.g. to compare two sets."""
    out = []
    for k in sorted({r["fold"] for r in rows}):
        train = [r for r in rows if r["fold"] != k and r["condition"] in fit_conditions]
        model = fit_quality(train) if features is None else fit_quality(train, features=features)
        for r in rows:
            if r["fold"] == k:
                out.append({**r, **predict_quality(model, r)})
    return out


def flag_rates(rows: Sequence[Mapping], *, key: str = "quality_dice") -> dict:
    """How the flag (``key`` < :data:`FLAG_BELOW`) separates masks: the share of Dice < 0.6 masks flagged,
    of Dice >= 0.75 masks flagged, the rank correlation of the score with the Dice, and the counts."""
    from scipy.stats import spearmanr

    d = np.array([float(r["dice_myo"]) for r in rows])
    q = np.array([float(r[key]) for r in rows])
    flagged = q < FLAG_BELOW
    bad, good = d < 0.6, d >= 0.75
    rho = spearmanr(q, d).statistic if len(rows) > 2 and np.ptp(q) > 0 else float("nan")
    return {
        "n": int(len(rows)),
        "n_bad": int(bad.sum()),
        "n_good": int(good.sum()),
        "bad_flagged": float(flagged[bad].mean()) if bad.any() else None,
        "good_flagged": float(flagged[good].mean()) if good.any() else None,
        "spearman": float(rho),
        "mean_abs_error": float(np.mean(np.abs(q - d))) if len(rows) else None,
    }


def fit_run_quality(run_dir: str | Path, *, progress: bool = True, rows: Sequence[dict] | None = None) -> dict:
    """Fit and store a finished segmentation run's quality score (``quality.json``, ``quality_rows.csv``).

    ``rows``: already computed :func:`quality_rows` (those of :data:`FIT_CONDITIONS` are used)."""
    from lgenet import __version__

    rd = SegRunDir(run_dir)
    if rows is None:
        rows = quality_rows(rd.path, progress=progress)
    rows = [r for r in rows if r["condition"] in FIT_CONDITIONS]
    model = fit_quality(rows)
    scored = cross_fitted(rows)
    model["fitted_on"] = {
        "conditions": list(FIT_CONDITIONS),
        "patients": len({r["patient_id"] for r in rows}),
        "rows": len(rows),
        "lgenet": __version__,
    }
    model["cross_fitted"] = {
        "all": flag_rates(scored),
        **{c: flag_rates([r for r in scored if r["condition"] == c]) for c in FIT_CONDITIONS},
    }
    fields = ["patient_id", "fold", "condition", "n_slices", *FEATURES, "dice_myo", "lge_percent_pred"]
    fields += ["lge_percent_expert", "lge_error_pp", "plausible", "quality_dice", "quality_lge_error_pp"]
    write_rows(rd.path / "quality_rows.csv", scored, fields)
    atomic_write_text(rd.path / QUALITY_FILE, json.dumps(model, indent=1) + "\n")
    a = model["cross_fitted"]["all"]
    log.info(
        "quality score fitted on %d masks of %d patients; cross-fitted: %s of the masks with Dice < 0.6 flagged, "
        "%s of those with Dice >= 0.75, Spearman %.2f",
        len(rows),
        model["fitted_on"]["patients"],
        "n/a" if a["bad_flagged"] is None else f"{a['bad_flagged']:.0%}",
        "n/a" if a["good_flagged"] is None else f"{a['good_flagged']:.0%}",
        a["spearman"],
    )
    return model
