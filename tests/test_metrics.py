"""Tests of lgenet.evaluation.metrics and lgenet.evaluation.summary (against scikit-learn and by hand)."""

from __future__ import annotations

import csv
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, confusion_matrix, roc_auc_score

from lgenet.errors import ConfigError, DataError, LgenetError
from lgenet.evaluation import (
    AUCResult,
    MetricsInputError,
    SingleClassError,
    auc_ci,
    binary_metrics,
    bootstrap_auc_ci,
    calibration,
    delong_auc_ci,
    delong_test,
    evaluate_oof,
    format_table,
    read_metrics,
    wilson_ci,
    write_metrics,
)
from lgenet.evaluation.metrics.auc import _midranks, _weighted_aucs
from lgenet.runs.grid import RunDir

# ---------------------------------------------------------------------------------- helpers
# labels + tie-heavy scores (values on a coarse grid), both classes present
labelled_scores = st.integers(min_value=2, max_value=25).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        st.lists(st.integers(0, 6).map(lambda k: k / 6), min_size=n, max_size=n),
    )
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


def _psi(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Brute-force kernel: 1 if positive scored higher, 1/2 if tied, 0 otherwise (m x n)."""
    return (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])


def _brute_delong_var(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    psi = _psi(pos, neg)
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return float(np.var(v10, ddof=1) / pos.size + np.var(v01, ddof=1) / neg.size)


def _toy(n: int = 116, prev: float = 0.17, signal: float = 1.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prev).astype(int)
    y[:2] = [1, 0]
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + signal * y - 1.2)))
    return y, p


# ---------------------------------------------------------------------------------- AUC
@SETTINGS
@given(labelled_scores)
def test_auc_equals_sklearn_with_ties(data):
    y, s = map(np.asarray, data)
    assume(0 < y.sum() < y.size)
    expected = roc_auc_score(y, s)
    r = delong_auc_ci(y, s)
    assert r.auc == pytest.approx(expected, abs=1e-12)
    assert r.n == y.size and r.n_pos == int(y.sum()) and r.n_neg == int(y.size - y.sum())
    assert bootstrap_auc_ci(y, s, n_boot=20).auc == pytest.approx(expected, abs=1e-12)


@SETTINGS
@given(labelled_scores)
def test_delong_variance_equals_brute_force_placements(data):
    y, s = map(np.asarray, data)
    assume(y.sum() >= 2 and y.size - y.sum() >= 2)
    r = delong_auc_ci(y, s)
    assert r.se**2 == pytest.approx(_brute_delong_var(y, s), abs=1e-12)
    if r.se > 0:
        z = (r.upper - r.lower) / (2 * r.se) if 0 < r.lower and r.upper < 1 else None
        if z is not None:
            assert z == pytest.approx(1.959964, abs=1e-5)


def test_delong_hand_computed_example():
    # pos 0.8, 0.6; neg 0.7, 0.2 -> psi [[1,1],[0,1]]: V10=(1, .5), V01=(.5, 1): var=.125/2+.125/2
    r = delong_auc_ci([1, 1, 0, 0], [0.8, 0.6, 0.7, 0.2])
    assert r.auc == pytest.approx(0.75)
    assert r.se == pytest.approx(math.sqrt(0.125))
    assert r.method == "delong" and r.confidence == 0.95
    assert r.lower == pytest.approx(max(0.0, 0.75 - 1.959964 * math.sqrt(0.125)), abs=1e-6)
    assert r.upper == 1.0  # clipped


def test_midranks_match_average_ranks():
    from scipy.stats import rankdata

    x = np.array([3.0, 1.0, 3.0, 2.0, 3.0, 1.0, 0.5])
    np.testing.assert_allclose(_midranks(x), rankdata(x, method="average"))


def test_logit_ci_inside_unit_interval_and_asymmetric():
    y, p = _toy(seed=1, signal=3.0)
    plain = delong_auc_ci(y, p)
    lg = delong_auc_ci(y, p, logit=True)
    assert lg.method == "delong-logit" and lg.auc == plain.auc and lg.se == plain.se
    assert 0 < lg.lower < lg.auc < lg.upper < 1
    assert (lg.upper - lg.auc) < (lg.auc - lg.lower)  # squeezed towards 1
    # perfect separation: variance 0, degenerate interval, no crash
    perfect = delong_auc_ci([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], logit=True)
    assert (perfect.auc, perfect.lower, perfect.upper, perfect.se) == (1.0, 1.0, 1.0, 0.0)


def test_single_positive_gives_nan_ci_not_crash():
    r = delong_auc_ci([1, 0, 0, 0], [0.9, 0.1, 0.5, 0.95])
    assert r.auc == pytest.approx(2 / 3)
    assert math.isnan(r.se) and math.isnan(r.lower) and math.isnan(r.upper)
    assert "CI n/a" in r.format()


def test_confidence_level_changes_width():
    y, p = _toy(seed=2)
    w90 = delong_auc_ci(y, p, confidence=0.90)
    w99 = delong_auc_ci(y, p, confidence=0.99)
    assert (w99.upper - w99.lower) > (w90.upper - w90.lower)
    assert w99.format().startswith(f"AUC {w99.auc:.2f} (99% CI ")


def test_aucresult_format_and_frozen():
    r = AUCResult(0.8, 0.7, 0.9, 0.05, 116, 19, 97, "delong", 0.95)
    assert r.format() == "AUC 0.80 (95% CI 0.70\u20130.90), n=116 (19+)"
    with pytest.raises(Exception):
        r.auc = 0.5  # type: ignore[misc]
    assert r.as_dict()["n_pos"] == 19


# ---------------------------------------------------------------------------------- bootstrap
def test_bootstrap_covers_auc_and_is_deterministic():
    y, p = _toy(seed=3)
    a = bootstrap_auc_ci(y, p, n_boot=500, random_state=7)
    b = bootstrap_auc_ci(y, p, n_boot=500, random_state=7)
    c = bootstrap_auc_ci(y, p, n_boot=500, random_state=8)
    assert a == b
    assert (a.lower, a.upper) != (c.lower, c.upper)
    assert a.lower <= a.auc <= a.upper
    assert a.method == "bootstrap" and a.n_pos == int(y.sum())
    d = delong_auc_ci(y, p)
    assert a.se == pytest.approx(d.se, rel=0.3)  # the two SEs agree roughly at n=116
    gen = bootstrap_auc_ci(y, p, n_boot=200, random_state=np.random.default_rng(7))
    assert gen.lower <= gen.auc <= gen.upper


def test_bootstrap_large_cohort_chunked():
    y, p = _toy(n=1500, seed=4)  # (n_boot, n) work arrays are processed in chunks here
    a = bootstrap_auc_ci(y, p, n_boot=2000, random_state=1)
    assert a == bootstrap_auc_ci(y, p, n_boot=2000, random_state=1)
    assert a.lower <= a.auc <= a.upper
    assert a.se == pytest.approx(delong_auc_ci(y, p).se, rel=0.15)


@SETTINGS
@given(labelled_scores, st.integers(0, 10_000))
def test_weighted_auc_equals_auc_of_resampled_data(data, seed):
    y, s = map(np.asarray, data)
    assume(0 < y.sum() < y.size)
    pos, neg = s[y == 1].astype(float), s[y == 0].astype(float)
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, pos.size, pos.size)
    ib = rng.integers(0, neg.size, neg.size)
    wpos = np.bincount(ia, minlength=pos.size)[None, :].astype(float)
    wneg = np.bincount(ib, minlength=neg.size)[None, :].astype(float)
    got = _weighted_aucs(pos, neg, wpos, wneg)[0]
    expected = roc_auc_score(np.r_[np.ones(ia.size), np.zeros(ib.size)], np.r_[pos[ia], neg[ib]])
    assert got == pytest.approx(expected, abs=1e-12)


def test_bootstrap_bad_n_boot():
    with pytest.raises(ConfigError, match="n_boot"):
        bootstrap_auc_ci([0, 1], [0.1, 0.9], n_boot=1)


def test_auc_ci_dispatch():
    y, p = _toy(seed=5)
    assert auc_ci(y, p) == delong_auc_ci(y, p)
    # bootstrap-only options are ignored by DeLong so one call site can pass the whole config
    assert auc_ci(y, p, method="delong", n_boot=100, random_state=3) == delong_auc_ci(y, p)
    assert auc_ci(y, p, method="bootstrap", n_boot=100, random_state=3) == bootstrap_auc_ci(
        y, p, n_boot=100, random_state=3
    )
    with pytest.raises(ConfigError, match="'roc'"):
        auc_ci(y, p, method="roc")
    with pytest.raises(ConfigError, match="logit"):
        auc_ci(y, p, method="bootstrap", logit=True)


# ---------------------------------------------------------------------------------- DeLong test
def test_delong_test_identical_scores_p_is_one_without_warnings():
    y, p = _toy(seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = delong_test(y, p, p)
        r2 = delong_test(y, p, p**3)  # rank-identical
    assert (r.diff, r.se, r.z, r.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert r2.p_value == 1.0


def test_delong_test_much_better_model_small_p_and_symmetric():
    y, good = _toy(seed=7, signal=4.0)
    rng = np.random.default_rng(0)
    bad = rng.random(y.size)
    r = delong_test(y, good, bad)
    assert r.auc_a == pytest.approx(roc_auc_score(y, good))
    assert r.auc_b == pytest.approx(roc_auc_score(y, bad))
    assert r.diff > 0.2 and r.p_value < 0.001
    rev = delong_test(y, bad, good)
    assert rev.p_value == pytest.approx(r.p_value) and rev.diff == pytest.approx(-r.diff)


def test_delong_test_variance_equals_brute_force():
    y, a = _toy(n=40, seed=8)
    b = np.clip(a + np.random.default_rng(1).normal(0, 0.2, a.size), 0, 1)
    pa, na, pb, nb = a[y == 1], a[y == 0], b[y == 1], b[y == 0]
    da, db = _psi(pa, na), _psi(pb, nb)
    v10 = da.mean(1) - db.mean(1)
    v01 = da.mean(0) - db.mean(0)
    var = np.var(v10, ddof=1) / pa.size + np.var(v01, ddof=1) / na.size
    r = delong_test(y, a, b)
    assert r.se == pytest.approx(math.sqrt(var), rel=1e-10)
    from scipy.stats import norm

    assert r.p_value == pytest.approx(2 * norm.sf(abs(r.diff / math.sqrt(var))), rel=1e-10)


def test_delong_test_errors_name_argument():
    with pytest.raises(MetricsInputError, match="score_b"):
        delong_test([0, 1, 1], [0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(SingleClassError, match="n_pos=0, n_neg=3"):
        delong_test([0, 0, 0], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3])


# ---------------------------------------------------------------------------------- threshold metrics
def test_wilson_known_values():
    p, lo, hi = wilson_ci(8, 10)
    assert p == 0.8
    assert lo == pytest.approx(0.490, abs=5e-4) and hi == pytest.approx(0.943, abs=5e-4)
    _, lo0, hi0 = wilson_ci(0, 10)
    assert lo0 == 0.0 and hi0 == pytest.approx(1.959964**2 / (10 + 1.959964**2), abs=1e-6)  # 0.2775
    _, lo1, hi1 = wilson_ci(10, 10)
    assert hi1 == 1.0 and lo1 == pytest.approx(1 - hi0, abs=1e-12)
    assert all(math.isnan(v) for v in wilson_ci(0, 0))
    with pytest.raises(MetricsInputError):
        wilson_ci(3, 2)


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 10).map(lambda k: k / 10)), min_size=1, max_size=40),
    st.sampled_from([0.3, 0.5, 0.7]),
)
def test_binary_metrics_match_sklearn_confusion_matrix(pairs, thr):
    y = np.array([a for a, _ in pairs])
    s = np.array([b for _, b in pairs])
    m = binary_metrics(y, s, threshold=thr)
    tn, fp, fn, tp = confusion_matrix(y, (s >= thr).astype(int), labels=[0, 1]).ravel()
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn)

    def ratio(a, b):
        return a / b if b else float("nan")

    for key, val in (
        ("sensitivity", ratio(tp, tp + fn)),
        ("specificity", ratio(tn, tn + fp)),
        ("ppv", ratio(tp, tp + fp)),
        ("npv", ratio(tn, tn + fn)),
        ("accuracy", ratio(tp + tn, y.size)),
    ):
        if math.isnan(val):
            assert math.isnan(m[key]) and math.isnan(m[key + "_lower"]) and math.isnan(m[key + "_upper"])
        else:
            assert m[key] == pytest.approx(val)
            assert m[key + "_lower"] <= m[key] <= m[key + "_upper"]
    assert m["brier"] == pytest.approx(brier_score_loss(y, s, pos_label=1))
    assert m["prevalence"] == pytest.approx(y.mean())
    assert m["n"] == y.size and m["n_pos"] == y.sum()


def test_binary_metrics_threshold_is_inclusive_and_zero_denominator_is_nan():
    m = binary_metrics([1, 0], [0.5, 0.49])
    assert (m["tp"], m["tn"]) == (1, 1)
    nobody = binary_metrics([1, 0, 0], [0.1, 0.2, 0.3])
    assert nobody["tp"] + nobody["fp"] == 0
    assert math.isnan(nobody["ppv"]) and math.isnan(nobody["ppv_lower"]) and math.isnan(nobody["ppv_upper"])
    assert nobody["npv"] == pytest.approx(2 / 3)
    one_class = binary_metrics([0, 0], [0.1, 0.9])  # allowed: sensitivity undefined
    assert math.isnan(one_class["sensitivity"]) and one_class["specificity"] == 0.5


def test_calibration_matches_sklearn():
    y, p = _toy(seed=9)
    c = calibration(y, p, n_bins=5)
    pt, pp = calibration_curve(y, p, n_bins=5, strategy="quantile")
    np.testing.assert_allclose(c["prob_true"], pt)
    np.testing.assert_allclose(c["prob_pred"], pp)
    assert c["brier"] == pytest.approx(brier_score_loss(y, p))
    assert c["n"] == y.size and c["strategy"] == "quantile"
    with pytest.raises(ConfigError, match="strategy"):
        calibration(y, p, strategy="kmeans")


# ---------------------------------------------------------------------------------- validation
def test_one_class_error_wording():
    for fn in (delong_auc_ci, bootstrap_auc_ci):
        with pytest.raises(SingleClassError) as ei:
            fn([1, 1, 1], [0.2, 0.5, 0.9])
        msg = str(ei.value)
        assert "needs at least one positive and one negative patient, got n_pos=3, n_neg=0" in msg
        assert isinstance(ei.value, LgenetError) and isinstance(ei.value, ValueError)


@pytest.mark.parametrize(
    "y, s, kw, match",
    [
        ([0, 1, 1], [0.1, 0.2], {}, r"y_score has 2 values but y_true has 3"),
        ([0, 1, 2], [0.1, 0.2, 0.3], {}, r"y_true must hold binary labels 0/1.*2"),
        (["a", "b"], [0.1, 0.2], {}, r"y_true must hold binary labels"),
        ([0, 1, float("nan")], [0.1, 0.2, 0.3], {}, r"y_true must hold binary labels"),
        ([0, 1, 1], [0.1, float("nan"), 0.3], {}, r"y_score contains NaN .*index 1"),
        ([0, 1, 1], [0.1, float("inf"), 0.3], {}, r"y_score contains infinite"),
        ([], [], {}, r"y_true is empty"),
        ([[0, 1], [1, 0]], [0.1, 0.2], {}, r"y_true must be one-dimensional"),
    ],
)
def test_input_validation_names_argument(y, s, kw, match):
    with pytest.raises(MetricsInputError, match=match):
        delong_auc_ci(y, s, **kw)


def test_scores_outside_unit_interval_only_rejected_with_threshold():
    y, s = [0, 1, 1, 0], [-2.0, 3.0, 1.5, 0.2]  # logits are fine for the AUC
    assert delong_auc_ci(y, s).auc == 1.0
    with pytest.raises(MetricsInputError, match=r"y_score must be probabilities in \[0, 1\].*-2.0 at index 0"):
        binary_metrics(y, s)
    with pytest.raises(MetricsInputError, match="y_score must be probabilities"):
        calibration(y, s)
    with pytest.raises(ConfigError, match="threshold"):
        binary_metrics([0, 1], [0.1, 0.9], threshold=1.5)
    with pytest.raises(ConfigError, match="confidence"):
        delong_auc_ci([0, 1], [0.1, 0.9], confidence=95)


def test_bool_and_float_labels_accepted():
    s = [0.1, 0.8, 0.3, 0.9]
    assert delong_auc_ci([False, True, False, True], s).auc == 1.0
    assert delong_auc_ci([0.0, 1.0, 0.0, 1.0], s).auc == 1.0
    assert delong_auc_ci(np.array([[0], [1], [0], [1]]), s).auc == 1.0


# ---------------------------------------------------------------------------------- summary
def _oof_rows(n: int = 60, seed: int = 0, tasks=("lge", "event")):
    """Synthetic OOF table: radimagenet strong, imagenet medium, random ~ chance."""
    rng = np.random.default_rng(seed)
    rows = []
    for t, task in enumerate(tasks):
        y = (rng.random(n) < 0.3).astype(int)
        y[:2] = [1, 0]
        for arch in ("resnet50", "inception_v3"):
            for init, sig in (("random", 0.0), ("imagenet", 1.5), ("radimagenet", 4.0 - t)):
                p = 1 / (1 + np.exp(-(rng.normal(size=n) + sig * y - 1.0)))
                for i in range(n):
                    rows.append(
                        {
                            "task": task,
                            "arch": arch,
                            "init": init,
                            "model": f"{arch}/{init}",
                            "patient_id": f"P{i:03d}",
                            "fold": i % 4,
                            "y_true": int(y[i]),
                            "prob": float(p[i]),
                        }
                    )
    return rows


def _arrays(rows, task, model):
    sel = [r for r in rows if r["task"] == task and r["model"] == model]
    return np.array([r["y_true"] for r in sel]), np.array([r["prob"] for r in sel])


def test_evaluate_oof_rows_best_and_pvalues():
    rows = _oof_rows()
    m = evaluate_oof(rows)
    assert [(r["task"], r["model"]) for r in m][:3] == [
        ("lge", "resnet50/random"),
        ("lge", "resnet50/imagenet"),
        ("lge", "resnet50/radimagenet"),
    ]
    assert len(m) == 12
    for task in ("lge", "event"):
        tr = [r for r in m if r["task"] == task]
        best = [r for r in tr if r["best"]]
        assert len(best) == 1
        assert best[0]["auc"] == max(r["auc"] for r in tr)
        assert best[0]["init"] == "radimagenet"
        assert math.isnan(best[0]["delong_p_vs_best"])
        yb, pb = _arrays(rows, task, best[0]["model"])
        for r in tr:
            y, p = _arrays(rows, task, r["model"])
            assert r["auc"] == pytest.approx(roc_auc_score(y, p))
            d = delong_auc_ci(y, p)
            assert (r["auc_lower"], r["auc_upper"], r["auc_se"]) == pytest.approx((d.lower, d.upper, d.se))
            bm = binary_metrics(y, p)
            assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (bm["tp"], bm["fp"], bm["tn"], bm["fn"])
            assert r["n"] == 60 and r["n_pos"] == int(y.sum()) and r["n_folds"] == 4
            assert r["ci_method"] == "delong" and r["note"] == ""
            if not r["best"]:
                assert r["delong_p_vs_best"] == pytest.approx(delong_test(y, p, pb).p_value)
        random_rows = [r for r in tr if r["init"] == "random"]
        assert all(r["delong_p_vs_best"] < 0.01 for r in random_rows)


def test_evaluate_oof_ties_pick_first_and_p_is_one():
    rows = [r for r in _oof_rows(tasks=("lge",)) if r["arch"] == "resnet50" and r["init"] == "imagenet"]
    copy = [dict(r, arch="inception_v3", model="inception_v3/imagenet") for r in rows]
    m = evaluate_oof(rows + copy)
    assert [r["best"] for r in m] == [True, False]
    assert m[1]["delong_p_vs_best"] == 1.0


def test_evaluate_oof_unshared_patients_noted():
    rows = _oof_rows(tasks=("lge",))
    rows = [r for r in rows if not (r["model"] == "resnet50/random" and r["patient_id"] in ("P010", "P011", "P012"))]
    m = evaluate_oof(rows)
    r = next(x for x in m if x["model"] == "resnet50/random")
    best = next(x for x in m if x["best"])
    assert r["n"] == 57 and r["n_shared_vs_best"] == 57
    assert "patients differ from best model" in r["note"] and "57 shared" in r["note"]
    assert "not all evaluated on the same patients" in best["note"]
    assert not math.isnan(r["delong_p_vs_best"])


def test_evaluate_oof_from_csv_and_bootstrap(tmp_path):
    rows = _oof_rows(n=40, tasks=("event",))
    path = tmp_path / "oof_predictions.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    from_rows = evaluate_oof(rows)
    read = RunDir(tmp_path).read_oof()  # the run folder's one reader of its OOF table
    from_csv = evaluate_oof(read)
    assert [r["auc"] for r in from_csv] == pytest.approx([r["auc"] for r in from_rows])
    b1 = evaluate_oof(read, ci_method="bootstrap", n_boot=200, random_state=3)
    b2 = evaluate_oof(read, ci_method="bootstrap", n_boot=200, random_state=3)
    assert [r["auc_lower"] for r in b1] == [r["auc_lower"] for r in b2]
    assert all(r["ci_method"] == "bootstrap" and r["auc_lower"] <= r["auc"] <= r["auc_upper"] for r in b1)


def test_evaluate_oof_errors():
    rows = _oof_rows(n=20, tasks=("lge",))
    with pytest.raises(DataError, match="missing column.*prob"):
        evaluate_oof([{k: v for k, v in r.items() if k != "prob"} for r in rows])
    with pytest.raises(DataError, match="duplicate prediction.*P000"):
        evaluate_oof(rows + [rows[0]])
    bad = [dict(r) for r in rows]
    bad[3]["prob"] = 1.7
    bad[5]["y_true"] = 2
    with pytest.raises(DataError) as ei:
        evaluate_oof(bad)
    assert (
        "2 problems" in str(ei.value) and "outside [0, 1]" in str(ei.value) and "y_true must be 0 or 1" in str(ei.value)
    )
    conflict = [dict(r) for r in rows]
    idx = next(i for i, r in enumerate(conflict) if r["model"] == "resnet50/imagenet" and r["patient_id"] == "P000")
    conflict[idx]["y_true"] = 1 - conflict[idx]["y_true"]
    with pytest.raises(DataError, match="patient 'P000' has y_true"):
        evaluate_oof(conflict)
    one_class = [dict(r, y_true=0) for r in rows]
    with pytest.raises(DataError, match="needs at least one positive and one negative patient, got n_pos=0, n_neg=20"):
        evaluate_oof(one_class)
    with pytest.raises(TypeError, match="not a path"):
        evaluate_oof("/nonexistent/oof_predictions.csv")
    with pytest.raises(DataError, match="is missing"):
        RunDir("/nonexistent").read_oof()
    with pytest.raises(DataError, match="no OOF prediction rows"):
        evaluate_oof([])


def test_write_metrics_round_trip(tmp_path):
    m = evaluate_oof(_oof_rows(n=40))
    csv_path, json_path = write_metrics(m, tmp_path / "run")
    assert csv_path.name == "metrics.csv" and json_path.name == "metrics.json"
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]  # no temp files left

    def bad_constant(name):
        raise AssertionError(f"JSON contains {name}")

    doc = json.loads(json_path.read_text(), parse_constant=bad_constant)
    assert doc["ci_method"] == "delong" and doc["confidence"] == 0.95 and doc["threshold"] == 0.5
    assert "DeLong" in doc["description"] and "Wilson" in doc["description"]
    best_json = [r for r in doc["metrics"] if r["best"]]
    assert len(best_json) == 2 and all(r["delong_p_vs_best"] is None for r in best_json)

    for back in (read_metrics(csv_path), read_metrics(json_path)):
        assert len(back) == len(m)
        for a, b in zip(m, back):
            assert set(a) == set(b)
            for k, v in a.items():
                if isinstance(v, float) and math.isnan(v):
                    assert math.isnan(b[k]), k
                else:
                    assert b[k] == v and type(b[k]) is type(v), (k, v, b[k])


def test_format_table_every_auc_with_ci_and_n():
    m = evaluate_oof(_oof_rows(n=40))
    text = format_table(m)
    lines = text.splitlines()
    for r in m:
        auc_txt = (
            f"AUC {r['auc']:.2f} (95% CI {r['auc_lower']:.2f}\u2013{r['auc_upper']:.2f}), n={r['n']} ({r['n_pos']}+)"
        )
        line = next(ln for ln in lines if f" {r['model']} " in ln and ln.startswith(r["task"]))
        assert auc_txt in line
        assert (" * " in line) == r["best"]
        assert f"{100 * r['sensitivity']:.0f}%" in line
        pv = r["delong_p_vs_best"]
        assert line.split()[-1] == ("best" if r["best"] else ("<0.001" if pv < 0.001 else f"{pv:.3f}"))
    assert "DeLong" in text
    # the columns line up: every model line has the AUC at the same offset
    offsets = {ln.index("AUC ") for ln in lines if "(95% CI" in ln}
    assert len(offsets) == 1
    assert format_table([]) == "(no models evaluated)"


def test_operating_point_uses_each_folds_training_prevalence():
    """Test patients of fold k are called positive when p >= the prevalence of the other folds:
    a rule fixed in advance, so a model whose probabilities all sit below 0.5 still gets a useful
    operating point, and no test-fold label moves its own threshold."""
    from lgenet.evaluation.summary import OPERATING_POINT, evaluate_oof

    rng = np.random.default_rng(0)
    rows = []
    for i in range(80):
        y = int(i % 4 == 0)  # prevalence 0.25
        p = 0.1 + 0.3 * y + rng.uniform(0, 0.1)  # every probability < 0.5, positives higher
        rows.append({"task": "lge", "model": "a/b", "patient_id": f"P{i}", "fold": i % 5, "y_true": y, "prob": p})
    m = evaluate_oof(rows)[0]
    assert m["sensitivity"] == 0.0  # nobody reaches 0.5
    assert m["op_sensitivity"] == 1.0 and m["op_specificity"] == 1.0 and m["op_ppv"] == 1.0
    assert 0 < m["op_sensitivity_lower"] < 1 and OPERATING_POINT == "training-fold prevalence"
    # the threshold of a fold does not depend on that fold's own labels
    flipped = [dict(r, y_true=1 - r["y_true"]) if r["fold"] == 0 else r for r in rows]
    m2 = evaluate_oof(flipped)[0]
    calls_fold0 = [r["prob"] >= 0.25 for r in rows if r["fold"] == 0]
    assert sum(calls_fold0) == 4  # the 4 true positives of fold 0 are called positive either way
    assert m2["op_sensitivity"] < 1  # fold 0's flipped labels now disagree with its calls


def test_every_model_gets_calibration_slope_and_intercept_with_cis():
    from lgenet.evaluation.summary import evaluate_oof

    rng = np.random.default_rng(3)
    rows = []
    for i in range(400):
        p = float(rng.uniform(0.05, 0.95))
        y = int(rng.random() < p)
        for model, q in (("good/x", p), ("over/x", 1 / (1 + ((1 - p) / p) ** 3))):  # over: 3x the log-odds
            rows.append({"task": "lge", "model": model, "patient_id": f"P{i}", "fold": i % 4, "y_true": y, "prob": q})
    m = {r["model"]: r for r in evaluate_oof(rows)}
    assert m["good/x"]["cal_slope_lower"] < 1 < m["good/x"]["cal_slope_upper"]
    assert m["over/x"]["cal_slope"] == pytest.approx(1 / 3, abs=0.08) and m["over/x"]["cal_slope_upper"] < 1
    assert math.isfinite(m["good/x"]["cal_intercept"])


def test_paired_mean_difference_against_hand_computed_values():
    from scipy.stats import wilcoxon

    from lgenet.evaluation.metrics import paired_mean_difference

    a = np.array([0.80, 0.70, np.nan, 0.90, 0.60, 0.75])
    b = np.array([0.85, 0.72, 0.50, 0.88, 0.70, 0.80])
    r = paired_mean_difference(a, b, n_boot=4000, random_state=1)
    d = np.array([0.05, 0.02, -0.02, 0.10, 0.05])  # the NaN patient is left out
    assert r["n"] == 5 and r["diff"] == pytest.approx(d.mean())
    assert r["wilcoxon_p"] == pytest.approx(wilcoxon(d).pvalue)
    assert d.min() <= r["lower"] < r["diff"] < r["upper"] <= d.max()
    # the bootstrap: the same draws as resampling the differences by hand
    rng = np.random.default_rng(1)
    means = rng.choice(d, (4000, d.size)).mean(1)
    assert (r["lower"], r["upper"]) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    same = paired_mean_difference(a, a)
    assert (same["diff"], same["wilcoxon_p"], same["lower"], same["upper"]) == (0.0, 1.0, 0.0, 0.0)
    one = paired_mean_difference([0.5, np.nan], [0.6, 0.1])
    assert one["n"] == 1 and np.isnan(one["lower"]) and np.isnan(one["wilcoxon_p"])
    with pytest.raises(MetricsInputError, match="one value per patient"):
        paired_mean_difference([0.1, 0.2], [0.1])
