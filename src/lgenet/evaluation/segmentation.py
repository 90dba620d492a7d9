"""Segmentation metrics and LGE-burden agreement.

* :func:`dice` -- Dice of two binary masks over a whole stack (NaN when both are empty);
* :func:`class_measures` -- from a class map (0 background, 1 LV cavity, 2 normal myocardium,
  3 enhanced): myocardial and enhanced pixel counts, LGE % whole LV, basal and per slice, and
  volumes/mass when the voxel size is known;
* :func:`agreement` -- predicted vs reference burden: Pearson r, ICC(A,1) (two-way, absolute
  agreement, single measures; McGraw & Wong 1996) with its 95 % CI, Bland-Altman bias and limits of
  agreement;
* :func:`plot_agreement` -- scatter + Bland-Altman figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "dice",
    "class_measures",
    "icc_a1",
    "agreement",
    "agreement_text",
    "plot_agreement",
    "AGREEMENT_MIN_N_CI",
    "MYO_DENSITY_G_PER_ML",
]

MYO_DENSITY_G_PER_ML = 1.05


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    s = int(a.sum()) + int(b.sum())
    return float("nan") if s == 0 else 2.0 * int((a & b).sum()) / s


def class_measures(
    classes: np.ndarray, spacing: tuple[float, float] | None = None, slice_mm: float | None = None
) -> dict:
    """Burden and size measures of one stack's class map (S, H, W), apex -> base."""
    c = np.asarray(classes)
    myo = c >= 2
    enh = c == 3
    per_myo = myo.reshape(c.shape[0], -1).sum(1)
    per_enh = enh.reshape(c.shape[0], -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_slice = np.where(per_myo > 0, 100.0 * per_enh / np.maximum(per_myo, 1), np.nan)
    basal = next((k for k in range(c.shape[0] - 1, -1, -1) if per_myo[k] > 0), None)
    out = {
        "myo_px": int(per_myo.sum()),
        "enh_px": int(per_enh.sum()),
        "cavity_px": int((c == 1).sum()),
        "lge_percent": float(100.0 * per_enh.sum() / per_myo.sum()) if per_myo.sum() else float("nan"),
        "lge_percent_basal": float(per_slice[basal]) if basal is not None else float("nan"),
        "lge_percent_per_slice": [None if not math.isfinite(v) else round(float(v), 3) for v in per_slice],
        "slices_with_enhancement": int((per_enh > 0).sum()),
    }
    out.update(sector_measures(c, spacing))
    if spacing is not None and slice_mm:
        voxel_ml = float(spacing[0]) * float(spacing[1]) * float(slice_mm) / 1000.0
        out.update(
            {
                "myo_ml": out["myo_px"] * voxel_ml,
                "enh_ml": out["enh_px"] * voxel_ml,
                "myo_mass_g": out["myo_px"] * voxel_ml * MYO_DENSITY_G_PER_ML,
                "enh_mass_g": out["enh_px"] * voxel_ml * MYO_DENSITY_G_PER_ML,
                "cavity_ml": out["cavity_px"] * voxel_ml,
            }
        )
    return out


#: a sector counts as enhanced when at least this share of its myocardium is enhanced (fixed in advance,
#: so that a stray pixel does not count); sectors are 60-degree chords of each slice
SECTOR_MIN_FRACTION = 0.05
N_SECTORS = 6
N_RAYS = 60


def sector_measures(classes: np.ndarray, spacing: tuple[float, float] | None = None) -> dict:
    """Regional extent of enhancement of a class map (S, H, W): ``lge_sectors`` (number of
    60-degree sectors, over all slices, with >= 5 % of their myocardium enhanced),
    ``transmurality_max`` and ``transmurality_mean`` (%; the enhanced share of the wall along
    6-degree rays from the LV centre, the maximum over all rays and the mean over the rays that show
    enhancement; 0 without enhancement).

    Sectors are counted from the image's own angle (the RV insertion points are not segmented), so
    they are *not* the AHA segments: the count measures extent, not location.
    """
    c = np.asarray(classes)
    sy, sx = (float(spacing[0]), float(spacing[1])) if spacing is not None else (1.0, 1.0)
    n_sec, t_all = 0, []
    for k in range(c.shape[0]):
        myo = c[k] >= 2
        if myo.sum() < 10:
            continue
        enh = c[k] == 3
        ref = c[k] == 1 if (c[k] == 1).sum() >= 5 else myo
        yy, xx = np.nonzero(myo)
        cy, cx = np.nonzero(ref)
        ang = np.arctan2((yy - cy.mean()) * sy, (xx - cx.mean()) * sx)
        e = enh[yy, xx]
        sec = ((ang + np.pi) / (2 * np.pi) * N_SECTORS).astype(int) % N_SECTORS
        for j in range(N_SECTORS):
            m = sec == j
            if m.sum() and e[m].mean() >= SECTOR_MIN_FRACTION:
                n_sec += 1
        if not e.any():
            continue
        ray = ((ang + np.pi) / (2 * np.pi) * N_RAYS).astype(int) % N_RAYS
        tot = np.bincount(ray, minlength=N_RAYS)
        hit = np.bincount(ray, weights=e.astype(float), minlength=N_RAYS)
        ok = (tot > 0) & (hit > 0)
        t_all.extend((100.0 * hit[ok] / tot[ok]).tolist())
    return {
        "lge_sectors": int(n_sec),
        "transmurality_max": float(max(t_all)) if t_all else 0.0,
        "transmurality_mean": float(np.mean(t_all)) if t_all else 0.0,
    }


def icc_a1(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """ICC(A,1) of two raters (two-way random effects, absolute agreement, single measures) and its CI."""
    data = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    data = data[np.all(np.isfinite(data), axis=1)]
    n, k = data.shape
    if n < 3:
        return float("nan"), float("nan"), float("nan")
    grand = data.mean()
    ssr = k * ((data.mean(1) - grand) ** 2).sum()
    ssc = n * ((data.mean(0) - grand) ** 2).sum()
    sst = ((data - grand) ** 2).sum()
    sse = sst - ssr - ssc
    msr, msc, mse = ssr / (n - 1), ssc / (k - 1), sse / ((n - 1) * (k - 1))
    icc = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    # McGraw & Wong (1996) CI for ICC(A,1)
    a = k * icc / (n * (1 - icc)) if icc < 1 else float("inf")
    b = 1 + k * icc * (n - 1) / (n * (1 - icc)) if icc < 1 else float("inf")
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1))) if icc < 1 else 1
    alpha = 1 - confidence
    from scipy import stats

    fs = stats.f.ppf(1 - alpha / 2, n - 1, v)
    fi = stats.f.ppf(1 - alpha / 2, v, n - 1)
    lo = n * (msr - fs * mse) / (fs * (k * msc + (k * n - k - n) * mse) + n * msr)
    hi = n * (fi * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fi * msr)
    return float(icc), float(lo), float(hi)


#: fewer patients than this: the ICC's CI and the limits of agreement are not estimated (``None``, with a
#: ``ci_note``): with 3 patients the F-based CI of ICC(A,1) reaches below -1 (e.g. -2.53 to 0.98)
AGREEMENT_MIN_N_CI = 10


def agreement_text(a: dict, *, digits: int = 3) -> tuple[str, str]:
    """``('ICC (lo-hi)', 'bias (loa to loa)')`` of an :func:`agreement` for tables, or the reason the
    interval is not estimable in its place."""
    icc = f"{a['icc']:.{digits}f}"
    bias = f"{a['bias']:+.2f} pp"
    if a.get("icc_lower") is None or a.get("loa_lower") is None:
        note = a.get("ci_note") or "CI not estimable"
        return f"{icc} ({note})", f"{bias} (limits of agreement not estimable, n = {a.get('n')})"
    return (
        f"{icc} ({a['icc_lower']:.{digits}f}\u2013{a['icc_upper']:.{digits}f})",
        f"{bias} ({a['loa_lower']:+.1f} to {a['loa_upper']:+.1f})",
    )


def agreement(pred: Sequence[float], ref: Sequence[float], confidence: float = 0.95) -> dict:
    """Agreement of a predicted measure with the reference: n, r, ICC(A,1) with CI, Bland-Altman.

    Since 0.2.0, with fewer than :data:`AGREEMENT_MIN_N_CI` patients (or an ICC interval outside [-1, 1] or not
    finite) ``icc_lower``/``icc_upper`` and ``loa_lower``/``loa_upper`` are ``None`` and ``ci_note`` says why."""
    p, r = np.asarray(pred, float), np.asarray(ref, float)
    ok = np.isfinite(p) & np.isfinite(r)
    p, r = p[ok], r[ok]
    d = p - r
    out = {"n": int(ok.sum())}
    if out["n"] < 3:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):  # constant burdens (every prediction 0 %): r and ICC NaN
        icc, lo, hi = icc_a1(p, r, confidence)
        pearson = float(np.corrcoef(p, r)[0, 1]) if np.ptp(p) > 0 and np.ptp(r) > 0 else float("nan")
    sd = float(d.std(ddof=1))
    out.update(
        {
            "pearson_r": pearson,
            "icc": icc,
            "icc_lower": lo,
            "icc_upper": hi,
            "bias": float(d.mean()),
            "loa_lower": float(d.mean() - 1.96 * sd),
            "loa_upper": float(d.mean() + 1.96 * sd),
            "mae": float(np.abs(d).mean()),
        }
    )
    n = out["n"]
    if n < AGREEMENT_MIN_N_CI or not (math.isfinite(lo) and math.isfinite(hi)) or lo < -1.0 or hi > 1.0:
        why = f"fewer than {AGREEMENT_MIN_N_CI} patients" if n < AGREEMENT_MIN_N_CI else "the interval leaves [-1, 1]"
        out.update({"icc_lower": None, "icc_upper": None})
        out["ci_note"] = f"CI not estimable with n = {n}: {why}"
        if n < AGREEMENT_MIN_N_CI:
            out.update({"loa_lower": None, "loa_upper": None})
    return out


def plot_agreement(
    pred: Sequence[float],
    ref: Sequence[float],
    *,
    path: str | Path,
    what: str = "LGE (% of LV myocardium)",
    title: str = "",
    labels: Sequence[int] | None = None,
) -> Path:
    """Scatter (with identity line) and Bland-Altman plot side by side."""
    from lgenet.evaluation.canvas import _new_figure, save_figure

    p, r = np.asarray(pred, float), np.asarray(ref, float)
    ok = np.isfinite(p) & np.isfinite(r)
    p, r = p[ok], r[ok]
    ag = agreement(p, r)
    fig = _new_figure(10, 4.4)
    ax1, ax2 = fig.subplots(1, 2)
    colours = None if labels is None else np.where(np.asarray(labels)[ok] == 1, "#c0392b", "#2c7fb8")
    ax1.scatter(r, p, s=18, c=colours if colours is not None else "#2c7fb8", alpha=0.8, edgecolors="none")
    hi = max(1.0, float(np.nanmax(np.r_[p, r])) * 1.05) if p.size else 1.0
    ax1.plot([0, hi], [0, hi], color="grey", lw=1, ls="--")
    ax1.set_xlim(0, hi)
    ax1.set_ylim(0, hi)
    ax1.set_xlabel(f"expert {what}")
    ax1.set_ylabel(f"predicted {what}")
    if "icc" in ag:
        ax1.set_title(f"r = {ag['pearson_r']:.2f}, ICC = {agreement_text(ag, digits=2)[0]}, n = {ag['n']}", fontsize=9)
    m = (p + r) / 2
    d = p - r
    ax2.scatter(m, d, s=18, c=colours if colours is not None else "#2c7fb8", alpha=0.8, edgecolors="none")
    if "bias" in ag:
        for v, ls in ((ag["bias"], "-"), (ag["loa_lower"], "--"), (ag["loa_upper"], "--")):
            if v is not None:
                ax2.axhline(v, color="grey", lw=1, ls=ls)
        ax2.set_title(f"bias {agreement_text(ag)[1].replace(' pp', '')}", fontsize=9)
    ax2.set_xlabel(f"mean of expert and predicted {what}")
    ax2.set_ylabel("predicted \u2212 expert")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
