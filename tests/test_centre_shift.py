"""Proxies of another centre's stacks (lgenet.data.centre_shift): each makes the difference it names, moves the
labels with the image, and repeats with the same random draws."""

from __future__ import annotations

import numpy as np
import pytest

from lgenet.data import centre_shift as cs


def _stack(s=9, n=96):
    yy, xx = np.mgrid[:n, :n]
    d = np.hypot(yy - n / 2, xx - n / 2)
    img = np.where(d < 40, 300.0, 0.0).astype(np.float32)[None].repeat(s, 0)
    cls = np.zeros((s, n, n), np.uint8)
    cls[:, d < 12] = 1
    cls[:, (d >= 12) & (d < 18)] = 2
    cls[:, (d >= 15) & (d < 18) & (xx > n / 2)] = 3
    return img, cls, (1.5, 1.5), 10.0


def test_the_thorax_canvas_is_350_mm_at_0_74_mm_with_the_labels_moved_and_unlabelled_look_alikes():
    img, cls, sp, sl = _stack()
    out, oc, osp, osl = cs.thorax_canvas(img, cls, sp, sl, np.random.default_rng(0))
    assert osp == (0.74, 0.74) and osl == sl and out.shape[1] == round(350 / 0.74) == oc.shape[2]
    area = lambda c, s: (c >= 2).sum() * s[0] * s[1]  # noqa: E731
    assert area(oc, osp) == pytest.approx(area(cls, sp), rel=0.05)  # the myocardium kept its size in mm
    ys, xs = np.nonzero(oc[0])
    lv_mask = np.zeros(oc.shape[1:], bool)
    lv_mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
    assert (out[0][~lv_mask] > 200).sum() > 1000  # bright tissue beside the heart that carries no label


def test_thick_slices_are_2_to_6_and_12_to_23_mm_apart():
    img, cls, sp, sl = _stack(s=10)
    for seed in range(20):
        out, oc, _, osl = cs.thick_slices(img, cls, sp, sl, np.random.default_rng(seed))
        assert 2 <= out.shape[0] <= 6 and 12 <= osl <= 23 and oc.shape == out.shape


def test_the_circular_fov_leaves_29_percent_empty_and_the_range_is_0_to_3800():
    img, cls, sp, sl = _stack()
    img = img + 50
    out = cs.circular_fov(img, cls, sp, sl, np.random.default_rng(0))[0]
    assert (out == 0).mean() == pytest.approx(0.29, abs=0.02)
    rng_out = cs.intensity_range(img, cls, sp, sl, np.random.default_rng(0))[0]
    assert rng_out.min() == 0 and 3400 <= rng_out.max() <= 4095 and np.all(rng_out == np.rint(rng_out))


def test_edge_artefacts_brighten_the_edges_not_the_labels():
    img, cls, sp, sl = _stack()
    out, oc, _, _ = cs.edge_artefacts(img, cls, sp, sl, np.random.default_rng(1))
    assert np.array_equal(oc, cls)
    edge = np.zeros(img.shape[1:], bool)
    edge[:8], edge[-8:], edge[:, :8], edge[:, -8:] = True, True, True, True
    assert out[:, edge].max() > 2 * img.max()


def test_another_centre_all_at_once_repeats_with_the_same_draws():
    img, cls, sp, sl = _stack(s=10)
    a = cs.other_centre(img, cls, sp, sl, np.random.default_rng(7))
    b = cs.other_centre(img, cls, sp, sl, np.random.default_rng(7))
    assert all(np.array_equal(x, y) for x, y in zip(a[:2], b[:2])) and a[2:] == b[2:]
    assert a[0].shape == a[1].shape and 2 <= a[0].shape[0] <= 6 and a[2] == (0.74, 0.74)
    assert set(cs.CENTRE_SHIFTS) >= {"whole-thorax canvas", "another centre (all)"}


def _heart_frame(s=4, n=128, seed=0):
    """A body of textured tissue (~300) with a bright cavity (600) and a dark myocardium (120), air around it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    d = np.hypot(yy - n / 2, xx - n / 2)
    img = np.where(d < 55, 300.0 + rng.normal(0, 40, (n, n)), 5.0 + rng.normal(0, 2, (n, n)))
    img[d < 14] = 600.0
    img[(d >= 14) & (d < 20)] = 120.0
    cls = np.zeros((s, n, n), np.uint8)
    cls[:, d < 14] = 1
    cls[:, (d >= 14) & (d < 20)] = 2
    return np.abs(img).astype(np.float32)[None].repeat(s, 0), cls, (1.5, 1.5), 10.0


def test_normalisation_3_keeps_the_heart_where_it_was_under_bright_coil_spots():
    """Method 2's Otsu threshold separates a few bright spots from everything else and the heart goes black; method 3
    (clipped Otsu, fenced high percentile) keeps it within 0.1 of the frame without spots."""
    from lgenet.data.stacks import tissue_normalise

    img, cls, sp, sl = _heart_frame()
    spotted = cs.edge_artefacts(img, cls, sp, sl, np.random.default_rng(4))[0]
    cavity = lambda a, m: float(tissue_normalise(a, method=m, spacing=sp)[cls == 1].mean())  # noqa: E731
    assert abs(cavity(img, 3) - cavity(img, 2)) < 0.1  # as acquired, the two agree
    assert abs(cavity(spotted, 3) - cavity(img, 3)) < 0.1
    assert cavity(img, 2) - cavity(spotted, 2) > 0.2  # what method 3 mends


def test_the_edge_artefact_augmentation_is_seeded_bright_near_the_edges_and_leaves_the_label():
    import torch

    from lgenet.segment.augment import RandEdgeArtefacts

    x = torch.full((3, 64, 64), 0.3)
    lab = torch.zeros(1, 64, 64)
    t = RandEdgeArtefacts(1.0)
    t.set_random_state(5)
    a = t({"image": x, "label": lab})
    t.set_random_state(5)
    b = t({"image": x, "label": lab})
    assert torch.equal(a["image"], b["image"]) and a["label"] is lab
    assert torch.equal(a["image"][0], a["image"][2])  # the same coils on every slice of the window
    gain = (a["image"][0] - 0.3).numpy()
    edge = np.zeros((64, 64), bool)
    edge[:8], edge[-8:], edge[:, :8], edge[:, -8:] = True, True, True, True
    assert gain.max() > 0.3 and gain[edge].mean() > gain[~edge].mean()
    never = RandEdgeArtefacts(0.0)
    never.set_random_state(5)
    assert torch.equal(never({"image": x, "label": lab})["image"], x)


def test_unnulled_myocardium_greys_the_normal_wall_only():
    img, cls, sp, sl = _heart_frame()
    cls[:, 60:64, 76:80] = 3  # a patch of scar in the wall
    img[cls == 3] = 600.0
    out, oc, osp, osl = cs.unnulled_myocardium(img, cls, sp, sl, np.random.default_rng(3))
    assert np.array_equal(oc, cls) and (osp, osl) == (sp, sl)
    lift = np.median(out[cls == 2]) - np.median(img[cls == 2])
    assert 0.3 * 480 - 1 <= lift <= 0.6 * 480 + 1  # a fraction of the step from the wall (120) to the cavity (600)
    far = np.ones(img.shape[1:], bool)
    far[40:88, 40:88] = False
    assert np.allclose(out[:, far], img[:, far])  # nothing away from the wall moves
    assert np.median(out[cls == 3]) >= np.median(img[cls == 3])  # the scar stays at least as bright
    a = cs.other_centre_unnulled(img, cls, sp, sl, np.random.default_rng(5))
    b = cs.other_centre_unnulled(img, cls, sp, sl, np.random.default_rng(5))
    assert np.array_equal(a[0], b[0]) and "another centre, not nulled" in cs.CENTRE_SHIFTS


def test_the_unnulled_wall_augmentation_lifts_the_wall_not_the_blood_scar_or_air():
    import torch

    from lgenet.segment.augment import RandUnnulledWall, seg_augmentation
    from lgenet.segment.learn import _augmentation

    lab = torch.zeros(1, 64, 64)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    d = torch.hypot(yy - 32, xx - 32)
    lab[0][d < 10] = 1
    lab[0][(d >= 10) & (d < 15)] = 2
    lab[0][(d >= 10) & (d < 15) & (xx > 40)] = 3
    x = torch.full((3, 64, 64), 0.05)  # air / lung
    x[:, d < 30] = 0.3  # tissue at the wall's level
    x[:, lab[0] == 1] = 0.5
    x[:, lab[0] == 2] = 0.3
    x[:, lab[0] == 3] = 0.75
    t = RandUnnulledWall(1.0)
    t.set_random_state(2)
    a = t({"image": x, "label": lab})
    t.set_random_state(2)
    b = t({"image": x, "label": lab})
    assert torch.equal(a["image"], b["image"]) and a["label"] is lab
    y = a["image"]
    lift = float(y[1][lab[0] == 2].median() - 0.3)
    assert 0 < lift <= 0.6 * 0.2 + 1e-6
    assert torch.equal(y[:, lab[0] == 1], x[:, lab[0] == 1]) and torch.equal(y[:, lab[0] == 3], x[:, lab[0] == 3])
    mid = torch.linspace(0.3, 0.5, 11)  # from the wall to the blood pool: still rising, compressed
    curve = RandUnnulledWall(1.0)
    curve.set_random_state(2)
    z = curve({"image": torch.cat([x, mid.expand(3, 64, 11)], 2), "label": torch.cat([lab, torch.zeros(1, 64, 11)], 2)})
    rise = z["image"][1, 0, 64:].diff()
    assert (rise > 0).all() and (rise < mid.diff()).all()
    assert torch.equal(y[:, d > 31], x[:, d > 31])  # air, more than the wall-cavity step below the wall: untouched
    assert torch.equal(y[0], y[2])  # one curve for every slice of the window
    no_classes = RandUnnulledWall(1.0)({"image": x, "label": torch.zeros(1, 64, 64)})
    assert torch.equal(no_classes["image"], x)
    # only the segmenter's pipeline carries it, and only when asked for
    from lgenet.models.segnet import SegSpec
    from lgenet.segment.loop import SegTrainParams

    names = lambda pipe: {type(tr).__name__ for tr in pipe.transforms}  # noqa: E731
    spec = SegSpec()
    assert "RandUnnulledWall" not in names(seg_augmentation(spec, out_size=32, shift_px=2, seed=0))
    p = SegTrainParams(aug_unnulled=0.3, batch_augment=False)
    assert "RandUnnulledWall" in names(_augmentation(spec, p, out_size=32, shift_px=2, seed=0, segmenter=True))
    assert "RandUnnulledWall" not in names(_augmentation(spec, p, out_size=32, shift_px=2, seed=0))
    assert SegTrainParams().aug_unnulled == 0.0
    assert SegTrainParams().aug_unnulled_kind == "level"
    # kind "wall": only the labelled normal wall rises, by the same draw, on every channel; other tissue stays
    wall = RandUnnulledWall(1.0, kind="wall")
    wall.set_random_state(2)
    v = wall({"image": x, "label": lab})["image"]
    core = (d >= 11.5) & (d < 13.5) & (xx <= 38)  # well inside the normal wall, away from its soft edges
    step = 0.5 - 0.3
    assert float((v - x)[1][core].min()) > 0.9 * float((v - x)[1][core].max()) > 0
    assert float((v - x)[1][core].max()) <= 0.6 * step + 1e-6 and torch.equal(v[0], v[2])
    assert torch.equal(v[:, (d > 20) & (d < 30)], x[:, (d > 20) & (d < 30)])  # tissue at the wall's level
    assert float((v - x)[1][d < 7].max()) < 1e-3  # the cavity only at the wall's soft edge
    p_wall = SegTrainParams(aug_unnulled=0.3, aug_unnulled_kind="wall", batch_augment=False)
    kinds = [
        tr.kind
        for tr in _augmentation(spec, p_wall, out_size=32, shift_px=2, seed=0, segmenter=True).transforms
        if type(tr).__name__ == "RandUnnulledWall"
    ]
    assert kinds == ["wall"]
    with pytest.raises(ValueError, match="kind"):
        RandUnnulledWall(1.0, kind="ring")


def test_dim_enhanced_counts_enhancement_that_does_not_look_like_scar():
    from lgenet.segment.quality import dim_enhanced

    img, cls, _, _ = _heart_frame(s=2)  # cavity 600, wall 120
    assert dim_enhanced(img, cls) == 0.0  # nothing called enhanced
    bright = cls.copy()
    bright[:, 60:64, 76:80] = 3
    img_b = img.copy()
    img_b[bright == 3] = 580.0  # scar as bright as the blood pool: not dim
    assert dim_enhanced(img_b, bright) == 0.0
    called = bright.copy()
    wall = np.zeros_like(cls, bool)
    wall[:, 64:72, 70:84] = True
    wall &= cls == 2
    called[wall] = 3  # wall pixels at the wall's level called enhanced: dim
    share = float(wall.sum()) / float((called >= 2).sum())
    assert abs(dim_enhanced(img_b, called) - share) < 1e-9
    assert dim_enhanced(None, called) == 0.0
