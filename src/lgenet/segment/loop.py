"""The training loop of one segmentation network: batches, loss, Adam with a polynomial learning-rate decay.

Loss: Dice + cross-entropy (MONAI ``DiceCELoss``, batch Dice without the background); with ``SegSpec.regions``,
batch Dice (MONAI ``DiceLoss``, sigmoid) + binary cross-entropy on each of the three nested regions (LV,
myocardium, enhancement). The learning rate decays to zero over the fixed number of epochs: nothing is chosen on
the test fold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from lgenet.config.seg import SegTraining
from lgenet.models.segnet import region_targets
from lgenet.runs.compute import precision_autocast
from lgenet.segment.augment import AugmentedBatches, AugmentedSamples, augment_batch, loader_context, reseed_worker

__all__ = ["SegTrainParams", "Stage", "train_network"]


@dataclass(frozen=True)
class SegTrainParams(SegTraining):
    """A fold's training settings (the :class:`~lgenet.config.seg.SegTraining` section of its run's config) and
    where it computes."""

    device: str = "cpu"
    precision: str = "fp32"


@dataclass(frozen=True)
class Stage:
    """One network's training run: its epochs and seed, and how each sample is transformed.

    ``transform``: a MONAI pipeline per sample, or (the batch path) a ``(BatchAffine, per-sample intensity
    pipeline)`` pair, or ``None``; ``center_crop``: without a transform, the centre window (pixels) the network
    sees; ``regions``: the network has one sigmoid output per nested region."""

    epochs: int
    seed: int
    transform: Any = None
    center_crop: int | None = None
    regions: bool = False


def train_network(
    net: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    stage: Stage,
    params: SegTrainParams,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``net`` on (x, y) for ``stage.epochs`` (Dice+CE, Adam, poly LR decay); returns the epoch losses.

    ``y`` is always the (N, 1, H, W) class map; with ``stage.regions`` the net has one sigmoid output per nested
    region (:func:`~lgenet.models.segnet.region_targets`) and the loss is Dice + BCE per region."""
    from monai.data import get_track_meta, set_track_meta
    from monai.losses import DiceCELoss

    tracking = get_track_meta()
    set_track_meta(False)  # plain tensors out of the transforms (no per-op metadata bookkeeping)
    try:
        loss_fn = (
            _RegionLoss()
            if stage.regions
            else DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
        )
        return _train(net, x, y, stage, params, loss_fn, on_epoch)
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


def _loader(x, y, stage: Stage, params: SegTrainParams, gen: torch.Generator, device: torch.device):
    """The batches of one epoch: (loader, batch geometry, per-sample transform); the last two are ``None`` where the
    loader applies them itself (in the dataset, or in worker processes)."""
    transform = stage.transform
    if transform is None and stage.center_crop is not None:
        import monai.transforms as T

        transform = T.CenterSpatialCropd(["image", "label"], roi_size=(stage.center_crop, stage.center_crop))
    batch_tf = None
    if isinstance(transform, tuple):  # (BatchAffine, per-sample intensity pipeline): the batch path
        batch_tf, transform = transform
    workers = int(params.loader_workers or 0)
    if workers and (batch_tf is not None or transform is not None):
        # augmented batches made in worker processes, ahead of the training step (the GPU path: there the
        # per-sample MONAI intensity transforms on the CPU, not the network, bound the step)
        sampler = torch.utils.data.BatchSampler(
            torch.utils.data.RandomSampler(range(x.shape[0]), generator=gen),
            batch_size=params.batch_size,
            drop_last=x.shape[0] > params.batch_size,
        )
        loader = torch.utils.data.DataLoader(
            AugmentedBatches(x, y, batch_tf, transform),
            sampler=sampler,
            batch_size=None,
            num_workers=workers,
            worker_init_fn=reseed_worker,
            generator=gen,
            persistent_workers=True,
            prefetch_factor=4,
            multiprocessing_context=loader_context(),
            pin_memory=device.type == "cuda",
        )
        return loader, None, None  # the workers apply them
    data = AugmentedSamples(x, y, transform if batch_tf is None else None)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=params.batch_size,
        shuffle=True,
        generator=gen,
        drop_last=len(data) > params.batch_size,
        num_workers=0,
    )
    return loader, batch_tf, transform


def _train(net, x, y, stage: Stage, params: SegTrainParams, loss_fn, on_epoch) -> list[float]:
    device = torch.device(params.device)
    gen = torch.Generator().manual_seed(stage.seed)
    torch.manual_seed(stage.seed)
    loader, batch_tf, transform = _loader(x, y, stage, params, gen, device)
    net.to(device).train()
    if device.type == "cpu":
        net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    epochs = stage.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: (1 - e / max(epochs, 1)) ** 0.9)
    losses = []
    for epoch in range(epochs):
        total, count = 0.0, 0
        for xb, yb in loader:
            if batch_tf is not None:
                xb, yb = augment_batch(xb, yb, batch_tf, transform)
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
