"""``lgenet demo``: a synthetic cohort, its segmentation and a small grid, in minutes on a laptop CPU."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lgenet.cli.options import (
    DEMO_DEFAULTS,
    add_run_options,
    config_from_args,
    exec_args,
    run_grid,
)


def cmd_demo(a: argparse.Namespace) -> int:
    from lgenet.data.synth import make_cohort
    from lgenet.workflows.demo import demo_segmentation

    root = Path(a.dir)
    cohort_dir = root / "cohort"
    manifest = cohort_dir / "manifest.csv"
    t0 = time.time()
    if manifest.exists():
        print(f"using the synthetic cohort already in {cohort_dir}")
    else:
        make_cohort(cohort_dir, n_patients=a.n_patients, image_size=128, seed=a.seed or 0, progress=not a.quiet)
        print(f"synthetic cohort ({a.n_patients} patients) written to {cohort_dir}")
    a.manifest, a.out = str(manifest), str(root / "run")
    seg_dir = root / "seg"
    cfg = config_from_args(a, **DEMO_DEFAULTS, segmentation_run=str(seg_dir))
    uses_seg = bool({"burden", "roi", "stack"} & set(cfg.families))
    if uses_seg and cfg.segmentation_run == str(seg_dir):  # not given on the command line or in --config
        print(f"segmentation of the cohort (the headline model's burden, out of fold) -> {seg_dir}")
        seg = demo_segmentation(
            manifest,
            seg_dir,
            progress=not a.quiet,
            seed=cfg.seed,
            folds=cfg.folds,
            device=cfg.device,
            precision=cfg.precision,
            num_threads=cfg.num_threads,
            lge_threshold=cfg.lge_threshold,
            **exec_args(a),
        )
        if not a.quiet:
            print(seg.table)
    res = run_grid(cfg, a)
    print(f"demo finished in {time.time() - t0:.0f} s.")
    if uses_seg:
        print(
            "Predicted LGE % (the headline burden model's score) for new images:\n"
            f"  lgenet segment apply --run {cfg.segmentation_run} {cohort_dir / 'dicom' / 'SYN001'} -o seg.csv"
        )
    if a.keep_models != "none":
        print(
            f"Apply the CNN fold models to new images with:\n"
            f"  lgenet predict --run {res.out_dir} --task lge {cohort_dir / 'dicom' / 'SYN001'}"
        )
    return 0


def add_demo_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="synthetic cohort + a small grid run (minutes on a laptop CPU)")
    p.add_argument("--dir", default="lgenet-demo", help="where the cohort and run go (default ./lgenet-demo)")
    p.add_argument("--n-patients", type=int, default=116, help="patients of the synthetic cohort (default 116)")
    add_run_options(p, demo=True)
    p.set_defaults(func=cmd_demo)
    return p
