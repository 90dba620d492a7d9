"""The outcomes analysis' files: outcomes.json values, oof_outcomes.csv, table1_<task>.csv, cox_<set>.csv."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from lgenet.utils import atomic_write_text

__all__ = ["write_oof", "write_table1", "write_cox"]


def _csv(path: Path, fields: list[str], rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(
            {
                k: (
                    ""
                    if isinstance(r.get(k), float) and not math.isfinite(r[k])
                    else (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k, ""))
                )
                for k in fields
            }
        )
    atomic_write_text(path, buf.getvalue())


def write_oof(path: Path, rows: list[dict]) -> None:
    _csv(
        path,
        ["patient_id", "task", "model_set", "fold", "label", "prob", "cox_log_hazard", "cox_risk_at_horizon"],
        rows,
    )


def write_table1(path: Path, t1: dict) -> None:
    g0, g1 = t1["groups"]
    rows = [
        {
            "column": r["column"],
            g0: r["group0"],
            g1: r["group1"],
            "all": r["all"],
            "p": r["p"],
            "test": r["test"],
            "missing": r["missing"],
        }
        for r in t1["rows"]
    ]
    _csv(path, ["column", g0, g1, "all", "p", "test", "missing"], rows)


def write_cox(path: Path, rows: list[dict]) -> None:
    _csv(
        path, ["covariate", "coef", "se", "lower", "upper", "hr", "hr_lower", "hr_upper", "p", "per", "penalizer"], rows
    )
