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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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

REQUIRED_COLUMNS = ("patient_id", "image")
#: patient ids name output files (overlays, masks): keep them short
MAX_ID_LENGTH = 64
KNOWN_COLUMNS = ("patient_id", "image", "slice", "lge_percent", "event", "followup_years", "mask")
#: task name -> manifest column holding its label
TASKS = {"lge": "lge_percent", "event": "event"}
_LABEL_COLUMNS = ("lge_percent", "event", "followup_years")
_EXPECT = {
    "patient_id": "expected a study-local ID without '/' or '\\'",
    "image": "expected a DICOM file, a DICOM series folder, a NIfTI (.nii/.nii.gz), a PNG or a TIFF",
    "slice": "expected blank, 'basal' or an integer index such as 0 or -1 (apex->base order)",
    "lge_percent": "expected a percentage between 0 and 100 or blank",
    "event": "expected 1 (event), 0 (no event), true/false or blank",
    "followup_years": "expected a number of years >= 0 or blank",
}


@dataclass(frozen=True)
class Record:
    """One manifest row (``row`` = 1-based data row, ``line`` = CSV line number)."""

    row: int
    patient_id: str
    image: Path
    slice: str | int = "basal"
    lge_percent: float | None = None
    event: int | None = None
    followup_years: float | None = None
    mask: Path | None = None
    covariates: dict[str, str] = field(default_factory=dict)
    line: int = 0


def _label_of(task: str, rec: Record, threshold: float) -> int | None:
    if task == "lge":
        return None if rec.lge_percent is None else int(rec.lge_percent > threshold)
    return rec.event


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; known tasks: {', '.join(map(repr, TASKS))}")
    return task


@dataclass(frozen=True)
class Cohort:
    """A validated manifest. Build it with :func:`load_manifest`."""

    path: Path
    records: list[Record]
    lge_threshold: float = 5.7
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
def _same(a: float, b: float) -> bool:
    return a == b or math.isnan(a) or math.isnan(b)


def _show(value: str, limit: int = 60) -> str:
    text = value if len(value) <= limit else value[: limit - 3] + "..."
    return "'" + text.replace("'", "\\'") + "'"


def _where(row: int, line: int, pid: str) -> str:
    return f"row {row} (line {line}), patient {pid or '<blank>'}"


def _to_float(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _parse_slice(text: str) -> str | int | None:
    if text == "" or text.lower() == "basal":
        return "basal"
    try:
        return int(text)
    except ValueError:
        return None


def _parse_event(text: str) -> int | None:
    low = text.lower()
    if low in ("true", "false"):
        return int(low == "true")
    v = _to_float(text)
    if v in (0.0, 1.0):  # '0', '1', and '1.0' as written by pandas when a column has blanks
        return int(v)
    return None


def _resolve(base: Path, text: str) -> Path:
    p = Path(text).expanduser()
    return Path(os.path.normpath(p if p.is_absolute() else base / p))


def _reader_reason(exc: ReaderError, p: Path) -> str:
    msg = str(exc)
    prefix = f"{p}: "
    return msg[len(prefix) :] if msg.startswith(prefix) else msg


# ----------------------------------------------------------------------------- loading
def _read_text(path: Path) -> str:
    if not path.exists():
        raise ManifestError(path, [f"manifest file not found: {path}"])
    if path.is_dir():
        raise ManifestError(path, ["is a folder, not a CSV file; give the path of the manifest CSV"])
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ManifestError(path, [f"cannot read the file: {exc}"]) from exc
    if data[:4] == b"PK\x03\x04" or b"\x00" in data[:4096]:
        raise ManifestError(
            path,
            ["is not a CSV text file (binary content; a spreadsheet?); export it as 'CSV UTF-8' with comma separators"],
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            path,
            [f"is not UTF-8 text (undecodable byte at offset {exc.start}); save it as 'CSV UTF-8'"],
        ) from exc
    if not text.strip():
        raise ManifestError(
            path, ["file is empty; expected a header line such as 'patient_id,image,lge_percent,event'"]
        )
    return text


def _rows(path: Path, text: str) -> tuple[list[str], int, list[tuple[int, list[str]]]]:
    """Header cells, header line number, and (start line, cells) of each non-blank data row."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line = 0
    rows: list[tuple[int, list[str]]] = []
    prev_end = 0
    try:
        for cells in reader:
            start, prev_end = prev_end + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header, header_line = [c.strip() for c in cells], start
            else:
                rows.append((start, [c.strip() for c in cells]))
    except csv.Error as exc:
        raise ManifestError(path, [f"line {reader.line_num}: not valid CSV ({exc})"]) from exc
    if header is None:  # only separators and blank cells
        raise ManifestError(path, ["file has no header; expected a header line such as 'patient_id,image'"])
    return header, header_line, rows


def _header_problems(header: list[str]) -> list[str]:
    problems = []
    found = ", ".join(f"'{c}'" for c in header if c) or "none"
    if len(header) == 1 and any(sep in header[0] for sep in (";", "\t")):
        sep = "semicolons" if ";" in header[0] else "tabs"
        return [
            f"header '{header[0]}' looks separated by {sep}; lgenet reads comma-separated files "
            "(export as 'CSV UTF-8 (comma delimited)')"
        ]
    counts: dict[str, int] = {}
    for c in header:
        if c:
            counts[c] = counts.get(c, 0) + 1
    for c, n in counts.items():
        if n > 1:
            problems.append(f"duplicate column name '{c}' ({n} columns); rename or remove the copies")
    for c in REQUIRED_COLUMNS:
        if c not in counts:
            problems.append(f"missing required column '{c}'; columns found: {found}")
    return problems


def load_manifest(
    path: str | Path,
    *,
    tasks: str | Iterable[str] | None = None,
    lge_threshold: float = 5.7,
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
    for r, (line, cells) in enumerate(rows, start=1):
        rec, row_problems = _parse_row(r, line, cells, header, index, unnamed, base, check_files, bad_columns)
        problems += row_problems
        if rec is not None:
            records.append(rec)

    problems += _cross_row_problems(records)
    problems += _task_problems(want, header, records, thr, bad_columns)
    if problems:
        raise ManifestError(path, problems)
    columns = tuple(c for c in dict.fromkeys(header) if c)
    return Cohort(path=path, records=records, lge_threshold=thr, columns=columns)


def _parse_row(r, line, cells, header, index, unnamed, base, check_files, bad_columns):
    problems: list[str] = []
    cell = lambda col: cells[index[col]] if col in index and index[col] < len(cells) else ""  # noqa: E731
    pid = cell("patient_id")
    where = _where(r, line, pid)

    def bad(col: str, value: str, why: str, expect: str | None = None) -> None:
        problems.append(f"{where}: column '{col}' = {_show(value)} {why}; {expect or _EXPECT[col]}")
        bad_columns[col] = bad_columns.get(col, 0) + 1

    if len(cells) > len(header) and any(c for c in cells[len(header) :]):
        problems.append(
            f"{where}: has {len(cells)} cells but the header has {len(header)} columns; quote "
            "values that contain commas"
        )
    for i in unnamed:
        if i < len(cells) and cells[i]:
            problems.append(
                f"{where}: column {i + 1} has no name in the header but holds {_show(cells[i])}; "
                "name the column or empty it"
            )
    if "patient_id" in index:
        if pid == "":
            problems.append(f"{where}: column 'patient_id' is blank; every row needs a patient ID")
        elif "/" in pid or "\\" in pid:
            bad("patient_id", pid, "contains a path separator")
        elif pid in (".", ".."):
            bad("patient_id", pid, "is not a valid ID")
        elif len(pid) > MAX_ID_LENGTH:
            bad(
                "patient_id",
                pid[:20] + "...",
                f"is {len(pid)} characters long (at most {MAX_ID_LENGTH}: it names output files)",
            )
        elif any(ord(ch) < 32 or ord(ch) == 127 for ch in pid):
            bad("patient_id", pid, "contains a control character")
    image = cell("image")
    image_path = None
    if "image" in index:
        if image == "":
            problems.append(f"{where}: column 'image' is blank; give the path of the patient's image")
        else:
            image_path = _resolve(base, image)
            if check_files:
                why, expect = _file_problem(image_path, base)
                if why:
                    bad("image", image, why, expect)
    sl = _parse_slice(cell("slice"))
    if sl is None:
        bad("slice", cell("slice"), "is not 'basal' or an integer")
    lge = None
    if cell("lge_percent"):
        lge = _to_float(cell("lge_percent").removesuffix("%").strip())
        if lge is None:
            bad("lge_percent", cell("lge_percent"), "is not a number")
        elif not 0 <= lge <= 100:
            bad("lge_percent", cell("lge_percent"), "is outside 0..100")
            lge = None
    event = None
    if cell("event"):
        event = _parse_event(cell("event"))
        if event is None:
            bad("event", cell("event"), "is not 0/1")
    fu = None
    if cell("followup_years"):
        fu = _to_float(cell("followup_years"))
        if fu is None:
            bad("followup_years", cell("followup_years"), "is not a number")
        elif fu < 0:
            bad("followup_years", cell("followup_years"), "is negative")
            fu = None
    mask_path = None
    if cell("mask"):
        mask_path = _resolve(base, cell("mask"))
        if check_files:
            why, expect = _file_problem(mask_path, base)
            if why:
                bad(
                    "mask",
                    cell("mask"),
                    why,
                    expect or "expected a label map (NIfTI, PNG, TIFF or DICOM) aligned with the image, or blank",
                )
    if image_path is None or pid == "":
        return None, problems
    covariates = {c: cell(c) for c in index if c not in KNOWN_COLUMNS}
    rec = Record(
        row=r,
        patient_id=pid,
        image=image_path,
        slice=sl if sl is not None else "basal",
        lge_percent=lge,
        event=event,
        followup_years=fu,
        mask=mask_path,
        covariates=covariates,
        line=line,
    )
    return rec, problems


def _file_problem(p: Path, base: Path) -> tuple[str | None, str | None]:
    """(what is wrong, how to fix it or None for the column's default) for an image/mask path."""
    from lgenet.io import detect_format

    if not p.exists():
        return (
            f"was not found (looked for {p})",
            f"relative paths start at the manifest's folder {base}; fix the path or make it absolute",
        )
    try:
        detect_format(p)
    except ReaderError as exc:
        return f"is not a supported image ({_reader_reason(exc, p)})", None
    return None, None


def _cross_row_problems(records: list[Record]) -> list[str]:
    problems: list[str] = []
    first_key: dict[tuple, Record] = {}
    image_owner: dict[Path, Record] = {}
    label_seen: dict[tuple[str, str], Record] = {}
    for rec in records:
        key = (rec.patient_id, rec.image, rec.slice)
        if key in first_key:
            p = first_key[key]
            problems.append(
                f"{_where(rec.row, rec.line, rec.patient_id)}: duplicates row {p.row} (line {p.line})"
                " (same patient_id, image and slice); remove one of them"
            )
            continue
        first_key[key] = rec
        owner = image_owner.setdefault(rec.image, rec)
        if owner.patient_id != rec.patient_id:
            problems.append(
                f"{_where(rec.row, rec.line, rec.patient_id)}: column 'image' points at the same "
                f"image as row {owner.row} (line {owner.line}) of patient {owner.patient_id}; an "
                "image belongs to one patient (shared images leak across folds)"
            )
        for col in _LABEL_COLUMNS:
            v = getattr(rec, col)
            if v is None:
                continue
            prev = label_seen.setdefault((rec.patient_id, col), rec)
            pv = getattr(prev, col)
            if pv != v:
                problems.append(
                    f"patient {rec.patient_id}: column '{col}' disagrees between row {prev.row} "
                    f"(line {prev.line}) and row {rec.row} (line {rec.line}) ({pv:g} vs {v:g}); "
                    "all rows of one patient must carry the same labels"
                )
    return problems


def _task_problems(want, header, records, thr, bad_columns) -> list[str]:
    problems = []
    found = ", ".join(f"'{c}'" for c in header if c) or "none"
    for t in want:
        col = TASKS[t]
        if col not in header:
            problems.append(f"task '{t}' needs column '{col}', which is absent; columns found: {found}")
            continue
        labels: dict[str, int] = {}
        for rec in records:
            y = _label_of(t, rec, thr)
            if y is not None:
                labels.setdefault(rec.patient_id, y)
        if not labels:
            problems.append(f"task '{t}': column '{col}' has no valid values; fill it in or drop the task")
            continue
        if bad_columns.get(col):
            continue  # class counts are meaningless until the bad cells are fixed
        pos = sum(labels.values())
        neg = len(labels) - pos
        rule = f" (lge_percent > {thr:g})" if t == "lge" else ""
        if pos == 0:
            problems.append(
                f"task '{t}' has no positive patients{rule} among {neg} labelled; need at least one per class"
            )
        if neg == 0:
            problems.append(f"task '{t}' has no negative patients among {pos} labelled; need at least one per class")
    return problems


# ----------------------------------------------------------------------------- writing
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
