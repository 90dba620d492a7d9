"""What a second look (lgenet.segment.second_look) changes under the other-centre proxies, on a finished EMIDEC
segmentation run and the rows of its centre check:

    python bench/second_look.py --run runs/bench/seg_c20cv/run --rows runs/bench/seg_c20cv/centre_nn/centre_rows.csv \
        --out runs/bench/second_look

The arbiter is honest: for a patient of fold k, the quality score that decides is fitted on the other folds'
rows only (what bench/centre_check.py's cross-fitted columns are). Only the masks the first look doubts
(implausible, or a predicted Dice below the flag line) are segmented again, under the same seeded draw of the
proxy; the first look is recomputed for them and must reproduce the row's Dice (checked). Every other row is
kept as it is. Then each condition is summarised as bench/centre_check.py summarises it, before and after, with
the masks changed. Markdown to stdout and <out>/second_look.md, the rows to <out>/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from centre_check import _older_shifts, read_rows, run_meta, summarise  # noqa: E402
from lgenet.segment.quality import FLAG_BELOW, fit_quality  # noqa: E402
from lgenet.segment.quality_fit import FIT_CONDITIONS, _conditions, condition_rng  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a finished segmentation run on EMIDEC")
    ap.add_argument("--rows", required=True, help="the centre_rows.csv of bench/centre_check.py on that run")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--draw", type=int, default=0, help="the draw of the proxies the rows were made with")
    ap.add_argument(
        "--side-standin",
        action="store_true",
        help="judge the RV side too (lgenet.segment.rv_side), the geometry stood in for by the other folds' mean "
        "direction beside the expert rings, as bench/rv_side.py does; every first mask is judged (the older "
        "shifts, which rotate and flip the heart, are left without a side)",
    )
    ap.add_argument(
        "--scan",
        action="store_true",
        help="configuration 29: when no proposal gives a trusted mask, scan the frame for more (second_look(scan=True))",
    )
    a = ap.parse_args(argv)

    import torch
    from tqdm.auto import tqdm

    from lgenet.data.manifest import load_manifest
    from lgenet.data.shift import frame_features, shift_warnings
    from lgenet.evaluation.segmentation import class_measures, dice
    from lgenet.runs.seg import SegRunDir, load_segmenter
    from lgenet.runs.tables import write_rows
    from lgenet.segment.cases import cases_of, read_case
    from lgenet.segment.rv_side import judge_rv_side, observe_rv_side
    from lgenet.segment.second_look import doubtful, second_look

    torch.set_num_threads(a.threads)
    t0, load0 = time.time(), os.getloadavg()[0]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_rows(Path(a.rows))
    names = list(dict.fromkeys(r["condition"] for r in rows))
    older = _older_shifts()
    older = {"older shifts, all at once": older["all at once"]}
    table = _conditions(names, {k: v for k, v in older.items() if k in names})
    folds = sorted({int(r["fold"]) for r in rows})
    arbiter = {
        k: fit_quality([r for r in rows if int(r["fold"]) != k and r["condition"] in FIT_CONDITIONS]) for k in folds
    }
    lines = {k: _fitted_line(rows, k, folds) for k in folds}  # configuration 28's line per fold, fold-honest

    rd = SegRunDir(a.run)
    cfg = rd.load_config()
    profile = rd.read_profile()
    cases = {c.patient_id: c for c in cases_of(load_manifest(cfg.manifest, tasks=None), need_masks=True)}
    models = {k: load_segmenter(rd.path, [k]) for k in folds}
    expected = _standin_directions(cases, cfg, rd.read_folds("seg"), folds) if a.side_standin else {}

    def judged_side(r) -> bool:  # the RV side of this row's masks is judged
        return bool(expected) and not r["condition"].startswith("older shifts")

    todo = [  # the masks the first look doubts, from the rows' own verdicts and cross-fitted scores
        i
        for i, r in enumerate(rows)
        if judged_side(r) or doubtful(SimpleNamespace(ok=bool(int(r["plausible"]))), r, arbiter[int(r["fold"])])
    ]
    new_rows = [dict(r, looked=0, chosen=0, rv_side_first="", rv_side_kept="") for r in rows]
    mismatch = []
    stacks: dict = {}
    for i in tqdm(todo, desc="second looks", unit="mask", disable=a.no_progress):
        r = rows[i]
        pid, name, k = r["patient_id"], r["condition"], int(r["fold"])
        if pid not in stacks:
            stacks = {pid: read_case(cases[pid], cfg)}
        st = stacks[pid]
        slice_mm = float(st.meta.get("slice_spacing") or st.meta.get("slice_thickness") or 10.0)
        img, cls, sp, smm = st.image.astype(np.float32), st.classes, st.spacing, slice_mm
        f = table[name]
        if f is not None:
            rng = condition_rng(pid, name, a.draw)
            img, cls, sp, smm = f(img, cls, sp, smm, rng)
        outside = len(shift_warnings(profile, frame_features(img[-1], {"pixel_spacing": sp}))) if profile else 0
        seg = models[k]
        first = seg(img, sp)
        d0 = dice(first.classes >= 2, cls >= 2)
        d0 = 0.0 if not math.isfinite(d0) else d0
        if abs(d0 - r["dice_myo"]) > 1e-4:
            mismatch.append((pid, name, r["dice_myo"], d0))
        side = None
        if judged_side(r):
            e = expected[k]
            side = lambda res, img=img, sp=sp, e=e: judge_rv_side(observe_rv_side(img, res.classes, sp), e)  # noqa: E731
        row = new_rows[i]
        if side is not None:
            s0 = side(first)
            row["rv_side_first"] = row["rv_side_kept"] = s0.verdict
            if not doubtful(SimpleNamespace(ok=bool(int(r["plausible"]))), r, arbiter[k], s0):
                continue  # trusted, on the right side: not looked at again
        look = second_look(seg, img, sp, smm, arbiter[k], profile_outside=outside, first=first, side=side, scan=a.scan)
        row["looked"], row["chosen"] = look.looked, look.chosen
        if look.side is not None:
            row["rv_side_kept"] = look.side.verdict
        if look.chosen:
            d = dice(look.result.classes >= 2, cls >= 2)
            mp, me = class_measures(look.result.classes), class_measures(cls)
            err = mp["lge_percent"] - me["lge_percent"]
            row.update(
                dice_myo=0.0 if not math.isfinite(d) else d,
                lge_percent_pred=mp["lge_percent"],
                plausible=int(look.verdict.ok),
                lge_error_pp=abs(err) if math.isfinite(err) else float("nan"),
                **look.quality,
            )
    before = {n: summarise([r for r in rows if r["condition"] == n], cfg.lge_threshold) for n in names}
    after = {n: summarise([r for r in new_rows if r["condition"] == n], cfg.lge_threshold) for n in names}
    for n in names:  # the flag with each fold's fitted line (configuration 28, not adopted) beside the 0.675 line
        after[n]["flag_fitted"] = _fitted_flags([r for r in new_rows if r["condition"] == n], lines)
    meta = {
        **run_meta("second_look.py", argv, a.threads, t0, load0),
        "doubtful": sum(1 for r in new_rows if r["looked"] or r["chosen"]) if expected else len(todo),
        "side_standin": {str(k): float(np.degrees(np.arctan2(v[0], v[1]))) for k, v in expected.items()},
        "draw": a.draw,
        "first_look_mismatches": mismatch,
        "flag_lines": {str(k): v for k, v in lines.items()},
    }
    md = markdown(before, after, rows, new_rows, meta)
    print(md)
    (out / "second_look.md").write_text(md + "\n")
    (out / "second_look.json").write_text(json.dumps({"meta": meta, "before": before, "after": after}, indent=1,
                                                     default=float))  # fmt: skip
    write_rows(out / "second_look_rows.csv", new_rows, list(new_rows[0]))
    return 1 if mismatch else 0


#: configuration 28's flag lines (tried, not adopted: docs/results.md): the grid, and what a line asks of it
FLAG_GRID = tuple(round(FLAG_BELOW + 0.005 * i, 3) for i in range(36))  # 0.675 ... 0.85
FLAG_CATCH, FLAG_SPARE = 0.90, 0.10


def fit_flag_line(rows: list) -> float:
    """Configuration 28's line from cross-fitted rows: the lowest of FLAG_GRID that flags FLAG_CATCH of the masks with
    Dice < 0.6, lowered to the highest that flags at most FLAG_SPARE of those with Dice >= 0.75, never below FLAG_BELOW."""
    d = np.array([float(r["dice_myo"]) for r in rows], np.float64)
    q = np.array([float(r["quality_dice"]) for r in rows], np.float64)
    bad, good = d < 0.6, d >= 0.75
    catch = [x for x in FLAG_GRID if not bad.any() or float(np.mean(q[bad] < x)) >= FLAG_CATCH]
    spare = [x for x in FLAG_GRID if not good.any() or float(np.mean(q[good] < x)) <= FLAG_SPARE]
    return float(max(FLAG_GRID[0], min(catch[0] if catch else FLAG_GRID[-1], spare[-1] if spare else FLAG_GRID[0])))


def _fitted_line(rows: list, k: int, folds) -> float:
    """Fold k's flag line (fit_flag_line) from the other folds' fit rows, each scored by a regression fitted
    without its own fold and without fold k."""
    from lgenet.segment.quality import fit_quality, predict_quality
    from lgenet.segment.quality_fit import FIT_CONDITIONS

    fit = [r for r in rows if r["condition"] in FIT_CONDITIONS and int(r["fold"]) != k]
    scored = []
    for j in folds:
        if j == k:
            continue
        model = fit_quality([r for r in fit if int(r["fold"]) != j])
        scored += [{**r, **predict_quality(model, r)} for r in fit if int(r["fold"]) == j]
    return fit_flag_line(scored)


def _fitted_flags(rows: list, lines: dict) -> dict:
    """The share of Dice < 0.6 and of Dice >= 0.75 masks flagged when each row's fold has its own line."""
    bad = [r for r in rows if r["dice_myo"] < 0.6]
    good = [r for r in rows if r["dice_myo"] >= 0.75]

    def share(rr):
        return sum(1 for r in rr if r["quality_dice"] < lines[int(r["fold"])]) / len(rr) if rr else None

    return {"n_bad": len(bad), "bad_flagged": share(bad), "n_good": len(good), "good_flagged": share(good)}


def _standin_directions(cases: dict, cfg, fold_of: dict, folds) -> dict:
    """For each fold k, the mean direction of the blood beside the other folds' expert rings, as acquired: the
    stand-in of the geometry EMIDEC's placeholder affines do not give (bench/rv_side.py)."""
    from lgenet.segment.cases import read_case
    from lgenet.segment.rv_side import observe_rv_side

    seen = {}
    for pid, c in cases.items():
        st = read_case(c, cfg)
        seen[pid] = observe_rv_side(st.image, st.classes, st.spacing).direction
    out = {}
    for k in folds:
        m = np.mean([v for p, v in seen.items() if v is not None and fold_of[p] != k], axis=0)
        out[k] = m / np.linalg.norm(m)
    return out


def _fl(f: dict) -> str:
    def pc(x):
        return "n/a" if x is None else f"{100 * x:.0f} %"

    return f"{pc(f['bad_flagged'])} of {f['n_bad']} / {pc(f['good_flagged'])} of {f['n_good']}"


def markdown(before: dict, after: dict, rows: list, new_rows: list, meta: dict) -> str:
    def icc(s):
        a = s["agreement"]
        return f"{a['icc']:.3f}" if a.get("icc") is not None else "n/a"

    def auc(s):
        return f"{s['auc']['auc']:.3f}" if "auc" in s["auc"] else "n/a"

    L = [
        f"Command: `{meta['command']}`  ",
        f"lgenet {meta['lgenet']}; {meta['machine']}; load {meta['load_start']:.2f} at the start, "
        f"{meta['load_end']:.2f} at the end; {meta['wall_s'] / 60:.1f} min; {meta['date']}  ",
        f"Doubtful masks looked at again: {meta['doubtful']}; first looks that did not reproduce their row: "
        f"{len(meta['first_look_mismatches'])}",
        *(
            [
                f"RV side judged, the geometry stood in for by the other folds' mean direction (deg): {meta['side_standin']}"
            ]
            if meta.get("side_standin")
            else []
        ),
        "",
        f"Flag lines fitted per fold (configuration 28, not adopted): {meta.get('flag_lines')}",
        "",
        "| condition (n) | looked again | mask changed (Dice up > 0.05 / down > 0.05) | myocardium Dice mean | found (≥ 0.5) "
        "| missed (< 0.15): measured | refused | LGE % ICC (measured) | AUC | flagged Dice < 0.6 / ≥ 0.75: 0.675 line "
        "before → after; fitted lines after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in before:
        b, a = before[n], after[n]
        idx = [i for i, r in enumerate(rows) if r["condition"] == n]
        looked = sum(1 for i in idx if new_rows[i]["looked"])
        changed = [i for i in idx if new_rows[i]["chosen"]]
        up = sum(1 for i in changed if new_rows[i]["dice_myo"] - rows[i]["dice_myo"] > 0.05)
        down = sum(1 for i in changed if rows[i]["dice_myo"] - new_rows[i]["dice_myo"] > 0.05)
        if meta.get("side_standin"):
            inc0 = sum(1 for i in idx if new_rows[i]["rv_side_first"] == "inconsistent")
            inc1 = sum(1 for i in idx if new_rows[i]["rv_side_kept"] == "inconsistent")
            n = f"{n}, RV side inconsistent {inc0} → {inc1}"
        L.append(
            f"| {n} ({b['n']}) | {looked} | {len(changed)} ({up} / {down}) | {b['dice_myo_mean']:.3f} → "
            f"{a['dice_myo_mean']:.3f} | {b['found']} → {a['found']} | {b['misses_measured']} → {a['misses_measured']} "
            f"| {b['refused']} → {a['refused']} | {icc(b)} → {icc(a)} | {auc(b)} → {auc(a)} "
            f"| {_fl(b['flag'])} → {_fl(a['flag'])}; {_fl(a['flag_fitted'])} |"
        )
    return "\n".join(L)


if __name__ == "__main__":
    raise SystemExit(main())
