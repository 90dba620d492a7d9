"""The AHA 16-segment model (lgenet.quantify.aha): thirds apex -> base, orientation from the patient axes or a given
anterior RV insertion, the enhanced share and transmurality per segment, and the bullseye."""

import math

import numpy as np
import pytest

from dicom_helpers import sax_geometry
from lgenet.io.geometry import patient_axes
from lgenet.quantify.aha import AHA_NAMES, aha_segments


def _ring(n=6, size=48):
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - 23.5, xx - 23.5)
    c = np.zeros((n, size, size), np.uint8)
    c[:, r < 14] = 2
    c[:, r < 8] = 1
    return c, yy - 23.5, xx - 23.5, r


def _oblique_affine(spacing=1.5):
    row, col, apex = sax_geometry("apex")  # LPS
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = row * spacing, col * spacing, -apex * 8.0
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _shares(res):
    return {s["segment"]: s["lge_percent"] for s in res.segments}


def test_patient_axes_put_the_anterior_wall_in_the_anterior_segments():
    A = _oblique_affine()
    c, dy, dx, r = _ring(6)
    e_col, e_row, sep, ant = patient_axes(A)
    v = np.stack([dx, dy], -1) @ np.stack([e_col, e_row])  # each pixel's offset in RAS mm
    phi = np.degrees(np.arctan2(v @ ant, v @ sep))
    c[:, (r >= 8) & (r < 14) & (np.abs(phi - 90) < 25)] = 3  # the anterior wall, in the patient's space
    res = aha_segments(c, (1.5, 1.5), 8.0, affine=A)
    assert res.ok and "approximate" in res.orientation
    sh = _shares(res)
    assert min(sh[1], sh[7], sh[13]) > 20 and all(sh[s] < 1 for s in AHA_NAMES if s not in (1, 7, 13))
    # 6 slices: apical 2, mid 2, basal 2; every segment has myocardium, and the sums hold
    assert all(s["myo_px"] > 0 for s in res.segments)
    assert sum(s["myo_px"] for s in res.segments) == int((c >= 2).sum())


def test_a_given_insertion_on_the_standard_display():
    c, dy, dx, r = _ring(7)
    theta = np.degrees(np.arctan2(-dy, dx))  # display angle, counter-clockwise from 3 o'clock
    wall = (r >= 8) & (r < 14)
    c[:, wall & (np.abs(theta - 150) < 15)] = 3  # between the insertion (120) and the septum (180)
    res = aha_segments(c, (1.0, 1.0), 8.0, rv_insertion_deg=120)
    sh = _shares(res)
    assert res.ok and "given" in res.orientation
    assert min(sh[2], sh[8], sh[14]) > 20 and all(sh[s] < 1 for s in AHA_NAMES if s not in (2, 8, 14))
    # transmural enhancement: its rays are all enhanced
    assert max(s["transmurality_max"] for s in res.segments) == pytest.approx(100.0)
    assert res.segments[0]["myo_ml"] == pytest.approx(res.segments[0]["myo_px"] * 8.0 / 1000.0)


def test_placeholder_geometry_and_too_few_slices_are_not_segmented_and_say_why():
    c, *_ = _ring(6)
    res = aha_segments(c, (1.0, 1.0), 8.0, affine=np.diag([-1.0, -1.0, 1.0, 1.0]))
    assert not res.ok and "placeholder" in res.note and "--rv-insertion-deg" in res.note
    res = aha_segments(c, (1.0, 1.0), 8.0, affine=None)
    assert not res.ok and "no patient geometry" in res.note
    res = aha_segments(c[:2], (1.0, 1.0), 8.0, rv_insertion_deg=120)
    assert not res.ok and "needs 3 or more" in res.note
    assert math.isfinite(aha_segments(c, (1.0, 1.0), None, rv_insertion_deg=0).segments[0]["lge_percent"])


def test_planted_per_segment_enhancement_is_read_back_and_drawn(tmp_path):
    """A heart whose enhancement is planted segment by segment (a known share of each segment's wall) gives those
    shares back, and the bullseye draws each segment in the colour of its value."""
    from PIL import Image

    from lgenet.evaluation.bullseye import plot_bullseye

    c, dy, dx, r = _ring(9, size=96)
    c = np.zeros_like(c)
    c[:, r < 40] = 2
    c[:, r < 22] = 1
    theta = np.degrees(np.arctan2(-dy, dx))
    ins = 120.0
    phi = ((ins + 60.0) - theta + 180.0) % 360.0 - 180.0  # the model's angle on the standard display
    wall = (r >= 22) & (r < 40)
    # planted (9 slices: apical 0-2, mid 3-5, basal 6-8): basal anteroseptal (2) fully, mid inferior (10) in the
    # inner half of its wall, apical lateral (16) fully; nothing elsewhere
    for k in (6, 7, 8):
        c[k][wall & (phi >= 0) & (phi < 60)] = 3
    for k in (3, 4, 5):
        c[k][wall & (phi >= -120) & (phi < -60) & (r < 31)] = 3
    for k in (0, 1, 2):
        c[k][wall & ((phi >= 135) | (phi < -135))] = 3
    res = aha_segments(c, (1.0, 1.0), 8.0, rv_insertion_deg=ins)
    sh = _shares(res)
    seg10 = wall & (phi >= -120) & (phi < -60)
    expect_inner = 100.0 * float((seg10 & (r < 31)).sum()) / float(seg10.sum())
    assert sh[2] == pytest.approx(100.0) and sh[16] == pytest.approx(100.0)
    assert sh[10] == pytest.approx(expect_inner, abs=1.0)
    assert all(sh[s] == 0.0 for s in AHA_NAMES if s not in (2, 10, 16))
    tm = {s["segment"]: s["transmurality_max"] for s in res.segments}
    assert tm[2] == pytest.approx(100.0) and 30 < tm[10] < 70
    png = plot_bullseye(sh, tmp_path / "b.png", vmax=100.0)
    px = np.asarray(Image.open(png).convert("RGB")).astype(float)
    h, w = px.shape[:2]
    cx, cy = (0.13 + 0.74 / 2) * w, (1 - (0.25 + 0.63 / 2)) * h  # the polar axes' centre
    rad = min(0.74 * w, 0.63 * h) / 2

    def lum(deg, rr):
        x = int(cx + rr * rad * math.cos(math.radians(deg)))
        y = int(cy - rr * rad * math.sin(math.radians(deg)))
        return float(px[y - 2 : y + 3, x - 2 : x + 3].mean())

    assert lum(170, 0.78) < 90 and lum(100, 0.78) > 200  # segment 2 at 100 % is dark, segment 1 at 0 % pale
