"""LGE quantification: n-SD and FWHM on phantoms with a known enhanced fraction, files, CLI, EMIDEC."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lgenet.cli import main
from lgenet.errors import ConfigError, DataError, ReaderError
from lgenet.quantify import (
    MaskLayout,
    QuantifySettings,
    auto_remote_mask,
    method_names,
    quantify,
    quantify_files,
    quantify_manifest,
)

EMIDEC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emidec"


def phantom(
    n_slices=6,
    size=96,
    noise=4.0,
    scar_slices=(1, 2, 3, 4),
    arc=(0.3, 1.5),
    seed=0,
    remote=100.0,
    scar=300.0,
    offset=0.0,
):
    """(S, H, W) short-axis stack: myocardial ring, scar = an arc of the ring on some slices.

    Returns image, myocardium mask, true scar mask.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2 + 0.5, xx - size / 2 + 0.5)
    ang = np.arctan2(yy - size / 2 + 0.5, xx - size / 2 + 0.5)
    ring = (r >= 18) & (r < 26)
    arc_m = ring & (ang > arc[0]) & (ang < arc[1])
    img = np.zeros((n_slices, size, size)) + 20.0
    myo = np.zeros_like(img, dtype=bool)
    truth = np.zeros_like(myo)
    for k in range(n_slices):
        img[k][r < 18] = 250.0  # bright blood pool
        img[k][ring] = remote
        myo[k] = ring
        if k in scar_slices:
            img[k][arc_m] = scar
            truth[k] = arc_m
    img = img + offset + rng.normal(0, noise, img.shape)
    return img, myo, truth


def true_pct(myo, truth):
    return 100.0 * truth.sum() / myo.sum()


# ------------------------------------------------------------------------------ phantoms
@pytest.mark.parametrize("noise", [0.0, 4.0, 10.0])
def test_fwhm_and_5sd_recover_known_fraction(noise):
    img, myo, truth = phantom(noise=noise)
    want = true_pct(myo, truth)
    assert 5 < want < 25
    r = quantify(img, myo, method="all")
    assert set(r.methods) == {"nsd2", "nsd3", "nsd5", "nsd6", "fwhm"}
    assert r["fwhm"].percent == pytest.approx(want, abs=1.0)
    assert r["nsd5"].percent == pytest.approx(want, abs=1.0)
    assert r["nsd6"].percent == pytest.approx(want, abs=1.0)
    # per slice too
    per_true = 100 * truth.reshape(6, -1).sum(1) / myo.reshape(6, -1).sum(1)
    np.testing.assert_allclose(r["fwhm"].percent_per_slice, per_true, atol=1.0)
    np.testing.assert_allclose(r["nsd5"].percent_per_slice, per_true, atol=1.0)
    # masks: inside the myocardium, overlapping the truth
    for m in r.methods.values():
        assert not (m.mask & ~myo).any()
    assert (r["fwhm"].mask & truth).sum() / truth.sum() > 0.99


def test_2sd_overestimates_on_a_noisy_phantom():
    img, myo, truth = phantom(noise=10.0)
    r = quantify(img, myo, method="nsd", n_sd=(2, 5))
    assert set(r.methods) == {"nsd2", "nsd5"}
    assert r["nsd2"].percent > r["nsd5"].percent + 1.0  # Gaussian tail of remote above 2 SD


def test_fwhm_offset_invariance():
    """Images stored on an intensity offset (EMIDEC: ~2048) give the same remote-baseline FWHM."""
    a, myo, truth = phantom(noise=4.0, seed=2)
    b, _, _ = phantom(noise=4.0, seed=2, offset=2048.0)
    ra, rb = quantify(a, myo, method="fwhm"), quantify(b, myo, method="fwhm")
    np.testing.assert_array_equal(ra["fwhm"].mask, rb["fwhm"].mask)
    # the textbook "50 % of max" breaks with an offset: it calls the whole myocardium enhanced
    rz = quantify(b, myo, method="fwhm", fwhm_baseline="zero")
    assert rz["fwhm"].percent > 95


def test_auto_remote_is_normal_myocardium():
    img, myo, truth = phantom(noise=4.0)
    rem = auto_remote_mask(img, myo)
    assert rem.any() and not (rem & truth).any() and not (rem & ~myo).any()
    # 4 sectors on the apical third (slices 0, 1 of 6), 6 elsewhere: an apical sector is larger
    assert rem[0].sum() > rem[3].sum() * 1.3


def test_given_remote_mask_and_2d_input():
    img, myo, truth = phantom(noise=4.0, n_slices=1, scar_slices=(0,))
    remote = myo & ~truth
    r2d = quantify(img[0], myo[0], remote=remote[0], method="all")
    assert r2d["nsd5"].mask.shape == img[0].shape
    assert r2d["nsd5"].percent == pytest.approx(true_pct(myo, truth), abs=1.0)
    assert r2d.remote_rule == "given mask"


def test_slice_without_myocardium_and_spacing():
    img, myo, truth = phantom(noise=4.0)
    myo[5] = False
    truth[5] = False
    r = quantify(img, myo, method="fwhm", spacing=(10.0, 1.5, 1.5))
    assert np.isnan(r["fwhm"].percent_per_slice[5]) and np.isnan(r["fwhm"].threshold[5])
    assert r["fwhm"].enhanced_ml == pytest.approx(r["fwhm"].enhanced_pixels * 10 * 1.5 * 1.5 / 1000)
    s = r.summary()
    assert s["methods"]["fwhm"]["percent_per_slice"][5] is None
    json.dumps(s)  # JSON-serialisable


def test_quantify_refusals():
    img, myo, _ = phantom()
    with pytest.raises(DataError, match="myocardium mask is empty"):
        quantify(img, np.zeros_like(myo))
    with pytest.raises(ConfigError, match="shape"):
        quantify(img, myo[:, :-1])
    with pytest.raises(ConfigError, match="'method' must be one of"):
        quantify(img, myo, method="otsu")
    with pytest.raises(ConfigError, match="n_sd"):
        quantify(img, myo, method="nsd", n_sd=(-1,))
    with pytest.raises(DataError, match="remote mask is empty"):
        quantify(img, myo, remote=np.zeros_like(myo))
    assert method_names("nsd", (2, 2.5)) == ["nsd2", "nsd2.5"]


# ------------------------------------------------------------------------------ files and CLI
def _write_pair(tmp_path: Path, name="P1", basal_end="last", noise=4.0):
    img, myo, truth = phantom(noise=noise)  # (S, H, W) apex->base
    lab = np.where(truth, 3, np.where(myo, 2, 0)).astype(np.uint8)
    vol_img = np.moveaxis(img, 0, 2)
    vol_lab = np.moveaxis(lab, 0, 2)
    if basal_end == "first":
        vol_img, vol_lab = vol_img[:, :, ::-1], vol_lab[:, :, ::-1]
    aff = np.diag([-1.0, -1.0, 1.0, 1.0])
    ip, mp = tmp_path / f"{name}_img.nii.gz", tmp_path / f"{name}_lab.nii.gz"
    im = nib.Nifti1Image(vol_img.astype(np.float32), aff)
    im.header.set_zooms((1.25, 1.25, 8.0))
    nib.save(im, str(ip))
    nib.save(nib.Nifti1Image(vol_lab, aff), str(mp))
    return ip, mp, vol_lab


@pytest.mark.parametrize("basal_end", ["last", "first"])
def test_quantify_files_writes_masks_on_the_input_grid(tmp_path, basal_end):
    ip, mp, vol_lab = _write_pair(tmp_path, basal_end=basal_end)
    s = quantify_files(ip, mp, tmp_path / "out", layout=MaskLayout(basal_end=basal_end), case_id="P1")
    truth_pct = 100 * (vol_lab == 3).sum() / (vol_lab >= 2).sum()
    assert s["percent"]["fwhm"] == pytest.approx(truth_pct, abs=1.0)
    assert s["spacing"] == [8.0, 1.25, 1.25]
    out = nib.load(s["files"]["fwhm"])
    ref = nib.load(str(ip))
    assert out.shape == ref.shape and out.get_data_dtype() == np.uint8
    np.testing.assert_allclose(out.affine, ref.affine)
    assert out.header.get_zooms() == ref.header.get_zooms()
    m = np.asarray(out.dataobj)
    assert ((m == 1) & (vol_lab == 3)).sum() / (vol_lab == 3).sum() > 0.99  # aligned with the input voxels
    assert not ((m == 1) & (vol_lab < 2)).any()
    js = json.loads(Path(s["files"]["summary"]).read_text())
    assert js["slice_order"] == "apex -> base" and len(js["methods"]["nsd5"]["percent_per_slice"]) == 6
    # per-slice order is apex->base whatever the storage order: slices 1..4 carry scar
    assert [v > 1 for v in js["methods"]["nsd5"]["percent_per_slice"]] == [False, True, True, True, True, False]


def test_quantify_files_refusals(tmp_path):
    ip, mp, _ = _write_pair(tmp_path)
    other = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 6), np.uint8), np.eye(4)), str(other))
    with pytest.raises(
        DataError, match=r"case P1_img: mask grid \(10, 10, 6\) .* differs from image grid \(96, 96, 6\)"
    ):
        quantify_files(ip, other, tmp_path / "o")
    with pytest.raises(DataError, match=r"case P1_img: the mask .* has no myocardium"):
        quantify_files(ip, mp, tmp_path / "o", layout=MaskLayout(myo_labels=(7,)))
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(ReaderError, match=r"case X: mask .*notes.txt is not a NIfTI file"):
        quantify_files(ip, txt, tmp_path / "o", case_id="X")


def test_cli_quantify_and_manifest_mode(tmp_path, capsys):
    ip, mp, _ = _write_pair(tmp_path)
    assert main(["quantify", str(ip), str(mp), "--out", str(tmp_path / "q")]) == 0
    out = capsys.readouterr().out
    assert "fwhm" in out and "nsd5" in out
    assert (tmp_path / "q" / "P1_img_nsd5.nii.gz").is_file()
    man = tmp_path / "cohort.csv"
    man.write_text(f"patient_id,image,mask,event\nP1,{ip.name},{mp.name},1\n")
    assert main(["quantify", "--manifest", str(man), "--out", str(tmp_path / "qm")]) == 2
    assert "--label-method" in capsys.readouterr().err
    assert main(["quantify", "--manifest", str(man), "--out", str(tmp_path / "qm"), "--label-method", "nsd5"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "qm" / "cohort.quantified.csv")))
    assert rows[0]["lge_percent"] == rows[0]["lge_percent_nsd5"] and rows[0]["event"] == "1"
    assert rows[0]["lge_percent_source"] == "nsd5 (auto remote)"
    with pytest.raises(ConfigError, match="label_method"):
        quantify_manifest(man, tmp_path / "qm", label_method="nsd4")


# ------------------------------------------------------------------------------ label values
def _csv_rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _relabel(mp: Path, out: Path, mapping: dict[int, int], extra: tuple[int, int] | None = None) -> Path:
    """Copy label map ``mp`` to ``out`` with values renamed (``mapping``) and one voxel per ``extra`` value."""
    im = nib.load(str(mp))
    lab = np.asarray(im.dataobj).copy()
    new = lab.copy()
    for a, b in mapping.items():
        new[lab == a] = b
    if extra is not None:
        value, n = extra
        new.reshape(-1)[:n] = value  # corner voxels: background in the phantom
    nib.save(nib.Nifti1Image(new.astype(np.uint8), im.affine), str(out))
    return out


def test_quantify_files_refuses_undeclared_label_values(tmp_path):
    ip, mp, _ = _write_pair(tmp_path)
    bad = _relabel(mp, tmp_path / "bad.nii.gz", {}, extra=(7, 5))
    with pytest.raises(
        DataError,
        match=r"case P1_img: mask .*bad.nii.gz holds label value\(s\) outside the declared "
        r"ones: 7 \(5 voxels\); declared: myocardium \[2, 3, 4\] \(--myo-labels\), "
        r"other \[0, 1\] \(--other-labels\)\. Declare them with --other-labels "
        r"\(e.g. --other-labels 0,1,7\)",
    ):
        quantify_files(ip, bad, tmp_path / "o")
    s = quantify_files(ip, bad, tmp_path / "o", layout=MaskLayout(other_labels=(0, 1, 7)))
    assert s["labels_found"]["7"] == 5 and s["other_labels"] == [0, 1, 7]
    with pytest.raises(ConfigError, match=r"--other-labels \[0, 2\] overlap --myo-labels"):
        quantify_files(ip, mp, tmp_path / "o", layout=MaskLayout(other_labels=(0, 2)))
    with pytest.raises(ConfigError, match="--remote-labels needs --remote MASK"):
        quantify_files(ip, mp, tmp_path / "o", settings=QuantifySettings(remote_labels=(2,)))


def test_cli_quantify_other_labels_single_and_manifest(tmp_path, capsys):
    ip, mp, _ = _write_pair(tmp_path)
    bad = _relabel(mp, tmp_path / "bad.nii.gz", {}, extra=(7, 3))
    assert main(["quantify", str(ip), str(bad), "--out", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err
    assert "bad.nii.gz holds label value(s) outside the declared ones: 7 (3 voxels)" in err and "Traceback" not in err
    assert main(["quantify", str(ip), str(bad), "--out", str(tmp_path / "q"), "--other-labels", "0,1,7"]) == 0
    assert "7 (3)" in capsys.readouterr().out  # the values found are reported
    man = tmp_path / "cohort.csv"
    man.write_text(f"patient_id,image,mask\nP1,{ip.name},{bad.name}\n")
    assert main(["quantify", "--manifest", str(man), "--out", str(tmp_path / "qm"), "--label-method", "fwhm"]) == 2
    assert "case P1: mask" in capsys.readouterr().err
    assert (
        main(
            [
                "quantify",
                "--manifest",
                str(man),
                "--out",
                str(tmp_path / "qm"),
                "--label-method",
                "fwhm",
                "--other-labels",
                "0,7",
            ]
        )
        == 0
    )


# ------------------------------------------------------------------------------ manifest options
def test_cli_quantify_manifest_refuses_single_remote_mask(tmp_path, capsys):
    ip, mp, _ = _write_pair(tmp_path)
    man = tmp_path / "cohort.csv"
    man.write_text(f"patient_id,image,mask\nP1,{ip.name},{mp.name}\n")
    rc = main(
        [
            "quantify",
            "--manifest",
            str(man),
            "--out",
            str(tmp_path / "qm"),
            "--label-method",
            "nsd5",
            "--remote",
            str(mp),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "cannot apply to every row" in err and "'remote' column" in err
    assert not (tmp_path / "qm").exists()
    rc = main(
        [
            "quantify",
            "--manifest",
            str(man),
            "--out",
            str(tmp_path / "qm"),
            "--label-method",
            "nsd5",
            "--remote-labels",
            "2",
        ]
    )
    assert rc == 2 and "--remote-labels needs remote masks" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="cannot apply to every row"):
        quantify_manifest(man, tmp_path / "qm", label_method="nsd5", remote=str(mp))
    assert main(["quantify", str(ip), str(mp), "--out", str(tmp_path / "q"), "--label-method", "nsd5"]) == 2
    assert "--label-method only applies with --manifest" in capsys.readouterr().err


def test_quantify_manifest_remote_column(tmp_path):
    ip, mp, _ = _write_pair(tmp_path)
    man = tmp_path / "cohort.csv"
    man.write_text(f"patient_id,image,mask,remote\nP1,{ip.name},{mp.name},{mp.name}\nP2,{ip.name},{mp.name},\n")
    out = quantify_manifest(man, tmp_path / "qm", label_method="nsd2", settings=QuantifySettings(remote_labels=(2,)))
    rows = _csv_rows(out)
    assert rows[0]["lge_percent_source"] == "nsd2 (given remote mask)"
    assert rows[1]["lge_percent_source"] == "nsd2 (auto remote)" and rows[1]["remote"] == ""
    assert Path(rows[0]["remote"]).is_absolute()
    ref = quantify_files(
        ip, mp, tmp_path / "ref", settings=QuantifySettings(remote_labels=(2,)), remote=mp, case_id="R"
    )
    assert float(rows[0]["lge_percent"]) == pytest.approx(round(ref["percent"]["nsd2"], 4))


def test_quantify_manifest_method_restricts_and_must_hold_label_method(tmp_path, capsys):
    ip, mp, _ = _write_pair(tmp_path)
    man = tmp_path / "cohort.csv"
    man.write_text(f"patient_id,image,mask\nP1,{ip.name},{mp.name}\n")
    rc = main(
        ["quantify", "--manifest", str(man), "--out", str(tmp_path / "qm"), "--label-method", "fwhm", "--method", "nsd"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--label-method fwhm is not computed by --method nsd" in err
    assert (
        main(
            [
                "quantify",
                "--manifest",
                str(man),
                "--out",
                str(tmp_path / "qm"),
                "--label-method",
                "nsd3",
                "--method",
                "nsd",
                "--n-sd",
                "3,5",
            ]
        )
        == 0
    )
    rows = _csv_rows(tmp_path / "qm" / "cohort.quantified.csv")
    assert {c for c in rows[0] if c.startswith("lge_percent_") and not c.endswith("_source")} == {
        "lge_percent_nsd3",
        "lge_percent_nsd5",
    }
    side = json.loads((tmp_path / "qm" / "cohort.quantified.import.json").read_text())
    assert side["quantify"]["methods"] == ["nsd3", "nsd5"] and side["quantify"]["method"] == "nsd"
    with pytest.raises(ConfigError, match="is not computed by --method fwhm"):
        quantify_manifest(man, tmp_path / "qm", label_method="nsd5", settings=QuantifySettings(method="fwhm"))


# ------------------------------------------------------------------------------ import sidecar
def _import_unusual(tmp_path: Path, basal_end: str = "last"):
    """An imported manifest whose mask uses scar = 5 and cavity = 7 (declared at import)."""
    from lgenet.data.importers import NiftiMaskImport, import_nifti_masks

    ip, mp, _ = _write_pair(tmp_path, basal_end=basal_end)
    odd = _relabel(mp, tmp_path / "odd.nii.gz", {3: 5}, extra=(7, 4))
    d = tmp_path / "in"
    d.mkdir()
    (d / "img").mkdir()
    (d / "lab").mkdir()
    ip.rename(d / "img" / "P1.nii.gz")
    odd.rename(d / "lab" / "P1.nii.gz")
    man = import_nifti_masks(
        d / "img",
        d / "lab",
        tmp_path / "cohort.csv",
        NiftiMaskImport(myo_labels=(2, 5), lge_labels=(5,), other_labels=(0, 7), basal_end=basal_end),
    )
    return man, d / "img" / "P1.nii.gz", d / "lab" / "P1.nii.gz"


def test_quantify_manifest_reads_import_sidecar(tmp_path, capsys):
    man, ip, mp = _import_unusual(tmp_path, basal_end="first")
    assert main(["quantify", "--manifest", str(man), "--out", str(tmp_path / "q1"), "--label-method", "fwhm"]) == 0
    out = capsys.readouterr().out
    assert (
        "from the manifest's sidecar cohort.import.json: myo_labels [2, 5], other_labels [0, 7], slice_axis 2, "
        "basal_end first"
    ) in out
    ref = quantify_files(
        ip, mp, tmp_path / "ref", layout=MaskLayout(myo_labels=(2, 5), other_labels=(0, 7), basal_end="first")
    )
    row = _csv_rows(tmp_path / "q1" / "cohort.quantified.csv")[0]
    assert float(row["lge_percent"]) == pytest.approx(round(ref["percent"]["fwhm"], 4))
    assert float(row["lge_percent"]) == pytest.approx(float(row["lge_percent_original"]), abs=1.0)
    js = json.loads((tmp_path / "q1" / "cases" / "P1_quantify.json").read_text())
    assert js["basal_end"] == "first" and js["myo_labels"] == [2, 5]
    # the quantified manifest carries a sidecar: a second command picks the labels up too
    side = json.loads((tmp_path / "q1" / "cohort.quantified.import.json").read_text())
    assert side["options"]["myo_labels"] == [2, 5] and side["options"]["other_labels"] == [0, 7]
    assert side["options"]["lge_labels"] == [5] and side["label_sources"]["myo_labels"] == "sidecar"
    q1 = tmp_path / "q1" / "cohort.quantified.csv"
    assert main(["quantify", "--manifest", str(q1), "--out", str(tmp_path / "q2"), "--label-method", "nsd5"]) == 0
    assert "from the manifest's sidecar cohort.quantified.import.json" in capsys.readouterr().out
    row2 = _csv_rows(tmp_path / "q2" / "cohort.quantified.quantified.csv")[0]
    assert row2["lge_percent_original"] == row["lge_percent"]
    assert row2["lge_percent_original_source"] == "fwhm (auto remote)"


def test_quantify_manifest_explicit_labels_win_and_contradictions(tmp_path, capsys):
    man, _, _ = _import_unusual(tmp_path)
    # --myo-labels alone would make 7 both other (sidecar) and myocardium: refused, names the sidecar
    rc = main(
        [
            "quantify",
            "--manifest",
            str(man),
            "--out",
            str(tmp_path / "q"),
            "--label-method",
            "fwhm",
            "--myo-labels",
            "2,5,7",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--myo-labels contradicts other_labels [0, 7] read from" in err
    assert "cohort.import.json; pass --other-labels as well" in err
    # explicit values win, with a note
    rc = main(
        [
            "quantify",
            "--manifest",
            str(man),
            "--out",
            str(tmp_path / "q"),
            "--label-method",
            "fwhm",
            "--myo-labels",
            "2,5,7",
            "--other-labels",
            "0",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "note: --myo-labels [2, 5, 7] overrides myo_labels [2, 5] of cohort.import.json" in out
    assert "note: --other-labels [0] overrides other_labels [0, 7]" in out
    side = json.loads((tmp_path / "q" / "cohort.quantified.import.json").read_text())
    assert side["options"]["myo_labels"] == [2, 5, 7] and side["label_sources"]["myo_labels"] == "given"
    # no sidecar: defaults, said so; the mask's 5 and 7 are then undeclared and refused
    (tmp_path / "cohort.import.json").unlink()
    rc = main(["quantify", "--manifest", str(man), "--out", str(tmp_path / "q3"), "--label-method", "fwhm"])
    cap = capsys.readouterr()
    assert "no sidecar cohort.import.json beside the manifest; using defaults" in cap.out
    assert rc == 2 and "holds label value(s) outside the declared ones: 5 (" in cap.err
    (tmp_path / "cohort.import.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"sidecar .*cohort.import.json of manifest .* could not be read as JSON"):
        quantify_manifest(man, tmp_path / "q4", label_method="fwhm")


def test_quantified_manifest_labels_every_burden_column(tmp_path):
    from lgenet.data.importers import import_nifti_masks
    from lgenet.data.manifest import load_manifest

    ip, mp, _ = _write_pair(tmp_path)
    d = tmp_path / "in"
    for sub, f in (("img", ip), ("lab", mp)):
        (d / sub).mkdir(parents=True)
        f.rename(d / sub / "P1.nii.gz")
    man = import_nifti_masks(d / "img", d / "lab", tmp_path / "cohort.csv")
    before = _csv_rows(man)[0]
    out = quantify_manifest(man, tmp_path / "q", label_method="nsd5")
    row = _csv_rows(out)[0]
    burden = [c for c in row if c.startswith("lge_percent") and not c.endswith("_source")]
    assert set(burden) == {
        "lge_percent",
        "lge_percent_basal",
        "lge_percent_original",
        "lge_percent_nsd2",
        "lge_percent_nsd3",
        "lge_percent_nsd5",
        "lge_percent_nsd6",
        "lge_percent_fwhm",
    }
    for c in burden:
        assert row[f"{c}_source"], c
    assert row["lge_percent_source"] == row["lge_percent_nsd5_source"] == "nsd5 (auto remote)"
    assert row["lge_percent_basal"] == before["lge_percent_basal"]  # the expert basal value, not the rule
    assert row["lge_percent_basal_source"] == "mask labels [3, 4] / [2, 3, 4], basal slice (import nifti-masks)"
    assert row["lge_percent_original_source"] == "mask labels [3, 4] / [2, 3, 4], whole LV (import nifti-masks)"
    side = json.loads((tmp_path / "q" / "cohort.quantified.import.json").read_text())
    assert "lge_percent_basal" in side["definitions"] and "lge_percent_original" in side["definitions"]
    coh = load_manifest(out, check_files=False)  # text columns are covariates
    assert "lge_percent_basal_source" in coh.covariate_names
    # a manifest without a sidecar: the source says so
    man.with_name("cohort.import.json").unlink()
    row = _csv_rows(quantify_manifest(man, tmp_path / "q2", label_method="fwhm"))[0]
    assert row["lge_percent_basal_source"] == "input manifest (source not recorded)"


# ------------------------------------------------------------------------------ EMIDEC
@pytest.mark.emidec
def test_emidec_case(tmp_path):
    case = "Case_P002"
    ip = EMIDEC / case / "Images" / f"{case}.nii.gz"
    mp = EMIDEC / case / "Contours" / f"{case}.nii.gz"
    if not ip.is_file():
        pytest.skip(f"EMIDEC not found at {EMIDEC}; these tests use the shared copy beside the repo")
    s = quantify_files(ip, mp, tmp_path)
    pct = s["percent"]
    assert pct["nsd2"] > pct["nsd3"] > pct["nsd5"] >= pct["nsd6"]
    assert all(0 <= v <= 100 for v in pct.values())
    lab = np.asarray(nib.load(str(mp)).dataobj)
    for name in ("nsd2", "nsd5", "fwhm"):
        m = np.asarray(nib.load(s["files"][name]).dataobj)
        assert m.shape == lab.shape
        assert not ((m == 1) & ~np.isin(lab, (2, 3, 4))).any()
    # the enhancement found by 2-SD with the expert's normal myocardium as remote overlaps the expert scar
    img = np.moveaxis(np.asarray(nib.load(str(ip)).dataobj), 2, 0)
    labs = np.moveaxis(lab, 2, 0)
    r = quantify(img, np.isin(labs, (2, 3, 4)), method="nsd", n_sd=2, remote=labs == 2)
    scar = np.isin(labs, (3, 4))
    dice = 2 * (r["nsd2"].mask & scar).sum() / (r["nsd2"].mask.sum() + scar.sum())
    assert dice > 0.4
