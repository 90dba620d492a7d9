"""Fusion models fitted inside each training fold: penalised logistic regression and Cox regression.

Everything learned -- median imputation, standardisation, the logistic or Cox coefficients, the
optional Platt recalibration (its own inner 3-fold CV on the training fold) -- is fitted on the
training folds only and applied to the held-out fold, so no test-fold value or label reaches the
model that scores it (``tests/test_outcomes.py`` proves it by changing the test fold).

The log transform of right-skewed columns (:data:`~lgenet.outcomes.measures.LOG_COLUMNS`) is fixed
in advance and learns nothing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from lgenet.errors import ConfigError, DataError

__all__ = ["design_matrix", "oof_logistic", "oof_cox", "cox_table", "logistic_table"]


def design_matrix(
    values: dict[str, dict[str, float]], pids: Sequence[str], columns: Sequence[str], log_columns: Sequence[str] = ()
) -> np.ndarray:
    """Patients x columns (NaN = missing), with ``log1p`` applied to ``log_columns``."""
    X = np.array([[values.get(p, {}).get(c, math.nan) for c in columns] for p in pids], float).reshape(
        len(pids), len(columns)
    )
    for j, c in enumerate(columns):
        if c in set(log_columns):
            col = X[:, j]
            if np.nanmin(col, initial=0.0) <= -1:
                raise DataError(f"column {c!r} has values <= -1; it is entered as log(1 + x), which needs values > -1")
            X[:, j] = np.log1p(col)
    return X


def _prep():
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline(
        [("impute", SimpleImputer(strategy="median", keep_empty_features=True)), ("scale", StandardScaler())]
    )


def _logistic(C: float | str, recalibrate: str, seed: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline

    if C == "cv":  # nested: the strength is chosen by 3-fold CV AUC on the training folds only
        lr = LogisticRegressionCV(
            Cs=list(np.logspace(-3, 1, 9)),
            cv=StratifiedKFold(3, shuffle=True, random_state=seed),
            scoring="roc_auc",
            max_iter=5000,
        )
    else:
        lr = LogisticRegression(C=C, max_iter=5000)
    model = Pipeline([("prep", _prep()), ("logreg", lr)])
    if recalibrate == "none":
        return model
    if recalibrate == "platt":
        return CalibratedClassifierCV(
            model, method="sigmoid", ensemble=False, cv=StratifiedKFold(3, shuffle=True, random_state=seed)
        )
    raise ConfigError(f"recalibrate must be 'none' or 'platt', got {recalibrate!r}")


def _check_folds(fold_of: np.ndarray) -> list[int]:
    ks = sorted(set(int(k) for k in fold_of))
    if len(ks) < 2 or min(ks) < 0:
        raise DataError(f"fusion models need at least 2 folds with every patient in one; got folds {ks}")
    return ks


def oof_logistic(
    X: np.ndarray,
    y: Sequence[int],
    fold_of: Sequence[int],
    *,
    C: float | str = 1.0,
    recalibrate: str = "none",
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold probabilities of ``Pipeline(median impute, standardise, L2 logistic(C))``; ``C="cv"``
    chooses the strength by an inner 3-fold CV on each training fold (nested)."""
    y = np.asarray(y, int)
    f = np.asarray(fold_of, int)
    oof = np.full(y.size, np.nan)
    for k in _check_folds(f):
        tr, te = f != k, f == k
        if len(set(y[tr])) < 2:
            raise DataError(f"fold {k}: the training folds hold one class only; lower the number of folds")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", FutureWarning)  # scikit-learn's LogisticRegressionCV transition notices
            m = _logistic(C, recalibrate, seed).fit(X[tr], y[tr])
        oof[te] = m.predict_proba(X[te])[:, 1]
    return oof


def _cox_fit(Z: np.ndarray, t: np.ndarray, e: np.ndarray, penalizer: float):
    import pandas as pd
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    df = pd.DataFrame(Z, columns=[f"x{j}" for j in range(Z.shape[1])])
    df["T"], df["E"] = t, e
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return CoxPHFitter(penalizer=penalizer).fit(df, duration_col="T", event_col="E")
    except ConvergenceError as exc:
        raise DataError(
            f"the Cox model did not converge ({str(exc).splitlines()[0][:160]}); with few events "
            "per covariate, pass fewer covariates or a --cox-penalizer such as 0.1"
        ) from None


def oof_cox(
    X: np.ndarray,
    time: Sequence[float],
    event: Sequence[int],
    fold_of: Sequence[int],
    *,
    penalizer: float = 0.0,
    horizon: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Out-of-fold Cox linear predictors (log partial hazard) and, with ``horizon``, the predicted
    risk of an event by then, 1 - S(horizon | x)."""
    import pandas as pd

    t = np.asarray(time, float)
    e = np.asarray(event, int)
    f = np.asarray(fold_of, int)
    lp = np.full(t.size, np.nan)
    risk = None if horizon is None else np.full(t.size, np.nan)
    for k in _check_folds(f):
        tr, te = f != k, f == k
        if e[tr].sum() < 1:
            raise DataError(f"fold {k}: no event in the training folds; the Cox model cannot be fitted")
        prep = _prep().fit(X[tr])
        cph = _cox_fit(prep.transform(X[tr]), t[tr], e[tr], penalizer)
        dte = pd.DataFrame(prep.transform(X[te]), columns=[f"x{j}" for j in range(X.shape[1])])
        with warnings.catch_warnings():  # a near-constant training column: exp overflows to inf, risk 1
            warnings.simplefilter("ignore", RuntimeWarning)
            lp[te] = np.asarray(cph.predict_log_partial_hazard(dte), float).ravel()
            if horizon is not None:
                sf = cph.predict_survival_function(dte, times=[float(horizon)])
                risk[te] = 1.0 - np.asarray(sf, float).ravel()
    return lp, risk


def _exp(v: float) -> float:
    """exp, inf past the float range (a near-constant column has a huge per-unit coefficient)."""
    return math.exp(v) if v < 700 else math.inf


def cox_table(
    X: np.ndarray,
    time: Sequence[float],
    event: Sequence[int],
    columns: Sequence[str],
    *,
    penalizer: float = 0.0,
    confidence: float = 0.95,
) -> list[dict[str, Any]]:
    """Cox coefficients on all patients (description, not validation): per unit of each column as
    entered (after ``log1p`` where applied), hazard ratio, CI and Wald p (median-imputed)."""
    from scipy.stats import norm
    from sklearn.impute import SimpleImputer

    t = np.asarray(time, float)
    e = np.asarray(event, int)
    Z = SimpleImputer(strategy="median", keep_empty_features=True).fit_transform(X)
    mu, sd = Z.mean(0), Z.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    cph = _cox_fit((Z - mu) / sd, t, e, penalizer)
    s = cph.summary
    z = norm.ppf(0.5 + confidence / 2)
    rows = []
    for j, c in enumerate(columns):
        b, se = float(s["coef"].iloc[j]) / sd[j], float(s["se(coef)"].iloc[j]) / sd[j]
        rows.append(
            {
                "covariate": c,
                "coef": b,
                "se": se,
                "lower": b - z * se,
                "upper": b + z * se,
                "hr": _exp(b),
                "hr_lower": _exp(b - z * se),
                "hr_upper": _exp(b + z * se),
                "p": float(s["p"].iloc[j]),
                "per": "unit",
                "penalizer": penalizer,
            }
        )
    return rows


def logistic_table(
    X: np.ndarray, y: Sequence[int], columns: Sequence[str], *, C: float | str = 1.0, seed: int = 0
) -> list[dict[str, Any]]:
    """Standardised log-odds per column of the penalised logistic model on all patients (description)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        m = _logistic(C, "none", seed).fit(X, np.asarray(y, int))
    coef = m.named_steps["logreg"].coef_[0]
    return [
        {"covariate": c, "coef_per_sd": float(b), "odds_ratio_per_sd": _exp(float(b))} for c, b in zip(columns, coef)
    ]
