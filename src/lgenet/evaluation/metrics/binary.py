"""Metrics of calling patients positive at a probability threshold, and calibration.

* :func:`wilson_ci` -- a proportion with its Wilson score interval.
* :func:`binary_metrics` -- confusion counts at a threshold; sensitivity, specificity, PPV, NPV and
  accuracy each with a Wilson score interval; Brier score; prevalence.
* :func:`calibration` -- reliability-diagram points (scikit-learn) and Brier score.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, confusion_matrix

from lgenet.errors import ConfigError
from lgenet.evaluation.metrics.checks import MetricsInputError, _check_confidence, _check_labels, _check_scores

__all__ = ["wilson_ci", "binary_metrics", "calibration"]


def wilson_ci(successes: int, total: int, *, confidence: float = 0.95) -> tuple[float, float, float]:
    """Proportion and Wilson score interval: ``(p, lower, upper)``; all NaN when ``total == 0``."""
    conf = _check_confidence(confidence)
    if total < 0 or successes < 0 or successes > total:
        raise MetricsInputError(f"wilson_ci needs 0 <= successes <= total, got successes={successes}, total={total}")
    if total == 0:
        nan = float("nan")
        return nan, nan, nan
    z = float(norm.ppf(0.5 + conf / 2.0))
    p = successes / total
    z2n = z * z / total
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = (z / (1.0 + z2n)) * math.sqrt(p * (1.0 - p) / total + z * z / (4.0 * total * total))
    # the limits are exactly 0 / 1 at 0 / n successes; avoid round-off like 0.9999999999999999
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == total else min(1.0, centre + half)
    return p, lower, upper


def binary_metrics(y_true: Any, y_score: Any, *, threshold: float = 0.5, confidence: float = 0.95) -> dict[str, Any]:
    """Confusion counts and threshold metrics, each proportion with a Wilson score interval.

    A patient is called positive when ``y_score >= threshold``. Returns a dict with ``tp, fp, tn, fn,
    n, n_pos, n_neg, threshold, confidence, prevalence, brier`` and, for each of ``sensitivity``,
    ``specificity``, ``ppv``, ``npv``, ``accuracy``, the value plus ``<name>_lower`` and
    ``<name>_upper``. A metric whose denominator is 0 (e.g. PPV when nobody is called positive) is
    NaN with a NaN interval. Works with a single class (sensitivity or specificity is then NaN).
    """
    conf = _check_confidence(confidence)
    try:
        thr = float(threshold)
    except (TypeError, ValueError):
        raise ConfigError(f"threshold must be a number in [0, 1], got {threshold!r}") from None
    if not (0.0 <= thr <= 1.0):
        raise ConfigError(f"threshold must be in [0, 1] (scores are probabilities), got {threshold!r}")
    y = _check_labels(y_true)
    s = _check_scores(y_score, y.size, probability=True)
    pred = (s >= thr).astype(np.int64)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    out: dict[str, Any] = {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "n": int(y.size),
        "n_pos": tp + fn,
        "n_neg": tn + fp,
        "threshold": thr,
        "confidence": conf,
    }
    for name, k, tot in (
        ("sensitivity", tp, tp + fn),
        ("specificity", tn, tn + fp),
        ("ppv", tp, tp + fp),
        ("npv", tn, tn + fn),
        ("accuracy", tp + tn, int(y.size)),
    ):
        p, lo, hi = wilson_ci(k, tot, confidence=conf)
        out[name], out[f"{name}_lower"], out[f"{name}_upper"] = p, lo, hi
    out["prevalence"] = (tp + fn) / y.size
    out["brier"] = float(brier_score_loss(y, s, pos_label=1))
    return out


def calibration(y_true: Any, y_score: Any, *, n_bins: int = 5, strategy: str = "quantile") -> dict[str, Any]:
    """Reliability-diagram points and Brier score.

    Returns ``{"prob_pred": [...], "prob_true": [...], "brier", "n", "n_pos", "n_bins", "strategy"}``
    where ``prob_pred``/``prob_true`` are the mean predicted probability and observed fraction of
    positives per non-empty bin (scikit-learn's ``calibration_curve``; quantile bins may merge when
    predictions repeat, so there can be fewer than ``n_bins`` points).
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ConfigError(f"n_bins must be a positive integer, got {n_bins!r}")
    if strategy not in ("quantile", "uniform"):
        raise ConfigError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    y = _check_labels(y_true)
    s = _check_scores(y_score, y.size, probability=True)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=int(n_bins), strategy=strategy, pos_label=1)
    return {
        "prob_pred": [float(v) for v in prob_pred],
        "prob_true": [float(v) for v in prob_true],
        "brier": float(brier_score_loss(y, s, pos_label=1)),
        "n": int(y.size),
        "n_pos": int(y.sum()),
        "n_bins": int(n_bins),
        "strategy": strategy,
    }
