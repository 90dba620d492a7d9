"""``OutcomeSettings``: what the outcomes analysis fits (``lgenet outcomes``, and ``lgenet run`` after its grid)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lgenet.conventions.measures import DEFAULT_MEASURES, IMAGE_MEASURES
from lgenet.errors import ConfigError

__all__ = ["OutcomeSettings"]


@dataclass(frozen=True)
class OutcomeSettings:
    """What the outcomes analysis fits (all fixed before any result is seen).

    Attributes:
        covariates: manifest columns of the clinical models; ``None`` = the presentation covariates
            present in the manifest minus those that leak the task's label.
        measures: image-derived measures (:data:`~lgenet.outcomes.measures.IMAGE_MEASURES`) entered
            when a segmentation run is given.
        cnn: which CNN out-of-fold probability enters the image and fusion models: ``"first"`` (the
            first model of the run's grid for the task -- fixed by the config, not chosen by its AUC),
            ``"none"``, or a model key such as ``resnet50/random``.
        C: inverse L2 strength of the logistic models, or ``"cv"``: chosen per training fold by an
            inner 3-fold CV (nested, nothing from the test fold).
        recalibrate: ``"none"`` or ``"platt"`` (a sigmoid recalibration fitted by inner 3-fold CV on
            each training fold).
        cox_penalizer: lifelines ``CoxPHFitter(penalizer=...)`` (0 = the unpenalised Cox model).
        horizon: years for the time-dependent AUC and the calibration of Cox risk; ``None`` = the
            cohort's median follow-up rounded to half a year.
        km_groups: ``"tertiles"``, ``"median"`` or a probability threshold for the Kaplan-Meier groups.
        folds, seed: folds for a manifest without a run (a run's own folds are always used).
    """

    covariates: tuple[str, ...] | None = None
    measures: tuple[str, ...] = DEFAULT_MEASURES
    cnn: str = "first"
    C: float | str = 1.0
    recalibrate: str = "none"
    cox_penalizer: float = 0.0
    horizon: float | None = None
    km_groups: str | float = "tertiles"
    n_bootstrap: int = 1000
    confidence: float = 0.95
    folds: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.covariates is not None:
            object.__setattr__(self, "covariates", tuple(self.covariates))
        object.__setattr__(self, "measures", tuple(self.measures))
        bad = [m for m in self.measures if m not in IMAGE_MEASURES]
        if bad:
            raise ConfigError(f"outcome measures {bad} are unknown; choose from {', '.join(IMAGE_MEASURES)}")
        if not (self.C == "cv" or (isinstance(self.C, (int, float)) and not isinstance(self.C, bool) and self.C > 0)):
            raise ConfigError(f"outcome C must be a number > 0 or 'cv' (chosen by inner CV), got {self.C!r}")
        if self.recalibrate not in ("none", "platt"):
            raise ConfigError(f"recalibrate must be 'none' or 'platt', got {self.recalibrate!r}")
        if not (isinstance(self.cox_penalizer, (int, float)) and self.cox_penalizer >= 0):
            raise ConfigError(f"cox_penalizer must be a number >= 0, got {self.cox_penalizer!r}")
        if self.horizon is not None and not (isinstance(self.horizon, (int, float)) and self.horizon > 0):
            raise ConfigError(f"horizon must be a number of years > 0 or None, got {self.horizon!r}")
        if not (
            self.km_groups in ("tertiles", "median")
            or (isinstance(self.km_groups, (int, float)) and 0 < self.km_groups < 1)
        ):
            raise ConfigError(
                f"km_groups must be 'tertiles', 'median' or a probability in (0, 1), got {self.km_groups!r}"
            )
        if not (isinstance(self.n_bootstrap, int) and self.n_bootstrap >= 100):
            raise ConfigError(f"n_bootstrap must be an integer >= 100, got {self.n_bootstrap!r}")

    @classmethod
    def from_run_config(cls, cfg, **overrides: Any) -> OutcomeSettings:
        kw = dict(
            covariates=cfg.covariates,
            measures=cfg.outcome_measures,
            cnn=cfg.outcome_cnn,
            C=cfg.outcome_C,
            recalibrate=cfg.outcome_recalibrate,
            cox_penalizer=cfg.cox_penalizer,
            horizon=cfg.outcome_horizon,
            folds=cfg.folds,
            seed=cfg.seed,
            confidence=cfg.confidence,
        )
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)
