"""Dataset importers (EMIDEC and generic NIfTI + label maps), the ceiling analysis and the
covariates-only baseline."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lgenet.cli import main
from lgenet.data.importers import CaseError, NiftiMaskImport, case_stats, import_emidec, import_nifti_masks
from lgenet.data.manifest import load_manifest
from lgenet.errors import ConfigError, DataError, LgenetError
from lgenet.outcomes.baselines import ceiling_analysis, covariate_baseline, default_covariates, format_ceiling_report

EMIDEC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emidec"


def _need_emidec() -> None:
    if not (EMIDEC / "clinical.csv").is_file():
        pytest.skip(f"EMIDEC not found at {EMIDEC}; these tests use the shared copy beside the repo")


# ------------------------------------------------------------------------------ synthetic data
def _ring_case(shape=(40, 36, 5), scar_slices=(1, 2, 3), rng=None, empty_basal=False):
    """Image + label map (x, y, slices): cavity 1, myocardium 2, scar 3 in one sector."""
    rng = rng or np.random.default_rng(0)
    nx, ny, ns = shape
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx))
    r = np.hypot(xx - nx / 2, yy - ny / 2)
    ang = np.arctan2(yy - ny / 2, xx - nx / 2)
    lab = np.zeros(shape, np.uint8)
    img = np.full(shape, 50.0) + rng.normal(0, 2, shape)
    for k in range(ns):
        if empty_basal and k == ns - 1:
            continue
        lab[..., k][r < 8] = 1
        ring = (r >= 8) & (r < 13)
        lab[..., k][ring] = 2
        img[..., k][ring] = 100 + rng.normal(0, 3, ring.sum())
        if k in scar_slices:
            sc = ring & (ang > 0) & (ang < 1.0)
            lab[..., k][sc] = 3
            img[..., k][sc] = 300 + rng.normal(0, 3, sc.sum())
    return img.astype(np.float32), lab


def _save(path: Path, arr, zooms=(1.5, 1.5, 10.0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = nib.Nifti1Image(np.asarray(arr), np.diag([-1.0, -1.0, 1.0, 1.0]))
    im.header.set_zooms(zooms[: np.asarray(arr).ndim])
    nib.save(im, str(path))
    return path


@pytest.fixture
def synth(tmp_path):
    """Three cases A, B, C with images/, masks/ and clinical.csv."""
    rng = np.random.default_rng(1)
    specs = {"A": (1, 2, 3), "B": (), "C": (4,)}
    for cid, scar in specs.items():
        img, lab = _ring_case(scar_slices=scar, rng=rng)
        _save(tmp_path / "images" / f"{cid}.nii.gz", img)
        _save(tmp_path / "masks" / f"{cid}.nii.gz", lab)
    rows = [["case_id", "age", "killip", "fu"], ["A", "61", "1", "2.5"], ["B", "70", "3", "1.0"], ["C", "", "2", ""]]
    with open(tmp_path / "clinical.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return tmp_path


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------ generic importer
def test_nifti_masks_import_values_and_manifest(synth, tmp_path):
    out = import_nifti_masks(
        synth / "images",
        synth / "masks",
        tmp_path / "out" / "m.csv",
        NiftiMaskImport(
            clinical_csv=synth / "clinical.csv",
            event_column="killip",
            event_min=2,
            followup_column="fu",
            clinical_columns={"age": "age"},
        ),
    )
    rows = {r["patient_id"]: r for r in _read(out)}
    assert list(rows) == ["A", "B", "C"]
    st = case_stats(synth / "images" / "A.nii.gz", synth / "masks" / "A.nii.gz")
    ring = st.myo_per_slice[0]
    scar_per = st.lge_per_slice[1]
    assert float(rows["A"]["lge_percent"]) == pytest.approx(100 * 3 * scar_per / (5 * ring), abs=1e-3)
    assert float(rows["A"]["lge_percent_basal"]) == 0.0  # basal = last slice, no scar there
    assert float(rows["C"]["lge_percent_basal"]) == pytest.approx(100 * scar_per / ring, abs=1e-3)
    assert float(rows["B"]["lge_percent"]) == 0.0
    assert [rows[c]["event"] for c in "ABC"] == ["0", "1", "1"]
    assert rows["A"]["followup_years"] == "2.5" and rows["C"]["followup_years"] == ""
    assert rows["A"]["slice"] == "basal" and rows["A"]["n_slices"] == "5"
    assert Path(rows["A"]["image"]).is_absolute() and Path(rows["A"]["mask"]).name == "A.nii.gz"
    side = json.loads((tmp_path / "out" / "m.import.json").read_text())
    assert side["counts"]["patients"] == 3 and side["counts"]["event_positive"] == 2
    coh = load_manifest(out, tasks=["event"])  # the rest of lgenet reads it
    assert coh.patient_ids == ["A", "B", "C"]


def test_basal_end_first_and_frames(synth, tmp_path):
    out = import_nifti_masks(
        synth / "images",
        synth / "masks",
        tmp_path / "m.csv",
        NiftiMaskImport(basal_end="first", frames_dir=tmp_path / "frames"),
    )
    rows = {r["patient_id"]: r for r in _read(out)}
    assert float(rows["C"]["lge_percent_basal"]) == 0.0  # slice 4 is now the apex
    frames = _read(tmp_path / "frames" / "frames.csv")
    assert len(frames) == 15
    fa = [f for f in frames if f["patient_id"] == "A"]
    assert [int(f["slice_index"]) for f in fa] == [0, 1, 2, 3, 4]
    assert [f["is_basal"] for f in fa] == ["0", "0", "0", "0", "1"]
    assert all(f["lge_percent"] == rows["A"]["lge_percent"] for f in fa)  # patient label repeated
    one = nib.load(fa[1]["image"])
    assert one.shape[2] == 1 and nib.load(fa[1]["mask"]).shape == one.shape
    # apex->base: with basal_end='first', frame slice_index 1 is array slice 3 of the stack
    src = np.asarray(nib.load(str(synth / "images" / "A.nii.gz")).dataobj)
    np.testing.assert_allclose(np.asarray(one.dataobj)[:, :, 0], src[:, :, 3], rtol=1e-6)


def test_pairing_by_name_glob_and_missing_mask(synth, tmp_path):
    out = import_nifti_masks(str(synth / "images" / "*.nii.gz"), str(synth / "masks" / "*.nii.gz"), tmp_path / "m.csv")
    assert len(_read(out)) == 3
    (synth / "masks" / "C.nii.gz").unlink()
    with pytest.raises(CaseError, match=r"case C: image .*C.nii.gz has no mask with the same name"):
        import_nifti_masks(synth / "images", synth / "masks", tmp_path / "m2.csv")


# ------------------------------------------------------------------------------ refusals
def test_refuses_mismatched_grid(synth, tmp_path):
    _, lab = _ring_case(shape=(40, 34, 5))
    _save(synth / "masks" / "B.nii.gz", lab)
    with pytest.raises(
        CaseError, match=r"case B: mask grid \(40, 34, 5\) .* differs from image grid \(40, 36, 5\)"
    ) as e:
        import_nifti_masks(synth / "images", synth / "masks", tmp_path / "m.csv")
    assert e.value.case == "B"
    assert not (tmp_path / "m.csv").exists()  # nothing half-written


def test_refuses_empty_myocardium(synth, tmp_path):
    lab = np.asarray(nib.load(str(synth / "masks" / "A.nii.gz")).dataobj).copy()
    lab[lab >= 2] = 0
    _save(synth / "masks" / "A.nii.gz", lab)
    with pytest.raises(
        CaseError, match=r"case A: mask .*A.nii.gz has no myocardium \(no voxel with label \[2, 3, 4\]\)"
    ):
        import_nifti_masks(synth / "images", synth / "masks", tmp_path / "m.csv")


def test_refuses_no_myocardium_on_basal_slice(synth, tmp_path):
    img, lab = _ring_case(empty_basal=True)
    _save(synth / "images" / "B.nii.gz", img)
    _save(synth / "masks" / "B.nii.gz", lab)
    with pytest.raises(CaseError, match=r"case B: mask .* has no myocardium on the basal slice"):
        import_nifti_masks(synth / "images", synth / "masks", tmp_path / "m.csv")


def test_refuses_unknown_label_values(synth, tmp_path):
    lab = np.asarray(nib.load(str(synth / "masks" / "C.nii.gz")).dataobj).copy()
    lab[0, 0, 0] = 7
    _save(synth / "masks" / "C.nii.gz", lab)
    with pytest.raises(CaseError, match=r"case C: mask .* holds label value\(s\) \[7\] outside the declared ones"):
        import_nifti_masks(synth / "images", synth / "masks", tmp_path / "m.csv")
    # declaring it makes the case importable
    import_nifti_masks(synth / "images", synth / "masks", tmp_path / "m.csv", NiftiMaskImport(other_labels=(0, 1, 7)))


def test_refuses_missing_clinical_file_and_row(synth, tmp_path):
    with pytest.raises(DataError, match=r"clinical file .*nope.csv does not exist"):
        import_nifti_masks(
            synth / "images", synth / "masks", tmp_path / "m.csv", NiftiMaskImport(clinical_csv=synth / "nope.csv")
        )
    (synth / "clinical.csv").write_text("case_id,age\nA,60\nC,70\n")
    with pytest.raises(CaseError, match=r"case B: no row in clinical file .*clinical.csv \(ID column 'case_id'\)"):
        import_nifti_masks(
            synth / "images", synth / "masks", tmp_path / "m.csv", NiftiMaskImport(clinical_csv=synth / "clinical.csv")
        )


def test_refuses_non_nifti(synth, tmp_path):
    png = synth / "masks" / "A.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    imgs = [synth / "images" / "A.nii.gz"]
    with pytest.raises(CaseError, match=r"case A: mask .*A.png is not a NIfTI file \(expected .nii or .nii.gz\)"):
        import_nifti_masks(imgs, [png], tmp_path / "m.csv", NiftiMaskImport(case_ids={str(imgs[0]): "A"}))
    bad = synth / "images" / "A.nii.gz"
    bad.write_bytes(b"this is not a nifti file")
    with pytest.raises(CaseError, match=r"case A: image .*A.nii.gz could not be read as NIfTI"):
        import_nifti_masks(synth / "images", synth / "masks", tmp_path / "m.csv")


def test_bad_options(synth, tmp_path):
    with pytest.raises(ConfigError, match="must be a subset of myo_labels"):
        import_nifti_masks(synth / "images", synth / "masks", tmp_path / "m.csv", NiftiMaskImport(lge_labels=(3, 5)))
    with pytest.raises(ConfigError, match="basal_end"):
        import_nifti_masks(synth / "images", synth / "masks", tmp_path / "m.csv", NiftiMaskImport(basal_end="top"))
    with pytest.raises(DataError, match="no column 'nope'"):
        import_nifti_masks(
            synth / "images",
            synth / "masks",
            tmp_path / "m.csv",
            NiftiMaskImport(clinical_csv=synth / "clinical.csv", event_column="nope"),
        )
    with pytest.raises(DataError, match="EMIDEC folder .* does not exist"):
        import_emidec(tmp_path / "nowhere", tmp_path / "m.csv")


def test_cli_import_nifti_masks(synth, tmp_path, capsys):
    rc = main(
        [
            "import",
            "nifti-masks",
            "--images",
            str(synth / "images"),
            "--masks",
            str(synth / "masks"),
            "--out",
            str(tmp_path / "m.csv"),
            "--clinical",
            str(synth / "clinical.csv"),
            "--event-column",
            "killip",
            "--event-min",
            "2",
            "--clinical-columns",
            "age=age_years",
        ]
    )
    assert rc == 0
    assert "patients 3" in capsys.readouterr().out
    assert "age_years" in _read(tmp_path / "m.csv")[0]
    rc = main(
        [
            "import",
            "nifti-masks",
            "--images",
            str(synth / "images"),
            "--masks",
            str(synth / "masks"),
            "--out",
            str(tmp_path / "m.csv"),
            "--other-labels",
            "0",
        ]
    )
    assert rc == 2
    assert "case A: mask" in capsys.readouterr().err


# ------------------------------------------------------------------------------ EMIDEC
@pytest.fixture(scope="module")
def emidec_manifest(tmp_path_factory):
    _need_emidec()
    return import_emidec(EMIDEC, tmp_path_factory.mktemp("emidec") / "emidec.csv")


@pytest.mark.emidec
def test_emidec_counts(emidec_manifest):
    rows = _read(emidec_manifest)
    assert len(rows) == 100
    assert sum(float(r["lge_percent"]) > 5.7 for r in rows) == 62
    assert sum(float(r["lge_percent_basal"]) > 5.7 for r in rows) == 42
    assert sum(r["event"] == "1" for r in rows) == 18
    assert sum(int(r["killip"]) >= 2 for r in rows) == 18
    assert sum(int(r["n_slices"]) for r in rows) == 708
    assert {r["followup_years"] for r in rows} == {""}
    cols = set(rows[0])
    for c in (
        "patient_id",
        "image",
        "slice",
        "lge_percent",
        "event",
        "followup_years",
        "mask",
        "lge_percent_basal",
        "n_slices",
        "group",
        "sex",
        "age",
        "tobacco",
        "overweight",
        "hypertension",
        "diabetes",
        "familial_disease",
        "ecg_st_plus",
        "troponin",
        "killip",
        "lvef",
        "ntprobnp",
    ):
        assert c in cols
    assert not any(c.endswith("_ml_src") for c in cols)  # volumes from the contours = the label
    coh = load_manifest(emidec_manifest, tasks=["lge", "event"])
    assert len(coh.patient_ids) == 100


@pytest.mark.emidec
def test_emidec_burden_matches_label_summary(emidec_manifest):
    ref = {r["case_id"]: r for r in _read(EMIDEC / "label_summary.csv")}
    for r in _read(emidec_manifest):
        s = ref[r["patient_id"]]
        assert float(r["lge_percent"]) == pytest.approx(100 * float(s["burden_whole"]), abs=1e-3)
        assert float(r["lge_percent_basal"]) == pytest.approx(100 * float(s["burden_basal"]), abs=1e-3)


@pytest.mark.emidec
def test_emidec_notes_and_baselines(emidec_manifest):
    side = json.loads(emidec_manifest.with_name("emidec.import.json").read_text())
    assert "killip" in side["notes"]["not_covariate_for"]["event"]
    assert "proxy" in side["notes"]["event"]
    assert "killip" not in default_covariates(emidec_manifest, "event")
    assert "killip" in default_covariates(emidec_manifest, "lge")
    with pytest.raises(ConfigError, match="killip .*defines the event label"):
        covariate_baseline(emidec_manifest, "event", ["age", "killip"])
    r = covariate_baseline(emidec_manifest, "event", folds=4, seed=0)
    assert r["n"] == 100 and r["n_pos"] == 18 and len(r["oof_prob"]) == 100
    assert 0.0 <= r["auc"] <= 1.0 and not np.isnan(r["oof_prob"]).any()
    assert set(r["fold"]) == {0, 1, 2, 3}
    c = ceiling_analysis(emidec_manifest)
    assert c["whole_lv_positive"] == 62 and c["basal_slice_positive"] == 42
    assert c["positive_with_no_basal_enhancement"] == 18
    assert c["positive_with_basal_burden_le_threshold"] == 21
    assert c["basal_positive_whole_lv_negative"] == 1
    assert "| whole-LV positives (lge label) | 62 |" in format_ceiling_report(c)


def test_covariate_baseline_generic_manifest(synth, tmp_path):
    """Any manifest with numeric covariates works; label columns and absent columns are refused."""
    rng = np.random.default_rng(3)
    n = 40
    y = np.array([1] * 16 + [0] * 24)
    x = y * 1.5 + rng.normal(0, 1, n)
    rows = [
        {
            "patient_id": f"P{i:02d}",
            "image": f"img/P{i:02d}.nii.gz",
            "lge_percent": 10.0 if y[i] else 1.0,
            "x": float(x[i]),
            "z": float(rng.normal()),
        }
        for i in range(n)
    ]
    from lgenet.data.manifest import write_manifest

    write_manifest(tmp_path / "c.csv", rows)
    r = covariate_baseline(tmp_path / "c.csv", "lge", ["x", "z"], folds=4, seed=0)
    assert r["auc"] > 0.7
    with pytest.raises(ConfigError, match="lge_percent"):
        covariate_baseline(tmp_path / "c.csv", "lge", ["x", "lge_percent"])
    with pytest.raises((LgenetError,)):
        covariate_baseline(tmp_path / "c.csv", "lge", ["nope"])


def test_masks_of_another_label_convention_are_refused_with_the_fix(tmp_path):
    """0 background / 1 myocardium / 2 scar read with the default (EMIDEC) labels would make every
    burden 0 silently; the importer sees that label 1 is no cavity and says how to declare the labels."""
    import nibabel as nib

    from lgenet.data.importers import NiftiMaskImport, import_nifti_masks
    from lgenet.errors import ConfigError

    yy, xx = np.mgrid[:48, :48]
    r = np.hypot(yy - 24, xx - 24)
    lab2d = np.where((r > 8) & (r < 13), 1, 0)  # the myocardium ring is label 1
    lab2d[(r > 8) & (r < 13) & (xx > 30)] = 2  # scar
    for k in range(1, 4):
        lab = np.stack([lab2d] * 5, axis=-1).astype(np.int16)
        img = np.random.default_rng(k).normal(100, 10, lab.shape).astype(np.float32) + 200 * (lab == 2)
        nib.save(nib.Nifti1Image(img, np.eye(4)), tmp_path / f"C{k}_LGE.nii.gz")
        nib.save(nib.Nifti1Image(lab, np.eye(4)), tmp_path / f"C{k}_gd.nii.gz")
    kw = dict(image_pattern="{id}_LGE.nii.gz", mask_pattern="{id}_gd.nii.gz")
    with pytest.raises(ConfigError, match=r"label 1 lies outside the myocardium.*--myo-labels 1,2 --lge-labels 2"):
        import_nifti_masks(tmp_path, tmp_path, tmp_path / "m.csv", NiftiMaskImport(**kw))
    assert not (tmp_path / "m.csv").exists()
    out = import_nifti_masks(
        tmp_path,
        tmp_path,
        tmp_path / "m.csv",
        NiftiMaskImport(myo_labels=(1, 2), lge_labels=(2,), other_labels=(0,), **kw),
    )
    rows = list(csv.DictReader(open(out)))
    assert all(float(r["lge_percent"]) > 10 for r in rows)


# ------------------------------------------------------------------------------ label conventions
def test_label_conventions_by_name_and_spec():
    from lgenet.conventions.labels import EMIDEC, LABEL_CONVENTIONS, MYOPS, SegLabels, label_convention

    assert EMIDEC == SegLabels(cavity=(1,), myo=(2, 3, 4), lge=(3, 4), other=(0,))
    assert EMIDEC.non_myo == (0, 1)  # what `lgenet import` and `lgenet quantify` call the other labels
    assert MYOPS.myo == (200, 1220, 2221) and MYOPS.lge == (2221,) and MYOPS.cavity == (500,)
    assert 600 in MYOPS.other and 600 not in MYOPS.myo  # RV blood pool counts as other
    assert LABEL_CONVENTIONS == {"emidec": EMIDEC, "myops": MYOPS}
    assert label_convention("MyoPS") is MYOPS and label_convention(EMIDEC) is EMIDEC
    assert label_convention("cavity=1,myo=2+3+4,lge=3+4,other=0") == EMIDEC
    assert label_convention("myo=1+2,lge=2,cavity=") == SegLabels(cavity=(), myo=(1, 2), lge=(2,), other=(0,))
    with pytest.raises(ConfigError, match=r"label convention 'acdc'.*\['emidec', 'myops'\]"):
        label_convention("acdc")
    lab = np.array([[0, 500, 600], [200, 1220, 2221]])
    assert MYOPS.classes(lab).tolist() == [[0, 1, 0], [2, 2, 3]]


def test_import_defaults_are_the_emidec_convention():
    from lgenet.conventions.labels import EMIDEC
    from lgenet.conventions.thresholds import LGE_THRESHOLD
    from lgenet.data.importers import NIFTI_MASK_DEFAULTS

    o = NIFTI_MASK_DEFAULTS
    assert (tuple(o.myo_labels), tuple(o.lge_labels), tuple(o.other_labels)) == (EMIDEC.myo, EMIDEC.lge, (0, 1))
    assert o.lge_threshold == LGE_THRESHOLD == 5.7


def test_frames_are_written_only_after_every_pair_is_checked(synth, tmp_path):
    """A bad last case with --frames-dir: refused, and no frame of the earlier cases left behind (since 0.2.0)."""
    import shutil

    imgs, masks = tmp_path / "i", tmp_path / "m"
    shutil.copytree(synth / "images", imgs)
    shutil.copytree(synth / "masks", masks)
    bad = nib.load(str(masks / "C.nii.gz"))
    data = np.asarray(bad.dataobj).copy()
    data[0, 0, 0] = 77  # a label value no convention knows
    nib.save(nib.Nifti1Image(data, bad.affine, bad.header), str(masks / "C.nii.gz"))
    with pytest.raises(LgenetError):
        import_nifti_masks(imgs, masks, tmp_path / "m.csv", NiftiMaskImport(frames_dir=tmp_path / "frames"))
    assert not (tmp_path / "frames").exists() or not any((tmp_path / "frames").rglob("*"))
    assert not (tmp_path / "m.csv").exists()
