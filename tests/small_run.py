"""One small finished run shared by test_cam.py, test_report.py and test_privacy.py.

A 16-patient synthetic DICOM cohort whose headers carry lgenet synth's fake identifiers *and* an
explicit, recognisable PatientName / PatientID / birth date / institution / accession number;
then ``run_experiment`` (tiny backbone, 2 epochs, both tasks), which ends by writing the report.
Built once per test session (a module-level cache: a session fixture imported into several test
modules would otherwise be built once per module).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lgenet.config import RunConfig
from lgenet.data.synth import fake_identifiers, make_cohort
from lgenet.workflows.grid import run_experiment

EXPLICIT = {
    "PatientName": "ZQXWIDGET^HORATIO{index:02d}",
    "PatientID": "MRN-77Q99{index:02d}",
    "PatientBirthDate": "19370412",
    "InstitutionName": "Quixotic Memorial Infirmary",
    "AccessionNumber": "ACCZ44719{index:02d}",
}
N_PATIENTS = 16
FRAME_SIZE = 64  # frames; the model sees 48 px, so overlays must be mapped back to 64


def identifiers(index: int, patient_id: str) -> dict[str, str]:
    ids = fake_identifiers(index)
    ids.update({k: v.format(index=index) for k, v in EXPLICIT.items()})
    return ids


def forbidden_strings() -> list[str]:
    """Every identifying string of the cohort's headers, plus variants a report might print."""
    out: set[str] = set()
    keys = (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "InstitutionName",
        "InstitutionAddress",
        "AccessionNumber",
        "ReferringPhysicianName",
        "OperatorsName",
        "StationName",
        "DeviceSerialNumber",
        "StudyID",
        "StudyDate",
    )
    for i in range(1, N_PATIENTS + 1):
        ids = identifiers(i, f"SYN{i:03d}")
        for k in keys:
            v = ids[k]
            out.add(v)
            if "^" in v:
                out.update(p for p in v.split("^") if len(p) >= 5)  # name components on their own
            if k.endswith("Date") and len(v) == 8:
                y, m, d = v[:4], v[4:6], v[6:]
                out.update({f"{y}-{m}-{d}", f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d}.{m}.{y}"})
                if k == "StudyDate":  # a bare 8-digit study date could occur inside a 17-digit float by chance
                    out.discard(v)
    out.update({"ZQXWIDGET", "HORATIO", "77Q99", "Quixotic", "ACCZ44719"})
    out.discard("SYNTHETIC")  # too generic on its own ("synthetic cohort"); the full names are searched
    return sorted(out)


@dataclass
class SmallRun:
    root: Path
    manifest: Path
    run_dir: Path
    result: object


_CACHE: dict[str, SmallRun] = {}


def small_run(tmp_path_factory) -> SmallRun:
    if "run" not in _CACHE:
        root = tmp_path_factory.mktemp("lgenet_small_run")
        manifest = make_cohort(
            root / "cohort",
            n_patients=N_PATIENTS,
            image_size=FRAME_SIZE,
            n_slices=(3, 4),
            seed=3,
            lge_fraction_none=0.4,
            lge_fraction_high=0.3,
            event_rate=0.3,
            identifiers=identifiers,
            progress=False,
        )
        # one torch thread: tiny convolutions gain nothing from more, and a busy 2-core CI box loses a lot
        cfg = RunConfig(
            manifest=str(manifest),
            out=str(root / "run"),
            archs=("tiny",),
            inits=("random",),
            epochs=2,
            image_size=48,
            batch_size=8,
            folds=4,
            seed=0,
            num_threads=1,
        )
        threads = torch.get_num_threads()
        try:
            res = run_experiment(cfg, progress=False)
        finally:
            torch.set_num_threads(threads)
        _CACHE["run"] = SmallRun(root=root, manifest=manifest, run_dir=root / "run", result=res)
    return _CACHE["run"]
