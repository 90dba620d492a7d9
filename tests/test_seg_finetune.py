"""`lgenet segment finetune`: own folds over the new centre's cases, paired scores, the adapted run, resume.

A tiny segmentation CV on `lgenet synth` stacks (as tests/test_segment.py trains it) is the source run; another
synthetic cohort (other seed, other image size) is the "new centre". The fine-tuning is a few epochs: these
tests check the protocol (no case scored by a fine-tuning that saw it, the adapted run applies, a killed run
resumes without redoing finished fits, other settings are refused), not the accuracy, which
docs/results/segmentation.md measures on EMIDEC under the other-centre proxies.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lgenet.config import SegConfig
from lgenet.config.finetune import FinetuneConfig
from lgenet.errors import ConfigError, DataError
from test_segment import SYNTH_LABELS, TINY

QUICK = dict(epochs=3, loc_epochs=1, folds=3, num_threads=1)


def _rows(p):
    with open(p, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from lgenet.data.synth import make_cohort
    from lgenet.segment import train_segmentation

    root = tmp_path_factory.mktemp("segfinetune")
    m = make_cohort(root / "c", n_patients=8, image_size=64, n_slices=(4, 5), seed=21, progress=False)
    cfg = SegConfig(manifest=str(m), out=str(root / "seg"), labels=SYNTH_LABELS, **{**TINY, "epochs": 20})
    train_segmentation(cfg, progress=False)
    new = make_cohort(root / "new", n_patients=8, image_size=72, n_slices=(3, 4), seed=22, progress=False)
    return root, cfg, new


def _tune(source, out, **over):
    from lgenet.segment.finetune import finetune_segmentation

    root, cfg, new = source
    fc = FinetuneConfig(model=cfg.out, manifest=str(new), out=str(out), labels=SYNTH_LABELS, **{**QUICK, **over})
    return fc, finetune_segmentation(fc, progress=False)


def test_own_folds_cover_every_case_once_and_stratify_when_they_can():
    from lgenet.segment.cases import Case
    from lgenet.segment.finetune_eval import own_folds

    cases = [Case(f"P{i:02d}", i, "x", "y", None) for i in range(10)]
    labels = {c.patient_id: int(i < 5) for i, c in enumerate(cases)}
    f = own_folds(cases, labels, 5, seed=0)
    assert sorted(f) == sorted(labels) and set(f.values()) == set(range(5))
    for k in range(5):  # 5 of each stratum over 5 folds: one of each per fold
        assert sorted(labels[p] for p in f if f[p] == k) == [0, 1]
    assert own_folds(cases, labels, 5, seed=0) == f and own_folds(cases, labels, 5, seed=1) != f
    assert set(own_folds(cases[:3], labels, 5, seed=0).values()) == {0, 1, 2}  # at most one fold per case


def test_a_fold_trained_from_weights_starts_from_them():
    """train_fold(init=...) loads the given states: at a vanishing learning rate they come back (nearly)
    unchanged, far from the random weights a fold would otherwise start from."""
    from lgenet.models.segnet import SegSpec, build_localiser, build_segmenter
    from lgenet.segment.learn import SegTrainParams, train_fold

    keys = ("spacing", "crop", "channels", "res_units", "loc_spacing", "loc_size", "loc_channels")
    spec = SegSpec(**{k: TINY[k] for k in keys}, coarse_shift_mm=0.0)
    torch.manual_seed(3)
    loc, seg = build_localiser(spec).state_dict(), build_segmenter(spec).state_dict()
    img = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    cls = np.zeros((3, 64, 64), np.uint8)
    cls[:, 20:40, 20:40] = 2
    cls[:, 26:34, 26:34] = 1
    params = SegTrainParams(epochs=1, loc_epochs=1, batch_size=2, augment=False, lr=1e-12)
    data = [(img, cls, (2.5, 2.5))]
    loc2, seg2, _ = train_fold(data, spec, params, seed=0, init=(loc, seg, None))
    fresh_loc, fresh_seg, _ = train_fold(data, spec, params, seed=0)

    def close(a, b):
        return all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)

    assert close(loc, loc2) and close(seg, seg2)
    assert not close(seg, fresh_seg) and not close(loc, fresh_loc)
    # the localisers kept as they are (segment finetune --loc-epochs 0)
    loc3, _, _ = train_fold(data, spec, params, seed=0, init=(loc, seg, None), train_localisers=False)
    assert all(torch.equal(loc[k], loc3[k]) for k in loc)


def test_finetune_scores_each_case_by_a_fine_tuning_that_did_not_see_it(source, tmp_path):
    root, cfg, new = source
    fc, res = _tune(source, tmp_path / "ft")
    out = Path(fc.out)
    rows = _rows(out / "finetune_rows.csv")
    assert len(rows) == 8 and len({r["patient_id"] for r in rows}) == 8
    for f in range(3):
        info = json.loads((out / "fits" / "finetune" / f"fold{f}" / "fit.json").read_text())
        assert not set(info["train_cases"]) & set(info["test_cases"])
        assert {r["patient_id"] for r in rows if int(r["own_fold"]) == f} == set(info["test_cases"])
        assert not list((out / "fits" / "finetune" / f"fold{f}").glob("member*.pt"))  # the fold's models are dropped
    for r in rows:  # paired: the source run's score of the same case beside the fine-tuned one
        assert 0 <= float(r["dice_myo_source"]) <= 1 and 0 <= float(r["dice_myo"]) <= 1
    s = json.loads((out / "finetune_summary.json").read_text())
    assert s["n_cases"] == 8 and s["own_folds"] == 3 and s["members"] == 2
    assert s["source"]["n_labelled"] == 8 and s["finetuned"]["n_labelled"] == 8
    gain = np.mean([float(r["dice_myo"]) - float(r["dice_myo_source"]) for r in rows])
    assert s["dice_myo_gain"]["mean"] == pytest.approx(gain, abs=1e-4)  # the CSV rounds
    assert "fine-tuned:" in res.table and "paired" in res.table and "\nverdict: " in res.table
    assert res.fits_run == 3 * 2 + 2 and res.fits_skipped == 0


@pytest.mark.parametrize(
    "gain,says",
    [
        ({"mean": 0.04, "lower": 0.01, "upper": 0.07}, "use the adapted run"),
        ({"mean": -0.03, "lower": -0.05, "upper": -0.01}, "lowered the Dice"),
        ({"mean": -0.01, "lower": -0.04, "upper": 0.02}, "no gain"),
        ({"mean": 0.01, "lower": -0.02, "upper": 0.04}, "the CI includes 0"),
        ({"mean": None}, "no paired change"),
    ],
)
def test_the_finetune_summary_says_whether_to_use_the_adapted_run(gain, says):
    from lgenet.segment.finetune_eval import finetune_verdict

    assert says in finetune_verdict(gain)


def test_the_adapted_run_applies_and_a_rerun_resumes_without_refitting(source, tmp_path):
    from lgenet.segment import SegApplyOptions, apply_segmentation

    root, cfg, new = source
    fc, res = _tune(source, tmp_path / "ft")
    ap = apply_segmentation(fc.out, SegApplyOptions(out=tmp_path / "ap", manifest=new, progress=False))
    assert len(_rows(ap.csv)) == 8
    before = (Path(fc.out) / "finetune_rows.csv").read_text()
    _, again = _tune(source, tmp_path / "ft")
    assert again.fits_run == 0 and again.fits_skipped == 3 * 2 + 2
    assert (Path(fc.out) / "finetune_rows.csv").read_text() == before
    with pytest.raises(ConfigError, match="different settings"):
        _tune(source, tmp_path / "ft", epochs=4)


def test_a_killed_finetune_redoes_only_the_unfinished_member(source, tmp_path, monkeypatch):
    import lgenet.segment.finetune as ft

    calls = []
    real = ft._tune_member

    def dies_on_third(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed while fold 1's first member trains
        return real(*a, **k)

    monkeypatch.setattr(ft, "_tune_member", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        _tune(source, tmp_path / "ft", final=False)
    assert (tmp_path / "ft" / "fits" / "finetune" / "fold0" / "fit.json").is_file()
    calls.clear()
    monkeypatch.setattr(ft, "_tune_member", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    _, res = _tune(source, tmp_path / "ft", final=False)
    assert len(calls) == 2 * 2 and res.fits_skipped == 2  # folds 1 and 2 (2 members each); fold 0 read back
    assert not (tmp_path / "ft" / "fits" / "seg").exists()  # --no-final: no adapted models


def test_finetune_refuses_bad_inputs_before_writing(source, tmp_path):
    from lgenet.segment.finetune import finetune_segmentation

    root, cfg, new = source
    with pytest.raises(ConfigError, match="--model"):
        finetune_segmentation(FinetuneConfig(manifest=str(new), out=str(tmp_path / "a")), progress=False)
    with pytest.raises(ConfigError, match="segment train"):
        finetune_segmentation(
            FinetuneConfig(model=str(tmp_path), manifest=str(new), out=str(tmp_path / "b")), progress=False
        )
    one = tmp_path / "one.csv"
    lines = Path(new).read_text().splitlines()
    header = lines[0].split(",")
    fix = lambda line: ",".join(  # noqa: E731 - the cohort's relative paths, made absolute
        str(Path(new).parent / v) if h in ("image", "mask") and v else v for h, v in zip(header, line.split(","))
    )
    one.write_text(lines[0] + "\n" + fix(lines[1]) + "\n")
    with pytest.raises(DataError, match="at least 2"):
        finetune_segmentation(
            FinetuneConfig(model=cfg.out, manifest=str(one), out=str(tmp_path / "c"), labels=SYNTH_LABELS),
            progress=False,
        )
    with pytest.raises(DataError, match="no myocardium"):
        finetune_segmentation(
            FinetuneConfig(
                model=cfg.out,
                manifest=str(new),
                out=str(tmp_path / "d"),
                labels={"cavity": [1], "myo": [7], "lge": [7], "other": [0, 2, 3, 4]},
            ),
            progress=False,
        )
    with pytest.raises(Exception, match="--out"):  # never into the source run
        finetune_segmentation(
            FinetuneConfig(model=cfg.out, manifest=str(new), out=str(Path(cfg.out) / "x"), labels=SYNTH_LABELS),
            progress=False,
        )
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_some_members_adapted_make_a_run_of_those_members(source, tmp_path):
    from lgenet.runs.seg import SegRunDir, load_segmenter

    root, cfg, new = source
    fc, res = _tune(source, tmp_path / "ft", members=(1,), folds=2)
    rd = SegRunDir(fc.out)
    assert rd.members(rd.load_config()) == [1] and not (Path(fc.out) / "fits" / "seg" / "fold0").exists()
    assert len(load_segmenter(fc.out).segmenters) == 1 and res.fits_run == 2 + 1
    with pytest.raises(ConfigError, match="holds the fold models"):
        _tune(source, tmp_path / "ft2", members=(2,))
    (Path(fc.out) / "members.json").write_text('{"members": [7]}')
    with pytest.raises(Exception, match="members.json is damaged"):
        load_segmenter(fc.out)


def test_the_command_line_runs_the_own_folds_and_prints_the_paired_summary(source, tmp_path, capsys, monkeypatch):
    """From a bundle, as a colleague at another centre would (the source run's own folder is covered above)."""
    from lgenet.cli import main

    root, cfg, new = source
    monkeypatch.setenv("LGENET_CACHE", str(tmp_path / "cache"))
    bundle = tmp_path / "source.lgenet"
    assert main(["model", "export", cfg.out, "--out", str(bundle)]) == 0
    args = ["segment", "finetune", "--model", str(bundle), "--manifest", str(new), "--out", str(tmp_path / "cli")]
    args += ["--labels", "cavity=1,myo=2+3,lge=3,other=0+4", "--folds", "2", "--epochs", "2", "--loc-epochs", "0"]
    assert main([*args, "--no-final", "--threads", "1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "the source run on them:" in out and "myocardium Dice change, paired" in out and "--no-final" in out
    assert json.loads((tmp_path / "cli" / "finetune_summary.json").read_text())["settings"]["loc_epochs"] == 0
