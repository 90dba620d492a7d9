"""Issue 26, defects 2, 8, 9 and the CLI/error part of 11: inputs of another cohort, clear errors instead of
tracebacks, covariates that carry nothing or leak the label by value, and a new user's first-hour errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from lgenet.errors import ConfigError, LgenetError


# ----------------------------------------------------------------------------- defect 9: covariates
def _tab_manifest(path: Path, n: int = 40, **extra_cols) -> Path:
    """A manifest without images (the outcomes analysis does not read them) plus columns ``extra_cols``
    (name -> function of (i, lge_percent, event) giving the cell text)."""
    rng = np.random.default_rng(3)
    lge = np.round(rng.gamma(1.2, 6.0, n), 3)
    ev = (rng.random(n) < 0.35).astype(int)
    ev[:4] = 1
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "image", "slice", "lge_percent", "event", "age", "lvef"] + list(extra_cols))
        for i in range(n):
            w.writerow(
                [f"P{i:03d}", f"img/P{i:03d}.png", "basal", lge[i], ev[i], 40 + i % 30, f"{45 + (i * 7) % 20:.1f}"]
                + [f(i, lge[i], ev[i]) for f in extra_cols.values()]
            )
    return path


def _settings(**kw):
    from lgenet.outcomes import OutcomeSettings

    return OutcomeSettings(**{"folds": 3, "n_bootstrap": 100, **kw})


@pytest.mark.parametrize(
    "column, cell, why",
    [
        ("blank", lambda i, lge, ev: "", "no numeric value"),
        ("site", lambda i, lge, ev: "A" if i % 2 else "B", "no numeric value"),
        ("burden_copy", lambda i, lge, ev: f"{lge}", "equals lge_percent"),
        ("burden_sq", lambda i, lge, ev: f"{lge**2 + 3:.6f}", "rank-correlated with lge_percent"),
    ],
)
def test_a_covariate_that_carries_nothing_or_leaks_is_refused(tmp_path, column, cell, why):
    from lgenet.outcomes import run_outcomes

    man = _tab_manifest(tmp_path / "m.csv", **{column: cell})
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=why) as exc:
        run_outcomes(manifest=man, out=out, settings=_settings(covariates=("age", column)), tasks=["lge"])
    assert column in str(exc.value) and "--covariates" in str(exc.value)
    assert not out.exists()  # refused before anything is written


def test_a_copy_of_the_event_is_refused_for_the_event_task(tmp_path):
    from lgenet.outcomes import run_outcomes

    man = _tab_manifest(tmp_path / "m.csv", outcome_copy=lambda i, lge, ev: str(1 - ev))
    with pytest.raises(ConfigError, match="outcome_copy.*the label"):
        run_outcomes(
            manifest=man, out=tmp_path / "o", settings=_settings(covariates=("age", "outcome_copy")), tasks=["event"]
        )


def test_a_blank_default_covariate_is_dropped_with_a_note(tmp_path):
    from lgenet.outcomes import run_outcomes

    man = _tab_manifest(tmp_path / "m.csv", sex=lambda i, lge, ev: "")
    s = run_outcomes(manifest=man, out=tmp_path / "o", settings=_settings(), tasks=["event"], figures=False)
    assert s["tasks"]["event"]["sets"]["covariates"] == ["age", "lvef"]
    assert any("'sex'" in n and "not used" in n for n in s["notes"])


# ----------------------------------------------------------------------------- defect 2: another cohort
@pytest.fixture(scope="module")
def two_cohorts(tmp_path_factory):
    """Two synthetic DICOM cohorts with the same patient IDs (SYN001...) and different images."""
    from lgenet.data.synth import make_cohort

    root = tmp_path_factory.mktemp("cohorts")
    a = make_cohort(root / "a", n_patients=10, image_size=32, n_slices=3, seed=1, progress=False)
    b = make_cohort(root / "b", n_patients=10, image_size=32, n_slices=3, seed=2, progress=False)
    return Path(a).parent, Path(b).parent


def _seg_record(cohort_dir: Path, out: Path) -> Path:
    """A segmentation folder of cohort ``cohort_dir``: what `segment train` records (its _prepare, no training)
    and a per-patient table."""
    import json

    from lgenet.config import SegConfig
    from lgenet.segment.train import _prepare

    cfg = SegConfig(manifest=str(cohort_dir / "manifest.csv"), out=str(out), folds=2)
    cases, *_, record, _profile = _prepare(cfg, False)
    assert all(len(c["image_sha256"]) == 64 for c in record["cases"])
    out.mkdir()
    (out / "inputs.json").write_text(json.dumps(record))
    with open(out / "seg_metrics.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["patient_id", "fold", "lge_percent_pred", "lge_percent_basal_pred"])
        for i, c in enumerate(cases):
            w.writerow([c.patient_id, i % 2, 3.0 * i, 2.0 * i])
    return out


def test_a_segmentation_run_of_another_cohort_is_refused_by_name(two_cohorts, tmp_path):
    from lgenet.data.manifest import load_manifest
    from lgenet.errors import DataError
    from lgenet.outcomes import run_outcomes
    from lgenet.runs.seg import check_segmentation_inputs

    a, b = two_cohorts
    seg_a = _seg_record(a, tmp_path / "seg_a")
    assert check_segmentation_inputs(seg_a, load_manifest(a / "manifest.csv", tasks=None).records) == []
    with pytest.raises(DataError, match=r"other images.*row 1 \(patient SYN001\)") as exc:
        check_segmentation_inputs(seg_a, load_manifest(b / "manifest.csv", tasks=None).records)
    assert "segment apply" in str(exc.value)
    out = tmp_path / "o"
    with pytest.raises(DataError, match="other images"):
        run_outcomes(
            manifest=b / "manifest.csv", segmentation_run=seg_a, out=out, settings=_settings(folds=2), tasks=["lge"]
        )
    assert not out.exists()


def test_a_burden_grid_on_another_cohort_is_refused_before_writing(two_cohorts, tmp_path):
    from lgenet.config import RunConfig
    from lgenet.errors import DataError
    from lgenet.workflows.grid_prepare import prepare_run

    a, b = two_cohorts
    seg_a = _seg_record(a, tmp_path / "seg_a")
    out = tmp_path / "run"
    cfg = RunConfig(
        manifest=str(b / "manifest.csv"), out=str(out), families=("burden",), segmentation_run=str(seg_a), folds=2
    )
    with pytest.raises(DataError, match=r"other images.*patient SYN00"):
        prepare_run(cfg, progress=False)
    assert not out.exists()
    ok = prepare_run(cfg.replace(manifest=str(a / "manifest.csv")), progress=False)
    assert ok.tasks


# ----------------------------------------------------------------------------- defect 8: clear errors
def test_an_edited_seg_config_is_named(tmp_path):
    from lgenet.config import SegConfig
    from lgenet.runs.seg import SegRunDir, load_segmenter

    rd = SegRunDir(tmp_path / "seg")
    rd.path.mkdir()
    rd.write_config(SegConfig(manifest=str(tmp_path / "m.csv"), out=str(rd.path), folds=2))
    rd.write_folds("seg", {"A": 0, "B": 1}, {"A": 0, "B": 1})
    text = rd.config_path.read_text()
    rd.config_path.write_text(text.replace("folds: 2", "folds: 3"))
    with pytest.raises(LgenetError, match=r"seg_config.yaml says folds: 3.*trained with 2 folds.*edited"):
        load_segmenter(rd.path)
    rd.config_path.write_text(text.replace("  - 1\n", "  - x\n", 1))
    with pytest.raises(ConfigError, match=r"seg_config.yaml: segmentation labels"):
        rd.load_config()


def test_the_runs_manifest_is_stored_resolved_and_missing_suggests_manifest(tmp_path, monkeypatch):
    from lgenet.config import RunConfig
    from lgenet.outcomes import run_outcomes
    from lgenet.runs.grid import RunDir

    monkeypatch.chdir(tmp_path)
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    rd.write_config(RunConfig(manifest="m.csv", out=str(rd.path)))
    assert rd.load_config().manifest == str(tmp_path / "m.csv")
    rd.config_path.write_text(rd.config_path.read_text().replace(str(tmp_path / "m.csv"), "m.csv"))  # a 0.1.x run
    monkeypatch.chdir(tmp_path / "run")
    with pytest.raises(ConfigError, match=r"run's manifest m.csv .*not found.*--manifest"):
        run_outcomes(rd.path, out=tmp_path / "o", settings=_settings())


def test_a_damaged_outcomes_json_or_oof_csv_names_the_file(tmp_path):
    from lgenet.errors import DataError
    from lgenet.report.builder import _check_run_files
    from lgenet.report.outcomes import outcomes_section
    from lgenet.runs.grid import RunDir

    (tmp_path / "outcomes").mkdir()
    (tmp_path / "outcomes" / "outcomes.json").write_text('{"format": "lgenet-outcomes/1", "tasks": {"lg')
    with pytest.raises(DataError, match=r"outcomes.json is damaged or truncated.*lgenet outcomes"):
        outcomes_section(tmp_path / "outcomes")
    rd = RunDir(tmp_path)
    metrics = [{"task": "lge", "model": "tiny/random", "n": 3}]
    rows = [{"task": "lge", "model": "tiny/random", "patient_id": p, "y_true": "0", "prob": "0.5"} for p in "AB"]
    with pytest.raises(DataError, match=r"oof_predictions.csv is incomplete: model tiny/random of task lge has 2"):
        _check_run_files(rd, metrics, rows)
    with pytest.raises(DataError, match=r"outcomes.json is unreadable.*lgenet outcomes"):
        _check_run_files(rd, metrics, rows + [dict(rows[0], patient_id="C")])
    (tmp_path / "outcomes" / "outcomes.json").write_text('{"tasks": {}}')
    _check_run_files(rd, metrics, rows + [dict(rows[0], patient_id="C")])


def test_a_dicom_without_pixel_spacing_says_so(two_cohorts, tmp_path):
    import shutil

    import pydicom

    from lgenet.data.stacks import read_stack
    from lgenet.errors import DataError

    a, _ = two_cohorts
    s = shutil.copytree(a / "dicom" / "SYN001", tmp_path / "s")
    for f in s.glob("*.dcm"):
        ds = pydicom.dcmread(f)
        for k in ("PixelSpacing", "ImagerPixelSpacing"):
            if k in ds:
                delattr(ds, k)
        ds.save_as(f)
    with pytest.raises(DataError, match=r"DICOM has no PixelSpacing.*--pixel-spacing") as exc:
        read_stack(s)
    assert "PNG" not in str(exc.value)


# ----------------------------------------------------------------------------- defect 11 (part)
def test_a_misspelled_label_column_is_named_and_refused(two_cohorts, tmp_path):
    from lgenet.config import RunConfig
    from lgenet.errors import DataError
    from lgenet.workflows.grid_prepare import prepare_run

    a, _ = two_cohorts
    man = tmp_path / "m.csv"
    text = (a / "manifest.csv").read_text().replace("lge_percent", "lge_precent", 1)
    man.write_text(text.replace("dicom/", f"{a}/dicom/").replace("masks/", f"{a}/masks/"))
    cfg = RunConfig(
        manifest=str(man),
        out=str(tmp_path / "run"),
        tasks=("event", "lge"),
        folds=2,
        archs=("tiny",),
        inits=("random",),
    )
    with pytest.raises(DataError, match=r"needs a column 'lge_percent'.*did you mean 'lge_precent'"):
        prepare_run(cfg, progress=False)
    assert not (tmp_path / "run").exists()
    assert prepare_run(cfg.replace(tasks=("lge", "event")), progress=False).tasks == ["event"]  # the default


def test_predict_of_a_burden_model_points_to_segment_apply(tmp_path):
    from lgenet.config import RunConfig
    from lgenet.runs.grid import RunDir

    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    rd.write_config(RunConfig(manifest="m.csv", out=str(rd.path), families=("burden",), segmentation_run="seg"))
    with pytest.raises(LgenetError, match=r"burden.*no fold model.*segment apply --run seg"):
        rd.load_fold_model("lge", "burden:whole/seg", 0)
