"""The columns of the tables a run writes, each defined once.

The run folder (:class:`lgenet.runs.grid.RunDir`) writes and reads these tables; the evaluation
(below the run folder) checks rows against the same names without importing it.
"""

from __future__ import annotations

__all__ = ["OOF_COLUMNS", "OOF_REQUIRED"]

#: ``oof_predictions.csv``: one row per (task, model, patient); ``model`` is ``"arch/init"`` (or
#: ``"family:arch/init"``), ``fold`` the patient's test fold, ``prob`` the out-of-fold probability
OOF_COLUMNS: tuple[str, ...] = ("task", "arch", "init", "model", "patient_id", "fold", "y_true", "prob")
#: the columns without which out-of-fold rows cannot be evaluated (``model`` may be derived from
#: ``arch`` and ``init``, ``fold`` only feeds the training-fold operating point)
OOF_REQUIRED: tuple[str, ...] = ("task", "patient_id", "y_true", "prob")
