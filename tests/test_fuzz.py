"""Property-based fuzzing of the readers and the manifest: bad bytes give lgenet errors, never a traceback.

Readers get random bytes, and truncated or bit-flipped copies of valid DICOM, NIfTI, PNG and TIFF
files, under every suffix; the manifest gets random CSV text. The only acceptable outcomes are a
valid result or an :class:`lgenet.errors.LgenetError` whose message names the file.
"""

import io as _io

import nibabel as nib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lgenet.errors import LgenetError
from lgenet.io import read_frame, read_volume

SUFFIXES = [".png", ".tif", ".dcm", ".nii", ".nii.gz", ".ima", ""]
FUZZ = settings(
    max_examples=int(__import__("os").environ.get("LGENET_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _valid_files() -> dict[str, bytes]:
    from dicom_helpers import make_image

    arr = (np.arange(24 * 20, dtype=np.uint16).reshape(24, 20) * 7) % 4096
    out = {}
    buf = _io.BytesIO()
    Image.fromarray((arr % 256).astype(np.uint8)).save(buf, format="PNG")
    out[".png"] = buf.getvalue()
    buf = _io.BytesIO()
    Image.fromarray(arr.astype(np.uint16)).save(buf, format="TIFF")
    out[".tif"] = buf.getvalue()
    ds = make_image(arr, position=(0, 0, 0), orientation=(1, 0, 0, 0, 1, 0))
    buf = _io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    out[".dcm"] = buf.getvalue()
    img = nib.Nifti1Image(np.stack([arr, arr], axis=-1).astype(np.float32), np.eye(4))
    out[".nii"] = img.to_bytes()
    return out


VALID = _valid_files()


def _read_ok_or_lgenet_error(path):
    for fn in (lambda: read_frame(path), lambda: read_frame(path, slice=0), lambda: read_volume(path)):
        try:
            out, meta = fn()
        except LgenetError as exc:
            assert str(path.name) in str(exc) or str(path) in str(exc), f"error does not name the file: {exc}"
        else:
            assert isinstance(out, np.ndarray) and isinstance(meta, dict)


@FUZZ
@given(data=st.binary(min_size=0, max_size=600), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_never_crash_a_reader(tmp_path, data, suffix):
    p = tmp_path / f"f{suffix or '_nosuffix'}"
    if suffix == "":
        p = tmp_path / "f"
        data = b"\0" * 128 + b"DICM" + data  # reach the DICOM reader through the preamble
    p.write_bytes(data)
    _read_ok_or_lgenet_error(p)


@FUZZ
@given(
    kind=st.sampled_from(sorted(VALID)),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=6),
    suffix=st.sampled_from(SUFFIXES + [None]),
)
def test_damaged_valid_files_never_crash_a_reader(tmp_path, kind, cut, flips, suffix):
    data = bytearray(VALID[kind])
    for where, xor in flips:
        i = min(int(where * len(data)), len(data) - 1)
        data[i] ^= xor
    data = bytes(data[: max(1, int(cut * len(data)))]) if cut < 0.98 else bytes(data)
    suffix = kind if suffix is None else suffix
    p = tmp_path / f"x{suffix}" if suffix else tmp_path / "x"
    p.write_bytes(data)
    _read_ok_or_lgenet_error(p)


CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", "basal", "-1", "0", "nan", "inf", "1e309", "12.5", "true", "../x.png", "img.png", "\u00e9", "a,b", '"']
    ),
).map(str)


@FUZZ
@given(
    header=st.lists(
        st.sampled_from(
            [
                "patient_id",
                "image",
                "slice",
                "lge_percent",
                "event",
                "followup_years",
                "mask",
                "age",
                "patient_id",
                "",
                "Image",
            ]
        ),
        min_size=0,
        max_size=7,
    ),
    rows=st.lists(st.lists(CELLS, min_size=0, max_size=8), max_size=5),
    raw=st.one_of(st.none(), st.binary(max_size=200)),
)
def test_random_manifests_give_manifest_errors_only(tmp_path, header, rows, raw):
    from lgenet.data.manifest import load_manifest

    p = tmp_path / "m.csv"
    (tmp_path / "img.png").write_bytes(VALID[".png"])
    if raw is not None:
        p.write_bytes(raw)
    else:
        import csv

        with open(p, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(rows)
    try:
        cohort = load_manifest(p, tasks=None)
    except LgenetError as exc:
        assert str(p) in str(exc) or "manifest" in str(exc)
    else:
        assert all(r.patient_id for r in cohort.records)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_the_fuzz_seeds_are_valid_images(tmp_path, kind):
    p = tmp_path / f"ok{kind}"
    p.write_bytes(VALID[kind])
    frame, _ = read_frame(p)
    assert frame.shape in ((24, 20), (20, 24))
