"""Paired comparison of a per-patient measure between two methods on the same patients."""

from __future__ import annotations

from typing import Any

import numpy as np

from lgenet.errors import ConfigError
from lgenet.evaluation.metrics.checks import MetricsInputError, _as_1d, _check_confidence

__all__ = ["paired_mean_difference"]


def paired_mean_difference(
    a: Any, b: Any, *, n_boot: int = 2000, confidence: float = 0.95, random_state: int | np.random.Generator | None = 0
) -> dict:
    """``b - a`` per patient (patients where either is NaN left out): mean, bootstrap CI, Wilcoxon p.

    The CI is the percentile interval of the means of ``n_boot`` resamples of the patients' differences
    (with replacement); the p value is the two-sided Wilcoxon signed-rank test (1.0 when every difference
    is 0). Returns ``{"n", "diff", "lower", "upper", "wilcoxon_p"}``; with fewer than two pairs the CI and
    p are NaN. Deterministic for an integer ``random_state``.
    """
    from scipy.stats import wilcoxon

    conf = _check_confidence(confidence)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ConfigError(f"n_boot must be an integer >= 2 (2000 is usual), got {n_boot!r}")
    x, y = _as_1d(a, "a").astype(float), _as_1d(b, "b").astype(float)
    if x.size != y.size:
        raise MetricsInputError(f"a and b must hold one value per patient each: {x.size} vs {y.size} values")
    d = y - x
    d = d[np.isfinite(d)]
    if d.size < 2:  # nothing to resample, as delong_test with one patient per class
        nan = float("nan")
        return {
            "n": int(d.size),
            "diff": float(d.mean()) if d.size else nan,
            "lower": nan,
            "upper": nan,
            "wilcoxon_p": nan,
        }
    rng = np.random.default_rng(random_state)
    means = np.empty(int(n_boot))
    chunk = max(1, 2_000_000 // d.size)
    for start in range(0, int(n_boot), chunk):
        k = min(chunk, int(n_boot) - start)
        means[start : start + k] = rng.choice(d, (k, d.size)).mean(1)
    alpha = 1.0 - conf
    lo, hi = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    p = float(wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return {"n": int(d.size), "diff": float(d.mean()), "lower": float(lo), "upper": float(hi), "wilcoxon_p": p}
