"""Does ``torch.compile`` pay for lgenet's training step on this CPU? (issue 12, part 4)

    python bench/compile_speed.py                    # ResNet50 @ 224 and InceptionV3 @ 299, fp32 and bf16
    python bench/compile_speed.py --quick            # ResNet50 @ 128 only

For each backbone / size / precision, in a fresh child process per arm (so that one arm's compiled
kernels and caches do not help the other): the seed's model (``build_model``: backbone, Flatten ->
Dense 512 -> Dropout 0.5 -> logit), batch 8, Adam, BCE, channels_last as in ``fit``; ``eager`` runs it as
is, ``compiled`` wraps the model in ``torch.compile`` (inductor, default mode). Reported: the one-off
compile time (the first steps, which trigger it) and the median images/s over the timed steps after
warm-up. Arms alternate (eager, compiled, eager, compiled, ...) because this host's speed swings
between minutes; compare only figures of one pass. Writes ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, statistics, sys, time
sys.path.insert(0, {src!r})
import torch
torch.set_num_threads({threads})
from lgenet.models import build_model
torch.manual_seed(0)
model = build_model({arch!r}, image_size={size}).train().to(memory_format=torch.channels_last)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.rand(8, 1, {size}, {size}).contiguous(memory_format=torch.channels_last)
y = torch.tensor([0., 1.] * 4)
step_model = torch.compile(model) if {compiled!r} else model
loss_fn = torch.nn.BCEWithLogitsLoss()
def step():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled={bf16!r}):
        out = step_model(x)
    loss = loss_fn(out.float().reshape(-1), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
t0 = time.perf_counter()
for _ in range(2):
    step()
warm = time.perf_counter() - t0
times = []
for _ in range({steps}):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(json.dumps({{"warmup_s": round(warm, 1), "img_s": round(8 / statistics.median(times), 2)}}))
"""


def arm(arch: str, size: int, precision: str, compiled: bool, threads: int, steps: int) -> dict:
    code = _CHILD.format(
        src=str(REPO / "src"),
        threads=threads,
        arch=arch,
        size=size,
        compiled=compiled,
        bf16=precision == "bf16",
        steps=steps,
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per arm after 2 warm-up steps")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--configs", help="arch@px,... (default resnet50@224,inception_v3@299; --quick resnet50@128)")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench" / "compile_speed"))
    a = ap.parse_args(argv)
    configs = [("resnet50", 128)] if a.quick else [("resnet50", 224), ("inception_v3", 299)]
    if a.configs:
        configs = [(c.split("@")[0], int(c.split("@")[1])) for c in a.configs.split(",")]
    meta = {
        "command": "python bench/compile_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "threads": a.threads,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load_start": os.getloadavg()[0],
    }
    rows = []
    for arch, size in configs:
        for precision in a.precisions.split(","):
            res = {"eager": [], "compiled": []}
            for _ in range(a.rounds):
                for name in ("eager", "compiled"):
                    r = arm(arch, size, precision, name == "compiled", a.threads, a.steps)
                    res[name].append(r)
                    print(f"{arch} @{size} {precision} {name}: {r}", flush=True)
            row = {"arch": arch, "size": size, "precision": precision}
            for name, rs in res.items():
                ok = [r for r in rs if "img_s" in r]
                row[name] = {
                    "img_s": [r["img_s"] for r in ok],
                    "warmup_s": [r["warmup_s"] for r in ok],
                    "errors": [r["error"] for r in rs if "error" in r],
                }
            e, c = row["eager"]["img_s"], row["compiled"]["img_s"]
            row["ratio"] = round(statistics.median(c) / statistics.median(e), 3) if e and c else None
            rows.append(row)
    meta["load_end"] = os.getloadavg()[0]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(json.dumps(meta))
    print("| backbone | px | precision | eager img/s | compiled img/s | compiled / eager | compile warm-up s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['arch']} | {r['size']} | {r['precision']} | {r['eager']['img_s']} | {r['compiled']['img_s']} | "
            f"{r['ratio']} | {r['compiled']['warmup_s']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
