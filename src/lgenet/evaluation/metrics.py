"""Discrimination and threshold metrics with confidence intervals, for out-of-fold predictions.

Every function here is pure: arrays in, numbers out, options keyword-only, randomness passed in
through ``random_state``. Labels are 0/1 (1 = positive: LGE burden above threshold, or event);
scores are predicted probabilities of the positive class (any real number is fine for the AUC,
but a threshold or calibration needs probabilities in [0, 1]).

* :func:`delong_auc_ci` -- ROC AUC with DeLong's variance, computed by the fast midrank algorithm
  of Sun & Xu (2014, IEEE Signal Process. Lett. 21:1389); Wald CI on the AUC scale (clipped to
  [0, 1]) or, with ``logit=True``, on the logit scale (stays inside (0, 1) and is asymmetric near
  the bounds, usually better with few positives).
* :func:`bootstrap_auc_ci` -- stratified bootstrap (positives and negatives resampled separately,
  so every replicate keeps the study's class counts), percentile CI.
* :func:`delong_test` -- paired two-sided DeLong test of two correlated AUCs on the same patients.
* :func:`paired_mean_difference` -- mean per-patient difference of a measure between two methods
  (e.g. Dice of two segmentation runs on the same patients), bootstrap percentile CI and Wilcoxon p.
* :func:`binary_metrics` -- confusion counts at a threshold; sensitivity, specificity, PPV, NPV and
  accuracy each with a Wilson score interval; Brier score; prevalence.
* :func:`calibration` -- reliability-diagram points (scikit-learn) and Brier score.

Example:
    >>> r = delong_auc_ci([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.7])
    >>> round(r.auc, 3), r.n_pos, r.n_neg
    (0.889, 3, 3)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from scipy.special import logit as _logit
from scipy.stats import norm
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, confusion_matrix

from lgenet.errors import ConfigError, LgenetError

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

CI_METHODS = ("delong", "bootstrap")


class MetricsInputError(LgenetError, ValueError):
    """Arrays given to a metric are unusable (lengths differ, labels not 0/1, NaN scores...)."""


class SingleClassError(MetricsInputError):
    """Only one class is present, so the ROC AUC (and anything built on it) is undefined."""


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


# ---------------------------------------------------------------------------------- validation
def _as_1d(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists etc.
        raise MetricsInputError(f"{name} could not be read as an array: {exc}") from None
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise MetricsInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_labels(y_true: Any, name: str = "y_true") -> np.ndarray:
    arr = _as_1d(y_true, name)
    if arr.size == 0:
        raise MetricsInputError(f"{name} is empty; need at least one patient")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number):
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError):
            raise MetricsInputError(
                f"{name} must hold binary labels 0/1, got non-numeric values such as {arr.ravel()[:3].tolist()}"
            ) from None
    arr = arr.astype(float)
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        vals = sorted({repr(v) for v in arr[bad].tolist()})[:5]
        raise MetricsInputError(
            f"{name} must hold binary labels 0/1 (1 = positive); found other values {', '.join(vals)} "
            f"at {int(bad.sum())} position(s), first at index {int(np.flatnonzero(bad)[0])}"
        )
    return arr.astype(np.int64)


def _check_scores(y_score: Any, n: int, name: str = "y_score", *, probability: bool = False) -> np.ndarray:
    arr = _as_1d(y_score, name)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError):
            raise MetricsInputError(
                f"{name} must hold numbers, got values such as {arr.ravel()[:3].tolist()}"
            ) from None
    arr = arr.astype(float)
    if arr.shape[0] != n:
        raise MetricsInputError(f"{name} has {arr.shape[0]} values but y_true has {n}; they must have the same length")
    nan = np.isnan(arr)
    if nan.any():
        raise MetricsInputError(
            f"{name} contains NaN at {int(nan.sum())} position(s) (first at index {int(np.flatnonzero(nan)[0])}); "
            "every patient needs a finite score"
        )
    inf = ~np.isfinite(arr)
    if inf.any():
        raise MetricsInputError(
            f"{name} contains infinite values at {int(inf.sum())} position(s) (first at index {int(np.flatnonzero(inf)[0])})"
        )
    if probability:
        out = (arr < 0.0) | (arr > 1.0)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise MetricsInputError(
                f"{name} must be probabilities in [0, 1] when a threshold or calibration is applied; "
                f"{int(out.sum())} value(s) outside, e.g. {float(arr[i])!r} at index {i} "
                "(pass sigmoid(logit), not the logit)"
            )
    return arr


def _check_confidence(confidence: float) -> float:
    try:
        c = float(confidence)
    except (TypeError, ValueError):
        raise ConfigError(f"confidence must be a number in (0, 1), got {confidence!r}") from None
    if not (0.0 < c < 1.0):
        raise ConfigError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence!r}")
    return c


def _require_both_classes(y: np.ndarray, what: str = "the ROC AUC") -> tuple[int, int]:
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise SingleClassError(
            f"{what} needs at least one positive and one negative patient, got n_pos={n_pos}, n_neg={n_neg}"
        )
    return n_pos, n_neg


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


# ---------------------------------------------------------------------------------- threshold metrics
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
