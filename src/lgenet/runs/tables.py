"""Per-patient CSV tables of the run folders (``seg_metrics.csv``, ``segmentation.csv``, fold predictions):
one writer and one reader, so that every table is formatted the same way (6 significant digits, blank
for a missing or non-finite value)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

from lgenet.utils import atomic_write_text

__all__ = ["format_value", "number", "rows_csv", "write_rows", "read_rows"]


def number(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return v


def format_value(v) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.6g}"
    return str(v)


def rows_csv(rows: Sequence[dict], fields: Sequence[str]) -> str:
    """The CSV text of ``rows`` (columns ``fields``; missing and non-finite values blank)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: format_value(r.get(k)) for k in fields})
    return buf.getvalue()


def write_rows(path: Path, rows: Sequence[dict], fields: Sequence[str]) -> Path:
    """Write ``rows`` atomically as CSV."""
    return atomic_write_text(path, rows_csv(rows, fields))


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
