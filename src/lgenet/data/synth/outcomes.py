"""The synthetic cohort's statistics: LGE burden targets, the hazard model of the events and follow-up,
and summaries of what was reached."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["HAZARD", "true_log_hazard", "draw_followup", "tabular_cohort"]


def _sample_targets(rng: np.random.Generator, n: int, f_none: float, f_high: float) -> tuple[np.ndarray, np.ndarray]:
    """Target burdens (%) and groups (0 none, 1 low 0 < x <= 5.7, 2 high > 5.7), exact counts."""
    n_none = int(round(f_none * n))
    n_high = min(int(round(f_high * n)), n - n_none)
    groups = np.array([0] * n_none + [2] * n_high + [1] * (n - n_none - n_high))
    rng.shuffle(groups)
    low = rng.uniform(0.4, 5.2, size=n)
    high = np.minimum(6.3 + rng.gamma(0.35, 16.5, size=n), 50.0)
    targets = np.where(groups == 0, 0.0, np.where(groups == 1, low, high))
    return targets, groups


def _pct(x: np.ndarray) -> float:
    return round(100.0 * float(np.mean(x)), 2) if len(x) else float("nan")


def _rate(ev: np.ndarray, mask: np.ndarray) -> float | None:
    return round(float(ev[mask].mean()), 4) if mask.any() else None


def _quart(x: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in np.percentile(x, [25, 50, 75])]


#: the synthetic cohort's true proportional-hazards model: log-hazard ratio per unit of each covariate
#: (``log1p_lge_percent`` = log(1 + LGE %), age in years, LVEF in %) and the Weibull baseline's shape
HAZARD: dict[str, float] = {"log1p_lge_percent": 0.9, "age": 0.03, "lvef": -0.04, "shape": 1.5}


def true_log_hazard(lge_percent: Any, age: Any, lvef: Any) -> np.ndarray:
    """The synthetic cohort's true linear predictor ``eta`` (centred at age 56, LVEF 59 %)."""
    return (
        HAZARD["log1p_lge_percent"] * np.log1p(np.asarray(lge_percent, float))
        + HAZARD["age"] * (np.asarray(age, float) - 56.0)
        + HAZARD["lvef"] * (np.asarray(lvef, float) - 59.0)
    )


def draw_followup(
    eta: Any, censor: Any, unit_exp: Any, event_rate: float, shape: float | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Event indicators, follow-up times and the baseline scale of a Weibull proportional-hazards model.

    The event time of patient ``i`` is ``(E_i / (scale * exp(eta_i))) ** (1 / shape)`` with ``E_i`` the
    unit-exponential draw ``unit_exp[i]``; it is observed when it falls before ``censor[i]``. ``scale``
    is found by bisection so that ``round(event_rate * n)`` events are observed (exactly, unless two
    patients tie). Returns ``(event 0/1, follow-up years = min(time, censor), scale)``.
    """
    eta = np.asarray(eta, float)
    c = np.asarray(censor, float)
    e = np.asarray(unit_exp, float)
    shape = float(HAZARD["shape"] if shape is None else shape)
    k = int(round(event_rate * eta.size))

    def times(log_scale: float) -> np.ndarray:
        return (e / np.exp(log_scale + eta)) ** (1.0 / shape)

    lo, hi = -40.0, 40.0  # log scale: few events at lo, all at hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if int((times(mid) <= c).sum()) < k:
            lo = mid
        else:
            hi = mid
    t = times(hi)
    ev = (t <= c).astype(int)
    return ev, np.maximum(np.minimum(t, c), 0.01), float(np.exp(hi))


def tabular_cohort(
    n: int = 116,
    *,
    seed: int = 0,
    event_rate: float = 0.20,
    lge_fraction_none: float = 0.57,
    lge_fraction_high: float = 0.16,
) -> dict[str, np.ndarray]:
    """The synthetic cohort's clinical table without images (for survival tests and benchmarks).

    Same distributions as :func:`make_cohort` (burden targets, age, LVEF, censoring) and the same
    hazard :data:`HAZARD`; returns arrays ``lge_percent``, ``age``, ``lvef``, ``eta`` (true linear
    predictor), ``event``, ``followup_years``.
    """
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
    lge, _ = _sample_targets(rng, int(n), lge_fraction_none, lge_fraction_high)
    age = np.clip(np.round(rng.normal(56.0, 9.0, n)), 22, 88)
    lvef = np.round(np.clip(rng.normal(59.8, 10.0, n) - 0.35 * lge, 15.0, 78.0), 1)
    censor = np.clip(rng.normal(5.45, 0.75, n), 2.0, 9.0)
    eta = true_log_hazard(lge, age, lvef)
    ev, fu, _ = draw_followup(eta, censor, rng.exponential(1.0, n), event_rate)
    return {"lge_percent": lge, "age": age, "lvef": lvef, "eta": eta, "event": ev, "followup_years": fu}
