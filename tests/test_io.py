"""Readers: DICOM (file, multi-frame, series), NIfTI, PNG/TIFF; safe metadata; error wording."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless, generate_uid

from dicom_helpers import (
    IDENTIFIERS,
    UID_ROOT,
    make_dicomdir_like,
    make_enhanced,
    make_image,
    make_report,
    save,
    sax_geometry,
    unit,
    write_sax_series,
)
from lgenet.errors import ConfigError, LgenetError, ReaderError
from lgenet.io import META_KEYS, detect_format, read_frame, read_volume
from lgenet.io.geometry import APEX_DIRECTION, order_apex_to_base

GRAD = (np.arange(12 * 10, dtype=np.uint16).reshape(12, 10) * 13) % 4000


def _dcm(tmp_path, name="img.dcm", pixels=GRAD, **kw) -> Path:
    return save(make_image(pixels, **kw), tmp_path / name)


# ----------------------------------------------------------------------------- single DICOM
def test_single_dicom_values_and_meta(tmp_path):
    frame, meta = read_frame(_dcm(tmp_path, bits_stored=12))
    assert frame.dtype == np.float32 and frame.shape == (12, 10)
    np.testing.assert_array_equal(frame, GRAD)
    assert tuple(meta) == META_KEYS
    assert meta["format"] == "dicom" and meta["source_kind"] == "file"
    assert meta["pixel_spacing"] == (1.25, 1.5) and meta["slice_thickness"] == 8.0
    assert meta["modality"] == "MR" and meta["photometric"] == "MONOCHROME2" and meta["bits"] == 12
    assert meta["n_slices"] == 1 and meta["slice_index"] == 0
    json.dumps(meta)  # plain values only


def test_dicom_without_suffix_detected_by_preamble(tmp_path):
    path = _dcm(tmp_path, name="IM_0001")
    assert detect_format(path) == "dicom"
    np.testing.assert_array_equal(read_frame(path)[0], GRAD)


def test_rescale_slope_intercept_applied(tmp_path):
    frame, _ = read_frame(_dcm(tmp_path, slope=2.5, intercept=-100.0))
    np.testing.assert_allclose(frame, GRAD * 2.5 - 100.0)


def test_monochrome1_inverted_so_bright_is_high_signal(tmp_path):
    frame, meta = read_frame(_dcm(tmp_path, photometric="MONOCHROME1", bits_stored=12))
    np.testing.assert_array_equal(frame, 4095 - GRAD.astype(np.float32))
    assert any("MONOCHROME1" in n for n in meta["notes"])


def test_monochrome1_with_rescale(tmp_path):
    frame, _ = read_frame(_dcm(tmp_path, photometric="MONOCHROME1", bits_stored=12, slope=2.0, intercept=10.0))
    # inverting the rescaled range [10, 8200] equals rescaling the inverted stored values
    np.testing.assert_allclose(frame, (4095 - GRAD) * 2.0 + 10.0)


def test_rgb_dicom_becomes_luminance(tmp_path):
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    frame, meta = read_frame(_dcm(tmp_path, pixels=rgb))
    np.testing.assert_allclose(frame, 0.299 * 200 + 0.587 * 100 + 0.114 * 50, rtol=1e-5)
    assert any("luminance" in n for n in meta["notes"])


def test_palette_color_dicom_becomes_luminance(tmp_path):
    ds = make_image(np.array([[0, 1], [2, 3]], np.uint8), photometric="PALETTE COLOR", bits_stored=8)
    for k, colour in enumerate(("Red", "Green", "Blue")):
        lut = np.zeros(256, np.uint16)
        lut[k + 1] = 65535  # index 1 -> red, 2 -> green, 3 -> blue
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", lut.tobytes())
    frame, meta = read_frame(save(ds, tmp_path / "pal.dcm"))
    np.testing.assert_allclose(frame, 65535 * np.array([[0, 0.299], [0.587, 0.114]]), rtol=1e-5)
    assert any("PALETTE COLOR" in n for n in meta["notes"])


def test_rle_lossless_compressed(tmp_path):
    ds = make_image(GRAD, bits_stored=12)
    ds.compress(RLELossless)
    path = save(ds, tmp_path / "rle.dcm")
    frame, _ = read_frame(path)
    np.testing.assert_array_equal(frame, GRAD)


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGLSLossless], ids=["j2k", "jpegls"])
def test_lossless_jpeg_family_compressed(tmp_path, syntax):
    from pydicom.pixels import get_encoder

    enc = get_encoder(syntax)
    if not enc.is_available:
        pytest.skip(f"no {syntax.name} encoder installed: {enc.missing_dependencies}")
    pix = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 7) % 4096  # J2K needs >= 32 px
    ds = make_image(pix, bits_stored=12)
    ds.compress(syntax)
    frame, _ = read_frame(save(ds, tmp_path / "c.dcm"))
    np.testing.assert_array_equal(frame, pix)


def test_structured_report_is_not_an_image(tmp_path):
    path = save(make_report(), tmp_path / "report.dcm")
    with pytest.raises(ReaderError, match=r"report\.dcm.*no pixel data.*Comprehensive SR"):
        read_frame(path)


@pytest.mark.parametrize(
    "damage, match",
    [
        ("truncate", r"bad\.dcm: pixel data could not be decoded .*less than expected"),
        ("garbage", r"bad\.dcm: not a readable DICOM file: no standard DICOM elements"),
        ("text", r"bad\.dcm: not a readable DICOM file"),
    ],
)
def test_corrupt_dicom_is_a_reader_error(tmp_path, damage, match):
    path = _dcm(tmp_path, name="bad.dcm")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) - 60])
    elif damage == "garbage":
        path.write_bytes(data[:132] + b"\xff\x13" * 50)
    else:
        path.write_bytes(b"just some text, not an image")
    with pytest.raises(ReaderError, match=match):
        read_frame(path)


def test_corrupt_file_in_series_folder_is_named(tmp_path):
    write_sax_series(tmp_path / "s", 3)
    (tmp_path / "s" / "IM0001.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff\x13" * 20)
    with pytest.raises(ReaderError, match=r"IM0001\.dcm: not a readable DICOM file"):
        read_volume(tmp_path / "s")


# ----------------------------------------------------------------------------- identifiers
def _everything_read(tmp_path) -> list[dict]:
    folder = tmp_path / "Zzyzxquentin_MRN99887766"  # identifiers in names, too
    write_sax_series(folder, 4)
    save(make_report(), folder / "zz_report.dcm")
    single = _dcm(tmp_path, name="Marmaduke_single.dcm", photometric="MONOCHROME1", slope=1.0, intercept=0)
    row, col, apex = sax_geometry()
    mf = make_enhanced(np.stack([GRAD] * 3), positions=[apex * 8 * k for k in range(3)], orientation=[*row, *col])
    multi = save(mf, tmp_path / "ACC55443322_multi.dcm")
    return [
        read_frame(folder)[1],
        read_volume(folder)[1],
        read_frame(single)[1],
        read_volume(single)[1],
        read_frame(multi)[1],
        read_volume(multi)[1],
    ]


def test_identifiers_never_leave_the_reader(tmp_path):
    metas = _everything_read(tmp_path)
    text = repr(metas) + json.dumps(metas)
    planted = list(IDENTIFIERS.values()) + ["Zzyzx", "Marmaduke", "MRN", "Elsewhere", UID_ROOT]
    for value in planted:
        assert value.lower() not in text.lower(), value
    for name in ("_single", "_multi", "zz_report", str(tmp_path)):
        assert name not in text  # no file or folder names either
    for meta in metas:
        assert set(meta) == set(META_KEYS)


# ----------------------------------------------------------------------------- series order
@pytest.mark.parametrize("normal_toward", ["apex", "base"])
@pytest.mark.parametrize("write_order", ["apex_first", "base_first", "shuffled"])
def test_series_sorted_apex_to_base_and_basal_found(tmp_path, normal_toward, write_order):
    write_sax_series(tmp_path / "s", 6, normal_toward=normal_toward, write_order=write_order)
    vol, meta = read_volume(tmp_path / "s")
    assert vol.shape == (6, 12, 10)
    np.testing.assert_array_equal(vol[:, 5, 5], 100 * np.arange(6))
    assert meta["format"] == "dicom-series" and meta["slice_spacing"] == pytest.approx(8.0)
    assert "right-posterior-superior" in meta["basal_rule"]
    frame, fmeta = read_frame(tmp_path / "s")
    assert frame[5, 5] == 500 and fmeta["slice_index"] == 5 and fmeta["n_slices"] == 6
    assert read_frame(tmp_path / "s", slice=0)[0][5, 5] == 0
    assert read_frame(tmp_path / "s", slice=-2)[0][5, 5] == 400


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1, 1), min_size=6, max_size=6),
    st.integers(2, 9),
    st.floats(1.0, 12.0),
    st.randoms(use_true_random=False),
)
def test_basal_rule_property(vec, n, gap, rnd):
    """Any stack not perpendicular to a comes out apex->base: the through-plane part of p.a
    decreases strictly (in-plane shifts must not change the order)."""
    r, c0 = np.array(vec[:3]), np.array(vec[3:])
    if np.linalg.norm(r) < 0.1 or np.linalg.norm(np.cross(r, c0)) < 0.1:
        return
    r = unit(r)
    c = unit(c0 - np.dot(c0, r) * r)
    normal = np.cross(r, c)
    if abs(np.dot(normal, APEX_DIRECTION)) < 0.15:
        return
    positions = [np.array([3.0, -7.0, 11.0]) + k * gap * normal + rnd.uniform(-20, 20) * r for k in range(n)]
    rnd.shuffle(positions)
    idx, rule, spacing = order_apex_to_base(
        positions,
        [np.r_[r, c]] * n,
        where="x",
        explicit=False,
        fallback_keys=[None] * n,
        fallback_name="-",
    )
    along_a = [float(np.dot(positions[i], normal) * np.dot(normal, APEX_DIRECTION)) for i in idx]
    assert all(a > b for a, b in zip(along_a, along_a[1:]))
    assert spacing == pytest.approx(gap)


def test_series_with_in_plane_shifts_still_sorted_along_normal(tmp_path):
    row, col, apex = sax_geometry("apex")
    step = apex * 7.0 + row * 1.5  # table/offset drift within the plane
    write_sax_series(tmp_path / "s", 5, step=step, gap=7.0)
    vol, _ = read_volume(tmp_path / "s")
    np.testing.assert_array_equal(vol[:, 5, 5], 100 * np.arange(5))


def test_series_ignores_dicomdir_reports_hidden_and_text_files(tmp_path):
    folder = tmp_path / "s"
    write_sax_series(folder, 3)
    save(make_dicomdir_like(), folder / "DICOMDIR")
    save(make_report(), folder / "report.dcm")
    (folder / "readme.txt").write_text("not dicom")
    shutil.copy(folder / "IM0000.dcm", folder / ".hidden.dcm")
    frame, meta = read_frame(folder)
    assert frame[5, 5] == 200 and meta["n_slices"] == 3
    assert any("1 non-DICOM file" in n for n in meta["notes"])
    assert any("2 DICOM objects without pixel data" in n for n in meta["notes"])


def test_series_not_short_axis_needs_explicit_index(tmp_path):
    # normal n = (0, 1, -1)/sqrt(2) is perpendicular to the apex direction (1, -1, -1)/sqrt(3)
    row, col = np.array([1.0, 0, 0]), unit([0, 1, 1])
    n = np.cross(row, col)
    write_sax_series(tmp_path / "s", 4, orientation=[*row, *col], step=n * 5.0)
    with pytest.raises(ReaderError, match=r"not look like a short-axis stack.*explicit integer 'slice'"):
        read_frame(tmp_path / "s")
    with pytest.raises(ReaderError, match="explicit integer 'slice'"):
        read_volume(tmp_path / "s")
    frame, meta = read_frame(tmp_path / "s", slice=1)
    assert "not short-axis-like" in meta["basal_rule"] and meta["slice_index"] == 1


def test_series_without_geometry_uses_instance_number_only_when_explicit(tmp_path):
    folder = tmp_path / "s"
    for i, inst in enumerate([3, 1, 2]):
        save(
            make_image(np.full((4, 4), inst * 10, np.uint16), instance=inst, series_uid="1.2.3.4"), folder / f"f{i}.dcm"
        )
    with pytest.raises(
        ReaderError, match=r"orientation/position tags .* missing.*explicit integer 'slice'.*InstanceNumber order"
    ):
        read_frame(folder)
    frame, meta = read_frame(folder, slice=0)
    assert frame[0, 0] == 10 and "InstanceNumber order" in meta["basal_rule"]
    assert read_frame(folder, slice=-1)[0][0, 0] == 30


def test_series_duplicate_positions_rejected(tmp_path):
    paths = write_sax_series(tmp_path / "s", 3, write_order="apex_first")
    shutil.copy(paths[1], tmp_path / "s" / "copy.dcm")
    with pytest.raises(ReaderError, match=r"2 images share the same slice position.*one image per slice position"):
        read_frame(tmp_path / "s")


def test_series_folder_with_two_series_rejected_without_uids(tmp_path):
    uid_a, uid_b = generate_uid(prefix=UID_ROOT), generate_uid(prefix=UID_ROOT)
    write_sax_series(tmp_path / "s", 2, series_uid=uid_a)
    write_sax_series(tmp_path / "t", 2, series_uid=uid_b)
    for p in (tmp_path / "t").iterdir():
        p.rename(tmp_path / "s" / f"b_{p.name}")
    with pytest.raises(ReaderError, match=r"2 different series.*point the manifest at the one") as exc:
        read_frame(tmp_path / "s")
    assert uid_a not in str(exc.value) and uid_b not in str(exc.value)


def test_series_with_mixed_sizes_rejected(tmp_path):
    write_sax_series(tmp_path / "s", 2, series_uid="1.2.3")
    write_sax_series(tmp_path / "t", 1, series_uid="1.2.3", size=(8, 8))
    (tmp_path / "t" / "IM0000.dcm").rename(tmp_path / "s" / "other.dcm")
    with pytest.raises(ReaderError, match=r"different sizes \(12x10 in 2 files, 8x8 in 1 file\)"):
        read_frame(tmp_path / "s")


def test_folder_without_dicom_files(tmp_path):
    (tmp_path / "s" / "sub").mkdir(parents=True)
    (tmp_path / "s" / "notes.txt").write_text("x")
    with pytest.raises(ReaderError, match=r"no DICOM files \(it has 1 subfolder: point at the series folder itself\)"):
        read_frame(tmp_path / "s")


def test_out_of_range_index_names_file_index_and_count(tmp_path):
    write_sax_series(tmp_path / "stack", 5)
    with pytest.raises(ReaderError, match=r"stack: slice index 7 is out of range: the stack has 5 slices"):
        read_frame(tmp_path / "stack", slice=7)
    with pytest.raises(ReaderError, match=r"slice index -6 is out of range"):
        read_frame(tmp_path / "stack", slice=-6)


# ----------------------------------------------------------------------------- multi-frame
def test_enhanced_multiframe_uses_per_frame_positions_and_rescale(tmp_path):
    row, col, apex = sax_geometry("base")
    levels = [2, 0, 3, 1]  # frame order is not anatomical order
    frames = np.stack([np.full((6, 5), 10 * k, np.uint16) for k in levels])
    positions = [np.array([5.0, -150, 30]) + apex * 9.0 * (3 - k) for k in levels]
    slopes = [1.0, 1.0, 2.0, 1.0]
    path = save(
        make_enhanced(frames, positions=positions, orientation=[*row, *col], slopes=slopes, intercepts=[0, 0, -5.0, 0]),
        tmp_path / "mf.dcm",
    )
    vol, meta = read_volume(path)
    np.testing.assert_allclose(vol[:, 0, 0], [0, 10, 20, 2 * 30 - 5.0])
    assert meta["source_kind"] == "multiframe-file" and meta["n_slices"] == 4
    assert meta["pixel_spacing"] == (1.25, 1.5)
    frame, fmeta = read_frame(path)
    assert frame[0, 0] == 55.0 and fmeta["slice_index"] == 3


def test_multiframe_without_positions_needs_explicit_index(tmp_path):
    frames = np.stack([np.full((4, 4), v, np.uint16) for v in (1, 2, 3)])
    path = save(make_enhanced(frames, positions=None, orientation=None), tmp_path / "mf.dcm")
    with pytest.raises(ReaderError, match=r"explicit integer 'slice'.*frame order"):
        read_frame(path)
    assert read_frame(path, slice=1)[0][0, 0] == 2


def test_cine_like_multiframe_at_one_position_rejected(tmp_path):
    row, col, apex = sax_geometry()
    frames = np.stack([np.full((4, 4), v, np.uint16) for v in (1, 2, 3)])
    path = save(make_enhanced(frames, positions=[[0, 0, 0]] * 3, orientation=[*row, *col]), tmp_path / "cine.dcm")
    with pytest.raises(ReaderError, match="same slice position"):
        read_frame(path)


# ----------------------------------------------------------------------------- NIfTI
def _nifti(tmp_path, data, name="v.nii.gz", zooms=(1.5, 2.0, 10.0)):
    img = nib.Nifti1Image(np.asarray(data), np.eye(4))
    img.header.set_zooms(zooms[: np.asarray(data).ndim])
    path = tmp_path / name
    nib.save(img, str(path))
    return path


def _xyz_volume():
    x, y, z = np.meshgrid(np.arange(6), np.arange(4), np.arange(3), indexing="ij")
    return (x + 10 * y + 100 * z).astype(np.int16)  # shape (6, 4, 3)


def test_nifti_basal_last_and_transpose(tmp_path):
    data = _xyz_volume()
    path = _nifti(tmp_path, data)
    frame, meta = read_frame(path)
    np.testing.assert_array_equal(frame, data[:, :, 2].T)
    assert frame.shape == (4, 6) and meta["slice_index"] == 2 and meta["n_slices"] == 3
    assert meta["pixel_spacing"] == (2.0, 1.5) and meta["slice_thickness"] == 10.0
    assert meta["format"] == "nifti" and "nifti_basal_end='last'" in meta["basal_rule"]
    np.testing.assert_array_equal(read_frame(path, slice=0)[0], data[:, :, 0].T)


def test_nifti_basal_first_flips_to_apex_to_base(tmp_path):
    data = _xyz_volume()
    path = _nifti(tmp_path, data, name="v.nii")
    vol, _ = read_volume(path, nifti_basal_end="first")
    np.testing.assert_array_equal(vol[-1], data[:, :, 0].T)
    np.testing.assert_array_equal(read_frame(path, nifti_basal_end="first")[0], data[:, :, 0].T)


def test_nifti_other_slice_axis(tmp_path):
    data = _xyz_volume()
    path = _nifti(tmp_path, data)
    frame, meta = read_frame(path, nifti_slice_axis=0, slice=1)
    np.testing.assert_array_equal(frame, data[1].T)  # (y, z) plane: rows = z, cols = y
    assert meta["n_slices"] == 6 and meta["pixel_spacing"] == (10.0, 2.0)


def test_nifti_4d_singleton_ok_other_4d_rejected(tmp_path):
    data = _xyz_volume()
    ok = _nifti(tmp_path, data[..., None], name="one.nii.gz", zooms=(1.5, 2.0, 10.0, 1.0))
    np.testing.assert_array_equal(read_frame(ok)[0], data[:, :, 2].T)
    bad = _nifti(tmp_path, np.stack([data, data], axis=-1), name="cine.nii.gz", zooms=(1, 1, 1, 1))
    with pytest.raises(ReaderError, match=r"cine\.nii\.gz: NIfTI image has shape \(6, 4, 3, 2\).*4th dimension is 1"):
        read_frame(bad)


def test_nifti_2d_and_scaling(tmp_path):
    data = np.arange(12, dtype=np.int16).reshape(4, 3)
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_slope_inter(0.5, 3.0)
    nib.save(img, str(tmp_path / "flat.nii"))
    frame, meta = read_frame(tmp_path / "flat.nii")
    np.testing.assert_allclose(frame, data.T * 0.5 + 3.0)
    assert meta["n_slices"] == 1


def test_nifti_corrupt(tmp_path):
    path = _nifti(tmp_path, _xyz_volume())
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ReaderError, match=r"v\.nii\.gz: NIfTI file is unreadable"):
        read_frame(path)


@pytest.mark.emidec
def test_emidec_basal_is_last_stored_slice():
    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "emidec"
    cases = sorted(root.glob("Case_*/Images/*.nii.gz"))[:1] if root.is_dir() else []
    if not cases:
        pytest.skip("EMIDEC data not present at ../shared/data/emidec")
    frame, meta = read_frame(cases[0])
    vol, _ = read_volume(cases[0])
    np.testing.assert_array_equal(frame, vol[-1])
    assert meta["slice_index"] == meta["n_slices"] - 1


# ----------------------------------------------------------------------------- PNG / TIFF
def test_png_8bit_16bit_rgb_rgba(tmp_path):
    g8 = (np.arange(20).reshape(4, 5) * 12).astype(np.uint8)
    Image.fromarray(g8).save(tmp_path / "g8.png")
    g16 = (np.arange(20).reshape(4, 5) * 3000).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    rgb = np.dstack([g8, g8 // 2, g8 // 3]).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    rgba = np.dstack([rgb, np.full_like(g8, 128)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")

    f8, m8 = read_frame(tmp_path / "g8.png")
    np.testing.assert_array_equal(f8, g8)
    assert m8["bits"] == 8 and m8["format"] == "png" and m8["pixel_spacing"] is None
    f16, m16 = read_frame(tmp_path / "g16.png")
    np.testing.assert_array_equal(f16, g16)
    assert m16["bits"] == 16
    lum = rgb.astype(float) @ [0.299, 0.587, 0.114]
    for name in ("rgb.png", "rgba.png"):
        f, m = read_frame(tmp_path / name)
        np.testing.assert_allclose(f, lum, rtol=1e-5)
        assert any("luminance" in n for n in m["notes"])


def test_tiff_16bit_and_float(tmp_path):
    g16 = (np.arange(20).reshape(4, 5) * 3000).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.tif")
    f = (np.arange(20).reshape(4, 5) / 7.0 - 1.0).astype(np.float32)
    Image.fromarray(f).save(tmp_path / "f.tiff")
    np.testing.assert_array_equal(read_frame(tmp_path / "g16.tif")[0], g16)
    frame, meta = read_frame(tmp_path / "f.tiff")
    np.testing.assert_array_equal(frame, f)
    assert meta["format"] == "tiff" and meta["bits"] == 32
    vol, vmeta = read_volume(tmp_path / "f.tiff")
    assert vol.shape == (1, 4, 5) and vmeta["shape"] == (1, 4, 5)
    with pytest.raises(ReaderError, match=r"slice index 2 is out of range: a TIFF image holds 1 slice"):
        read_frame(tmp_path / "f.tiff", slice=2)


def test_corrupt_png(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ReaderError, match=r"x\.png: image file is unreadable"):
        read_frame(tmp_path / "x.png")


# ----------------------------------------------------------------------------- dispatch errors
def test_unsupported_kind_lists_supported(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 jpeg-ish")
    with pytest.raises(
        ReaderError,
        match=r"photo\.jpg: unsupported image kind \(\.jpg.*Supported inputs: a DICOM file.*NIfTI.*PNG or TIFF",
    ):
        read_frame(tmp_path / "photo.jpg")


def test_missing_path(tmp_path):
    with pytest.raises(ReaderError, match=r"nope\.dcm: no such file or folder"):
        read_frame(tmp_path / "nope.dcm")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"slice": "middle"}, "slice must be 'basal' or an integer"),
        ({"slice": True}, "slice must be 'basal' or an integer"),
        ({"nifti_basal_end": "top"}, "nifti_basal_end must be 'last' or 'first'"),
        ({"nifti_slice_axis": 3}, "nifti_slice_axis must be 0, 1 or 2"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    path = _nifti(tmp_path, _xyz_volume())
    with pytest.raises(ConfigError, match=match):
        read_frame(path, **kwargs)


def test_all_errors_are_lgenet_errors():
    assert issubclass(ReaderError, LgenetError) and issubclass(ConfigError, LgenetError)


def test_read_frame_matches_read_volume_for_every_stack_kind(tmp_path):
    write_sax_series(tmp_path / "s", 4)
    nii = _nifti(tmp_path, _xyz_volume())
    for path, kw in ((tmp_path / "s", {}), (nii, {}), (nii, {"nifti_basal_end": "first"})):
        vol, meta = read_volume(path, **kw)
        assert meta["shape"] == vol.shape and meta["slice_index"] is None
        for k in range(vol.shape[0]):
            np.testing.assert_array_equal(read_frame(path, slice=k, **kw)[0], vol[k])


def test_nifti_volume_stack_orientation_round_trip(tmp_path):
    """One home of the NIfTI slice orientation: stack() is (S, a, b) apex -> base, unstack() its inverse."""
    import nibabel as nib

    from lgenet.io.nifti import load_nifti

    data = np.arange(4 * 5 * 3, dtype=np.int16).reshape(4, 5, 3)
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 2.0, 8.0, 1.0])), tmp_path / "v.nii.gz")
    vol = load_nifti(tmp_path / "v.nii.gz")
    for axis in (0, 1, 2):
        for end in ("last", "first"):
            st = vol.stack(axis, end)
            want = np.moveaxis(data, axis, 0)
            assert np.array_equal(st, want[::-1] if end == "first" else want)
            assert np.array_equal(vol.unstack(st, axis, end), data)
    assert vol.spacing(2) == (8.0, 1.5, 2.0) and vol.spacing(0) == (1.5, 2.0, 8.0)
    frame, meta = read_frame(tmp_path / "v.nii.gz", slice=0, nifti_slice_axis=0, nifti_basal_end="first")
    assert np.array_equal(frame, data[-1].T.astype(np.float32)) and meta["pixel_spacing"] == (8.0, 2.0)
