"""Outcome models the way cardiologists build them: clinical covariates, image-derived measures and
CNN probabilities, alone and fused, cross-validated in the run's patient folds; logistic regression
for binary events, Cox regression for time-to-event; discrimination, calibration, decision curves
and Kaplan-Meier risk groups (:func:`run_outcomes`, ``lgenet outcomes``)."""

from lgenet.outcomes.measures import (
    DEFAULT_MEASURES,
    IMAGE_MEASURES,
    MEASURE_DESCRIPTIONS,
    cnn_scores,
    segmentation_measures,
)
from lgenet.outcomes.run import MODEL_SETS, OutcomeSettings, run_outcomes

__all__ = [
    "run_outcomes",
    "OutcomeSettings",
    "MODEL_SETS",
    "IMAGE_MEASURES",
    "DEFAULT_MEASURES",
    "MEASURE_DESCRIPTIONS",
    "segmentation_measures",
    "cnn_scores",
]
