"""The anatomy-aware families beside the seed protocol on EMIDEC: same folds, paired DeLong.

    python bench/anatomy.py --seg runs/bench/seg_e70_bf16/run            # after bench/segmentation.py
    python bench/anatomy.py --seg RUN --quick                             # 2 epochs everywhere: checks the script

Runs ``run_experiment`` on the EMIDEC manifest of the segmentation bench with
``families = classifier, burden, roi, stack`` (classifier = the seed protocol's ResNet50 from random
initialisation at the CPU budget of docs/results.md, 25 epochs at 128 px), tasks ``lge`` and
``event``. The ``roi``/``stack`` families need the segmentation run's folds, which are task ``lge``'s;
for ``event`` they are skipped (stated in run.json). Prints the metrics table (every AUC with its
95 % DeLong CI, n, and the paired DeLong p against the task's best model) and writes it to
``<out>/results.md`` with the machine, load average and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lgenet.config import RunConfig  # noqa: E402
from lgenet.workflows.grid import run_experiment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seg", required=True, help="a finished `lgenet segment train` run on EMIDEC")
    ap.add_argument("--manifest", help="default: the segmentation run's manifest")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench" / "anatomy"))
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--anatomy-epochs", type=int, default=30)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--tasks", default="lge,event")
    ap.add_argument("--families", default="classifier,burden,roi,stack")
    ap.add_argument(
        "--anatomy-channels",
        default="image+seg",
        choices=["image+seg", "image"],
        help="what roi/stack see (RunConfig.anatomy_channels)",
    )
    ap.add_argument(
        "--aux-weight",
        type=float,
        default=0.0,
        help="auxiliary segmentation loss weight for roi/stack (RunConfig.anatomy_aux_weight)",
    )
    ap.add_argument("--executor", default="local", choices=["local", "process"])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    seg_cfg = json.loads(json.dumps(__import__("yaml").safe_load((Path(a.seg) / "seg_config.yaml").read_text())))
    manifest = a.manifest or seg_cfg["manifest"]
    ep, aep = (2, 2) if a.quick else (a.epochs, a.anatomy_epochs)
    cfg = RunConfig(
        manifest=manifest,
        out=str(Path(a.out) / "run"),
        tasks=tuple(a.tasks.split(",")),
        archs=("resnet50",),
        inits=("random",),
        families=tuple(a.families.split(",")),
        segmentation_run=a.seg,
        epochs=ep,
        image_size=a.image_size,
        anatomy_epochs=aep,
        num_threads=a.threads,
        folds=seg_cfg["folds"],
        seed=seg_cfg["seed"],
        anatomy_channels=a.anatomy_channels,
        anatomy_aux_weight=a.aux_weight,
        outcomes=False,
    )
    t0 = time.time()
    load0 = os.getloadavg()[0]
    res = run_experiment(cfg, progress=True, report=True, executor=a.executor, workers=a.workers)
    wall = time.time() - t0
    run = json.loads((Path(cfg.out) / "run.json").read_text())
    md = [
        f"Command: `python bench/anatomy.py {' '.join(argv if argv is not None else sys.argv[1:])}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores; torch threads per fit "
        f"{run['environment'].get('torch_threads_per_fit')}; load average {load0:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end; date {time.strftime('%Y-%m-%d %H:%M %Z')}; wall time {wall:.0f} s",
        "",
        "```",
        res.table,
        "```",
    ]
    if run.get("models_skipped"):
        md += ["", "Skipped: " + "; ".join(f"task {t}: {w}" for t, w in run["models_skipped"].items())]
    text = "\n".join(md)
    print(text)
    (Path(a.out) / "results.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
