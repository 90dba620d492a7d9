"""Tests of the synthetic demo cohort (lgenet.data.synth) and its phantom (lgenet.data.phantom)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, RLELossless

from lgenet.data.phantom import LABELS, lge_burden, make_phantom
from lgenet.data.synth import (
    IDENTIFIER_KEYWORDS,
    MANIFEST_COLUMNS,
    SERIES_DESCRIPTION,
    fake_identifiers,
    make_cohort,
)
from lgenet.errors import ConfigError

APEX = np.array([1.0, -1.0, -1.0]) / np.sqrt(3.0)  # LV apex direction in LPS


# ----------------------------------------------------------------------------- helpers
def _rows(manifest: Path) -> list[dict[str, str]]:
    with open(manifest, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _series(folder: Path) -> list[pydicom.Dataset]:
    """Datasets of a series folder sorted apex -> base by geometry (ascending p . n)."""
    dss = [pydicom.dcmread(p) for p in sorted(folder.iterdir())]
    ori = np.array(dss[0].ImageOrientationPatient, dtype=float)
    n = np.cross(ori[:3], ori[3:])
    return sorted(dss, key=lambda d: float(np.dot(np.array(d.ImagePositionPatient, float), n)))


def _labels(path: Path) -> np.ndarray:
    """NIfTI label map -> (S, H, W) apex -> base, with frame k = data[:, :, k].T."""
    data = np.asarray(nib.load(str(path)).dataobj)
    return np.stack([data[:, :, k].T for k in range(data.shape[2])])


def _real(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "cohort"
    return make_cohort(out, n_patients=16, image_size=64, seed=3, progress=False)


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_large") / "cohort"
    return make_cohort(out, n_patients=116, image_size=48, seed=0, progress=False)


# ----------------------------------------------------------------------------- phantom
def test_phantom_anatomy_and_burden():
    st = make_phantom(np.random.default_rng(11), image_size=128, n_slices=7, target_lge_percent=10.0)
    lab, img = st.labels, st.image
    assert lab.shape == img.shape == (7, 128, 128)
    assert set(np.unique(lab)) <= set(LABELS)
    assert abs(st.lge_percent - 10.0) < 0.5
    assert st.lge_percent == pytest.approx(lge_burden(lab))
    assert st.basal_lge_percent == pytest.approx(lge_burden(lab[-1]))
    # bright blood, dark (nulled) myocardium, enhancement near blood-pool brightness
    blood = img[lab == 1].mean()
    assert img[lab == 2].mean() < 0.25 * blood
    assert img[lab == 3].mean() > 0.6 * blood
    assert img[lab == 4].mean() > 0.6 * blood
    # RV absent at the apex, present at the base; LV grows apex -> base
    assert (lab[0] == 4).sum() == 0 and (lab[-1] == 4).sum() > 0
    cav = ((lab == 1) | (lab == 4)).sum(axis=(1, 2))
    assert np.all(np.diff(cav) > 0)
    # wall thickness ~ ring area / mid-wall circumference, in mm (basal slice)
    dx = st.pixel_spacing[0]
    a_cav = (lab[-1] == 1).sum() * dx * dx
    a_ring = np.isin(lab[-1], (2, 3)).sum() * dx * dx
    r_endo = np.sqrt(a_cav / np.pi)
    r_epi = np.sqrt((a_cav + a_ring) / np.pi)
    assert 7.0 <= r_epi - r_endo <= 13.0
    assert 1.3 <= dx <= 1.7


def test_phantom_no_lge_and_determinism():
    a = make_phantom(np.random.default_rng(5), image_size=64, n_slices=5, target_lge_percent=0.0)
    b = make_phantom(np.random.default_rng(5), image_size=64, n_slices=5, target_lge_percent=0.0)
    assert a.lge_percent == 0.0 and (a.labels == 3).sum() == 0
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)


# ----------------------------------------------------------------------------- files and tags
def test_files_and_dicom_tags(small):
    root = small.parent
    rows = _rows(small)
    assert list(rows[0]) == list(MANIFEST_COLUMNS)
    assert [r["patient_id"] for r in rows] == [f"SYN{i:03d}" for i in range(1, 17)]
    assert (root / "cohort_summary.json").is_file() and (root / "truth.csv").is_file()
    series_uids = set()
    shuffled = 0
    for r in rows:
        assert r["image"] == f"dicom/{r['patient_id']}" and r["slice"] == "basal"
        assert r["mask"] == f"masks/{r['patient_id']}.nii.gz" and (root / r["mask"]).is_file()
        files = sorted((root / r["image"]).iterdir())
        assert 5 <= len(files) <= 8
        assert all(re.fullmatch(r"IM_[0-9A-F]{8}\.dcm", f.name) for f in files)
        dss = [pydicom.dcmread(f) for f in files]
        uids = {d.SeriesInstanceUID for d in dss}
        assert len(uids) == 1 and not (uids & series_uids)
        series_uids |= uids
        assert len({d.StudyInstanceUID for d in dss}) == 1
        assert len({d.SOPInstanceUID for d in dss}) == len(dss)
        for d in dss:
            assert d.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
            assert d.SOPClassUID == MRImageStorage == d.file_meta.MediaStorageSOPClassUID
            assert d.Modality == "MR" and d.SeriesDescription == SERIES_DESCRIPTION
            assert (d.Rows, d.Columns) == (64, 64)
            assert d.pixel_array.shape == (64, 64) and d.pixel_array.dtype == np.uint16
            assert float(d.RescaleSlope) > 0 and float(d.RescaleIntercept) == 0
            assert float(d.PixelSpacing[0]) == float(d.PixelSpacing[1]) > 2.0
            assert float(d.SliceThickness) == 8.0
            assert 8.0 <= float(d.SpacingBetweenSlices) <= 10.0
            assert float(d.WindowWidth) > 0
        inst = [int(d.InstanceNumber) for d in dss]
        assert sorted(inst) == list(range(1, len(dss) + 1))
        shuffled += inst != sorted(inst)
    assert shuffled > 0  # file names do not follow the slice order


def test_geometry_sorting_apex_to_base(small):
    root = small.parent
    for r in _rows(small):
        dss = _series(root / r["image"])
        lab = _labels(root / r["mask"])
        assert lab.shape[0] == len(dss)
        ori = np.array(dss[0].ImageOrientationPatient, dtype=float)
        row, col = ori[:3], ori[3:]
        assert abs(np.dot(row, col)) < 1e-4
        n = np.cross(row, col)
        assert np.dot(n, APEX) < -0.7  # slice normal ~ LV long axis, pointing apex -> base
        pos = np.array([np.array(d.ImagePositionPatient, dtype=float) for d in dss])
        s = pos @ n
        assert np.allclose(np.diff(s), float(dss[0].SpacingBetweenSlices), atol=1e-2)
        assert np.allclose([float(d.SliceLocation) for d in dss], s, atol=1e-2)
        assert [int(d.InstanceNumber) for d in dss] == list(range(len(dss), 0, -1))  # 1 = base
        # frames align with the masks: blood pool bright, myocardium dark, on every slice
        for k, d in enumerate(dss):
            img = _real(d)
            assert img[lab[k] == 1].mean() > 4.0 * img[lab[k] == 2].mean()
        # the basal slice has the largest LV + RV cavity; no RV at the apex
        cav = ((lab == 1) | (lab == 4)).sum(axis=(1, 2))
        assert int(np.argmax(cav)) == len(dss) - 1
        assert (lab[0] == 4).sum() == 0


def test_nifti_geometry_matches_dicom(small):
    root = small.parent
    r = _rows(small)[0]
    dss = _series(root / r["image"])
    img = nib.load(str(root / r["mask"]))
    dx = float(dss[0].PixelSpacing[0])
    assert np.allclose(img.header.get_zooms(), (dx, dx, float(dss[0].SpacingBetweenSlices)), atol=1e-3)
    assert img.get_data_dtype() == np.uint8
    lps_to_ras = np.array([-1.0, -1.0, 1.0])
    for k, d in enumerate(dss):
        p = img.affine @ np.array([0.0, 0.0, k, 1.0])
        assert np.allclose(p[:3], lps_to_ras * np.array(d.ImagePositionPatient, float), atol=1e-2)


def test_lge_percent_measured_from_masks(small):
    root = small.parent
    truth = {t["patient_id"]: t for t in _rows(root / "truth.csv")}
    for r in _rows(small):
        lab = _labels(root / r["mask"])
        assert set(np.unique(lab)) <= {0, 1, 2, 3, 4}
        n3, n2 = (lab == 3).sum(), (lab == 2).sum()
        assert float(r["lge_percent"]) == pytest.approx(round(100.0 * n3 / (n2 + n3), 3), abs=1e-9)
        assert float(truth[r["patient_id"]]["basal_lge_percent"]) == pytest.approx(lge_burden(lab[-1]), abs=1e-3)


def test_manifest_loads_with_project_reader(small):
    manifest_mod = pytest.importorskip("lgenet.data.manifest")
    cohort = manifest_mod.load_manifest(small)
    assert len(cohort.patient_ids) == 16


def test_project_dicom_reader_agrees(small):
    io_mod = pytest.importorskip("lgenet.io")
    root = small.parent
    r = _rows(small)[1]
    vol, meta = io_mod.read_volume(root / r["image"])
    dss = _series(root / r["image"])
    assert vol.shape[0] == len(dss)
    assert np.allclose(vol[-1], _real(dss[-1]), rtol=1e-5, atol=1e-3)


# ----------------------------------------------------------------------------- statistics
def test_cohort_statistics_match_targets(large):
    root = large.parent
    rows = _rows(large)
    lge = np.array([float(r["lge_percent"]) for r in rows])
    ev = np.array([int(r["event"]) for r in rows])
    fu = np.array([float(r["followup_years"]) for r in rows])
    lvef = np.array([float(r["lvef"]) for r in rows])
    age = np.array([float(r["age"]) for r in rows])
    sex = np.array([int(r["sex"]) for r in rows])
    assert len(rows) == 116
    assert abs((lge == 0).mean() - 0.57) < 0.03
    high = lge > 5.7
    assert abs(high.mean() - 0.16) < 0.03
    assert abs(ev.mean() - 0.20) < 0.02
    assert ev[high].mean() > ev[~high].mean() + 0.15
    assert 0.5 < lge.mean() < 6.0 and 8.0 < lge[high].mean() < 20.0
    assert 4.0 < np.median(fu) < 6.5 and fu.min() > 0
    assert np.median(fu[ev == 1]) < np.median(fu[ev == 0])
    assert np.median(lvef[high]) < np.median(lvef[lge == 0])
    assert 50 <= np.median(age) <= 62 and 0.25 < sex.mean() < 0.55
    summ = json.loads((root / "cohort_summary.json").read_text())
    assert summ["n_patients"] == 116 and summ["seed"] == 0 and summ["image_size"] == 48
    assert summ["pct_lge_gt_5_7"] == pytest.approx(100 * high.mean(), abs=0.01)
    assert summ["event_rate"] == pytest.approx(ev.mean(), abs=1e-4)
    # the basal frame usually shows the enhancement when the burden is high
    assert summ["pct_gt_5_7_with_lge_on_basal_slice"] >= 60


def test_custom_fractions(tmp_path):
    m = make_cohort(
        tmp_path / "c",
        n_patients=20,
        image_size=32,
        n_slices=4,
        seed=1,
        lge_fraction_none=0.5,
        lge_fraction_high=0.3,
        event_rate=0.25,
        progress=False,
    )
    rows = _rows(m)
    lge = np.array([float(r["lge_percent"]) for r in rows])
    assert (lge == 0).sum() == 10 and (lge > 5.7).sum() == 6
    assert sum(int(r["event"]) for r in rows) == 5
    assert all(len(list((m.parent / r["image"]).iterdir())) == 4 for r in rows)


# ----------------------------------------------------------------------------- determinism
def test_determinism(small, tmp_path):
    again = make_cohort(tmp_path / "same", n_patients=16, image_size=64, seed=3, progress=False)
    other = make_cohort(tmp_path / "other", n_patients=16, image_size=64, seed=4, progress=False)
    assert again.read_bytes() == small.read_bytes()
    assert other.read_bytes() != small.read_bytes()
    a_root, b_root, o_root = small.parent, again.parent, other.parent
    for pid in ("SYN001", "SYN009"):
        fa = sorted((a_root / "dicom" / pid).iterdir())
        fb = sorted((b_root / "dicom" / pid).iterdir())
        assert [f.name for f in fa] == [f.name for f in fb]
        for x, y in zip(fa, fb):
            assert x.read_bytes() == y.read_bytes()
        mask = f"masks/{pid}.nii.gz"
        assert (a_root / mask).read_bytes() == (b_root / mask).read_bytes()
        sa, so = _series(a_root / "dicom" / pid), _series(o_root / "dicom" / pid)
        assert sa[-1].PixelData != so[-1].PixelData
        assert sa[0].SeriesInstanceUID != so[0].SeriesInstanceUID


def test_rle_transfer_syntax(tmp_path):
    a = make_cohort(tmp_path / "le", n_patients=8, image_size=32, seed=2, progress=False)
    b = make_cohort(tmp_path / "rle", n_patients=8, image_size=32, seed=2, progress=False, transfer_syntax="rle")
    assert a.read_bytes() == b.read_bytes()
    sa, sb = _series(a.parent / "dicom/SYN004"), _series(b.parent / "dicom/SYN004")
    assert sb[0].file_meta.TransferSyntaxUID == RLELossless
    for x, y in zip(sa, sb):
        assert x.SOPInstanceUID == y.SOPInstanceUID
        assert np.array_equal(x.pixel_array, y.pixel_array)


# ----------------------------------------------------------------------------- identifiers
def test_fake_identifiers_in_headers(small):
    root = small.parent
    seen = set()
    for i, r in enumerate(_rows(small), start=1):
        pid = r["patient_id"]
        for f in (root / r["image"]).iterdir():
            d = pydicom.dcmread(f, stop_before_pixels=True)
            assert str(d.PatientName) == f"SYNTHETIC^PATIENT{i:04d}"
            assert d.PatientID == f"MRN-SYN-{i:04d}" != pid
            assert re.fullmatch(r"\d{8}", d.PatientBirthDate) and re.fullmatch(r"\d{8}", d.StudyDate)
            assert d.InstitutionName == "Synthetic General Hospital"
            assert d.AccessionNumber and str(d.ReferringPhysicianName)
            for kw in IDENTIFIER_KEYWORDS:
                assert pid not in str(d.get(kw, ""))
            seen.add(d.PatientID)
    assert len(seen) == 16
    assert fake_identifiers(7)["PatientName"] == "SYNTHETIC^PATIENT0007"


def test_blank_and_custom_identifiers(tmp_path):
    m = make_cohort(
        tmp_path / "none", n_patients=8, image_size=32, n_slices=3, seed=0, identifiers=None, progress=False
    )
    d = pydicom.dcmread(next((m.parent / "dicom/SYN001").iterdir()))
    for kw in IDENTIFIER_KEYWORDS:
        assert str(d.get(kw, "")) == ""
    m = make_cohort(
        tmp_path / "dict",
        n_patients=8,
        image_size=32,
        n_slices=3,
        seed=0,
        identifiers={"PatientName": "DOE^JANE{index:02d}", "PatientID": "H-{patient_id}"},
        progress=False,
    )
    d = pydicom.dcmread(next((m.parent / "dicom/SYN002").iterdir()))
    assert str(d.PatientName) == "DOE^JANE02" and d.PatientID == "H-SYN002" and d.InstitutionName == ""
    m = make_cohort(
        tmp_path / "call",
        n_patients=8,
        image_size=32,
        n_slices=3,
        seed=0,
        identifiers=lambda i, pid: {"PatientID": f"X{i * 11}", "InstitutionName": "Elsewhere"},
        progress=False,
    )
    d = pydicom.dcmread(next((m.parent / "dicom/SYN003").iterdir()))
    assert d.PatientID == "X33" and d.InstitutionName == "Elsewhere"


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"n_patients": 4}, ["n_patients", "8", "4"]),
        ({"n_patients": 10.5}, ["n_patients", "10.5"]),
        ({"image_size": 16}, ["image_size", "32", "16"]),
        ({"n_slices": (6, 4)}, ["n_slices", "(6, 4)"]),
        ({"n_slices": 1}, ["n_slices", "3", "1"]),
        ({"lge_fraction_none": 1.2}, ["lge_fraction_none", "between 0.0 and 1.0", "1.2"]),
        ({"lge_fraction_high": -0.1}, ["lge_fraction_high", "-0.1"]),
        (
            {"lge_fraction_none": 0.7, "lge_fraction_high": 0.4},
            ["lge_fraction_none + lge_fraction_high", "at most 1", "1.100"],
        ),
        ({"event_rate": 0.0}, ["event_rate", "strictly between 0.0 and 1.0", "0.0"]),
        ({"event_rate": 1.5}, ["event_rate", "1.5"]),
        ({"seed": -1}, ["seed", "non-negative", "-1"]),
        ({"transfer_syntax": "jpeg"}, ["transfer_syntax", "explicit-le", "rle", "jpeg"]),
        ({"identifiers": 42}, ["identifiers", "fake", "42"]),
        ({"identifiers": {"NotAKeyword": "x"}}, ["identifiers", "NotAKeyword"]),
    ],
)
def test_bad_arguments(tmp_path, kwargs, words):
    with pytest.raises(ConfigError) as ei:
        make_cohort(tmp_path / "x", progress=False, **kwargs)
    msg = str(ei.value)
    for w in words:
        assert w in msg, (w, msg)
    assert not (tmp_path / "x").exists()  # nothing written on a bad argument


def test_non_empty_out_dir(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"not empty.*empty.*overwrite=True"):
        make_cohort(out, n_patients=8, image_size=32, progress=False)
    m = make_cohort(out, n_patients=8, image_size=32, n_slices=3, progress=False, overwrite=True)
    assert m.is_file() and (out / "notes.txt").read_text() == "keep me"
    m2 = make_cohort(out, n_patients=8, image_size=32, n_slices=3, progress=False, overwrite=True)
    assert m2.read_bytes() == m.read_bytes()


def test_progress_bar_runs(tmp_path, capsys):
    make_cohort(tmp_path / "p", n_patients=8, image_size=32, n_slices=3, progress=True)
    assert "synthetic LGE cohort" in capsys.readouterr().err


# ----------------------------------------------------------------------------- montage
def test_basal_montage_renders(small, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    root = small.parent
    rows = sorted(_rows(small), key=lambda r: -float(r["lge_percent"]))[:6]
    fig, axes = plt.subplots(1, len(rows), figsize=(2.2 * len(rows), 2.4))
    for ax, r in zip(axes, rows):
        img = _real(_series(root / r["image"])[-1])
        ax.imshow(img, cmap="gray", vmin=0, vmax=np.percentile(img, 99.5))
        ax.set_title(f"{r['patient_id']} {float(r['lge_percent']):.1f}%", fontsize=7)
        ax.axis("off")
    png = tmp_path / "basal_montage.png"
    fig.savefig(png, dpi=80)
    plt.close(fig)
    with Image.open(png) as im:
        arr = np.asarray(im.convert("L"), dtype=float)
    assert arr.shape[0] > 100 and arr.std() > 10
