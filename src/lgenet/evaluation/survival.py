"""Time-to-event evaluation: Harrell's C-index, time-dependent AUC, Kaplan-Meier risk groups.

The estimators come from lifelines (``concordance_index``, ``KaplanMeierFitter``,
``multivariate_logrank_test``); this module adds bootstrap confidence intervals, the paired
bootstrap of a C-index difference and Uno's inverse-probability-of-censoring weighted
cumulative/dynamic AUC at a horizon.

Every function takes ``time`` (years, > 0), ``event`` (1 = event observed, 0 = censored) and a
``risk`` score where *higher means earlier event* (a Cox linear predictor, a probability).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lgenet.errors import ConfigError
from lgenet.evaluation.metrics import MetricsInputError

__all__ = ["c_index", "c_index_ci", "c_index_diff", "time_dependent_auc", "km_groups"]


def _arrays(time: Any, event: Any, *risks: Any) -> tuple[np.ndarray, ...]:
    t = np.asarray(time, float).ravel()
    e = np.asarray(event, float).ravel()
    out = [t, e]
    if t.size < 2:
        raise MetricsInputError(f"survival metrics need at least 2 patients, got {t.size}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise MetricsInputError("time: every follow-up time must be a finite number >= 0")
    if not set(np.unique(e)) <= {0.0, 1.0}:
        raise MetricsInputError("event: expected 1 (event) or 0 (censored) for every patient")
    if e.sum() < 1:
        raise MetricsInputError("event: no event observed; a C-index or a time-dependent AUC needs at least one")
    for i, r in enumerate(risks):
        r = np.asarray(r, float).ravel()
        if r.size != t.size:
            raise MetricsInputError(f"risk score {i + 1} has {r.size} values for {t.size} patients")
        if not np.all(np.isfinite(r)):
            raise MetricsInputError(f"risk score {i + 1} has missing or infinite values")
        out.append(r)
    return tuple(out)


def c_index(time: Any, event: Any, risk: Any) -> float:
    """Harrell's concordance index (higher ``risk`` = earlier event; ties in risk count 1/2)."""
    from lifelines.utils import concordance_index

    t, e, r = _arrays(time, event, risk)
    return float(concordance_index(t, -r, e))


def _boot_indices(n: int, n_bootstrap: int, seed: int, event: np.ndarray) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n_bootstrap:
        idx = rng.integers(0, n, n)
        if event[idx].sum() >= 1:
            out.append(idx)
    return out


def _pct_ci(samples: Sequence[float], confidence: float) -> tuple[float, float]:
    a = (1.0 - confidence) / 2.0
    s = np.asarray([v for v in samples if math.isfinite(v)], float)
    if s.size == 0:
        return math.nan, math.nan
    return float(np.quantile(s, a)), float(np.quantile(s, 1 - a))


_MATRIX_MAX = 3000  # patients up to which bootstrap C-indices use the pair matrices (n^2 floats)


def _pairs(t: np.ndarray, e: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Harrell's comparable pairs (i had the event strictly before j's time) and their concordance
    (1 if r_i > r_j, 1/2 if tied), as n x n matrices."""
    comp = ((t[:, None] < t[None, :]) & (e[:, None] == 1)).astype(float)
    conc = comp * ((r[:, None] > r[None, :]) + 0.5 * (r[:, None] == r[None, :]))
    return comp, conc


def _boot_c(t: np.ndarray, e: np.ndarray, r: np.ndarray, idx: list[np.ndarray]) -> list[float]:
    """C-index of each bootstrap sample: with the pair matrices, a sample with patient counts w has
    C = w'(conc)w / w'(comp)w (a patient drawn twice never pairs with itself: equal times)."""
    from lifelines.utils import concordance_index

    if t.size > _MATRIX_MAX:
        return [float(concordance_index(t[i], -r[i], e[i])) for i in idx]
    comp, conc = _pairs(t, e, r)
    out = []
    for i in idx:
        w = np.bincount(i, minlength=t.size).astype(float)
        den = w @ comp @ w
        out.append(float(w @ conc @ w / den) if den > 0 else math.nan)
    return out


def c_index_ci(
    time: Any, event: Any, risk: Any, *, n_bootstrap: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """C-index with a percentile bootstrap confidence interval (patients resampled with replacement)."""
    from lifelines.utils import concordance_index

    t, e, r = _arrays(time, event, risk)
    boots = _boot_c(t, e, r, _boot_indices(t.size, n_bootstrap, seed, e))
    lo, hi = _pct_ci(boots, confidence)
    return {
        "c_index": float(concordance_index(t, -r, e)),
        "lower": lo,
        "upper": hi,
        "n": int(t.size),
        "n_events": int(e.sum()),
        "confidence": confidence,
        "method": f"bootstrap percentile ({n_bootstrap})",
    }


def c_index_diff(
    time: Any, event: Any, risk_a: Any, risk_b: Any, *, n_bootstrap: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Paired bootstrap of C(a) - C(b) on the same patients: difference, CI and a two-sided p-value
    (twice the smaller share of bootstrap differences on either side of zero)."""
    from lifelines.utils import concordance_index

    t, e, a, b = _arrays(time, event, risk_a, risk_b)
    idx = _boot_indices(t.size, n_bootstrap, seed, e)
    d = np.asarray(_boot_c(t, e, a, idx)) - np.asarray(_boot_c(t, e, b, idx))
    d = d[np.isfinite(d)]
    lo, hi = _pct_ci(d, confidence)
    p = min(1.0, 2.0 * min((d <= 0).mean(), (d >= 0).mean()))
    return {
        "diff": float(concordance_index(t, -a, e) - concordance_index(t, -b, e)),
        "lower": lo,
        "upper": hi,
        "p": float(max(p, 1.0 / len(d))),
        "n": int(t.size),
        "n_events": int(e.sum()),
        "method": f"paired bootstrap ({n_bootstrap})",
    }


def _censoring_survival(t: np.ndarray, e: np.ndarray):
    """Kaplan-Meier estimate of the censoring distribution G(s) = P(C > s), as a step function of s.

    The product-limit formula in numpy (it runs once per bootstrap replicate; lifelines'
    ``KaplanMeierFitter`` on ``1 - event`` gives the same steps, tests/test_outcomes.py checks it).
    At tied times events precede censorings, as in lifelines.
    """
    grid = np.unique(t)
    cens = 1 - e
    at_risk = (
        np.array([(t >= g).sum() for g in grid], float)
        if grid.size < 64
        else t.size - np.searchsorted(np.sort(t), grid, side="left")
    )
    d = np.bincount(np.searchsorted(grid, t[cens == 1]), minlength=grid.size).astype(float)
    vals = np.cumprod(1.0 - d / np.maximum(at_risk, 1.0))

    def G(s: np.ndarray) -> np.ndarray:
        i = np.searchsorted(grid, np.asarray(s, float), side="right") - 1
        return np.where(i >= 0, vals[np.clip(i, 0, None)], 1.0)

    return G


def _td_auc(t: np.ndarray, e: np.ndarray, r: np.ndarray, horizon: float) -> float:
    G = _censoring_survival(t, e)
    case = (t <= horizon) & (e == 1)
    ctrl = t > horizon
    if not case.any() or not ctrl.any():
        return math.nan
    # weight 1/G(T_i-) for cases; controls share the weight 1/G(horizon), which cancels
    g = G(np.nextafter(t[case], -np.inf))
    w = 1.0 / np.maximum(g, 1e-12)
    rc, rn = r[case][:, None], r[ctrl][None, :]
    conc = (rc > rn) + 0.5 * (rc == rn)
    return float((w[:, None] * conc).sum() / (w.sum() * ctrl.sum()))


def time_dependent_auc(
    time: Any,
    event: Any,
    risk: Any,
    horizon: float,
    *,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Cumulative/dynamic AUC at ``horizon`` (Uno et al. 2007, IPCW), with a bootstrap CI.

    Cases have their event by ``horizon``; controls are still event-free after it. Cases are
    weighted by the inverse Kaplan-Meier probability of remaining uncensored, so censoring before
    the horizon does not bias the estimate (under independent censoring).
    """
    if not (isinstance(horizon, (int, float)) and math.isfinite(horizon) and horizon > 0):
        raise ConfigError(f"time_dependent_auc: horizon must be a number of years > 0, got {horizon!r}")
    t, e, r = _arrays(time, event, risk)
    n_cases = int(((t <= horizon) & (e == 1)).sum())
    n_ctrl = int((t > horizon).sum())
    if n_cases == 0 or n_ctrl == 0:
        raise MetricsInputError(
            f"time_dependent_auc: at horizon {horizon:g} years there are {n_cases} cases "
            f"(events by then) and {n_ctrl} controls (event-free after it); both are needed. "
            "Choose a horizon inside the follow-up"
        )
    boots = [_td_auc(t[i], e[i], r[i], horizon) for i in _boot_indices(t.size, n_bootstrap, seed, e)]
    lo, hi = _pct_ci(boots, confidence)
    return {
        "auc": _td_auc(t, e, r, horizon),
        "lower": lo,
        "upper": hi,
        "horizon": float(horizon),
        "n_cases": n_cases,
        "n_controls": n_ctrl,
        "n": int(t.size),
        "confidence": confidence,
        "method": f"Uno IPCW cumulative/dynamic; bootstrap percentile ({n_bootstrap})",
    }


def km_groups(
    time: Any, event: Any, risk: Any, *, groups: str | float = "tertiles", cuts: Sequence[float] | None = None
) -> dict[str, Any]:
    """Kaplan-Meier curves of risk groups and the log-rank test across them.

    Args:
        groups: ``"tertiles"`` (cut at the risk score's 33rd and 67th percentiles), ``"median"``, or a
            number: a single threshold on ``risk`` (e.g. a probability of 0.2).
        cuts: explicit cut points (overrides ``groups``); pass the cuts of a training set to keep
            the grouping fixed in advance.

    Returns a dict with ``cuts``, ``groups`` (one per group: ``name``, ``n``, ``events``, ``timeline``,
    ``survival``, ``lower``, ``upper``), ``logrank_p`` and ``logrank_statistic``.
    """
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test

    t, e, r = _arrays(time, event, risk)
    if cuts is None:
        if groups == "tertiles":
            cuts = list(np.quantile(r, [1 / 3, 2 / 3]))
            names = ["low", "intermediate", "high"]
        elif groups == "median":
            cuts = [float(np.median(r))]
            names = ["low", "high"]
        elif isinstance(groups, (int, float)) and not isinstance(groups, bool):
            cuts = [float(groups)]
            names = [f"< {groups:g}", f">= {groups:g}"]
        else:
            raise ConfigError(f"km_groups: groups must be 'tertiles', 'median' or a number, got {groups!r}")
    else:
        cuts = sorted(float(c) for c in cuts)
        names = (
            ["low", "high"]
            if len(cuts) == 1
            else (
                ["low", "intermediate", "high"] if len(cuts) == 2 else [f"group {i + 1}" for i in range(len(cuts) + 1)]
            )
        )
    g = np.searchsorted(np.asarray(cuts, float), r, side="right")
    out_groups = []
    for k, name in enumerate(names):
        m = g == k
        if not m.any():
            out_groups.append(
                {"name": name, "n": 0, "events": 0, "timeline": [], "survival": [], "lower": [], "upper": []}
            )
            continue
        km = KaplanMeierFitter().fit(t[m], event_observed=e[m])
        ci = km.confidence_interval_survival_function_
        out_groups.append(
            {
                "name": name,
                "n": int(m.sum()),
                "events": int(e[m].sum()),
                "timeline": km.survival_function_.index.to_list(),
                "survival": km.survival_function_.iloc[:, 0].to_list(),
                "lower": ci.iloc[:, 0].to_list(),
                "upper": ci.iloc[:, 1].to_list(),
            }
        )
    present = np.unique(g)
    if present.size >= 2:
        lr = multivariate_logrank_test(t, g, e)
        p, stat = float(lr.p_value), float(lr.test_statistic)
    else:
        p, stat = math.nan, math.nan
    return {
        "cuts": [float(c) for c in cuts],
        "groups": out_groups,
        "logrank_p": p,
        "logrank_statistic": stat,
        "n": int(t.size),
    }
