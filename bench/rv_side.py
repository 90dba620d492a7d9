"""How the RV-side check (lgenet.segment.rv_side) scores EMIDEC's expert rings and the masks a finished run draws
under the other-centre proxies that keep the heart's orientation:

    python bench/rv_side.py --run runs/bench/seg_c20cv/run --out runs/bench/rv_side

EMIDEC's affines are placeholders, so no stack says where the patient's right and anterior lie. The bench stands in
for the geometry with the direction the check observes beside the expert rings, as acquired: for a patient of
fold k, the circular mean over the other folds' patients (fold-honest; the heart's orientation in EMIDEC's
frames is what it stands for). Each patient is segmented by the fold model that never saw it (the first look:
no second look), as acquired and under the proxies of --conditions, seeded as bench/centre_check.py seeds them
(--draw). Reported per condition: the verdicts of the expert rings and of the predicted masks, split at a
myocardium Dice of 0.5 (found / missed). Markdown to stdout and <out>/rv_side.md, the rows to <out>/rv_side_rows.csv.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from centre_check import run_meta  # noqa: E402

CONDITIONS = ["as acquired", "whole-thorax canvas", "another centre (all)"]


def _mean_direction(vectors: list[np.ndarray]) -> np.ndarray:
    m = np.mean(vectors, axis=0)
    return m / np.linalg.norm(m)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a finished segmentation run on EMIDEC")
    ap.add_argument("--out", required=True)
    ap.add_argument("--conditions", nargs="+", default=CONDITIONS)
    ap.add_argument("--draw", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, help="only the first N patients (a check of the script)")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)

    import torch
    from tqdm.auto import tqdm

    from lgenet.data.manifest import load_manifest
    from lgenet.evaluation.segmentation import dice
    from lgenet.runs.seg import SegRunDir, load_segmenter
    from lgenet.runs.tables import write_rows
    from lgenet.segment.cases import cases_of, read_case
    from lgenet.segment.quality_fit import _conditions, condition_rng
    from lgenet.segment.rv_side import judge_rv_side, observe_rv_side

    torch.set_num_threads(a.threads)
    t0, load0 = time.time(), os.getloadavg()[0]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rd = SegRunDir(a.run)
    cfg = rd.load_config()
    folds = rd.read_folds("seg")
    cases = [c for c in cases_of(load_manifest(cfg.manifest, tasks=None), need_masks=True)][: a.limit or None]
    table = _conditions(a.conditions, None)

    # the stand-in geometry: the expert rings' directions as acquired, the other folds' mean for each fold
    stacks, expert = {}, {}
    for c in tqdm(cases, desc="expert rings", unit="patient", disable=a.no_progress):
        st = read_case(c, cfg)
        stacks[c.patient_id] = st
        expert[c.patient_id] = observe_rv_side(st.image, st.classes, st.spacing)
    expected = {}
    for k in sorted(set(folds.values())):
        others = [o.direction for p, o in expert.items() if folds[p] != k and o.direction is not None]
        expected[k] = _mean_direction(others)
    models = {k: load_segmenter(rd.path, [k]) for k in sorted(set(folds[c.patient_id] for c in cases))}

    rows = []
    for c in tqdm(cases, desc="patients", unit="patient", disable=a.no_progress):
        pid = c.patient_id
        k = folds[pid]
        st = stacks[pid]
        slice_mm = float(st.meta.get("slice_spacing") or st.meta.get("slice_thickness") or 10.0)
        for name in a.conditions:
            img, cls, sp = st.image.astype(np.float32), st.classes, st.spacing
            f = table[name]
            if f is not None:
                img, cls, sp, _ = f(img, cls, sp, slice_mm, condition_rng(pid, name, a.draw))
            res = models[k](img, sp)
            d = dice(res.classes >= 2, cls >= 2)
            gt = judge_rv_side(observe_rv_side(img, cls, sp), expected[k])
            pr = judge_rv_side(observe_rv_side(img, res.classes, sp), expected[k])
            rows.append(
                {
                    "patient_id": pid,
                    "fold": k,
                    "condition": name,
                    "dice_myo": 0.0 if not math.isfinite(d) else d,
                    "expert_verdict": gt.verdict,
                    "expert_off_deg": gt.off_deg,
                    "expert_agreement": gt.agreement,
                    "pred_verdict": pr.verdict,
                    "pred_off_deg": pr.off_deg,
                    "pred_agreement": pr.agreement,
                    "pred_why": pr.why,
                }
            )
    write_rows(out / "rv_side_rows.csv", rows, list(rows[0]))
    res = summarise(rows, a.conditions)
    meta = {
        **run_meta("rv_side.py", argv, a.threads, t0, load0),
        "draw": a.draw,
        "expected_deg": {str(k): math.degrees(math.atan2(float(v[0]), float(v[1]))) for k, v in expected.items()},
    }
    md = markdown(res, meta)
    print(md)
    (out / "rv_side.md").write_text(md + "\n")
    (out / "rv_side.json").write_text(json.dumps({"meta": meta, "results": res}, indent=1, default=float))
    return 0


def summarise(rows: list[dict], conditions: list[str]) -> dict:
    res = {}
    for name in conditions:
        rr = [r for r in rows if r["condition"] == name]
        found = [r for r in rr if r["dice_myo"] >= 0.5]
        missed = [r for r in rr if r["dice_myo"] < 0.5]
        res[name] = {
            "n": len(rr),
            "expert": dict(Counter(r["expert_verdict"] for r in rr)),
            "found": dict(Counter(r["pred_verdict"] for r in found)),
            "missed": dict(Counter(r["pred_verdict"] for r in missed)),
        }
    return res


def _counts(c: dict) -> str:
    n = sum(c.values())
    if not n:
        return "—"
    inc = c.get("inconsistent", 0)
    return f"{c.get('consistent', 0)} / {inc} / {c.get('unknown', 0)} ({100 * inc / n:.0f} % inconsistent)"


def markdown(res: dict, meta: dict) -> str:
    exp = ", ".join(f"fold {k}: {v:.0f}" for k, v in meta["expected_deg"].items())
    L = [
        f"Command: `{meta['command']}`  ",
        f"lgenet {meta['lgenet']}; {meta['machine']}; load {meta['load_start']:.2f} at the start, "
        f"{meta['load_end']:.2f} at the end; {meta['wall_s'] / 60:.1f} min; {meta['date']}; draw {meta['draw']}  ",
        f"Stand-in expected direction (deg on the array, atan2(row, col)): {exp}",
        "",
        "Counts: consistent / inconsistent / unknown. Found: the first look's myocardium Dice >= 0.5; missed: < 0.5.",
        "",
        "| condition | n | expert rings | predicted, found | predicted, missed |",
        "|---|---|---|---|---|",
    ]
    for name, r in res.items():
        L.append(f"| {name} | {r['n']} | {_counts(r['expert'])} | {_counts(r['found'])} | {_counts(r['missed'])} |")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
