"""How well a segmenter did on a labelled cohort it was applied to (``lgenet segment apply --manifest`` with masks).

Every patient whose manifest row has an expert mask counts. The summary says how many hearts were measured
and how many were refused (no LV found, or a mask that is not a plausible LV) -- a refused heart has no
number, so it is counted, never averaged -- and, on the measured ones: Dice of the myocardium, the LV cavity
and the enhancement (patients with expert enhancement) with bootstrap 95 % CIs; the LGE % agreement with the
expert masks (ICC(A,1) with its CI, Bland-Altman bias and limits of agreement); the AUC of the predicted
burden for expert LGE > the threshold, with its CI and n. Written as ``evaluation.json`` beside
``segmentation.csv``; :func:`format_evaluation` prints it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lgenet.conventions.thresholds import LGE_THRESHOLD
from lgenet.errors import LgenetError
from lgenet.runs.tables import number
from lgenet.utils import jsonable

__all__ = ["evaluate_apply", "format_evaluation"]


def _mean_ci(v: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> dict:
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": None, "lower": None, "upper": None, "n": 0}
    if v.size < 3:
        return {"mean": float(v.mean()), "lower": None, "upper": None, "n": int(v.size), "ci_note": "n < 3"}
    boots = rng.choice(v, size=(n_boot, v.size), replace=True).mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"mean": float(v.mean()), "lower": float(lo), "upper": float(hi), "n": int(v.size)}


def evaluate_apply(rows: Sequence[dict], *, lge_threshold: float = LGE_THRESHOLD, seed: int = 0) -> dict | None:
    """The evaluation of ``segment apply``'s rows that have an expert mask (None when no row has one)."""
    labelled = [r for r in rows if math.isfinite(number(r.get("lge_percent_expert")))]
    if not labelled:
        return None  # before the imports below: scipy.stats and scikit-learn cost an unlabelled apply 0.5 s
    from lgenet.evaluation.metrics import auc_ci
    from lgenet.evaluation.segmentation import agreement

    rng = np.random.default_rng(seed)
    measured = [r for r in labelled if r.get("status", "segmented") == "segmented"]
    refused = [r for r in labelled if r not in measured]
    col = lambda name, sel=measured: np.array([number(r.get(name)) for r in sel])  # noqa: E731
    ref, pred = col("lge_percent_expert"), col("lge_percent_pred")
    mi = ref > 0
    out: dict = {
        "n_labelled": len(labelled),
        "n_measured": len(measured),
        "n_refused": len(refused),
        "refused": {r["patient_id"]: r.get("status", "") for r in refused},
        "refused_dice_myo": [
            None if not math.isfinite(number(r.get("dice_myo"))) else round(number(r.get("dice_myo")), 3)
            for r in refused
        ],
        "dice_myo": _mean_ci(col("dice_myo"), rng),
        "dice_cavity": _mean_ci(col("dice_cavity"), rng),
        "dice_lge": {**_mean_ci(col("dice_lge")[mi], rng), "cases": "patients with expert enhancement"},
        "lge_threshold": lge_threshold,
    }
    out["hearts_found"] = int(np.sum(col("dice_myo") >= 0.5))
    ok = np.isfinite(ref) & np.isfinite(pred)
    out["agreement"] = agreement(pred[ok], ref[ok]) if ok.sum() >= 2 else {"note": "fewer than 2 measured patients"}
    y = (ref[ok] > lge_threshold).astype(int)
    try:
        a = auc_ci(y, pred[ok])
        out["auc_lge"] = {"auc": a.auc, "lower": a.lower, "upper": a.upper, "n": a.n, "n_pos": a.n_pos}
    except LgenetError as exc:
        out["auc_lge"] = {"error": str(exc)}
    out["quality"] = _quality_ranking(labelled)
    return jsonable(out)


def _quality_ranking(rows: Sequence[dict]) -> dict | None:
    """How the quality score ranked the labelled masks (measured or refused; since 0.3.0): the share of masks
    with Dice < 0.6 it flagged, of masks with Dice >= 0.75, and its rank correlation with the Dice."""
    from scipy.stats import spearmanr

    scored = [
        r for r in rows if math.isfinite(number(r.get("quality_dice"))) and math.isfinite(number(r.get("dice_myo")))
    ]
    if not scored:
        return None
    d = np.array([number(r["dice_myo"]) for r in scored])
    q = np.array([number(r["quality_dice"]) for r in scored])
    flagged = np.array([bool(r.get("quality_flag")) for r in scored])
    bad, good = d < 0.6, d >= 0.75
    rho = float(spearmanr(q, d).statistic) if len(scored) > 2 and np.ptp(q) > 0 and np.ptp(d) > 0 else None
    return {
        "n": len(scored),
        "n_dice_below_0.6": int(bad.sum()),
        "flagged_of_dice_below_0.6": float(flagged[bad].mean()) if bad.any() else None,
        "n_dice_at_least_0.75": int(good.sum()),
        "flagged_of_dice_at_least_0.75": float(flagged[good].mean()) if good.any() else None,
        "spearman_score_dice": rho,
        "mean_abs_error": float(np.abs(q - d).mean()),
    }


def format_evaluation(e: dict) -> str:
    """The evaluation in a few printed lines."""

    def ci(d: dict) -> str:
        if d.get("mean") is None:
            return "n/a"
        if d.get("lower") is None:
            return f"{d['mean']:.3f} (n={d['n']}; CI not estimable)"
        return f"{d['mean']:.3f} (95% CI {d['lower']:.3f}\u2013{d['upper']:.3f}), n={d['n']}"

    lines = [
        f"evaluation against the manifest's masks: {e['n_labelled']} labelled patients, {e['n_measured']} measured, "
        f"{e['n_refused']} refused (no LGE number)"
        + (": " + ", ".join(f"{p} ({s})" for p, s in e["refused"].items()) if e["refused"] else ""),
        f"  Dice myocardium        {ci(e['dice_myo'])}",
        f"  Dice LV cavity         {ci(e['dice_cavity'])}",
        f"  Dice enhancement (MI)  {ci(e['dice_lge'])}",
    ]

    def num(v, fmt: str) -> str:
        return "n/a" if v is None else format(v, fmt)

    a = e.get("agreement", {})
    if "icc" in a:
        icc = f"ICC {num(a['icc'], '.3f')}" + (
            f" ({a['icc_lower']:.3f}\u2013{a['icc_upper']:.3f})" if a.get("icc_lower") is not None else " (CI n/a)"
        )
        loa = f", LoA {a['loa_lower']:+.1f} to {a['loa_upper']:+.1f}" if a.get("loa_lower") is not None else ""
        lines.append(f"  LGE % vs expert        {icc}, bias {num(a.get('bias'), '+.2f')} pp{loa}")
    u = e.get("auc_lge", {})
    if u.get("auc") is not None:
        ci_u = f" (95% CI {u['lower']:.3f}\u2013{u['upper']:.3f})" if u.get("lower") is not None else ""
        lines.append(
            f"  AUC LGE > {e['lge_threshold']:g} %        {u['auc']:.3f}{ci_u}, n={u['n']} ({u['n_pos']} positive)"
        )
    qr = e.get("quality")
    if qr:

        def share(v) -> str:
            return "n/a" if v is None else f"{v:.0%}"

        rho = "n/a" if qr.get("spearman_score_dice") is None else f"{qr['spearman_score_dice']:.2f}"
        lines.append(
            f"  quality flag           {share(qr['flagged_of_dice_below_0.6'])} of {qr['n_dice_below_0.6']} masks "
            f"with Dice < 0.6 flagged, {share(qr['flagged_of_dice_at_least_0.75'])} of "
            f"{qr['n_dice_at_least_0.75']} with Dice >= 0.75; score vs Dice Spearman {rho}"
        )
    return "\n".join(lines)
