"""Training the two segmentation stages of one fold (MONAI networks, transforms and loss).

Training data are prepared once per fold from the training patients' stacks (already
tissue-normalised, with their class maps):

* localiser: every slice on a ``loc_size`` canvas at ``loc_spacing`` mm centred on the frame,
  target LV (classes 1-3) vs background;
* segmenter: every slice's 2.5-D window on a context canvas 1.5x the crop, centred on the slice's
  expert LV centroid; the augmentation then rotates, scales, flips and shifts it (up to 12 mm, so that
  the network does not rely on the localiser being exact) before the centre crop.

Augmentation (MONAI, "BigAug"-style, stacked): any rotation, scale 0.8-1.25, flips, shift; bias
field, gamma 0.6-1.6, intensity scale (x0.5-1.5 by default) and shift (+-0.3 by default, then clipped to
[0, 1] as at inference), Gaussian noise, blur and simulated low resolution,
so that another scanner's contrast, noise and resolution look like something seen in training.
Loss: Dice + cross-entropy (MONAI ``DiceCELoss``, batch Dice without the background); with
``SegSpec.regions``, batch Dice (MONAI ``DiceLoss``, sigmoid) + binary cross-entropy on each of the
three nested regions (LV, myocardium, enhancement). Adam with
a polynomial learning-rate decay to zero over the fixed number of epochs: nothing is chosen on
the test fold.
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
from lgenet.models.segnet import SegSpec, build_localiser, build_segmenter, region_targets
from lgenet.runs.compute import precision_autocast

__all__ = [
    "SegTrainParams",
    "SegTrainResult",
    "prepare_localiser_data",
    "prepare_segmenter_data",
    "train_network",
    "seg_augmentation",
    "train_coarse_localiser",
]

log = logging.getLogger("lgenet")


@dataclass(frozen=True)
class SegTrainParams:
    epochs: int = 60
    loc_epochs: int = 15
    loc_shift_mm: float = 20.0
    coarse_shift_mm: float = 0.0
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-5
    augment: bool = True
    batch_augment: bool = False
    aug_intensity_scale: float = 0.5
    aug_intensity_shift: float = 0.3
    loader_workers: int = 0
    device: str = "cpu"
    precision: str = "fp32"


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


def seg_augmentation(
    spec: SegSpec,
    *,
    out_size: int,
    shift_px: float,
    seed: int,
    strong: bool = True,
    spatial: bool = True,
    intensity_scale: float = 0.5,
    intensity_shift: float = 0.3,
):
    """The MONAI transform pipeline applied to each training sample ({'image', 'label'}, channel-first).

    ``spatial=False``: the intensity part only (the batch path draws the geometry with :class:`BatchAffine`).
    ``intensity_scale`` / ``intensity_shift``: the linear intensity change, x(1 +- scale) and +- shift.
    """
    import monai.transforms as T

    keys = ["image", "label"]
    spatial_t = [  # the affine samples the output window directly from the larger context canvas (no corners)
        T.RandAffined(
            keys,
            prob=1.0,
            rotate_range=math.pi,
            scale_range=(0.2, 0.2),
            shear_range=0.05,
            translate_range=(shift_px, shift_px),
            spatial_size=(out_size, out_size),
            mode=("bilinear", "nearest"),
            padding_mode="zeros",
        ),
        T.RandFlipd(keys, prob=0.5, spatial_axis=0),
        T.RandFlipd(keys, prob=0.5, spatial_axis=1),
    ]
    intensity = (
        [
            T.RandBiasFieldd("image", prob=0.3, coeff_range=(0.0, 0.3)),
            T.RandAdjustContrastd("image", prob=0.5, gamma=(0.6, 1.6)),
            # wide linear intensity changes: another centre's offset, window or body fraction moves the
            # normalised tissue by a scale and a shift (e.g. EMIDEC without its ~2048 offset: x1.3, -0.25)
            T.RandScaleIntensityd("image", factors=float(intensity_scale), prob=0.6),
            T.RandShiftIntensityd("image", offsets=float(intensity_shift), prob=0.6),
            T.RandGaussianNoised("image", prob=0.3, std=0.04),
            T.RandGaussianSmoothd("image", prob=0.2, sigma_x=(0.4, 1.0), sigma_y=(0.4, 1.0)),
            T.RandSimulateLowResolutiond(keys=["image"], prob=0.2, zoom_range=(0.5, 1.0), upsample_mode="bilinear"),
            T.Lambdad("image", _clip01),
        ]
        if strong
        else []
    )
    pipe = T.Compose((spatial_t if spatial else []) + intensity)
    pipe.set_random_state(seed % (2**32))
    return pipe


class BatchAffine:
    """The spatial part of :func:`seg_augmentation` drawn per sample and applied to a whole batch at once
    (``torch.nn.functional.affine_grid`` / ``grid_sample``): any rotation, scale 1 +- 0.2 per axis, shear
    +- 0.05, translation +- ``shift_px``, flips; the ``out_size`` window is sampled from the centre of
    the larger context canvas (bilinear for the image, nearest for the labels, zeros outside).
    About 5x cheaper per sample on the CPU than MONAI's per-sample ``RandAffined``."""

    def __init__(self, out_size: int, shift_px: float, seed: int) -> None:
        self.out, self.shift = int(out_size), float(shift_px)
        self.gen = torch.Generator().manual_seed(int(seed) % (2**63))

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch.nn.functional as F

        b, _, h, w = x.shape
        u = lambda *shape: torch.rand(*shape, generator=self.gen)  # noqa: E731
        ang = (u(b) * 2 - 1) * math.pi
        sx, sy = 1 + (u(b) * 2 - 1) * 0.2, 1 + (u(b) * 2 - 1) * 0.2
        sh = (u(b) * 2 - 1) * 0.05
        fx = torch.where(u(b) < 0.5, -1.0, 1.0)
        fy = torch.where(u(b) < 0.5, -1.0, 1.0)
        tx, ty = (u(b) * 2 - 1) * self.shift, (u(b) * 2 - 1) * self.shift
        c, s_ = torch.cos(ang), torch.sin(ang)
        # output coords -> input coords (normalised): window scale . rotation . shear . zoom . flip
        m = torch.zeros(b, 2, 3)
        a11, a12 = c / sx, (-s_ + c * sh) / sy
        a21, a22 = s_ / sx, (c + s_ * sh) / sy
        m[:, 0, 0], m[:, 0, 1] = a11 * fx * self.out / w, a12 * fy * self.out / w
        m[:, 1, 0], m[:, 1, 1] = a21 * fx * self.out / h, a22 * fy * self.out / h
        m[:, 0, 2], m[:, 1, 2] = 2 * tx / w, 2 * ty / h
        grid = F.affine_grid(m.to(x.dtype), (b, x.shape[1], self.out, self.out), align_corners=False)
        xo = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        yo = F.grid_sample(y.float(), grid.to(torch.float32), mode="nearest", padding_mode="zeros", align_corners=False)
        return xo, yo


def _clip01(x):
    """Inputs are clipped to [0, 1] at inference (tissue_normalise): so are augmented ones."""
    return x.clamp(0.0, 1.0) if hasattr(x, "clamp") else np.clip(x, 0.0, 1.0)


class _Augmented(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform) -> None:
        self.x, self.y, self.t = x, y, transform

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int):
        d = {"image": self.x[i], "label": self.y[i]}
        if self.t is not None:
            d = self.t(d)
        return _plain(d["image"]), _plain(d["label"])


class _AugmentedBatches(torch.utils.data.Dataset):
    """Whole augmented batches by index list (the batch path in DataLoader worker processes): the geometry
    (:class:`BatchAffine`) for the batch, then MONAI's intensity part per sample, as in the training process."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_tf, transform) -> None:
        self.x, self.y, self.batch_tf, self.t = x, y, batch_tf, transform

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, idx):
        return _augment_batch(self.x[idx], self.y[idx], self.batch_tf, self.t)


def _augment_batch(xb, yb, batch_tf, transform):
    if batch_tf is not None:
        xb, yb = batch_tf(xb, yb)
    if transform is not None:
        pairs = [transform({"image": xb[i], "label": yb[i]}) for i in range(xb.shape[0])]
        xb = torch.stack([_plain(d["image"]) for d in pairs])
        yb = torch.stack([_plain(d["label"]) for d in pairs])
    return xb, yb


def _reseed_worker(worker_id: int) -> None:
    """Each DataLoader worker draws its own augmentation stream (from the seed the loader's generator gave it);
    without this every worker would repeat the same geometry and intensity draws."""
    info = torch.utils.data.get_worker_info()
    ds, seed = info.dataset, int(info.seed)
    if getattr(ds, "batch_tf", None) is not None:
        ds.batch_tf.gen.manual_seed(seed % (2**63))
    t = getattr(ds, "t", None)
    if t is not None and hasattr(t, "set_random_state"):
        t.set_random_state(seed % (2**32))


def _loader_context():
    """Fork where there is one (Linux): the workers share the training tensors instead of receiving a pickled
    copy, and a fold that runs in a spawned process (``--executor process``) would otherwise spawn its
    workers too. The workers never touch CUDA."""
    import multiprocessing as mp

    return mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None


def _plain(x) -> torch.Tensor:
    """A plain float tensor: MONAI's MetaTensor would route every network op through its metadata hooks."""
    if hasattr(x, "as_tensor"):
        x = x.as_tensor()
    return torch.as_tensor(x).float()


# ----------------------------------------------------------------------------------- loop
def train_network(
    net: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_classes: int,
    epochs: int,
    params: SegTrainParams,
    seed: int,
    transform=None,
    center_crop: int | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    regions: bool = False,
) -> list[float]:
    """Train ``net`` on (x, y) for ``epochs`` (Dice+CE, Adam, poly LR decay); returns the epoch losses.

    ``y`` is always the (N, 1, H, W) class map; with ``regions`` the net has one sigmoid output per nested
    region (:func:`~lgenet.models.segnet.region_targets`) and the loss is Dice + BCE per region."""
    from monai.data import get_track_meta, set_track_meta
    from monai.losses import DiceCELoss

    tracking = get_track_meta()
    set_track_meta(False)  # plain tensors out of the transforms (no per-op metadata bookkeeping)
    try:
        return _train(
            net,
            x,
            y,
            epochs=epochs,
            params=params,
            seed=seed,
            transform=transform,
            center_crop=center_crop,
            on_epoch=on_epoch,
            loss_fn=_RegionLoss()
            if regions
            else DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True),
        )
    finally:
        set_track_meta(tracking)


class _RegionLoss(torch.nn.Module):
    """Batch Dice (sigmoid, MONAI ``DiceLoss``) + binary cross-entropy on the nested regions of a class map.

    Not MONAI's ``DiceCELoss(sigmoid=True)``: with more than one output channel its cross-entropy part is the
    softmax one across channels, which would make the nested (overlapping) regions compete."""

    def __init__(self) -> None:
        super().__init__()
        from monai.losses import DiceLoss

        self.dice = DiceLoss(sigmoid=True, batch=True)
        self.bce = torch.nn.BCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = region_targets(y)
        return self.dice(logits, t) + self.bce(logits, t)


def _train(net, x, y, *, epochs, params, seed, transform, center_crop, on_epoch, loss_fn) -> list[float]:
    device = torch.device(params.device)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if transform is None and center_crop is not None:
        import monai.transforms as T

        transform = T.CenterSpatialCropd(["image", "label"], roi_size=(center_crop, center_crop))
    batch_tf = None
    if isinstance(transform, tuple):  # (BatchAffine, per-sample intensity pipeline): the batch path
        batch_tf, transform = transform
    workers = int(params.loader_workers)
    if workers and (batch_tf is not None or transform is not None):
        # augmented batches made in worker processes, ahead of the training step (the GPU path: there the
        # per-sample MONAI intensity transforms on the CPU, not the network, bound the step)
        sampler = torch.utils.data.BatchSampler(
            torch.utils.data.RandomSampler(range(x.shape[0]), generator=gen),
            batch_size=params.batch_size,
            drop_last=x.shape[0] > params.batch_size,
        )
        loader = torch.utils.data.DataLoader(
            _AugmentedBatches(x, y, batch_tf, transform),
            sampler=sampler,
            batch_size=None,
            num_workers=workers,
            worker_init_fn=_reseed_worker,
            generator=gen,
            persistent_workers=True,
            prefetch_factor=4,
            multiprocessing_context=_loader_context(),
            pin_memory=device.type == "cuda",
        )
        batch_tf = transform = None  # the workers apply them
    else:
        data = _Augmented(x, y, transform if batch_tf is None else None)
        loader = torch.utils.data.DataLoader(
            data,
            batch_size=params.batch_size,
            shuffle=True,
            generator=gen,
            drop_last=len(data) > params.batch_size,
            num_workers=0,
        )
    net.to(device).train()
    if device.type == "cpu":
        net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: (1 - e / max(epochs, 1)) ** 0.9)
    losses = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for xb, yb in loader:
            if batch_tf is not None:
                xb, yb = _augment_batch(xb, yb, batch_tf, transform)
            xb = xb.to(device, non_blocking=True)
            if device.type == "cpu":
                xb = xb.contiguous(memory_format=torch.channels_last)
            yb = yb.to(device, non_blocking=True)
            with precision_autocast(device, params.precision):
                logits = net(xb)
            loss = loss_fn(logits.float(), yb)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(
                    f"segmentation loss became {loss.item()} at epoch {epoch + 1}; lower the "
                    f"learning rate (lr={params.lr})"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
            count += xb.shape[0]
        sched.step()
        losses.append(total / max(count, 1))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    net.eval()
    return losses


def _augmentation(spec: SegSpec, params: SegTrainParams, *, out_size: int, shift_px: float, seed: int):
    """The training transform: MONAI per sample, or (with ``batch_augment``) a :class:`BatchAffine` for the
    geometry plus MONAI's intensity part per sample; ``None`` without augmentation."""
    if not params.augment:
        return None
    inten = {"intensity_scale": params.aug_intensity_scale, "intensity_shift": params.aug_intensity_shift}
    if params.batch_augment:
        return (
            BatchAffine(out_size, shift_px, seed),
            seg_augmentation(spec, out_size=out_size, shift_px=shift_px, seed=seed, spatial=False, **inten),
        )
    return seg_augmentation(spec, out_size=out_size, shift_px=shift_px, seed=seed, strong=True, **inten)


def train_coarse_localiser(
    xl: torch.Tensor, yl: torch.Tensor, spec: SegSpec, params: SegTrainParams, *, seed: int
) -> tuple[dict, list[float]]:
    """The coarse localiser of :func:`train_fold` (its own seeds): the localiser's canvases shifted by up to
    ``params.coarse_shift_mm``, so that it finds a heart far from the frame centre."""
    torch.manual_seed(seed + 6)
    net = build_localiser(spec)
    t = _augmentation(
        spec, params, out_size=spec.loc_size, shift_px=params.coarse_shift_mm / spec.loc_spacing, seed=seed + 7
    )
    losses = train_network(
        net, xl, yl, n_classes=2, epochs=params.loc_epochs, params=params, seed=seed + 8, transform=t
    )
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}, losses


def train_fold(
    stacks: Sequence[tuple[np.ndarray, np.ndarray, tuple[float, float]]],
    spec: SegSpec,
    params: SegTrainParams,
    *,
    seed: int,
    on_epoch: Callable[[str, int, float], None] | None = None,
) -> tuple[dict, dict, SegTrainResult]:
    """Train the localiser and the segmenter of one fold; returns their state dicts and the record."""
    res = SegTrainResult()
    t0 = time.perf_counter()
    xl, yl = prepare_localiser_data(stacks, spec)
    res.n_slices = int(xl.shape[0])
    torch.manual_seed(seed)
    loc = build_localiser(spec)
    tl = _augmentation(
        spec, params, out_size=spec.loc_size, shift_px=params.loc_shift_mm / spec.loc_spacing, seed=seed + 1
    )
    res.loc_losses = train_network(
        loc,
        xl,
        yl,
        n_classes=2,
        epochs=params.loc_epochs,
        params=params,
        seed=seed + 2,
        transform=tl,
        on_epoch=(lambda e, v: on_epoch("localiser", e, v)) if on_epoch else None,
    )
    if params.coarse_shift_mm > 0:
        res.coarse_state, res.coarse_losses = train_coarse_localiser(xl, yl, spec, params, seed=seed)
    res.loc_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    xs, ys = prepare_segmenter_data(stacks, spec)
    torch.manual_seed(seed + 3)
    seg = build_segmenter(spec)
    ts = _augmentation(spec, params, out_size=spec.crop, shift_px=12.0 / spec.spacing, seed=seed + 4)
    res.losses = train_network(
        seg,
        xs,
        ys,
        n_classes=4,
        epochs=params.epochs,
        params=params,
        seed=seed + 5,
        transform=ts,
        center_crop=spec.crop,
        regions=spec.regions,
        on_epoch=(lambda e, v: on_epoch("segmenter", e, v)) if on_epoch else None,
    )
    res.seconds = time.perf_counter() - t1
    return (
        {k: v.detach().cpu() for k, v in loc.state_dict().items()},
        {k: v.detach().cpu() for k, v in seg.state_dict().items()},
        res,
    )
