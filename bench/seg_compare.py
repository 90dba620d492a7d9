"""Two segmentation CV runs on the same folds, compared patient by patient.

    python bench/seg_compare.py runs/bench/seg_c5_norm2/run runs/bench/seg_c9_regions/run

Both runs must be finished ``lgenet segment train`` CVs with the same patients in the same folds
(``folds_seg.csv`` identical: same ``seed`` and stratification), so that every patient's two
out-of-fold results come from models that held it out in the same split. Printed (and with ``--out``,
written as ``results.md`` / ``results.json``): per measure the two means, the mean paired difference
(second run minus first) with a 95 % bootstrap CI and the Wilcoxon signed-rank p, for myocardium Dice
(every patient), enhancement Dice (patients with expert enhancement, as in the CV summary) and cavity
Dice; the two runs' LGE % ICC / bias and whole-stack / basal AUCs from their summaries; and the paired
DeLong test of the whole-stack burden AUCs. A rule for adopting a setting is written before its run
(``RULE.txt`` beside it); this script only measures.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from lgenet.evaluation.metrics import delong_test, paired_mean_difference  # noqa: E402

MEASURES = (
    ("dice_myo", "Dice myocardium", False),
    ("dice_lge", "Dice enhancement (MI)", True),
    ("dice_cavity", "Dice cavity", False),
)


def _rows(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        raise SystemExit(f"{path} not found: give the folder of a finished `lgenet segment train` run")
    with open(path, newline="") as fh:
        return {r["patient_id"]: r for r in csv.DictReader(fh)}


def _f(v: str) -> float:
    return float(v) if v not in ("", None) else float("nan")


def compare(run_a: Path, run_b: Path) -> dict:
    fa, fb = _rows(run_a / "folds_seg.csv"), _rows(run_b / "folds_seg.csv")
    if {p: r["fold"] for p, r in fa.items()} != {p: r["fold"] for p, r in fb.items()}:
        raise SystemExit(
            f"{run_a} and {run_b} do not share their folds (folds_seg.csv differs): a paired "
            f"comparison needs the same seed and stratification"
        )
    ma, mb = _rows(run_a / "seg_metrics.csv"), _rows(run_b / "seg_metrics.csv")
    if set(ma) != set(mb):
        raise SystemExit(f"the two runs scored different patients ({len(set(ma) ^ set(mb))} differ)")
    pids = sorted(ma)
    out = {"runs": [str(run_a), str(run_b)], "n": len(pids), "measures": {}}
    for key, label, mi_only in MEASURES:
        keep = [p for p in pids if not mi_only or _f(ma[p]["lge_percent_expert"]) > 0]
        a = np.array([_f(ma[p][key]) for p in keep])
        b = np.array([_f(mb[p][key]) for p in keep])
        out["measures"][key] = {
            "label": label,
            "mean_a": float(np.nanmean(a)),
            "mean_b": float(np.nanmean(b)),
            **paired_mean_difference(a, b),
        }
    y = np.array([int(ma[p]["lge_label"]) for p in pids])
    sa = np.array([_f(ma[p]["lge_percent_pred"]) for p in pids])
    sb = np.array([_f(mb[p]["lge_percent_pred"]) for p in pids])
    dt = delong_test(y, sb, sa)
    out["auc_whole_paired"] = {"diff": float(dt.diff), "p": float(dt.p_value)}
    out["summaries"] = []
    for run in (run_a, run_b):
        s = json.loads((run / "seg_summary.json").read_text())
        ag = s["agreement"]["network"]
        out["summaries"].append({"icc": ag["icc"], "bias": ag["bias"], "auc": s.get("auc_lge", {})})
    return out


def markdown(res: dict) -> str:
    a, b = res["runs"]
    L = [
        f"A = `{a}`, B = `{b}`, n = {res['n']}, same folds",
        "",
        "| measure | A | B | B − A (95 % bootstrap CI) | Wilcoxon p | n |",
        "|---|---|---|---|---|---|",
    ]
    for m in res["measures"].values():
        L.append(
            f"| {m['label']} | {m['mean_a']:.3f} | {m['mean_b']:.3f} | {m['diff']:+.3f} ({m['lower']:+.3f} to "
            f"{m['upper']:+.3f}) | {m['wilcoxon_p']:.2g} | {m['n']} |"
        )
    sa, sb = res["summaries"]
    L.append(
        f"| LGE % ICC / bias | {sa['icc']:.3f} / {sa['bias']:+.2f} pp | {sb['icc']:.3f} / {sb['bias']:+.2f} pp | "
        f"| | {res['n']} |"
    )
    aw = res["auc_whole_paired"]
    L.append(f"| AUC whole stack (burden) | | | {aw['diff']:+.3f} (paired DeLong p {aw['p']:.2f}) | | {res['n']} |")
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_a", type=Path, help="the reference run (e.g. the default configuration)")
    ap.add_argument("run_b", type=Path, help="the run being compared with it")
    ap.add_argument("--out", type=Path, help="write results.md and results.json here")
    a = ap.parse_args(argv)
    res = compare(a.run_a, a.run_b)
    md = markdown(res)
    print(md)
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "results.md").write_text(md + "\n")
        (a.out / "results.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
