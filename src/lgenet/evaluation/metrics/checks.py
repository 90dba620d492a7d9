"""Input checks shared by the metric functions, and the errors they raise.

Labels are 0/1 (1 = positive), scores finite numbers (probabilities in [0, 1] where a threshold or
calibration is applied), confidence levels in (0, 1); every message says what was found and where.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lgenet.errors import ConfigError, LgenetError

__all__ = ["MetricsInputError", "SingleClassError"]


class MetricsInputError(LgenetError, ValueError):
    """Arrays given to a metric are unusable (lengths differ, labels not 0/1, NaN scores...)."""


class SingleClassError(MetricsInputError):
    """Only one class is present, so the ROC AUC (and anything built on it) is undefined."""


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
