"""Configuration 30: the network's enhancement held to the remote-referenced 2-SD line
(gate_enhancement below; not adopted, so it lives in this bench only), measured on a finished EMIDEC segmentation run as `segment apply` runs it:

    python bench/enhancement_gate.py --run runs/bench/seg_c20cv/run \
        --rows runs/bench/seg_c20cv/centre_draw2/centre_rows.csv --draw 2 --out runs/bench/gate_draw2

EMIDEC as acquired: the run's out-of-fold masks as applied (``as_applied/``: the second look's masks where it
replaced one, else ``masks/``), against the expert masks, without and with the gate. The proxies: every row of a
bench/centre_check.py run is segmented again under the same seeded draw (its first look must reproduce the row's
Dice: checked); a mask the score doubts gets the second look with the frame scan, the score fitted without the
patient's fold on that draw's rows (as bench/second_look.py does); the kept mask's burden is measured without and
with the gate. The gate acts after the score has judged the mask. Markdown to stdout and <out>/gate.md, the rows
to <out>/.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from lgenet.segment.quality import fit_quality  # noqa: E402
from lgenet.segment.quality_fit import FIT_CONDITIONS, _conditions, condition_rng  # noqa: E402

N_SD = 2.0  # fixed in runs/bench/RULE_gate.txt before any gated burden was computed


def gate_enhancement(image: np.ndarray, classes: np.ndarray, *, n_sd: float = N_SD) -> np.ndarray:
    """A class map (0-3, ``(S, H, W)``) whose enhancement (3) is kept only where the signal is also above its
    slice's ``n_sd`` line of the remote myocardium (lgenet.quantify's n-SD rule, automatic remote: the darkest
    sector); enhanced voxels below it become myocardium (2). Unchanged without enhancement or remote myocardium."""
    from lgenet.errors import DataError
    from lgenet.quantify import quantify

    c = np.asarray(classes)
    enh = c == 3
    if not enh.any():
        return c.copy()
    try:
        q = quantify(image, c >= 2, method="nsd", n_sd=n_sd)
    except DataError:
        return c.copy()
    key = f"nsd{int(n_sd)}" if float(n_sd).is_integer() else f"nsd{float(n_sd):g}"
    out = c.copy()
    out[enh & ~np.asarray(q[key].mask, bool)] = 2
    return out


def _emidec(rd, cfg, cases, gate) -> dict:
    """The run's out-of-fold masks as applied, plain and gated, against the expert masks."""
    from lgenet.evaluation.metrics import auc_ci
    from lgenet.evaluation.segmentation import agreement, class_measures, dice
    from lgenet.segment.cases import read_case, safe_id

    out = {"plain": [], "gated": []}
    for pid, c in sorted(cases.items()):
        name = f"{safe_id(pid)}.nii.gz"
        pred = rd.as_applied_dir / "masks" / name
        pred = pred if pred.is_file() else rd.masks_dir / name
        st = read_case(c, cfg)
        pr = read_case(dataclasses.replace(c, mask=str(pred)), cfg).classes
        for key, cl in (("plain", pr), ("gated", gate(st.image, pr))):
            mp, me = class_measures(cl), class_measures(st.classes)
            out[key].append(
                {
                    "patient_id": pid,
                    "lge_pred": mp["lge_percent"],
                    "lge_expert": me["lge_percent"],
                    "dice_lge": dice(cl == 3, st.classes == 3),
                    "dice_myo": dice(cl >= 2, st.classes >= 2),
                }
            )
    res = {}
    for key, rows in out.items():
        p = np.array([r["lge_pred"] for r in rows])
        e = np.array([r["lge_expert"] for r in rows])
        dl = np.array([r["dice_lge"] for r in rows])
        a = auc_ci((e > cfg.lge_threshold).astype(int), np.nan_to_num(p))
        res[key] = {
            "n": len(rows),
            "agreement": agreement(p, e),
            "auc": {"auc": a.auc, "lower": a.lower, "upper": a.upper, "n": a.n, "n_pos": a.n_pos},
            "dice_lge_mi": float(np.nanmean(dl[e > 0])),
            "n_mi": int((e > 0).sum()),
            "dice_myo": float(np.nanmean([r["dice_myo"] for r in rows])),
        }
    return res


def _expert_cut(cases) -> dict:
    """How much of the experts' own enhancement the gate would cut: EMIDEC's labels 3 (infarct) and 4 (no-reflow),
    read raw from the masks (slices on the last axis), the gate applied to the expert class map."""
    import nibabel as nib

    tot, cut = {3: 0, 4: 0}, {3: 0, 4: 0}
    for c in cases.values():
        img = np.moveaxis(np.asarray(nib.load(c.image).dataobj, np.float32), -1, 0)
        m = np.moveaxis(np.asarray(nib.load(c.mask).dataobj).astype(int), -1, 0)
        cl = np.zeros(m.shape, np.uint8)
        cl[m == 1], cl[m == 2], cl[(m == 3) | (m == 4)] = 1, 2, 3
        g = gate_enhancement(img, cl)
        for lab in tot:
            tot[lab] += int((m == lab).sum())
            cut[lab] += int(((m == lab) & (g == 2)).sum())
    return {str(k): {"voxels": tot[k], "below_line": cut[k], "share": cut[k] / max(tot[k], 1)} for k in tot}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--rows", required=True, help="the centre_rows.csv of bench/centre_check.py on that run")
    ap.add_argument("--draw", type=int, default=0, help="the draw the rows were made with")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, help="only the first N patients of the proxies (a check of the script)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--emidec-only",
        action="store_true",
        help="only EMIDEC as acquired (criterion (a) of runs/bench/RULE_gate.txt), no proxies segmented",
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
    from lgenet.segment.second_look import doubtful, second_look

    torch.set_num_threads(a.threads)
    t0, load0 = time.time(), os.getloadavg()[0]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    def gate(image, classes):
        return gate_enhancement(image, classes, n_sd=N_SD)

    rd = SegRunDir(a.run)
    cfg = rd.load_config()
    profile = rd.read_profile()
    cases = {c.patient_id: c for c in cases_of(load_manifest(cfg.manifest, tasks=None), need_masks=True)}
    emidec = _emidec(rd, cfg, cases, gate)
    emidec["expert_cut"] = _expert_cut(cases)

    if a.emidec_only:
        meta = {**run_meta("enhancement_gate.py", argv, a.threads, t0, load0), "draw": a.draw, "n_sd": N_SD,
                "first_look_mismatches": []}  # fmt: skip
        md = markdown(emidec, {}, meta)
        print(md)
        (out / "gate.md").write_text(md + "\n")
        (out / "gate.json").write_text(json.dumps({"meta": meta, "emidec": emidec}, indent=1, default=float))
        return 0
    rows = read_rows(Path(a.rows))
    if a.limit:
        keep = sorted({r["patient_id"] for r in rows})[: a.limit]
        rows = [r for r in rows if r["patient_id"] in keep]
    names = list(dict.fromkeys(r["condition"] for r in rows))
    older = {"older shifts, all at once": _older_shifts()["all at once"]}
    table = _conditions(names, {k: v for k, v in older.items() if k in names})
    all_rows = read_rows(Path(a.rows))
    folds = sorted({int(r["fold"]) for r in all_rows})
    arbiter = {
        k: fit_quality([r for r in all_rows if int(r["fold"]) != k and r["condition"] in FIT_CONDITIONS]) for k in folds
    }
    models = {k: load_segmenter(rd.path, [k]) for k in folds}
    plain, gated, mismatch = [], [], []
    order = sorted(range(len(rows)), key=lambda i: rows[i]["patient_id"])
    stacks: dict = {}
    for i in tqdm(order, desc="masks", unit="mask", disable=a.no_progress):
        r = rows[i]
        pid, name, k = r["patient_id"], r["condition"], int(r["fold"])
        if pid not in stacks:
            stacks = {pid: read_case(cases[pid], cfg)}
        st = stacks[pid]
        smm = float(st.meta.get("slice_spacing") or st.meta.get("slice_thickness") or 10.0)
        img, cls, sp = st.image.astype(np.float32), st.classes, st.spacing
        f = table[name]
        if f is not None:
            img, cls, sp, smm = f(img, cls, sp, smm, condition_rng(pid, name, a.draw))
        outside = len(shift_warnings(profile, frame_features(img[-1], {"pixel_spacing": sp}))) if profile else 0
        seg = models[k]
        first = seg(img, sp)
        d0 = dice(first.classes >= 2, cls >= 2)
        d0 = 0.0 if not math.isfinite(d0) else d0
        if abs(d0 - r["dice_myo"]) > 1e-4:
            mismatch.append((pid, name, r["dice_myo"], d0))
        row = dict(r, looked=0, chosen=0)
        kept = first
        if doubtful(SimpleNamespace(ok=bool(int(r["plausible"]))), r, arbiter[k]):
            look = second_look(seg, img, sp, smm, arbiter[k], profile_outside=outside, first=first, scan=True)
            row["looked"], row["chosen"] = look.looked, look.chosen
            if look.chosen:
                kept = look.result
                d = dice(kept.classes >= 2, cls >= 2)
                row.update(dice_myo=0.0 if not math.isfinite(d) else d, plausible=int(look.verdict.ok), **look.quality)
        me = class_measures(cls)
        for dest, cl in ((plain, kept.classes), (gated, gate(img, kept.classes))):
            mp = class_measures(cl)
            err = mp["lge_percent"] - me["lge_percent"]
            dest.append(
                dict(
                    row,
                    lge_percent_pred=mp["lge_percent"],
                    lge_error_pp=abs(err) if math.isfinite(err) else float("nan"),
                    dice_lge=dice(cl == 3, cls == 3),
                )
            )

    def dice_lge(rr):
        v = [x["dice_lge"] for x in rr if x["lge_percent_expert"] > 0 and math.isfinite(x["dice_lge"])]
        return float(np.mean(v)) if v else None

    res = {}
    for n in names:
        res[n] = {}
        for key, rr in (("plain", plain), ("gated", gated)):
            sel = [x for x in rr if x["condition"] == n]
            res[n][key] = {**summarise(sel, cfg.lge_threshold), "dice_lge_mi": dice_lge(sel)}
    meta = {
        **run_meta("enhancement_gate.py", argv, a.threads, t0, load0),
        "draw": a.draw,
        "n_sd": N_SD,
        "first_look_mismatches": mismatch,
    }
    md = markdown(emidec, res, meta)
    print(md)
    (out / "gate.md").write_text(md + "\n")
    (out / "gate.json").write_text(
        json.dumps({"meta": meta, "emidec": emidec, "conditions": res}, indent=1, default=float)
    )
    write_rows(out / "gate_rows_plain.csv", plain, list(plain[0]))
    write_rows(out / "gate_rows_gated.csv", gated, list(gated[0]))
    return 1 if mismatch else 0


def markdown(emidec: dict, res: dict, meta: dict) -> str:
    def ag(s):
        a = s["agreement"]
        if a.get("icc") is None:
            return "n/a"
        return f"{a['icc']:.3f}, {a['bias']:+.2f} ({a['loa_lower']:+.1f}..{a['loa_upper']:+.1f})"

    def auc(s):
        return f"{s['auc']['auc']:.3f}" if "auc" in s["auc"] else "n/a"

    def dl(v):
        return "n/a" if v is None else f"{v:.3f}"

    L = [
        f"Command: `{meta['command']}`  ",
        f"lgenet {meta['lgenet']}; {meta['machine']}; load {meta['load_start']:.2f} at the start, "
        f"{meta['load_end']:.2f} at the end; {meta['wall_s'] / 60:.1f} min; {meta['date']}; draw {meta['draw']}; "
        f"gate at {meta['n_sd']:g} SD; first looks that did not reproduce their row: {len(meta['first_look_mismatches'])}",
        "",
        "EMIDEC as acquired, the run's out-of-fold masks as applied (plain → gated):",
        "",
        "| n | LGE % ICC, bias (limits) | AUC | enhancement Dice (MI patients) | myocardium Dice |",
        "|---|---|---|---|---|",
        f"| {emidec['plain']['n']} | {ag(emidec['plain'])} → {ag(emidec['gated'])} | {auc(emidec['plain'])} → "
        f"{auc(emidec['gated'])} | {emidec['plain']['dice_lge_mi']:.3f} → {emidec['gated']['dice_lge_mi']:.3f} "
        f"(n = {emidec['plain']['n_mi']}) | {emidec['plain']['dice_myo']:.3f} → {emidec['gated']['dice_myo']:.3f} |",
        "",
        "The experts' own enhancement below the line: infarct (label 3) "
        f"{100 * emidec['expert_cut']['3']['share']:.1f} % of {emidec['expert_cut']['3']['voxels']} voxels, no-reflow "
        f"(label 4) {100 * emidec['expert_cut']['4']['share']:.1f} % of {emidec['expert_cut']['4']['voxels']}.",
        "",
        "The proxies, second look with the scan (plain → gated; ICC, bias and limits on the measured masks):",
        "",
        "| condition (n) | myocardium Dice | LGE % ICC, bias (limits) | AUC | enhancement Dice (expert enhancement) |",
        "|---|---|---|---|---|",
    ]
    for n, s in res.items():
        p, g = s["plain"], s["gated"]
        L.append(
            f"| {n} ({p['n']}) | {p['dice_myo_mean']:.3f} | {ag(p)} → {ag(g)} | {auc(p)} → {auc(g)} | "
            f"{dl(p['dice_lge_mi'])} → {dl(g['dice_lge_mi'])} |"
        )
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
