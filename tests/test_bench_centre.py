"""bench/centre_check.py: a mask counts as measured the way `segment apply` measures it (plausible and a predicted
Dice at least the score's refuse_below), and --rows summarises a check's rows again."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path


def _bench():
    spec = importlib.util.spec_from_file_location(
        "centre_check", Path(__file__).parents[1] / "bench" / "centre_check.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows() -> list[dict]:
    """Ten masks: 6 good, a miss refused as implausible, a miss refused by the score, a miss measured, a partial."""
    out = []
    for i, (dice, plausible, score, pred, ref) in enumerate(
        [(0.85, 1, 0.8, 10.0 + i, 10.0 + i) for i in range(3)]
        + [(0.80, 1, 0.8, 1.0 + i, 0.5 + i) for i in range(3)]
        + [(0.0, 0, 0.3, 90.0, 0.0), (0.0, 1, 0.4, 80.0, 0.0), (0.05, 1, 0.55, 60.0, 20.0), (0.45, 1, 0.6, 30.0, 25.0)]
    ):
        out.append(
            {
                "patient_id": f"Case_{i:03d}",
                "condition": "a proxy",
                "dice_myo": dice,
                "plausible": plausible,
                "quality_dice": score,
                "lge_percent_pred": pred,
                "lge_percent_expert": ref,
            }
        )
    return out


def test_refusals_are_counted_as_segment_apply_counts_them(tmp_path):
    cc = _bench()
    s = cc.summarise(_rows(), 5.7, refuse_below=0.5)
    assert (s["missed"], s["missed_refused"], s["missed_implausible"], s["misses_measured"]) == (3, 2, 1, 1)
    assert (s["refused"], s["refused_implausible"], s["refused_with_dice_ge_0.5"]) == (2, 1, 0)
    assert s["not_found_measured"] == 2 and s["agreement"]["n"] == 8
    # the refusals by the score are left out of the agreement: without them it is worse
    plausible_only = cc.summarise(_rows(), 5.7, refuse_below=0.0)
    assert plausible_only["agreement"]["n"] == 9 and plausible_only["refused"] == 1
    # --rows: the same figures from a centre_rows.csv
    rows_csv = tmp_path / "centre_rows.csv"
    with open(rows_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, list(_rows()[0]))
        w.writeheader()
        w.writerows(_rows())
    assert cc.main(["--rows", str(rows_csv), "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "centre_summary.json").read_text())["conditions"]["a proxy"]
    assert again["refused"] == 2 and again["agreement"]["n"] == 8


def test_a_row_without_a_burden_reads_back_as_nan(tmp_path):
    """A mask with no myocardium has no LGE %: its empty cells read back as NaN, not as an error."""
    import math

    cc = _bench()
    rows = _rows()
    rows[6]["lge_percent_pred"] = ""
    rows_csv = tmp_path / "centre_rows.csv"
    with open(rows_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    back = cc.read_rows(rows_csv)
    assert math.isnan(back[6]["lge_percent_pred"]) and back[0]["lge_percent_pred"] == 10.0
    assert back[6]["patient_id"] == "Case_006"
