"""A finished segmentation run's copy whose fold models carry other apply-time settings (nothing retrained):

    python bench/respec.py --run runs/bench/seg_c20cv/run --out runs/bench/seg_c21/run --set coarse_candidates=2

Every file of the run is copied; each fold's ``fits/seg/fold*/model.pt`` gets the ``--set`` values in its network spec (checked
as a saved spec is checked when loaded). Only settings the networks do not learn from make sense here: the
coarse gate's ``coarse_margin`` and ``coarse_candidates``. The copy's ``respec.json`` records what was changed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

APPLY_TIME = ("coarse_margin", "coarse_candidates")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", required=True, metavar="NAME=VALUE")
    a = ap.parse_args(argv)
    import torch

    from lgenet.models.segnet import SegSpec

    changes = {}
    for item in a.set:
        name, _, value = item.partition("=")
        if name not in APPLY_TIME:
            ap.error(
                f"--set {item}: only the apply-time settings {', '.join(APPLY_TIME)} can change without retraining"
            )
        changes[name] = json.loads(value)
    src, out = Path(a.run), Path(a.out)
    if out.exists():
        ap.error(f"--out {out} exists: choose a new folder")
    if not list(src.glob("fits/seg/fold*/model.pt")):
        ap.error(f"--run {src}: no fits/seg/fold*/model.pt (not a finished segmentation run)")
    shutil.copytree(src, out, ignore=shutil.ignore_patterns(".lock", "apply*", "onnx"))
    models = sorted(out.glob("fits/seg/fold*/model.pt"))
    for f in models:
        ck = torch.load(f, map_location="cpu", weights_only=True)
        ck["spec"] = SegSpec.from_dict({**ck["spec"], **changes}, source=str(f)).to_dict()
        torch.save(ck, f)
    (out / "respec.json").write_text(json.dumps({"from": str(src), "set": changes}, indent=1) + "\n")
    print(f"{len(models)} fold models with {changes} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
