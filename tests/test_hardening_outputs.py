"""Issue 26, defects 1, 3, 4 and 7: nothing overwritten, one file per patient, no stale outputs mixed with new
ones, everything checked before the first byte is written.

The segmentation tests share one micro segmentation run (one epoch) on a small synthetic cohort.
"""

import csv
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from lgenet.config import SegConfig
from lgenet.errors import ConfigError, DataError

SYNTH_LABELS = {"cavity": [1], "myo": [2, 3], "lge": [3], "other": [0, 4]}
MICRO = dict(
    spacing=2.5,
    crop=48,
    channels=(4, 8),
    res_units=1,
    loc_spacing=7.0,
    loc_size=32,
    loc_channels=(4, 8),
    epochs=1,
    loc_epochs=1,
    batch_size=4,
    folds=2,
    num_threads=1,
    coarse_shift_mm=0.0,
    quality=False,
)


def _rows(p):
    with open(p, newline="") as fh:
        return list(csv.DictReader(fh))


def _write(p, rows):
    with open(p, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return p


def _snapshot(folder: Path) -> dict:
    """Every file under ``folder``: its bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    from lgenet.data.synth import make_cohort
    from lgenet.segment import train_segmentation

    root = tmp_path_factory.mktemp("outputs")
    m = make_cohort(root / "c", n_patients=8, image_size=48, n_slices=(3, 4), seed=5, progress=False)
    cfg = SegConfig(manifest=str(m), out=str(root / "seg"), labels=SYNTH_LABELS, **MICRO)
    train_segmentation(cfg, progress=False)
    return root, m, cfg


def _apply(run, out, **kw):
    from lgenet.segment import SegApplyOptions, apply_segmentation

    return apply_segmentation(run, SegApplyOptions(out=out, progress=False, **kw))


# ------------------------------------------------------------------ the helper
def test_refuse_overwrite_an_input_a_folder_holding_one_or_inside_one(tmp_path):
    from lgenet.runs.paths import refuse_overwrite

    (tmp_path / "cohort" / "masks").mkdir(parents=True)
    img = tmp_path / "cohort" / "a.nii.gz"
    img.write_bytes(b"x")
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ConfigError, match=r"is an input of this command"):
        refuse_overwrite(img, [img], "-o", kind="file")
    with pytest.raises(ConfigError, match=r"holds an input of this command"):
        refuse_overwrite(tmp_path / "cohort", [img])
    with pytest.raises(ConfigError, match=r"is an input of this command"):
        refuse_overwrite(run, [img, run])
    with pytest.raises(ConfigError, match=r"lies inside the input folder"):
        refuse_overwrite(run / "apply", [run])
    with pytest.raises(ConfigError, match=r"lies inside the input folder"):
        refuse_overwrite(run / "x.csv", [run], kind="file")
    # a sibling folder, or a new folder beside the inputs, is fine
    assert refuse_overwrite(tmp_path / "out", [img, run, None]) == (tmp_path / "out").resolve()
    assert refuse_overwrite(tmp_path / "cohort" / "new", [img])


def test_check_unique_names_names_both_ids():
    from lgenet.conventions.names import check_unique_names

    assert check_unique_names(["a", "b", "a"]) == {"a": "a", "b": "b"}
    with pytest.raises(DataError, match=r"'SYN0\u00e91' and 'SYN0\u00e81'.*'a/b' and 'a_b'"):
        check_unique_names(["SYN0\u00e91", "SYN0\u00e81", "a/b", "a_b"])
    with pytest.raises(DataError, match=r"'P1' and 'p1'"):
        check_unique_names(["P1", "p1"])


# ------------------------------------------------------------------ 1. inputs overwritten
def test_1_apply_into_the_cohort_folder_or_the_run_is_refused_and_nothing_changes(seg):
    root, m, cfg = seg
    cohort_before, run_before = _snapshot(m.parent), _snapshot(root / "seg")
    with pytest.raises(ConfigError, match=r"--out .* holds an input of this command"):
        _apply(root / "seg", m.parent, manifest=m)
    with pytest.raises(ConfigError, match=r"--out .* is an input of this command"):
        _apply(root / "seg", root / "seg", manifest=m)
    with pytest.raises(ConfigError, match=r"lies inside the input folder"):
        _apply(root / "seg", root / "seg" / "apply", manifest=m)
    assert _snapshot(m.parent) == cohort_before and _snapshot(root / "seg") == run_before


def test_1_apply_csv_over_an_input_is_refused(seg, tmp_path, capsys):
    from lgenet.cli import main

    root, m, cfg = seg
    img = Path(_rows(m)[0]["image"])
    img = img if img.is_absolute() else m.parent / img
    before = _snapshot(img) if img.is_dir() else {img: img.read_bytes()}
    target = next(img.iterdir()) if img.is_dir() else img
    rc = main(["segment", "apply", "--run", str(root / "seg"), str(img), "-o", str(target), "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and ("is an input of this command" in err or "lies inside the input folder" in err), err
    assert (_snapshot(img) if img.is_dir() else {img: img.read_bytes()}) == before


def test_1_train_into_the_cohort_folder_is_refused_before_anything_is_written(seg):
    from lgenet.segment import train_segmentation

    root, m, cfg = seg
    before = _snapshot(m.parent)
    with pytest.raises(ConfigError, match=r"--out .* holds an input of this command"):
        train_segmentation(cfg.replace(out=str(m.parent)), progress=False)
    assert _snapshot(m.parent) == before and not (m.parent / "seg_config.yaml").exists()


def test_1_import_out_over_an_input_mask_is_refused(tmp_path):
    import nibabel as nib

    from lgenet.data.importers import import_nifti_masks

    d = tmp_path / "d"
    (d / "img").mkdir(parents=True)
    (d / "lab").mkdir()
    for cid in ("Case01", "Case02"):
        nib.save(
            nib.Nifti1Image(np.random.default_rng(0).random((20, 20, 3)).astype(np.float32), np.eye(4)),
            d / "img" / f"{cid}.nii.gz",
        )
        lab = np.zeros((20, 20, 3), np.uint8)
        lab[5:15, 5:15] = 2
        nib.save(nib.Nifti1Image(lab, np.eye(4)), d / "lab" / f"{cid}.nii.gz")
    before = _snapshot(d)
    for target in (d / "lab" / "Case02.nii.gz", d / "img" / "Case01.nii.gz"):
        with pytest.raises(ConfigError, match=r"--out .* is an input of this import"):
            import_nifti_masks(d / "img", d / "lab", target)
    assert _snapshot(d) == before
    assert import_nifti_masks(d / "img", d / "lab", d / "cohort.csv").is_file()  # beside the inputs is fine


# ------------------------------------------------------------------ 3. two patients, one output file
def test_3_ids_that_share_a_file_name_are_refused_by_apply_and_train(seg, tmp_path):
    from lgenet.segment import train_segmentation

    root, m, cfg = seg
    rows = _rows(m)
    for r in rows:
        r["image"] = str((m.parent / r["image"]).resolve())
        r["mask"] = str((m.parent / r["mask"]).resolve())
    rows[0]["patient_id"], rows[1]["patient_id"] = "SYN0\u00e91", "SYN0\u00e81"
    bad = _write(tmp_path / "m.csv", rows)
    with pytest.raises(DataError, match=r"'SYN0\u00e81' and 'SYN0\u00e91'"):
        _apply(root / "seg", tmp_path / "apply", manifest=bad)
    assert not (tmp_path / "apply").exists()
    with pytest.raises(DataError, match=r"'SYN0\u00e81' and 'SYN0\u00e91'"):
        train_segmentation(cfg.replace(manifest=str(bad), out=str(tmp_path / "seg2")), progress=False)
    assert not (tmp_path / "seg2").exists()


@pytest.mark.parametrize(
    "ids, want",
    [
        (["a"], r"--ids gives 1 id\(s\) for 2 input\(s\)"),
        (["a", ""], r"--ids: entry 2 is empty"),
        (["a", "a"], r"--ids: 'a' is given twice"),
        (["a/b", "a_b"], r"'a/b' and 'a_b'"),
    ],
)
def test_3_apply_ids_are_validated(seg, tmp_path, ids, want):
    root, m, cfg = seg
    imgs = [m.parent / r["image"] for r in _rows(m)[:2]]
    with pytest.raises((ConfigError, DataError), match=want):
        _apply(root / "seg", tmp_path / "o", paths=imgs, ids=ids)
    assert not (tmp_path / "o").exists()


def test_3_apply_refuses_ids_with_a_manifest(seg, tmp_path):
    root, m, cfg = seg
    with pytest.raises(ConfigError, match=r"--ids names input paths"):
        _apply(root / "seg", tmp_path / "o", manifest=m, ids=["x"])


# ------------------------------------------------------------------ 4. stale outputs mixed with new ones
def test_4_apply_into_another_jobs_folder_is_refused_the_same_job_is_redone(seg, tmp_path):
    root, m, cfg = seg
    out = tmp_path / "apply"
    first = _apply(root / "seg", out, manifest=m, overlays=False)
    assert (out / "apply.json").is_file() and len(first.rows) == 8
    masks = {p.name: p.read_bytes() for p in (out / "masks").iterdir()}
    again = _apply(root / "seg", out, manifest=m, overlays=False)  # the same job: redone, same bytes
    assert {p.name: p.read_bytes() for p in (out / "masks").iterdir()} == masks
    assert [r["patient_id"] for r in again.rows] == [r["patient_id"] for r in first.rows]
    rows = _rows(m)[:3]
    for r in rows:
        r["image"] = str((m.parent / r["image"]).resolve())
        r["mask"] = str((m.parent / r["mask"]).resolve())
    three = _write(tmp_path / "three.csv", rows)
    before = _snapshot(out)
    with pytest.raises(ConfigError, match=r"another `lgenet segment apply` job \(the manifest; the inputs"):
        _apply(root / "seg", out, manifest=three, overlays=False)
    with pytest.raises(ConfigError, match=r"another `lgenet segment apply` job \(the settings"):
        _apply(root / "seg", out, manifest=m, overlays=False, pixel_spacing=1.0)
    assert _snapshot(out) == before
    foreign = tmp_path / "foreign"
    (foreign / "masks").mkdir(parents=True)
    (foreign / "masks" / "SYN001.nii.gz").write_bytes(b"old")
    with pytest.raises(ConfigError, match=r"holds files that no `lgenet segment apply` recorded"):
        _apply(root / "seg", foreign, manifest=three)


# ------------------------------------------------------------------ 7. validate first, then write
@pytest.mark.parametrize("bad_row", [5, 8])
def test_7_apply_with_a_bad_row_writes_nothing(seg, tmp_path, bad_row):
    root, m, cfg = seg
    rows = _rows(m)
    for r in rows:
        r["image"] = str((m.parent / r["image"]).resolve())
        r["mask"] = str((m.parent / r["mask"]).resolve())
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not a nifti")
    rows[bad_row - 1]["image"] = str(broken)
    bad = _write(tmp_path / "m.csv", rows)
    with pytest.raises(Exception, match=rf"row {bad_row} ") as e:
        _apply(root / "seg", tmp_path / "apply", manifest=bad)
    assert "nothing was written" in str(e.value)
    assert not (tmp_path / "apply").exists()


def test_7_executor_ray_without_ray_writes_nothing(seg, tmp_path, monkeypatch):
    from lgenet.config import RunConfig
    from lgenet.segment import train_segmentation
    from lgenet.workflows.grid import run_experiment

    root, m, cfg = seg
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ConfigError, match=r"--executor ray needs Ray, which is not installed"):
        train_segmentation(cfg.replace(out=str(tmp_path / "s")), progress=False, executor="ray")
    rc = RunConfig(manifest=str(m), out=str(tmp_path / "g"), tasks=("lge",), archs=("tiny",), inits=("random",))
    with pytest.raises(ConfigError, match=r"--executor ray needs Ray, which is not installed"):
        run_experiment(rc, progress=False, report=False, executor="ray")
    assert not (tmp_path / "s").exists() and not (tmp_path / "g").exists()


def test_7_roi_with_a_missing_segmentation_fold_model_fails_before_any_fit(seg, tmp_path):
    from lgenet.runs.seg import SegRunDir
    from lgenet.training.anatomy import check_anatomy_folds

    root, m, cfg = seg
    run = tmp_path / "seg"
    shutil.copytree(root / "seg", run)
    folds = SegRunDir(run).read_folds("seg")
    assert check_anatomy_folds(run, folds, "lge") is None
    (SegRunDir(run).fold_dir(1) / "model.pt").unlink()
    with pytest.raises(ConfigError, match=r"segmentation fold model .*fold1.model\.pt is missing"):
        check_anatomy_folds(run, folds, "lge")


def _finished_grid(root):
    """A finished 1-epoch grid on 8 PNG patients (no report), the run folder."""
    from PIL import Image

    from lgenet.config import RunConfig
    from lgenet.workflows.grid import run_experiment

    rows = []
    for i in range(8):
        p = root / "img" / f"P{i:02d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (48, 48), dtype=np.uint8)).save(p)
        rows.append({"patient_id": f"P{i:02d}", "image": f"img/P{i:02d}.png", "lge_percent": 12.0 if i % 2 else 0.0})
    m = _write(root / "m.csv", rows)
    cfg = RunConfig(
        manifest=str(m),
        out=str(root / "run"),
        tasks=("lge",),
        archs=("tiny",),
        inits=("random",),
        epochs=1,
        image_size=32,
        folds=2,
        dense_units=8,
        num_threads=1,
    )
    run_experiment(cfg, progress=False, report=False)
    return root / "run"


def test_7_report_on_a_truncated_outcomes_json_or_oof_csv_rewrites_nothing(tmp_path):
    from lgenet.report import write_report

    run = _finished_grid(tmp_path)
    f = run / "outcomes" / "outcomes.json"
    f.write_text(f.read_text()[:40])  # as if cut short
    had_figures = (run / "figures").exists()
    before = _snapshot(run)
    with pytest.raises(DataError, match=r"outcomes.json is unreadable .*cut short.*lgenet outcomes"):
        write_report(run, cams=False)
    assert _snapshot(run) == before and (run / "figures").exists() == had_figures
    shutil.rmtree(run / "outcomes")
    oof = run / "oof_predictions.csv"
    text = oof.read_text()
    oof.write_text(text[: len(text) * 2 // 3])  # cut mid-row
    with pytest.raises(DataError, match=r"oof_predictions.csv is (damaged|incomplete)"):
        write_report(run, cams=False)
    oof.write_text("\n".join(text.splitlines()[:5]) + "\n")  # cut at a row's end
    before = _snapshot(run)
    with pytest.raises(DataError, match=r"oof_predictions.csv is incomplete: model tiny/random of task lge has 4"):
        write_report(run, cams=False)
    assert _snapshot(run) == before


def test_quantify_import_and_outcomes_never_write_over_or_into_what_they_read(tmp_path, capsys):
    """The remaining writers (since 0.2.0): `quantify --out` holding its image, `import emidec --out` inside the
    dataset, `outcomes --out` holding its manifest are refused before anything is written."""
    import numpy as np

    from lgenet.cli import main

    data = tmp_path / "data"
    data.mkdir()
    img = data / "img.nii.gz"
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((8, 8, 2), np.float32), np.eye(4)), str(img))
    before = sorted(p.name for p in data.iterdir())
    assert main(["quantify", str(img), str(img), "--out", str(data)]) == 2
    assert "--out" in capsys.readouterr().err and sorted(p.name for p in data.iterdir()) == before
    assert main(["import", "emidec", str(data), "--out", str(data / "emidec.csv")]) == 2
    assert "--out" in capsys.readouterr().err and not (data / "emidec.csv").exists()
    for i in range(24):
        (data / f"img{i}.nii.gz").write_bytes(img.read_bytes())
    before = sorted(p.name for p in data.iterdir())
    man = data / "cohort.csv"
    man.write_text(
        "patient_id,image,lge_percent,event,age\n"
        + "".join(f"P{i:02d},img{i}.nii.gz,{10 * (i % 2)},{(i // 2) % 2},{40 + i}\n" for i in range(24))
    )
    assert main(["outcomes", "--manifest", str(man), "--out", str(data), "--tasks", "lge"]) == 2
    assert "holds an input" in capsys.readouterr().err
    assert sorted(p.name for p in data.iterdir()) == sorted([*before, "cohort.csv"])
