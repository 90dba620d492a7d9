"""Training the two segmentation stages of one fold: the data each network learns from, and the order in which a
fold trains its localiser, its coarse localiser and its segmenter (:mod:`lgenet.segment.augment` augments,
:mod:`lgenet.segment.loop` trains one network).

Training data are prepared once per fold from the training patients' stacks (already tissue-normalised, with their
class maps):

* localiser: every slice on a ``loc_size`` canvas at ``loc_spacing`` mm centred on the frame,
  target LV (classes 1-3) vs background;
* segmenter: every slice's 2.5-D window on a context canvas 1.5x the crop, centred on the slice's
  expert LV centroid; the augmentation then rotates, scales, flips and shifts it (up to 12 mm, so that
  the network does not rely on the localiser being exact) before the centre crop.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from lgenet.data.stacks import context_channels, crop_grid, lv_centres, sample
from lgenet.models.segnet import SegSpec, build_localiser, build_segmenter
from lgenet.segment.augment import BatchAffine, seg_augmentation
from lgenet.segment.composite import thorax_composites
from lgenet.segment.loop import SegTrainParams, Stage, train_network

__all__ = [
    "SegTrainParams",
    "SegTrainResult",
    "prepare_localiser_data",
    "prepare_segmenter_data",
    "train_coarse_localiser",
    "train_fold",
]

log = logging.getLogger("lgenet")


@dataclass
class SegTrainResult:
    losses: list[float] = field(default_factory=list)
    loc_losses: list[float] = field(default_factory=list)
    coarse_losses: list[float] = field(default_factory=list)
    coarse_state: dict | None = None
    seconds: float = 0.0
    loc_seconds: float = 0.0
    n_slices: int = 0


# ----------------------------------------------------------------------------------- data
def prepare_localiser_data(
    stacks: Sequence[tuple[np.ndarray, np.ndarray, tuple[float, float]]], spec: SegSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, L, L) canvases and (N, 1, L, L) LV targets from (normalised stack, classes, spacing) triples."""
    xs, ys = [], []
    for vol, cls, spacing in stacks:
        s, h, w = vol.shape
        centres = torch.tensor([[(h - 1) / 2, (w - 1) / 2]] * s, dtype=torch.float32)
        grid = crop_grid(centres, (h, w), spacing, size=spec.loc_size, out_spacing=spec.loc_spacing)
        xs.append(sample(torch.from_numpy(vol)[:, None], grid))
        lv = torch.from_numpy((cls >= 1).astype(np.float32))[:, None]
        ys.append((sample(lv, grid) > 0.5).float())
    return torch.cat(xs), torch.cat(ys)


def _context_size(spec: SegSpec) -> int:
    levels = 2 ** (len(spec.channels) - 1)
    return int(math.ceil(spec.crop * 1.5 / levels) * levels)


def prepare_segmenter_data(
    stacks: Sequence[tuple[np.ndarray, np.ndarray, tuple[float, float]]], spec: SegSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, K, K) 2.5-D context windows and (N, 1, K, K) class targets (K = 1.5 x crop), LV-centred."""
    size = _context_size(spec)
    xs, ys = [], []
    for vol, cls, spacing in stacks:
        s, h, w = vol.shape
        centres = torch.from_numpy(lv_centres(cls))
        grid = crop_grid(centres, (h, w), spacing, size=size, out_spacing=spec.spacing)
        v = torch.from_numpy(vol)
        chans = torch.stack([context_channels(v, k, spec.context) for k in range(s)])  # (S, C, H, W)
        xs.append(sample(chans, grid))
        onehot = torch.nn.functional.one_hot(torch.from_numpy(cls.astype(np.int64)), 4).permute(0, 3, 1, 2).float()
        ys.append(sample(onehot, grid).argmax(1, keepdim=True).float())  # linear on one-hot, then argmax
    return torch.cat(xs), torch.cat(ys)


def _augmentation(
    spec: SegSpec, params: SegTrainParams, *, out_size: int, shift_px: float, seed: int, segmenter: bool = False
):
    """The training transform: MONAI per sample, or (with ``batch_augment``) a :class:`BatchAffine` for the
    geometry plus MONAI's intensity part per sample; ``None`` without augmentation. ``segmenter``: the windows
    carry the four classes (the un-nulled myocardium of ``aug_unnulled`` needs them)."""
    if not params.augment:
        return None
    inten = {
        "intensity_scale": params.aug_intensity_scale,
        "intensity_shift": params.aug_intensity_shift,
        "edge_prob": params.aug_edge,
        "unnulled_prob": params.aug_unnulled if segmenter else 0.0,
        "unnulled_kind": params.aug_unnulled_kind,
    }
    if params.batch_augment:
        return (
            BatchAffine(out_size, shift_px, seed),
            seg_augmentation(spec, out_size=out_size, shift_px=shift_px, seed=seed, spatial=False, **inten),
        )
    return seg_augmentation(spec, out_size=out_size, shift_px=shift_px, seed=seed, strong=True, **inten)


def _state(net: torch.nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def _built(build, spec: SegSpec, state: dict | None) -> torch.nn.Module:
    """A new network, or (fine-tuning, ``state``) one that starts from a trained network's weights."""
    net = build(spec)
    if state is not None:
        net.load_state_dict(state)
    return net


def train_coarse_localiser(
    xl: torch.Tensor,
    yl: torch.Tensor,
    spec: SegSpec,
    params: SegTrainParams,
    *,
    seed: int,
    init: dict | None = None,
) -> tuple[dict, list[float]]:
    """The coarse localiser of :func:`train_fold` (its own seeds): the localiser's canvases shifted by up to
    ``spec.coarse_shift_mm``, so that it finds a heart far from the frame centre."""
    torch.manual_seed(seed + 6)
    net = _built(build_localiser, spec, init)
    t = _augmentation(
        spec, params, out_size=spec.loc_size, shift_px=spec.coarse_shift_mm / spec.loc_spacing, seed=seed + 7
    )
    losses = train_network(net, xl, yl, Stage(params.loc_epochs, seed + 8, transform=t), params)
    return _state(net), losses


def train_fold(
    stacks: Sequence[tuple[np.ndarray, np.ndarray, tuple[float, float]]],
    spec: SegSpec,
    params: SegTrainParams,
    *,
    seed: int,
    on_epoch: Callable[[str, int, float], None] | None = None,
    init: tuple[dict, dict, dict | None] | None = None,
    train_localisers: bool = True,
) -> tuple[dict, dict, SegTrainResult]:
    """Train the localiser and the segmenter of one fold; returns their state dicts and the record.

    ``init``: (localiser, segmenter, coarse localiser or None) states to start from instead of random weights
    (``lgenet segment finetune``); ``params`` then says how long and how fast they are fine-tuned;
    ``train_localisers=False`` (with ``init``) keeps the given localisers as they are."""
    loc_init, seg_init, coarse_init = init if init is not None else (None, None, None)

    def report(stage: str):
        return (lambda e, v: on_epoch(stage, e, v)) if on_epoch else None

    res = SegTrainResult()
    t0 = time.perf_counter()
    if init is not None and not train_localisers:
        loc_state: dict = loc_init
        res.coarse_state = coarse_init
    else:
        loc_state = _train_localisers(stacks, spec, params, seed, res, report, loc_init, coarse_init)
    res.loc_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    xs, ys = prepare_segmenter_data(stacks, spec)
    torch.manual_seed(seed + 3)
    seg = _built(build_segmenter, spec, seg_init)
    ts = _augmentation(spec, params, out_size=spec.crop, shift_px=12.0 / spec.spacing, seed=seed + 4, segmenter=True)
    stage = Stage(params.epochs, seed + 5, transform=ts, center_crop=spec.crop, regions=spec.regions)
    res.losses = train_network(seg, xs, ys, stage, params, report("segmenter"))
    res.seconds = time.perf_counter() - t1
    return loc_state, _state(seg), res


def _train_localisers(stacks, spec, params, seed, res, report, loc_init, coarse_init) -> dict:
    """The localiser (and the coarse localiser, into ``res``) of :func:`train_fold`; the localiser's state."""
    xl, yl = prepare_localiser_data(stacks, spec)
    res.n_slices = int(xl.shape[0])
    xk, yk = xl, yl  # the coarse localiser's training canvases
    wanted = params.loc_thorax_nets == "both" or spec.coarse_shift_mm > 0  # "coarse" without one: nothing to train
    if params.loc_thorax > 0 and wanted:  # whole-thorax composites (lgenet.segment.composite), for those named
        groups = np.repeat(np.arange(len(stacks)), [st[0].shape[0] for st in stacks])
        xc, yc = thorax_composites(
            xl, yl, groups, spacing_mm=spec.loc_spacing, per_slice=params.loc_thorax, seed=seed + 9
        )
        xk, yk = torch.cat([xl, xc]), torch.cat([yl, yc])
        if params.loc_thorax_nets == "both":
            xl, yl = xk, yk
        elif params.loc_thorax_nets == "coarse+centred":  # the frame-centred localiser: the heart kept near the centre
            xf, yf = thorax_composites(
                xl,
                yl,
                groups,
                spacing_mm=spec.loc_spacing,
                per_slice=params.loc_thorax,
                seed=seed + 11,
                max_shift_mm=spec.loc_shift_mm,
            )
            xl, yl = torch.cat([xl, xf]), torch.cat([yl, yf])
    torch.manual_seed(seed)
    loc = _built(build_localiser, spec, loc_init)
    tl = _augmentation(
        spec, params, out_size=spec.loc_size, shift_px=spec.loc_shift_mm / spec.loc_spacing, seed=seed + 1
    )
    res.loc_losses = train_network(
        loc, xl, yl, Stage(params.loc_epochs, seed + 2, transform=tl), params, report("localiser")
    )
    if spec.coarse_shift_mm > 0:
        res.coarse_state, res.coarse_losses = train_coarse_localiser(xk, yk, spec, params, seed=seed, init=coarse_init)
    return _state(loc)
