"""Evaluation of out-of-fold predictions: AUC with CIs, threshold metrics, summaries and figures.

* :mod:`.metrics` -- pure metric functions (DeLong / bootstrap AUC CIs, DeLong test, Wilson CIs).
* :mod:`.oof_rows` -- out-of-fold prediction rows checked and grouped by (task, model).
* :mod:`.summary` -- OOF rows -> one metrics row per (task, model).
* :mod:`.metrics_files` -- metrics.csv / metrics.json written and read back.
* :mod:`.text_table` -- the printed summary table.
* :mod:`.canvas` -- the figures' canvas, house style and metadata-free atomic save.
* :mod:`.plots` -- ROC curves, AUC bar chart (Figure 1 C-D), confusion matrix, calibration.

The plotting names are loaded on first use so that ``import lgenet.evaluation`` does not import
matplotlib.
"""

from __future__ import annotations

from typing import Any

from lgenet.evaluation.metrics import (
    CI_METHODS,
    AUCResult,
    DelongTestResult,
    MetricsInputError,
    SingleClassError,
    auc_ci,
    binary_metrics,
    bootstrap_auc_ci,
    calibration,
    delong_auc_ci,
    delong_test,
    wilson_ci,
)
from lgenet.evaluation.metrics_files import read_metrics, write_metrics
from lgenet.evaluation.summary import METRIC_COLUMNS, evaluate_oof
from lgenet.evaluation.text_table import format_table

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
    if name == "save_figure":
        from lgenet.evaluation import canvas

        return canvas.save_figure
    if name in _PLOTS:
        from lgenet.evaluation import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
