"""A quality score that predicts how wrong a predicted mask is (since 0.3.0).

Per patient, from the segmentation alone (no expert mask): how well the models' flipped predictions agree on
the myocardium (over the stack and on its worst slice), how confident the winning class is inside the LV, the
anatomical plausibility measures (:mod:`lgenet.segment.plausibility`: ring coverage, wall thickness, cavity size,
slice-to-slice jumps), the share of slices the localiser found the LV on and of slices with an LV at all, and how
many intensity-profile measures lie outside the training stacks' range. A ridge regression on these features
predicts the myocardium Dice (``quality_dice``) and the absolute LGE % error (``quality_lge_error_pp``); a mask
is flagged ``likely wrong`` when the predicted Dice is below :data:`FLAG_BELOW` (fixed in advance, halfway between
the issue's 0.6 "wrong" and 0.75 "good"), and is not measured at all (status ``likely not the LV``) when it is below
:data:`REFUSE_BELOW` (0.5, the line between a heart found and a heart missed).

The regression is fitted by :func:`lgenet.segment.quality_fit.fit_run_quality` on a segmentation run's own
out-of-fold patients: each fold model segments its held-out patients as they are and under the other-centre
proxies of :mod:`lgenet.data.centre_shift`, so the score has seen masks that fail. Its reported accuracy is
cross-fitted by patient fold (the score for a fold's patients comes from a regression fitted on the other folds'
rows), never on the rows it predicts. It is stored as plain numbers (``quality.json``), not a pickle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "FEATURES",
    "FLAG_BELOW",
    "LIKELY_WRONG",
    "REFUSE_BELOW",
    "LIKELY_NOT_LV",
    "QUALITY_FILE",
    "fit_quality",
    "flag_line",
    "predict_quality",
    "quality_features",
    "slice_agreement_text",
]

#: the fitted score in a segmentation run's folder
QUALITY_FILE = "quality.json"
#: a mask whose predicted myocardium Dice is below this is flagged (fixed before any fit)
FLAG_BELOW = 0.675
#: the flag's text in ``segmentation.csv``
LIKELY_WRONG = "likely wrong"
#: a mask whose predicted myocardium Dice is below this is not measured (status :data:`LIKELY_NOT_LV`): the issue's
#: own line between a heart found and a heart missed (Dice 0.5); recorded in quality.json since 0.3.0, and a score
#: fitted before (no ``refuse_below``) refuses nothing
REFUSE_BELOW = 0.5
#: the status of a mask refused for its predicted Dice
LIKELY_NOT_LV = "likely not the LV"
#: the score's inputs, in the order its coefficients are stored
FEATURES = (
    "disagreement",
    "disagreement_worst_slice",
    "unconfidence",
    "ring_gap",
    "wall_off",
    "cavity_off",
    "centre_jump",
    "not_localised",
    "slices_without_lv",
    "implausible",
    "profile_outside",
    "lge_excess",
)
#: the enhanced share of the myocardium above which a mask's burden counts against it (``lge_excess``): above every
#: EMIDEC patient's expert share but one (at most 51.6 %), where rings drawn on a bright vessel read as 43-93 %
LGE_EXCESS_KNOT = 0.5
#: where between the predicted normal wall's median intensity (0) and the cavity's (1) an enhanced pixel counts as
#: dim (``dim_enhanced``): the full width at half maximum's halfway point, with the blood pool as the maximum
DIM_HALFWAY = 0.5


def _nanmean(v) -> float:
    v = np.asarray(v, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def dim_enhanced(image: np.ndarray | None, classes: np.ndarray) -> float:
    """The share of the predicted myocardium that is predicted enhanced but dimmer than halfway
    (:data:`DIM_HALFWAY`) from the predicted normal wall's median intensity to the cavity's, over the stack: scar
    as the network calls it that does not look like scar. A normal wall left grey (a mis-set inversion time) is
    over-called this way. 0 without an image, an enhanced region, a normal wall or a cavity; 1 where the cavity is
    not brighter than the wall, with enhancement called."""
    c = np.asarray(classes)
    myo = int((c >= 2).sum())
    enh, normal, cavity = c == 3, c == 2, c == 1
    if image is None or myo == 0 or not enh.any() or normal.sum() < 8 or cavity.sum() < 8:
        return 0.0
    img = np.asarray(image, np.float64)
    w, blood = float(np.median(img[normal])), float(np.median(img[cavity]))
    if blood <= w:
        return float(enh.sum()) / myo
    return float((img[enh] < w + DIM_HALFWAY * (blood - w)).sum()) / myo


def quality_features(
    res, plausibility, *, profile_outside: int = 0, image: np.ndarray | None = None
) -> dict[str, float]:
    """The score's features of one segmented stack: ``res`` a :class:`~lgenet.models.seginfer.SegResult`,
    ``plausibility`` its :class:`~lgenet.segment.plausibility.Plausibility`, ``profile_outside`` the number of
    intensity-profile measures outside the training stacks' range (:func:`lgenet.data.shift.shift_warnings`),
    ``image`` the stack that was segmented (S, H, W) on the grid of ``res.classes`` (for ``dim_enhanced``)."""
    s = int(np.asarray(res.classes).shape[0])
    has_lv = (np.asarray(res.classes) >= 2).reshape(s, -1).any(1)
    agree = np.asarray(res.agreement if res.agreement is not None else np.full(s, np.nan), np.float64)
    on = agree[has_lv & np.isfinite(agree)]
    conf = np.asarray(res.confidence if res.confidence is not None else np.full(s, np.nan), np.float64)
    p = plausibility
    c = np.asarray(res.classes)
    myo_px = int((c >= 2).sum())
    share = float((c == 3).sum()) / myo_px if myo_px else 0.0
    return {
        "disagreement": 1.0 - float(on.mean()) if on.size else 1.0,
        "disagreement_worst_slice": 1.0 - float(on.min()) if on.size else 1.0,
        "unconfidence": 1.0 - _nanmean(conf[has_lv]) if has_lv.any() else 1.0,
        "ring_gap": 1.0 - p.ring_coverage if math.isfinite(p.ring_coverage) else 1.0,
        # distances outside the middle of an LV's range, on a log scale (a wall of 8 mm, a cavity of 45 mm)
        "wall_off": abs(math.log(p.wall_mm / 8.0)) if math.isfinite(p.wall_mm) and p.wall_mm > 0 else 2.0,
        "cavity_off": abs(math.log(p.cavity_mm / 45.0)) if math.isfinite(p.cavity_mm) and p.cavity_mm > 0 else 2.0,
        "centre_jump": min(p.centre_jump_mm / 30.0, 3.0) if math.isfinite(p.centre_jump_mm) else 0.0,
        "not_localised": 1.0 - float(np.mean(res.localised)),
        "slices_without_lv": 1.0 - float(has_lv.mean()) if s else 1.0,
        "implausible": 0.0 if p.ok else 1.0,
        "profile_outside": float(profile_outside),
        # since 0.3.0 (docs/results/segmentation.md, "the burden as an input of the score"); a score fitted before
        # lists its own features and does not read it
        "lge_excess": max(0.0, share - LGE_EXCESS_KNOT),
        # computed since 0.3.0 for the bench (tried as an input and not adopted: docs/results/segmentation.md, "scar
        # that does not look like scar"); an input only of a score whose feature list names it
        "dim_enhanced": dim_enhanced(image, c),
    }


def slice_agreement_text(res) -> str:
    """The per-slice agreement (apex to base) as ``0.93;0.95;...`` (empty where a slice has no myocardium)."""
    if res.agreement is None:
        return ""
    return ";".join("" if not math.isfinite(float(v)) else f"{float(v):.2f}" for v in res.agreement)


def _matrix(rows: Sequence[Mapping], features: Sequence[str]) -> np.ndarray:
    return np.array([[float(r[f]) for f in features] for r in rows], np.float64)


def fit_quality(rows: Sequence[Mapping], *, alpha: float = 1.0, features: Sequence[str] = FEATURES) -> dict:
    """Ridge regressions of the myocardium Dice and of the absolute LGE % error on ``features`` (default
    :data:`FEATURES`; standardised on ``rows``); ``rows`` hold the features, ``dice_myo`` and ``lge_error_pp``.
    Returns the JSON-able model."""
    from sklearn.linear_model import Ridge

    x = _matrix(rows, features)
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0
    z = (x - mean) / scale
    model: dict = {
        "format": "lgenet-seg-quality/1",
        "features": list(features),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "flag_below": FLAG_BELOW,
        "refuse_below": REFUSE_BELOW,
        "n_rows": len(rows),
    }
    for target, clip in (("dice_myo", (0.0, 1.0)), ("lge_error_pp", (0.0, 100.0))):
        yv = np.array([float(r[target]) for r in rows], np.float64)
        ok = np.isfinite(yv)
        reg = Ridge(alpha=alpha).fit(z[ok], yv[ok])
        model[target] = {"coef": reg.coef_.tolist(), "intercept": float(reg.intercept_), "clip": list(clip)}
    return model


def flag_line(model: Mapping) -> float:
    """The predicted Dice below which a fitted score flags a mask (its stored ``flag_below``, else
    :data:`FLAG_BELOW`)."""
    return float(model.get("flag_below", FLAG_BELOW))


def predict_quality(model: Mapping, feats: Mapping[str, float]) -> dict[str, float]:
    """``{'quality_dice': ..., 'quality_lge_error_pp': ...}`` of one stack's features under a fitted model."""
    names = model["features"]
    x = np.array([float(feats[f]) for f in names], np.float64)
    z = (x - np.asarray(model["mean"])) / np.asarray(model["scale"])
    out = {}
    for target, key in (("dice_myo", "quality_dice"), ("lge_error_pp", "quality_lge_error_pp")):
        m = model[target]
        v = float(z @ np.asarray(m["coef"]) + m["intercept"])
        out[key] = float(np.clip(v, *m["clip"]))
    return out
