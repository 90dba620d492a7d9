"""bench/precision_parity.py --summarise: pooling several seeds' bf16-vs-fp32 comparisons by the multi-seed rule."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest


def _bench():
    spec = importlib.util.spec_from_file_location(
        "precision_parity", Path(__file__).parents[1] / "bench" / "precision_parity.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(tmp_path: Path, seed: int | None, rows: list[tuple[str, float, float, float]]) -> Path:
    """A seed's results.json as the bench writes it: (task, AUC fp32, AUC bf16, paired p) per row."""
    d = tmp_path / f"s{seed}"
    d.mkdir()
    meta = {} if seed is None else {"seed": seed}  # seed-0 runs made before --seed carry no seed
    out = [
        {
            "task": t,
            "model": "resnet50/random",
            "n": 100,
            "n_pos": 60,
            "auc_fp32": [a, a - 0.1, a + 0.1],
            "auc_bf16": [b, b - 0.1, b + 0.1],
            "diff": b - a,
            "p": p,
            "match": p >= 0.05 and abs(b - a) <= 0.05,
        }
        for t, a, b, p in rows
    ]
    (d / "results.json").write_text(json.dumps({"rows": out, "meta": meta}))
    return d


def test_summarise_pools_seeds_and_applies_the_multi_seed_rule(tmp_path):
    mod = _bench()
    runs = [
        _run(tmp_path, None, [("lge", 0.61, 0.62, 0.9), ("event", 0.59, 0.53, 0.18)]),
        _run(tmp_path, 1, [("lge", 0.65, 0.63, 0.7), ("event", 0.55, 0.58, 0.6)]),
        _run(tmp_path, 2, [("lge", 0.60, 0.62, 0.8), ("event", 0.57, 0.58, 0.9)]),
    ]
    rows, md = mod.summarise(runs)
    by = {r["task"]: r for r in rows}
    assert by["lge"]["seeds"] == [0, 1, 2]
    assert by["lge"]["mean_diff"] == pytest.approx((0.01 - 0.02 + 0.02) / 3)
    assert by["event"]["mean_diff"] == pytest.approx((-0.06 + 0.03 + 0.01) / 3)
    assert by["event"]["seeds_matching"] == 2 and by["event"]["min_p"] == pytest.approx(0.18)
    assert by["lge"]["fp32_sd"] == pytest.approx(0.0265, abs=1e-3)
    assert by["lge"]["match"] and by["event"]["match"] and "bf16 matches fp32 on every task" in md
    # a seed with a significant paired difference fails the rule even when the mean is small
    bad = _run(tmp_path, 3, [("lge", 0.70, 0.60, 0.01), ("event", 0.57, 0.58, 0.9)])
    rows, md = mod.summarise(runs + [bad])
    assert not {r["task"]: r for r in rows}["lge"]["match"] and "does **not** match" in md


def test_summarise_refuses_two_runs_of_one_seed_and_a_missing_task(tmp_path):
    mod = _bench()
    a = _run(tmp_path, 1, [("lge", 0.6, 0.6, 1.0)])
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "results.json").write_text((a / "results.json").read_text())
    with pytest.raises(SystemExit, match="share a seed"):
        mod.summarise([a, twin])
    b = _run(tmp_path, 2, [("event", 0.6, 0.6, 1.0)])
    with pytest.raises(SystemExit, match="present in 1 of 2"):
        mod.summarise([a, b])
    with pytest.raises(SystemExit, match="not found"):
        mod.summarise([a, tmp_path / "nowhere"])
