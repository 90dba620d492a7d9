"""``lgenet synth``: a synthetic LGE DICOM cohort with its manifest."""

from __future__ import annotations

import argparse


def cmd_synth(a: argparse.Namespace) -> int:
    from lgenet.data.synth import make_cohort

    manifest = make_cohort(
        a.out,
        n_patients=a.n_patients,
        image_size=a.image_size,
        seed=a.seed,
        progress=not a.quiet,
        overwrite=a.overwrite,
    )
    print(f"synthetic cohort written: {manifest}")
    return 0


def add_synth_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("synth", help="write a synthetic LGE DICOM cohort with a manifest")
    p.add_argument("--out", required=True, help="empty folder to write into")
    p.add_argument("--n-patients", type=int, default=116)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_synth)
    return p
