"""EMIDEC converted to DICOM series, through the field path (issue "field formats"):

    python bench/emidec_dicom_check.py --run runs/bench/seg_c18/run --out runs/bench/emidec_dicom [--limit 30]

Each EMIDEC stack (image and expert mask) is written as a DICOM MR series on an oblique short-axis geometry
(``lgenet.data.synth.dicom``: 12-bit stored values, planted non-EMIDEC identifiers), the series are gathered in one
archive folder, and then the commands a user runs take over:

1. ``lgenet import dicom`` (with ``--id-map``, to map the study-local IDs back to the EMIDEC cases here only);
2. ``lgenet segment apply --dicom-seg`` on the imported cohort, and the same run on the original NIfTI stacks;
3. ``dciodvfy`` on every DICOM SEG and SR written (errors counted; warnings tallied by kind);
4. every SEG read back (``lgenet.io.dicom_seg.read_dicom_seg``) against the NIfTI mask of the same job;
5. ``lgenet segment measure --dicom-seg`` on the SEGs, against apply's numbers;
6. the DICOM path's masks against the NIfTI path's (Dice per patient, LGE % difference): the same pixels, so they
   should agree but for the 12-bit storage.

Markdown to stdout and ``summary.md`` / ``summary.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _rows(p: Path) -> list[dict]:
    with open(p, newline="") as fh:
        return list(csv.DictReader(fh))


def _lgenet(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "lgenet", *map(str, args)], check=True)


class _Stack:
    """What lgenet.data.synth.dicom's writers read from a phantom stack."""

    def __init__(self, image, labels, spacing, slice_mm):
        self.image, self.labels = image, labels
        self.pixel_spacing, self.slice_spacing, self.slice_thickness = tuple(spacing), slice_mm, slice_mm


def convert(emidec: Path, out: Path, limit: int | None) -> list[str]:
    from lgenet.conventions.labels import EMIDEC
    from lgenet.data.stacks import read_stack
    from lgenet.data.synth.dicom import SaxGeometry, SeriesHeader, write_dicom_series

    cases = sorted(p.name for p in emidec.glob("Case_*") if p.is_dir())[:limit]
    rng = np.random.default_rng(0)
    for i, case in enumerate(cases):
        st = read_stack(emidec / case / "Images" / f"{case}.nii.gz", emidec / case / "Contours" / f"{case}.nii.gz",
                        labels=EMIDEC)  # fmt: skip
        slice_mm = float(st.meta.get("slice_spacing") or st.meta.get("slice_thickness") or 10.0)
        img = st.image - float(st.image.min())
        stack = _Stack(img / max(float(img.max()), 1e-6), st.classes, st.spacing, slice_mm)
        geom = SaxGeometry(rng, stack)
        ids = {"PatientName": f"PLANTED^NAME{i:03d}", "PatientID": f"PLANTEDID{i:03d}", "StudyDate": "20200131",
               "PatientBirthDate": "19500101", "AccessionNumber": f"PLANTEDACC{i:03d}"}  # fmt: skip
        header = SeriesHeader(uid_key=("emidec-dicom", case), identifiers=ids, age=60, sex=0, gain=1000.0)
        names = [f"IM{k:03d}.dcm" for k in range(img.shape[0])]
        write_dicom_series(out / f"study{i:03d}", stack, geom, header, names)
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a finished segmentation run")
    ap.add_argument("--out", required=True)
    ap.add_argument("--emidec", default=str(REPO.parent / "shared" / "data" / "emidec"))
    ap.add_argument("--limit", type=int, help="the first N cases only")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    from lgenet.io.dicom_seg import read_dicom_seg

    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    t0, load0 = time.time(), os.getloadavg()[0]
    archive, private = out / "archive", out / "private"
    cases = convert(Path(a.emidec), archive, a.limit)
    _lgenet("import", "dicom", archive, "--out", out / "cohort.csv", "--id-map", private / "map.csv")
    idmap = {r["patient_id"]: r for r in _rows(private / "map.csv")}
    study_of = {pid: Path(r["first_file"]).parent.name for pid, r in idmap.items()}
    case_of = {pid: cases[int(s[len("study") :])] for pid, s in study_of.items()}
    _lgenet("segment", "apply", "--run", a.run, "--manifest", out / "cohort.csv", "--out", out / "applied",
            "--dicom-seg", "--no-overlays", "--threads", a.threads, "-q")  # fmt: skip
    nifti = out / "nifti.csv"
    with open(nifti, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "image"])
        for pid, case in sorted(case_of.items()):
            w.writerow([pid, str(Path(a.emidec) / case / "Images" / f"{case}.nii.gz")])
    _lgenet("segment", "apply", "--run", a.run, "--manifest", nifti, "--out", out / "applied_nifti", "--no-overlays",
            "--threads", a.threads, "-q")  # fmt: skip
    rows = {r["patient_id"]: r for r in _rows(out / "applied" / "segmentation.csv")}
    rows_n = {r["patient_id"]: r for r in _rows(out / "applied_nifti" / "segmentation.csv")}
    # dciodvfy on every SEG and SR
    errors, warnings, n_obj = 0, Counter(), 0
    for r in rows.values():
        for f in (r["dicom_seg"], r["dicom_sr"]):
            if not f:
                continue
            n_obj += 1
            p = subprocess.run(["dciodvfy", str(out / "applied" / f)], capture_output=True, text=True, check=False)
            for ln in (p.stdout + p.stderr).splitlines():
                if ln.startswith("Error"):
                    errors += 1
                elif ln.startswith("Warning"):
                    warnings[ln.split(" - ", 1)[-1][:90]] += 1
    # the SEG read back against the NIfTI mask of the same job; the DICOM path against the NIfTI path
    from lgenet.data.stacks import read_stack
    from lgenet.evaluation.segmentation import dice
    from lgenet.runs.seg import SegRunDir

    labels = SegRunDir(a.run).load_config().seg_labels()
    exact, dice_paths, lge_diff = 0, [], []
    for pid, r in rows.items():
        image = out / "cohort_series" / pid
        st = read_stack(image, out / "applied" / r["mask"], labels=labels)
        seg = read_dicom_seg(out / "applied" / r["dicom_seg"], image)
        exact += int(np.array_equal(seg, st.classes))
        case = case_of[pid]
        stn = read_stack(Path(a.emidec) / case / "Images" / f"{case}.nii.gz", out / "applied_nifti" / rows_n[pid]["mask"],
                         labels=labels)  # fmt: skip
        dice_paths.append(dice(st.classes >= 2, stn.classes >= 2))
        try:
            lge_diff.append(abs(float(r["lge_percent_pred"]) - float(rows_n[pid]["lge_percent_pred"])))
        except ValueError:
            pass
    _lgenet("segment", "measure", "--manifest", out / "cohort.csv", "--masks", out / "applied" / "dicom_seg",
            "--dicom-seg", "--out", out / "measured", "--no-overlays")  # fmt: skip
    same = 0
    measured = 0
    for m in _rows(out / "measured" / "measures.csv"):
        r = rows[m["patient_id"]]
        if r["status"] != "segmented":
            continue
        measured += 1
        same += int(abs(float(m["lge_percent"]) - float(r["lge_percent_pred"])) < 1e-6)
    res = {
        "cases": len(cases),
        "imported": len(rows),
        "dicom_objects": n_obj,
        "dciodvfy_errors": errors,
        "dciodvfy_warnings": dict(warnings.most_common()),
        "seg_round_trip_exact": exact,
        "measure_same_as_apply": f"{same} of {measured}",
        "dicom_vs_nifti_myo_dice_min": float(np.min(dice_paths)) if dice_paths else None,
        "dicom_vs_nifti_myo_dice_mean": float(np.mean(dice_paths)) if dice_paths else None,
        "dicom_vs_nifti_lge_abs_diff_max_pp": float(np.max(lge_diff)) if lge_diff else None,
        "minutes": round((time.time() - t0) / 60, 1),
        "load_start": load0,
        "load_end": os.getloadavg()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
    }
    md = "\n".join(
        [
            f"Command: `python bench/emidec_dicom_check.py --run {a.run} --out {a.out}"
            + (f" --limit {a.limit}`" if a.limit else "`"),
            f"Machine: {res['machine']}; load {load0:.2f} at the start, {res['load_end']:.2f} at the end; "
            f"{res['minutes']} min; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t0))}",
            "",
            "| check | result |",
            "|---|---|",
            f"| EMIDEC stacks converted, imported by `import dicom` | {res['cases']}, {res['imported']} |",
            f"| DICOM SEG + SR objects written | {n_obj} |",
            f"| dciodvfy errors | {errors} |",
            f"| dciodvfy warnings (by kind) | {'; '.join(f'{k}: {v}' for k, v in warnings.most_common()) or 'none'} |",
            f"| SEG read back = the job's NIfTI mask | {exact} of {len(rows)} exact |",
            f"| `segment measure --dicom-seg` = apply's LGE % | {res['measure_same_as_apply']} measured masks |",
            f"| DICOM path vs NIfTI path: myocardium Dice, min / mean | {res['dicom_vs_nifti_myo_dice_min']:.4f} / "
            f"{res['dicom_vs_nifti_myo_dice_mean']:.4f} |",
            f"| DICOM path vs NIfTI path: largest LGE % difference | {res['dicom_vs_nifti_lge_abs_diff_max_pp']:.3f} pp |",
        ]
    )
    (out / "summary.json").write_text(json.dumps(res, indent=1))
    (out / "summary.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
