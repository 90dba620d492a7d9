"""ROC AUC with confidence intervals, and the paired test of two AUCs.

* :func:`delong_auc_ci` -- ROC AUC with DeLong's variance, computed by the fast midrank algorithm
  of Sun & Xu (2014, IEEE Signal Process. Lett. 21:1389); Wald CI on the AUC scale (clipped to
  [0, 1]) or, with ``logit=True``, on the logit scale (stays inside (0, 1) and is asymmetric near
  the bounds, usually better with few positives).
* :func:`bootstrap_auc_ci` -- stratified bootstrap (positives and negatives resampled separately,
  so every replicate keeps the study's class counts), percentile CI.
* :func:`auc_ci` -- either of the two, by name.
* :func:`delong_test` -- paired two-sided DeLong test of two correlated AUCs on the same patients.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from scipy.special import logit as _logit
from scipy.stats import norm

from lgenet.errors import ConfigError
from lgenet.evaluation.metrics.checks import _check_confidence, _check_labels, _check_scores, _require_both_classes

__all__ = [
    "AUCResult",
    "DelongTestResult",
    "CI_METHODS",
    "delong_auc_ci",
    "bootstrap_auc_ci",
    "auc_ci",
    "delong_test",
]

CI_METHODS = ("delong", "bootstrap")


# ---------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class AUCResult:
    """A ROC AUC with its confidence interval.

    Attributes:
        auc: area under the ROC curve (ties count 1/2).
        lower, upper: confidence limits (NaN when they cannot be estimated, e.g. DeLong with a
            single positive or negative patient).
        se: standard error (DeLong: square root of the DeLong variance; bootstrap: standard
            deviation of the replicate AUCs).
        n, n_pos, n_neg: patients, positives, negatives.
        method: ``"delong"``, ``"delong-logit"`` or ``"bootstrap"``.
        confidence: nominal coverage of [lower, upper], e.g. 0.95.
    """

    auc: float
    lower: float
    upper: float
    se: float
    n: int
    n_pos: int
    n_neg: int
    method: str
    confidence: float

    def format(self, digits: int = 2, *, with_n: bool = True) -> str:
        """``"AUC 0.80 (95% CI 0.70–0.90), n=116 (19+)"``."""
        pct = _pct_label(self.confidence)
        if math.isnan(self.lower) or math.isnan(self.upper):
            ci = f"{pct}% CI n/a"
        else:
            ci = f"{pct}% CI {self.lower:.{digits}f}\u2013{self.upper:.{digits}f}"
        s = f"AUC {self.auc:.{digits}f} ({ci})"
        if with_n:
            s += f", n={self.n} ({self.n_pos}+)"
        return s

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DelongTestResult:
    """Paired DeLong test of H0: AUC_a == AUC_b (two-sided). ``diff = auc_a - auc_b``."""

    auc_a: float
    auc_b: float
    diff: float
    se: float
    z: float
    p_value: float


def _pct_label(confidence: float) -> str:
    pct = 100.0 * confidence
    return f"{pct:.0f}" if abs(pct - round(pct)) < 1e-9 else f"{pct:g}"


# ---------------------------------------------------------------------------------- DeLong core
def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` with tied values sharing the mean of their positions."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # start index of every run of equal values, plus the end sentinel
    starts = np.flatnonzero(np.concatenate(([True], xs[1:] != xs[:-1], [True])))
    run_len = np.diff(starts)
    run_rank = (starts[:-1] + 1 + starts[1:]) / 2.0  # mean of positions start+1 .. end
    out = np.empty(x.shape[0], dtype=float)
    out[order] = np.repeat(run_rank, run_len)
    return out


def _placements(pos: np.ndarray, neg: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong structural components (placement values) by Sun & Xu's midrank trick.

    ``v10[i]`` = fraction of negatives scored below positive i (ties 1/2);
    ``v01[j]`` = fraction of positives scored above negative j (ties 1/2).
    """
    m, n = pos.shape[0], neg.shape[0]
    tx = _midranks(pos)
    ty = _midranks(neg)
    tz = _midranks(np.concatenate((pos, neg)))
    auc = float((tz[:m].sum() - m * (m + 1) / 2.0) / (m * n))
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    return auc, v10, v01


def _sample_var(v: np.ndarray) -> float:
    return float(np.var(v, ddof=1)) if v.shape[0] >= 2 else float("nan")


def delong_auc_ci(y_true: Any, y_score: Any, *, confidence: float = 0.95, logit: bool = False) -> AUCResult:
    """ROC AUC with a DeLong confidence interval.

    The variance is DeLong et al. (1988)'s, ``S10/m + S01/n`` from the placement values, computed
    in O(N log N) with midranks (Sun & Xu 2014). Ties in the scores count 1/2.

    Args:
        y_true: 0/1 labels, at least one of each.
        y_score: any real-valued scores (higher = more likely positive); NaN is rejected.
        confidence: nominal coverage, in (0, 1).
        logit: ``False`` (default): Wald CI ``auc ± z·se`` clipped to [0, 1]. ``True``: Wald CI
            on ``logit(auc)`` with delta-method SE ``se / (auc (1 - auc))``, transformed back; it
            cannot leave (0, 1). At AUC 0 or 1 the logit is infinite and the AUC-scale interval
            (degenerate, since DeLong's variance is then 0) is returned.

    Returns:
        :class:`AUCResult`. With only one positive or one negative patient the DeLong variance is
        not estimable: ``se``, ``lower`` and ``upper`` are NaN (the AUC itself is still given).

    Raises:
        SingleClassError: only one class present.
        MetricsInputError: lengths differ, labels not 0/1, NaN/infinite scores.
    """
    conf = _check_confidence(confidence)
    y = _check_labels(y_true)
    s = _check_scores(y_score, y.size)
    n_pos, n_neg = _require_both_classes(y)
    auc, v10, v01 = _placements(s[y == 1], s[y == 0])
    var = _sample_var(v10) / n_pos + _sample_var(v01) / n_neg
    se = math.sqrt(max(var, 0.0)) if not math.isnan(var) else float("nan")
    z = float(norm.ppf(0.5 + conf / 2.0))
    method = "delong-logit" if logit else "delong"
    if math.isnan(se):
        lo = hi = float("nan")
    elif logit and 0.0 < auc < 1.0:
        centre = float(_logit(auc))
        half = z * se / (auc * (1.0 - auc))
        lo, hi = float(expit(centre - half)), float(expit(centre + half))
    else:
        lo, hi = max(0.0, auc - z * se), min(1.0, auc + z * se)
    return AUCResult(auc, lo, hi, se, int(y.size), n_pos, n_neg, method, conf)


# ---------------------------------------------------------------------------------- bootstrap
def _weighted_aucs(pos: np.ndarray, neg: np.ndarray, wpos: np.ndarray, wneg: np.ndarray) -> np.ndarray:
    """AUCs of many resamples given as multiplicity weights (rows of ``wpos`` (B, m), ``wneg`` (B, n)).

    AUC_b = sum_i wpos[b,i] * (weight of negatives below pos_i + 1/2 weight tied) / (sum wpos * sum wneg).
    """
    order = np.argsort(neg, kind="mergesort")
    neg_sorted = neg[order]
    cum = np.zeros((wneg.shape[0], neg.shape[0] + 1), dtype=float)
    np.cumsum(wneg[:, order], axis=1, out=cum[:, 1:])
    left = np.searchsorted(neg_sorted, pos, side="left")
    right = np.searchsorted(neg_sorted, pos, side="right")
    below = cum[:, left]
    tied = cum[:, right] - below
    num = (wpos * (below + 0.5 * tied)).sum(axis=1)
    return num / (wpos.sum(axis=1) * wneg.sum(axis=1))


def bootstrap_auc_ci(
    y_true: Any,
    y_score: Any,
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> AUCResult:
    """ROC AUC with a stratified-bootstrap percentile confidence interval.

    Each replicate draws ``n_pos`` positives and ``n_neg`` negatives with replacement from the
    respective classes (so no replicate is single-class and prevalence is fixed), and its AUC is
    computed exactly (ties 1/2). The CI is the (α/2, 1-α/2) percentile of the replicate AUCs; ``se``
    is their standard deviation. Deterministic for a fixed integer ``random_state``; a
    :class:`numpy.random.Generator` is used (and advanced) as given.
    """
    conf = _check_confidence(confidence)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ConfigError(f"n_boot must be an integer >= 2 (2000 is usual), got {n_boot!r}")
    y = _check_labels(y_true)
    s = _check_scores(y_score, y.size)
    n_pos, n_neg = _require_both_classes(y)
    pos, neg = s[y == 1], s[y == 0]
    auc, _, _ = _placements(pos, neg)
    rng = np.random.default_rng(random_state)
    n_boot = int(n_boot)
    # chunk so that the (B, n) work arrays stay around 16 MB whatever the cohort size
    chunk = max(1, min(n_boot, 2_000_000 // (n_pos + n_neg + 1)))
    reps = np.empty(n_boot, dtype=float)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        wpos = rng.multinomial(n_pos, np.full(n_pos, 1.0 / n_pos), size=b).astype(float)
        wneg = rng.multinomial(n_neg, np.full(n_neg, 1.0 / n_neg), size=b).astype(float)
        reps[start : start + b] = _weighted_aucs(pos, neg, wpos, wneg)
    alpha = 1.0 - conf
    lo, hi = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    se = float(np.std(reps, ddof=1))
    return AUCResult(auc, float(lo), float(hi), se, int(y.size), n_pos, n_neg, "bootstrap", conf)


def auc_ci(y_true: Any, y_score: Any, *, method: str = "delong", **kw: Any) -> AUCResult:
    """Dispatch to :func:`delong_auc_ci` (``method="delong"``) or :func:`bootstrap_auc_ci`.

    ``confidence`` goes to either. ``n_boot`` and ``random_state`` are bootstrap options and are
    ignored by DeLong (so one call site can pass a whole config); ``logit`` is DeLong-only.
    """
    if method == "delong":
        kw.pop("n_boot", None)
        kw.pop("random_state", None)
        return delong_auc_ci(y_true, y_score, **kw)
    if method == "bootstrap":
        if kw.pop("logit", False):
            raise ConfigError("logit=True applies to method='delong' only; the bootstrap CI is a percentile interval")
        return bootstrap_auc_ci(y_true, y_score, **kw)
    raise ConfigError(f"AUC CI method must be one of {list(CI_METHODS)}, got {method!r}")


# ---------------------------------------------------------------------------------- DeLong test
def delong_test(y_true: Any, score_a: Any, score_b: Any) -> DelongTestResult:
    """Paired two-sided DeLong test that two models have equal AUC on the same patients.

    ``var(AUC_a - AUC_b)`` is estimated from the differences of the two models' placement values
    (DeLong 1988), which includes their covariance. Identical (or rank-identical) predictions give
    ``diff = 0, se = 0, z = 0, p = 1.0``. With a single positive or negative patient the variance is
    not estimable and ``se``, ``z``, ``p_value`` are NaN.
    """
    y = _check_labels(y_true)
    a = _check_scores(score_a, y.size, "score_a")
    b = _check_scores(score_b, y.size, "score_b")
    n_pos, n_neg = _require_both_classes(y, "the DeLong test")
    auc_a, v10a, v01a = _placements(a[y == 1], a[y == 0])
    auc_b, v10b, v01b = _placements(b[y == 1], b[y == 0])
    diff = auc_a - auc_b
    var = _sample_var(v10a - v10b) / n_pos + _sample_var(v01a - v01b) / n_neg
    nan = float("nan")
    if math.isnan(var):
        return DelongTestResult(auc_a, auc_b, diff, nan, nan, nan)
    se = math.sqrt(max(var, 0.0))
    tol = 1e-12
    if se <= tol:
        if abs(diff) <= tol:
            return DelongTestResult(auc_a, auc_b, 0.0 if diff == 0 else diff, se, 0.0, 1.0)
        return DelongTestResult(auc_a, auc_b, diff, se, math.copysign(math.inf, diff), 0.0)
    z = diff / se
    p = float(min(1.0, 2.0 * norm.sf(abs(z))))
    return DelongTestResult(auc_a, auc_b, diff, se, z, p)
