"""Image-derived measures per patient, as manifest-ready columns.

* from a segmentation run (``lgenet segment train``: out-of-fold masks; ``lgenet segment apply``:
  a segmenter that never saw the cohort) -- :data:`IMAGE_MEASURES`;
* from a training run -- every model's out-of-fold probability, ``cnn_<task>_<model slug>``.

Each patient's measure comes from a network that was not trained on that patient. Segmentation never
sees an outcome label, so its measures are out-of-sample for any task's folds.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from lgenet.conventions.measures import DEFAULT_MEASURES, IMAGE_MEASURES, MEASURE_DESCRIPTIONS
from lgenet.errors import DataError
from lgenet.outcomes.baselines import LOG_COVARIATES
from lgenet.utils import atomic_write_text

__all__ = [
    "IMAGE_MEASURES",
    "DEFAULT_MEASURES",
    "LOG_COLUMNS",
    "segmentation_measures",
    "cnn_scores",
    "write_measures",
    "MEASURE_DESCRIPTIONS",
]

log = logging.getLogger("lgenet")

#: outcome column -> column of the segmentation table (seg_metrics.csv / segmentation.csv)
#: right-skewed columns entered as log(1 + x) (a fixed transform, nothing fitted)
LOG_COLUMNS = LOG_COVARIATES + (
    "lge_percent",
    "lge_percent_basal",
    "img_lge_percent",
    "img_lge_percent_basal",
    "img_lge_mass_g",
)
_SECTOR_COLUMNS = ("lge_sectors_pred", "transmurality_max_pred", "transmurality_mean_pred")


def _float(v) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def _sectors_from_masks(run: Path, pids: Sequence[str], manifest: str | Path | None) -> dict[str, dict[str, float]]:
    """Sector measures of an older run's saved masks (runs made before these columns existed)."""
    from lgenet.data.manifest import load_manifest
    from lgenet.evaluation.segmentation import sector_measures
    from lgenet.runs.seg import SegRunDir
    from lgenet.segment.cases import Case, cases_of, read_case, safe_id

    rd = SegRunDir(run)
    cfg = rd.load_config()
    man = manifest or cfg.manifest
    if not man or not Path(man).is_file():
        raise DataError(
            f"segmentation run {run}: its table has no sector columns and its manifest {man} is not "
            "available to read the images again; pass --manifest"
        )
    cohort = load_manifest(man, tasks=None, check_files=False)
    out = {}
    want = set(pids)
    for c in cases_of(cohort, need_masks=False):
        mask = rd.masks_dir / f"{safe_id(c.patient_id)}.nii.gz"
        if c.patient_id not in want or not mask.is_file():
            continue
        st = read_case(Case(c.patient_id, c.row, c.image, str(mask), None), cfg)
        m = sector_measures(st.classes, st.spacing)
        out[c.patient_id] = {
            "lge_sectors_pred": m["lge_sectors"],
            "transmurality_max_pred": m["transmurality_max"],
            "transmurality_mean_pred": m["transmurality_mean"],
        }
    return out


def segmentation_measures(
    run: str | Path, *, manifest: str | Path | None = None
) -> tuple[dict[str, dict[str, float]], str]:
    """``{patient_id: {img_*: value}}`` from a segmentation run, and what kind of run it is."""
    run = Path(run)
    from lgenet.runs.seg import segmentation_table

    path, kind = segmentation_table(run)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "patient_id" not in rows[0]:
        raise DataError(f"{path}: no patient rows; is the segmentation run finished?")
    extra: dict[str, dict[str, float]] = {}
    if any(c not in rows[0] for c in _SECTOR_COLUMNS):
        if (run / "masks").is_dir():
            log.info("segmentation run %s predates the sector measures: computing them from its masks", run)
            extra = _sectors_from_masks(run, [r["patient_id"] for r in rows], manifest)
    out = {}
    for r in rows:
        src = dict(r)
        src.update(extra.get(r["patient_id"], {}))
        out[r["patient_id"]] = {k: _float(src.get(col)) for k, col in IMAGE_MEASURES.items()}
    return out, kind


def cnn_scores(run_dir: str | Path) -> dict[str, dict[str, float]]:
    """``{patient_id: {cnn_<task>_<model slug>: out-of-fold probability}}`` of every model of a run."""
    from lgenet.runs.grid import RunDir, parse_model_key

    rd = RunDir(run_dir)
    out: dict[str, dict[str, float]] = {}
    if not rd.oof_path.is_file():
        return out
    for r in rd.read_oof():
        col = f"cnn_{r['task']}_{parse_model_key(r['model']).slug}"
        out.setdefault(r["patient_id"], {})[col] = _float(r.get("prob"))
    return out


def write_measures(path: str | Path, values: Mapping[str, Mapping[str, float]], columns: Sequence[str]) -> Path:
    """A manifest-ready CSV: ``patient_id`` + ``columns`` (blank = missing); join it to a manifest."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["patient_id", *columns])
    for pid in sorted(values):
        row = [pid]
        for c in columns:
            v = values[pid].get(c, math.nan)
            row.append("" if not math.isfinite(v) else f"{v:.6g}")
        w.writerow(row)
    atomic_write_text(Path(path), buf.getvalue())
    return Path(path)
