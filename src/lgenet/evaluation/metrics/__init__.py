"""Discrimination and threshold metrics with confidence intervals, for out-of-fold predictions.

Every function here is pure: arrays in, numbers out, options keyword-only, randomness passed in
through ``random_state``. Labels are 0/1 (1 = positive: LGE burden above threshold, or event);
scores are predicted probabilities of the positive class (any real number is fine for the AUC,
but a threshold or calibration needs probabilities in [0, 1]).

* :mod:`.auc` -- :func:`delong_auc_ci`, :func:`bootstrap_auc_ci`, :func:`auc_ci` and the paired
  :func:`delong_test`.
* :mod:`.binary` -- :func:`binary_metrics` at a threshold with Wilson CIs (:func:`wilson_ci`), and
  :func:`calibration`.
* :mod:`.paired` -- :func:`paired_mean_difference`: mean per-patient difference of a measure between
  two methods (e.g. Dice of two segmentation runs on the same patients), bootstrap CI and Wilcoxon p.
* :mod:`.checks` -- the input checks every function shares, and :class:`MetricsInputError`.

Example:
    >>> r = delong_auc_ci([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.7])
    >>> round(r.auc, 3), r.n_pos, r.n_neg
    (0.889, 3, 3)
"""

from __future__ import annotations

from lgenet.evaluation.metrics.auc import (
    CI_METHODS,
    AUCResult,
    DelongTestResult,
    auc_ci,
    bootstrap_auc_ci,
    delong_auc_ci,
    delong_test,
)
from lgenet.evaluation.metrics.binary import binary_metrics, calibration, wilson_ci
from lgenet.evaluation.metrics.checks import MetricsInputError, SingleClassError
from lgenet.evaluation.metrics.paired import paired_mean_difference

__all__ = [
    "AUCResult",
    "DelongTestResult",
    "MetricsInputError",
    "SingleClassError",
    "delong_auc_ci",
    "bootstrap_auc_ci",
    "auc_ci",
    "delong_test",
    "paired_mean_difference",
    "binary_metrics",
    "wilson_ci",
    "calibration",
    "CI_METHODS",
]
