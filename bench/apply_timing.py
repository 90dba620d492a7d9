"""Where the time of a cold `segment apply` goes (issue "model bundles", inference in seconds):

    python bench/apply_timing.py --model runs/bench/emidec.lgenet --image ../shared/data/emidec/Case_N006/Images/Case_N006.nii.gz

1. the whole command, process start to CSV, ``--repeats`` times, cold (a fresh process each time) with
   ``--threads`` torch threads and no overlays;
2. in one fresh process, each phase in turn: importing torch, importing lgenet's apply code, building the fold
   ensemble (MONAI's import included), reading the stack, segmenting it (localisers, segmenter, test-time flips),
   and a second stack within the same process (warm).

Markdown to stdout, with the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = r"""
import time, sys, json
t = [time.perf_counter()]
import torch
torch.set_num_threads(int(sys.argv[3]))
t.append(time.perf_counter())
from lgenet.runs.bundle import open_bundle
from lgenet.runs.seg import load_segmenter
from lgenet.data.stacks import read_stack
t.append(time.perf_counter())
run = open_bundle(sys.argv[1])
seg = load_segmenter(run, engine=sys.argv[4])
t.append(time.perf_counter())
st = read_stack(sys.argv[2])
t.append(time.perf_counter())
res = seg(st.image, st.spacing)
t.append(time.perf_counter())
res = seg(st.image, st.spacing)
t.append(time.perf_counter())
print(json.dumps({"n_slices": int(st.image.shape[0]), "t": [b - a for a, b in zip(t, t[1:])]}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a bundle (.lgenet) or a segmentation run folder")
    ap.add_argument("--image", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engine", default="onnx", choices=("torch", "onnx"), help="segment apply --engine (default onnx)")
    a = ap.parse_args()
    import json

    flag = "--model" if str(a.model).endswith(".lgenet") else "--run"
    load0 = os.getloadavg()[0]
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(-1, a.repeats):  # run -1: the bundle's first use (unpacked, exported to ONNX), not counted
            out = Path(tmp) / f"r{i}" / "seg.csv"
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "lgenet", "segment", "apply", flag, a.model, a.image, "-o", str(out),
                 "--threads", str(a.threads), "--no-overlays", "-q", "--engine", a.engine],
                check=True, capture_output=True,
            )  # fmt: skip
            if i >= 0:
                walls.append(time.perf_counter() - t0)
    model = a.model
    code = PHASES if flag == "--model" else PHASES.replace("open_bundle(sys.argv[1])", "sys.argv[1]")
    p = subprocess.run([sys.executable, "-c", code, model, a.image, str(a.threads), a.engine], capture_output=True, text=True,
                       check=True)  # fmt: skip
    ph = json.loads(p.stdout.strip().splitlines()[-1])
    names = ["import torch", "import lgenet's apply code", "open the bundle, build the ensemble" + (" (MONAI imported)" if a.engine == "torch" else " (ONNX Runtime sessions)"),
             "read the stack", f"segment it ({ph['n_slices']} slices; localisers, segmenter, flips)",
             "a second stack in the same process (warm)"]  # fmt: skip
    lines = [
        f"Command: `python bench/apply_timing.py --model {a.model} --image {a.image} --threads {a.threads} "
        f"--engine {a.engine}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores; {a.threads} torch thread(s); load {load0:.2f} at "
        f"the start, {os.getloadavg()[0]:.2f} at the end; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Cold `segment apply --engine {a.engine}` (process start to CSV, no overlays), {a.repeats} runs: "
        + ", ".join(f"{w:.1f} s" for w in walls),
        "",
        "| phase (one fresh process) | seconds |",
        "|---|---|",
        *(f"| {n} | {t:.2f} |" for n, t in zip(names, ph["t"])),
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
