"""Evaluation of out-of-fold predictions: AUC with CIs, threshold metrics, summaries and figures.

* :mod:`.metrics` -- pure metric functions (DeLong / bootstrap AUC CIs, DeLong test, Wilson CIs).
* :mod:`.oof_rows` -- out-of-fold prediction rows checked and grouped by (task, model).
* :mod:`.summary` -- OOF rows -> one metrics row per (task, model).
* :mod:`.metrics_files` -- metrics.csv / metrics.json written and read back.
* :mod:`.text_table` -- the printed summary table.
* :mod:`.canvas` -- the figures' canvas, house style and metadata-free atomic save.
* :mod:`.plots` -- ROC curves, AUC bar chart (Figure 1 C-D), confusion matrix, calibration.

Every name is loaded on first use, so that ``import lgenet.evaluation`` imports neither matplotlib nor
scipy.stats and scikit-learn.
"""

from __future__ import annotations

from typing import Any

#: where each public name lives; every one is imported on first use, so that ``import lgenet.evaluation.segmentation``
#: (``segment apply``) does not import scipy.stats, scikit-learn or matplotlib (since 0.3.0)
_HOME = {
    **dict.fromkeys(
        ("CI_METHODS", "AUCResult", "DelongTestResult", "MetricsInputError", "SingleClassError", "auc_ci",
         "binary_metrics", "bootstrap_auc_ci", "calibration", "delong_auc_ci", "delong_test", "wilson_ci"),
        "metrics",
    ),
    "read_metrics": "metrics_files",
    "write_metrics": "metrics_files",
    "METRIC_COLUMNS": "summary",
    "evaluate_oof": "summary",
    "format_table": "text_table",
    "save_figure": "canvas",
}  # fmt: skip
_PLOTS = ("save_figure", "plot_roc", "plot_auc_bars", "plot_confusion", "plot_calibration")

__all__ = [
    # metrics
    "AUCResult",
    "DelongTestResult",
    "MetricsInputError",
    "SingleClassError",
    "CI_METHODS",
    "delong_auc_ci",
    "bootstrap_auc_ci",
    "auc_ci",
    "delong_test",
    "binary_metrics",
    "wilson_ci",
    "calibration",
    # summary, metrics files, printed table
    "METRIC_COLUMNS",
    "evaluate_oof",
    "write_metrics",
    "read_metrics",
    "format_table",
    # plots (lazy)
    *_PLOTS,
]


def __getattr__(name: str) -> Any:
    import importlib

    home = _HOME.get(name) or ("plots" if name in _PLOTS else None)
    if home is not None:
        return getattr(importlib.import_module(f"lgenet.evaluation.{home}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
