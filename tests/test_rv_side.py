"""Where the RV should lie (lgenet.io.geometry.rv_direction), the NIfTI stack's affine that says it
(lgenet.io.nifti), and the side of a ring the blood lies on (lgenet.segment.rv_side)."""

import numpy as np
import pytest

from dicom_helpers import sax_geometry
from lgenet.io.geometry import LV_TO_RV_RAS, patient_axes, rv_direction
from lgenet.io.nifti import read_nifti_volume
from lgenet.segment.rv_side import CONSISTENT, INCONSISTENT, UNKNOWN, judge_rv_side, observe_rv_side


def _oblique_affine(spacing=1.5):
    row, col, apex = sax_geometry("apex")  # LPS
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = row * spacing, col * spacing, -apex * 8.0
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _heart(rv_at=(0.0, -1.0), n=4, size=96, spacing=1.5):
    """A nulled ring around a bright cavity, a bright RV blood pool against it in the direction ``rv_at``
    (d_row, d_col), dark lung elsewhere: (image, classes)."""
    yy, xx = np.mgrid[:size, :size].astype(float)
    cy = cx = size / 2
    r = np.hypot(yy - cy, xx - cx) * spacing
    cls = np.zeros((n, size, size), np.uint8)
    cls[:, r < 30] = 2
    cls[:, r < 20] = 1
    img = np.full((n, size, size), 0.05, np.float32)  # lung
    img[:, r < 30] = 0.1  # nulled wall
    img[:, r < 20] = 1.0  # blood
    ry, rx = cy + rv_at[0] * 45 / spacing, cx + rv_at[1] * 45 / spacing
    rv = (np.hypot(yy - ry, xx - rx) * spacing < 18) & (r >= 30)
    img[:, rv] = 0.95
    return img, cls


def test_rv_direction_is_the_patients_right_anterior_on_the_slice():
    A = _oblique_affine()
    v, why = rv_direction(A, (1.5, 1.5))
    assert why == "" and v.shape == (2,) and np.linalg.norm(v) == pytest.approx(1.0)
    e_col, e_row, sep, _ = patient_axes(A)
    # the direction on the array, carried back to RAS, is the right-anterior direction projected on the plane
    ras = v[1] * e_col / np.linalg.norm(e_col) + v[0] * e_row / np.linalg.norm(e_row)
    assert ras @ sep == pytest.approx(1.0, abs=1e-6)
    assert ras @ LV_TO_RV_RAS > 0.5


def test_rv_direction_refuses_placeholder_and_missing_geometry():
    assert rv_direction(None, (1.0, 1.0))[0] is None
    v, why = rv_direction(np.diag([-1.0, -1.0, 1.0, 1.0]), (1.5, 1.5))  # EMIDEC's affine
    assert v is None and "not an oblique" in why


@pytest.mark.parametrize("basal_end", ["last", "first"])
def test_a_nifti_stack_carries_its_affine_in_the_array_convention(tmp_path, basal_end):
    import nibabel as nib

    A = _oblique_affine()
    A[:3, 3] = [10.0, -20.0, 30.0]
    data = np.random.default_rng(0).random((7, 5, 3)).astype(np.float32)  # stored (a = columns, b = rows, slices)
    p = tmp_path / "s.nii.gz"
    nib.save(nib.Nifti1Image(data, A), str(p))
    vol, meta = read_nifti_volume(p, basal_end=basal_end)
    M = np.asarray(meta["affine"])
    for k, r, c in [(0, 0, 0), (1, 2, 3), (2, 4, 6)]:
        stored_k = k if basal_end == "last" else 2 - k
        assert vol[k, r, c] == data[c, r, stored_k]
        np.testing.assert_allclose(M @ [c, r, k, 1.0], A @ [c, r, stored_k, 1.0], atol=1e-9)


def test_a_nifti_without_a_placement_has_no_affine(tmp_path):
    import nibabel as nib

    img = nib.Nifti1Image(np.zeros((6, 6, 2), np.float32), np.eye(4))
    img.set_sform(np.eye(4), code=0)
    img.set_qform(np.eye(4), code=0)
    p = tmp_path / "n.nii.gz"
    nib.save(img, str(p))
    assert read_nifti_volume(p)[1]["affine"] is None


@pytest.mark.parametrize("rv_at", [(0.0, -1.0), (-0.7071, 0.7071), (1.0, 0.0)])
def test_the_blood_beside_a_ring_gives_its_side(rv_at):
    img, cls = _heart(rv_at)
    obs = observe_rv_side(img, cls, (1.5, 1.5))
    assert obs.slices == 4 and obs.agreement == pytest.approx(1.0, abs=1e-6)
    assert float(obs.direction @ np.asarray(rv_at)) > np.cos(np.radians(20))
    assert judge_rv_side(obs, np.asarray(rv_at)).verdict == CONSISTENT
    wrong = judge_rv_side(obs, -np.asarray(rv_at))
    assert wrong.verdict == INCONSISTENT and wrong.off_deg > 160 and "deg from" in wrong.text()


def test_no_geometry_or_no_common_direction_is_unknown():
    img, cls = _heart()
    obs = observe_rv_side(img, cls, (1.5, 1.5))
    none = judge_rv_side(obs, None, "the stack has no patient geometry")
    assert none.verdict == UNKNOWN and none.text() == "unknown (the stack has no patient geometry)"
    # two slices pointing opposite ways: no common direction
    img2, _ = _heart((0.0, 1.0), n=2)
    mixed = np.concatenate([img[:2], img2])
    obs2 = observe_rv_side(mixed, cls, (1.5, 1.5))
    assert obs2.agreement < 0.3
    assert judge_rv_side(obs2, np.array([0.0, -1.0])).verdict == UNKNOWN
    # a ring with no cavity
    assert observe_rv_side(img, np.where(cls == 1, 0, cls), (1.5, 1.5)).direction is None


def test_the_synthetic_cohorts_rings_agree_with_their_dicom_geometry(tmp_path):
    """End to end through the DICOM reader: the phantom draws the RV on the display's left (the patient's right),
    the synthetic series' orientation says so in LPS, and every expert ring comes out consistent; turned by 180 deg
    in the array with the geometry left as it was, every one comes out inconsistent."""
    import csv

    from lgenet.conventions.labels import SegLabels
    from lgenet.data.stacks import read_stack
    from lgenet.data.synth.cohort import make_cohort

    m = make_cohort(tmp_path / "c", n_patients=8, image_size=96, progress=False)
    labels = SegLabels.parse("cavity=1,myo=2+3,lge=3,other=0+4")
    with open(m, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        st = read_stack(m.parent / r["image"], m.parent / r["mask"], labels=labels)
        expected, why = rv_direction(st.meta.get("affine"), st.spacing)
        assert why == "" and expected[0] < 0 and expected[1] < 0  # up (anterior) and left (the patient's right)
        assert judge_rv_side(observe_rv_side(st.image, st.classes, st.spacing), expected).verdict == CONSISTENT
        turned = judge_rv_side(
            observe_rv_side(st.image[:, ::-1, ::-1], st.classes[:, ::-1, ::-1], st.spacing), expected
        )
        assert turned.verdict == INCONSISTENT
