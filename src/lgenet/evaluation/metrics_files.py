"""``metrics.csv`` and ``metrics.json``: the evaluation's rows written and read back.

CSV: one row per (task, model), NaN as an empty cell, floats at full precision. JSON:
``{"description", "ci_method", "confidence", "threshold", "metrics": [rows]}`` with NaN as null.
Reading restores the types (integers, booleans, strings; empty/null -> NaN).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.errors import DataError
from lgenet.evaluation.summary import METRIC_COLUMNS
from lgenet.utils import atomic_write_text

__all__ = ["write_metrics", "read_metrics", "common_setting"]

_INT_COLS = {"n", "n_pos", "n_neg", "n_folds", "tp", "fp", "tn", "fn", "n_shared_vs_best"}
_STR_COLS = {"task", "arch", "init", "model", "ci_method", "note"}
_BOOL_COLS = {"best"}


def _columns(metrics: Sequence[Mapping[str, Any]]) -> list[str]:
    cols = [c for c in METRIC_COLUMNS if any(c in m for m in metrics)]
    for m in metrics:
        for k in m:
            if k not in cols:
                cols.append(k)
    return cols


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else repr(float(v))
    if isinstance(v, np.integer):
        return str(int(v))
    return str(v)


def _json_value(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(v, Mapping):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_json_value(x) for x in v]
    return v


def common_setting(metrics: Sequence[Mapping[str, Any]], key: str) -> Any:
    """The value of ``key`` shared by every row, or the list of its distinct values."""
    vals = []
    for m in metrics:
        v = _json_value(m.get(key))
        if v not in vals:
            vals.append(v)
    return vals[0] if len(vals) == 1 else vals


def _describe(ci_method: Any, confidence: Any, threshold: Any) -> str:
    conf = f"{100 * confidence:g}%" if isinstance(confidence, (int, float)) else str(confidence)
    meth = (
        {
            "delong": "DeLong's variance (fast midrank algorithm), Wald interval on the AUC scale clipped to [0, 1]",
            "delong-logit": "DeLong's variance (fast midrank algorithm), Wald interval on the logit scale",
            "bootstrap": "stratified bootstrap (positives and negatives resampled separately), percentile interval",
        }.get(ci_method, str(ci_method))
        if isinstance(ci_method, str)
        else str(ci_method)
    )
    return (
        f"Out-of-fold metrics, one row per (task, model). AUC {conf} CI: {meth}. Sensitivity, "
        f"specificity, PPV, NPV and accuracy at threshold {threshold} (predicted positive when "
        f"prob >= threshold) with {conf} Wilson score intervals. best: highest AUC within the task. "
        "delong_p_vs_best: paired two-sided DeLong test against the task's best model on shared "
        "patients. null/empty = not defined (e.g. a zero denominator)."
    )


def write_metrics(metrics: Sequence[Mapping[str, Any]], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``metrics.csv`` and ``metrics.json`` into ``out_dir`` atomically; return both paths.

    CSV: one row per (task, model), NaN as an empty cell, floats at full precision. JSON:
    ``{"description", "ci_method", "confidence", "threshold", "metrics": [rows]}`` with NaN as null.
    """
    metrics = list(metrics)
    if not metrics:
        raise DataError("no metrics rows to write (evaluate_oof returned nothing)")
    out = Path(out_dir)
    cols = _columns(metrics)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for m in metrics:
        w.writerow([_csv_cell(m.get(c)) for c in cols])
    csv_path = atomic_write_text(out / "metrics.csv", buf.getvalue())

    ci_method, confidence, threshold = (common_setting(metrics, k) for k in ("ci_method", "confidence", "threshold"))
    doc = {
        "description": _describe(ci_method, confidence, threshold),
        "ci_method": ci_method,
        "confidence": confidence,
        "threshold": threshold,
        "metrics": [{c: _json_value(m.get(c)) for c in cols} for m in metrics],
    }
    json_path = atomic_write_text(out / "metrics.json", json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return csv_path, json_path


def _restore(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k in _STR_COLS:
            out[k] = "" if v is None else str(v)
        elif k in _BOOL_COLS:
            out[k] = v if isinstance(v, bool) else str(v).strip().lower() == "true"
        elif k in _INT_COLS:
            out[k] = None if v in (None, "") else int(float(v))
        else:
            if v is None or v == "":
                out[k] = float("nan")
            else:
                try:
                    out[k] = float(v)
                except (TypeError, ValueError):
                    out[k] = v
    return out


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read ``metrics.csv`` or ``metrics.json`` back into typed rows (empty/null -> NaN)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"metrics file {str(p)!r} not found")
    try:
        if p.suffix.lower() == ".json":
            doc = json.loads(p.read_text(encoding="utf-8"))
            rows = doc["metrics"] if isinstance(doc, dict) else doc
        else:
            with open(p, newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.DictReader(fh))
    except (ValueError, KeyError) as exc:
        raise DataError(f"metrics file {str(p)!r} could not be parsed: {exc}") from None
    return [_restore(r) for r in rows]
