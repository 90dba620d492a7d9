"""The second look at a doubted mask (lgenet.segment.second_look) and the proposals it segments
(Segmenter.proposals)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _proposing_segmenter():
    from lgenet.models.seginfer import Segmenter
    from lgenet.models.segnet import build_localiser, build_segmenter
    from test_segment import _BrightSpot, _gate_spec

    spec = _gate_spec()
    st = (build_localiser(spec).state_dict(), build_segmenter(spec).state_dict(), build_localiser(spec).state_dict())
    seg = Segmenter(spec, [st], tta=False)
    seg.localisers = [_BrightSpot(radius=10, lo=0.5)]  # sees within 40 mm of its canvas centre
    seg.coarse = [_BrightSpot(radius=None, lo=0.5)]  # sees everything
    return seg


def test_proposals_are_the_frame_centred_canvas_and_each_far_coarse_component_once():
    seg = _proposing_segmenter()
    vol = np.zeros((2, 200, 200), np.float32)  # 1 mm pixels
    vol[:, 94:106, 94:106] = 1.0  # a look-alike at the frame centre
    vol[:, 150:180, 150:180] = 0.9  # the heart, larger, ~90 mm away
    props = seg.proposals(vol, (1.0, 1.0))
    assert len(props) == 2
    (c0, f0), (c1, f1) = props
    assert f0.all() and np.allclose(c0, 99.5, atol=3)  # the frame-centred canvas first: the look-alike
    assert f1.all() and np.allclose(c1, 164.5, atol=3)  # then the canvas re-centred on the coarse component
    # the coarse localiser's only other component is the centred look-alike itself: not proposed twice
    assert len(seg.proposals(vol, (1.0, 1.0), candidates=3)) == 2
    seg.coarse = []
    assert len(seg.proposals(vol, (1.0, 1.0))) == 1  # without a coarse localiser: the frame-centred canvas only


def test_windows_placed_by_hand_keep_the_found_flags_given():
    seg = _proposing_segmenter()
    vol = np.zeros((2, 200, 200), np.float32)
    centres = np.array([[60.0, 60.0], [60.0, 60.0]], np.float32)
    res = seg(vol, (1.0, 1.0), normalised=True, centres=centres, found=np.array([True, False]))
    assert res.localised.tolist() == [True, False] and np.allclose(res.centres, 60.0)
    assert seg(vol, (1.0, 1.0), normalised=True, centres=centres).localised.all()


def _fake(centre_by_call, judged, monkeypatch):
    """A stand-in segmenter whose masks are judged by table: ``judged[k]`` = (plausible, predicted Dice) of the
    k-th mask it draws (0: the first look); its proposals are at ``centre_by_call``."""
    from lgenet.segment import second_look as sl

    drawn = []

    class Seg:
        spec = SimpleNamespace(percentiles=(1.0, 99.0), normalisation=3)

        def __call__(self, image, spacing, *, normalised=False, centres=None, found=None):
            c = np.full((image.shape[0], 2), 50.0) if centres is None else np.asarray(centres)
            drawn.append(c.mean(0).tolist())
            return SimpleNamespace(classes=None, centres=c, localised=np.ones(image.shape[0], bool), k=len(drawn) - 1)

        def proposals(self, vol01, spacing, **kw):
            return [(np.tile(np.asarray(p, np.float32), (vol01.shape[0], 1)), np.ones(vol01.shape[0], bool))
                    for p in centre_by_call]  # fmt: skip

    def judge(res, spacing, slice_mm, quality, profile_outside, image):
        ok, q = judged[res.k]
        return SimpleNamespace(ok=ok), {"quality_dice": q, "quality_lge_error_pp": 1.0}

    monkeypatch.setattr(sl, "_judge", judge)
    monkeypatch.setattr(sl, "tissue_normalise", lambda image, *a, **k: image)
    return Seg(), drawn


QUALITY = {"flag_below": 0.675}


def test_a_trusted_mask_is_not_looked_at_again(monkeypatch):
    from lgenet.segment.second_look import second_look

    seg, drawn = _fake([(50, 50), (150, 150)], {0: (True, 0.80)}, monkeypatch)
    look = second_look(seg, np.zeros((3, 200, 200), np.float32), (1.0, 1.0), 10.0, QUALITY)
    assert (look.looked, look.chosen) == (0, 0) and len(drawn) == 1


def test_a_doubted_mask_is_replaced_only_by_a_trusted_one_clearly_better(monkeypatch):
    from lgenet.segment.second_look import MARGIN, second_look

    img = np.zeros((3, 200, 200), np.float32)
    # the first mask implausible; the proposal at the first mask's place is skipped, the far one trusted
    seg, drawn = _fake([(52, 50), (150, 150)], {0: (False, 0.10), 1: (True, 0.82)}, monkeypatch)
    look = second_look(seg, img, (1.0, 1.0), 10.0, QUALITY)
    assert (look.looked, look.chosen) == (1, 1) and look.quality["quality_dice"] == 0.82 and len(drawn) == 2
    # a plausible proposal the score still doubts (0.54 < 0.675) does not replace an implausible first mask:
    # a refused miss must not become a measured one
    seg, _ = _fake([(150, 150)], {0: (False, 0.10), 1: (True, 0.54)}, monkeypatch)
    look = second_look(seg, img, (1.0, 1.0), 10.0, QUALITY)
    assert (look.looked, look.chosen) == (1, 0) and not look.verdict.ok
    # a trusted proposal less than MARGIN above a flagged first mask leaves it as it is
    seg, _ = _fake([(150, 150)], {0: (True, 0.66), 1: (True, 0.66 + MARGIN / 2)}, monkeypatch)
    assert second_look(seg, img, (1.0, 1.0), 10.0, QUALITY).chosen == 0
    # an implausible proposal never wins, whatever its score
    seg, _ = _fake([(150, 150)], {0: (True, 0.40), 1: (False, 0.95)}, monkeypatch)
    assert second_look(seg, img, (1.0, 1.0), 10.0, QUALITY).chosen == 0
    # of two trusted proposals, the higher
    seg, _ = _fake([(150, 150), (20, 180)], {0: (True, 0.30), 1: (True, 0.76), 2: (True, 0.90)}, monkeypatch)
    look = second_look(seg, img, (1.0, 1.0), 10.0, QUALITY)
    assert (look.looked, look.chosen) == (2, 2)


def test_a_trusted_mask_on_the_wrong_side_gets_a_second_look(monkeypatch):
    from lgenet.segment.rv_side import CONSISTENT, INCONSISTENT, RvSide
    from lgenet.segment.second_look import second_look

    img = np.zeros((3, 200, 200), np.float32)

    def side_by(verdicts):
        return lambda res: RvSide(np.array([0.0, 1.0]), 0.9, 3, verdicts[res.k], 120.0 if verdicts[res.k] else 0.0)

    # the first mask trusted by the score (0.80) but its RV side inconsistent: a trusted proposal on the right
    # side replaces it, without having to beat the first mask's score
    seg, drawn = _fake([(150, 150)], {0: (True, 0.80), 1: (True, 0.70)}, monkeypatch)
    look = second_look(seg, img, (1.0, 1.0), 10.0, QUALITY, side=side_by({0: INCONSISTENT, 1: CONSISTENT}))
    assert (look.looked, look.chosen) == (1, 1) and look.side.verdict == CONSISTENT
    assert look.first_side.verdict == INCONSISTENT
    # a proposal on the wrong side never replaces a mask, however trusted
    seg, _ = _fake([(150, 150)], {0: (True, 0.40), 1: (True, 0.95)}, monkeypatch)
    look = second_look(seg, img, (1.0, 1.0), 10.0, QUALITY, side=side_by({0: CONSISTENT, 1: INCONSISTENT}))
    assert look.chosen == 0
    # a doubted proposal does not replace a wrong-side mask either: the kept one stays, judged inconsistent
    seg, _ = _fake([(150, 150)], {0: (True, 0.80), 1: (True, 0.60)}, monkeypatch)
    look = second_look(seg, img, (1.0, 1.0), 10.0, QUALITY, side=side_by({0: INCONSISTENT, 1: CONSISTENT}))
    assert look.chosen == 0 and look.side.verdict == INCONSISTENT


def test_the_frame_scan_finds_a_heart_no_localiser_place_shows():
    from lgenet.models.seginfer import mean_centre

    seg = _proposing_segmenter()
    seg.coarse = []  # no coarse localiser: its places cannot help
    vol = np.zeros((2, 200, 200), np.float32)  # 1 mm pixels
    vol[:, 150:180, 20:50] = 0.9  # the heart, ~92 mm from the frame centre: the frame-centred canvas misses it
    (c0, f0), *rest = seg.proposals(vol, (1.0, 1.0))
    assert not rest and not f0.any()
    found = seg.scan_proposals(vol, (1.0, 1.0))
    assert found and all(f.all() for _, f in found)
    near = [np.hypot(*(mean_centre(c, f) - [164.5, 34.5])) for c, f in found]
    assert min(near) < 12  # a canvas near the heart sees it whole
    # places already taken are not proposed again
    again = seg.scan_proposals(vol, (1.0, 1.0), exclude=[mean_centre(c, f) for c, f in found])
    assert again == []
    # an empty frame gives nothing
    assert seg.scan_proposals(np.zeros_like(vol), (1.0, 1.0)) == []
