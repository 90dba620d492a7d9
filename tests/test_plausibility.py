"""Anatomical plausibility of a predicted mask (lgenet.segment.plausibility): an LV passes, rings on other
structures, crescents, jumping masks and specks do not, each with its reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lgenet.segment.plausibility import PlausibilityRules, check_plausibility

SP = (1.5, 1.5)
EMIDEC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emidec"


def _ring(r_mm, wall_mm, centre=(64, 64), shape=(128, 128)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = np.hypot((yy - centre[0]) * SP[0], (xx - centre[1]) * SP[1])
    out = np.zeros(shape, np.uint8)
    out[d < r_mm] = 1
    out[(d >= r_mm) & (d < r_mm + wall_mm)] = 2
    return out


def _stack(*slices):
    return np.stack(slices)


def test_an_lv_like_ring_through_the_stack_is_plausible():
    lv = _stack(*[_ring(r, 9) for r in (14, 18, 21, 23, 24, 24, 23)])
    p = check_plausibility(lv, SP, 10.0)
    assert p.ok, p.reason()
    assert p.ring_coverage == 1.0 and 8 < p.wall_mm < 10 and 40 < p.cavity_mm < 50 and 60 < p.mass_g < 250


def test_a_thin_small_ring_is_not_an_lv():
    p = check_plausibility(_stack(*[_ring(12, 2)] * 6), SP, 10.0)
    assert not p.ok and "mm thick (median over slices), outside an LV" in p.reason() and p.wall_mm < 2.5


def test_a_crescent_does_not_surround_the_cavity():
    c = _ring(22, 9)
    c[:, :64][c[:, :64] == 2] = 0
    p = check_plausibility(_stack(*[c] * 5), SP, 10.0)
    assert not p.ok and "does not surround the cavity" in p.reason()


def test_a_mask_that_moves_from_slice_to_slice_is_on_other_structures():
    a, b = _ring(22, 9, centre=(64, 40)), _ring(22, 9, centre=(64, 80))
    p = check_plausibility(_stack(a, b, a, b), SP, 10.0)
    assert not p.ok and "LV centre moves 60 mm" in p.reason()


def test_no_myocardium_or_no_cavity_is_said_so():
    assert check_plausibility(np.zeros((3, 64, 64), np.uint8), SP, 10.0).reason() == "no myocardium found on any slice"
    m = np.zeros((3, 64, 64), np.uint8)
    m[:, 20:30, 20:30] = 2
    assert "no LV cavity" in check_plausibility(m, SP, 10.0).reason()


def test_the_mass_is_checked_only_over_enough_of_the_lv():
    huge = _stack(*[_ring(30, 25)] * 8)  # 8 slices x 10 mm: a mass far above any heart's
    p = check_plausibility(huge, SP, 10.0, PlausibilityRules(max_wall_mm=40))
    assert not p.ok and "myocardial mass" in p.reason()
    two = check_plausibility(huge[:2], SP, 10.0, PlausibilityRules(max_wall_mm=40))
    assert "myocardial mass" not in two.reason()  # 20 mm of the LV: its mass is not summed


@pytest.mark.emidec
def test_every_expert_mask_of_emidec_is_plausible():
    if not EMIDEC.is_dir():
        pytest.skip(f"EMIDEC is not at {EMIDEC}")
    from lgenet.conventions.labels import EMIDEC as LABELS
    from lgenet.data.stacks import read_stack

    cases = sorted(p for p in EMIDEC.iterdir() if p.name.startswith("Case_"))[::10]
    for case in cases:
        st = read_stack(
            case / "Images" / f"{case.name}.nii.gz", case / "Contours" / f"{case.name}.nii.gz", labels=LABELS
        )
        p = check_plausibility(st.classes, st.spacing, st.meta.get("slice_spacing") or st.meta.get("slice_thickness"))
        assert p.ok, (case.name, p.reason())
