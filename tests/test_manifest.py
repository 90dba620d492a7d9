"""Cohort manifest: parsing, labels, covariates, writing, and the wording of every problem."""

from __future__ import annotations

import math
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from dicom_helpers import make_image, save, write_sax_series
from lgenet.data.manifest import (
    Cohort,
    Record,
    check_images,
    load_manifest,
    write_manifest,
)
from lgenet.errors import ConfigError, ManifestError

HEADER = "patient_id,image,slice,lge_percent,event,followup_years,mask,age,sex"


@pytest.fixture()
def site(tmp_path) -> Path:
    """A study folder with one image of each kind, and masks."""
    img = tmp_path / "img"
    img.mkdir()
    for i in range(1, 7):
        Image.fromarray(np.full((8, 8), i * 10, np.uint8)).save(img / f"P{i:03d}.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img / "mask1.png")
    save(make_image(np.ones((8, 8), np.uint16)), img / "P007.dcm")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.int16), np.eye(4)), str(img / "P008.nii.gz"))
    write_sax_series(img / "P009_series", 3, size=(8, 8))
    (img / "notes.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "protocol.txt").write_text("not an image")
    return tmp_path


def _write(site: Path, *lines: str, header: str = HEADER, name="cohort.csv") -> Path:
    path = site / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


GOOD = [
    "P001,img/P001.png,basal,2.0,0,5.0,img/mask1.png,61,F",
    "P002,img/P002.png,,12.5,1,1.5,,55,M",
    "P003,img/P003.png,0,5.7,0,,,70,M",
    "P004,img/P004.png,-1,5.8,true,3,,48,F",
    "P007,img/P007.dcm,basal,,FALSE,4.0,,,",
    "P008,img/P008.nii.gz,2,30,1,0,,66,M",
    "P009,img/P009_series,basal,0,0,2.5,,59,F",
]


def _problems(path, **kw) -> str:
    with pytest.raises(ManifestError) as exc:
        load_manifest(path, **kw)
    return str(exc.value)


# ----------------------------------------------------------------------------- good manifests
def test_good_manifest_loads_with_labels_and_paths(site):
    cohort = load_manifest(_write(site, *GOOD), tasks=("lge", "event"))
    assert isinstance(cohort, Cohort) and len(cohort.records) == 7
    r1 = cohort.records[0]
    assert isinstance(r1, Record) and r1.row == 1 and r1.line == 2
    assert r1.image == (site / "img" / "P001.png").resolve() and r1.mask == (site / "img" / "mask1.png").resolve()
    assert r1.covariates == {"age": "61", "sex": "F"}
    assert [r.slice for r in cohort.records] == ["basal", "basal", 0, -1, "basal", 2, "basal"]
    # lge: strictly above 5.7 %; P007 has no lge value
    assert cohort.labels("lge") == {"P001": 0, "P002": 1, "P003": 0, "P004": 1, "P008": 1, "P009": 0}
    assert cohort.labels("event") == {
        "P001": 0,
        "P002": 1,
        "P003": 0,
        "P004": 1,
        "P007": 0,
        "P008": 1,
        "P009": 0,
    }
    assert cohort.patients("lge") == ["P001", "P002", "P003", "P004", "P008", "P009"]
    assert cohort.available_tasks == ("lge", "event")
    assert cohort.followup_years()["P008"] == 0.0 and "P003" not in cohort.followup_years()
    assert cohort.covariate_names == ("age", "sex")
    assert cohort.records_for("P002")[0].lge_percent == 12.5


def test_threshold_is_a_parameter(site):
    cohort = load_manifest(_write(site, *GOOD), lge_threshold=20)
    assert cohort.labels("lge")["P002"] == 0 and cohort.labels("lge")["P008"] == 1


def test_bom_absolute_paths_minimal_columns_and_multiple_rows_per_patient(site):
    abs_img = (site / "img" / "P002.png").resolve()
    text = "\ufeffpatient_id,image,event\nA,img/P001.png,1\nA,img/P003.png,1\nB," + str(abs_img) + ",0\n"
    path = site / "m.csv"
    path.write_text(text, encoding="utf-8")
    cohort = load_manifest(path, tasks="event")
    assert cohort.labels("event") == {"A": 1, "B": 0}
    assert len(cohort.records_for("A")) == 2 and cohort.records[2].image == abs_img
    assert cohort.available_tasks == ("event",) and cohort.labels("lge") == {}


def test_blank_label_on_one_row_of_a_patient_is_allowed(site):
    path = _write(site, "A,img/P001.png,,8,1,,,,", "A,img/P002.png,,,,,,,", "B,img/P003.png,,1,0,,,,")
    assert load_manifest(path, tasks=("lge", "event")).labels("lge") == {"A": 1, "B": 0}


def test_check_files_false_skips_file_checks(site):
    path = _write(site, "A,missing/a.png,,1,0,,,,", "B,missing/b.png,,9,1,,,,")
    assert len(load_manifest(path, check_files=False).records) == 2


# ----------------------------------------------------------------------------- file-level errors
def test_missing_file(tmp_path):
    with pytest.raises(ManifestError, match=r"manifest file not found: .*nope\.csv"):
        load_manifest(tmp_path / "nope.csv")


def test_folder_instead_of_csv(tmp_path):
    with pytest.raises(ManifestError, match="is a folder, not a CSV file"):
        load_manifest(tmp_path)


def test_spreadsheet_is_not_a_csv(tmp_path):
    (tmp_path / "cohort.xlsx").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(ManifestError, match=r"not a CSV text file .*export it as 'CSV UTF-8'"):
        load_manifest(tmp_path / "cohort.xlsx")


def test_not_utf8(tmp_path):
    (tmp_path / "m.csv").write_bytes("patient_id,image\nJosé,a.png\n".encode("latin-1"))
    with pytest.raises(
        ManifestError, match=r"not UTF-8 text \(undecodable byte at offset 20\); save it as 'CSV UTF-8'"
    ):
        load_manifest(tmp_path / "m.csv")


def test_empty_file(tmp_path):
    (tmp_path / "m.csv").write_text("  \n\n")
    with pytest.raises(ManifestError, match=r"file is empty; expected a header line"):
        load_manifest(tmp_path / "m.csv")


def test_header_only(site):
    with pytest.raises(ManifestError, match=r"no data rows after the header \(line 1\)"):
        load_manifest(_write(site))


def test_missing_required_column_lists_found_columns(site):
    msg = _problems(_write(site, "P001,61", header="patient,age"))
    assert "missing required column 'patient_id'; columns found: 'patient', 'age'" in msg
    assert "missing required column 'image'" in msg


def test_duplicate_column_names(site):
    msg = _problems(_write(site, "P001,img/P001.png,1,2", header="patient_id,image,event,event"))
    assert "duplicate column name 'event' (2 columns)" in msg


def test_semicolon_separated(site):
    msg = _problems(_write(site, "P001;img/P001.png", header="patient_id;image"))
    assert "looks separated by semicolons; lgenet reads comma-separated files" in msg


# ----------------------------------------------------------------------------- cell errors
def test_lge_not_a_number_exact_wording(site):
    lines = GOOD[:2] + ["P003,img/P003.png,,abc,0,,,,"]
    msg = _problems(_write(site, *lines))
    assert (
        "row 3 (line 4), patient P003: column 'lge_percent' = 'abc' is not a number; "
        "expected a percentage between 0 and 100 or blank"
    ) in msg


@pytest.mark.parametrize(
    "line, expected",
    [
        (
            ",img/P001.png,,,,,,,",
            r"row 1 \(line 2\), patient <blank>: column 'patient_id' is blank; every row needs a patient ID",
        ),
        (
            "site/P1,img/P001.png,,,,,,,",
            r"patient site/P1: column 'patient_id' = 'site/P1' contains a path separator; expected a study-local ID without '/'",
        ),
        ("a\\b,img/P001.png,,,,,,,", r"column 'patient_id' = 'a\\b' contains a path separator"),
        ("P1,,,,,,,,", r"patient P1: column 'image' is blank; give the path of the patient's image"),
        (
            "P1,img/P404.png,,,,,,,",
            r"column 'image' = 'img/P404.png' was not found \(looked for .*img/P404\.png\); relative paths start at the manifest's folder .*; fix the path or make it absolute",
        ),
        (
            "P1,img/notes.jpg,,,,,,,",
            r"column 'image' = 'img/notes.jpg' is not a supported image \(unsupported image kind \(\.jpg.*expected a DICOM file, a DICOM series folder, a NIfTI",
        ),
        (
            "P1,img/P001.png,mid,,,,,,",
            r"column 'slice' = 'mid' is not 'basal' or an integer; expected blank, 'basal' or an integer index such as 0 or -1",
        ),
        (
            "P1,img/P001.png,,-3,,,,,",
            r"column 'lge_percent' = '-3' is outside 0..100; expected a percentage between 0 and 100 or blank",
        ),
        ("P1,img/P001.png,,101,,,,,", r"column 'lge_percent' = '101' is outside 0..100"),
        ("P1,img/P001.png,,nan,,,,,", r"column 'lge_percent' = 'nan' is not a number"),
        (
            "P1,img/P001.png,,,yes,,,,",
            r"column 'event' = 'yes' is not 0/1; expected 1 \(event\), 0 \(no event\), true/false or blank",
        ),
        ("P1,img/P001.png,,,2,,,,", r"column 'event' = '2' is not 0/1"),
        (
            "P1,img/P001.png,,,,-1,,,",
            r"column 'followup_years' = '-1' is negative; expected a number of years >= 0 or blank",
        ),
        ("P1,img/P001.png,,,,5y,,,", r"column 'followup_years' = '5y' is not a number"),
        (
            "P1,img/P001.png,,,,,img/nomask.png,,",
            r"column 'mask' = 'img/nomask.png' was not found \(looked for .*nomask.png\); relative paths start",
        ),
        ("P1,img/P001.png,,,,,,,,,,7", r"has 12 cells but the header has 9 columns; quote values that contain commas"),
        ("P1,docs/,,,,,,,", r"column 'image' = 'docs/' is not a supported image \(folder holds no DICOM files"),
    ],
)
def test_cell_problem_wording(site, line, expected):
    msg = _problems(_write(site, line))
    assert len(msg.splitlines()) >= 2
    assert re.search(expected, msg), msg


def test_every_problem_reported_at_once(site):
    lines = [
        "P1,img/P001.png,mid,abc,2,-1,,,",
        ",img/P404.png,,,,,,,",
        "P3,img/P003.png,,5,0,,,,",
    ]
    with pytest.raises(ManifestError) as exc:
        load_manifest(_write(site, *lines))
    err = exc.value
    assert len(err.problems) == 6  # slice, lge, event, followup, blank id, missing image
    assert str(err).startswith(f"manifest {site / 'cohort.csv'}: 6 problems found:")
    assert [p.split(":")[0] for p in err.problems[:4]] == ["row 1 (line 2), patient P1"] * 4
    assert err.problems[4].startswith("row 2 (line 3), patient <blank>")


def test_line_numbers_account_for_blank_and_multiline_rows(site):
    text = HEADER + '\nP1,img/P001.png,,1,0,,,"a\nmultiline note",\n\nP2,img/P002.png,,xx,0,,,,\n'
    (site / "m.csv").write_text(text)
    assert "row 2 (line 5), patient P2: column 'lge_percent' = 'xx'" in _problems(site / "m.csv")


# ----------------------------------------------------------------------------- cross-row errors
def test_conflicting_labels_across_rows(site):
    msg = _problems(_write(site, "P1,img/P001.png,,2,1,,,,", "P1,img/P002.png,,9,1,,,,"))
    assert (
        "patient P1: column 'lge_percent' disagrees between row 1 (line 2) and row 2 (line 3) "
        "(2 vs 9); all rows of one patient must carry the same labels"
    ) in msg


def test_duplicate_rows(site):
    msg = _problems(_write(site, "P1,img/P001.png,basal,2,1,,,,", "P1,img/P001.png,,2,1,,,,"))
    assert (
        "row 2 (line 3), patient P1: duplicates row 1 (line 2) (same patient_id, image and slice); remove one of them"
        in msg
    )


def test_one_image_for_two_patients(site):
    msg = _problems(_write(site, "P1,img/P001.png,,,,,,,", "P2,./img/P001.png,,,,,,,"))
    assert "row 2 (line 3), patient P2: column 'image' points at the same image as row 1 (line 2) of patient P1" in msg


# ----------------------------------------------------------------------------- task errors
def test_requested_task_column_absent(site):
    path = _write(site, "P1,img/P001.png,0", header="patient_id,image,event")
    msg = _problems(path, tasks=("lge",))
    assert (
        "task 'lge' needs column 'lge_percent', which is absent; columns found: 'patient_id', 'image', 'event'" in msg
    )


def test_requested_task_column_blank(site):
    msg = _problems(_write(site, "P1,img/P001.png,,,1,,,,", "P2,img/P002.png,,,0,,,,"), tasks=("lge", "event"))
    assert "task 'lge': column 'lge_percent' has no valid values; fill it in or drop the task" in msg
    assert "task 'event'" not in msg


def test_class_counts_wait_until_bad_cells_are_fixed(site):
    msg = _problems(_write(site, "P1,img/P001.png,,1,0,,,,", "P2,img/P002.png,,x,0,,,,"), tasks="lge")
    assert "'lge_percent' = 'x' is not a number" in msg and "no positive patients" not in msg


def test_task_with_one_class(site):
    lines = ["P1,img/P001.png,,1,0,,,,", "P2,img/P002.png,,2,0,,,,"]
    msg = _problems(_write(site, *lines), tasks=("lge", "event"))
    assert "task 'event' has no positive patients among 2 labelled; need at least one per class" in msg
    assert "task 'lge' has no positive patients (lge_percent > 5.7) among 2 labelled" in msg
    msg = _problems(_write(site, "P1,img/P001.png,,9,1,,,,"), tasks="event")
    assert "task 'event' has no negative patients among 1 labelled" in msg


def test_unknown_task_and_bad_threshold_are_config_errors(site):
    path = _write(site, *GOOD)
    with pytest.raises(ConfigError, match=r"unknown task 'mace'; known tasks: 'lge', 'event'"):
        load_manifest(path, tasks=("mace",))
    with pytest.raises(ConfigError, match=r"lge_threshold must be a number in \[0, 100\), got 150"):
        load_manifest(path, lge_threshold=150)


# ----------------------------------------------------------------------------- covariates
def test_covariates_numeric(site):
    cohort = load_manifest(_write(site, *GOOD))
    cov = cohort.covariates_numeric(["age"])
    assert cov["P001"] == {"age": 61.0} and math.isnan(cov["P007"]["age"])
    with pytest.raises(
        ManifestError,
        match=r"row 1 \(line 2\), patient P001: column 'sex' = 'F' is not a number; expected a number \(encode categories as 0/1\)",
    ):
        cohort.covariates_numeric("sex")
    with pytest.raises(ManifestError, match=r"covariate column 'bmi' is absent; covariate columns found: 'age', 'sex'"):
        cohort.covariates_numeric(["age", "bmi"])


def test_covariates_must_agree_per_patient(site):
    cohort = load_manifest(_write(site, "A,img/P001.png,,,,,,60,", "A,img/P002.png,,,,,,61,"))
    with pytest.raises(
        ManifestError, match=r"patient A: column 'age' differs between row 1 \(line 2\) and row 2 \(line 3\)"
    ):
        cohort.covariates_numeric("age")


# ----------------------------------------------------------------------------- writing / images
def test_write_manifest_roundtrip_and_atomic(site):
    rows = [
        {"image": Path("img/P001.png"), "patient_id": "A", "event": True, "lge_percent": 3.25, "age": 50},
        {"patient_id": "B", "image": "img/P002.png", "event": False, "lge_percent": float("nan"), "note": "x, y"},
    ]
    out = write_manifest(site / "sub" / ".." / "w.csv", rows)
    text = out.read_text()
    assert text.splitlines()[0] == "patient_id,image,lge_percent,event,age,note"
    assert text.splitlines()[2] == 'B,img/P002.png,,0,,"x, y"'
    assert not [p for p in site.iterdir() if p.name.startswith(".w.")]  # no temp file left
    cohort = load_manifest(site / "w.csv")
    assert cohort.labels("event") == {"A": 1, "B": 0} and cohort.records[0].lge_percent == 3.25
    assert cohort.records[1].covariates == {"age": "", "note": "x, y"}
    with pytest.raises(ValueError, match="not in `columns`"):
        write_manifest(site / "x.csv", rows, columns=["patient_id", "image"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),
            st.one_of(st.none(), st.integers(0, 1)),
            st.one_of(st.just("basal"), st.integers(-5, 5)),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_write_then_load_preserves_values(tmp_path, rows):
    data = [
        {"patient_id": f"P{i}", "image": f"x/{i}.png", "lge_percent": lge, "event": ev, "slice": sl}
        for i, (lge, ev, sl) in enumerate(rows)
    ]
    path = write_manifest(tmp_path / "prop.csv", data)
    cohort = load_manifest(path, check_files=False)
    for rec, (lge, ev, sl) in zip(cohort.records, rows):
        assert (rec.lge_percent, rec.event, rec.slice) == (lge, ev, sl)


def test_check_images_reports_unreadable_frames(site):
    (site / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n nope")
    path = _write(site, *GOOD[:2], "P5,img/broken.png,,,,,,,", "P6,img/P009_series,7,,,,,,")
    cohort = load_manifest(path)
    with pytest.raises(ManifestError) as exc:
        check_images(cohort)
    msg = str(exc.value)
    assert "2 problems found" in msg
    assert "row 3 (line 4), patient P5: column 'image': " in msg and "image file is unreadable" in msg
    assert "row 4 (line 5), patient P6" in msg and "slice index 7 is out of range: the stack has 3 slices" in msg
    metas = check_images(load_manifest(_write(site, *GOOD)))
    assert [m["format"] for m in metas] == ["png"] * 4 + ["dicom", "nifti", "dicom-series"]
