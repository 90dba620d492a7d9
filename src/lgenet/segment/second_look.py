"""A second look at a mask the quality score doubts (since 0.3.0).

On a whole-thorax field of view the localisers can settle on a look-alike (the right ventricle, a vessel, tissue
outside the heart) while the LV lies elsewhere in the frame. The segmenter's mask is then flagged or refused, but
the heart was among the places the localisers weighed. A second look segments each of those places in turn
(:meth:`lgenet.models.seginfer.Segmenter.proposals`: the frame-centred canvas and canvases re-centred on the coarse
localiser's largest LV components) and keeps the mask the quality score prefers:

* only when the first mask is doubtful: implausible, or with a predicted myocardium Dice below the score's flag
  line (:data:`lgenet.segment.quality.FLAG_BELOW`); a mask the score trusts is never looked at again, so a stack
  that segments well costs no more;
* another proposal replaces the first mask only with a mask the score trusts: plausible, with a predicted Dice
  at or above the flag line and higher than the kept mask's by at least :data:`MARGIN` (fixed before any run), so
  that the score's noise alone does not move a mask and a doubted number is never traded for another doubted
  number. (In the first form any plausible mask beat an implausible one, and under every proxy at once one
  refused miss became a measured miss: docs/results.md, configuration 26.)

With ``side`` (a judge of :mod:`lgenet.segment.rv_side`), a mask with the blood beside its ring on the wrong side
is doubted too, never replaces another, and sets no bar of its own. ``segment apply`` does not pass it: measured
with a stand-in for the geometry, it cost masks under three proxies (docs/results.md, configuration 27);
``bench/second_look.py --side-standin`` measures it.

The score that arbitrates is the run's own (``quality.json``); a bench measures the second look with a score
fitted without the patient's fold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from lgenet.data.stacks import tissue_normalise
from lgenet.models.seginfer import PROPOSALS_APART_MM, mean_centre
from lgenet.segment.plausibility import Plausibility, check_plausibility
from lgenet.segment.quality import flag_line, predict_quality, quality_features
from lgenet.segment.rv_side import INCONSISTENT, RvSide

__all__ = ["MARGIN", "SecondLook", "doubtful", "second_look"]

#: how much higher another proposal's predicted myocardium Dice must be to replace the first mask
MARGIN = 0.05


@dataclass
class SecondLook:
    result: object  #: the kept :class:`~lgenet.models.seginfer.SegResult`
    verdict: Plausibility  #: its plausibility
    quality: dict  #: its predicted Dice and LGE % error
    looked: int  #: how many other proposals were segmented (0: the first mask was trusted)
    chosen: int  #: which mask was kept: 0 the first, k the k-th other proposal
    first_verdict: Plausibility | None = None  #: the first mask's plausibility
    first_quality: dict | None = None  #: the first mask's predicted Dice and LGE % error
    side: RvSide | None = None  #: the kept mask's RV side (None: not judged)
    first_side: RvSide | None = None  #: the first mask's


def _judge(res, spacing, slice_mm, quality: Mapping, profile_outside: int, image) -> tuple[Plausibility, dict]:
    verdict = check_plausibility(res.classes, spacing, slice_mm)
    feats = quality_features(res, verdict, profile_outside=profile_outside, image=image)
    return verdict, predict_quality(quality, feats)


def doubtful(verdict: Plausibility, q: Mapping, quality: Mapping, side: RvSide | None = None) -> bool:
    """Whether a mask gets a second look: implausible, below the score's flag line, or its RV side inconsistent."""
    wrong_side = side is not None and side.verdict == INCONSISTENT
    return (not verdict.ok) or q["quality_dice"] < flag_line(quality) or wrong_side


def second_look(
    seg,
    image: np.ndarray,
    spacing: tuple[float, float],
    slice_mm: float | None,
    quality: Mapping,
    *,
    profile_outside: int = 0,
    first=None,
    apart_mm: float = PROPOSALS_APART_MM,
    side: Callable[[object], RvSide] | None = None,
    scan: bool = False,
) -> SecondLook:
    """The mask of ``image`` (S, H, W, raw) that the quality model ``quality`` prefers among the first one
    (``first``, a :class:`~lgenet.models.seginfer.SegResult` of ``seg``; segmented here when None) and, when that
    one is :func:`doubtful`, the segmenter's other proposals whose window centres lie further than ``apart_mm`` from
    it. ``scan``: when no proposal gives a mask the score trusts, the frame is scanned for more
    (:meth:`~lgenet.models.seginfer.Segmenter.scan_proposals`). ``side``: judges a mask's RV side
    (:func:`lgenet.segment.rv_side.judge_rv_side` against the stack's geometry), or None when the stack has none."""
    if first is None:
        first = seg(image, spacing)
    verdict, q = _judge(first, spacing, slice_mm, quality, profile_outside, image)
    trust = flag_line(quality)
    s0 = side(first) if side is not None else None
    best = SecondLook(first, verdict, q, 0, 0, verdict, q, s0, s0)
    if not doubtful(verdict, q, quality, s0):
        return best
    spec = seg.spec
    vol01 = tissue_normalise(image, spec.percentiles, method=spec.normalisation, spacing=spacing)
    mm = np.asarray(spacing, np.float64)
    here = mean_centre(first.centres, first.localised)
    looked = 0
    proposals = seg.proposals(vol01, spacing, apart_mm=apart_mm)

    def still_doubted() -> bool:
        return not best.verdict.ok or best.quality["quality_dice"] < trust

    def candidates():
        yield from proposals
        if scan and still_doubted():  # the frame scanned, once the localisers' own places are spent
            seen = [here, *(mean_centre(c, f) for c, f in proposals)]
            yield from seg.scan_proposals(vol01, spacing, exclude=seen, apart_mm=apart_mm)

    for centres, found in candidates():
        if np.hypot(*((mean_centre(centres, found) - here) * mm)) <= apart_mm:
            continue  # where the first mask already is
        looked += 1
        res = seg(vol01, spacing, normalised=True, centres=centres, found=found)
        v, qq = _judge(res, spacing, slice_mm, quality, profile_outside, image)
        # a kept mask on the wrong side sets no bar of its own: its score is not evidence of an LV
        kept_wrong = best.side is not None and best.side.verdict == INCONSISTENT
        need = trust if kept_wrong else max(trust, best.quality["quality_dice"] + MARGIN)
        if v.ok and qq["quality_dice"] >= need:
            sk = side(res) if side is not None else None
            if sk is None or sk.verdict != INCONSISTENT:
                best = SecondLook(res, v, qq, 0, looked, verdict, q, sk, s0)
    best.looked = looked
    return best
