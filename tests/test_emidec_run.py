"""EMIDEC end to end: a 12-patient subset through ``lgenet run`` (issue 4, part 3).

Needs ``../shared/data/emidec`` (skipped with the reason otherwise, through the ``emidec_root``
fixture of conftest.py). The subset is chosen from the imported labels so that both tasks keep
both classes in every one of 3 stratified folds: 6 ``lge`` positives and 6 negatives, 4 ``event``
positives (2 in each ``lge`` group). The tiny backbone at 32 px for 2 epochs keeps it to seconds;
it checks the plumbing (import -> manifest -> CV grid -> metrics), not a result. The study report
that ``run_experiment`` writes at its end (CAM gallery + sanity checks, ~70 s here on 2 shared
cores) is skipped with --no-report: it is tested in tests/test_report.py and does not change the metrics.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from lgenet.cli import main
from lgenet.data.importers import import_emidec
from lgenet.data.manifest import write_manifest

pytestmark = pytest.mark.emidec

FOLDS = 3
TASKS = ("lge", "event")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _subset(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """First IDs (sorted) of each (lge, event) stratum: 2 + 2 event positives, 4 + 4 negatives."""
    want = {(1, 1): 2, (0, 1): 2, (1, 0): 4, (0, 0): 4}
    picked = []
    for r in sorted(rows, key=lambda r: r["patient_id"]):
        key = (int(float(r["lge_percent"]) > 5.7), int(r["event"]))
        if want.get(key, 0) > 0:
            want[key] -= 1
            picked.append(r)
    assert not any(want.values()), f"EMIDEC lacks patients for the strata still wanted: {want}"
    return picked


@pytest.fixture(scope="module")
def emidec_subset(emidec_root, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("emidec12")
    full = import_emidec(emidec_root, d / "emidec.csv")
    rows = _rows(full)
    sub = d / "emidec12.csv"
    write_manifest(sub, _subset(rows), columns=list(rows[0].keys()))
    return sub


def test_emidec_12_patients_through_lgenet_run(emidec_subset, tmp_path):
    sub_rows = _rows(emidec_subset)
    assert len(sub_rows) == 12
    assert sum(float(r["lge_percent"]) > 5.7 for r in sub_rows) == 6
    assert sum(int(r["event"]) for r in sub_rows) == 4

    out = tmp_path / "run"
    rc = main(
        [
            "run",
            "--manifest",
            str(emidec_subset),
            "--out",
            str(out),
            "--archs",
            "tiny",
            "--inits",
            "random",
            "--epochs",
            "2",
            "--image-size",
            "32",
            "--folds",
            str(FOLDS),
            "--no-report",
            "-q",
        ]
    )
    assert rc == 0

    # metrics.csv: one row per task with an AUC and its CI
    metrics = _rows(out / "metrics.csv")
    by_task = {m["task"]: m for m in metrics}
    assert set(by_task) == set(TASKS)
    for task, n_pos in (("lge", 6), ("event", 4)):
        m = by_task[task]
        assert m["model"] == "tiny/random"
        assert int(m["n"]) == 12 and int(m["n_pos"]) == n_pos
        auc, lo, hi = float(m["auc"]), float(m["auc_lower"]), float(m["auc_upper"])
        assert all(math.isfinite(v) for v in (auc, lo, hi)), m
        assert 0.0 <= lo <= auc <= hi <= 1.0

    # out-of-fold predictions: every one of the 12 patients exactly once per (task, model)
    oof = _rows(out / "oof_predictions.csv")
    all_ids = {r["patient_id"] for r in sub_rows}
    for task in TASKS:
        ids = [r["patient_id"] for r in oof if r["task"] == task and r["model"] == "tiny/random"]
        assert len(ids) == 12 and set(ids) == all_ids

    # no patient on both sides of a fold
    for task in TASKS:
        folds = {r["patient_id"]: int(r["fold"]) for r in _rows(out / f"folds_{task}.csv")}
        assert set(folds) == all_ids and set(folds.values()) == set(range(FOLDS))
        labels = {r["patient_id"]: int(r["label"]) for r in _rows(out / f"folds_{task}.csv")}
        seen_test: set[str] = set()
        for k in range(FOLDS):
            fit = out / "fits" / task / "tiny__random" / f"fold{k}"
            test = {r["patient_id"] for r in _rows(fit / "predictions.csv")}
            assert test == {p for p, f in folds.items() if f == k}
            assert {labels[p] for p in test} == {0, 1}  # stratified: both classes in every test fold
            info = json.loads((fit / "fit.json").read_text())
            assert info["n_test_patients"] == len(test)
            assert info["n_train_patients"] == 12 - len(test)  # the training side is exactly the rest
            assert not seen_test & test
            seen_test |= test
        assert seen_test == all_ids
