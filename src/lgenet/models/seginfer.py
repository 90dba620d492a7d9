"""Running the segmentation stages on a stack: localise the LV, segment a window around it, map back.

:class:`Segmenter` holds one or several folds' (localiser, segmenter) pairs; with several, their
class probabilities are averaged (the fold ensemble that ``lgenet segment apply`` uses; a ``regions``
segmenter's nested-region sigmoids are turned into the same four class probabilities first). The
result is a class map on the stack's own voxel grid (0 background, 1 LV cavity, 2 normal
myocardium, 3 enhanced myocardium) plus the probabilities and where the windows were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from lgenet.data.stacks import context_channels, crop_grid, paste_back, sample, tissue_normalise
from lgenet.errors import LgenetError
from lgenet.models.segnet import SegSpec, build_localiser, build_segmenter, decode_classes, regions_to_probs

__all__ = ["PROPOSALS_APART_MM", "Segmenter", "SegResult", "largest_lv_component", "mean_centre", "off_centre_mm"]


@dataclass
class SegResult:
    classes: np.ndarray  # (S, H, W) uint8 on the stack's grid
    probs: np.ndarray  # (S, 4, H, W) float16 class probabilities
    centres: np.ndarray  # (S, 2) window centres (row, col) in frame pixels
    localised: np.ndarray  # (S,) bool: centre found by the localiser on this slice
    notes: list[str] = field(default_factory=list)
    #: (S,) per slice: how well each fold model's flipped predictions agree on the myocardium (mean Dice of each
    #: flip's mask with that model's mean, averaged over the models; NaN where none predicts myocardium)
    agreement: np.ndarray | None = None
    #: (S,) per slice: how far the fold models disagree (mean Dice of each model's mask with the ensemble's; NaN
    #: with one model or where none predicts myocardium)
    fold_agreement: np.ndarray | None = None
    #: (S,) per slice: the mean winning class probability inside the predicted LV (NaN where there is none)
    confidence: np.ndarray | None = None


def largest_lv_component(classes: np.ndarray) -> np.ndarray:
    """Keep the largest 3-D connected LV (classes 1-3) component; everything else becomes background."""
    lv = classes >= 1
    if not lv.any():
        return classes
    lab, n = ndimage.label(lv, structure=np.ones((3, 3, 3), bool))
    if n <= 1:
        return classes
    sizes = ndimage.sum(lv, lab, index=np.arange(1, n + 1))
    keep = lab == (int(np.argmax(sizes)) + 1)
    out = classes.copy()
    out[~keep] = 0
    return out


#: proposals (:meth:`Segmenter.proposals`) whose mean window centres lie closer than this are one place
PROPOSALS_APART_MM = 20.0


def mean_centre(centres: np.ndarray, found: np.ndarray) -> np.ndarray:
    """The mean (row, col) of per-slice window centres over the slices where the LV was found (all when none)."""
    c, f = np.asarray(centres, np.float64), np.asarray(found, bool)
    return (c[f] if f.any() else c).mean(0)


def off_centre_mm(centres: np.ndarray, shape: tuple[int, int], spacing: tuple[float, float]) -> float:
    """Distance (mm) from the frame centre to the mean of per-slice LV centres (row, col) in frame pixels."""
    h, w = shape
    c = np.asarray(centres, np.float64).reshape(-1, 2).mean(0)
    d = (c - np.array([(h - 1) / 2, (w - 1) / 2])) * np.asarray(spacing, np.float64)
    return float(np.hypot(*d))


class Segmenter:
    """A fold model, or the ensemble of several, applied to whole stacks."""

    def __init__(
        self, spec: SegSpec, states: Sequence[tuple[dict, dict]], *, device: str = "cpu", tta: bool = True
    ) -> None:
        self.spec = spec
        self.device = torch.device(device)
        self.tta = tta
        self.localisers, self.segmenters, self.coarse = [], [], []
        for st in states:  # (localiser, segmenter[, coarse localiser or None]) state dicts per fold
            loc_state, seg_state = st[0], st[1]
            coarse_state = st[2] if len(st) > 2 else None
            loc = build_localiser(spec)
            loc.load_state_dict(loc_state)
            seg = build_segmenter(spec)
            seg.load_state_dict(seg_state)
            self.localisers.append(loc.to(self.device).eval())
            self.segmenters.append(seg.to(self.device).eval())
            if spec.coarse_shift_mm > 0:
                if coarse_state is None:
                    raise LgenetError(
                        "the spec asks for a coarse localiser (coarse_shift_mm > 0) but a fold's states hold none"
                    )
                c = build_localiser(spec)
                c.load_state_dict(coarse_state)
                self.coarse.append(c.to(self.device).eval())

    @classmethod
    def from_nets(cls, spec: SegSpec, localisers, segmenters, coarse, *, tta: bool = True) -> Segmenter:
        """An ensemble of networks already built (or callables taking and giving tensors as they do, such as
        :class:`~lgenet.models.seg_onnx.OrtNet`), one localiser, segmenter (and coarse localiser) per fold."""
        if spec.coarse_shift_mm > 0 and len(coarse) != len(localisers):
            raise LgenetError("the spec asks for a coarse localiser (coarse_shift_mm > 0) but a fold has none")
        self = cls.__new__(cls)
        self.spec, self.device, self.tta = spec, torch.device("cpu"), tta
        self.localisers, self.segmenters, self.coarse = list(localisers), list(segmenters), list(coarse)
        return self

    @torch.no_grad()
    def _forward(
        self, nets, x: torch.Tensor, batch: int = 32, *, regions: bool = False, members: list | None = None
    ) -> torch.Tensor:
        """Mean class probabilities over the nets (and the flips when tta): softmax, or with ``regions`` the
        nested-region sigmoids turned into class probabilities (:func:`regions_to_probs`).

        ``members``: a list that receives, per net, the (N, flips, ...) myocardium masks (classes >= 2) of each
        flip's own prediction (the quality score's agreement, :mod:`lgenet.segment.quality`)."""
        flips = [(), (2,), (3,), (2, 3)] if self.tta else [()]
        out = None
        for net in nets:
            own = [] if members is not None else None
            for s in range(0, x.shape[0], batch):
                xb = x[s : s + batch].to(self.device)
                acc = 0
                per_flip = []
                for f in flips:
                    xi = xb.flip(f) if f else xb
                    z = net(xi).float()
                    p = regions_to_probs(torch.sigmoid(z)) if regions else torch.softmax(z, 1)
                    p = p.flip(f) if f else p
                    if own is not None:
                        per_flip.append(torch.from_numpy(decode_classes(p.cpu(), regions) >= 2))
                    acc = acc + p
                if own is not None:
                    own.append(torch.stack(per_flip, 1))
                acc = (acc / len(flips)).cpu()
                if out is None:
                    out = torch.zeros((x.shape[0],) + tuple(acc.shape[1:]))
                out[s : s + batch] += acc
            if own is not None and members is not None:
                members.append(torch.cat(own).numpy())
        return out / len(nets)

    def localise(self, vol01: np.ndarray, spacing: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """(S, 2) LV centre per slice (row, col) and which slices the localiser found it on.

        With a coarse localiser (``spec.coarse_shift_mm`` > 0): it looks first; when the heart it finds lies
        more than ``spec.loc_shift_mm`` from the frame centre -- further than the localiser's training
        canvases ever put it -- the localiser also looks on a canvas centred on that heart, and the canvas
        on which its LV holds the larger probability mass wins (the coarse localiser proposes, the
        localiser decides: a misplaced proposal on a frame that centres the heart loses). The re-centred
        canvas must win by more than ``spec.coarse_margin`` (1.0 since 0.3.0; 1.2 in 0.1.0-0.2.0, when a near tie on a
        heart-centred frame had to keep the frame-centred canvas). With ``spec.coarse_candidates`` > 1 each of the
        coarse localiser's largest components is proposed in turn, and the largest mass of all wins."""
        s, h, w = vol01.shape
        origin = np.array([(h - 1) / 2, (w - 1) / 2], np.float32)
        best = self._localise_on(self.localisers, vol01, spacing, origin)
        if self.coarse:
            for heart in self._coarse_proposals(vol01, spacing, origin):
                if off_centre_mm(heart, (h, w), spacing) > self.spec.loc_shift_mm:
                    other = self._localise_on(self.localisers, vol01, spacing, heart)
                    if other[2] > best[2] * self.spec.coarse_margin:
                        best = other
        return best[0], best[1]

    def proposals(
        self,
        vol01: np.ndarray,
        spacing: tuple[float, float],
        *,
        candidates: int = 3,
        apart_mm: float = PROPOSALS_APART_MM,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every localisation :meth:`localise` weighs, as (centres, found) pairs: the frame-centred canvas first,
        then, with a coarse localiser, a canvas re-centred on each of its ``candidates`` largest LV components
        that lies further than ``spec.loc_shift_mm`` from the frame centre; a proposal whose mean centre lies
        within ``apart_mm`` of an earlier one is left out. What a second look
        (:mod:`lgenet.segment.second_look`) segments in turn when the first mask looks wrong."""
        s, h, w = vol01.shape
        origin = np.array([(h - 1) / 2, (w - 1) / 2], np.float32)
        first = self._localise_on(self.localisers, vol01, spacing, origin)
        out = [(first[0], first[1])]
        if not self.coarse:
            return out
        for heart in self._coarse_proposals(vol01, spacing, origin, candidates=candidates):
            if off_centre_mm(heart, (h, w), spacing) <= self.spec.loc_shift_mm:
                continue
            c, f, _ = self._localise_on(self.localisers, vol01, spacing, heart)
            mm = np.asarray(spacing, np.float64)
            if all(np.hypot(*((mean_centre(c, f) - mean_centre(*o)) * mm)) > apart_mm for o in out):
                out.append((c, f))
        return out

    def scan_proposals(
        self,
        vol01: np.ndarray,
        spacing: tuple[float, float],
        *,
        exclude: Sequence[np.ndarray] = (),
        apart_mm: float = PROPOSALS_APART_MM,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The frame scanned: the localisers look on canvases centred on a grid over the frame, every
        2 x ``spec.loc_shift_mm``, and each LV found within that step of its canvas centre (the localisers were
        trained with the heart near the centre) is a proposal, as (centres, found). A proposal within ``apart_mm`` of
        an earlier one or of a mean centre (frame pixels) in ``exclude`` is left out. A second look's last resort
        (configuration 29)."""
        s, h, w = vol01.shape
        mm = np.asarray(spacing, np.float64)
        step = 2.0 * max(float(self.spec.loc_shift_mm), 10.0)
        rows = np.arange(step / 2 / mm[0], h, step / mm[0])
        cols = np.arange(step / 2 / mm[1], w, step / mm[1])
        taken = [np.asarray(e, np.float64) for e in exclude]
        out = []
        for r in rows:
            for c in cols:
                at = np.array([r, c], np.float32)
                centres, found, _ = self._localise_on(self.localisers, vol01, spacing, at)
                if not found.any():
                    continue
                here = mean_centre(centres, found)
                if np.hypot(*((here - at) * mm)) > step:
                    continue
                if all(np.hypot(*((here - t) * mm)) > apart_mm for t in taken):
                    taken.append(here)
                    out.append((centres, found))
        return out

    def _coarse_proposals(
        self, vol01: np.ndarray, spacing: tuple[float, float], origin: np.ndarray, *, candidates: int | None = None
    ) -> list:
        """Where the coarse localiser sees a heart: the mean centre (frame pixels) over the found slices of each of
        its ``candidates`` (default ``spec.coarse_candidates``) largest 3-D LV components, largest first (one: the
        component the localiser itself would keep)."""
        out = []
        prob = self._loc_prob(self.coarse, vol01, spacing, origin)
        k = self.spec.coarse_candidates if candidates is None else candidates
        for comp in range(max(int(k), 1)):
            centres, found, _ = self._localise_on(self.coarse, vol01, spacing, origin, component=comp, prob=prob)
            if not found.any():
                break
            out.append(centres[found].mean(0).astype(np.float32))
        return out

    def _localise_on(
        self,
        nets,
        vol01: np.ndarray,
        spacing: tuple[float, float],
        origin: np.ndarray,
        *,
        component: int = 0,
        prob: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Per-slice centres, found flags and the LV probability mass of the kept component (the largest 3-D one;
        ``component`` k: the (k+1)-th largest, none found when there are fewer), on a canvas centred at
        ``origin`` (frame pixels). ``prob``: the nets' LV map of that canvas when already computed."""
        if prob is None:
            prob = self._loc_prob(nets, vol01, spacing, origin)
        return self._place(prob, origin, spacing, component)

    def _loc_prob(self, nets, vol01: np.ndarray, spacing: tuple[float, float], origin: np.ndarray) -> np.ndarray:
        """(S, L, L) LV probability of the nets on the ``loc_size`` canvas centred at ``origin``."""
        spec = self.spec
        s, h, w = vol01.shape
        centre = torch.from_numpy(np.repeat(np.asarray(origin, np.float32)[None], s, 0))
        grid = crop_grid(centre, (h, w), spacing, size=spec.loc_size, out_spacing=spec.loc_spacing)
        canvas = sample(torch.from_numpy(vol01)[:, None], grid)
        return self._forward(nets, canvas)[:, 1].numpy()

    def _place(
        self, prob: np.ndarray, origin: np.ndarray, spacing: tuple[float, float], component: int
    ) -> tuple[np.ndarray, np.ndarray, float]:
        spec = self.spec
        s = prob.shape[0]
        lv = prob > 0.5  # (S, L, L)
        lab, n = ndimage.label(lv, structure=np.ones((3, 3, 3), bool))
        if n > 1 or component:
            sizes = ndimage.sum(lv, lab, index=np.arange(1, n + 1)) if n else np.zeros(0)
            order = np.argsort(-np.asarray(sizes), kind="stable")  # largest first; ties: the first label
            lv = lab == (int(order[component]) + 1) if component < n else np.zeros_like(lv)
        mass = float(prob[lv].sum())
        found = lv.reshape(s, -1).sum(1) >= 4
        half = (spec.loc_size - 1) / 2
        out = np.zeros((s, 2), np.float32)
        if found.any():
            rr, cc = np.nonzero(lv.sum(0))
            wts = lv.sum(0)[rr, cc]
            overall = np.array([np.average(rr, weights=wts), np.average(cc, weights=wts)])
        else:
            overall = np.array([half, half])
        for k in range(s):
            rc = np.argwhere(lv[k]).mean(0) if found[k] else overall
            out[k, 0] = origin[0] + (rc[0] - half) * spec.loc_spacing / spacing[0]
            out[k, 1] = origin[1] + (rc[1] - half) * spec.loc_spacing / spacing[1]
        return out, found, mass

    def __call__(
        self,
        image: np.ndarray,
        spacing: tuple[float, float],
        *,
        normalised: bool = False,
        centres: np.ndarray | None = None,
        found: np.ndarray | None = None,
    ) -> SegResult:
        """Segment a raw (S, H, W) stack (apex -> base) with pixel size ``spacing`` (row, col) mm; ``centres``
        (S, 2): the windows' centres instead of the localiser's (``found``: on which slices a localiser found
        them; default all)."""
        spec = self.spec
        vol01 = (
            image.astype(np.float32)
            if normalised
            else tissue_normalise(image, spec.percentiles, method=spec.normalisation, spacing=spacing)
        )
        s, h, w = vol01.shape
        notes = []
        if centres is None:
            centres, found = self.localise(vol01, spacing)
            if not found.any():
                notes.append("the localiser found no LV on any slice: windows placed at the frame centre")
            elif not self.coarse:
                off = off_centre_mm(centres[found], (h, w), spacing)
                if off > spec.loc_shift_mm:
                    notes.append(
                        f"the LV was found {off:.0f} mm from the frame centre, further than this run's "
                        f"localiser saw in training ({spec.loc_shift_mm:.0f} mm): check the overlay, or use a "
                        f"run trained with a coarse localiser (--coarse-shift-mm 120, the default since "
                        f"2026-11-27) for frames that do not centre the heart"
                    )
        else:
            found = np.ones(s, bool) if found is None else np.asarray(found, bool)
        v = torch.from_numpy(vol01)
        chans = torch.stack([context_channels(v, k, spec.context) for k in range(s)])
        ct = torch.from_numpy(np.asarray(centres, np.float32))
        grid = crop_grid(ct, (h, w), spacing, size=spec.crop, out_spacing=spec.spacing)
        members: list = []
        p = self._forward(self.segmenters, sample(chans, grid), regions=spec.regions, members=members)
        full = paste_back(p, ct, (h, w), spacing, out_spacing=spec.spacing)  # (S, 4, H, W)
        classes = largest_lv_component(decode_classes(full, spec.regions))
        agree, fold_agree = _member_agreement(members)
        win = p.max(1).values.numpy()  # (S, crop, crop)
        lv = decode_classes(p, spec.regions) >= 1
        conf = np.array([float(win[k][lv[k]].mean()) if lv[k].any() else np.nan for k in range(s)])
        return SegResult(
            classes=classes,
            probs=full.numpy().astype(np.float16),
            centres=np.asarray(centres),
            localised=found,
            notes=notes,
            agreement=agree,
            fold_agreement=fold_agree,
            confidence=conf,
        )


def _dice_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row Dice of boolean (N, ...) masks; NaN where both are empty."""
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    inter = (a & b).sum(1).astype(np.float64)
    tot = a.sum(1) + b.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, 2 * inter / np.maximum(tot, 1), np.nan)


def _member_agreement(members: list) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per slice: the flips' agreement within each model (averaged over models) and the models' agreement with
    the ensemble, from :meth:`Segmenter._forward`'s per-model (S, flips, ...) myocardium masks."""
    import warnings

    if not members:
        return None, None
    with warnings.catch_warnings():  # a slice no member draws myocardium on is NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        within, means = [], []
        for m in members:
            mean = m.mean(1) >= 0.5  # (S, ...)
            means.append(mean)
            if m.shape[1] > 1:
                within.append(np.nanmean(np.stack([_dice_rows(m[:, f], mean) for f in range(m.shape[1])]), 0))
        agree = np.nanmean(np.stack(within), 0) if within else None
        fold = None
        if len(means) > 1:
            ens = np.mean(np.stack(means), 0) >= 0.5
            fold = np.nanmean(np.stack([_dice_rows(m, ens) for m in means]), 0)
    return agree, fold
