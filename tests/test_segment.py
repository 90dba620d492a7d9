"""Learned segmentation: labels, normalisation, geometry, measures, and the train/apply commands end to end.

The end-to-end tests use `lgenet synth` stacks (DICOM series + NIfTI label maps with planted LV
cavity, myocardium and enhancement) at a tiny size; the EMIDEC targets live in bench/segmentation.py.
"""

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from lgenet.config import SegConfig
from lgenet.conventions.labels import SegLabels
from lgenet.data.stacks import crop_grid, lv_centres, paste_back, sample, tissue_normalise
from lgenet.errors import ConfigError, DataError
from lgenet.evaluation.segmentation import agreement, class_measures, dice, icc_a1

SYNTH_LABELS = {"cavity": [1], "myo": [2, 3], "lge": [3], "other": [0, 4]}
TINY = dict(
    spacing=2.5,
    crop=64,
    channels=(8, 16, 32, 64),
    res_units=1,
    loc_spacing=7.0,
    loc_size=32,
    loc_channels=(4, 8, 16),
    epochs=60,
    loc_epochs=10,
    batch_size=4,
    lr=3e-3,
    folds=2,
    num_threads=1,
    coarse_shift_mm=0.0,
    quality=False,
)  # the synthetic frames centre the heart; the coarse localiser and the quality score have their own tests


def _rows(p):
    with open(p, newline="") as fh:
        return list(csv.DictReader(fh))


def _train_tiny(manifest, out, **over):
    """A :data:`TINY` segmentation CV on the synthetic cohort with ``over`` changed; its config and metrics rows."""
    from lgenet.segment import train_segmentation

    cfg = SegConfig(manifest=str(manifest), out=str(out), labels=SYNTH_LABELS, **{**TINY, **over})
    train_segmentation(cfg, progress=False)
    return cfg, _rows(Path(out) / "seg_metrics.csv")


# ------------------------------------------------------------------ units
def test_labels_map_dataset_values_to_classes_and_refuse_undeclared_ones():
    lab = SegLabels(cavity=(1,), myo=(2, 3, 4), lge=(3, 4), other=(0,))
    m = np.array([[0, 1, 2], [3, 4, 0]])
    assert lab.classes(m).tolist() == [[0, 1, 2], [3, 3, 0]]
    assert lab.values() == (0, 1, 2, 3)
    with pytest.raises(DataError, match=r"label value\(s\) 7 \(1 px\) are not declared"):
        lab.classes(np.array([[0, 7]]))
    assert SegLabels.parse("cavity=200,myo=500+1220+2221,lge=1220+2221,other=0") == SegLabels(
        (200,), (500, 1220, 2221), (1220, 2221), (0,)
    )
    with pytest.raises(ConfigError, match="subset"):
        SegLabels(myo=(2,), lge=(3,))
    with pytest.raises(ConfigError, match="KEY=V"):
        SegLabels.parse("scar:3")


@pytest.mark.parametrize("method", [1, 2])
def test_tissue_normalisation_ignores_zero_fill_and_noisy_backgrounds(method):
    rng = np.random.default_rng(0)
    tissue = rng.gamma(6.0, 200.0, (3, 40, 40)).astype(np.float32) + 2048  # EMIDEC-like offset above the fill

    def embed(side, background):
        out = background(side)
        o = (side - 40) // 2
        out[:, o : o + 40, o : o + 40] = tissue
        return out, (slice(None), slice(o, o + 40), slice(o, o + 40))

    zero = lambda n: np.zeros((3, n, n), np.float32)  # noqa: E731
    noise = lambda n: rng.rayleigh(60.0, (3, n, n)).astype(np.float32)  # noqa: E731
    ref_img, ref_win = embed(46, zero)  # ~25 % zero fill
    ref = tissue_normalise(ref_img, method=method)[ref_win]
    for img, win in (embed(80, zero), embed(80, noise), embed(46, noise)):  # 75 % fill, dark noisy backgrounds
        got = tissue_normalise(img, method=method)[win]
        assert np.median(np.abs(got - ref)) < 0.02
    allpix = (ref_img - np.percentile(ref_img, 1)) / (np.percentile(ref_img, 99) - np.percentile(ref_img, 1))
    assert np.median(allpix[ref_win]) > 0.6 > np.median(ref) + 0.15  # what percentiles over all pixels would do
    assert 0.0 <= ref.min() and ref.max() <= 1.0


def _body_phantom(offset: float, background: str, rng) -> tuple[np.ndarray, np.ndarray]:
    """A chest-like stack: air (signal 0), a body of bright tissue with a dark interior (lungs, nulled
    myocardium: signal near 0) and a mid-grey heart; stored with ``offset`` added, the frame's border
    band zero-filled (EMIDEC) or left as noisy air (a scanner without an offset)."""
    s, n = 3, 96
    yy, xx = np.mgrid[:n, :n]
    body = ((yy - 48) / 40.0) ** 2 + ((xx - 48) / 44.0) ** 2 < 1
    dark = ((yy - 48) / 22.0) ** 2 + ((xx - 48) / 26.0) ** 2 < 1
    heart = ((yy - 48) / 9.0) ** 2 + ((xx - 50) / 9.0) ** 2 < 1
    sig = np.where(body, rng.gamma(8.0, 60.0, (s, n, n)), rng.rayleigh(15.0, (s, n, n)))
    sig = np.where(dark, rng.rayleigh(25.0, (s, n, n)), sig)
    sig = np.where(heart, 250 + rng.normal(0, 20, (s, n, n)), sig).astype(np.float32)
    img = sig + offset
    if background == "zero fill":
        img[:, :8], img[:, -8:] = 0, 0
    return img, np.broadcast_to(heart, img.shape)


def test_filled_body_normalisation_does_not_depend_on_a_stored_intensity_offset():
    """EMIDEC stores an offset (air at ~2048) and zero-fills; other scanners store air at ~0. Method 1's
    Otsu body drops the dark tissue of an offset-free frame, so the heart's normalised value moves (the
    domain-shift check measured ~0.3 on EMIDEC); method 2's filled body keeps it within a few hundredths."""
    rng = np.random.default_rng(3)
    emidec, heart = _body_phantom(2048.0, "zero fill", rng)
    other, _ = _body_phantom(0.0, "noisy air", np.random.default_rng(4))
    med = lambda img, m: float(np.median(tissue_normalise(img, method=m, spacing=(1.5, 1.5))[heart]))  # noqa: E731
    assert abs(med(emidec, 2) - med(other, 2)) < 0.03
    assert abs(med(emidec, 3) - med(other, 3)) < 0.03  # method 3 (robust to coil spots) keeps that
    assert abs(med(emidec, 1) - med(other, 1)) > 0.1  # the failure method 2 mends
    assert abs(med(emidec * 0.3, 2) - med(emidec, 2)) < 1e-3  # a global scale changes nothing
    with pytest.raises(ConfigError, match="normalisation method"):
        tissue_normalise(emidec, method=4)


def test_window_sampling_and_pasting_back_are_inverse():
    h, w = 60, 80
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    frame = (torch.sin(yy / 7) + torch.cos(xx / 9))[None, None]
    c = torch.tensor([[30.0, 40.0]])
    crop = sample(frame, crop_grid(c, (h, w), (1.0, 1.0), size=41, out_spacing=1.0))
    assert torch.allclose(crop[0, 0], frame[0, 0, 10:51, 20:61], atol=1e-5)
    back = paste_back(torch.cat([torch.zeros_like(crop), crop], 1), c, (h, w), (1.0, 1.0), out_spacing=1.0)
    assert torch.allclose(back[0, 1, 12:49, 22:59], frame[0, 0, 12:49, 22:59], atol=1e-5)
    assert float(back[0, 0, 0, 0]) == 1.0  # outside the window: background


def test_lge_percent_from_masks_matches_a_hand_count():
    c = np.zeros((2, 10, 10), np.uint8)
    c[0, 2:6, 2:6] = 2  # 16 myocardium px, apical slice
    c[0, 2:4, 2:4] = 3  # 4 enhanced
    c[1, 1:9, 1:9] = 2  # 64 px, basal slice
    c[1, 1:2, 1:9] = 3  # 8 enhanced
    c[1, 4:6, 4:6] = 1  # cavity inside
    m = class_measures(c, spacing=(1.5, 1.5), slice_mm=10)
    assert m["lge_percent"] == pytest.approx(100 * 12 / 76)
    assert m["lge_percent_basal"] == pytest.approx(100 * 8 / 60)
    assert m["myo_ml"] == pytest.approx(76 * 1.5 * 1.5 * 10 / 1000)
    assert m["myo_mass_g"] == pytest.approx(m["myo_ml"] * 1.05)
    assert dice(c == 3, c == 3) == 1.0 and np.isnan(dice(c == 9, c == 9))


def test_icc_absolute_agreement():
    rng = np.random.default_rng(1)
    truth = rng.normal(10, 5, 4000)
    x = truth + rng.normal(0, 1, truth.size)
    y = truth + 2 + rng.normal(0, 1, truth.size)  # a constant bias lowers absolute agreement
    icc, lo, hi = icc_a1(x, y)
    expected = 25 / (25 + 1 + 2**2 / 2)  # subject / (subject + error + rater) variance
    assert icc == pytest.approx(expected, abs=0.01) and lo < icc < hi
    assert icc_a1(truth, truth + 0.0)[0] == pytest.approx(1.0)
    a = agreement(y, x)
    assert a["bias"] == pytest.approx(2.0, abs=0.1) and a["pearson_r"] > 0.95


def test_lv_centres_fall_back_on_slices_without_lv():
    c = np.zeros((3, 20, 20), np.uint8)
    c[0, 4:8, 10:14] = 2
    c[2, 4:8, 10:14] = 1
    ctr = lv_centres(c)
    assert ctr[0].tolist() == [5.5, 11.5] and ctr[1].tolist() == [5.5, 11.5]


# ------------------------------------------------------------------ end to end on synthetic stacks
@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from lgenet.data.synth import make_cohort

    root = tmp_path_factory.mktemp("segsynth")
    m = make_cohort(
        root / "c",
        n_patients=8,
        image_size=64,
        n_slices=(4, 5),
        seed=11,
        lge_fraction_none=0.25,
        lge_fraction_high=0.5,
        event_rate=0.3,
        progress=False,
    )
    return root, m


@pytest.fixture(scope="module")
def seg_run(synth):
    from lgenet.segment import train_segmentation

    root, m = synth
    cfg = SegConfig(manifest=str(m), out=str(root / "seg"), labels=SYNTH_LABELS, **TINY)
    res = train_segmentation(cfg, progress=False)
    return root, m, cfg, res


def test_train_writes_out_of_fold_masks_metrics_and_summary(seg_run):
    root, m, cfg, res = seg_run
    run = root / "seg"
    rows = _rows(run / "seg_metrics.csv")
    assert len(rows) == 8 and {"patient_id", "dice_myo", "dice_lge", "lge_percent_expert", "lge_percent_pred"} <= set(
        rows[0]
    )
    s = json.loads((run / "seg_summary.json").read_text())
    assert s["n"] == 8 and "whole_lv" in s["auc_lge"]
    # every patient, the EMIDEC challenge's convention: the per-patient Dice with "both masks empty" (NaN) read as 1
    per = np.array([float(r["dice_lge"]) if r["dice_lge"] != "" else np.nan for r in rows])
    assert s["dice_lge_all"]["n"] == 8
    assert s["dice_lge_all"]["mean"] == pytest.approx(np.where(np.isnan(per), 1.0, per).mean())
    # the planted anatomy is learned: on 6 training stacks, in seconds
    assert s["dice_myo"]["mean"] > 0.5, s["dice_myo"]
    assert res.fits_run == 2 and "Dice myocardium" in res.table


def test_the_segmenter_normalises_its_inputs_as_its_run_was_trained(seg_run):
    """The fold models record their normalisation method; inference applies that one, not a global default."""
    from lgenet.data.manifest import load_manifest
    from lgenet.segment import cases_of, load_segmenter, read_case

    root, m, cfg, res = seg_run
    seg = load_segmenter(root / "seg", [0])
    assert cfg.normalisation == 3 and seg.spec.normalisation == 3
    st = read_case(cases_of(load_manifest(m, tasks=None), need_masks=True)[0], cfg)
    img = st.image.astype(np.float32)
    v1 = tissue_normalise(img, seg.spec.percentiles, method=1)
    v2 = tissue_normalise(img, seg.spec.percentiles, method=3, spacing=st.spacing)  # the run's
    assert np.abs(v1 - v2).max() > 0.01  # the two methods differ on this stack
    got = seg(img, st.spacing).probs.astype(np.float32)
    assert np.allclose(got, seg(v2, st.spacing, normalised=True).probs.astype(np.float32), atol=1e-3)
    assert not np.allclose(got, seg(v1, st.spacing, normalised=True).probs.astype(np.float32), atol=1e-3)


def test_masks_are_aligned_with_dicom_series_inputs(seg_run):
    from lgenet.io import read_volume

    root, m, cfg, res = seg_run
    pid = "SYN001"
    mask = nib.load(root / "seg" / "masks" / f"{pid}.nii.gz")
    vol, meta = read_volume(root / "c" / "dicom" / pid)
    assert mask.shape == (vol.shape[2], vol.shape[1], vol.shape[0])  # (cols, rows, slices apex->base)
    assert np.allclose(mask.affine, np.asarray(meta["affine"]))
    expert = nib.load(root / "c" / "masks" / f"{pid}.nii.gz")  # lgenet synth's own label map, same layout
    assert expert.shape == mask.shape
    assert set(np.unique(np.asarray(mask.dataobj))) <= {0, 1, 2, 3}


def test_fold_isolation(seg_run):
    """Every patient's mask comes from the fold model that never trained on it."""
    from lgenet.segment import SegRunDir

    root, m, cfg, res = seg_run
    rd = SegRunDir(root / "seg")
    folds = rd.read_folds("seg")
    for k in range(cfg.folds):
        info = json.loads((rd.fold_dir(k) / "fit.json").read_text())
        tested = {r["patient_id"] for r in _rows(rd.fold_dir(k) / "predictions.csv")}
        assert tested == {p for p, f in folds.items() if f == k}
        assert not tested & set(info["train_patients"])
        assert set(info["train_patients"]) == {p for p, f in folds.items() if f != k}


def test_resume_skips_finished_folds_and_refuses_changed_settings(seg_run):
    from lgenet.segment import train_segmentation

    root, m, cfg, res = seg_run
    again = train_segmentation(cfg, progress=False)
    assert (again.fits_run, again.fits_skipped) == (0, 2)
    assert again.summary["dice_myo"] == res.summary["dice_myo"]
    with pytest.raises(ConfigError, match=r"different settings \(epochs: 60 -> 61\)"):
        train_segmentation(cfg.replace(epochs=61), progress=False)


def test_auto_precision_resumes_in_the_finished_folds_precision(seg_run, monkeypatch, caplog):
    """'auto' on a CPU changed meaning on 2026-11-27 (fp32 -> bf16 on native-bf16 CPUs): a resume keeps the
    precision the finished folds recorded instead of refusing or mixing."""
    import json
    import logging

    import lgenet.runs.compute as tr
    from lgenet.segment import SegRunDir, train_segmentation

    root, m, cfg, res = seg_run
    assert cfg.precision == "auto"
    used = {json.loads(f.read_text())["compute"]["precision"] for f in SegRunDir(cfg.out).finished_fits()}
    assert len(used) == 1
    monkeypatch.setattr(tr, "cpu_native_bf16", lambda: used != {"bf16"})  # 'auto' now means the other one
    with caplog.at_level(logging.WARNING, logger="lgenet"):
        again = train_segmentation(cfg, progress=False)
    assert (again.fits_run, again.fits_skipped) == (0, 2)
    assert f"resuming with precision {used.pop()}" in caplog.text


def test_apply_to_a_cohort_without_masks(seg_run, tmp_path):
    from lgenet.data.manifest import load_manifest
    from lgenet.segment import SegApplyOptions, apply_segmentation

    root, m, cfg, res = seg_run
    rows = _rows(m)
    for r in rows:
        r["mask"] = ""
        r["lge_percent"] = ""
    cohort = tmp_path / "cohort.csv"
    with open(cohort, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({**r, "image": str((m.parent / r["image"]).resolve())} for r in rows)
    out = apply_segmentation(root / "seg", SegApplyOptions(out=tmp_path / "applied", manifest=cohort, progress=False))
    assert len(out.rows) == 8 and all((tmp_path / "applied" / r["mask"]).is_file() for r in out.rows)
    new = load_manifest(out.manifest, tasks=None)
    measured = {r["patient_id"] for r in out.rows if r["status"] == "segmented"}
    # a tiny network whose localiser misplaces some windows: a cut ring is refused as not an LV (since 0.2.0),
    # with its reason, never measured
    assert len(measured) >= 4
    assert all("implausible LV mask: " in r["notes"] for r in out.rows if r["patient_id"] not in measured)
    # the synthetic NIfTI stacks lie on oblique short-axis planes: the side of every measured ring is judged
    assert all(r["rv_side"].split(" (")[0] in {"consistent", "inconsistent", "unknown"} for r in out.rows)
    assert not any("geometry" in r["rv_side"] for r in out.rows if r["patient_id"] in measured)
    assert all((r.lge_percent is not None) == (r.patient_id in measured) for r in new.records)
    got = _rows(out.manifest)
    assert got[0]["lge_percent_source"].startswith("lgenet segment apply (fold ensemble")
    assert (tmp_path / "applied" / "overlays" / "SYN001.png").is_file()
    # the AHA bullseyes of the measured masks, and the cohort's mean
    assert all((tmp_path / "applied" / "bullseye" / f"{p}.png").is_file() for p in measured)
    assert (tmp_path / "applied" / "bullseye" / "cohort_mean.png").is_file()


def test_apply_single_inputs_from_the_cli(seg_run, tmp_path, capsys):
    from lgenet.cli import main

    root, m, cfg, res = seg_run
    out = tmp_path / "seg.csv"
    assert (
        main(
            [
                "segment",
                "apply",
                "--run",
                str(root / "seg"),
                "-o",
                str(out),
                "--ids",
                "A,B",
                str(root / "c" / "dicom" / "SYN001"),
                str(root / "c" / "dicom" / "SYN002"),
                "-q",
            ]
        )
        == 0
    )
    rows = _rows(out)
    assert [r["patient_id"] for r in rows] == ["A", "B"] and rows[0]["lge_percent_pred"] != ""
    assert (tmp_path / "seg_seg" / "masks" / "A.nii.gz").is_file()
    assert "LGE" in capsys.readouterr().out


def test_train_refuses_manifests_without_masks_or_with_undeclared_labels(synth, tmp_path):
    from lgenet.segment import train_segmentation

    root, m = synth
    with pytest.raises(DataError, match=r"label value\(s\) 4 .* are not declared"):
        train_segmentation(
            SegConfig(
                manifest=str(m),
                out=str(tmp_path / "x"),
                labels={"cavity": [1], "myo": [2, 3], "lge": [3], "other": [0]},
                **TINY,
            ),
            progress=False,
        )
    assert not (tmp_path / "x").exists()
    rows = _rows(m)
    rows[2]["mask"] = ""
    bad = m.parent / "nomask.csv"
    with open(bad, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(DataError, match=r"row 3 \(patient SYN003\): no 'mask'"):
        train_segmentation(
            SegConfig(manifest=str(bad), out=str(tmp_path / "y"), labels=SYNTH_LABELS, **TINY), progress=False
        )


def test_burden_family_in_the_grid_uses_out_of_fold_burden(seg_run, tmp_path):
    """The predicted burden is a model of the grid: same folds and patients, no fitting, p >= 0.5 iff burden > 5.7."""
    from lgenet.config import RunConfig
    from lgenet.workflows.grid import run_experiment

    root, m, cfg, res = seg_run
    rc = RunConfig(
        manifest=str(m),
        out=str(tmp_path / "grid"),
        tasks=("lge", "event"),
        archs=("tiny",),
        inits=("random",),
        families=("classifier", "burden"),
        segmentation_run=str(root / "seg"),
        epochs=1,
        image_size=32,
        folds=2,
        dense_units=8,
        num_threads=1,
    )
    out = run_experiment(rc, progress=False, report=True)
    assert (tmp_path / "grid" / "report.html").is_file()
    assert "burden:whole/seg" in (tmp_path / "grid" / "report.html").read_text()
    models = {r["model"] for r in out.metrics}
    assert models == {"tiny/random", "burden:whole/seg", "burden:basal/seg"}
    seg_rows = {r["patient_id"]: float(r["lge_percent_pred"]) for r in _rows(root / "seg" / "seg_metrics.csv")}
    oof = [r for r in _rows(tmp_path / "grid" / "oof_predictions.csv") if r["model"] == "burden:whole/seg"]
    assert len(oof) == 2 * 8
    for r in oof:
        assert (float(r["prob"]) >= 0.5) == (seg_rows[r["patient_id"]] > 5.7)
    with pytest.raises(ConfigError, match="give 'segmentation_run'"):
        RunConfig(manifest=str(m), families=("burden",))


def test_roi_and_stack_families_use_the_same_folds_segmenter(seg_run, tmp_path):
    from lgenet.config import RunConfig
    from lgenet.workflows.grid import run_experiment

    root, m, cfg, res = seg_run
    rc = RunConfig(
        manifest=str(m),
        out=str(tmp_path / "grid"),
        tasks=("lge", "event"),
        families=("roi", "stack"),
        segmentation_run=str(root / "seg"),
        anatomy_arch="tiny",
        anatomy_size=32,
        anatomy_spacing=4.0,
        anatomy_epochs=2,
        folds=2,
        batch_size=4,
        num_threads=1,
    )
    out = run_experiment(rc, progress=False, report=True)
    got = {(r["task"], r["model"]) for r in out.metrics}
    # a run without seed classifiers still gets its report, saying why it has no CAMs
    html = (tmp_path / "grid" / "report.html").read_text()
    assert "stack:tiny/random" in html and "trained no seed-protocol classifier" in html
    # the segmentation folds were stratified on lge: event's folds differ, so its roi/stack models are skipped
    assert got == {("lge", "roi:tiny/random"), ("lge", "stack:tiny/random")}
    run = json.loads((tmp_path / "grid" / "run.json").read_text())
    assert "--stratify event" in run["models_skipped"]["event"]
    oof = [r for r in _rows(tmp_path / "grid" / "oof_predictions.csv") if r["model"] == "stack:tiny/random"]
    assert len(oof) == 8 and all(0 <= float(r["prob"]) <= 1 for r in oof)
    assert list((tmp_path / "grid" / "cache").glob("anatomy_fold*_32px.safetensors"))


def test_a_segmentation_stratified_on_event_has_the_event_tasks_folds(synth, tmp_path):
    from lgenet.data.manifest import load_manifest
    from lgenet.data.splits import assign_folds
    from lgenet.segment import segmentation_folds

    root, m = synth
    cfg = SegConfig(manifest=str(m), out=str(tmp_path / "s"), labels=SYNTH_LABELS, stratify="event", **TINY)
    folds = segmentation_folds(cfg)
    labels = load_manifest(m).labels("event")
    assert folds == assign_folds(sorted(labels), [labels[p] for p in sorted(labels)], n_splits=2, random_state=0)


def test_batch_affine_keeps_image_and_labels_aligned_and_is_reproducible():
    """SegConfig.batch_augment's geometry: one affine per sample, drawn for the whole batch; labels stay
    labels (nearest), image and labels move together, the window comes from the canvas centre."""
    import torch

    from lgenet.segment.augment import BatchAffine

    yy, xx = torch.meshgrid(torch.arange(80.0), torch.arange(80.0), indexing="ij")
    r = torch.hypot(yy - 39.5, xx - 39.5)
    lab = ((r > 8) & (r < 14)).float() + 2 * ((r > 8) & (r < 14) & (xx > 45)).float()
    x = torch.stack([lab / 3] * 3)[None].repeat(16, 1, 1, 1)
    y = lab[None, None].repeat(16, 1, 1, 1)
    xo, yo = BatchAffine(56, 4.0, seed=3)(x, y)
    assert xo.shape == (16, 3, 56, 56) and yo.shape == (16, 1, 56, 56)
    assert set(yo.unique().tolist()) <= {0.0, 1.0, 3.0}
    inside = xo[:, 0] > 0
    assert torch.corrcoef(torch.stack([xo[:, 0].flatten(), yo[:, 0].flatten() / 3]))[0, 1] > 0.95
    # the ring (area ~ pi (14^2 - 8^2)) stays about the same size in the 56 px window (scale 1 +- 0.2)
    assert 0.6 < (yo > 0).float().mean().item() / ((lab > 0).float().mean().item() * (80 / 56) ** 2) < 1.6
    assert inside.any()
    xo2, yo2 = BatchAffine(56, 4.0, seed=3)(x, y)
    assert torch.equal(xo, xo2) and torch.equal(yo, yo2)
    assert not torch.equal(xo, BatchAffine(56, 4.0, seed=4)(x, y)[0])


def test_loader_workers_draw_their_own_reproducible_augmentation_streams():
    """SegConfig.loader_workers: batches made in DataLoader workers. Each worker reseeds its copy of the
    augmentation (forked copies would otherwise repeat each other's draws), and the same generator seed
    gives the same batches again."""
    import torch

    from lgenet.models.segnet import SegSpec
    from lgenet.segment.augment import AugmentedBatches, BatchAffine, reseed_worker, seg_augmentation

    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    img = (torch.hypot(yy - 23.5, xx - 30) < 9).float() * 0.8 + 0.1
    x = img[None, None].repeat(8, 3, 1, 1)
    y = (img > 0.5).float()[None, None].repeat(8, 1, 1, 1)

    def batches(seed):
        ds = AugmentedBatches(
            x,
            y,
            BatchAffine(32, 3.0, seed=1),
            seg_augmentation(SegSpec(crop=32), out_size=32, shift_px=3.0, seed=1, spatial=False),
        )
        same = [list(range(4))] * 6  # the same four samples every time: only the augmentation differs
        loader = torch.utils.data.DataLoader(
            ds,
            sampler=same,
            batch_size=None,
            num_workers=2,
            worker_init_fn=reseed_worker,
            generator=torch.Generator().manual_seed(seed),
        )
        return [xb for xb, _ in loader]

    a = batches(0)
    assert len(a) == 6 and a[0].shape == (4, 3, 32, 32)
    # batches 0 and 1 are the first draws of workers 0 and 1: different streams
    assert all(not torch.equal(a[i], a[j]) for i in range(6) for j in range(i + 1, 6))
    assert all(torch.equal(p, q) for p, q in zip(a, batches(0)))
    assert not torch.equal(a[0], batches(1)[0])
    with pytest.raises(ConfigError, match="loader_workers"):
        SegConfig(loader_workers=-1)


def test_loader_workers_auto_is_none_on_a_cpu_and_the_spare_cores_on_a_gpu(monkeypatch):
    """Unset loader_workers: 0 on a CPU (every run before them); on a GPU the cores per fold at a time less one,
    at most 3 (configuration 15's 3 with 4 folds on 16 cores)."""
    import os

    from lgenet.segment.train import auto_loader_workers

    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert auto_loader_workers("cpu", "process", 4) == 0
    assert auto_loader_workers("cuda", "process", 4) == 3
    assert auto_loader_workers(torch.device("cuda"), "local", 4) == 3  # one fold at a time
    assert auto_loader_workers("cuda", "process", 8) == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert auto_loader_workers("cuda", "process", 2) == 0
    assert SegConfig().loader_workers is None


def test_segmenter_learns_with_loader_workers(seg_run, tmp_path):
    """The GPU path's loader workers (batch augmentation made ahead in 2 processes) train a segmenter that
    learns the synthetic hearts like the in-process path; a resume with another worker count is refused."""
    root, m = seg_run[:2]
    cfg, rows = _train_tiny(m, tmp_path / "seg_w", loader_workers=2)
    assert len(rows) == 8 and np.median([float(r["dice_myo"]) for r in rows]) > 0.6
    from lgenet.segment import train_segmentation

    with pytest.raises(ConfigError, match="loader_workers"):
        train_segmentation(cfg.replace(loader_workers=None), progress=False)  # auto: 0 on this CPU


def test_segmenter_learns_with_batch_augmentation_and_a_coarse_localiser(seg_run, tmp_path):
    """batch_augment (the default) learns; coarse_shift_mm > 0 trains, saves and restores a coarse localiser."""
    from lgenet.segment import SegRunDir, load_segmenter

    root, m = seg_run[:2]
    cfg, rows = _train_tiny(m, tmp_path / "seg_b", batch_augment=True, coarse_shift_mm=40.0)
    # median: the tiny localisers miss the heart on 2 of the 8 synthetic stacks (Dice 0) with or without a
    # coarse localiser; the others score 0.8-0.9
    assert len(rows) == 8 and np.median([float(r["dice_myo"]) for r in rows]) > 0.6
    rd = SegRunDir(tmp_path / "seg_b")
    assert all(rd.load_states(k)[3] is not None for k in range(cfg.folds))
    seg = load_segmenter(tmp_path / "seg_b")
    assert seg.spec.coarse_shift_mm == 40.0 and len(seg.coarse) == cfg.folds
    plain = load_segmenter(tmp_path / "seg_b", coarse=False)  # the same run without its coarse localiser
    assert plain.spec.coarse_shift_mm == 0.0 and plain.coarse == []
    assert all(
        torch.equal(a, b)
        for a, b in zip(plain.segmenters[0].state_dict().values(), seg.segmenters[0].state_dict().values())
    )
    assert len(json.loads((rd.fold_dir(0) / "fit.json").read_text())["coarse_losses"]) == cfg.loc_epochs
    assert SegRunDir(root / "seg").load_states(0)[3] is None  # runs without one hold none
    f = rd.fold_dir(1) / "model.pt"  # a fold file that lost its coarse localiser: the error names it
    ck = torch.load(f, weights_only=True)
    del ck["coarse_localiser"]
    torch.save(ck, f)
    from lgenet.errors import LgenetError

    with pytest.raises(LgenetError, match=r"fold1.*holds none"):
        load_segmenter(tmp_path / "seg_b")


def _gate_spec():
    """Small networks, 4 mm localiser pixels on a 64 px canvas, the localiser's 20 mm and a 100 mm coarse localiser:
    the coarse gate's tests, with stand-in localisers."""
    from lgenet.models.segnet import SegSpec

    return SegSpec(
        spacing=2.5,
        crop=64,
        channels=(8, 16, 32, 64),
        res_units=1,
        loc_spacing=4.0,
        loc_size=64,
        loc_channels=(4, 8, 16),
        loc_shift_mm=20.0,
        coarse_shift_mm=100.0,
    )


class _BrightSpot(torch.nn.Module):
    """A stand-in localiser: 'LV' wherever the canvas is bright, optionally only near the canvas centre
    (what a localiser trained on small shifts learns)."""

    def __init__(self, radius: float | None, lo: float = 0.5, hi: float = 2.0) -> None:
        super().__init__()
        self.radius, self.lo, self.hi = radius, lo, hi

    def forward(self, x):
        fg = ((x[:, :1] > self.lo) & (x[:, :1] < self.hi)).float()
        if self.radius is not None:
            n = x.shape[-1]
            yy, xx = torch.meshgrid(torch.arange(n) - (n - 1) / 2, torch.arange(n) - (n - 1) / 2, indexing="ij")
            fg = fg * ((yy**2 + xx**2) <= self.radius**2).float()
        return torch.cat([10 * (0.5 - fg), 10 * (fg - 0.5)], 1)


def test_a_coarse_localiser_recentres_the_canvas_on_a_heart_far_from_the_frame_centre():
    """The coarse localiser proposes a canvas centred on the heart it finds; the localiser keeps whichever
    canvas shows it the larger LV."""
    from lgenet.models.seginfer import Segmenter
    from lgenet.models.segnet import build_localiser, build_segmenter

    spec = _gate_spec()
    st = (build_localiser(spec).state_dict(), build_segmenter(spec).state_dict(), build_localiser(spec).state_dict())
    seg = Segmenter(spec, [st], tta=False)
    seg.localisers = [_BrightSpot(radius=6)]  # sees only within 24 mm of its canvas centre
    seg.coarse = [_BrightSpot(radius=None)]
    vol = np.zeros((2, 200, 200), np.float32)  # 1 mm pixels; heart 70 mm right of and 40 mm below the centre
    vol[:, 135:146, 165:176] = 1.0
    centres, found = seg.localise(vol, (1.0, 1.0))
    assert found.all() and np.allclose(centres, [[140, 170], [140, 170]], atol=3)
    seg.coarse = []  # the localiser alone misses it and falls back on the frame centre
    centres, found = seg.localise(vol, (1.0, 1.0))
    assert not found.any() and np.allclose(centres, 99.5, atol=2.5)
    seg.coarse = [_BrightSpot(radius=None)]  # a heart within loc_shift_mm of the centre: no re-centring
    vol2 = np.zeros((2, 200, 200), np.float32)
    vol2[:, 105:116, 95:106] = 1.0
    centres, found = seg.localise(vol2, (1.0, 1.0))
    assert found.all() and np.allclose(centres, [[110, 100], [110, 100]], atol=3)
    # a misplaced proposal: the coarse localiser points at a decoy 70 mm away, the localiser sees the centred
    # heart on the frame-centred canvas and nothing on the proposed one, so the frame-centred canvas wins
    vol3 = vol2.copy()
    vol3[:, 30:41, 30:41] = 0.3
    seg.coarse = [_BrightSpot(radius=None, lo=0.2, hi=0.4)]
    centres, found = seg.localise(vol3, (1.0, 1.0))
    assert found.all() and np.allclose(centres, [[110, 100], [110, 100]], atol=3)
    from lgenet.errors import LgenetError

    with pytest.raises(LgenetError, match="coarse localiser"):
        Segmenter(spec, [st[:2]], tta=False)


def test_the_coarse_gate_keeps_the_frame_centred_canvas_on_a_near_tie():
    """coarse_margin: a proposed canvas whose LV mass beats the frame-centred one's by 12.5 % wins with the
    plain gate (margin 1.0, runs made before 2026-11-27) and loses with the default margin 1.2."""
    import dataclasses

    from lgenet.models.seginfer import Segmenter
    from lgenet.models.segnet import build_localiser, build_segmenter

    vol = np.zeros((2, 200, 200), np.float32)  # 1 mm pixels
    vol[:, 84:116, 84:116] = 1.0  # the heart, 32 x 32 mm, at the frame centre
    vol[:, 20:52, 150:188] = 0.6  # a decoy 32 x 38 mm, ~75 mm away, that only the coarse localiser is drawn to
    spec = _gate_spec()
    # the default since 0.3.0 (configuration 20): no margin, with a coarse localiser trained on whole-thorax composites
    assert spec.coarse_margin == 1.0 and SegConfig().coarse_margin == 1.0 and SegConfig().spec().coarse_margin == 1.0
    assert SegConfig().coarse_shift_mm == 120.0  # the default since 2026-11-27 (configuration 10)
    st = (build_localiser(spec).state_dict(), build_segmenter(spec).state_dict(), build_localiser(spec).state_dict())
    got = {}
    for margin in (1.0, 1.2):
        seg = Segmenter(dataclasses.replace(spec, coarse_margin=margin), [st], tta=False)
        seg.localisers = [_BrightSpot(radius=10)]  # sees within 40 mm of its canvas centre
        seg.coarse = [_BrightSpot(radius=None, lo=0.55, hi=0.7)]
        origin = np.array([99.5, 99.5], np.float32)
        centred = seg._localise_on(seg.localisers, vol, (1.0, 1.0), origin)[2]
        cc, cf, _ = seg._localise_on(seg.coarse, vol, (1.0, 1.0), origin)  # the coarse localiser's proposal
        proposed = seg._localise_on(seg.localisers, vol, (1.0, 1.0), cc[cf].mean(0).astype(np.float32))[2]
        assert 1.05 < proposed / centred < 1.2
        got[margin] = seg.localise(vol, (1.0, 1.0))[0]
    assert np.allclose(got[1.0][:, 0], 35.5, atol=3)  # the plain gate follows the decoy
    assert np.allclose(got[1.2], 99.5, atol=1)  # the margin keeps the centred heart
    with pytest.raises(ConfigError, match="coarse_margin"):
        SegConfig(coarse_margin=0.9)


def test_more_coarse_candidates_find_a_heart_beside_a_larger_look_alike():
    """coarse_candidates: with 1 only the coarse localiser's largest component is proposed, so a larger look-alike
    hides the heart; with 2 the smaller component is proposed too, and the localiser finds the LV only there."""
    import dataclasses

    from lgenet.models.seginfer import Segmenter
    from lgenet.models.segnet import build_localiser, build_segmenter

    vol = np.zeros((2, 200, 200), np.float32)  # 1 mm pixels
    vol[:, 140:168, 140:168] = 1.0  # the heart, 28 x 28 mm, ~76 mm from the frame centre
    vol[:, 20:60, 20:60] = 0.6  # a look-alike, 40 x 40 mm, that only the coarse localiser takes for a heart
    spec = _gate_spec()
    assert spec.coarse_candidates == 1 and SegConfig().spec().coarse_candidates == 1
    st = (build_localiser(spec).state_dict(), build_segmenter(spec).state_dict(), build_localiser(spec).state_dict())
    got = {}
    for k in (1, 2, 3):
        seg = Segmenter(dataclasses.replace(spec, coarse_candidates=k), [st], tta=False)
        seg.localisers = [_BrightSpot(radius=10, lo=0.8)]  # the bright heart only, within 40 mm of its canvas centre
        seg.coarse = [_BrightSpot(radius=None, lo=0.5)]  # both
        props = seg._coarse_proposals(vol, (1.0, 1.0), np.array([99.5, 99.5], np.float32))
        assert len(props) == min(k, 2) and np.allclose(props[0], 39.5, atol=3)  # the larger first
        got[k] = seg.localise(vol, (1.0, 1.0))
    assert not got[1][1].any()  # one candidate: the look-alike proposed, no LV found anywhere
    for k in (2, 3):
        assert got[k][1].all() and np.allclose(got[k][0], 153.5, atol=3)  # the heart
    with pytest.raises(ConfigError, match="coarse_candidates"):
        SegConfig(coarse_candidates=0)


def test_the_intensity_augmentation_ranges_follow_the_config():
    """SegConfig.aug_intensity_scale / _shift reach MONAI's scale and shift transforms on both augmentation paths;
    out-of-range values are refused with the parameter's name."""
    import monai.transforms as T

    from lgenet.errors import ConfigError
    from lgenet.segment.learn import SegTrainParams, _augmentation

    spec = SegConfig(**TINY).spec()
    for batch in (True, False):
        t = _augmentation(
            spec,
            SegTrainParams(batch_augment=batch, aug_intensity_scale=0.25, aug_intensity_shift=0.1),
            out_size=32,
            shift_px=2.0,
            seed=0,
        )
        pipe = t[1] if batch else t
        sc = [x for x in pipe.transforms if isinstance(x, T.RandScaleIntensityd)]
        sh = [x for x in pipe.transforms if isinstance(x, T.RandShiftIntensityd)]
        assert len(sc) == len(sh) == 1
        assert tuple(sc[0].scaler.factors) == (-0.25, 0.25) and tuple(sh[0].shifter.offsets) == (-0.1, 0.1)
    with pytest.raises(ConfigError, match="aug_intensity_shift"):
        SegConfig(aug_intensity_shift=1.2)
    with pytest.raises(ConfigError, match="aug_intensity_scale"):
        SegConfig(aug_intensity_scale=-0.1)


def test_a_run_made_before_batch_augment_resumes_only_with_the_per_sample_path(seg_run, tmp_path):
    """Old seg_config.yaml files have no batch_augment: they ran MONAI's per-sample affine, so resuming
    them needs batch_augment=False (the new default would mix two augmentations in one CV). Nor do they
    have loc_shift_mm: they shifted the localiser's canvases by 20 mm, the default, which resumes; nor
    normalisation: they normalised by method 1; nor regions: their segmenters were softmax."""
    import shutil

    import yaml

    from lgenet.errors import ConfigError
    from lgenet.segment import train_segmentation

    root, m, cfg, res = seg_run
    old = tmp_path / "old"
    shutil.copytree(root / "seg", old)
    data = yaml.safe_load((old / "seg_config.yaml").read_text())
    data.pop("batch_augment", None)
    data.pop("loc_shift_mm", None)
    data.pop("normalisation", None)
    data.pop("regions", None)
    data.pop("coarse_margin", None)
    data.pop("aug_intensity_scale", None)
    data.pop("aug_intensity_shift", None)
    (old / "seg_config.yaml").write_text(yaml.safe_dump(data))
    from lgenet.segment import SegRunDir

    loaded = SegRunDir(old).load_config()  # what the old run did, not today's defaults
    assert (loaded.batch_augment, loaded.loc_shift_mm, loaded.normalisation, loaded.regions, loaded.coarse_margin) == (
        False,
        20.0,
        1,
        False,
        1.0,
    )
    assert (loaded.aug_intensity_scale, loaded.aug_intensity_shift) == (0.5, 0.3)
    with pytest.raises(ConfigError, match="normalisation"):  # old runs normalised by method 1
        train_segmentation(cfg.replace(out=str(old), batch_augment=False), progress=False)
    with pytest.raises(ConfigError, match="batch_augment"):
        train_segmentation(cfg.replace(out=str(old), batch_augment=True), progress=False)
    with pytest.raises(ConfigError, match="loc_shift_mm"):
        train_segmentation(
            cfg.replace(out=str(old), batch_augment=False, normalisation=1, loc_shift_mm=120.0), progress=False
        )
    # resumes: without a coarse localiser the gate's margin (1.0 then, 1.2 here) plays no part
    assert cfg.coarse_shift_mm == 0
    train_segmentation(
        cfg.replace(out=str(old), batch_augment=False, normalisation=1, coarse_margin=1.2), progress=False
    )


def test_auxiliary_segmentation_loss_reads_only_the_training_folds_masks(seg_run, tmp_path, monkeypatch):
    """anatomy_aux_weight > 0: roi/stack learn the expert masks of the training patients as an auxiliary
    target; a fold never reads its own test patients' masks, and the image-only channels work."""
    from safetensors import safe_open

    import lgenet.data.stacks as stacks_mod
    import lgenet.training.anatomy as anat
    from lgenet.config import RunConfig
    from lgenet.workflows.grid import run_experiment

    root, m, cfg, res = seg_run
    reads, current = [], {}
    real_read, real_inputs = stacks_mod.read_stack, anat.anatomy_inputs

    def recording_read(image, mask=None, **kw):
        if mask is not None:
            reads.append((current["fold"], Path(mask).name.split(".")[0]))
        return real_read(image, mask, **kw)

    def recording_inputs(job):
        current["fold"] = job.fold
        return real_inputs(job)

    monkeypatch.setattr(stacks_mod, "read_stack", recording_read)
    monkeypatch.setattr(anat, "anatomy_inputs", recording_inputs)
    rc = RunConfig(
        manifest=str(m),
        out=str(tmp_path / "grid"),
        tasks=("lge",),
        families=("roi", "stack"),
        segmentation_run=str(root / "seg"),
        anatomy_arch="tiny",
        anatomy_size=32,
        anatomy_spacing=4.0,
        anatomy_epochs=2,
        folds=2,
        batch_size=4,
        num_threads=1,
        anatomy_aux_weight=1.0,
        anatomy_channels="image",
        outcomes=False,
    )
    out = run_experiment(rc, progress=False, report=False)
    assert {r["model"] for r in out.metrics} == {"roi:tiny/random", "stack:tiny/random"}
    folds = {r["patient_id"]: int(r["fold"]) for r in _rows(tmp_path / "grid" / "folds_lge.csv")}
    assert reads and {k for k, _ in reads} == {0, 1}
    for k, pid in reads:
        assert folds[pid] != k, f"fold {k} read the mask of its test patient {pid}"
    assert {pid for k, pid in reads if k == 0} == {p for p, f in folds.items() if f != 0}
    for k in (0, 1):
        with safe_open(str(tmp_path / "grid" / "cache" / f"anatomy_fold{k}_32px.safetensors"), "pt") as fh:
            meta = fh.metadata()
            has, pids = json.loads(meta["has_mask"]), json.loads(meta["patient_ids"])
            bm = fh.get_tensor("basal_masks")
        assert [h for h in has] == [folds[p] != k for p in pids]
        assert all(bm[i, 0].sum() > 0 for i, h in enumerate(has) if h)  # the myocardium lies in the window
        assert all(bm[i].sum() == 0 for i, h in enumerate(has) if not h)  # nothing of a test patient's mask
        assert all((bm[i, 1] <= bm[i, 0]).all() for i in range(len(has)))  # enhancement inside the myocardium
    fit = json.loads(next((tmp_path / "grid" / "fits" / "lge").glob("stack*/fold0/fit.json")).read_text())
    assert fit["channels"] == "image" and fit["aux_weight"] == 1.0 and len(fit["aux_losses"]) == 2
    assert all(v > 0 for v in fit["aux_losses"]) and fit["n_train_patients_with_mask"] == 4


def test_auxiliary_loss_without_masks_is_a_clear_error(seg_run, tmp_path):
    import csv as csv_mod

    from lgenet.config import RunConfig
    from lgenet.workflows.grid import run_experiment

    root, m, cfg, res = seg_run
    rows = _rows(m)
    nomask = tmp_path / "nomask.csv"
    with open(nomask, "w", newline="") as fh:
        w = csv_mod.DictWriter(fh, [k for k in rows[0] if k != "mask"], extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "image": str((Path(m).parent / r["image"]).resolve())})
    rc = RunConfig(
        manifest=str(nomask),
        out=str(tmp_path / "grid"),
        tasks=("lge",),
        families=("roi",),
        segmentation_run=str(root / "seg"),
        anatomy_arch="tiny",
        anatomy_size=32,
        anatomy_spacing=4.0,
        anatomy_epochs=1,
        folds=2,
        batch_size=4,
        num_threads=1,
        anatomy_aux_weight=0.5,
        outcomes=False,
    )
    with pytest.raises(ConfigError, match="anatomy_aux_weight=0.5 needs expert masks.*manifest column 'mask'"):
        run_experiment(rc, progress=False, report=False)


def test_auxiliary_targets_meet_their_own_slices_feature_maps():
    """A stack batch concatenates every patient's slices: the auxiliary loss must take the feature-map rows
    of the patients with masks, slice for slice (the bug this guards against paired row j with item j)."""
    from lgenet.training.anatomy import _masked_rows

    m = object()
    assert _masked_rows([2, 3, 1], [m, None, m]) == [0, 1, 5]
    assert _masked_rows([1, 1, 1], [None, m, m]) == [1, 2]
    assert _masked_rows([4], [None]) == []


def test_out_of_fold_ensemble_bench_rescores_each_run_with_its_held_out_models(seg_run, tmp_path):
    """bench/seg_ensemble.py: each run's re-scored Dice equals that run's own out-of-fold figure (so every
    patient met only the fold model that held it out), and the ensemble is scored on the same patients."""
    import importlib.util

    from lgenet.segment import train_segmentation

    root, m, cfg, _ = seg_run
    other = cfg.replace(out=str(tmp_path / "seg_seed1"), seed=1)
    train_segmentation(other, progress=False)
    spec = importlib.util.spec_from_file_location(
        "seg_ensemble", Path(__file__).parents[1] / "bench" / "seg_ensemble.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--runs", str(root / "seg"), other.out, "--manifest", str(m), "--out", str(tmp_path / "ens")]) == 0
    res = json.loads((tmp_path / "ens" / "results.json").read_text())
    for run, single in zip((root / "seg", Path(other.out)), res["single"]):
        rows = _rows(run / "seg_metrics.csv")
        assert single["n"] == len(rows) == res["ensemble"]["n"]
        assert single["dice_myo"] == pytest.approx(np.nanmean([float(r["dice_myo"]) for r in rows]), abs=1e-6)
    assert 0.0 <= res["ensemble"]["dice_myo"] <= 1.0
    # bench/seg_compare.py: a run against itself differs by nothing; runs on other folds are refused
    spec = importlib.util.spec_from_file_location("seg_compare", Path(__file__).parents[1] / "bench" / "seg_compare.py")
    cmp_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cmp_mod)
    same = cmp_mod.compare(root / "seg", root / "seg")
    assert same["n"] == 8 and all(m["diff"] == 0 for m in same["measures"].values())
    assert same["measures"]["dice_lge"]["n"] == sum(
        float(r["lge_percent_expert"]) > 0 for r in _rows(root / "seg" / "seg_metrics.csv")
    )
    moved = tmp_path / "moved"  # the same run with one patient in another fold
    moved.mkdir()
    for name in ("seg_metrics.csv", "seg_summary.json"):
        (moved / name).write_text((root / "seg" / name).read_text())
    lines = (root / "seg" / "folds_seg.csv").read_text().splitlines()
    head, first = lines[0].split(","), lines[1].split(",")
    first[head.index("fold")] = str(1 - int(first[head.index("fold")]))
    (moved / "folds_seg.csv").write_text("\n".join([lines[0], ",".join(first)] + lines[2:]) + "\n")
    with pytest.raises(SystemExit, match="do not share their folds"):
        cmp_mod.compare(root / "seg", moved)
    fit = Path(other.out) / "fits" / "seg" / "fold0" / "fit.json"  # a fold model that saw its own test patients
    info = json.loads(fit.read_text())
    info["train_patients"] = info["train_patients"] + info["test_patients"][:1]
    fit.write_text(json.dumps(info))
    with pytest.raises(SystemExit, match="not out-of-fold"):
        mod.main(["--runs", str(root / "seg"), other.out, "--manifest", str(m), "--out", str(tmp_path / "ens2")])


def test_a_heart_found_far_from_the_frame_centre_is_noted(seg_run, monkeypatch):
    """Without a coarse localiser, an LV found further from the frame centre than the localiser's training shifts
    gets a note naming the remedy (a run trained with --coarse-shift-mm); a centred one gets none."""
    from lgenet.models.seginfer import Segmenter, off_centre_mm
    from lgenet.segment import load_segmenter

    assert off_centre_mm(np.array([[10.0, 20.0], [10.0, 20.0]]), (21, 21), (2.0, 1.0)) == pytest.approx(10.0)
    root, m, cfg, _ = seg_run
    seg = load_segmenter(root / "seg", [0])
    img = np.random.default_rng(0).random((4, 64, 64)).astype(np.float32)
    spacing = (2.5, 2.5)
    for rc, noted in (((31.5, 31.5), False), ((31.5, 31.5 + (seg.spec.loc_shift_mm + 5) / 2.5), True)):
        monkeypatch.setattr(
            Segmenter,
            "localise",
            lambda self, vol, sp, rc=rc: (np.tile(np.float32(rc), (vol.shape[0], 1)), np.ones(vol.shape[0], bool)),
        )
        notes = seg(img, spacing).notes
        assert any("--coarse-shift-mm" in n for n in notes) == noted, notes


def test_nested_regions_turn_into_class_probabilities_and_decode_inner_region_first():
    """region_targets / regions_to_probs / decode_classes against hand-computed values."""
    from lgenet.models.segnet import decode_classes, region_targets, regions_to_probs

    y = torch.tensor([0.0, 1.0, 2.0, 3.0]).view(1, 1, 1, 4)
    t = region_targets(y)[0, :, 0]  # (3 regions, 4 pixels)
    assert t.tolist() == [[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]]
    # pixel 0: nothing; 1: LV only; 2: LV + myo; 3: an enhancement the outer regions missed (inner first)
    r = torch.tensor([[0.1, 0.9, 0.9, 0.2], [0.05, 0.2, 0.8, 0.3], [0.0, 0.1, 0.1, 0.7]]).view(1, 3, 1, 4)
    p = regions_to_probs(r)[0, :, 0]
    assert torch.allclose(p.sum(0), torch.ones(4)) and (p >= 0).all()
    assert torch.allclose(p[3], torch.tensor([0.0, 0.1, 0.1, 0.7]))  # enhancement = P(enh)
    assert torch.allclose(p[2:].sum(0), torch.tensor([0.05, 0.2, 0.8, 0.7]))  # myo = max(P(myo), P(enh))
    assert torch.allclose(p[0], torch.tensor([0.9, 0.1, 0.1, 0.3]))  # background = 1 - max(...)
    assert decode_classes(p[None, :, None], True)[0, 0].tolist() == [0, 1, 2, 3]
    # the decoding thresholds regions, where the softmax rule takes the most probable class
    q = torch.tensor([0.1, 0.3, 0.3, 0.3]).view(1, 4, 1, 1)  # P(LV) 0.9, P(myo) 0.6, P(enh) 0.3
    assert decode_classes(q, True).item() == 2 and decode_classes(q, False).item() == 1
    # it commutes with averaging: decoding the mean of two nets' class probabilities is a region vote
    a = regions_to_probs(torch.tensor([0.9, 0.9, 0.9]).view(1, 3, 1, 1))
    b = regions_to_probs(torch.tensor([0.9, 0.3, 0.0]).view(1, 3, 1, 1))
    assert decode_classes((a + b) / 2, True).item() == 2  # mean P(myo) 0.6 > 0.5, mean P(enh) 0.45 < 0.5


def test_a_nested_region_segmenter_learns_saves_and_decodes_regions(seg_run, tmp_path):
    """regions=True trains three sigmoid outputs, records it in the fold models, and learns the planted anatomy."""
    from lgenet.segment import load_segmenter

    root, m = seg_run[:2]
    # the sigmoid regions learn slower than the softmax on 4 training stacks: at 60 epochs myocardium Dice 0.49
    # and cavity ~0 (softmax 0.61 / 0.68); at 120, myocardium 0.65 and cavity 0.36 (the myocardium region
    # spills into the cavity)
    cfg, rows = _train_tiny(m, tmp_path / "seg_r", regions=True, epochs=120)
    assert len(rows) == 8 and np.mean([float(r["dice_myo"]) for r in rows]) > 0.5
    assert np.mean([float(r["dice_cavity"]) for r in rows]) > 0.2  # decoding yields a cavity (LV minus myocardium)
    seg = load_segmenter(tmp_path / "seg_r")
    assert seg.spec.regions is True
    out = [
        mod
        for mod in seg.segmenters[0].modules()
        if isinstance(mod, torch.nn.Conv2d) or isinstance(mod, torch.nn.ConvTranspose2d)
    ][-1]
    assert out.out_channels == 3
    assert load_segmenter(root / "seg").spec.regions is False  # runs made without it keep softmax
    with pytest.raises(ConfigError, match="regions"):
        SegConfig(regions="yes")


def test_import_dicom_then_apply_writes_a_dicom_seg_that_reads_back_as_the_mask(seg_run, tmp_path):
    """The field path: a folder of DICOM studies -> import dicom -> segment apply --dicom-seg; the SEG holds the
    mask exactly, references the source series, and (when dicom3tools is installed) dciodvfy finds no error."""
    import shutil
    import subprocess

    import nibabel as nib
    import pydicom

    from lgenet.cli import main
    from lgenet.io.dicom_seg import read_dicom_seg

    root, m, cfg, res = seg_run
    assert main(["import", "dicom", str(root / "c" / "dicom"), "--out", str(tmp_path / "cohort.csv")]) == 0
    out = tmp_path / "applied"
    args = ["segment", "apply", "--run", str(root / "seg"), "--manifest", str(tmp_path / "cohort.csv")]
    assert main([*args, "--out", str(out), "--dicom-seg", "--no-overlays", "-q"]) == 0
    rows = _rows(out / "segmentation.csv")
    assert len(rows) == 8 and all(r["dicom_seg"] for r in rows)
    assert all(bool(r["dicom_sr"]) == (r["status"] == "segmented") for r in rows)
    values = np.asarray(cfg.seg_labels().values())
    for r in rows[:3]:
        src = tmp_path / "cohort_series" / r["patient_id"]
        classes = read_dicom_seg(out / r["dicom_seg"], src)
        mask = np.asarray(nib.load(out / r["mask"]).dataobj)
        back = np.zeros(mask.shape, np.uint8)
        for k, v in enumerate(values):
            back[mask == v] = k
        # the NIfTI mask is (x = column, y = row, slice apex -> base); the SEG's class map is (slice, row, column)
        assert np.array_equal(classes, np.transpose(back, (2, 1, 0))), r["patient_id"]
        ds = pydicom.dcmread(out / r["dicom_seg"])
        src_uids = {pydicom.dcmread(p).SeriesInstanceUID for p in src.iterdir()}
        assert ds.Modality == "SEG" and ds.ReferencedSeriesSequence[0].SeriesInstanceUID in src_uids
        assert [s.SegmentLabel for s in ds.SegmentSequence] == ["LV blood pool", "LV myocardium", "Enhanced myocardium"]
    # the correction round trip: measured again on the masks as written, the numbers are apply's; a corrected mask
    # (its whole wall called enhanced) gives its new burden, in a manifest that says where it came from
    fixed = tmp_path / "corrected"
    shutil.copytree(out / "masks", fixed)
    shutil.copy(out / "apply.json", tmp_path / "apply.json")  # beside the corrected folder: names the run
    pid = next(r["patient_id"] for r in rows if r["status"] == "segmented")
    img = nib.load(fixed / f"{pid}.nii.gz")
    arr = np.asarray(img.dataobj).copy()
    arr[arr == values[2]] = values[3]  # the reader calls the whole wall enhanced
    nib.save(nib.Nifti1Image(arr, img.affine, img.header), fixed / f"{pid}.nii.gz")
    mout = tmp_path / "measured"
    assert main(["segment", "measure", "--manifest", str(tmp_path / "cohort.csv"), "--masks", str(fixed),
                 "--out", str(mout), "--no-overlays"]) == 0  # fmt: skip
    got = {r["patient_id"]: r for r in _rows(mout / "measures.csv")}
    for r in rows:
        if r["status"] == "segmented" and r["patient_id"] != pid:
            assert float(got[r["patient_id"]]["lge_percent"]) == pytest.approx(float(r["lge_percent_pred"]), abs=1e-6)
    assert float(got[pid]["lge_percent"]) == pytest.approx(100.0)
    man = {r["patient_id"]: r for r in _rows(mout / "manifest.csv")}
    assert float(man[pid]["lge_percent"]) == 100.0 and man[pid]["lge_percent_source"].startswith("corrected masks")
    # the DICOM SEGs measured the same way give the same numbers
    dout = tmp_path / "measured_seg"
    assert main(["segment", "measure", "--manifest", str(tmp_path / "cohort.csv"), "--masks", str(out / "dicom_seg"),
                 "--dicom-seg", "--out", str(dout), "--no-overlays"]) == 0  # fmt: skip
    for r in _rows(dout / "measures.csv"):
        ref = next(x for x in rows if x["patient_id"] == r["patient_id"])
        if ref["status"] == "segmented":
            assert float(r["lge_percent"]) == pytest.approx(float(ref["lge_percent_pred"]), abs=1e-6)
    # the viewer takes an apply output too (no expert masks here: the predicted view alone)
    assert main(["view", str(out), "--static", str(tmp_path / "view")]) == 0
    assert len(list((tmp_path / "view" / "p").glob("*.js"))) == 8
    assert '"expert": false' in (tmp_path / "view" / "p" / "P001.js").read_text()
    # a report per patient: every slice, the numbers with their definitions, the bullseye, the model
    from lgenet.report.patient import write_patient_reports

    files = write_patient_reports(out)
    assert len(files) == 16 and all(f.is_file() for f in files)
    seg_pid = next(r["patient_id"] for r in rows if r["status"] == "segmented")
    html = (out / "reports" / f"{seg_pid}.html").read_text()
    assert "not a medical device" in html and "LGE % of LV myocardium (whole LV)" in html and "AHA 16-segment" in html
    assert (out / "reports" / f"{seg_pid}.pdf").read_bytes()[:5] == b"%PDF-"
    # the AHA segments of every measured mask, oriented by the patient axes (approximate, and said so)
    measured = [r for r in rows if r["status"] == "segmented"]
    aha = _rows(out / "aha_segments.csv")
    assert len(aha) == 16 * len(measured) and all("approximate" in r["orientation"] for r in aha)
    assert all("approximate" in r["aha_orientation"] for r in measured)
    # the same geometry says where the RV should lie: every measured ring's side is judged against it
    assert all(r["rv_side"].split(" (")[0] in {"consistent", "inconsistent", "unknown"} for r in measured)
    assert not any("geometry" in r["rv_side"] for r in measured)
    assert (out / "bullseye" / f"{measured[0]['patient_id']}.png").is_file() is False  # --no-overlays
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian dicom3tools) is not installed: the SEG's validation was not run")
    for r in rows:
        for f in (r["dicom_seg"], r["dicom_sr"]):
            if not f:
                continue
            proc = subprocess.run(["dciodvfy", str(out / f)], capture_output=True, text=True, check=False)
            errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Error")]
            assert not errors, (f, errors[:5])
    if shutil.which("dsrdump") is None:
        pytest.skip("dsrdump (Debian dcmtk) is not installed: the SR's dump was not checked")
    r = measured[0]
    dump = subprocess.run(["dsrdump", str(out / r["dicom_sr"])], capture_output=True, text=True, check=True).stdout
    assert "Enhanced myocardium, percent of LV myocardium" in dump and dump.count("Finding Site") == 16
    lge = float(r["lge_percent_pred"])
    assert f'"{lge:.1f}' in dump or f'"{lge:.2f}' in dump or f'"{lge}' in dump


def test_the_viewer_shows_the_table_and_a_patients_masks_in_headless_chromium(seg_run, tmp_path):
    """lgenet view --static on a segmentation run: the page lists every patient, opens one from the URL, and draws
    its slices with the overlay (checked in a real headless browser, from disk, with no network)."""
    import os
    import shutil
    import subprocess

    from PIL import Image

    from lgenet.cli import main

    root, m, cfg, res = seg_run
    out = tmp_path / "view"
    assert main(["view", str(root / "seg"), "--static", str(out)]) == 0
    assert (out / "index.html").is_file() and len(list((out / "p").glob("*.js"))) == 8
    page = (out / "index.html").read_text()
    assert "research use, not a medical device" in page and "http" not in page.split("<script>")[1]
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        pytest.skip("chromium is not installed (CI installs Debian's chromium): the page was not opened")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    env = {**os.environ, "HOME": str(tmp_path)}
    url = (out / "index.html").as_uri() + "?patient=SYN002"
    dom = subprocess.run(
        [exe, *flags, f"--user-data-dir={tmp_path / 'prof1'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=8000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert 'data-ready="1"' in dom.stdout and 'data-patient="SYN002"' in dom.stdout, dom.stderr[-1500:]
    assert 'data-rows="8"' in dom.stdout and dom.stdout.count('class="row') == 8
    assert not [ln for ln in dom.stderr.splitlines() if "Uncaught" in ln or ("CONSOLE" in ln and "error" in ln)]
    shot = tmp_path / "view.png"
    subprocess.run(
        [exe, *flags, f"--user-data-dir={tmp_path / 'prof2'}", "--hide-scrollbars", "--virtual-time-budget=8000",
         "--window-size=1200,800", f"--screenshot={shot}", url],
        capture_output=True, timeout=120, env=env, check=True,
    )  # fmt: skip
    px = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    green = (px[..., 1] > px[..., 0] + 40) & (px[..., 1] > px[..., 2] + 10)  # the myocardium overlay
    assert green.sum() > 200, int(green.sum())
    # the keys: right arrow twice moves two slices toward the base, o hides the overlay
    keyed = url + "&keys=ArrowRight,ArrowRight,o"
    dom = subprocess.run(
        [exe, *flags, f"--user-data-dir={tmp_path / 'prof3'}", "--virtual-time-budget=8000", "--dump-dom", keyed],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert 'data-slice="2"' in dom.stdout and 'data-overlay="0"' in dom.stdout
    shot2 = tmp_path / "view_off.png"
    subprocess.run(
        [exe, *flags, f"--user-data-dir={tmp_path / 'prof4'}", "--hide-scrollbars", "--virtual-time-budget=8000",
         "--window-size=1200,800", f"--screenshot={shot2}", keyed],
        capture_output=True, timeout=120, env=env, check=True,
    )  # fmt: skip
    px2 = np.asarray(Image.open(shot2).convert("RGB")).astype(int)
    green_off = ((px2[..., 1] > px2[..., 0] + 40) & (px2[..., 1] > px2[..., 2] + 10)).sum()
    # with the overlay off only the legend's 12 x 12 px swatch is green; with it on, the myocardium too
    assert green_off <= 150 and green.sum() > green_off + 200, (int(green_off), int(green.sum()))


def _first_three(m, cohort):
    """The manifest's first three patients as a cohort without masks, image paths absolute."""
    rows = _rows(m)[:3]
    with open(cohort, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["patient_id", "image"])
        w.writeheader()
        w.writerows({"patient_id": r["patient_id"], "image": str((m.parent / r["image"]).resolve())} for r in rows)
    return rows, cohort


def test_the_onnx_engine_gives_the_torch_masks_within_tolerance_and_exports_once(seg_run, tmp_path, monkeypatch):
    """segment apply --engine onnx (the default for a bundle): the networks exported once into the cache, then run
    on ONNX Runtime; the masks are torch's within a stated tolerance; the engine is recorded and a job is not
    resumed with the other one; without ONNX Runtime, --engine onnx says how to get it."""
    import nibabel as nib

    import lgenet.models.seg_onnx as seg_onnx
    from lgenet.cli import main

    root, m, cfg, res = seg_run
    monkeypatch.setenv("LGENET_CACHE", str(tmp_path / "cache"))
    bundle = tmp_path / "b.lgenet"
    assert main(["model", "export", str(root / "seg"), "--out", str(bundle)]) == 0
    rows, cohort = _first_three(m, tmp_path / "cohort.csv")
    base = ["segment", "apply", "--model", str(bundle), "--manifest", str(cohort), "--no-overlays", "-q"]
    assert main([*base, "--out", str(tmp_path / "t"), "--engine", "torch"]) == 0
    assert main([*base, "--out", str(tmp_path / "o")]) == 0  # auto: onnx for a bundle
    assert json.loads((tmp_path / "o" / "apply.json").read_text())["settings"]["engine"] == "onnx"
    assert "engine" not in json.loads((tmp_path / "t" / "apply.json").read_text())["settings"]
    nets = 3 if cfg.coarse_shift_mm > 0 else 2  # localiser, segmenter (and coarse localiser) per fold
    assert len(list((tmp_path / "cache" / "onnx").glob("*/*.onnx"))) == 2 * nets
    t, o = _rows(tmp_path / "t" / "segmentation.csv"), _rows(tmp_path / "o" / "segmentation.csv")
    for rt, ro in zip(t, o):
        a = np.asarray(nib.load(tmp_path / "t" / rt["mask"]).dataobj)
        b = np.asarray(nib.load(tmp_path / "o" / ro["mask"]).dataobj)
        assert (a != b).mean() <= 1e-3, (rt["patient_id"], (a != b).mean())
        x, y = float(rt["lge_percent_pred"] or "nan"), float(ro["lge_percent_pred"] or "nan")
        assert (np.isnan(x) and np.isnan(y)) or abs(x - y) <= 0.5
    # the second use runs the exported networks: no export
    monkeypatch.setattr(seg_onnx, "export_net", lambda *a, **k: pytest.fail("exported again"))
    assert main([*base, "--out", str(tmp_path / "o2")]) == 0
    assert main([*base, "--out", str(tmp_path / "o"), "--engine", "torch"]) == 2  # another engine: another job
    monkeypatch.setattr(seg_onnx, "onnx_runtime_available", lambda: False)
    from lgenet.errors import ConfigError

    with pytest.raises(ConfigError, match="pip install onnxruntime"):
        seg_onnx.resolve_engine("onnx", bundle=True)
    assert seg_onnx.resolve_engine("auto", bundle=True) == "torch"


def test_a_bundle_exported_and_applied_gives_the_runs_own_masks_and_refuses_tampering(
    seg_run, tmp_path, monkeypatch, capsys
):
    """lgenet model export / info / segment apply --model: the bundle's masks are the run's, bit for bit; a
    tampered, incomplete or newer bundle is refused by name; a hub bundle offline says what to fetch and where."""
    import zipfile

    from lgenet.cli import main
    from lgenet.errors import LgenetError
    from lgenet.runs.bundle import fetch_from_hub, open_bundle

    root, m, cfg, res = seg_run
    monkeypatch.setenv("LGENET_CACHE", str(tmp_path / "cache"))
    bundle = tmp_path / "synth_seg.lgenet"
    assert main(["model", "export", str(root / "seg"), "--out", str(bundle)]) == 0
    assert main(["model", "info", str(bundle)]) == 0
    card = capsys.readouterr().out
    assert "checksums verified" in card and "not a medical device" in card.lower() and "myocardium Dice" in card
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        meta = json.loads(z.read("configs/metadata.json"))
    assert {"configs/metadata.json", "docs/README.md", "LICENSE.txt", "models/fold0.safetensors"} <= names
    assert meta["lgenet"]["format"] == 1 and meta["label_classes"]["2"] == "LV myocardium"
    assert "manifest: ''" in zipfile.ZipFile(bundle).read("configs/seg_config.yaml").decode()
    # the same cohort through the run and through the bundle
    rows, cohort = _first_three(m, tmp_path / "cohort.csv")
    base = ["segment", "apply", "--manifest", str(cohort), "--no-overlays", "-q"]
    assert main([*base, "--run", str(root / "seg"), "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--model", str(bundle), "--out", str(tmp_path / "b"), "--engine", "torch"]) == 0
    for r in rows:
        f = f"masks/{r['patient_id']}.nii.gz"
        import nibabel as nib

        assert np.array_equal(nib.load(tmp_path / "a" / f).get_fdata(), nib.load(tmp_path / "b" / f).get_fdata())

    # an external evaluation travels with the card, in a new bundle (the input one unchanged)
    labelled = tmp_path / "labelled.csv"
    with open(labelled, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["patient_id", "image", "mask"])
        w.writeheader()
        w.writerows(
            {"patient_id": r["patient_id"], "image": str((m.parent / r["image"]).resolve()),
             "mask": str((m.parent / r["mask"]).resolve())} for r in _rows(m)[:4]
        )  # fmt: skip
    before = bundle.read_bytes()
    ext = tmp_path / "with_external.lgenet"
    assert main(["model", "evaluate", str(bundle), "--manifest", str(labelled), "--out", str(ext), "--work",
                 str(tmp_path / "ev"), "--label", "synthetic check, 4 stacks", "-q"]) == 0  # fmt: skip
    assert bundle.read_bytes() == before
    with zipfile.ZipFile(ext) as z:
        meta2 = json.loads(z.read("configs/metadata.json"))
        card2 = z.read("docs/README.md").decode()
    assert meta2["lgenet"]["external"][0]["label"] == "synthetic check, 4 stacks"
    assert "external (synthetic check, 4 stacks): myocardium Dice" in card2, card2
    assert open_bundle(ext).is_dir()

    def rewrite(edit):
        bad = tmp_path / f"bad{len(list(tmp_path.glob('bad*')))}.lgenet"
        with zipfile.ZipFile(bundle) as z, zipfile.ZipFile(bad, "w") as out:
            for n in z.namelist():
                data = edit(n, z.read(n))
                if data is not None:
                    out.writestr(n, data)
        return bad

    flip = rewrite(lambda n, b: (b[:-1] + bytes([b[-1] ^ 1])) if n == "models/fold0.safetensors" else b)
    with pytest.raises(LgenetError, match=r"altered: models/fold0\.safetensors"):
        open_bundle(flip)
    gone = rewrite(lambda n, b: None if n == "models/fold1.safetensors" else b)
    with pytest.raises(LgenetError, match=r"missing: models/fold1\.safetensors"):
        open_bundle(gone)

    def newer(n, b):
        if n == "configs/metadata.json":
            d = json.loads(b)
            d["lgenet"]["format"] = 99
            return json.dumps(d).encode()
        if n == "checksums.sha256":
            return b  # rewritten below
        return b

    nb = rewrite(newer)
    with zipfile.ZipFile(nb) as z:
        files = {n: z.read(n) for n in z.namelist() if n != "checksums.sha256"}
    import hashlib

    with zipfile.ZipFile(nb, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
        z.writestr("checksums.sha256", "".join(f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in files.items()))
    with pytest.raises(LgenetError, match="format 99.*upgrade lgenet"):
        open_bundle(nb)

    import huggingface_hub

    def offline(**kw):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(LgenetError, match=r"huggingface\.co/someone/lge-seg/resolve/main/model\.lgenet.*put it at"):
        fetch_from_hub("hf://someone/lge-seg")
    # online (the hub stood in for by the local file): fetched into the cache once, then opened from there
    import lgenet.runs.bundle as bundle_mod

    monkeypatch.setattr(bundle_mod, "_reachable", lambda host, timeout=3.0: True)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo_id, filename, cache_dir: str(bundle))
    got = fetch_from_hub("hf://someone/lge-seg/synth.lgenet")
    assert got.parent.name == "someone--lge-seg" and got.read_bytes() == bundle.read_bytes()
    assert open_bundle("hf://someone/lge-seg/synth.lgenet").is_dir()
