"""Out-of-fold prediction rows checked and grouped by (task, model), ready to evaluate.

The rows have the columns of :data:`lgenet.conventions.schemas.OOF_COLUMNS` (``model`` may be
derived from ``arch``/``init`` and back); the run folder reads them from ``oof_predictions.csv``
(:meth:`lgenet.runs.grid.RunDir.read_oof`). Every problem is collected and reported at once, with
the row and the patient it concerns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lgenet.conventions.schemas import OOF_COLUMNS, OOF_REQUIRED
from lgenet.errors import DataError

__all__ = ["OofGroup", "group_rows"]

_MAX_PROBLEMS = 20


def _parse_label(v: Any) -> int | None:
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, str):
        t = v.strip().lower()
        if t in ("true", "false"):
            return int(t == "true")
        try:
            v = float(t)
        except ValueError:
            return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if f in (0.0, 1.0) else None


def _parse_prob(v: Any) -> float | None:
    try:
        f = float(v.strip()) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        return None
    return f


def _is_blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v))


class OofGroup:
    """One (task, model)'s patients, labels, probabilities and test folds, in table order."""

    __slots__ = ("arch", "init", "pids", "y", "p", "folds", "fold_of")

    def __init__(self, arch: str, init: str):
        self.arch, self.init = arch, init
        self.pids: list[str] = []
        self.y: list[int] = []
        self.p: list[float] = []
        self.folds: set[str] = set()
        self.fold_of: list[str] = []


def group_rows(rows: Sequence[Mapping[str, Any]], source: str) -> dict[str, dict[str, OofGroup]]:
    """``{task: {model: OofGroup}}`` in order of first appearance; DataError listing every bad row."""
    if not rows:
        raise DataError(f"{source}: no OOF prediction rows to evaluate")
    cols = set().union(*(r.keys() for r in rows))
    missing = [c for c in OOF_REQUIRED if c not in cols]
    if "model" not in cols and not {"arch", "init"} <= cols:
        missing.append("model (or arch and init)")
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; the OOF table needs {list(OOF_COLUMNS)}")
    problems: list[str] = []
    groups: dict[str, dict[str, OofGroup]] = {}
    labels: dict[tuple[str, str], tuple[int, str]] = {}
    seen: set[tuple[str, str, str]] = set()
    for i, r in enumerate(rows):
        where = f"row {i}"
        task = "" if _is_blank(r.get("task")) else str(r["task"]).strip()
        arch = "" if _is_blank(r.get("arch")) else str(r["arch"]).strip()
        init = "" if _is_blank(r.get("init")) else str(r["init"]).strip()
        model = "" if _is_blank(r.get("model")) else str(r["model"]).strip()
        if not model and arch and init:
            model = f"{arch}/{init}"
        if model and not (arch and init) and "/" in model:
            a, _, b = model.partition("/")
            arch, init = arch or a, init or b
        pid = "" if _is_blank(r.get("patient_id")) else str(r["patient_id"]).strip()
        if not task or not model or not pid:
            empty = [c for c, v in (("task", task), ("model", model), ("patient_id", pid)) if not v]
            problems.append(f"{where}: empty {', '.join(empty)}")
            continue
        y = _parse_label(r.get("y_true"))
        if y is None:
            problems.append(
                f"{where} (task {task!r}, model {model!r}, patient {pid!r}): y_true must be 0 or 1, got {r.get('y_true')!r}"
            )
            continue
        p = _parse_prob(r.get("prob"))
        if p is None or math.isnan(p):
            problems.append(
                f"{where} (task {task!r}, model {model!r}, patient {pid!r}): prob must be a number in [0, 1], got {r.get('prob')!r}"
            )
            continue
        if not (0.0 <= p <= 1.0):
            problems.append(f"{where} (task {task!r}, model {model!r}, patient {pid!r}): prob {p!r} is outside [0, 1]")
            continue
        key = (task, model, pid)
        if key in seen:
            problems.append(f"{where}: duplicate prediction for task {task!r}, model {model!r}, patient {pid!r}")
            continue
        seen.add(key)
        prev = labels.get((task, pid))
        if prev is None:
            labels[(task, pid)] = (y, model)
        elif prev[0] != y:
            problems.append(
                f"{where}: patient {pid!r} has y_true={y} for model {model!r} but y_true={prev[0]} for model "
                f"{prev[1]!r} in task {task!r}"
            )
            continue
        g = groups.setdefault(task, {}).get(model)
        if g is None:
            g = groups[task][model] = OofGroup(arch, init)
        g.pids.append(pid)
        g.y.append(y)
        g.p.append(p)
        g.fold_of.append("" if _is_blank(r.get("fold")) else str(r["fold"]).strip())
        if not _is_blank(r.get("fold")):
            g.folds.add(str(r["fold"]).strip())
    if problems:
        n = len(problems)
        shown = problems[:_MAX_PROBLEMS]
        more = f"\n  ... and {n - len(shown)} more" if n > len(shown) else ""
        raise DataError(
            f"{source}: {n} problem{'s' if n != 1 else ''} in the OOF predictions:\n"
            + "\n".join(f"  - {s}" for s in shown)
            + more
        )
    return groups
