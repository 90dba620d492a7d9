"""Compare two input sets of the quality score on a centre check's rows (bench/centre_check.py's centre_rows.csv).

    python bench/quality_features.py --rows runs/bench/seg/centre/centre_rows.csv --add dim_enhanced

Both sets are cross-fitted as lgenet.segment.quality_fit.cross_fitted does (each fold's masks scored by a
regression fitted on the other folds' rows of the fit conditions). Reported per set: misses given a number
(plausible, Dice < 0.5, predicted Dice >= refuse_below), found hearts withheld (plausible, Dice >= 0.5, predicted
Dice < refuse_below), the Dice flag's rates over the fit conditions, and the Spearman between the predicted and the
actual absolute LGE % error over the measured masks, of the fit conditions and of each other condition. Markdown
to stdout; JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from centre_check import read_rows  # noqa: E402
from lgenet.segment.quality import FEATURES, REFUSE_BELOW  # noqa: E402
from lgenet.segment.quality_fit import FIT_CONDITIONS, cross_fitted, flag_rates  # noqa: E402


def _rho(rows: list[dict]) -> tuple[float, int]:
    from scipy.stats import spearmanr

    ok = [r for r in rows if r["plausible"] and r["quality_dice"] >= REFUSE_BELOW and np.isfinite(r["lge_error_pp"])]
    if len(ok) < 3:
        return float("nan"), len(ok)
    return float(spearmanr([r["quality_lge_error_pp"] for r in ok], [r["lge_error_pp"] for r in ok]).statistic), len(ok)


def compare(rows: list[dict], features: list[str]) -> dict:
    scored = cross_fitted(rows, features=features)
    plausible = [r for r in scored if r["plausible"]]
    fit = [r for r in scored if r["condition"] in FIT_CONDITIONS]
    out = {
        "features": features,
        "misses_with_a_number": sorted(
            f"{r['patient_id']} ({r['condition']})"
            for r in plausible
            if r["dice_myo"] < 0.5 and r["quality_dice"] >= REFUSE_BELOW
        ),
        "found_withheld": sum(1 for r in plausible if r["dice_myo"] >= 0.5 and r["quality_dice"] < REFUSE_BELOW),
        "flag_fit_conditions": flag_rates(fit),
        "lge_error_spearman": {"fit conditions": _rho(fit)},
    }
    for c in dict.fromkeys(r["condition"] for r in scored):
        if c not in FIT_CONDITIONS:
            out["lge_error_spearman"][c] = _rho([r for r in scored if r["condition"] == c])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", required=True, help="a centre_rows.csv of bench/centre_check.py")
    ap.add_argument("--add", nargs="+", required=True, help="the columns added to the score's inputs in force")
    ap.add_argument("--together", nargs="*", default=[], help="conditions whose LGE % Spearman is also pooled")
    ap.add_argument("--json", help="write the comparison here")
    a = ap.parse_args(argv)
    rows = read_rows(Path(a.rows))
    missing = [c for c in a.add if c not in rows[0]]
    if missing:
        ap.error(f"{a.rows} has no column {missing}: rerun bench/centre_check.py with the code that computes it")
    res = {}
    for name, feats in (("in force", list(FEATURES)), ("with " + "+".join(a.add), [*FEATURES, *a.add])):
        r = compare(rows, feats)
        if a.together:
            scored = cross_fitted(rows, features=feats)
            r["lge_error_spearman"]["pooled: " + " + ".join(a.together)] = _rho(
                [x for x in scored if x["condition"] in a.together]
            )
        res[name] = r
    lines = [
        f"Rows: `{a.rows}` ({len(rows)} masks); the score cross-fitted on the fit conditions {list(FIT_CONDITIONS)}",
        "",
        "| measure | " + " | ".join(res) + " |",
        "|---|" + "---|" * len(res),
    ]
    first = next(iter(res.values()))
    lines.append(
        "| misses given a number | " + " | ".join(str(len(r["misses_with_a_number"])) for r in res.values()) + " |"
    )
    lines.append("| found hearts withheld | " + " | ".join(str(r["found_withheld"]) for r in res.values()) + " |")
    lines.append(
        "| flag over the fit conditions: of Dice < 0.6 / of Dice ≥ 0.75 | "
        + " | ".join(
            f"{r['flag_fit_conditions']['bad_flagged']:.1%} of {r['flag_fit_conditions']['n_bad']} / "
            f"{r['flag_fit_conditions']['good_flagged']:.1%} of {r['flag_fit_conditions']['n_good']}"
            for r in res.values()
        )
        + " |"
    )
    for c in first["lge_error_spearman"]:
        lines.append(
            f"| Spearman, predicted vs actual LGE % error: {c} | "
            + " | ".join(
                f"{r['lge_error_spearman'][c][0]:.3f} (n = {r['lge_error_spearman'][c][1]})" for r in res.values()
            )
            + " |"
        )
    for name, r in res.items():
        lines.append(f"\n{name}: misses given a number: {', '.join(r['misses_with_a_number']) or 'none'}")
    print("\n".join(lines))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
