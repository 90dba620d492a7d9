"""segment apply on a labelled cohort: the evaluation counts refused hearts and scores the measured ones."""

from __future__ import annotations

import numpy as np

from lgenet.segment.evaluate import evaluate_apply, format_evaluation


def _rows(n=30, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        ref = float(rng.choice([0.0, rng.uniform(1, 30)]))
        rows.append(
            {
                "patient_id": f"P{i:02d}",
                "lge_percent_expert": ref,
                "lge_percent_pred": ref + float(rng.normal(0, 2)),
                "dice_myo": float(rng.uniform(0.7, 0.9)),
                "dice_cavity": float(rng.uniform(0.85, 0.95)),
                "dice_lge": float(rng.uniform(0.3, 0.7)) if ref > 0 else float("nan"),
                "status": "segmented",
            }
        )
    return rows


def test_measured_hearts_get_cis_and_refused_ones_are_counted_never_averaged():
    rows = _rows()
    rows[3].update(status="implausible LV mask", lge_percent_pred="", dice_myo=0.05)
    rows[7].update(status="no LV found", lge_percent_pred="", dice_myo=0.0)
    rows.append({"patient_id": "U", "lge_percent_expert": "", "lge_percent_pred": 3.0, "status": "segmented"})
    e = evaluate_apply(rows, lge_threshold=5.7)
    assert (e["n_labelled"], e["n_measured"], e["n_refused"]) == (30, 28, 2)
    assert e["refused"] == {"P03": "implausible LV mask", "P07": "no LV found"}
    d = e["dice_myo"]
    assert d["n"] == 28 and d["lower"] < d["mean"] < d["upper"] and 0.7 < d["mean"] < 0.9
    assert e["agreement"]["icc"] > 0.9 and e["auc_lge"]["n"] == 28
    text = format_evaluation(e)
    assert "2 refused (no LGE number): P03 (implausible LV mask), P07 (no LV found)" in text and "ICC" in text


def test_no_expert_mask_no_evaluation():
    assert evaluate_apply([{"patient_id": "A", "lge_percent_expert": "", "status": "segmented"}]) is None
