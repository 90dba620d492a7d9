"""A manifest's columns and rows: what each column holds, one row parsed into a :class:`Record`, and
the checks across rows and for the tasks (used by :func:`lgenet.data.manifest.load_manifest`)."""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from lgenet.errors import ConfigError, ManifestError, ReaderError

__all__ = ["REQUIRED_COLUMNS", "KNOWN_COLUMNS", "TASKS", "MAX_ID_LENGTH", "Record"]

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


@dataclass
class _Sheet:
    """What every row of one manifest is read against: its header, the column index, the unnamed
    columns, the folder relative paths start at, whether files are checked, and the count of bad cells
    per column (filled while reading)."""

    header: list[str]
    index: dict[str, int]
    unnamed: list[int]
    base: Path
    check_files: bool
    bad_columns: dict[str, int]


def _parse_row(r: int, line: int, cells: list[str], sheet: _Sheet):
    header, index, unnamed, base = sheet.header, sheet.index, sheet.unnamed, sheet.base
    check_files, bad_columns = sheet.check_files, sheet.bad_columns
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
