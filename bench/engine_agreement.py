"""How far `segment apply --engine onnx` (ONNX Runtime) is from `--engine torch`, and what each costs cold:

    python bench/engine_agreement.py --model runs/bench/emidec_0.3.0.lgenet --manifest runs/bench/seg_c20cv/emidec.csv \
        --work /tmp/engine_agreement

1. the cohort through both engines (`segment apply --manifest ... --no-overlays`), the same bundle, 2 threads;
2. per patient: the share of voxels whose class differs, the myocardium Dice between the two masks, the
   difference in LGE % (whole LV and basal slice), and whether the status (segmented / refused) or the quality
   flag differs;
3. the cold single-stack command with each engine, ``--repeats`` times (the ONNX export, once per bundle, timed
   apart: it runs on the first use only).

Markdown to stdout, with the machine and its load.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _apply(model: str, args: list[str], engine: str, env: dict) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lgenet", "segment", "apply", "--model", model, *args, "--engine", engine,
                    "--threads", "2", "--no-overlays", "-q"], check=True, capture_output=True, env=env)  # fmt: skip
    return time.perf_counter() - t


def _rows(p: Path) -> dict[str, dict]:
    with open(p, newline="") as fh:
        return {r["patient_id"]: r for r in csv.DictReader(fh)}


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a segmentation bundle (.lgenet)")
    ap.add_argument("--manifest", required=True, help="the cohort (patient_id, image)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    import nibabel as nib

    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "LGENET_CACHE": str(work / "cache")}
    load0 = os.getloadavg()[0]
    first_stack = next(iter(_rows(Path(a.manifest)).values()))["image"]
    export = _apply(a.model, [first_stack, "-o", str(work / "export" / "seg.csv")], "onnx", env)
    wall = {e: _apply(a.model, ["--manifest", a.manifest, "--out", str(work / e)], e, env) for e in ("torch", "onnx")}
    t, o = _rows(work / "torch" / "segmentation.csv"), _rows(work / "onnx" / "segmentation.csv")
    os.environ["LGENET_CACHE"] = env["LGENET_CACHE"]
    from lgenet.runs.bundle import open_bundle
    from lgenet.runs.seg import SegRunDir

    values = list(SegRunDir(open_bundle(a.model)).load_config().seg_labels().values())
    myo_values = values[2:4]  # the label values of classes 2 (myocardium) and 3 (enhanced myocardium)
    diff_share, dice, d_lge, d_basal, status, flag = [], [], [], [], 0, 0
    for pid, rt in t.items():
        ro = o[pid]
        mt = np.asarray(nib.load(work / "torch" / rt["mask"]).dataobj)
        mo = np.asarray(nib.load(work / "onnx" / ro["mask"]).dataobj)
        diff_share.append(float((mt != mo).mean()))
        myo_t, myo_o = np.isin(mt, myo_values), np.isin(mo, myo_values)
        inter, tot = float((myo_t & myo_o).sum()), float(myo_t.sum() + myo_o.sum())
        dice.append(1.0 if tot == 0 else 2 * inter / tot)
        for key, acc in (("lge_percent_pred", d_lge), ("lge_percent_basal_pred", d_basal)):
            x, y = _num(rt.get(key)), _num(ro.get(key))
            if math.isfinite(x) and math.isfinite(y):
                acc.append(abs(x - y))
        status += rt.get("status") != ro.get("status")
        flag += rt.get("quality_flag", "") != ro.get("quality_flag", "")
    colds = {e: [] for e in ("torch", "onnx")}
    for i in range(a.repeats):
        for e in colds:
            colds[e].append(_apply(a.model, [first_stack, "-o", str(work / f"cold_{e}{i}" / "seg.csv")], e, env))
    ds, dc, dl, db = map(np.asarray, (diff_share, dice, d_lge, d_basal))
    lines = [
        f"Command: `python bench/engine_agreement.py --model {a.model} --manifest {a.manifest} --work {a.work}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, 2 threads; load {load0:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"| ONNX Runtime vs torch, {len(t)} stacks | value |",
        "|---|---|",
        f"| stacks with identical masks | {int((ds == 0).sum())} of {len(ds)} |",
        f"| voxels of another class: mean, largest share in one stack | {ds.mean():.2e}, {ds.max():.2e} |",
        f"| myocardium Dice between the two masks: lowest, mean | {dc.min():.4f}, {dc.mean():.5f} |",
        f"| LGE % (whole LV), absolute difference: largest, mean (n = {dl.size}) | {dl.max():.3f} pp, {dl.mean():.4f} pp |",
        f"| LGE % (basal slice), absolute difference: largest (n = {db.size}) | {db.max():.3f} pp |",
        f"| status or quality flag changed | {status} / {flag} |",
        f"| cohort wall time, torch / onnx | {wall['torch']:.1f} s / {wall['onnx']:.1f} s |",
        f"| first use: export of the bundle's networks to ONNX, then apply (once per bundle) | {export:.1f} s |",
        f"| cold single stack, torch ({a.repeats} runs) | {', '.join(f'{v:.1f}' for v in colds['torch'])} s |",
        f"| cold single stack, onnx ({a.repeats} runs) | {', '.join(f'{v:.1f}' for v in colds['onnx'])} s |",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
