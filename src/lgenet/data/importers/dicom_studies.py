"""Study intake: from a folder of whole DICOM studies to a manifest of LGE short-axis stacks (``lgenet import
dicom``, since 0.3.0).

Every image frame under the folder is indexed from its header (:mod:`lgenet.io.dicom_index`), and each study's
stack is chosen by the rule documented in :mod:`lgenet.data.importers.dicom_choice` (what is skipped and why; the
preferred kind, then more slices, then the later acquisition; one study per patient). No name, ID, date, UID,
description or archive path reaches the manifest or its sidecar; ``id_map`` writes the mapping to the archive's
identifiers, only when asked, to a file the user keeps.

Each imported study's chosen frames are linked (``link='symlink'``, or copied with ``link='copy'``) into
``<manifest stem>_series/<ID>/``, one folder per stack, which is what the manifest's ``image`` column names and
what the readers take as a series folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lgenet import __version__
from lgenet.conventions.files import import_sidecar
from lgenet.data.importers.dicom_choice import PREFER, StudyChoice, choose_stacks, skipped_text
from lgenet.data.manifest import write_manifest
from lgenet.errors import ConfigError, DataError
from lgenet.io.dicom_index import SKIP_KINDS, index_dicom_folder
from lgenet.utils import atomic_write_text

__all__ = ["StudyChoice", "DicomIntake", "choose_stacks", "import_dicom_studies", "intake_summary", "PREFER", "LINKS"]

LINKS = ("symlink", "copy")
_MARKER = ".lgenet-import-dicom"


@dataclass
class DicomIntake:
    """The result of :func:`import_dicom_studies`."""

    manifest: Path
    sidecar: Path
    series_dir: Path
    choices: list[StudyChoice]
    skipped_files: Counter
    id_map: Path | None = None

    @property
    def imported(self) -> list[StudyChoice]:
        return [c for c in self.choices if c.chosen is not None]


def _link_series(choice: StudyChoice, folder: Path, link: str) -> None:
    folder.mkdir(parents=True)
    files = sorted({f.path for f in choice.chosen.frames})
    for i, src in enumerate(files, start=1):
        dst = folder / f"image{i:04d}.dcm"
        if link == "symlink":
            try:
                os.symlink(os.path.abspath(src), dst)
            except OSError as exc:
                raise ConfigError(
                    f"cannot make a symbolic link in {folder} ({exc.strerror}); rerun with --link copy"
                ) from None
        else:
            shutil.copy2(src, dst)


def _study_record(c: StudyChoice) -> dict:
    rec = {
        "patient_id": c.patient_id,
        "study": f"{c.study} of {c.n_studies}",
        "imported": c.chosen is not None,
        "reason": c.reason,
        "series_skipped": dict(sorted(c.skipped.items())),
        "candidates": [s.describe() for s in c.candidates],
    }
    if c.chosen is not None:
        rec["stack"] = {
            "kind": c.chosen.kind,
            "slices": c.chosen.slices,
            "slice_spacing_mm": c.chosen.spacing_mm,
            "inversion_time_ms": c.chosen.inversion_ms,
            "series_number": c.chosen.series_number,
        }
    return rec


def _id_map_text(choices: list[StudyChoice]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["patient_id", "study", "imported", "archive_patient", "study_instance_uid", "study_date",
                "series_instance_uid", "series_number", "first_file"])  # fmt: skip
    for c in choices:
        s = c.chosen or (c.candidates[0] if c.candidates else None)
        f = s.frames[0] if s is not None else None
        w.writerow(
            [
                c.patient_id,
                f"{c.study} of {c.n_studies}",
                int(c.chosen is not None),
                f.patient_key if f else "",
                f.study_uid if f else "",
                f.study_date if f else "",
                f.series_uid if (f and c.chosen is not None) else "",
                s.series_number if (s and c.chosen is not None) else "",
                str(f.path) if f else "",
            ]
        )
    return buf.getvalue()


def import_dicom_studies(
    studies_dir: str | Path,
    out_manifest: str | Path,
    *,
    prefer: str = "magnitude",
    min_slices: int = 2,
    link: str = "symlink",
    id_map: str | Path | None = None,
    on_file: Callable[[], None] | None = None,
) -> DicomIntake:
    """Index ``studies_dir``, choose each study's LGE short-axis stack and write the manifest, its sidecar
    (``<stem>.import.json``: the rule, every study's decision and the counts) and the linked series folders.

    Refused before anything is written: an output inside the archive, ``--out`` not a .csv, a series folder that
    another command wrote, no study with an LGE stack at all."""
    studies_dir, out_manifest = Path(studies_dir), Path(out_manifest)
    if link not in LINKS:
        raise ConfigError(f"--link must be one of {', '.join(LINKS)}; got {link!r}")
    if out_manifest.suffix.lower() != ".csv":
        raise ConfigError(f"--out {out_manifest}: give the manifest's file name, ending in .csv")
    series_dir = out_manifest.with_name(out_manifest.stem + "_series")
    if series_dir.exists() and not (series_dir / _MARKER).is_file():
        raise ConfigError(
            f"{series_dir} exists and was not written by 'lgenet import dicom': it would be replaced. Move it, or "
            "choose another --out"
        )
    index = index_dicom_folder(studies_dir, on_file=on_file)
    if not index.frames:
        raise DataError(
            f"{studies_dir}: no MR image among its {index.files_seen} file(s) "
            f"({_counts_text(index.skipped) or 'nothing readable'}); give the folder that holds the DICOM studies"
        )
    choices = choose_stacks(index, prefer=prefer, min_slices=min_slices)
    if not any(c.chosen is not None for c in choices):
        lines = "\n".join(f"  - {c.patient_id} (study {c.study} of {c.n_studies}): {c.reason}" for c in choices[:30])
        raise DataError(f"{studies_dir}: no study holds an LGE short-axis stack (nothing was written):\n{lines}")
    out_manifest.parent.mkdir(parents=True, exist_ok=True)
    tmp = series_dir.with_name(series_dir.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    (tmp / _MARKER).write_text(f"written by lgenet {__version__} import dicom for {out_manifest.name}\n")
    rows = []
    for c in choices:
        if c.chosen is None:
            continue
        _link_series(c, tmp / c.patient_id, link)
        rows.append({"patient_id": c.patient_id, "image": f"{series_dir.name}/{c.patient_id}"})
    if series_dir.exists():
        shutil.rmtree(series_dir)
    os.replace(tmp, series_dir)
    sidecar = import_sidecar(out_manifest)
    record = {
        "importer": "dicom",
        "lgenet": __version__,
        "options": {"prefer": prefer, "min_slices": min_slices, "link": link},
        "rule": (
            "per study, among its LGE short-axis candidates: the preferred kind, then more slice positions, then the "
            "later acquisition; one study per patient, the earliest with a candidate"
        ),
        "counts": {
            "files": index.files_seen,
            "images": len(index.frames),
            "studies": len(choices),
            "patients": len({c.patient_id for c in choices}),
            "imported": len(rows),
            "files_skipped": dict(sorted(index.skipped.items())),
            "series_skipped": dict(sorted(sum((c.skipped for c in choices), Counter()).items())),
        },
        "studies": [_study_record(c) for c in choices],
    }
    atomic_write_text(sidecar, json.dumps(record, indent=1) + "\n")
    write_manifest(out_manifest, rows)
    id_path = None
    if id_map is not None:
        id_path = Path(id_map)
        atomic_write_text(id_path, _id_map_text(choices))
    return DicomIntake(out_manifest, sidecar, series_dir, choices, index.skipped, id_path)


def _counts_text(c: Counter) -> str:
    return "; ".join(f"{SKIP_KINDS.get(k, k)}: {n}" for k, n in sorted(c.items()))


def intake_summary(res: DicomIntake) -> str:
    """What ``lgenet import dicom`` prints: one line per study and the counts of what was skipped."""
    lines = [
        f"studies {len(res.choices)} of {len({c.patient_id for c in res.choices})} patient(s): imported "
        f"{len(res.imported)}; manifest {res.manifest} ({res.sidecar.name} and {res.series_dir.name}/ beside it)"
    ]
    for c in res.choices:
        st = f" (study {c.study} of {c.n_studies})" if c.n_studies > 1 else ""
        if c.chosen is not None:
            lines.append(f"  {c.patient_id}{st}: {c.chosen.describe()}; {c.reason}")
        else:
            lines.append(f"  {c.patient_id}{st}: not imported: {c.reason}")
    series = sum((c.skipped for c in res.choices), Counter())
    if series:
        lines.append(f"series skipped: {skipped_text(series)}")
    if res.skipped_files:
        lines.append(f"files skipped: {_counts_text(res.skipped_files)}")
    if res.id_map is not None:
        lines.append(
            f"identifier map written to {res.id_map}: it holds the archive's patient IDs, UIDs and dates; keep it "
            "apart from the results"
        )
    return "\n".join(lines)
