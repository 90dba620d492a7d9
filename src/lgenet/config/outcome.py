"""``OutcomeSettings``: what the outcomes analysis fits (``lgenet outcomes``, and ``lgenet run`` after its grid).

Each setting is declared once, here; :class:`~lgenet.config.RunConfig` holds the ones a grid run fixes in advance
(``covariates``, ``outcome_measures``, ``outcome_cnn``, ``outcome_C``, ``outcome_recalibrate``, ``cox_penalizer``,
``outcome_horizon``) with these same declarations (:func:`lgenet.settings.borrow`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lgenet.conventions.measures import DEFAULT_MEASURES, IMAGE_MEASURES
from lgenet.errors import ConfigError
from lgenet.settings import Settings, borrowed_values, setting

__all__ = ["OutcomeSettings", "check_measures"]


def check_measures(measures: tuple[str, ...], label: str = "outcome measures") -> None:
    """Image-derived measures must be among :data:`~lgenet.conventions.measures.IMAGE_MEASURES`."""
    bad = [m for m in measures if m not in IMAGE_MEASURES]
    if bad:
        raise ConfigError(f"{label} {bad} are unknown; choose from {', '.join(IMAGE_MEASURES)}")


@dataclass(frozen=True)
class OutcomeSettings(Settings):
    """What the outcomes analysis fits (all fixed before any result is seen)."""

    LABEL = "outcome {name}"

    covariates: tuple[str, ...] | None = setting(
        None,
        kind="list",
        item="str",
        help="clinical covariates (manifest columns) of the outcome models",
        default_text="the presentation covariates present, minus those that leak a task's label",
        cli=True,
    )
    measures: tuple[str, ...] = setting(
        DEFAULT_MEASURES,
        help="image-derived measures (lgenet.conventions.measures.IMAGE_MEASURES) of the image and fusion models, "
        "entered when a segmentation run is given",
        cli=True,
    )
    cnn: str = setting(
        "first",
        help="which CNN out-of-fold probability enters the image and fusion models: first (the first model of the "
        "run's grid for the task, fixed by the config, not chosen by its AUC), none, or a model key such as "
        "resnet50/random",
        cli=True,
    )
    C: float | str = setting(
        1.0,
        help="inverse L2 strength of the logistic models, or cv: chosen per training fold by an inner 3-fold CV",
        minimum=0,
        exclusive_minimum=True,
        also=("cv",),
        why="chosen by inner CV",
        cli="--C",
    )
    recalibrate: str = setting(
        "none",
        help="none, or platt: a sigmoid recalibration fitted by inner 3-fold CV on each training fold",
        choices=("none", "platt"),
        cli=True,
    )
    cox_penalizer: float = setting(
        0.0, help="lifelines CoxPHFitter penalizer (0: the unpenalised Cox model)", minimum=0, cli=True
    )
    horizon: float | None = setting(
        None,
        kind="float",
        help="years for the time-dependent AUC and the calibration of Cox risk",
        minimum=0,
        exclusive_minimum=True,
        why="years",
        default_text="the cohort's median follow-up rounded to half a year",
        cli=True,
    )
    km_groups: str | float = setting(
        "tertiles",
        kind="float",
        help="Kaplan-Meier risk groups: tertiles, median or a probability threshold",
        minimum=0,
        maximum=1,
        exclusive_minimum=True,
        exclusive_maximum=True,
        also=("tertiles", "median"),
        cli=True,
    )
    n_bootstrap: int = setting(1000, help="bootstrap replicates of the CIs", minimum=100, cli="--bootstrap")
    confidence: float = setting(
        0.95,
        help="confidence level of the intervals",
        minimum=0.5,
        maximum=1,
        exclusive_minimum=True,
        exclusive_maximum=True,
    )
    folds: int = setting(4, help="folds without a run (a run's own folds are always used)", minimum=2, cli=True)
    seed: int = setting(0, help="fold seed without a run", minimum=0, cli=True)

    def _check(self) -> None:
        check_measures(self.measures)

    @classmethod
    def from_run_config(cls, cfg, **overrides: Any) -> OutcomeSettings:
        """The settings a grid run fixed (its outcome settings, and its folds, seed and confidence level), with
        ``overrides`` (``None`` values ignored)."""
        kw = {**borrowed_values(cfg, cls), "folds": cfg.folds, "seed": cfg.seed, "confidence": cfg.confidence}
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)
