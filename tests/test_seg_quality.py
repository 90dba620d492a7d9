"""Another centre's fields of view: the localisers' whole-thorax composites, the quality score and its flag.

The composites and the score's arithmetic are tested on small arrays; the end-to-end test trains a tiny
segmentation CV on `lgenet synth` stacks (as tests/test_segment.py does) and checks that it fits and stores its
quality score, and that `segment apply` writes the score and its flag in segmentation.csv.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lgenet.config import SegConfig
from lgenet.errors import ConfigError
from lgenet.segment.composite import thorax_composites
from lgenet.segment.plausibility import Plausibility
from lgenet.segment.quality import FEATURES, FLAG_BELOW, fit_quality, predict_quality, quality_features
from test_segment import SYNTH_LABELS, TINY


def _canvases(n=6, size=48):
    """n frame-centred canvases: a body rectangle with a bright disc (the LV) at the centre, target = the disc."""
    yy, xx = np.mgrid[:size, :size]
    x = np.zeros((n, 1, size, size), np.float32)
    y = np.zeros((n, 1, size, size), np.float32)
    for i in range(n):
        x[i, 0, 10:38, 6:42] = 0.4
        disc = np.hypot(yy - 23.5, xx - 23.5) < 5 + i % 2
        x[i, 0][disc] = 0.9
        y[i, 0][disc] = 1.0
    return torch.from_numpy(x), torch.from_numpy(y)


def test_thorax_composites_move_the_lv_with_its_frame_and_label_nothing_else():
    x, y = _canvases()
    groups = [0, 0, 1, 1, 2, 2]
    xc, yc = thorax_composites(x, y, groups, spacing_mm=4.0, per_slice=2.0, seed=5)
    assert xc.shape == (12, 1, 48, 48) and yc.shape == xc.shape
    assert float(xc.min()) >= 0.0 and float(xc.max()) <= 1.0
    # every labelled pixel is a bright LV pixel of the moved frame, never a look-alike's
    assert float(xc[yc > 0.5].min()) >= 0.85
    # the LV keeps its size (it may lose a few pixels to the field of view's edge), and is off-centre in some
    sizes = yc.flatten(1).sum(1)
    assert (sizes <= float(y.flatten(1).sum(1).max()) + 1e-6).all() and (sizes > 0).sum() >= 10
    centres = [np.argwhere(yc[k, 0].numpy() > 0.5).mean(0) for k in range(12) if sizes[k] > 0]
    assert max(np.hypot(*(c - 23.5)) for c in centres) > 4
    # reproducible from the seed, different with another
    xc2, _ = thorax_composites(x, y, groups, spacing_mm=4.0, per_slice=2.0, seed=5)
    xc3, _ = thorax_composites(x, y, groups, spacing_mm=4.0, per_slice=2.0, seed=6)
    assert torch.equal(xc, xc2) and not torch.equal(xc, xc3)
    assert thorax_composites(x, y, groups, spacing_mm=4.0, per_slice=0.0, seed=5)[0].shape[0] == 0


def test_the_localiser_setting_is_declared_once_with_its_old_value_for_old_runs():
    from lgenet.config.seg import SegTraining

    assert SegConfig().loc_thorax == 1.0 and SegConfig(loc_thorax=0.0).loc_thorax == 0.0  # the default since 0.3.0
    decl = {f.name: f.metadata["lgenet.setting"] for f in SegTraining.__dataclass_fields__.values()}
    assert decl["loc_thorax"].since == "0.3.0" and SegConfig.absent_values()["loc_thorax"] == 0.0
    with pytest.raises(Exception, match="loc_thorax"):
        SegConfig(loc_thorax=-1)


@pytest.mark.parametrize("nets", ["both", "coarse", "coarse+centred"])
def test_the_composites_go_to_the_localisers_named(monkeypatch, nets):
    """loc_thorax_nets: "coarse" trains the frame-centred localiser on its plain canvases, the coarse one on both."""
    import lgenet.segment.learn as learn

    x, y = _canvases(4)
    monkeypatch.setattr(learn, "prepare_localiser_data", lambda stacks, spec: (x, y))
    seen: dict[str, int] = {}

    def train_network(net, xx, yy, *args, **kwargs):
        seen["loc"] = xx.shape[0]
        seen["loc_y"] = yy
        return []

    def train_coarse(xx, *args, **kwargs):
        seen["coarse"] = xx.shape[0]
        return {}, []

    monkeypatch.setattr(learn, "train_network", train_network)
    monkeypatch.setattr(learn, "train_coarse_localiser", train_coarse)
    monkeypatch.setattr(learn, "_built", lambda *a, **k: torch.nn.Identity())

    class _Spec:
        loc_spacing, loc_size, loc_shift_mm, coarse_shift_mm = 4.0, 48, 10.0, 60.0

    class _Params:
        loc_thorax, loc_thorax_nets, loc_epochs = 1.0, nets, 1

    monkeypatch.setattr(learn, "_augmentation", lambda *a, **k: None)
    stacks = [(np.zeros((2, 8, 8)), None, None), (np.zeros((2, 8, 8)), None, None)]
    learn._train_localisers(stacks, _Spec(), _Params(), 0, learn.SegTrainResult(), lambda s: None, None, None)
    assert seen["coarse"] == 8  # the 4 canvases and one composite each
    assert seen["loc"] == (4 if nets == "coarse" else 8)
    if nets == "coarse+centred":  # the frame-centred localiser's composites keep the LV within loc_shift_mm
        ys = seen["loc_y"][:, 0].numpy() > 0.5
        for k in range(4, 8):  # 10 mm at 4 mm pixels: at most 3 px (rounded) from the centre, where the disc was
            centre = np.array(np.nonzero(ys[k])).mean(1)
            assert ys[k].any() and np.all(np.abs(centre - 23.5) <= 3.0), centre
    assert SegConfig().loc_thorax_nets == "coarse" and SegConfig.absent_values()["loc_thorax_nets"] == "both"
    with pytest.raises(Exception, match="loc_thorax_nets"):
        SegConfig(loc_thorax_nets="segmenter")


class _Res:
    def __init__(self, classes, agreement, confidence, localised):
        self.classes, self.agreement, self.confidence, self.localised = classes, agreement, confidence, localised


def _rows(n=120, seed=0):
    """Masks whose Dice falls with the flips' disagreement, with noise; the other features are uninformative."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        dis = rng.uniform(0, 0.6)
        r = {f: float(rng.uniform(0, 1)) for f in FEATURES}
        r["disagreement"] = dis
        r["dice_myo"] = float(np.clip(0.9 - 1.2 * dis + rng.normal(0, 0.03), 0, 1))
        r["lge_error_pp"] = float(abs(30 * dis + rng.normal(0, 1)))
        rows.append(r)
    return rows


def test_the_quality_score_learns_what_predicts_the_dice_and_stores_plain_numbers():
    model = fit_quality(_rows())
    json.dumps(model)  # plain numbers, no pickle
    lo = predict_quality(model, {**{f: 0.5 for f in FEATURES}, "disagreement": 0.05})
    hi = predict_quality(model, {**{f: 0.5 for f in FEATURES}, "disagreement": 0.55})
    assert lo["quality_dice"] > 0.8 > FLAG_BELOW > 0.35 > hi["quality_dice"]
    assert hi["quality_lge_error_pp"] > lo["quality_lge_error_pp"] + 8
    assert 0.0 <= hi["quality_dice"] <= 1.0


def test_quality_features_of_a_ring_and_of_an_empty_mask():
    classes = np.zeros((3, 20, 20), np.uint8)
    classes[1:, 5:15, 5:15] = 2
    classes[1:, 8:12, 8:12] = 1
    ok = Plausibility(ok=True, ring_coverage=1.0, wall_mm=8.0, cavity_mm=45.0, centre_jump_mm=3.0)
    f = quality_features(
        _Res(classes, np.array([np.nan, 0.9, 0.8]), np.array([np.nan, 0.95, 0.9]), np.array([0, 1, 1], bool)),
        ok,
        profile_outside=2,
    )
    assert set(f) == set(FEATURES) | {"dim_enhanced"} and f["dim_enhanced"] == 0.0  # no image given
    assert f["disagreement"] == pytest.approx(0.15) and f["disagreement_worst_slice"] == pytest.approx(0.2)
    assert f["wall_off"] == 0 and f["cavity_off"] == 0 and f["ring_gap"] == 0 and f["implausible"] == 0
    assert f["slices_without_lv"] == pytest.approx(1 / 3) and f["not_localised"] == pytest.approx(1 / 3)
    assert f["profile_outside"] == 2 and f["lge_excess"] == 0
    # a burden above any EMIDEC patient's counts against the mask: 3/4 of the myocardium enhanced -> 0.75 - 0.5
    hot = classes.copy()
    hot[1:, 5:15, 5:10] = 3
    hot[1:, 5:8, 10:15] = 3
    share = (hot == 3).sum() / (hot >= 2).sum()
    f_hot = quality_features(_Res(hot, np.full(3, 0.9), np.full(3, 0.9), np.ones(3, bool)), ok)
    assert f_hot["lge_excess"] == pytest.approx(max(0.0, share - 0.5)) and share > 0.6
    # a score fitted before 0.3.0's lge_excess lists its own features and predicts as it did
    rng = np.random.default_rng(1)
    old_features = [x for x in FEATURES if x != "lge_excess"]
    rows = [
        {**{x: float(rng.uniform(0, 1)) for x in FEATURES}, "dice_myo": 0.8, "lge_error_pp": 3.0} for _ in range(12)
    ]
    before = fit_quality(rows, features=old_features)
    assert before["features"] == old_features
    assert predict_quality(before, f_hot) == predict_quality(before, {**f_hot, "lge_excess": 9.0})
    empty = quality_features(
        _Res(np.zeros((2, 8, 8), np.uint8), None, None, np.zeros(2, bool)),
        Plausibility(ok=False, reasons=["no myocardium found on any slice"]),
    )
    assert empty["disagreement"] == 1 and empty["slices_without_lv"] == 1 and empty["implausible"] == 1


@pytest.fixture(scope="module")
def quality_run(tmp_path_factory):
    from lgenet.data.synth import make_cohort
    from lgenet.segment import train_segmentation

    root = tmp_path_factory.mktemp("segquality")
    m = make_cohort(root / "c", n_patients=8, image_size=64, n_slices=(4, 5), seed=12, progress=False)
    cfg = SegConfig(
        manifest=str(m), out=str(root / "seg"), labels=SYNTH_LABELS, **{**TINY, "loc_thorax": 1.0, "quality": True}
    )
    train_segmentation(cfg, progress=False)
    return root, m, cfg


def test_train_fits_and_stores_the_quality_score_cross_fitted(quality_run):
    root, m, cfg = quality_run
    run = Path(cfg.out)
    model = json.loads((run / "quality.json").read_text())
    assert model["features"] == list(FEATURES) and model["flag_below"] == FLAG_BELOW
    assert model["fitted_on"]["patients"] == 8 and model["fitted_on"]["rows"] == 8 * 4
    with open(run / "quality_rows.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 32 and {r["condition"] for r in rows} == set(model["fitted_on"]["conditions"])
    # cross-fitted: each row's score comes from the other fold's rows (2 folds: two different regressions)
    assert all(r["quality_dice"] != "" for r in rows)
    cv = model["cross_fitted"]["all"]
    assert cv["n"] == 32 and cv["n_bad"] + cv["n_good"] <= 32
    # the fold models' own records are untouched by the quality step
    assert (run / "seg_metrics.csv").is_file()


def test_train_reports_the_out_of_fold_figures_as_segment_apply_runs_the_models(quality_run, tmp_path):
    """segment train measures its held-out patients as segment apply treats them: a mask doubted by a score fitted
    without the patient's fold gets a second look by the fold's own model; every other row is the first look's."""
    import shutil

    from lgenet.runs.tables import read_rows
    from lgenet.segment import SegRunDir, safe_id, summarise_segmentation
    from lgenet.segment.as_applied import _numeric, as_applied_done, fold_arbiters
    from lgenet.segment.quality import flag_line

    root, m, cfg = quality_run
    run = Path(cfg.out)
    ap = json.loads((run / "seg_summary.json").read_text())["as_applied"]
    looks = {r["patient_id"]: r for r in read_rows(run / "as_applied" / "looks.csv")}
    replaced = {p for p, r in looks.items() if r["replaced"] == "1"}
    assert ap["patients"] == 8 and ap["doubted"] == len(looks) and ap["replaced"] == len(replaced)
    assert ap["frame_scan"] is True and ap["first_look_not_reproduced"] == []
    # who was doubted: exactly the masks the other fold's score doubts
    qrows = _numeric(read_rows(run / "quality_rows.csv"))
    arb = fold_arbiters(qrows)
    for r in (r for r in qrows if r["condition"] == "as acquired"):
        q = predict_quality(arb[r["fold"]], r)["quality_dice"]
        assert (r["patient_id"] in looks) == (not r["plausible"] or q < flag_line(arb[r["fold"]])), r["patient_id"]
    first = {r["patient_id"]: r for r in read_rows(run / "seg_metrics.csv")}
    applied = {r["patient_id"]: r for r in read_rows(run / "as_applied" / "seg_metrics.csv")}
    assert set(applied) == set(first)
    assert all(applied[p] == first[p] for p in first if p not in replaced)
    assert sorted(f.name for f in (run / "as_applied" / "masks").iterdir()) == sorted(
        f"{safe_id(p)}.nii.gz" for p in replaced
    )
    dice = np.array([float(r["dice_myo"]) for r in applied.values()])
    assert ap["dice_myo"]["mean"] == pytest.approx(float(np.nanmean(dice)))
    assert "as `segment apply` runs the fold models" in summarise_segmentation(SegRunDir(run), cfg)[1]
    # fold-honest: fold 0's score does not move when fold 0's own rows do
    moved = [dict(r, dice_myo=1.0 - r["dice_myo"]) if r["fold"] == 0 else r for r in qrows]
    assert fold_arbiters(moved)[0] == arb[0] and fold_arbiters(moved)[1] != arb[1]
    # a refitted score (other quality rows) makes the figures stale: not reported until measured again
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert as_applied_done(copy)
    with open(copy / "quality_rows.csv", "a") as fh:
        fh.write("\n")
    assert not as_applied_done(copy)
    assert "as_applied" not in summarise_segmentation(SegRunDir(copy), cfg)[0]


def test_a_mask_a_second_look_replaces_changes_the_as_applied_row_and_nothing_of_the_first_look(
    quality_run, tmp_path, monkeypatch
):
    import shutil

    import lgenet.segment.second_look as sl
    from lgenet.runs.tables import read_rows
    from lgenet.segment import SegRunDir, safe_id, summarise_segmentation
    from lgenet.segment.as_applied import as_applied

    root, m, cfg = quality_run
    run = tmp_path / "run"
    shutil.copytree(cfg.out, run)
    first_csv = (run / "seg_metrics.csv").read_text()
    first_masks = {f.name: f.read_bytes() for f in (run / "masks").iterdir()}
    real = sl.second_look

    def replacing(seg, image, spacing, slice_mm, quality, **kw):  # the kept mask: the first with its myocardium gone
        look = real(seg, image, spacing, slice_mm, quality, **kw)
        res = look.result
        res.classes = np.where(res.classes >= 2, 0, res.classes).astype(res.classes.dtype)
        look.chosen, look.looked = 1, 1
        return look

    monkeypatch.setattr(sl, "second_look", replacing)
    record = as_applied(run, progress=False)
    looks = read_rows(run / "as_applied" / "looks.csv")
    assert record["doubted"] == record["replaced"] == len(looks) > 0
    applied = {r["patient_id"]: r for r in read_rows(run / "as_applied" / "seg_metrics.csv")}
    for r in looks:
        assert r["replaced"] == "1" and float(r["dice_myo_kept"]) == 0.0 < float(r["dice_myo_first"])
        assert float(applied[r["patient_id"]]["dice_myo"]) == 0.0
        assert (run / "as_applied" / "masks" / f"{safe_id(r['patient_id'])}.nii.gz").is_file()
    # the first look's table and masks are the CV's, untouched
    assert (run / "seg_metrics.csv").read_text() == first_csv
    assert {f.name: f.read_bytes() for f in (run / "masks").iterdir()} == first_masks
    s = summarise_segmentation(SegRunDir(run), cfg)[0]
    assert s["as_applied"]["dice_myo"]["mean"] < s["dice_myo"]["mean"]


def test_finetune_scores_a_case_as_segment_apply_does_with_the_second_look(quality_run, monkeypatch):
    import lgenet.segment.second_look as sl
    from lgenet.data.manifest import load_manifest
    from lgenet.segment import cases_of, load_segmenter, read_case
    from lgenet.segment.finetune_eval import score_case

    root, m, cfg = quality_run
    run = Path(cfg.out)
    seg = load_segmenter(run)
    quality = json.loads((run / "quality.json").read_text())
    st = read_case(cases_of(load_manifest(m, tasks=None), need_masks=True)[0], cfg)
    plain = score_case(seg, st, 8.0, None)  # no score: the first look, as segment apply without one
    assert plain["second_look"] == 0
    calls = []
    real = sl.second_look

    def replacing(seg_, image, spacing, slice_mm, q, **kw):
        calls.append(kw)
        look = real(seg_, image, spacing, slice_mm, q, **kw)
        look.result.classes = np.zeros_like(look.result.classes)
        look.chosen = 1
        return look

    monkeypatch.setattr(sl, "second_look", replacing)
    r = score_case(seg, st, 8.0, quality)
    assert calls and calls[0]["scan"] is True and calls[0]["first"] is not None
    assert r["second_look"] == 1 and r["dice_myo"] == 0.0 and r["status"] == "no LV found"


def test_apply_writes_the_score_and_flags_only_below_the_threshold(quality_run, tmp_path):
    from lgenet.segment import SegApplyOptions, apply_segmentation

    root, m, cfg = quality_run
    res = apply_segmentation(cfg.out, SegApplyOptions(out=tmp_path / "ap", manifest=m, progress=False))
    with open(res.csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8
    for r in rows:
        if r["status"] == "no LV found":
            continue
        q = float(r["quality_dice"])
        assert 0 <= q <= 1 and (r["quality_flag"] == "likely wrong") == (q < FLAG_BELOW)
        assert len(r["slice_agreement"].split(";")) == int(r["n_slices"])
        assert r["fold_agreement"] != ""  # two fold models
        assert "unlike the training stacks" not in r["notes"]  # the profile is the score's input now


def test_a_mask_whose_predicted_dice_is_below_one_half_is_not_measured(quality_run, tmp_path):
    """Below the score's refuse_below (0.5, a heart missed) the mask gets no number and says why; a score fitted
    before the setting existed (no refuse_below) refuses nothing, it only flags."""
    import math
    import shutil

    from lgenet.segment import SegApplyOptions, apply_segmentation
    from lgenet.segment.quality import LIKELY_NOT_LV, REFUSE_BELOW

    root, m, cfg = quality_run
    assert json.loads((Path(cfg.out) / "quality.json").read_text())["refuse_below"] == REFUSE_BELOW == 0.5
    for keep_key, tag in ((True, "new"), (False, "old")):
        run = tmp_path / f"run_{tag}"
        shutil.copytree(cfg.out, run)
        q = json.loads((run / "quality.json").read_text())
        q["dice_myo"]["coef"] = [0.0] * len(q["dice_myo"]["coef"])
        q["dice_myo"]["intercept"] = 0.3  # every mask predicted at Dice 0.3
        if not keep_key:
            q.pop("refuse_below")
        (run / "quality.json").write_text(json.dumps(q))
        res = apply_segmentation(run, SegApplyOptions(out=tmp_path / f"ap_{tag}", manifest=m, progress=False))
        with open(res.csv, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["status"] != "no LV found"]
        assert rows
        for r in rows:
            if keep_key:
                assert r["status"] == LIKELY_NOT_LV, r
                assert not math.isfinite(float(r["lge_percent_pred"] or "nan")), r
                assert "below 0.5 (a heart missed)" in r["notes"]
            else:
                assert r["status"] in ("segmented", "implausible LV mask") and r["quality_flag"] == "likely wrong"


def test_apply_takes_a_second_look_at_doubted_masks_and_says_so(quality_run, tmp_path, monkeypatch):
    """Every mask doubted (predicted Dice 0.3): the real second look segments the other proposals and, none
    trusted, keeps each first mask; a replacement is written with a note; --no-second-look never looks, and the
    apply record says which was done, so that a resume never mixes the two."""
    import shutil

    from lgenet.segment import SegApplyOptions, apply_segmentation
    from lgenet.segment import apply as apply_mod
    from lgenet.segment.apply_job import APPLY_RECORD
    from lgenet.segment.second_look import second_look

    root, m, cfg = quality_run
    run = tmp_path / "run"
    shutil.copytree(cfg.out, run)
    q = json.loads((run / "quality.json").read_text())
    q["dice_myo"]["coef"] = [0.0] * len(q["dice_myo"]["coef"])
    q["dice_myo"]["intercept"] = 0.3
    (run / "quality.json").write_text(json.dumps(q))
    seen = []

    scans = []

    def spy(*a, **k):
        look = second_look(*a, **k)
        seen.append(look)
        scans.append(k.get("scan"))
        return look

    monkeypatch.setattr(apply_mod, "second_look", spy)
    res = apply_segmentation(run, SegApplyOptions(out=tmp_path / "a", manifest=m, progress=False))
    assert len(seen) == 8 and all(s.chosen == 0 for s in seen)  # doubted, looked at, none trusted: kept
    assert not any("second look" in r["notes"] for r in res.rows)
    settings = json.loads((tmp_path / "a" / APPLY_RECORD).read_text())["settings"]
    assert settings["second_look"] is True and settings["frame_scan"] is True
    # the frame scanned too, once the localisers' places give no trusted mask (configuration 29)
    assert scans == [True] * 8

    def replaced(*a, **k):  # a second look that found a trusted mask elsewhere
        look = second_look(*a, **k)
        look.chosen, look.quality = 1, {**look.quality, "quality_dice": 0.8}
        return look

    monkeypatch.setattr(apply_mod, "second_look", replaced)
    res = apply_segmentation(run, SegApplyOptions(out=tmp_path / "b", manifest=m, progress=False))
    assert all("second look: the first mask" in r["notes"] and "predicted Dice 0.80" in r["notes"] for r in res.rows)
    seen.clear()
    monkeypatch.setattr(apply_mod, "second_look", spy)
    apply_segmentation(run, SegApplyOptions(out=tmp_path / "c", manifest=m, progress=False, second_look=False))
    settings = json.loads((tmp_path / "c" / APPLY_RECORD).read_text())["settings"]
    assert not seen and "second_look" not in settings and "frame_scan" not in settings
    with pytest.raises(ConfigError, match="settings"):  # the same folder, the other way: refused, not mixed
        apply_segmentation(run, SegApplyOptions(out=tmp_path / "c", manifest=m, progress=False))
