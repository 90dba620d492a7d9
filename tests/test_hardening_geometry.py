"""Issue 26, defects 5, 6 and 10: geometry read wrongly, labels lost, degenerate inputs without a note."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lgenet.conventions.labels import SegLabels, labels_of_import
from lgenet.data.stacks import ONE_SLICE_NOTE, read_stack
from lgenet.errors import ConfigError, DataError, ReaderError
from lgenet.io import read_volume
from lgenet.io.geometry import SLICE_GAP_NOTE
from lgenet.io.nifti import geometry_difference, load_nifti


def _ring(size: int = 48, n: int = 4):
    """An (x, y, z) image and label map: 0 background, 1 cavity, 2 myocardium, 3 enhanced."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    lab = np.zeros((size, size, n), np.uint8)
    lab[r < size / 6] = 1
    myo = (r >= size / 6) & (r < size / 4)
    lab[myo] = 2
    lab[myo & (xx > size / 2)] = 3
    img = (30 + 50 * lab + np.random.default_rng(0).normal(0, 2, lab.shape)).astype(np.float32)
    return img, lab


def _save(path: Path, arr, affine=None, zooms=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = nib.Nifti1Image(arr, np.diag([1.5, 1.5, 8.0, 1.0]) if affine is None else affine)
    if zooms is not None:
        im.header["pixdim"][1:4] = zooms
    nib.save(im, str(path))
    return path


# ------------------------------------------------------------------------------------------ defect 5
@pytest.mark.parametrize("bad", [0.0, -1.5, float("nan")])
def test_a_nifti_voxel_size_of_zero_negative_or_nan_is_refused(tmp_path, bad):
    img, _ = _ring()
    p = _save(tmp_path / "zero.nii.gz", img, zooms=(bad, 1.5, 8.0))
    assert nib.load(str(p)).header.get_zooms()[0] in (1.0, 1.5) or np.isnan(bad)  # what nibabel makes of it
    with pytest.raises(ReaderError, match=r"zero\.nii\.gz.*voxel size.*0, negative or NaN"):
        load_nifti(p)
    # the stack reader: the pixel size is unknown, and --pixel-spacing is the way out
    with pytest.raises(DataError, match=r"zero\.nii\.gz.*--pixel-spacing"):
        read_stack(p)
    st = read_stack(p, default_spacing=1.5)
    assert st.spacing == (1.5, 1.5) and any("1.5 mm assumed" in n for n in st.notes)
    # a slice thickness of 0 has no option to give it: refused by name
    q = _save(tmp_path / "thick.nii.gz", img, zooms=(1.5, 1.5, bad))
    with pytest.raises(ReaderError, match=r"thick\.nii\.gz.*axis 2"):
        read_stack(q, default_spacing=1.5)


def test_a_mask_on_another_grid_is_refused_by_the_importer_and_segment(tmp_path):
    from lgenet.data.importers import NiftiMaskImport, import_nifti_masks

    img, lab = _ring()
    base = np.diag([1.5, 1.5, 8.0, 1.0])
    shifted = base.copy()
    shifted[:3, 3] = (84.0, 0.0, 0.0)
    mirrored = np.diag([-1.5, 1.5, 8.0, 1.0])
    cases = {"shifted": (shifted, "shifted by 84"), "mirrored": (mirrored, "mirrored along stored axis 0")}
    cases["spacing"] = (np.diag([2.0, 2.0, 8.0, 1.0]), "voxel size (2, 2, 8) mm instead of (1.5, 1.5, 8) mm")
    ip = _save(tmp_path / "img" / "C1.nii.gz", img, base)
    assert geometry_difference(load_nifti(ip), load_nifti(_save(tmp_path / "same.nii.gz", lab, base))) is None
    for name, (aff, words) in cases.items():
        mp = _save(tmp_path / name / "C1.nii.gz", lab, aff)
        assert words in geometry_difference(load_nifti(ip), load_nifti(mp))
        with pytest.raises(DataError, match=rf"C1\.nii\.gz.*{words.split(' (')[0]}"):
            import_nifti_masks(tmp_path / "img", tmp_path / name, tmp_path / f"{name}.csv", NiftiMaskImport())
        assert not (tmp_path / f"{name}.csv").exists()
        with pytest.raises(DataError, match=rf"{name}/C1\.nii\.gz.*img/C1\.nii\.gz"):
            read_stack(ip, mp)
    read_stack(ip, tmp_path / "same.nii.gz")  # the same grid is accepted


def test_a_dicom_series_missing_a_middle_slice_is_noted(tmp_path):
    from dicom_helpers import write_sax_series

    full = write_sax_series(tmp_path / "full", n=6, write_order="apex_first", size=(20, 20))
    _, meta = read_volume(tmp_path / "full")
    assert not any(n.startswith(SLICE_GAP_NOTE) for n in meta["notes"])
    write_sax_series(tmp_path / "gap", n=6, write_order="apex_first", size=(20, 20))
    (tmp_path / "gap" / full[2].name).unlink()
    vol, meta = read_volume(tmp_path / "gap")
    gap = [n for n in meta["notes"] if n.startswith(SLICE_GAP_NOTE)]
    assert vol.shape[0] == 5 and len(gap) == 1 and "16.0 mm" in gap[0] and "1 slice(s) missing" in gap[0]
    st = read_stack(tmp_path / "gap")
    assert gap[0] in st.notes  # segment apply writes it in the CSV's notes, segment train logs it


# ------------------------------------------------------------------------------------------ defect 6
def _import_with_cavity_200(tmp_path: Path) -> Path:
    from lgenet.data.importers import NiftiMaskImport, import_nifti_masks

    img, lab = _ring()
    lab200 = np.select([lab == 1, lab == 2, lab == 3], [200, 1, 2], 0).astype(np.uint8)
    _save(tmp_path / "imgs" / "C1.nii.gz", img)
    _save(tmp_path / "masks" / "C1.nii.gz", lab200)
    return import_nifti_masks(
        tmp_path / "imgs",
        tmp_path / "masks",
        tmp_path / "cohort.csv",
        NiftiMaskImport(myo_labels=(1, 2), lge_labels=(2,), other_labels=(0, 200)),
    )


def test_labels_from_the_import_sidecar_keep_a_cavity_that_is_not_label_1(tmp_path):
    from lgenet.data.importers import labels_from_import

    man = _import_with_cavity_200(tmp_path)
    side = json.loads((tmp_path / "cohort.import.json").read_text())
    assert side["options"]["cavity_labels"] == [200]
    labels, path = labels_from_import(man)
    assert path.name == "cohort.import.json"
    assert labels == SegLabels(cavity=(200,), myo=(1, 2), lge=(2,), other=(0,))
    st = read_stack(tmp_path / "imgs" / "C1.nii.gz", tmp_path / "masks" / "C1.nii.gz", labels=labels)
    assert (st.classes == 1).sum() > 0  # the cavity class survives
    # an older sidecar (no cavity_labels) with a non-1 other label: refused, with the --labels to pass
    with pytest.raises(ConfigError, match=r"old\.json.*cavity=200,myo=1\+2,lge=2,other=0"):
        labels_of_import({"myo_labels": [1, 2], "lge_labels": [2], "other_labels": [0, 200]}, where="old.json")
    assert labels_of_import({"myo_labels": [2, 3, 4], "lge_labels": [3, 4], "other_labels": [0, 1]}).cavity == (1,)


def test_segment_apply_takes_labels_and_the_sidecar(tmp_path):
    from lgenet.cli.main import build_parser
    from lgenet.segment.apply import _mask_labels

    a = build_parser().parse_args(
        ["segment", "apply", "--run", "r", "--manifest", "m.csv", "--out", "o", "--labels", "myops"]
    )
    assert a.labels == "myops"
    assert _mask_labels("myops", None).cavity == (500,)
    assert _mask_labels("cavity=5,myo=6+7,lge=7,other=0", None) == SegLabels(cavity=(5,), myo=(6, 7), lge=(7,))
    man = _import_with_cavity_200(tmp_path)
    assert _mask_labels(None, man).cavity == (200,)
    assert _mask_labels(None, tmp_path / "elsewhere.csv") is None


# ------------------------------------------------------------------------------------------ defect 10
def test_a_one_slice_stack_says_its_whole_lv_measures_come_from_one_slice(tmp_path):
    img, _ = _ring(n=1)
    st = read_stack(_save(tmp_path / "one.nii.gz", img[:, :, 0]))
    assert ONE_SLICE_NOTE in st.notes
    assert ONE_SLICE_NOTE not in read_stack(_save(tmp_path / "four.nii.gz", _ring()[0])).notes


def test_the_icc_ci_of_three_patients_is_not_estimable():
    from lgenet.evaluation.segmentation import agreement, agreement_text

    a = agreement([1.0, 5.0, 3.0], [2.0, 4.0, 3.5])
    assert a["icc_lower"] is None and a["loa_lower"] is None and "not estimable" in a["ci_note"]
    icc, bias = agreement_text(a)
    assert "not estimable" in icc and "not estimable" in bias
    x = np.random.default_rng(0).normal(10, 5, 30)
    b = agreement(x + 0.5, x)
    assert -1 <= b["icc_lower"] <= b["icc"] <= b["icc_upper"] <= 1 and "ci_note" not in b


def test_import_refuses_a_nan_image_outside_the_myocardium(tmp_path):
    from lgenet.data.importers import NiftiMaskImport, import_nifti_masks

    img, lab = _ring()
    img[0, 0, 0] = np.nan  # a corner, far from the myocardium
    _save(tmp_path / "imgs" / "C1.nii.gz", img)
    _save(tmp_path / "masks" / "C1.nii.gz", lab)
    with pytest.raises(DataError, match=r"imgs/C1\.nii\.gz has 1 NaN/inf voxel"):
        import_nifti_masks(tmp_path / "imgs", tmp_path / "masks", tmp_path / "m.csv", NiftiMaskImport())
    assert not (tmp_path / "m.csv").exists()


@pytest.fixture(scope="module")
def tiny_seg_run(tmp_path_factory):
    """A tiny finished segmentation run on a synthetic cohort (shared by the apply tests below)."""
    from lgenet.config import SegConfig
    from lgenet.data.synth import make_cohort
    from lgenet.segment import train_segmentation
    from test_segment import SYNTH_LABELS, TINY

    root = tmp_path_factory.mktemp("tinyseg")
    m = make_cohort(root / "c", n_patients=8, image_size=64, n_slices=(4, 4), seed=3, progress=False)
    train_segmentation(
        SegConfig(manifest=str(m), out=str(root / "seg"), labels=SYNTH_LABELS, **{**TINY, "folds": 2}),
        progress=False,
    )
    return root


def test_no_lv_found_is_the_result_not_a_number(tiny_seg_run, tmp_path, monkeypatch, capsys):
    """segment apply on random noise: an empty measure, status 'no LV found', and the printed line says it."""
    import lgenet.segment.apply as apply_mod
    from lgenet.cli import main
    from lgenet.models.seginfer import SegResult

    tmp_path_seg = tiny_seg_run
    real = apply_mod.load_segmenter

    def lost(*a, **kw):
        seg = real(*a, **kw)

        def call(image, spacing, **k):
            r = seg(image, spacing, **k)  # whatever the network draws where the localiser found nothing
            r.classes[:, 20:30, 20:30] = 2
            return SegResult(r.classes, r.probs, r.centres, np.zeros_like(r.localised), r.notes)

        return call

    monkeypatch.setattr(apply_mod, "load_segmenter", lost)
    noise = _save(tmp_path / "noise.nii.gz", np.random.default_rng(1).random((64, 64, 4)).astype(np.float32))
    out = tmp_path / "seg.csv"
    assert main(["segment", "apply", "--run", str(tmp_path_seg / "seg"), str(noise), "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "input_001: no LV found (no LGE measure)" in printed and "LGE 0.0" not in printed
    with open(out, newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["status"] == "no LV found" and row["lge_percent_pred"] == "" and row["myo_ml_pred"] == ""
    assert "no LV found" in row["notes"]
    assert apply_mod.lv_status(SegResult(np.zeros((1, 4, 4), np.uint8), None, None, np.ones(1, bool))) == "no LV found"


def test_a_mask_on_another_structure_is_reported_as_implausible_not_measured(
    tiny_seg_run, tmp_path, monkeypatch, capsys
):
    """The network draws a thin small ring (a vessel, not an LV): status 'implausible LV mask' with the reason, no
    LGE number, and the mask kept for review (since 0.2.0)."""
    import lgenet.segment.apply as apply_mod
    from lgenet.cli import main
    from lgenet.models.seginfer import SegResult

    real = apply_mod.load_segmenter

    def vessel(*a, **kw):
        seg = real(*a, **kw)

        def call(image, spacing, **k):
            r = seg(image, spacing, **k)
            s_, h, w = r.classes.shape
            yy, xx = np.mgrid[:h, :w]
            d = np.hypot((yy - h / 2) * spacing[0], (xx - w / 2) * spacing[1])
            ring = np.where(d < 10, 1, np.where(d < 12, 2, 0)).astype(r.classes.dtype)
            return SegResult(np.repeat(ring[None], s_, 0), r.probs, r.centres, np.ones_like(r.localised), r.notes)

        return call

    monkeypatch.setattr(apply_mod, "load_segmenter", vessel)
    img = _save(tmp_path / "stack.nii.gz", np.random.default_rng(2).random((64, 64, 4)).astype(np.float32))
    out = tmp_path / "seg.csv"
    assert main(["segment", "apply", "--run", str(tiny_seg_run / "seg"), str(img), "-o", str(out), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "input_001: implausible LV mask (no LGE measure)" in printed
    with open(out, newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["status"] == "implausible LV mask" and row["lge_percent_pred"] == "" and row["myo_mass_g_pred"] == ""
    assert "mm thick" in row["notes"] and "for review" in row["notes"]


def test_apply_on_a_labelled_manifest_writes_and_prints_its_evaluation(tiny_seg_run, tmp_path, capsys):
    from lgenet.cli import main

    out = tmp_path / "applied"
    man = tiny_seg_run / "c" / "manifest.csv"
    assert (
        main(["segment", "apply", "--run", str(tiny_seg_run / "seg"), "--manifest", str(man), "--out", str(out), "-q"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "evaluation against the manifest's masks: 8 labelled patients" in printed and "Dice myocardium" in printed
    e = json.loads((out / "evaluation.json").read_text())
    assert e["n_labelled"] == 8 and e["n_measured"] + e["n_refused"] == 8 and e["dice_myo"]["n"] == e["n_measured"]
