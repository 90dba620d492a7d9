"""``import nifti-masks`` pairing beyond identical file names: {id} patterns and a pairs CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lgenet.cli import main
from lgenet.data.importers import CaseError, NiftiMaskImport, import_nifti_masks, read_pairs_csv
from lgenet.errors import ConfigError, DataError

EMIDEC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emidec"


def _case(rng, shape=(32, 30, 4), scar=True):
    """Image + label map (x, y, slices): cavity 1, myocardium 2, scar 3 on slices 1-2."""
    nx, ny, ns = shape
    yy, xx = np.meshgrid(np.arange(ny), np.arange(nx))
    r = np.hypot(xx - nx / 2, yy - ny / 2)
    ang = np.arctan2(yy - ny / 2, xx - nx / 2)
    lab = np.zeros(shape, np.uint8)
    img = np.full(shape, 50.0) + rng.normal(0, 2, shape)
    for k in range(ns):
        lab[..., k][r < 6] = 1
        ring = (r >= 6) & (r < 10)
        lab[..., k][ring] = 2
        img[..., k][ring] = 100 + rng.normal(0, 3, ring.sum())
        if scar and k in (1, 2):
            sc = ring & (ang > 0) & (ang < 1.2)
            lab[..., k][sc] = 3
            img[..., k][sc] = 300
    return img.astype(np.float32), lab


def _save(path: Path, arr) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = nib.Nifti1Image(np.asarray(arr), np.diag([-1.0, -1.0, 1.0, 1.0]))
    im.header.set_zooms((1.5, 1.5, 8.0))
    nib.save(im, str(path))
    return path


@pytest.fixture
def lge_gd(tmp_path):
    """Cases Case01, Case02, Case03 named <id>_LGE.nii.gz / <id>_gd.nii.gz in ONE folder, plus a stray file."""
    rng = np.random.default_rng(0)
    d = tmp_path / "data"
    for cid, scar in (("Case01", True), ("Case02", False), ("Case03", True)):
        img, lab = _case(rng, scar=scar)
        _save(d / f"{cid}_LGE.nii.gz", img)
        _save(d / f"{cid}_gd.nii.gz", lab)
    img, _ = _case(rng)
    _save(d / "Case01_T2.nii.gz", img)  # another sequence: matches neither pattern
    return d


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_patterns_pair_lge_and_gd_names(lge_gd, tmp_path):
    out = import_nifti_masks(
        lge_gd,
        lge_gd,
        tmp_path / "m.csv",
        NiftiMaskImport(image_pattern="{id}_LGE.nii.gz", mask_pattern="{id}_gd.nii.gz"),
    )
    rows = _rows(out)
    assert [r["patient_id"] for r in rows] == ["Case01", "Case02", "Case03"]
    assert Path(rows[0]["image"]).name == "Case01_LGE.nii.gz" and Path(rows[0]["mask"]).name == "Case01_gd.nii.gz"
    assert float(rows[0]["lge_percent"]) > 0 and float(rows[1]["lge_percent"]) == 0.0
    side = json.loads((tmp_path / "m.import.json").read_text())
    assert side["options"]["image_pattern"] == "{id}_LGE.nii.gz"
    ign_img = [Path(p).name for p in side["pairing"]["ignored_images"]]
    ign_msk = [Path(p).name for p in side["pairing"]["ignored_masks"]]
    assert "Case01_T2.nii.gz" in ign_img and "Case01_T2.nii.gz" in ign_msk
    assert len(ign_img) == 4 and len(ign_msk) == 4  # the 3 masks + T2 ; the 3 images + T2


def test_pattern_with_wildcard_and_one_sided_pattern(tmp_path):
    rng = np.random.default_rng(1)
    img, lab = _case(rng)
    _save(tmp_path / "imgs" / "P7_psir_LGE.nii.gz", img)
    _save(tmp_path / "masks" / "P7.nii.gz", lab)  # masks keep the same-name rule
    out = import_nifti_masks(
        tmp_path / "imgs", tmp_path / "masks", tmp_path / "m.csv", NiftiMaskImport(image_pattern="{id}_*_LGE.nii.gz")
    )
    assert [r["patient_id"] for r in _rows(out)] == ["P7"]


def test_pattern_image_without_mask_names_the_case(lge_gd, tmp_path):
    (lge_gd / "Case02_gd.nii.gz").unlink()
    with pytest.raises(
        CaseError,
        match=r"case Case02: image .*Case02_LGE.nii.gz has no mask: no mask file is named "
        r"'Case02_gd.nii.gz' \(--mask-pattern '\{id\}_gd.nii.gz'\)",
    ) as e:
        import_nifti_masks(
            lge_gd,
            lge_gd,
            tmp_path / "m.csv",
            NiftiMaskImport(image_pattern="{id}_LGE.nii.gz", mask_pattern="{id}_gd.nii.gz"),
        )
    assert e.value.case == "Case02"
    assert not (tmp_path / "m.csv").exists()


def test_pattern_mask_without_image_names_the_case(lge_gd, tmp_path):
    (lge_gd / "Case03_LGE.nii.gz").unlink()
    with pytest.raises(
        CaseError,
        match=r"case Case03: mask .*Case03_gd.nii.gz has no image: no image file is named "
        r"'Case03_LGE.nii.gz'",
    ):
        import_nifti_masks(
            lge_gd,
            lge_gd,
            tmp_path / "m.csv",
            NiftiMaskImport(image_pattern="{id}_LGE.nii.gz", mask_pattern="{id}_gd.nii.gz"),
        )


def test_pattern_refusals(lge_gd, tmp_path):
    with pytest.raises(
        ConfigError, match=r"--image-pattern '_LGE.nii.gz' must hold the placeholder \{id\} exactly once"
    ):
        import_nifti_masks(
            lge_gd,
            lge_gd,
            tmp_path / "m.csv",
            NiftiMaskImport(image_pattern="_LGE.nii.gz", mask_pattern="{id}_gd.nii.gz"),
        )
    with pytest.raises(ConfigError, match="must match a file name, not a path"):
        import_nifti_masks(
            lge_gd,
            lge_gd,
            tmp_path / "m.csv",
            NiftiMaskImport(image_pattern="x/{id}_LGE.nii.gz", mask_pattern="{id}_gd.nii.gz"),
        )
    with pytest.raises(DataError, match=r"images: no file matches --image-pattern '\{id\}_PSIR.nii.gz' \(7 file\(s\)"):
        import_nifti_masks(
            lge_gd,
            lge_gd,
            tmp_path / "m.csv",
            NiftiMaskImport(image_pattern="{id}_PSIR.nii.gz", mask_pattern="{id}_gd.nii.gz"),
        )
    with pytest.raises(ConfigError, match="matches both --image-pattern"):
        import_nifti_masks(
            lge_gd,
            lge_gd,
            tmp_path / "m.csv",
            NiftiMaskImport(image_pattern="{id}.nii.gz", mask_pattern="{id}_gd.nii.gz"),
        )
    with pytest.raises(DataError, match="two images share case ID 'Case01'"):
        import_nifti_masks(
            lge_gd,
            lge_gd,
            tmp_path / "m.csv",
            NiftiMaskImport(image_pattern="{id}_*.nii.gz", mask_pattern="{id}_gd.nii.gz"),
        )


def _pairs(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "lists" / "pairs.csv"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(lines) + "\n")
    return p


def test_pairs_csv_relative_paths(lge_gd, tmp_path):
    p = _pairs(
        tmp_path,
        [
            "case_id,image,mask,comment",
            "P1,../data/Case03_LGE.nii.gz,../data/Case03_gd.nii.gz,x",
            f"P2,{lge_gd / 'Case02_LGE.nii.gz'},../data/Case02_gd.nii.gz,",
        ],
    )
    assert [c for c, _, _ in read_pairs_csv(p)] == ["P1", "P2"]
    out = import_nifti_masks(None, None, tmp_path / "m.csv", NiftiMaskImport(pairs_csv=p))
    rows = _rows(out)
    assert [r["patient_id"] for r in rows] == ["P1", "P2"]
    assert Path(rows[0]["image"]) == (lge_gd / "Case03_LGE.nii.gz").resolve()
    side = json.loads((tmp_path / "m.import.json").read_text())
    assert side["options"]["pairs_csv"] == str(p) and side["options"]["images"] is None


def test_pairs_csv_refusals(lge_gd, tmp_path):
    with pytest.raises(DataError, match=r"pairs file .*nope.csv does not exist"):
        read_pairs_csv(tmp_path / "nope.csv")
    p = _pairs(tmp_path, ["case_id,image", "P1,../data/Case01_LGE.nii.gz"])
    with pytest.raises(DataError, match=r"pairs file .*pairs.csv lacks column\(s\) \['mask'\]"):
        read_pairs_csv(p)
    p = _pairs(tmp_path, ["case_id,image,mask", "P1,../data/Case01_LGE.nii.gz,../data/Case09_gd.nii.gz"])
    with pytest.raises(
        DataError,
        match=r"pairs file .*pairs.csv, line 2 \(case P1\): mask ../data/Case09_gd.nii.gz "
        r"does not exist \(relative paths are read from",
    ):
        read_pairs_csv(p)
    p = _pairs(
        tmp_path,
        [
            "case_id,image,mask",
            "P1,../data/Case01_LGE.nii.gz,../data/Case01_gd.nii.gz",
            "P1,../data/Case02_LGE.nii.gz,../data/Case02_gd.nii.gz",
        ],
    )
    with pytest.raises(DataError, match=r"line 3: case_id P1 already appears on line 2"):
        read_pairs_csv(p)
    p = _pairs(tmp_path, ["case_id,image,mask", "P1,../data/Case01_LGE.nii.gz,"])
    with pytest.raises(DataError, match=r"line 2: empty 'mask'"):
        read_pairs_csv(p)
    p = _pairs(tmp_path, ["case_id,image,mask", "P1,../data/Case01_LGE.nii.gz,../data/Case01_gd.nii.gz"])
    with pytest.raises(ConfigError, match="give either pairs_csv, or images and masks"):
        import_nifti_masks(lge_gd, lge_gd, tmp_path / "m.csv", NiftiMaskImport(pairs_csv=p))


def test_cli_import_patterns_and_pairs(lge_gd, tmp_path, capsys):
    rc = main(
        [
            "import",
            "nifti-masks",
            "--images",
            str(lge_gd),
            "--masks",
            str(lge_gd),
            "--image-pattern",
            "{id}_LGE.nii.gz",
            "--mask-pattern",
            "{id}_gd.nii.gz",
            "--out",
            str(tmp_path / "m.csv"),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "ignored 4 image file(s) that do not match --image-pattern '{id}_LGE.nii.gz'" in out
    assert "ignored 4 mask file(s) that do not match --mask-pattern '{id}_gd.nii.gz'" in out
    assert "patients 3" in out
    (lge_gd / "Case02_gd.nii.gz").unlink()
    rc = main(
        [
            "import",
            "nifti-masks",
            "--images",
            str(lge_gd),
            "--masks",
            str(lge_gd),
            "--image-pattern",
            "{id}_LGE.nii.gz",
            "--mask-pattern",
            "{id}_gd.nii.gz",
            "--out",
            str(tmp_path / "m2.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "case Case02: image" in err and "Traceback" not in err
    p = _pairs(tmp_path, ["case_id,image,mask", "P1,../data/Case01_LGE.nii.gz,../data/Case01_gd.nii.gz"])
    assert main(["import", "nifti-masks", "--pairs", str(p), "--out", str(tmp_path / "m3.csv")]) == 0
    assert [r["patient_id"] for r in _rows(tmp_path / "m3.csv")] == ["P1"]
    capsys.readouterr()
    assert (
        main(["import", "nifti-masks", "--pairs", str(p), "--images", str(lge_gd), "--out", str(tmp_path / "x.csv")])
        == 2
    )
    assert "give either --pairs, or --images and --masks" in capsys.readouterr().err
    assert main(["import", "nifti-masks", "--out", str(tmp_path / "x.csv")]) == 2
    assert "give --images and --masks" in capsys.readouterr().err


@pytest.mark.emidec
def test_emidec_pairs_csv(tmp_path):
    if not (EMIDEC / "clinical.csv").is_file():
        pytest.skip(f"EMIDEC not found at {EMIDEC}; these tests use the shared copy beside the repo")
    cases = sorted(p.name for p in EMIDEC.iterdir() if p.is_dir() and p.name.startswith("Case_"))[:2]
    lines = ["case_id,image,mask"] + [
        f"{c},{EMIDEC / c / 'Images' / (c + '.nii.gz')},{EMIDEC / c / 'Contours' / (c + '.nii.gz')}" for c in cases
    ]
    out = import_nifti_masks(None, None, tmp_path / "m.csv", NiftiMaskImport(pairs_csv=_pairs(tmp_path, lines)))
    rows = _rows(out)
    assert [r["patient_id"] for r in rows] == cases
    ref = (
        {r["case_id"]: r for r in _rows(EMIDEC / "label_summary.csv")}
        if (EMIDEC / "label_summary.csv").is_file()
        else {}
    )
    for r in rows:
        if r["patient_id"] in ref:
            assert float(r["lge_percent"]) == pytest.approx(100 * float(ref[r["patient_id"]]["burden_whole"]), abs=1e-3)
