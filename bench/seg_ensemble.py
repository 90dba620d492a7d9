"""What averaging segmentation models buys, measured out-of-fold on EMIDEC.

    python bench/seg_ensemble.py --runs runs/bench/seg_c5_norm2/run runs/bench/seg_c5_seed1/run \\
        --out runs/bench/seg_ensemble

Each run is a finished ``lgenet segment train`` CV on the same patients (other seeds, hence other
folds, or other settings). For every patient, each run contributes the one fold model that held the
patient out; their softmax probabilities (on the stack's own grid, flip TTA as in the runs) are averaged
and the class map taken from the mean, as ``lgenet segment apply`` does with a fold ensemble. No model
that trained on a patient ever sees it (checked against each fold's recorded training patients), so the
ensemble's Dice, LGE % agreement and AUC are out-of-fold like a single run's. The single runs are
re-scored in the same pass, so the two compare patient by patient (paired bootstrap CI of the mean
difference).

This estimates what a user gets from ``segment apply`` (the average of a run's fold models) better than a
single run's out-of-fold figure does, and what repeating the CV with other seeds would give. Settings are
fixed (runs given in advance); nothing is chosen on the held-out patients.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from lgenet.data.manifest import load_manifest  # noqa: E402
from lgenet.evaluation.metrics import auc_ci, paired_mean_difference  # noqa: E402
from lgenet.evaluation.segmentation import agreement, class_measures, dice  # noqa: E402
from lgenet.models.seginfer import largest_lv_component  # noqa: E402
from lgenet.models.segnet import decode_classes  # noqa: E402
from lgenet.segment import SegRunDir, cases_of, load_segmenter, read_case  # noqa: E402


def _score(rows: list[dict], threshold: float) -> dict:
    y = np.array([int(r["ref"] > threshold) for r in rows])
    whole = auc_ci(y, np.nan_to_num(np.array([r["pred"] for r in rows]), nan=0.0))
    basal = auc_ci(y, np.nan_to_num(np.array([r["basal"] for r in rows]), nan=0.0))
    ag = agreement([r["pred"] for r in rows], [r["ref"] for r in rows])
    return {
        "dice_myo": float(np.nanmean([r["dice_myo"] for r in rows])),
        "dice_lge": float(np.nanmean([r["dice_lge"] for r in rows if r["ref"] > 0])),
        "icc": ag["icc"],
        "bias": ag["bias"],
        "auc_whole": whole.auc,
        "auc_whole_ci": [whole.lower, whole.upper],
        "auc_basal": basal.auc,
        "auc_basal_ci": [basal.lower, basal.upper],
        "n": len(rows),
        "n_positive": int(y.sum()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    ap.add_argument("--runs", nargs="+", required=True, help="finished segmentation run directories (>= 2)")
    ap.add_argument("--manifest", help="manifest with the expert masks (default: the first run's inputs)")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench" / "seg_ensemble"))
    ap.add_argument("--limit", type=int, help="N patients only, from both ends of the list (a check of the script)")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    runs = [Path(r) for r in a.runs]
    if len(runs) < 2:
        ap.error("give at least two runs")
    cfgs = [SegRunDir(r).load_config() for r in runs]
    folds = [SegRunDir(r).read_folds("seg") for r in runs]
    manifest = a.manifest or cfgs[0].manifest
    cases = [
        c
        for c in cases_of(load_manifest(manifest, tasks=None), need_masks=True)
        if all(c.patient_id in f for f in folds)
    ]
    if a.limit:  # both ends of the list (EMIDEC lists its normal cases first)
        cases = cases[: a.limit // 2] + cases[len(cases) - (a.limit - a.limit // 2) :]
    for r, cfg, f in zip(runs, cfgs, folds):  # the fold model that scores a patient must not have trained on it
        for k in range(cfg.folds):
            trained = set(json.loads((SegRunDir(r).fold_dir(k) / "fit.json").read_text())["train_patients"])
            seen = sorted(p for p, fk in f.items() if fk == k and p in trained)
            if seen:
                raise SystemExit(f"{r}: fold {k}'s model trained on its own test patients {seen[:3]}: not out-of-fold")
    models = [{k: load_segmenter(r, [k]) for k in range(cfg.folds)} for r, cfg in zip(runs, cfgs)]
    # nested-region runs decode the averaged class probabilities region by region; a mix takes the argmax
    regions = all(m[0].spec.regions for m in models)
    meta = {
        "command": "python bench/seg_ensemble.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "load_start": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "threads": torch.get_num_threads(),
    }
    t0 = time.time()
    single = [[] for _ in runs]
    ens = []
    for i, c in enumerate(cases):
        st = read_case(c, cfgs[0])
        ref = class_measures(st.classes)
        acc = None
        for j, (cfg, f, ms) in enumerate(zip(cfgs, folds, models)):
            res = ms[f[c.patient_id]](st.image, st.spacing)  # the fold model that held this patient out
            p = res.probs.astype(np.float32)
            acc = p if acc is None else acc + p
            single[j].append(_row(res.classes, st.classes, ref))
        classes = largest_lv_component(decode_classes(acc, regions))
        ens.append(_row(classes, st.classes, ref))
        print(f"\r{i + 1}/{len(cases)} patients", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    thr = cfgs[0].lge_threshold
    out = {
        "runs": [str(r) for r in runs],
        "single": [_score(s, thr) for s in single],
        "ensemble": _score(ens, thr),
        "meta": meta,
    }
    for key in ("dice_myo", "dice_lge"):  # enhancement Dice over the MI patients only, as in the CV
        vals = lambda rows: [r[key] if key == "dice_myo" or r["ref"] > 0 else np.nan for r in rows]  # noqa: E731
        out[f"paired_{key}"] = [
            [(d := paired_mean_difference(vals(s), vals(ens)))["diff"], d["lower"], d["upper"]] for s in single
        ]
    meta["wall_s"] = round(time.time() - t0, 1)
    meta["load_end"] = os.getloadavg()[0]
    L = [
        f"Out-of-fold ensemble of {len(runs)} runs, n = {len(cases)} ({meta['date']}, {meta['machine']}, load "
        f"{meta['load_start']:.2f} -> {meta['load_end']:.2f}, {meta['wall_s']:.0f} s)",
        "",
        "| predictor | Dice myo | Dice LGE (MI) | LGE % ICC / bias | AUC whole | AUC basal |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in [(str(r), s) for r, s in zip(runs, out["single"])] + [("ensemble", out["ensemble"])]:
        L.append(
            f"| {name} | {s['dice_myo']:.3f} | {s['dice_lge']:.3f} | {s['icc']:.3f} / {s['bias']:+.2f} pp | "
            f"{s['auc_whole']:.3f} ({s['auc_whole_ci'][0]:.3f}–{s['auc_whole_ci'][1]:.3f}) | "
            f"{s['auc_basal']:.3f} ({s['auc_basal_ci'][0]:.3f}–{s['auc_basal_ci'][1]:.3f}) |"
        )
    L += ["", "Ensemble minus each run (mean paired difference, 95 % bootstrap CI):"]
    for r, dm, dl in zip(runs, out["paired_dice_myo"], out["paired_dice_lge"]):
        L.append(
            f"- {r}: Dice myo {dm[0]:+.4f} ({dm[1]:+.4f} to {dm[2]:+.4f}), Dice LGE {dl[0]:+.4f} "
            f"({dl[1]:+.4f} to {dl[2]:+.4f})"
        )
    md = "\n".join(L)
    print(md)
    o = Path(a.out)
    o.mkdir(parents=True, exist_ok=True)
    (o / "results.md").write_text(md + "\n")
    (o / "results.json").write_text(json.dumps(out, indent=1, default=str))
    return 0


def _row(pred: np.ndarray, cls: np.ndarray, ref: dict) -> dict:
    mp = class_measures(pred)
    return {
        "dice_myo": dice(pred >= 2, cls >= 2),
        "dice_lge": dice(pred == 3, cls == 3),
        "pred": mp["lge_percent"],
        "basal": mp["lge_percent_basal"],
        "ref": ref["lge_percent"],
    }


if __name__ == "__main__":
    sys.exit(main())
