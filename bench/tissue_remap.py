"""Configuration 31: a tissue-anchored intensity remap at test time, for a wall brighter against its blood pool than
any training wall (rule: runs/bench/RULE_remap.txt), on a finished EMIDEC segmentation run:

    python bench/tissue_remap.py --run runs/bench/seg_c20cv/run --draw 2 \
        --rows runs/bench/seg_c20cv/centre_draw2/centre_rows.csv \
        --looked runs/bench/sl_scan_draw2/second_look_rows.csv --out runs/bench/remap_draw2

After the first look, a = the 25th percentile of the normalised stack under the predicted myocardium, c = the
median under the predicted cavity. The references for a patient of fold k come from the other folds' patients as
acquired, under their expert masks: A and C (the medians of their a and c) and t_max (their largest a / c). When
a / c > t_max, the normalised stack is remapped piecewise-linearly through (0, 0), (a, A), (c, C), (1, 1) and
segmented again in the first look's windows; that mask replaces the first unless it is implausible where the first
was plausible. Then the second look with the frame scan, as `segment apply` runs it, the score fitted without the
patient's fold on the draw's rows. A stack not triggered keeps its row of bench/second_look.py --scan on the same
draw (``--looked``), so the comparison is with what `segment apply` does now. Markdown to stdout and
<out>/remap.md; the rows to <out>/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from centre_check import _older_shifts, read_rows, run_meta, summarise  # noqa: E402
from lgenet.segment.quality import fit_quality  # noqa: E402
from lgenet.segment.quality_fit import FIT_CONDITIONS, _conditions, condition_rng  # noqa: E402

WALL_PERCENTILE = 25.0  # fixed in the rule


def wall_and_blood(vol01: np.ndarray, classes: np.ndarray) -> tuple[float, float]:
    """(a, c): the 25th percentile of the normalised stack under the myocardium, the median under the cavity."""
    myo, cav = vol01[classes >= 2], vol01[classes == 1]
    if myo.size < 20 or cav.size < 20:
        return float("nan"), float("nan")
    return float(np.percentile(myo, WALL_PERCENTILE)), float(np.median(cav))


def remap(vol01: np.ndarray, a: float, c: float, ref_a: float, ref_c: float) -> np.ndarray | None:
    """The piecewise-linear map through (0, 0), (a, A), (c, C), (1, 1); None when the knots are not increasing."""
    xs, ys = [0.0, a, c, 1.0], [0.0, ref_a, ref_c, 1.0]
    if not (np.all(np.diff(xs) > 1e-6) and np.all(np.diff(ys) > 1e-6)):
        return None
    return np.interp(vol01, xs, ys).astype(np.float32)


def references(cases, cfg, spec, folds: dict) -> dict:
    """Per fold k: A, C and t_max from the other folds' patients as acquired, under their expert masks."""
    from lgenet.data.stacks import tissue_normalise
    from lgenet.segment.cases import read_case

    stats = {}
    for pid, c in cases.items():
        st = read_case(c, cfg)
        v = tissue_normalise(st.image, spec.percentiles, method=spec.normalisation, spacing=st.spacing)
        stats[pid] = wall_and_blood(v, st.classes)
    out = {}
    for k in sorted(set(folds.values())):
        aa = np.array([s[0] for p, s in stats.items() if folds[p] != k and math.isfinite(s[0])])
        cc = np.array([s[1] for p, s in stats.items() if folds[p] != k and math.isfinite(s[1])])
        tt = np.array([s[0] / s[1] for p, s in stats.items() if folds[p] != k and math.isfinite(s[0]) and s[1] > 0])
        out[k] = {"A": float(np.median(aa)), "C": float(np.median(cc)), "t_max": float(tt.max()), "n": int(tt.size)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--rows", required=True, help="the centre_rows.csv of bench/centre_check.py (first looks)")
    ap.add_argument("--looked", required=True, help="the second_look_rows.csv of bench/second_look.py --scan")
    ap.add_argument("--draw", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, help="only the first N patients (development)")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)

    import torch
    from tqdm.auto import tqdm

    from lgenet.data.manifest import load_manifest
    from lgenet.data.shift import frame_features, shift_warnings
    from lgenet.data.stacks import tissue_normalise
    from lgenet.evaluation.segmentation import class_measures, dice
    from lgenet.runs.seg import SegRunDir, load_segmenter
    from lgenet.runs.tables import write_rows
    from lgenet.segment.cases import cases_of, read_case
    from lgenet.segment.plausibility import check_plausibility
    from lgenet.segment.quality import predict_quality, quality_features
    from lgenet.segment.second_look import doubtful, second_look

    torch.set_num_threads(a.threads)
    t0, load0 = time.time(), os.getloadavg()[0]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rd = SegRunDir(a.run)
    cfg = rd.load_config()
    profile = rd.read_profile()
    fold_of = rd.read_folds("seg")
    cases = {c.patient_id: c for c in cases_of(load_manifest(cfg.manifest, tasks=None), need_masks=True)}
    all_first = read_rows(Path(a.rows))
    looked = {(r["patient_id"], r["condition"]): r for r in read_rows(Path(a.looked))}
    folds = sorted({int(r["fold"]) for r in all_first})
    arbiter = {
        k: fit_quality([r for r in all_first if int(r["fold"]) != k and r["condition"] in FIT_CONDITIONS])
        for k in folds
    }
    models = {k: load_segmenter(rd.path, [k]) for k in folds}
    spec = models[folds[0]].spec
    refs = references(cases, cfg, spec, fold_of)
    rows = all_first
    if a.limit:
        keep = sorted({r["patient_id"] for r in rows})[: a.limit]
        rows = [r for r in rows if r["patient_id"] in keep]
    names = list(dict.fromkeys(r["condition"] for r in rows))
    older = {"older shifts, all at once": _older_shifts()["all at once"]}
    table = _conditions(names, {k: v for k, v in older.items() if k in names})
    plain, new, mismatch, fired = [], [], [], []
    stacks: dict = {}
    for r in tqdm(sorted(rows, key=lambda r: r["patient_id"]), desc="masks", unit="mask", disable=a.no_progress):
        pid, name, k = r["patient_id"], r["condition"], int(r["fold"])
        base = looked[(pid, name)]
        plain.append(base)
        if pid not in stacks:
            stacks = {pid: read_case(cases[pid], cfg)}
        st = stacks[pid]
        smm = float(st.meta.get("slice_spacing") or st.meta.get("slice_thickness") or 10.0)
        img, cls, sp = st.image.astype(np.float32), st.classes, st.spacing
        f = table[name]
        if f is not None:
            img, cls, sp, smm = f(img, cls, sp, smm, condition_rng(pid, name, a.draw))
        seg = models[k]
        vol01 = tissue_normalise(img, spec.percentiles, method=spec.normalisation, spacing=sp)
        first = seg(vol01, sp, normalised=True)
        d0 = dice(first.classes >= 2, cls >= 2)
        d0 = 0.0 if not math.isfinite(d0) else d0
        if abs(d0 - r["dice_myo"]) > 1e-4:
            mismatch.append((pid, name, r["dice_myo"], d0))
        wa, wc = wall_and_blood(vol01, first.classes)
        ref = refs[k]
        if not (math.isfinite(wa) and wc > 0 and wa / wc > ref["t_max"]):
            new.append(dict(base, remapped=0, wall_ratio=wa / wc if wc and math.isfinite(wa) else float("nan")))
            continue
        mapped = remap(vol01, wa, wc, ref["A"], ref["C"])
        if mapped is None:
            new.append(dict(base, remapped=0, wall_ratio=wa / wc))
            continue
        fired.append((pid, name))
        again = seg(mapped, sp, normalised=True, centres=first.centres, found=first.localised)
        v1 = check_plausibility(first.classes, sp, smm)
        v2 = check_plausibility(again.classes, sp, smm)
        kept, verdict = (first, v1) if (v1.ok and not v2.ok) else (again, v2)
        outside = len(shift_warnings(profile, frame_features(img[-1], {"pixel_spacing": sp}))) if profile else 0
        q = predict_quality(arbiter[k], quality_features(kept, verdict, profile_outside=outside, image=img))
        row = dict(r, remapped=int(kept is again), wall_ratio=wa / wc, looked=0, chosen=0)
        if doubtful(verdict, q, arbiter[k]):
            look = second_look(seg, img, sp, smm, arbiter[k], profile_outside=outside, first=kept, scan=True)
            kept, verdict, q = look.result, look.verdict, look.quality
            row["looked"], row["chosen"] = look.looked, look.chosen
        d = dice(kept.classes >= 2, cls >= 2)
        mp, me = class_measures(kept.classes), class_measures(cls)
        err = mp["lge_percent"] - me["lge_percent"]
        row.update(
            dice_myo=0.0 if not math.isfinite(d) else d,
            lge_percent_pred=mp["lge_percent"],
            plausible=int(verdict.ok),
            lge_error_pp=abs(err) if math.isfinite(err) else float("nan"),
            **q,
        )
        new.append(row)
    res = {}
    for n in names:
        sel_p = [x for x in plain if x["condition"] == n]
        sel_n = [x for x in new if x["condition"] == n]
        res[n] = {
            "before": summarise(sel_p, cfg.lge_threshold),
            "after": summarise(sel_n, cfg.lge_threshold),
            "triggered": sum(1 for p, c in fired if c == n),
            "replaced": sum(int(x.get("remapped", 0)) for x in sel_n),
        }
    meta = {
        **run_meta("tissue_remap.py", argv, a.threads, t0, load0),
        "draw": a.draw,
        "references": {str(k): v for k, v in refs.items()},
        "first_look_mismatches": mismatch,
    }
    md = markdown(res, meta)
    print(md)
    (out / "remap.md").write_text(md + "\n")
    (out / "remap.json").write_text(json.dumps({"meta": meta, "conditions": res}, indent=1, default=float))
    write_rows(out / "remap_rows.csv", new, list(dict.fromkeys(k for x in new for k in x)))
    return 1 if mismatch else 0


def markdown(res: dict, meta: dict) -> str:
    def ag(s):
        x = s["agreement"]
        if x.get("icc") is None:
            return "n/a"
        return f"{x['icc']:.3f} ({x['loa_lower']:+.1f}..{x['loa_upper']:+.1f})"

    def auc(s):
        return f"{s['auc']['auc']:.3f}" if "auc" in s["auc"] else "n/a"

    L = [
        f"Command: `{meta['command']}`  ",
        f"lgenet {meta['lgenet']}; {meta['machine']}; load {meta['load_start']:.2f} at the start, "
        f"{meta['load_end']:.2f} at the end; {meta['wall_s'] / 60:.1f} min; {meta['date']}; draw {meta['draw']}; "
        f"first looks that did not reproduce their row: {len(meta['first_look_mismatches'])}  ",
        "References per fold (A, C, t_max): "
        + "; ".join(f"{k}: {v['A']:.3f}, {v['C']:.3f}, {v['t_max']:.3f}" for k, v in meta["references"].items()),
        "",
        "| condition (n) | triggered / remapped mask kept | Dice | found | misses measured | refused | LGE % ICC (limits) | AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, s in res.items():
        b, f = s["before"], s["after"]
        L.append(
            f"| {n} ({b['n']}) | {s['triggered']} / {s['replaced']} | {b['dice_myo_mean']:.3f} → {f['dice_myo_mean']:.3f} "
            f"| {b['found']} → {f['found']} | {b['misses_measured']} → {f['misses_measured']} | {b['refused']} → "
            f"{f['refused']} | {ag(b)} → {ag(f)} | {auc(b)} → {auc(f)} |"
        )
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
