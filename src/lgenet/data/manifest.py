"""Cohort manifest: one CSV that lists the images and labels of a study.

Format (UTF-8, optionally with a byte-order mark; comma-separated; first line = header)::

    patient_id,image,slice,lge_percent,event,followup_years,mask,age
    P001,dicom/P001/sax_lge,basal,2.1,0,5.4,,61
    P002,nifti/P002.nii.gz,-1,12.5,1,1.9,masks/P002.nii.gz,55

=================  ========  ================================================================
column             required  meaning
=================  ========  ================================================================
``patient_id``     yes       study-local ID (no '/' or '\\'); never a name or hospital number
``image``          yes       path relative to the manifest's folder, or absolute: a DICOM file,
                             a DICOM series folder, a NIfTI (.nii/.nii.gz), a PNG or a TIFF
``slice``          no        blank or ``basal`` (default), or an integer index into the stack
                             ordered apex->base (-1 = basal); see :mod:`lgenet.io`
``lge_percent``    no        LGE burden in % of myocardium, 0..100; blank = unknown.
                             Task ``lge`` label = 1 if ``lge_percent > lge_threshold`` (5.7)
``event``          no        clinical event during follow-up: 0/1 (or false/true); blank = unknown
``followup_years`` no        years of follow-up, >= 0; blank = unknown
``mask``           no        label map aligned with the image (used for CAM sanity checks)
anything else      no        clinical covariates, kept as text
                             (:meth:`Cohort.covariates_numeric` converts them)
=================  ========  ================================================================

Several rows may share a patient (several frames of one patient); their labels must agree.
Row numbers in messages count data rows from 1 (row 1 = the line after the header) and the CSV
line number is given too. :func:`load_manifest` checks the whole file before anything is trained
and reports every bad cell at once in one :class:`~lgenet.errors.ManifestError`.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.conventions.thresholds import LGE_THRESHOLD
from lgenet.data.manifest_rows import (
    KNOWN_COLUMNS,
    REQUIRED_COLUMNS,
    TASKS,
    Record,
    _check_task,
    _cross_row_problems,
    _header_problems,
    _label_of,
    _parse_row,
    _read_text,
    _rows,
    _same,
    _Sheet,
    _show,
    _task_problems,
    _to_float,
    _where,
)
from lgenet.errors import ConfigError, ManifestError, ReaderError
from lgenet.utils import atomic_write_text

__all__ = [
    "REQUIRED_COLUMNS",
    "KNOWN_COLUMNS",
    "TASKS",
    "Record",
    "Cohort",
    "load_manifest",
    "write_manifest",
    "check_images",
]


@dataclass(frozen=True)
class Cohort:
    """A validated manifest. Build it with :func:`load_manifest`."""

    path: Path
    records: list[Record]
    lge_threshold: float = LGE_THRESHOLD
    columns: tuple[str, ...] = ()

    @property
    def patient_ids(self) -> list[str]:
        """Every patient, sorted."""
        return sorted({r.patient_id for r in self.records})

    @property
    def covariate_names(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in KNOWN_COLUMNS)

    @property
    def available_tasks(self) -> tuple[str, ...]:
        """Tasks with at least one labelled patient, in :data:`TASKS` order."""
        return tuple(t for t in TASKS if self.labels(t))

    def why_no_labels(self, task: str) -> str:
        """Why ``task`` has no labelled patient, in words: its label column is absent (the manifest's columns
        and the closest name, e.g. a misspelled ``lge_precent``), or present with no usable cell."""
        import difflib

        col = TASKS[task]
        if col in self.columns:
            return f"task {task!r}: column {col!r} of manifest {self.path} has no labelled patient (every cell blank)"
        close = difflib.get_close_matches(col, list(self.columns), n=1, cutoff=0.6)
        return (
            f"task {task!r} needs a column {col!r}, which manifest {self.path} lacks"
            + (f" (did you mean {close[0]!r}? rename it to {col!r})" if close else "")
            + f"; its columns: {', '.join(self.columns)}"
        )

    def labels(self, task: str) -> dict[str, int]:
        """``{patient_id: 0/1}`` for the patients labelled for ``task`` ('lge' or 'event')."""
        _check_task(task)
        out: dict[str, int] = {}
        for rec in self.records:
            y = _label_of(task, rec, self.lge_threshold)
            if y is not None and rec.patient_id not in out:
                out[rec.patient_id] = y
        return dict(sorted(out.items()))

    def patients(self, task: str) -> list[str]:
        """Sorted IDs of the patients with a label for ``task``."""
        return sorted(self.labels(task))

    def records_for(self, patient_id: str) -> list[Record]:
        return [r for r in self.records if r.patient_id == patient_id]

    def followup_years(self) -> dict[str, float]:
        """``{patient_id: years}`` for patients whose follow-up is known."""
        out: dict[str, float] = {}
        for r in self.records:
            if r.followup_years is not None:
                out.setdefault(r.patient_id, r.followup_years)
        return dict(sorted(out.items()))

    def covariates_numeric(self, names: str | Sequence[str]) -> dict[str, dict[str, float]]:
        """``{patient_id: {name: value}}`` with covariates parsed as floats (blank -> NaN).

        Raises :class:`ManifestError` listing every absent column, non-numeric cell, and
        covariate that differs between rows of one patient.
        """
        names = [names] if isinstance(names, str) else list(names)
        found = self.covariate_names
        problems = [
            f"covariate column '{n}' is absent; covariate columns found: "
            + (", ".join(f"'{c}'" for c in found) or "none")
            for n in names
            if n not in found
        ]
        if problems:
            raise ManifestError(self.path, problems)
        out: dict[str, dict[str, float]] = {}
        seen: dict[tuple[str, str], tuple[Record, float]] = {}
        for rec in self.records:
            vals = out.setdefault(rec.patient_id, {})
            for n in names:
                raw = rec.covariates.get(n, "")
                if raw == "":
                    v = math.nan
                else:
                    v = _to_float(raw)
                    if v is None:
                        problems.append(
                            f"{_where(rec.row, rec.line, rec.patient_id)}: column '{n}' = "
                            f"{_show(raw)} is not a number; expected a number (encode categories "
                            "as 0/1) or blank"
                        )
                        continue
                prev = seen.get((rec.patient_id, n))
                if prev is not None and not _same(prev[1], v):
                    p = prev[0]
                    problems.append(
                        f"patient {rec.patient_id}: column '{n}' differs between row {p.row} "
                        f"(line {p.line}) and row {rec.row} (line {rec.line}) "
                        f"({_show(p.covariates.get(n, ''))} vs {_show(raw)}); one value per patient"
                    )
                    continue
                if prev is None or math.isnan(prev[1]):
                    seen[(rec.patient_id, n)] = (rec, v)
                    vals[n] = v
        if problems:
            raise ManifestError(self.path, problems)
        return dict(sorted(out.items()))


# ----------------------------------------------------------------------------- parsing helpers


def load_manifest(
    path: str | Path,
    *,
    tasks: str | Iterable[str] | None = None,
    lge_threshold: float = LGE_THRESHOLD,
    check_files: bool = True,
) -> Cohort:
    """Read and fully validate a manifest CSV (see the module docstring for the format).

    Args:
        path: the CSV file; relative image/mask paths are resolved against its folder.
        tasks: tasks that must be usable ('lge', 'event'): their column must exist, hold
            labels, and both classes must be present. ``None`` requires no task.
        lge_threshold: LGE burden (%) above which the ``lge`` label is 1.
        check_files: check that every image/mask exists and is a supported kind.

    Raises:
        ManifestError: listing every problem found (row, line, patient, column, value, fix).
        ConfigError: unknown task name or invalid threshold.
    """
    path = Path(path)
    if tasks is None:
        want: tuple[str, ...] = ()
    else:
        want = (tasks,) if isinstance(tasks, str) else tuple(tasks)
        for t in want:
            _check_task(t)
    thr = _to_float(str(lge_threshold)) if not isinstance(lge_threshold, bool) else None
    if thr is None or not 0 <= thr < 100:
        raise ConfigError(f"lge_threshold must be a number in [0, 100), got {lge_threshold!r}")

    text = _read_text(path)
    header, header_line, rows = _rows(path, text)
    problems = _header_problems(header)
    if problems and len(header) == 1:
        raise ManifestError(path, problems)
    if not rows:
        raise ManifestError(
            path, problems + [f"no data rows after the header (line {header_line}); add one row per image"]
        )

    index: dict[str, int] = {}
    for i, c in enumerate(header):
        if c and c not in index:
            index[c] = i
    unnamed = [i for i, c in enumerate(header) if not c]
    base = path.resolve().parent
    records: list[Record] = []
    bad_columns: dict[str, int] = {}
    sheet = _Sheet(header, index, unnamed, base, check_files, bad_columns)
    for r, (line, cells) in enumerate(rows, start=1):
        rec, row_problems = _parse_row(r, line, cells, sheet)
        problems += row_problems
        if rec is not None:
            records.append(rec)

    problems += _cross_row_problems(records)
    problems += _task_problems(want, header, records, thr, bad_columns)
    if problems:
        raise ManifestError(path, problems)
    columns = tuple(c for c in dict.fromkeys(header) if c)
    return Cohort(path=path, records=records, lge_threshold=thr, columns=columns)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (np.integer,)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def write_manifest(
    path: str | Path, rows: Sequence[Mapping[str, Any]], *, columns: Sequence[str] | None = None
) -> Path:
    """Write ``rows`` as a manifest CSV atomically (a crash never leaves a half-written file).

    Column order: ``columns`` if given, else the known columns present (in :data:`KNOWN_COLUMNS`
    order) followed by the other keys in first-seen order. ``None``/NaN become blank cells,
    booleans 1/0, paths are written as given (relative ones are read back relative to the
    manifest's folder).
    """
    keys: dict[str, None] = {}
    for i, row in enumerate(rows):
        for k in row:
            if not isinstance(k, str) or not k.strip():
                raise ValueError(f"write_manifest: row {i + 1} has an invalid column name {k!r}")
            keys.setdefault(k, None)
    if columns is None:
        cols = [c for c in KNOWN_COLUMNS if c in keys] + [k for k in keys if k not in KNOWN_COLUMNS]
        for c in REQUIRED_COLUMNS:
            if c not in cols:
                cols.insert(REQUIRED_COLUMNS.index(c), c)
    else:
        cols = list(columns)
        extra = [k for k in keys if k not in cols]
        if extra:
            raise ValueError(f"write_manifest: columns {extra} are in rows but not in `columns`")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in cols])
    return atomic_write_text(path, buf.getvalue())


def check_images(cohort: Cohort, *, nifti_slice_axis: int = 2, nifti_basal_end: str = "last") -> list[dict]:
    """Open every record's frame; raise one :class:`ManifestError` listing all that fail.

    Returns the safe metadata of each frame, in record order. Slower than
    :func:`load_manifest` (it decodes every image): run it once before a long training.
    """
    from lgenet.io import read_frame

    metas, problems = [], []
    for rec in cohort.records:
        try:
            _, meta = read_frame(
                rec.image,
                slice=rec.slice,
                nifti_slice_axis=nifti_slice_axis,
                nifti_basal_end=nifti_basal_end,
            )
            metas.append(meta)
        except ReaderError as exc:
            problems.append(f"{_where(rec.row, rec.line, rec.patient_id)}: column 'image': {exc}")
    if problems:
        raise ManifestError(cohort.path, problems)
    return metas
