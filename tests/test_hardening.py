"""Bad inputs, damaged run directories and interrupted runs: clear errors, nothing mixed, nothing half-written.

Each test names the item of the hardening issue it covers. Inputs are tiny PNG cohorts written here.
"""

import csv
import json
import os
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lgenet.cli import main
from lgenet.config import RunConfig
from lgenet.errors import ConfigError, DataError, ReaderError
from lgenet.runs.grid import RunDir
from lgenet.workflows.grid import run_experiment

RUN = [
    "--archs",
    "tiny",
    "--inits",
    "random",
    "--epochs",
    "1",
    "--image-size",
    "32",
    "--folds",
    "2",
    "--tasks",
    "lge",
    "--threads",
    "1",
    "-q",
    "--no-report",
]


def _png(path, seed, size=48, value=None):
    rng = np.random.default_rng(seed)
    arr = (
        rng.integers(0, 255, (size, size), dtype=np.uint8) if value is None else np.full((size, size), value, np.uint8)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _cohort(root, n=8, lge=None):
    """n patients, one PNG each, alternating labels; returns the manifest path."""
    rows = []
    for i in range(n):
        _png(root / "img" / f"P{i:02d}.png", seed=i)
        rows.append(
            {
                "patient_id": f"P{i:02d}",
                "image": f"img/P{i:02d}.png",
                "lge_percent": (lge[i] if lge else (12.0 if i % 2 else 0.0)),
            }
        )
    return _write(root / "m.csv", rows)


def _write(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _cfg(manifest, out, **kw):
    base = dict(
        manifest=str(manifest),
        out=str(out),
        tasks=("lge",),
        archs=("tiny",),
        inits=("random",),
        epochs=1,
        image_size=32,
        folds=2,
        dense_units=8,
        num_threads=1,
    )
    base.update(kw)
    return RunConfig(**base)


def _err(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------------ 1. inputs changed between a kill and the resume
def test_1_resume_refuses_an_edited_manifest_or_changed_image(tmp_path):
    m = _cohort(tmp_path)
    cfg = _cfg(m, tmp_path / "run")
    run_experiment(cfg, progress=False, report=False)
    assert (tmp_path / "run" / "inputs.json").is_file()
    shutil.rmtree(RunDir(cfg.out).fit_dir("lge", "tiny/random", 1))  # as if killed before the second fit
    _png(tmp_path / "img" / "P03.png", seed=99)  # same manifest, other pixels
    with pytest.raises(ConfigError, match=r"other inputs: the image of 1 row\(s\) changed: row 4 \(patient P03\)"):
        run_experiment(cfg, progress=False, report=False)
    _png(tmp_path / "img" / "P03.png", seed=3)  # restored: resumes
    rows = _rows(m)
    rows[0]["lge_percent"] = "0.5"
    _write(m, rows)  # a label edit that keeps the classes (same folds): the manifest hash alone tells
    with pytest.raises(ConfigError, match=r"manifest's content \(SHA-256\) differs.*1 finished fit"):
        run_experiment(cfg, progress=False, report=False)


# ------------------------------------------------------------------ 2. the same pixels for two patients
def test_2_two_patients_sharing_pixels_are_refused(tmp_path):
    m = _cohort(tmp_path)
    rows = _rows(m)
    os.symlink(tmp_path / "img" / "P00.png", tmp_path / "img" / "link.png")
    rows[1]["image"] = "img/link.png"  # a symlink to another patient's image
    _write(m, rows)
    with pytest.raises(DataError, match=r"rows 1 \(patient P00\) and 2 \(patient P01\): both point to the same file"):
        run_experiment(_cfg(m, tmp_path / "a"), progress=False, report=False)
    shutil.copy(tmp_path / "img" / "P00.png", tmp_path / "img" / "copy.png")
    rows[1]["image"] = "img/copy.png"  # a copy: other path, same pixels
    _write(m, rows)
    with pytest.raises(DataError, match="identical pixel content"):
        run_experiment(_cfg(m, tmp_path / "a"), progress=False, report=False)
    assert not (tmp_path / "a").exists()


def test_2_a_file_inside_another_patients_series_folder_is_refused(tmp_path):
    from dicom_helpers import write_sax_series

    files = write_sax_series(tmp_path / "dicom" / "A", n=4, size=(20, 20))
    rows = [
        {"patient_id": "A", "image": "dicom/A", "slice": "", "lge_percent": 0.0},
        {"patient_id": "B", "image": f"dicom/A/{files[0].name}", "slice": "0", "lge_percent": 9.0},
    ]
    m = _write(tmp_path / "m.csv", rows)
    from lgenet.data.inputs import check_distinct_inputs, read_frames
    from lgenet.data.manifest import load_manifest

    cohort = load_manifest(m)
    frames, _ = read_frames(cohort, progress=False)
    with pytest.raises(DataError, match="lies inside the other's series folder"):
        check_distinct_inputs(cohort, frames)


# ------------------------------------------------------------------ 4. a failed run writes nothing; the fix works
def test_4_a_failed_run_leaves_nothing_and_the_suggested_fix_works(tmp_path, capsys):
    m = _cohort(tmp_path, n=6)  # 3 positives: too few for 4 folds
    out = tmp_path / "run"
    args = ["run", "--manifest", str(m), "--out", str(out)] + RUN
    args[args.index("--folds") + 1] = "4"
    assert main(args) == 2
    assert "fewer than folds=4" in _err(capsys)
    assert not out.exists()
    args[args.index("--folds") + 1] = "3"
    assert main(args) == 0  # the same --out takes the fix


def test_4_a_directory_without_a_finished_fit_restarts_with_new_settings(tmp_path):
    m = _cohort(tmp_path)
    cfg = _cfg(m, tmp_path / "run")
    run_experiment(cfg, progress=False, report=False)
    rd = RunDir(cfg.out)
    for f in rd.finished_fits():
        f.unlink()  # as if killed before any fit finished
    res = run_experiment(cfg.replace(epochs=2), progress=False, report=False)
    assert res.fits_run == 2 and rd.load_config().epochs == 2


# ------------------------------------------------------------------ 5. temp files of a killed run are cleaned
def test_5_orphaned_temp_files_are_removed_on_the_next_run(tmp_path):
    m = _cohort(tmp_path)
    cfg = _cfg(m, tmp_path / "run")
    run_experiment(cfg, progress=False, report=False)
    rd = RunDir(cfg.out)
    orphans = [rd.fit_dir("lge", "tiny/random", 0) / ".model.k3j2h1.tmp.pt", rd.path / ".roc_lge.x8f.tmp.png"]
    for p in orphans:
        p.write_bytes(b"\0" * 100)
    run_experiment(cfg, progress=False, report=False)
    assert not any(p.exists() for p in orphans)


def test_a_second_driver_on_the_same_directory_is_refused(tmp_path):
    m = _cohort(tmp_path)
    rd = RunDir(tmp_path / "run")
    from lgenet.runs.grid import RunBusyError

    with rd.lock():
        with pytest.raises(RunBusyError, match="in use by another lgenet process"):
            run_experiment(_cfg(m, rd.path), progress=False, report=False)


# ------------------------------------------------------------------ 6, 7, 20. output paths and predict options
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("hard_run")
    m = _cohort(root)
    # fp32: test 20 compares one slice read from a PNG and from a NIfTI to 1e-5, which bf16's rounding of
    # ulp-level input differences would blur
    run_experiment(_cfg(m, root / "run", precision="fp32"), progress=False, report=False)
    return root


def test_6_outputs_that_are_files_or_cannot_be_created(tmp_path, finished, capsys):
    m = finished / "m.csv"
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["run", "--manifest", str(m), "--out", str(afile)] + RUN) == 2
    assert f"--out {afile} is an existing file" in _err(capsys)
    assert main(["run", "--manifest", str(m), "--out", str(afile / "sub")] + RUN) == 2
    assert f"{afile}" in _err(capsys)
    img = str(finished / "img" / "P00.png")
    assert main(["predict", "--run", str(finished / "run"), "--task", "lge", "-o", str(tmp_path), img]) == 2
    assert f"-o/--output {tmp_path} is an existing folder" in _err(capsys)
    assert main(["predict", "--run", str(finished / "run"), "--task", "lge", "--cam", str(afile), img]) == 2
    assert f"--cam {afile} is an existing file" in _err(capsys)
    assert main(["predict", "--run", str(finished / "run"), "--task", "lge", "-o", str(afile / "p.csv"), img]) == 2
    err = _err(capsys)
    assert str(afile) in err and ".tmp" not in err


def test_7_predict_slice_must_be_basal_or_an_integer(finished, capsys):
    img = str(finished / "img" / "P00.png")
    assert main(["predict", "--run", str(finished / "run"), "--task", "lge", "--slice", "abc", img]) == 2
    assert "slice must be 'basal' or an integer index" in _err(capsys)
    assert main(["predict", "--run", str(finished / "run"), "--task", "lge", "--slice", "0", img]) == 0


def test_20_predict_writes_patient_ids_and_takes_a_manifest(finished, tmp_path, capsys):
    run = str(finished / "run")
    out = tmp_path / "p.csv"
    imgs = [str(finished / "img" / "P00.png"), str(finished / "img" / "P01.png")]
    assert main(["predict", "--run", run, "--task", "lge", "--ids", "N1,N2", "-o", str(out)] + imgs) == 0
    rows = _rows(out)
    assert [r["patient_id"] for r in rows] == ["N1", "N2"] and rows[0]["input"] == imgs[0]
    assert main(["predict", "--run", run, "--task", "lge", "--manifest", str(finished / "m.csv"), "-o", str(out)]) == 0
    assert [r["patient_id"] for r in _rows(out)][:2] == ["P00", "P01"]
    assert main(["predict", "--run", run, "--task", "lge", "--ids", "N1", "-o", str(out)] + imgs) == 2
    assert "--ids gives 1 id(s) for 2 input(s)" in _err(capsys)


def test_20_predict_nifti_axis_and_basal_end_options(finished, tmp_path):
    import nibabel as nib

    from lgenet.workflows.predict import predict

    vol = np.stack([np.asarray(Image.open(finished / "img" / f"P0{k}.png"), np.float32) for k in range(3)], axis=0)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "v.nii.gz")  # slices along axis 0, base first
    ref = predict(finished / "run", "lge", [finished / "img" / "P00.png"])[0].prob
    p = predict(finished / "run", "lge", [tmp_path / "v.nii.gz"], nifti_slice_axis=0, nifti_basal_end="first")[0]
    assert p.slice_index == 2 and abs(p.prob - ref) < 1e-5  # apex->base index 2 = stored index 0 = P00
    with pytest.raises(ConfigError, match="nifti-basal-end"):
        predict(finished / "run", "lge", [tmp_path / "v.nii.gz"], nifti_basal_end="top")


# ------------------------------------------------------------------ 8. reader libraries' own errors
def test_8_decompression_bomb_png_is_a_reader_error(tmp_path, monkeypatch, finished, capsys):
    from PIL import Image as PILImage

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)
    big = _png(tmp_path / "big.png", seed=1, size=64)  # 4096 px > 2 x 1000: DecompressionBombError
    mid = _png(tmp_path / "mid.png", seed=1, size=40)  # 1600 px > 1000: the warning, made an error
    from lgenet.io import read_frame

    for p in (big, mid):
        with pytest.raises(ReaderError, match="decompression-bomb limit"):
            read_frame(p)
    assert main(["predict", "--run", str(finished / "run"), "--task", "lge", str(big)]) == 2
    assert "input 1 (input_001)" in _err(capsys)


def test_8_any_library_exception_in_a_reader_names_the_file(tmp_path, monkeypatch):
    from lgenet import io as lio

    def boom(path):
        raise KeyError("internal")

    monkeypatch.setattr(lio, "read_raster", boom)
    p = _png(tmp_path / "x.png", seed=0)
    with pytest.raises(ReaderError, match=r"x.png: the file could not be read as an image \(KeyError\)"):
        lio.read_frame(p)


# ------------------------------------------------------------------ 9, 10. damaged model and weights files
def test_9_truncated_or_foreign_model_file(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished / "run", run)
    rd = RunDir(run)
    f = rd.model_path("lge", "tiny/random", 0)
    f.write_bytes(f.read_bytes()[:2000])
    img = str(finished / "img" / "P00.png")
    assert main(["predict", "--run", str(run), "--task", "lge", img]) == 2
    err = _err(capsys)
    assert f"fold model {f} is unreadable" in err and "refit" in err and "weights_only" not in err
    torch.save([1, 2, 3], f)
    assert main(["predict", "--run", str(run), "--task", "lge", img]) == 2
    assert "is not an lgenet fold model" in _err(capsys)


def test_10_weights_errors_are_never_empty_and_never_advise_unpickling(tmp_path):
    from lgenet.errors import WeightsError
    from lgenet.models.weights import load_state_dict_file as load_state_dict

    empty = tmp_path / "w.pth"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError) as ei:
        load_state_dict(empty)
    msg = str(ei.value)
    assert "EOFError: the file ends too early" in msg and "weights_only" not in msg and "Re-running" not in msg

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    import pickle

    bad = tmp_path / "evil.pth"
    with open(bad, "wb") as fh:
        pickle.dump({"w": Evil()}, fh)
    with pytest.raises(WeightsError) as ei:
        load_state_dict(bad)
    assert "weights_only" not in str(ei.value) and "Re-running" not in str(ei.value)


# ------------------------------------------------------------------ 11. degenerate images
@pytest.mark.parametrize("kind", ["constant", "tiny", "one_pixel"])
def test_11_degenerate_frames_are_refused_by_run_and_predict(tmp_path, finished, kind, capsys):
    m = _cohort(tmp_path)
    bad = {
        "constant": lambda p: _png(p, 0, value=7),
        "tiny": lambda p: _png(p, 0, size=8),
        "one_pixel": lambda p: _png(p, 0, size=1),
    }[kind](tmp_path / "img" / "P02.png")
    want = {"constant": "same value (7)", "tiny": "only 8 x 8 pixels", "one_pixel": "only 1 x 1 pixels"}[kind]
    with pytest.raises(ReaderError, match=rf"row 3 \(patient P02\).*{re.escape(want)}"):
        run_experiment(_cfg(m, tmp_path / "r"), progress=False, report=False)
    assert not (tmp_path / "r").exists()
    assert main(["predict", "--run", str(finished / "run"), "--task", "lge", str(bad)]) == 2
    assert want in _err(capsys)


def test_11_colour_and_unlike_inputs_are_flagged_by_predict(finished, tmp_path):
    from lgenet.workflows.predict import predict

    rgb = np.random.default_rng(0).integers(0, 255, (50, 50, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    dark = np.zeros((200, 200), np.uint8)
    dark[90:110, 90:110] = np.random.default_rng(1).integers(100, 255, (20, 20))
    Image.fromarray(dark).save(tmp_path / "dark.png")
    p_rgb, p_dark, p_ok = predict(
        finished / "run", "lge", [tmp_path / "photo.png", tmp_path / "dark.png", finished / "img" / "P01.png"]
    )
    assert any("colour image" in n for n in p_rgb.notes)
    assert any("unlike the training images" in n and "background" in n for n in p_dark.notes)
    assert p_ok.notes == []


# ------------------------------------------------------------------ 12. DICOM objects that are not LGE images
def test_12_dicom_seg_and_non_mr_objects_are_refused_for_the_right_reason(tmp_path):
    from dicom_helpers import make_image, save
    from lgenet.io import read_frame

    seg = make_image(np.zeros((20, 20), np.uint8))
    seg.Modality = "SEG"
    seg.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    p = save(seg, tmp_path / "seg.dcm")
    for sl in ("basal", 0):
        with pytest.raises(ReaderError, match="not an LGE image: it is a DICOM Segmentation Storage object"):
            read_frame(p, slice=sl)
    ct = make_image(np.arange(400, dtype=np.uint16).reshape(20, 20))
    ct.Modality = "CT"
    with pytest.raises(ReaderError, match="its Modality is CT, not MR"):
        read_frame(save(ct, tmp_path / "ct.dcm"), slice=0)
    # inside a series folder, a SEG object beside the MR slices is ignored with a note
    from dicom_helpers import write_sax_series

    write_sax_series(tmp_path / "series", n=3, size=(20, 20))
    save(seg, tmp_path / "series" / "zseg.dcm")
    frame, meta = read_frame(tmp_path / "series")
    assert any("modality SEG" in n for n in meta["notes"])


# ------------------------------------------------------------------ 14. a single-class task
def test_14_a_single_class_task_does_not_advise_fewer_folds(tmp_path):
    from lgenet.data.splits import assign_folds

    with pytest.raises(DataError) as ei:
        assign_folds([f"P{i}" for i in range(8)], [0] * 8, n_splits=2, task="lge")
    msg = str(ei.value)
    assert "has no positive patient (all 8 labelled patients are negative)" in msg and "Lower --folds" not in msg


# ------------------------------------------------------------------ 15. pydicom warnings carry identifiers
def test_15_lgenet_reads_keep_pydicom_quiet(tmp_path, capfd):
    import subprocess
    import sys

    from dicom_helpers import make_image, save

    ds = make_image(np.arange(400, dtype=np.uint16).reshape(20, 20))
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.0099887766.ABC"
    p = save(ds, tmp_path / "im.dcm")
    code = f"from lgenet.io import read_frame; read_frame({str(p)!r})"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0099887766" not in r.stderr + r.stdout


def test_run_json_and_inputs_json_hold_no_paths(finished):
    inputs = json.loads((finished / "run" / "inputs.json").read_text())
    assert inputs["manifest"] == "m.csv" and all(
        set(r) == {"row", "patient_id", "frame_sha256"} for r in inputs["rows"]
    )


# ------------------------------------------------------------------ found by bench/bad_inputs.py (second pass)
@pytest.mark.parametrize(
    "bad, want",
    [
        (dict(lr=float("nan")), "'lr' must be a finite number"),
        (dict(lr=float("inf")), "'lr' must be a finite number"),
        (dict(num_threads=0), "'num_threads' (--threads) must be an integer >= 1"),
        (dict(num_threads=-2), "must be an integer >= 1"),
        (dict(seed=-1), "'seed' must be an integer in [0, 2^32)"),
        (dict(archs={"tiny": 1}), "'archs' must be a list"),
        (dict(tasks=[1]), "'tasks' must list names"),
    ],
)
def test_config_values_that_used_to_reach_torch_or_sklearn(bad, want):
    with pytest.raises(ConfigError, match=re.escape(want)):
        RunConfig(**bad)


def test_non_utf8_config_file_and_long_patient_ids(tmp_path, capsys):
    from lgenet.config import load_config
    from lgenet.data.manifest import load_manifest
    from lgenet.errors import ManifestError

    p = tmp_path / "c.yaml"
    p.write_bytes(b"\x00\x01\x02\xff\xfe")
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(p)
    m = _cohort(tmp_path)
    rows = _rows(m)
    rows[0]["patient_id"] = "P" * 300
    _write(m, rows)
    with pytest.raises(ManifestError, match="is 300 characters long"):
        load_manifest(m)


def test_a_failed_report_prints_one_line_and_logs_the_traceback(tmp_path, capsys, monkeypatch):
    import lgenet.report as rep

    def boom(*a, **k):
        raise RuntimeError("figure exploded")

    monkeypatch.setattr(rep, "write_report", boom)
    m = _cohort(tmp_path)
    out = tmp_path / "run"
    args = ["run", "--manifest", str(m), "--out", str(out)] + [a for a in RUN if a != "--no-report"]
    assert main(args) == 0
    err = _err(capsys)
    assert "the report could not be written (RuntimeError: figure exploded)" in err
    assert "Traceback" in (out / "run.log").read_text()


def test_damaged_run_directories_are_refused_not_silently_resumed(tmp_path, finished, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished / "run", run)
    args = ["run", "--manifest", str(finished / "m.csv"), "--out", str(run)] + RUN
    (run / "config.yaml").unlink()
    assert main(args) == 2 and "config.yaml is missing" in _err(capsys)
    shutil.copy(finished / "run" / "config.yaml", run / "config.yaml")
    (run / "inputs.json").write_text("{garbled")
    assert main(args) == 2 and "inputs.json is damaged" in _err(capsys)
    shutil.copy(finished / "run" / "inputs.json", run / "inputs.json")
    (run / "oof_predictions.csv").write_text("a,b\n1,2\n")
    assert main(["report", str(run), "--no-cams"]) == 2
    assert "oof_predictions.csv is damaged" in _err(capsys)
    assert main(["report", str(finished / "run"), "--manifest", str(tmp_path / "gone.csv"), "--no-cams"]) == 2
    assert "gone.csv does not exist" in _err(capsys)


def test_predict_options_checked_before_any_work(finished, tmp_path, capsys):
    img = str(finished / "img" / "P00.png")
    run = str(finished / "run")
    assert main(["predict", "--run", run, "--task", "lge", "-o", str(tmp_path / "p.xlsx"), img]) == 2
    assert "written as .csv or .json" in _err(capsys)
    cam = tmp_path / "cams"
    assert main(["predict", "--run", run, "--task", "lge", "--cam", str(cam), "--cam-layer", "backbone.nope", img]) == 2
    assert not cam.exists()


def test_weights_commands_on_folders_and_fold_models(finished, tmp_path, capsys):
    assert main(["weights", "inspect", str(tmp_path)]) == 2
    assert "is a folder, not a weights file" in _err(capsys)
    model = RunDir(finished / "run").model_path("lge", "tiny/random", 0)
    assert main(["weights", "inspect", str(model)]) == 2
    assert "is an lgenet classifier fold model (tiny)" in _err(capsys)


def test_a_truncated_slice_of_a_series_is_an_error_not_skipped(tmp_path):
    from dicom_helpers import write_sax_series
    from lgenet.io import read_frame

    files = write_sax_series(tmp_path / "s", n=5, size=(30, 30))
    files[2].write_bytes(files[2].read_bytes()[:500])
    with pytest.raises(ReaderError, match="has no pixel data .*truncated"):
        read_frame(tmp_path / "s")


def test_nifti_masks_import_refuses_images_that_are_their_own_masks(tmp_path):
    import nibabel as nib

    from lgenet.data.importers import import_nifti_masks

    d = tmp_path / "d"
    d.mkdir()
    for cid in ("Case01", "Case02"):
        nib.save(
            nib.Nifti1Image(np.random.default_rng(0).random((20, 20, 3)).astype(np.float32), np.eye(4)),
            d / f"{cid}_LGE.nii.gz",
        )
        nib.save(nib.Nifti1Image(np.zeros((20, 20, 3), np.uint8), np.eye(4)), d / f"{cid}_gd.nii.gz")
    with pytest.raises(ConfigError, match=r"--image-pattern '\{id\}_LGE.nii.gz' --mask-pattern"):
        import_nifti_masks(d, d, tmp_path / "m.csv")


def test_6_quantify_and_import_outputs_that_are_files_or_folders(tmp_path, capsys):
    import nibabel as nib

    afile = tmp_path / "afile"
    afile.write_text("x")
    img = tmp_path / "i.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((20, 20, 2)).astype(np.float32), np.eye(4)), img)
    lab = np.zeros((20, 20, 2), np.uint8)
    lab[5:15, 5:15] = 2
    nib.save(nib.Nifti1Image(lab, np.eye(4)), tmp_path / "m.nii.gz")
    assert main(["quantify", str(img), str(tmp_path / "m.nii.gz"), "--out", str(afile)]) == 2
    assert f"--out {afile} is an existing file" in _err(capsys)
    d = tmp_path / "imgs"
    d.mkdir()
    assert main(["import", "nifti-masks", "--images", str(d), "--masks", str(d), "--out", str(tmp_path)]) == 2
    err = _err(capsys)
    assert "error:" in err
