"""Patient-level stratified K-fold assignment, shared by every model of a task.

Folds are assigned to *patients* (never to rows or frames), so a patient's frames are never on
both sides of a split. One assignment per task is computed once, saved in the run directory
(``folds_<task>.csv``) and reused by every (architecture, initialisation) so that model
comparisons are paired.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold

from lgenet.errors import DataError

__all__ = ["assign_folds"]


def assign_folds(
    patient_ids: list[str], labels: list[int] | np.ndarray, *, n_splits: int = 4, random_state: int = 0, task: str = ""
) -> dict[str, int]:
    """Map each patient to a test fold 0..n_splits-1, stratified on the patient's label.

    Raises:
        DataError: duplicate patients, or fewer patients of a class than folds.
    """
    ids = list(patient_ids)
    y = np.asarray(labels, dtype=int)
    if len(set(ids)) != len(ids):
        raise DataError("assign_folds needs one entry per patient; got duplicate patient ids")
    if len(ids) != len(y):
        raise DataError(f"assign_folds: {len(ids)} patients but {len(y)} labels")
    name = f"task {task!r}" if task else "the task"
    for cls, word in ((1, "positive"), (0, "negative")):
        n = int((y == cls).sum())
        if n == 0:
            other = "negative" if cls == 1 else "positive"
            raise DataError(
                f"{name} has no {word} patient (all {len(y)} labelled patients are {other}): a classifier cannot be "
                f"trained or evaluated on one class, whatever the number of folds. Add {word} patients"
                + (" (or check --lge-threshold)" if task == "lge" else "")
                + ", or drop the task with --tasks"
            )
        if n < n_splits:
            raise DataError(
                f"{name} has {n} {word} patient(s), fewer than folds={n_splits}: stratified cross-validation needs "
                f"at least one per fold. Lower --folds, add patients, or drop the task with --tasks"
            )
    # sort first so that the assignment does not depend on the manifest's row order
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    ids_sorted = [ids[i] for i in order]
    y_sorted = y[order]
    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    folds: dict[str, int] = {}
    for k, (_, test) in enumerate(skf.split(np.zeros(len(ids_sorted)), y_sorted)):
        for i in test:
            folds[ids_sorted[i]] = k
    return folds
