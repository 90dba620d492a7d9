"""synth -> run -> predict through the CLI, resume after an interrupted run, and run-dir checks."""

import csv
import json

import pytest

from lgenet.cli import main
from lgenet.config import RunConfig
from lgenet.data.synth import make_cohort
from lgenet.runs import executors
from lgenet.runs.grid import RunDir
from lgenet.workflows.grid import run_experiment


def fit_dir(out, task, arch, init, fold):
    return RunDir(out).fit_dir(task, f"{arch}/{init}", fold)


RUN_ARGS = ["--archs", "tiny", "--inits", "random", "--epochs", "2", "--image-size", "32", "-q"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    d = tmp_path_factory.mktemp("cohort")
    return make_cohort(
        d / "c", n_patients=16, image_size=48, seed=3, progress=False, lge_fraction_high=0.3, event_rate=0.3
    )


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_synth_run_predict_cli(cohort, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--manifest", str(cohort), "--out", str(out), "--folds", "2", *RUN_ARGS]) == 0
    printed = capsys.readouterr().out
    assert "AUC" in printed and "95% CI" in printed and "n=16" in printed
    for name in (
        "config.yaml",
        "run.json",
        "run.log",
        "oof_predictions.csv",
        "metrics.csv",
        "metrics.json",
        "roc_lge.png",
        "auc_lge.png",
        "roc_event.png",
        "folds_lge.csv",
    ):
        assert (out / name).is_file(), name
    oof = _read(out / "oof_predictions.csv")
    assert {r["task"] for r in oof} == {"lge", "event"}
    assert len([r for r in oof if r["task"] == "lge"]) == 16
    # every patient is predicted by the fold model whose training set excluded it
    folds = {r["patient_id"]: int(r["fold"]) for r in _read(out / "folds_lge.csv")}
    for r in oof:
        if r["task"] == "lge":
            assert int(r["fold"]) == folds[r["patient_id"]]
    for k in range(2):
        info = json.loads((fit_dir(out, "lge", "tiny", "random", k) / "fit.json").read_text())
        assert info["n_train_patients"] + info["n_test_patients"] == 16
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert all(m["auc_lower"] <= m["auc"] <= m["auc_upper"] for m in metrics)

    pred_csv = tmp_path / "pred.csv"
    series = cohort.parent / "dicom" / "SYN001"
    assert main(["predict", "--run", str(out), "--task", "lge", "-o", str(pred_csv), str(series)]) == 0
    rows = _read(pred_csv)
    assert len(rows) == 1 and 0.0 <= float(rows[0]["prob"]) <= 1.0
    assert {"prob_fold0", "prob_fold1"} <= set(rows[0])
    # the fold model that held SYN001 out gives it its out-of-fold probability, in the run's precision
    mine = next(r for r in oof if r["task"] == "lge" and r["patient_id"] == "SYN001")
    assert float(rows[0][f"prob_fold{mine['fold']}"]) == pytest.approx(
        float(mine["prob"]), abs=1e-6
    )  # 6 decimals in the CSV


def test_interrupted_run_resumes_without_redoing_fits(cohort, tmp_path, monkeypatch):
    cfg = RunConfig(
        manifest=str(cohort),
        out=str(tmp_path / "a"),
        tasks=("lge",),
        archs=("tiny",),
        inits=("random",),
        epochs=2,
        image_size=32,
        folds=2,
        dense_units=16,
        num_threads=1,
    )  # fixed: the default follows the machine's load, which may change between runs
    real = executors.run_job
    calls = {"n": 0}

    def interrupt_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(executors, "run_job", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, progress=False, report=False)
    first = fit_dir(tmp_path / "a", "lge", "tiny", "random", 0) / "fit.json"
    assert first.is_file()
    assert not (fit_dir(tmp_path / "a", "lge", "tiny", "random", 1) / "fit.json").exists()
    before = first.read_bytes(), first.stat().st_mtime_ns

    monkeypatch.setattr(executors, "run_job", real)
    resumed = run_experiment(cfg, progress=False, report=False)
    assert (resumed.fits_run, resumed.fits_skipped) == (1, 1)
    assert (first.read_bytes(), first.stat().st_mtime_ns) == before  # the finished fit was not redone

    clean = run_experiment(cfg.replace(out=str(tmp_path / "b")), progress=False, report=False)
    assert (clean.fits_run, clean.fits_skipped) == (2, 0)
    a = _read(tmp_path / "a" / "oof_predictions.csv")
    b = _read(tmp_path / "b" / "oof_predictions.csv")
    assert a == b  # same seed -> same out-of-fold predictions, interrupted or not


def test_resume_refuses_changed_settings(cohort, tmp_path):
    cfg = RunConfig(
        manifest=str(cohort),
        out=str(tmp_path / "r"),
        tasks=("lge",),
        archs=("tiny",),
        inits=("random",),
        epochs=1,
        image_size=32,
        folds=2,
        dense_units=8,
    )
    run_experiment(cfg, progress=False, report=False)
    from lgenet.errors import ConfigError

    with pytest.raises(ConfigError, match="started with different settings \\(epochs: 1 -> 2\\)"):
        run_experiment(cfg.replace(epochs=2), progress=False, report=False)


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["run", "--manifest", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"), *RUN_ARGS]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "missing.csv" in err and "Traceback" not in err
    assert main(["run", "--manifest", str(tmp_path / "m.csv"), "--archs", "resnet51", "-q"]) == 2
    assert "unknown backbone 'resnet51'" in capsys.readouterr().err
    assert main(["predict", "--run", str(tmp_path), "--task", "lge", str(tmp_path)]) == 2
    assert "not an lgenet run directory" in capsys.readouterr().err


def test_weights_file_argument_forms():
    from lgenet.cli.options import parse_weights_args
    from lgenet.errors import ConfigError

    assert parse_weights_args(["w.h5"], ["resnet50"], ["radimagenet"]) == {"resnet50": {"radimagenet": "w.h5"}}
    assert parse_weights_args(
        ["resnet50:imagenet=a.pth", "inception_v3:imagenet=b.pth"], ["resnet50", "inception_v3"], ["random", "imagenet"]
    ) == {"resnet50": {"imagenet": "a.pth"}, "inception_v3": {"imagenet": "b.pth"}}
    with pytest.raises(ConfigError, match="ambiguous; use ARCH:INIT=PATH"):
        parse_weights_args(["w.h5"], ["resnet50", "inception_v3"], ["radimagenet"])


def test_demo_command_runs_end_to_end(tmp_path, capsys):
    """The demo: cohort, segmentation (the headline burden model), the seed-protocol row; it keeps no
    fold network (disk) yet its report keeps its CAMs, and a rerun resumes everything."""
    d = tmp_path / "demo"
    args = [
        "demo",
        "--dir",
        str(d),
        "--n-patients",
        "16",
        "--archs",
        "tiny",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--folds",
        "2",
        "--tasks",
        "lge",
        "-q",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "AUC" in out and f"run directory : {d / 'run'}" in out and "burden:whole/seg" in out
    assert f"lgenet segment apply --run {d / 'seg'}" in out and "lgenet predict --run" not in out
    assert (d / "cohort" / "manifest.csv").is_file() and (d / "run" / "metrics.csv").is_file()
    assert (d / "seg" / "seg_metrics.csv").is_file() and len(list((d / "seg" / "masks").glob("*.nii.gz"))) == 16
    models = {r["model"] for r in csv.DictReader(open(d / "run" / "metrics.csv"))}
    assert models == {"tiny/random", "burden:whole/seg", "burden:basal/seg"}
    # --keep-models none (the demo's default): no fold network left, each one's removal recorded
    assert not list((d / "run" / "fits").rglob("model.pt"))
    assert len(list((d / "run" / "fits").rglob("model.removed"))) == 2
    html = (d / "run" / "report.html").read_text()
    assert list((d / "run" / "cams").rglob("*.png")) and "burden:whole/seg" in html
    # the report can be rebuilt from the cached CAMs; predict says why the models are gone
    assert main(["report", str(d / "run")]) == 0
    capsys.readouterr()
    assert main(["predict", "--run", str(d / "run"), "--task", "lge", str(d / "cohort" / "dicom" / "SYN001")]) != 0
    assert "--keep-models none" in capsys.readouterr().err
    # a second call reuses the cohort and resumes the segmentation and the finished run
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "using the synthetic cohort already in" in out and "fits run: 0, resumed (already done): 6" in out
