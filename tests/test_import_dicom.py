"""``lgenet import dicom``: a messy archive of whole studies -> one LGE short-axis stack per patient, every skip
counted, the choice explained, and no identifier in what it writes (tests/dicom_archive.py builds the archive)."""

import csv
import json
import shutil
import subprocess
import sys

import pytest

from dicom_archive import build_archive
from lgenet.data.importers.dicom_studies import import_dicom_studies
from lgenet.errors import ConfigError, DataError
from lgenet.io import read_volume


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive") / "studies"
    info = build_archive(root)
    return root, info


def _rows(manifest):
    with open(manifest, newline="") as fh:
        return list(csv.DictReader(fh))


def test_each_study_gets_its_lge_stack_and_every_skip_is_counted(archive, tmp_path):
    root, info = archive
    res = import_dicom_studies(root, tmp_path / "out" / "cohort.csv", id_map=tmp_path / "keep" / "map.csv")
    by_id = {c.patient_id: c for c in res.choices}
    # patients A..E get P001..P005 (sorted by their archive keys); A has two studies
    assert sorted(by_id) == ["P001", "P002", "P003", "P004", "P005"]
    imported = {c.patient_id: (c.chosen.kind, c.chosen.slices) for c in res.imported}
    assert imported == {"P001": ("magnitude", 6), "P002": ("magnitude", 5), "P003": ("magnitude", 6),
                        "P004": ("magnitude", 5)}  # fmt: skip
    a = [c for c in res.choices if c.patient_id == "P001"]
    assert [c.chosen is not None for c in a] == [True, False] and "a later study of the same patient" in a[1].reason
    assert a[0].skipped == {"cine": 1, "long axis": 2, "localiser": 1}
    assert "psir" in by_id["P002"].reason.lower() and "magnitude preferred" in by_id["P002"].reason
    c = by_id["P003"]
    assert c.chosen.series_number == 15 and "the later acquisition" in c.reason
    e = by_id["P005"]
    assert e.chosen is None and "no LGE short-axis stack" in e.reason and "cine" in e.reason
    assert res.skipped_files["duplicate"] == 6 and res.skipped_files["not_mr"] == 1
    assert res.skipped_files["no_pixels"] == 1 and res.skipped_files["not_dicom"] == 1
    # the manifest's series folders are read as the stacks chosen
    rows = _rows(res.manifest)
    assert [r["patient_id"] for r in rows] == ["P001", "P002", "P003", "P004"]
    for r in rows:
        vol, meta = read_volume(res.manifest.parent / r["image"])
        assert vol.shape[0] == imported[r["patient_id"]][1], r
    side = json.loads(res.sidecar.read_text())
    assert side["importer"] == "dicom" and side["counts"]["imported"] == 4 and len(side["studies"]) == 6
    # the identifier map holds what the user keeps, and only there
    keep = (tmp_path / "keep" / "map.csv").read_text()
    assert "MRN10000001" in keep and "P001" in keep


def test_no_identifier_reaches_what_it_writes(archive, tmp_path):
    root, info = archive
    out = tmp_path / "cohort.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "lgenet", "import", "dicom", str(root), "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    names = [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")]
    texts = [p.read_text(errors="replace") for p in written] + names + [proc.stdout, proc.stderr]
    hits = [v for v in info["planted"] for t in texts if v.lower() in t.lower()]
    assert not hits, hits[:5]
    assert "P005" in proc.stdout and "not imported" in proc.stdout and "files skipped" in proc.stdout


def test_the_same_archive_in_another_layout_gets_the_same_ids_and_stacks(archive, tmp_path):
    root, _ = archive
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, p in enumerate(sorted(q for q in root.rglob("*") if q.is_file())):
        shutil.copy2(p, flat / f"f{i:04d}{p.suffix}")
    a = import_dicom_studies(root, tmp_path / "a.csv")
    b = import_dicom_studies(flat, tmp_path / "b.csv")
    key = [
        (c.patient_id, c.study, c.chosen and (c.chosen.kind, c.chosen.slices, c.chosen.series_number))
        for c in a.choices
    ]
    assert key == [(c.patient_id, c.study, c.chosen and (c.chosen.kind, c.chosen.slices, c.chosen.series_number))
                   for c in b.choices]  # fmt: skip


def test_prefer_psir_and_the_refusals(archive, tmp_path):
    root, _ = archive
    res = import_dicom_studies(root, tmp_path / "p.csv", prefer="psir", link="copy")
    b = next(c for c in res.choices if c.patient_id == "P002")
    assert b.chosen.kind == "psir" and "psir preferred" in b.reason
    assert not any(p.is_symlink() for p in res.series_dir.rglob("*"))
    with pytest.raises(ConfigError, match="ending in .csv"):
        import_dicom_studies(root, tmp_path / "cohort")
    (tmp_path / "q_series").mkdir()
    with pytest.raises(ConfigError, match="not written by 'lgenet import dicom'"):
        import_dicom_studies(root, tmp_path / "q.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no MR image"):
        import_dicom_studies(empty, tmp_path / "e.csv")
    # a rerun replaces its own series folder
    again = import_dicom_studies(root, tmp_path / "p.csv", prefer="psir", link="copy")
    assert again.series_dir == res.series_dir and len(list(again.series_dir.iterdir())) == 5  # 4 + marker


def test_out_inside_the_archive_is_refused(archive, tmp_path):
    root, _ = archive
    proc = subprocess.run(
        [sys.executable, "-m", "lgenet", "import", "dicom", str(root), "--out", str(root / "cohort.csv")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "--out" in proc.stderr and not (root / "cohort.csv").exists()
