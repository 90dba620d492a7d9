"""How clinicians judge a risk model beyond its AUC: calibration, decision curves, reclassification,
and the cohort's Table 1.

* :func:`calibration_stats` -- calibration slope and calibration-in-the-large (logistic
  recalibration of the predicted log-odds), Brier score, observed/expected ratio, each with a
  bootstrap CI, and the reliability-curve points.
* :func:`decision_curve` -- net benefit of treating by the model vs treat-all / treat-none over a
  range of threshold probabilities (Vickers & Elkin 2006).
* :func:`continuous_nri` -- category-free net reclassification improvement of a new model over an
  old one, with a bootstrap CI.
* :func:`table_one` -- every covariate by outcome group: median [IQR] and Mann-Whitney U for
  continuous columns, n (%) and Fisher's exact test for 0/1 columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lgenet.errors import ConfigError
from lgenet.evaluation.metrics import MetricsInputError, calibration

__all__ = ["calibration_stats", "decision_curve", "continuous_nri", "table_one", "logit"]

_EPS = 1e-6


def logit(p: Any) -> np.ndarray:
    p = np.clip(np.asarray(p, float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _yp(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, float).ravel()
    p = np.asarray(p, float).ravel()
    if y.size != p.size:
        raise MetricsInputError(f"{y.size} labels but {p.size} predicted probabilities")
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise MetricsInputError("labels must be 0 or 1")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise MetricsInputError("predicted probabilities must lie in [0, 1] with no missing value")
    if y.min() == y.max():
        raise MetricsInputError("calibration needs both outcomes (0 and 1) among the patients")
    return y, p


def _newton_logistic(y: np.ndarray, lp: np.ndarray, *, fit_slope: bool) -> tuple[float, float]:
    """Maximum-likelihood (intercept, slope) of logit P(y=1) = a + b * lp (``fit_slope=False``: b fixed
    at 1, i.e. ``lp`` as an offset). Newton-Raphson with step halving; NaN when it diverges
    (separation)."""
    X = np.column_stack([np.ones_like(lp), lp]) if fit_slope else np.ones((lp.size, 1))
    off = np.zeros_like(lp) if fit_slope else lp
    beta = np.zeros(X.shape[1])

    def nll(b: np.ndarray) -> float:
        z = X @ b + off
        return float(np.sum(np.logaddexp(0.0, z) - y * z))

    cur = nll(beta)
    for _ in range(100):
        mu = 1.0 / (1.0 + np.exp(-(X @ beta + off)))
        grad = X.T @ (y - mu)
        hess = (X * (mu * (1 - mu))[:, None]).T @ X
        try:
            step = np.linalg.solve(hess + 1e-12 * np.eye(X.shape[1]), grad)
        except np.linalg.LinAlgError:
            return math.nan, math.nan
        t = 1.0
        while t > 1e-6:
            new = beta + t * step
            val = nll(new)
            if val <= cur + 1e-12:
                break
            t /= 2
        beta, done = new, abs(cur - val) < 1e-10
        cur = val
        if np.any(np.abs(beta) > 50):
            return math.nan, math.nan
        if done:
            break
    return (float(beta[0]), float(beta[1])) if fit_slope else (float(beta[0]), 1.0)


def _slope_intercept(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration slope (logistic regression of y on logit p) and calibration-in-the-large
    (intercept with logit p as an offset)."""
    lp = logit(p)
    _, slope = _newton_logistic(y, lp, fit_slope=True)
    citl, _ = _newton_logistic(y, lp, fit_slope=False)
    return slope, citl


def calibration_stats(
    y_true: Any, y_prob: Any, *, n_bins: int = 5, n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Calibration slope (ideal 1), calibration-in-the-large (ideal 0), Brier score and
    observed/expected events (ideal 1), each with a percentile bootstrap CI, plus curve points."""
    y, p = _yp(y_true, y_prob)
    slope, citl = _slope_intercept(y, p)
    rng = np.random.default_rng(seed)
    bs: dict[str, list[float]] = {"slope": [], "intercept": [], "brier": [], "oe": []}
    for _ in range(n_bootstrap):
        i = rng.integers(0, y.size, y.size)
        if y[i].min() == y[i].max():
            continue
        s, c = _slope_intercept(y[i], p[i])
        bs["slope"].append(s)
        bs["intercept"].append(c)
        bs["brier"].append(float(np.mean((p[i] - y[i]) ** 2)))
        bs["oe"].append(float(y[i].sum() / max(p[i].sum(), _EPS)))
    a = (1 - confidence) / 2

    def ci(k: str) -> tuple[float, float]:
        v = np.asarray([x for x in bs[k] if math.isfinite(x)])
        return (float(np.quantile(v, a)), float(np.quantile(v, 1 - a))) if v.size else (math.nan, math.nan)

    curve = calibration(y.astype(int), p, n_bins=n_bins)
    out = {
        "slope": slope,
        "intercept": citl,
        "brier": float(np.mean((p - y) ** 2)),
        "oe_ratio": float(y.sum() / max(p.sum(), _EPS)),
        "n": int(y.size),
        "n_pos": int(y.sum()),
        "prob_pred": curve["prob_pred"],
        "prob_true": curve["prob_true"],
        "confidence": confidence,
        "method": f"logistic recalibration; bootstrap percentile ({n_bootstrap})",
    }
    for k, name in (("slope", "slope"), ("intercept", "intercept"), ("brier", "brier"), ("oe", "oe_ratio")):
        out[f"{name}_lower"], out[f"{name}_upper"] = ci(k)
    return out


def decision_curve(y_true: Any, y_prob: Any, *, thresholds: Sequence[float] | None = None) -> dict[str, Any]:
    """Net benefit = TP/n - FP/n * pt / (1 - pt) at each threshold probability ``pt``, for the model,
    treat-all and treat-none (0)."""
    y, p = _yp(y_true, y_prob)
    th = np.asarray(np.arange(0.01, 0.61, 0.01) if thresholds is None else thresholds, float)
    if np.any((th <= 0) | (th >= 1)):
        raise ConfigError("decision_curve: thresholds must lie strictly between 0 and 1")
    n = y.size
    prev = y.mean()
    nb_model, nb_all = [], []
    for pt in th:
        treat = p >= pt
        tp = float(np.sum(treat & (y == 1)))
        fp = float(np.sum(treat & (y == 0)))
        w = pt / (1 - pt)
        nb_model.append(tp / n - fp / n * w)
        nb_all.append(prev - (1 - prev) * w)
    return {
        "thresholds": th.tolist(),
        "model": nb_model,
        "treat_all": nb_all,
        "treat_none": [0.0] * th.size,
        "n": int(n),
        "prevalence": float(prev),
    }


def _nri(y: np.ndarray, new: np.ndarray, old: np.ndarray) -> float:
    up, down = new > old, new < old
    ev, ne = y == 1, y == 0
    return float((up[ev].mean() - down[ev].mean()) + (down[ne].mean() - up[ne].mean()))


def continuous_nri(
    y_true: Any, p_new: Any, p_old: Any, *, n_bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Category-free NRI of ``p_new`` over ``p_old`` (range -2..2), with a bootstrap CI."""
    y, a = _yp(y_true, p_new)
    _, b = _yp(y_true, p_old)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_bootstrap):
        i = rng.integers(0, y.size, y.size)
        if y[i].min() != y[i].max():
            boots.append(_nri(y[i], a[i], b[i]))
    q = (1 - confidence) / 2
    return {
        "nri": _nri(y, a, b),
        "lower": float(np.quantile(boots, q)),
        "upper": float(np.quantile(boots, 1 - q)),
        "n": int(y.size),
        "method": f"category-free; bootstrap percentile ({n_bootstrap})",
    }


def table_one(
    values: Mapping[str, Mapping[str, float]], groups: Mapping[str, int], *, columns: Sequence[str] | None = None
) -> list[dict]:
    """Table 1 of a cohort by a 0/1 grouping.

    Args:
        values: ``{patient_id: {column: value}}`` (NaN = missing).
        groups: ``{patient_id: 0/1}``; patients absent here are left out.
        columns: the rows of the table (default: every column of ``values``).

    Returns one dict per column: ``column``, ``kind`` (``binary``/``continuous``), the two groups'
    summaries (``group0``, ``group1``, ``all``), ``p`` and ``test``, ``missing``.
    """
    from scipy.stats import fisher_exact, mannwhitneyu

    pids = [p for p in groups if p in values]
    y = np.asarray([groups[p] for p in pids], int)
    cols = list(columns) if columns is not None else sorted({c for v in values.values() for c in v})
    rows = []
    for c in cols:
        x = np.asarray([values[p].get(c, math.nan) for p in pids], float)
        ok = np.isfinite(x)
        miss = int((~ok).sum())
        xs = [x[ok & (y == k)] for k in (0, 1)]
        binary = ok.any() and set(np.unique(x[ok])) <= {0.0, 1.0}
        row: dict[str, Any] = {
            "column": c,
            "kind": "binary" if binary else "continuous",
            "missing": miss,
            "n0": int(xs[0].size),
            "n1": int(xs[1].size),
        }
        if binary:

            def fmt(v: np.ndarray) -> str:
                return f"{int(v.sum())} ({100 * v.mean():.0f}%)" if v.size else "-"

            row.update(group0=fmt(xs[0]), group1=fmt(xs[1]), all=fmt(x[ok]), test="Fisher exact")
            table = [
                [int(xs[0].sum()), int(xs[0].size - xs[0].sum())],
                [int(xs[1].sum()), int(xs[1].size - xs[1].sum())],
            ]
            row["p"] = float(fisher_exact(table)[1]) if xs[0].size and xs[1].size else math.nan
        else:

            def fmt(v: np.ndarray) -> str:
                if not v.size:
                    return "-"
                q1, m, q3 = np.percentile(v, [25, 50, 75])
                return f"{m:.3g} [{q1:.3g}\u2013{q3:.3g}]"

            row.update(group0=fmt(xs[0]), group1=fmt(xs[1]), all=fmt(x[ok]), test="Mann-Whitney U")
            row["p"] = (
                float(mannwhitneyu(xs[0], xs[1], alternative="two-sided").pvalue)
                if xs[0].size and xs[1].size
                else math.nan
            )
        rows.append(row)
    return rows
