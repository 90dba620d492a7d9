"""Training and inference throughput of lgenet's own code path on this machine.

For each backbone at its seed input size and at 128 px, and for each CPU precision mode, it times
``lgenet.training.trainer.fit`` (Adam fused, channels_last, the seed's Flatten head, batch 8) and
``predict_proba`` on random images. Each figure is the median of ``--repeats`` timed runs after one
warm-up run. Results are printed as a Markdown table and, with ``--out``, written as JSON.

    python bench/throughput.py                  # full table (~10 min on 2 cores)
    python bench/throughput.py --quick          # 128 px only
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import numpy as np
import torch

from lgenet.models import build_model
from lgenet.training.trainer import FitParams, fit, predict_proba


def bench_one(arch: str, size: int, precision: str, n_train: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_model(arch, image_size=size)
    x = torch.rand(n_train, 1, size, size)
    y = np.arange(n_train) % 2
    params = FitParams(epochs=1, batch_size=8, precision=precision)
    fit(model, x, y, params, seed=0)  # warm-up
    train = [fit(model, x, y, params, seed=i).images_per_second for i in range(repeats)]
    predict_proba(model, x[:16], batch_size=8, precision=precision)  # warm-up
    infer = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict_proba(model, x, batch_size=8, precision=precision)
        infer.append(n_train / (time.perf_counter() - t0))
    return {
        "arch": arch,
        "size": size,
        "precision": precision,
        "train_img_s": round(statistics.median(train), 2),
        "infer_img_s": round(statistics.median(infer), 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="128 px only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=48, help="images per timed training run (multiple of 8)")
    ap.add_argument("--out", help="write results as JSON here")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    configs = [("resnet50", 128), ("inception_v3", 128)]
    if not a.quick:
        configs = [("resnet50", 224), ("inception_v3", 299)] + configs
    rows = []
    for arch, size in configs:
        for precision in ("fp32", "bf16"):
            r = bench_one(arch, size, precision, a.n_train, a.repeats)
            rows.append(r)
            print(
                f"{arch:>13} @{size:<4} {precision:>5}: train {r['train_img_s']:7.2f} img/s, "
                f"infer {r['infer_img_s']:7.2f} img/s",
                flush=True,
            )
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
    }
    print(f"\n{meta}\n")
    print("| backbone | px | precision | train img/s | inference img/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['arch']} | {r['size']} | {r['precision']} | {r['train_img_s']} | {r['infer_img_s']} |")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
