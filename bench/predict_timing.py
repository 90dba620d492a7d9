"""Where the time of `lgenet predict` + Grad-CAM goes, for one patient, at the seed protocol's sizes (issue "model
bundles": < 2 s for one patient with the 4-fold ensemble on a CPU):

    python bench/predict_timing.py --work /tmp/predict_timing --arch resnet50 --threads 2

1. a classifier bundle at the seed's size: `--bundle` given, or made here from a 4-fold `lgenet run` of ``--arch``
   (random initial weights, 1 epoch: the timing does not depend on what the weights learnt) on a 32-patient
   `lgenet synth` cohort, exported with `lgenet model export`;
2. the whole command, process start to CSV and overlay, ``--repeats`` times cold (a fresh process each time):
   `lgenet predict --model BUNDLE --task lge DICOM_SERIES --cam DIR -o p.csv`;
3. in one fresh process, each phase in turn: importing torch and lgenet's predict code; opening the bundle and
   building the fold models; reading and preprocessing the frame; the fold ensemble's probabilities; the
   fold-ensemble Grad-CAM and its overlay PNG; then six more patients with the models loaded (warm: what each
   patient of a cohort costs, reading, probabilities, CAM and PNG included), their median and range.

Markdown to stdout, with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

SEED_SIZE = {"resnet50": 224, "inceptionv3": 299}

PHASES = r"""
import time, sys, json
t = [time.perf_counter()]
import torch
torch.set_num_threads(int(sys.argv[4]))
from lgenet.runs.bundle import open_bundle
from lgenet.runs.grid import RunDir
from lgenet.io import read_frame
from lgenet.data.preprocess import Preprocessor
from lgenet.training.trainer import predict_proba
from lgenet.explain.cam import CamSpec
from lgenet.explain.ensemble import write_ensemble_overlays
import timm, pytorch_grad_cam  # imported lazily by lgenet: counted here, not in the phases below
t.append(time.perf_counter())
run = open_bundle(sys.argv[1], kind="classifier")
rd = RunDir(run)
cfg = rd.load_config()
name = rd.choose_model("lge")
models = rd.load_fold_models("lge", name, cfg.folds)
t.append(time.perf_counter())
frame, meta = read_frame(sys.argv[2], slice="basal")
x = Preprocessor(models[0].spec.image_size, tuple(cfg.intensity_percentiles))(frame)[None]
t.append(time.perf_counter())
import numpy as np
def one(path, out):
    frame, meta = read_frame(path, slice="basal")
    x = Preprocessor(models[0].spec.image_size, tuple(cfg.intensity_percentiles))(frame)[None]
    probs = np.stack([predict_proba(m, x) for m in models], axis=1)
    write_ensemble_overlays(models, [frame], x, [path], out, spec=CamSpec(method="gradcam"),
                            percentiles=tuple(cfg.intensity_percentiles), ids=["p"], probs=probs.mean(axis=1))
probs = np.stack([predict_proba(m, x) for m in models], axis=1)
t.append(time.perf_counter())
write_ensemble_overlays(models, [frame], x, [sys.argv[2]], sys.argv[5], spec=CamSpec(method="gradcam"),
                        percentiles=tuple(cfg.intensity_percentiles), ids=["p1"], probs=probs.mean(axis=1))
t.append(time.perf_counter())
warm = []
for i, path in enumerate(sys.argv[3].split(",")):
    w0 = time.perf_counter()
    one(path, sys.argv[5] + f"_{i}")
    warm.append(time.perf_counter() - w0)
print(json.dumps({"size": models[0].spec.image_size, "folds": len(models), "t": [b - a for a, b in zip(t, t[1:])],
                  "warm": warm}))
"""


def _lgenet(*args, threads: int) -> None:
    subprocess.run([sys.executable, "-m", "lgenet", *map(str, args)], check=True, capture_output=True,
                   env={**os.environ, "OMP_NUM_THREADS": str(threads)})  # fmt: skip


def make_bundle(work: Path, arch: str, threads: int) -> Path:
    bundle = work / f"seed_{arch}.lgenet"
    if bundle.is_file():
        return bundle
    cohort = work / "cohort"
    if not (cohort / "manifest.csv").is_file():
        _lgenet("synth", "--out", cohort, "--n-patients", 32, "--image-size", 256, "--seed", 5, threads=threads)
    run = work / f"run_{arch}"
    _lgenet("run", "--manifest", cohort / "manifest.csv", "--out", run, "--tasks", "lge", "--archs", arch,
            "--inits", "random", "--epochs", 1, "--image-size", SEED_SIZE[arch], "--folds", 4, "--threads", threads,
            "--no-report", threads=threads)  # fmt: skip
    _lgenet("model", "export", run, "--out", bundle, threads=threads)
    return bundle


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="folder for the cohort, the run and the bundle (kept for reruns)")
    ap.add_argument("--arch", default="resnet50", choices=sorted(SEED_SIZE))
    ap.add_argument("--bundle", help="a classifier bundle to time instead of making one")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bundle = Path(a.bundle) if a.bundle else make_bundle(work, a.arch, a.threads)
    made = time.perf_counter() - t0
    series = sorted((work / "cohort" / "dicom").iterdir())[:7] if (work / "cohort" / "dicom").is_dir() else []
    if len(series) < 7:
        raise SystemExit("put seven DICOM series of one LGE stack each in WORK/cohort/dicom/ (lgenet synth does)")
    load0 = os.getloadavg()[0]
    walls = []
    for i in range(a.repeats):
        out = work / f"cold{i}"
        t1 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "lgenet", "predict", "--model", str(bundle), "--task", "lge", str(series[0]),
             "--cam", str(out / "cams"), "-o", str(out / "p.csv")],
            check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(a.threads)},
        )  # fmt: skip
        walls.append(time.perf_counter() - t1)
    p = subprocess.run(
        [sys.executable, "-c", PHASES, str(bundle), str(series[0]), ",".join(map(str, series[1:])), str(a.threads),
         str(work / "phase_cams")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    ph = json.loads(p.stdout.strip().splitlines()[-1])
    names = [
        "import torch, lgenet's predict code, timm and pytorch-grad-cam",
        f"open the bundle, build the {ph['folds']} fold models",
        f"read the basal frame, preprocess to {ph['size']} px",
        f"{ph['folds']}-fold probabilities",
        f"{ph['folds']}-fold Grad-CAM, overlay PNG written",
    ]
    warm = sorted(ph["warm"])
    lines = [
        f"Command: `python bench/predict_timing.py --work {a.work} --arch {a.arch} --threads {a.threads}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores; {a.threads} torch thread(s); load {load0:.2f} at "
        f"the start, {os.getloadavg()[0]:.2f} at the end; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"Bundle: {bundle.name}, {bundle.stat().st_size / 1e6:.1f} MB"
        + (f" (made in {made:.0f} s)" if made > 1 else ""),
        "",
        f"Cold `lgenet predict --model BUNDLE --task lge SERIES --cam DIR -o p.csv` (process start to CSV and overlay), "
        f"{a.repeats} runs: " + ", ".join(f"{w:.1f} s" for w in walls),
        "",
        "| phase (one fresh process) | seconds |",
        "|---|---|",
        *(f"| {n} | {t:.2f} |" for n, t in zip(names, ph["t"])),
        f"| each further patient, models loaded (warm; read, probabilities, Grad-CAM, PNG): median of {len(warm)} "
        f"(range) | {warm[len(warm) // 2]:.2f} ({warm[0]:.2f}-{warm[-1]:.2f}) |",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
