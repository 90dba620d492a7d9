"""Privacy: no DICOM identifier anywhere in a run directory -- file names, CSVs, logs, caches, HTML,
PNG/PDF -- searched byte by byte, including inside compressed containers (zip/npz/model.pt, gzip,
PNG text chunks, PDF streams, base64 images embedded in the HTML).

The scanner is checked first on planted identifiers, so a clean result means something.
"""

from __future__ import annotations

import base64
import gzip
import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, PngImagePlugin

from lgenet.evaluation.canvas import _new_figure, save_figure
from small_run import EXPLICIT, forbidden_strings, small_run


# ----------------------------------------------------------------------------------- scanner
def _png_text(data: bytes) -> list[bytes]:
    """Decompressed zTXt / iTXt payloads of a PNG (tEXt is plain and already in the raw bytes)."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        try:
            if kind == b"zTXt":
                out.append(zlib.decompress(body.split(b"\0", 1)[1][1:]))
            elif kind == b"iTXt":
                key, rest = body.split(b"\0", 1)
                if rest[:1] == b"\1":
                    out.append(zlib.decompress(rest[2:].split(b"\0", 2)[2]))
        except (zlib.error, IndexError):
            out.append(body)
    return out


def _pdf_streams(data: bytes) -> list[bytes]:
    """Inflated PDF streams, plus the text of each stream's show-text operators joined up (matplotlib
    writes kerned text as one string per glyph run: [ (Q) -0.39 (u) ... ] TJ)."""
    out = []
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            raw = zlib.decompress(m.group(1))
        except zlib.error:
            continue
        out.append(raw)
        pieces = re.findall(rb"\(((?:[^()\\]|\\.)*)\)", raw)
        out.append(b"".join(re.sub(rb"\\(.)", rb"\1", p) for p in pieces))
    return out


def views(data: bytes, depth: int = 0) -> list[bytes]:
    """The bytes themselves plus every decodable layer inside them."""
    found = [data]
    if depth > 3:
        return found
    inner: list[bytes] = []
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                # stored (uncompressed) members are already verbatim in the raw bytes
                inner += [z.read(i) for i in z.infolist() if i.compress_type != zipfile.ZIP_STORED]
                inner += [n.encode() for n in z.namelist()]
        except zipfile.BadZipFile:
            pass
    if data[:2] == b"\x1f\x8b":
        try:
            inner.append(gzip.decompress(data))
        except OSError:
            pass
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        inner += _png_text(data)
    if data[:5] == b"%PDF-":
        inner += _pdf_streams(data)
    for m in re.finditer(rb"data:[a-z/+-]+;base64,([A-Za-z0-9+/=]+)", data):
        inner.append(base64.b64decode(m.group(1)))
    for blob in inner:
        found += views(blob, depth + 1)
    return found


def find_identifiers(root: Path, needles: list[str]) -> list[str]:
    """'<file>: <needle>' for every needle found in a file's name or (any layer of) its bytes."""
    # a needle containing a shorter needle is found through it: keep the shortest ones
    needles = sorted(set(needles), key=len)
    needles = [n for i, n in enumerate(needles) if not any(m.lower() in n.lower() for m in needles[:i])]
    # UTF-8, and UTF-16/32 little-endian: NumPy stores str arrays (npz) as UTF-32
    low = [(n.lower().encode(enc), n) for n in needles for enc in ("utf-8", "utf-16-le", "utf-32-le")]
    hits = []
    for f in sorted(p for p in root.rglob("*")):
        rel = f.relative_to(root).as_posix().lower().encode()
        for n, raw in low:
            if n in rel:
                hits.append(f"{f.relative_to(root)} (file name): {raw}")
        if not f.is_file():
            continue
        for blob in views(f.read_bytes()):
            b = blob.lower()
            for n, raw in low:
                if n in b:
                    hits.append(f"{f.relative_to(root)}: {raw}")
    return sorted(set(hits))


# ----------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return small_run(tmp_path_factory)


def test_the_cohort_headers_do_carry_the_identifiers(run):
    f = next((run.manifest.parent / "dicom" / "SYN003").iterdir())
    ds = pydicom.dcmread(f)
    assert str(ds.PatientName) == "ZQXWIDGET^HORATIO03" and ds.PatientID == "MRN-77Q9903"
    assert ds.PatientBirthDate == EXPLICIT["PatientBirthDate"] and ds.InstitutionName == EXPLICIT["InstitutionName"]
    assert ds.AccessionNumber == "ACCZ4471903" and "SYNTHETIC" in str(ds.ReferringPhysicianName)
    assert find_identifiers(f.parent, ["ZQXWIDGET", "77Q9903", "19370412", "Quixotic", "ACCZ4471903"])


def test_scanner_finds_identifiers_hidden_in_containers(tmp_path):
    name = "ZQXWIDGET^HORATIO"
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", name, zip=True)  # zTXt: compressed
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buf, format="PNG", pnginfo=info)
    (tmp_path / "a.png").write_bytes(buf.getvalue())
    (tmp_path / "b.html").write_text(f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">')
    fig = _new_figure(2, 2)
    fig.text(0.5, 0.5, "Quixotic Memorial Infirmary")
    save_figure(fig, tmp_path / "c.pdf")
    np.savez_compressed(tmp_path / "d.npz", ids=np.array(["MRN-77Q9901"]))
    (tmp_path / "e.log.gz").write_bytes(gzip.compress(b"accession ACCZ4471901"))
    (tmp_path / "SYN_19370412.csv").write_text("x\n")
    hits = find_identifiers(tmp_path, ["ZQXWIDGET", "Quixotic", "77Q99", "ACCZ44719", "19370412"])
    for f in ("a.png", "b.html", "c.pdf", "d.npz", "e.log.gz", "SYN_19370412.csv (file name)"):
        assert any(h.startswith(f) for h in hits), f"{f} not caught: {hits}"


def test_no_dicom_identifier_anywhere_in_the_run_directory(run):
    assert (run.run_dir / "report.html").is_file() and (run.run_dir / "figure1.pdf").is_file()
    assert list(run.run_dir.glob("cams/*/*/overlays_*/*.png"))
    n_files = sum(1 for p in run.run_dir.rglob("*") if p.is_file())
    assert n_files > 40  # config, logs, CSVs, fits, caches, overlays, figures, report
    hits = find_identifiers(run.run_dir, forbidden_strings())
    assert not hits, "DICOM identifiers leaked into the run directory:\n" + "\n".join(hits)
    # control: the same scan does reach into the run's own containers -- the study-local id is found
    # inside the CAM cache (npz: zip of UTF-32 strings) and in the overlay file names
    seen = find_identifiers(run.run_dir, ["SYN003"])
    assert any(h.startswith("cams/") and ".npz:" in h for h in seen)
    assert any(h.endswith("SYN003.png (file name): SYN003") for h in seen)
