"""The clinical table of an import: one row per case, and the event label read from it."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from lgenet.data.importers.cases import CaseError
from lgenet.errors import DataError

__all__ = ["read_clinical", "event_value"]


def read_clinical(path: Path, id_column: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    if not path.is_file():
        raise DataError(
            f"clinical file {path} does not exist; give the CSV that holds one row per case (ID column {id_column!r})"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"clinical file {path} could not be read as UTF-8 text: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    if id_column not in header:
        raise DataError(f"clinical file {path} has no ID column {id_column!r}; its columns are {header}")
    rows: dict[str, dict[str, str]] = {}
    for i, row in enumerate(reader, start=2):
        cid = (row.get(id_column) or "").strip()
        if not cid:
            raise DataError(f"clinical file {path}, line {i}: empty {id_column!r}")
        if cid in rows:
            raise DataError(f"clinical file {path}, line {i}: case {cid} appears twice")
        rows[cid] = {k: (v or "").strip() for k, v in row.items() if k is not None}
    return header, rows


def event_value(raw: str, event_min: float | None, cid: str, col: str, src: Any) -> int | None:
    if raw == "":
        return None
    try:
        v = float(raw)
    except ValueError:
        raise CaseError(cid, f"clinical column {col!r} = {raw!r} in {src} is not a number") from None
    if event_min is not None:
        return int(v >= event_min)
    if v not in (0.0, 1.0):
        raise CaseError(
            cid, f"clinical column {col!r} = {raw!r} in {src} is not 0/1; give event_min for a rule such as value >= 2"
        )
    return int(v)
