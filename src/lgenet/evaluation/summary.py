"""From the out-of-fold predictions table to one metrics row per (task, model).

The OOF table (``oof_predictions.csv``) has one row per (task, model, patient) with columns
``task, arch, init, model, patient_id, fold, y_true, prob`` (``model`` = ``"arch/init"``; it is
derived from ``arch``/``init`` when absent). Every patient's prediction comes from the fold model
that never saw them, so pooled metrics are honest cross-validated estimates.

:func:`evaluate_oof` computes, per (task, model): AUC with its CI (DeLong or stratified bootstrap),
sensitivity / specificity / PPV / NPV / accuracy at a threshold with Wilson CIs, Brier score,
confusion counts, which model is best within the task, and a paired DeLong p-value against that
best model. :func:`write_metrics` saves ``metrics.csv`` and ``metrics.json``; :func:`format_table`
renders the printed summary.

Example:
    >>> rows = evaluate_oof("runs/study1/oof_predictions.csv")       # doctest: +SKIP
    >>> write_metrics(rows, "runs/study1")                            # doctest: +SKIP
    >>> print(format_table(rows))                                     # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.errors import DataError
from lgenet.evaluation.metrics import MetricsInputError, SingleClassError, auc_ci, binary_metrics, delong_test
from lgenet.utils import atomic_write_text

__all__ = [
    "OOF_COLUMNS",
    "METRIC_COLUMNS",
    "evaluate_oof",
    "read_oof",
    "write_metrics",
    "read_metrics",
    "format_table",
]

OOF_COLUMNS = ("task", "arch", "init", "model", "patient_id", "fold", "y_true", "prob")
_REQUIRED = ("task", "patient_id", "y_true", "prob")
_PROPS = ("sensitivity", "specificity", "ppv", "npv", "accuracy")

METRIC_COLUMNS: tuple[str, ...] = (
    "task",
    "arch",
    "init",
    "model",
    "n",
    "n_pos",
    "n_neg",
    "prevalence",
    "n_folds",
    "auc",
    "auc_lower",
    "auc_upper",
    "auc_se",
    "ci_method",
    "confidence",
    "threshold",
    *[c for p in _PROPS for c in (p, f"{p}_lower", f"{p}_upper")],
    "brier",
    "tp",
    "fp",
    "tn",
    "fn",
    "best",
    "delong_p_vs_best",
    "n_shared_vs_best",
    *[c for p in ("sensitivity", "specificity", "ppv", "npv") for c in (f"op_{p}", f"op_{p}_lower", f"op_{p}_upper")],
    *[c for p in ("cal_slope", "cal_intercept") for c in (p, f"{p}_lower", f"{p}_upper")],
    "note",
)
#: the second operating point: each fold's test patients are called positive when their probability is
#: at least the prevalence of that fold's *training* patients (a rule fixed in advance, nothing chosen
#: on the test fold; for a model trained with cross-entropy on imbalanced labels it sits near the
#: ROC's balanced point, where 0.5 often calls nobody positive)
OPERATING_POINT = "training-fold prevalence"
_INT_COLS = {"n", "n_pos", "n_neg", "n_folds", "tp", "fp", "tn", "fn", "n_shared_vs_best"}
_STR_COLS = {"task", "arch", "init", "model", "ci_method", "note"}
_BOOL_COLS = {"best"}
_MAX_PROBLEMS = 20


# ---------------------------------------------------------------------------------- reading
def read_oof(path: str | Path) -> list[dict[str, str]]:
    """Read ``oof_predictions.csv`` as a list of string dicts (validation happens in evaluate_oof)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"OOF predictions file {str(p)!r} not found (expected the run's oof_predictions.csv)")
    with open(p, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise DataError(f"OOF predictions file {str(p)!r} is empty (no header row)")
        return [dict(r) for r in reader]


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


class _Group:
    __slots__ = ("arch", "init", "pids", "y", "p", "folds", "fold_of")

    def __init__(self, arch: str, init: str):
        self.arch, self.init = arch, init
        self.pids: list[str] = []
        self.y: list[int] = []
        self.p: list[float] = []
        self.folds: set[str] = set()
        self.fold_of: list[str] = []


def _group_rows(
    rows: Sequence[Mapping[str, Any]], source: str, *, from_file: bool = False
) -> dict[str, dict[str, _Group]]:
    if not rows:
        raise DataError(f"{source}: no OOF prediction rows to evaluate")
    cols = set().union(*(r.keys() for r in rows))
    missing = [c for c in _REQUIRED if c not in cols]
    if "model" not in cols and not {"arch", "init"} <= cols:
        missing.append("model (or arch and init)")
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; the OOF table needs {list(OOF_COLUMNS)}")
    problems: list[str] = []
    groups: dict[str, dict[str, _Group]] = {}
    labels: dict[tuple[str, str], tuple[int, str]] = {}
    seen: set[tuple[str, str, str]] = set()
    for i, r in enumerate(rows):
        where = f"line {i + 2}" if from_file else f"row {i}"
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
            g = groups[task][model] = _Group(arch, init)
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


# ---------------------------------------------------------------------------------- evaluation
def _operating_point(
    y: np.ndarray, p: np.ndarray, fold_of: Sequence[str], confidence: float, notes: list[str]
) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV (Wilson CIs) at the :data:`OPERATING_POINT` rule."""
    out = {
        f"op_{k}{s}": float("nan")
        for k in ("sensitivity", "specificity", "ppv", "npv")
        for s in ("", "_lower", "_upper")
    }
    f = np.asarray(fold_of, dtype=object)
    if len(set(f)) < 2 or "" in set(f):
        notes.append("no fold column: the training-fold prevalence operating point is not computed")
        return out
    calls = np.zeros(y.size)
    for k in set(f):
        tr, te = f != k, f == k
        calls[te] = (p[te] >= y[tr].mean()).astype(float)
    bm = binary_metrics(y, calls, threshold=0.5, confidence=confidence)
    for k in ("sensitivity", "specificity", "ppv", "npv"):
        for s in ("", "_lower", "_upper"):
            out[f"op_{k}{s}"] = bm[k + s]
    return out


def _calibration(y: np.ndarray, p: np.ndarray, confidence: float, seed: int | None) -> dict[str, float]:
    """Calibration slope and calibration-in-the-large with bootstrap CIs (500 replicates)."""
    from lgenet.evaluation.clinical import calibration_stats

    out = {f"{k}{s}": float("nan") for k in ("cal_slope", "cal_intercept") for s in ("", "_lower", "_upper")}
    try:
        c = calibration_stats(y, p, n_bootstrap=500, confidence=confidence, seed=seed or 0)
    except MetricsInputError:  # one class among the patients: no calibration to estimate
        return out
    for k, src in (("cal_slope", "slope"), ("cal_intercept", "intercept")):
        out[k], out[k + "_lower"], out[k + "_upper"] = c[src], c[src + "_lower"], c[src + "_upper"]
    return out


def evaluate_oof(
    rows: Sequence[Mapping[str, Any]] | str | Path,
    *,
    threshold: float = 0.5,
    confidence: float = 0.95,
    ci_method: str = "delong",
    n_boot: int = 2000,
    random_state: int | None = 0,
) -> list[dict[str, Any]]:
    """One metrics row per (task, model) from the OOF predictions (rows or a CSV path).

    Order: tasks and models in order of first appearance in the table (this is also the stable
    order that breaks AUC ties for ``best``). Each row has the columns of :data:`METRIC_COLUMNS`:
    AUC with CI (``ci_method`` ``"delong"`` or ``"bootstrap"``; the bootstrap restarts from
    ``random_state`` for every model, so a model's CI does not depend on the others), threshold
    metrics with Wilson CIs (positive call: ``prob >= threshold``), Brier score, confusion
    counts, ``best`` (highest AUC within the task) and ``delong_p_vs_best`` (paired two-sided
    DeLong p-value against the best model on the patients both share; NaN for the best itself).
    ``note`` explains anything unusual (models not evaluated on the same patients, a CI that
    cannot be estimated); it is ``""`` otherwise.

    Raises:
        DataError: missing columns, unparsable/duplicate rows, a patient with different labels in
            different models, or a (task, model) with only one class (AUC undefined).
    """
    from_file = isinstance(rows, (str, Path))
    if from_file:
        source = str(rows)
        rows = read_oof(rows)  # type: ignore[arg-type]
    else:
        source = "OOF predictions"
        rows = list(rows)  # type: ignore[arg-type]
    groups = _group_rows(rows, source, from_file=from_file)

    out: list[dict[str, Any]] = []
    for task, models in groups.items():
        task_rows: list[dict[str, Any]] = []
        for model, g in models.items():
            y = np.asarray(g.y, dtype=np.int64)
            p = np.asarray(g.p, dtype=float)
            try:
                res = auc_ci(y, p, method=ci_method, confidence=confidence, n_boot=n_boot, random_state=random_state)
            except SingleClassError as exc:
                raise DataError(f"task {task!r}, model {model!r}: {exc}") from None
            bm = binary_metrics(y, p, threshold=threshold, confidence=confidence)
            notes: list[str] = []
            if math.isnan(res.se):
                notes.append(
                    f"AUC CI not estimable with n_pos={res.n_pos}, n_neg={res.n_neg} (DeLong needs >= 2 of each)"
                )
            row: dict[str, Any] = {
                "task": task,
                "arch": g.arch,
                "init": g.init,
                "model": model,
                "n": res.n,
                "n_pos": res.n_pos,
                "n_neg": res.n_neg,
                "prevalence": bm["prevalence"],
                "n_folds": len(g.folds),
                "auc": res.auc,
                "auc_lower": res.lower,
                "auc_upper": res.upper,
                "auc_se": res.se,
                "ci_method": res.method,
                "confidence": res.confidence,
                "threshold": bm["threshold"],
            }
            for name in _PROPS:
                for suffix in ("", "_lower", "_upper"):
                    row[name + suffix] = bm[name + suffix]
            row.update(brier=bm["brier"], tp=bm["tp"], fp=bm["fp"], tn=bm["tn"], fn=bm["fn"])
            row.update(best=False, delong_p_vs_best=float("nan"), n_shared_vs_best=res.n, note="")
            row.update(_operating_point(y, p, g.fold_of, confidence, notes))
            row.update(_calibration(y, p, confidence, random_state))
            row["_notes"] = notes
            task_rows.append(row)

        best_i = 0
        for i, r in enumerate(task_rows):
            if r["auc"] > task_rows[best_i]["auc"]:
                best_i = i
        best = task_rows[best_i]
        best["best"] = True
        bg = models[best["model"]]
        best_map = dict(zip(bg.pids, zip(bg.y, bg.p)))
        all_same = len({frozenset(g.pids) for g in models.values()}) == 1
        if not all_same:
            best["_notes"].append("models in this task were not all evaluated on the same patients")
        for r in task_rows:
            if r is best:
                continue
            g = models[r["model"]]
            shared = [(pid, pr) for pid, pr in zip(g.pids, g.p) if pid in best_map]
            r["n_shared_vs_best"] = len(shared)
            if len(shared) != len(g.pids) or len(shared) != len(bg.pids):
                r["_notes"].append(
                    f"patients differ from best model {best['model']} ({len(g.pids)} vs {len(bg.pids)}); "
                    f"DeLong test on the {len(shared)} shared"
                )
            ys = np.asarray([best_map[pid][0] for pid, _ in shared], dtype=np.int64)
            if ys.size == 0 or ys.min() == ys.max():
                r["_notes"].append(
                    f"DeLong test vs best not possible: shared patients have n_pos={int(ys.sum())}, "
                    f"n_neg={int(ys.size - ys.sum())}"
                )
                continue
            pa = np.asarray([pr for _, pr in shared], dtype=float)
            pb = np.asarray([best_map[pid][1] for pid, _ in shared], dtype=float)
            r["delong_p_vs_best"] = delong_test(ys, pa, pb).p_value
        for r in task_rows:
            r["note"] = "; ".join(r.pop("_notes"))
            out.append({c: r[c] for c in METRIC_COLUMNS})
    return out


# ---------------------------------------------------------------------------------- writing
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


def _setting(metrics: Sequence[Mapping[str, Any]], key: str) -> Any:
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

    ci_method, confidence, threshold = (_setting(metrics, k) for k in ("ci_method", "confidence", "threshold"))
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


# ---------------------------------------------------------------------------------- printing
def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _pct(v: Any) -> str:
    f = _f(v)
    return "n/a" if math.isnan(f) else f"{100 * f:.0f}%"


def _p(v: Any) -> str:
    f = _f(v)
    if math.isnan(f):
        return "n/a"
    return "<0.001" if f < 0.001 else f"{f:.3f}"


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, (str, int, np.integer, np.bool_)) and str(v).strip().lower() in ("true", "1"))


def _auc_text(m: Mapping[str, Any]) -> str:
    conf = _f(m.get("confidence"))
    pct = "95" if math.isnan(conf) else f"{100 * conf:g}"
    auc, lo, hi = _f(m.get("auc")), _f(m.get("auc_lower")), _f(m.get("auc_upper"))
    ci = f"{pct}% CI n/a" if math.isnan(lo) or math.isnan(hi) else f"{pct}% CI {lo:.2f}\u2013{hi:.2f}"
    return f"AUC {auc:.2f} ({ci}), n={m.get('n')} ({m.get('n_pos')}+)"


#: one line per model family present in a table: what its rows are
_FAMILY_LEGEND = (
    ("classifier", "ARCH/INIT: the seed study's protocol, a CNN on the basal frame (at this run's budget)."),
    (
        "burden",
        "burden:whole/seg, burden:basal/seg: the segmentation's predicted LGE % (whole LV, basal slice) "
        "as the score, out of fold, no fitting.",
    ),
    ("roi", "roi:ARCH/INIT: a CNN on the basal frame's LV-centred window (placed by the segmenter)."),
    ("stack", "stack:ARCH/INIT: every slice's LV-centred window, attention-pooled into one patient probability."),
)


def format_table(metrics: Iterable[Mapping[str, Any]]) -> str:
    """Fixed-width text summary, one line per model per task, best AUC in each task marked ``*``.

    Every AUC is printed with its CI and n, e.g.
    ``lge    * resnet50/imagenet  AUC 0.80 (95% CI 0.70–0.90), n=116 (19+)  63%  79%  34%  88%  best``.
    """
    metrics = list(metrics)
    if not metrics:
        return "(no models evaluated)"
    header = ("task", "", "model", "AUC (CI), n (positives)", "sens", "spec", "PPV", "NPV", "p vs best")
    lines: list[tuple[str, ...]] = []
    for m in metrics:
        is_best = _truthy(m.get("best"))
        lines.append(
            (
                str(m.get("task", "")),
                "*" if is_best else "",
                str(m.get("model", "")),
                _auc_text(m),
                _pct(m.get("sensitivity")),
                _pct(m.get("specificity")),
                _pct(m.get("ppv")),
                _pct(m.get("npv")),
                "best" if is_best else _p(m.get("delong_p_vs_best")),
            )
        )
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    right = {4, 5, 6, 7, 8}

    def fmt(r: tuple[str, ...]) -> str:
        cells = [r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in range(len(r))]
        return "  ".join(cells).rstrip()

    out = [fmt(header), "  ".join("-" * w for w in widths)]
    prev_task = None
    for m, r in zip(metrics, lines):
        if prev_task is not None and r[0] != prev_task:
            out.append("")
        prev_task = r[0]
        out.append(fmt(r))
    thr = _setting(metrics, "threshold")
    meth = _setting(metrics, "ci_method")
    out.append("")
    out.append(
        f"* best AUC within task. AUC CI: {meth}. sens/spec/PPV/NPV at prob >= {thr}. "
        "p vs best: paired two-sided DeLong test against the task's best model."
    )
    fams = {
        str(m.get("model", "")).split(":", 1)[0] if ":" in str(m.get("model", "")) else "classifier" for m in metrics
    }
    for fam, text in _FAMILY_LEGEND:
        if fam in fams:
            out.append(text)
    notes = [(m.get("task"), m.get("model"), m.get("note")) for m in metrics if m.get("note")]
    for t, mod, note in notes:
        out.append(f"note [{t} {mod}]: {note}")
    return "\n".join(out)
