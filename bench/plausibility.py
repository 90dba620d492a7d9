"""How the anatomical plausibility checks (lgenet.segment.plausibility) score expert masks and failure proxies.

On EMIDEC's expert masks (every one is an LV: all must pass) and on proxies of the failures seen on another
centre's stacks, built from the same expert masks:

* ``aorta``     -- the mask replaced by a small thin ring (12 mm radius, 2 mm wall) elsewhere in the frame;
* ``crescent``  -- only one side of the myocardium kept (a ring on the RV looks like this);
* ``jumping``   -- every other slice's mask moved 45 mm (the mask on different structures from slice to slice);
* ``blobs``     -- scattered myocardium and cavity specks (a network on noise).

    python bench/plausibility.py --data ../shared/data/emidec --out runs/bench/plausibility

Writes ``OUT/plausibility.csv`` (one row per case and variant) and prints the pass rates.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lgenet.conventions.labels import EMIDEC  # noqa: E402
from lgenet.data.stacks import read_stack  # noqa: E402
from lgenet.segment.plausibility import check_plausibility  # noqa: E402


def _ring(shape, centre, r_mm, wall_mm, spacing):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = np.hypot((yy - centre[0]) * spacing[0], (xx - centre[1]) * spacing[1])
    out = np.zeros(shape, np.uint8)
    out[d < r_mm] = 1
    out[(d >= r_mm) & (d < r_mm + wall_mm)] = 2
    return out


def variants(classes: np.ndarray, spacing, rng: np.random.Generator) -> dict[str, np.ndarray]:
    s, h, w = classes.shape
    out = {"expert": classes}
    aorta = np.zeros_like(classes)
    for k in range(s):
        aorta[k] = _ring((h, w), (h * 0.25, w * 0.7), 12.0, 2.0, spacing)
    out["aorta"] = aorta
    cres = classes.copy()
    for k in range(s):
        ys, xs = np.nonzero(classes[k] >= 1)
        if ys.size:
            cx = xs.mean()
            side = np.zeros((h, w), bool)
            side[:, : int(cx)] = True
            cres[k][(classes[k] >= 2) & side] = 0
    out["crescent"] = cres
    jump = classes.copy()
    shift = int(round(45.0 / spacing[1]))
    for k in range(1, s, 2):
        jump[k] = np.roll(classes[k], shift, axis=1)
    out["jumping"] = jump
    blobs = np.zeros_like(classes)
    for k in range(s):
        m = rng.random((h, w)) < 0.01
        blobs[k][m] = 2
        blobs[k][rng.random((h, w)) < 0.003] = 1
    out["blobs"] = blobs
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "emidec"))
    ap.add_argument("--out", default="runs/bench/plausibility")
    a = ap.parse_args()
    data, out = Path(a.data), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows, t0 = [], time.time()
    for case in sorted(p for p in data.iterdir() if p.is_dir() and p.name.startswith("Case_")):
        img = case / "Images" / f"{case.name}.nii.gz"
        msk = case / "Contours" / f"{case.name}.nii.gz"
        st = read_stack(img, msk, labels=EMIDEC)
        slice_mm = st.meta.get("slice_spacing") or st.meta.get("slice_thickness")
        for name, cls in variants(st.classes, st.spacing, rng).items():
            p = check_plausibility(cls, st.spacing, slice_mm)
            rows.append(
                {
                    "case": case.name,
                    "variant": name,
                    "ok": int(p.ok),
                    "ring_coverage": round(p.ring_coverage, 3),
                    "wall_mm": round(p.wall_mm, 2),
                    "cavity_mm": round(p.cavity_mm, 1),
                    "centre_jump_mm": round(p.centre_jump_mm, 1),
                    "mass_g": round(p.mass_g, 1),
                    "reason": p.reason(),
                }
            )
    with open(out / "plausibility.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    print(f"{len({r['case'] for r in rows})} cases in {time.time() - t0:.0f} s")
    for name in ("expert", "aorta", "crescent", "jumping", "blobs"):
        sel = [r for r in rows if r["variant"] == name]
        print(f"  {name:<9} judged plausible: {sum(r['ok'] for r in sel)} / {len(sel)}")
    exp = [r for r in rows if r["variant"] == "expert"]
    for key in ("ring_coverage", "wall_mm", "cavity_mm", "centre_jump_mm", "mass_g"):
        v = np.array([r[key] for r in exp], float)
        v = v[np.isfinite(v)]
        print(f"  expert {key:<15} min {v.min():7.2f}  median {np.median(v):7.2f}  max {v.max():7.2f}")
    for r in exp:
        if not r["ok"]:
            print("  expert refused:", r["case"], r["reason"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
