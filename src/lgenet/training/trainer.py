"""Fitting one classifier and scoring images with it.

Seed protocol defaults: Adam (lr 1e-3), binary cross-entropy on one logit, batch 8, 100 epochs, all
layers trainable, and the model of the last epoch is the one evaluated (no early stopping, so the
test fold is never looked at to pick an epoch). The forward pass runs under bf16 autocast on CUDA and,
since 2026-11-27, on CPUs with native bf16 instructions (``precision='auto'``; on EMIDEC over three
seeds its out-of-fold AUCs matched fp32's within the protocol's own noise, docs/results.md); other CPUs
stay in fp32. On CPU the model uses channels_last memory format.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from lgenet.data.preprocess import augment_batch
from lgenet.runs.compute import cpu_native_bf16, precision_autocast, resolve_device, resolve_precision

__all__ = [
    "FitParams",
    "fit_seed",
    "FitResult",
    "resolve_device",
    "resolve_precision",
    "cpu_native_bf16",
    "precision_autocast",
    "fit",
    "predict_proba",
]

log = logging.getLogger("lgenet")


def fit_seed(seed: int, task: str, arch: str, init: str, fold: int) -> int:
    """The fit's seed: a function of the run's seed and the fit's identity only."""
    return zlib.crc32(f"{seed}|{task}|{arch}|{init}|{fold}".encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class FitParams:
    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    augment: bool = False
    device: str = "cpu"
    precision: str = "fp32"


@dataclass
class FitResult:
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    images_per_second: float = 0.0


def _make_optimizer(model: nn.Module, p: FitParams, device: torch.device) -> torch.optim.Optimizer:
    kwargs = dict(lr=p.lr, weight_decay=p.weight_decay)
    try:  # the fused step removes most of the optimiser's cost for the 51M-parameter Flatten head
        return torch.optim.Adam(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError):  # pragma: no cover - fused unsupported on this build/device
        return torch.optim.Adam(model.parameters(), **kwargs)


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | np.ndarray,
    params: FitParams,
    *,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> FitResult:
    """Train ``model`` in place on ``x`` (N, 1, S, S) in [0, 1] and binary labels ``y``.

    Shuffling, dropout and augmentation draw from generators seeded with ``seed``, so the same seed
    gives the same model on the same hardware. A trailing batch of a single image is skipped (batch
    norm cannot train on one image whose feature map is 1 x 1), so at most one image per epoch is
    unused.
    """
    import time

    device = torch.device(params.device)
    y_t = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    if x.shape[0] != y_t.shape[0]:
        raise ValueError(f"fit: {x.shape[0]} images but {y_t.shape[0]} labels")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    model.train()
    opt = _make_optimizer(model, params, device)
    loss_fn = nn.BCEWithLogitsLoss()
    n = x.shape[0]
    res = FitResult()
    t0 = time.perf_counter()
    seen = 0
    for epoch in range(params.epochs):
        perm = torch.randperm(n, generator=gen)
        total, count = 0.0, 0
        for start in range(0, n, params.batch_size):
            idx = perm[start : start + params.batch_size]
            if idx.numel() < 2 and n > 1:
                continue
            xb = x[idx]
            if params.augment:
                xb = augment_batch(xb, gen)
            xb = xb.to(device, non_blocking=True)
            if device.type == "cpu":
                xb = xb.contiguous(memory_format=torch.channels_last)
            yb = y_t[idx].to(device)
            with precision_autocast(device, params.precision):
                logits = model(xb)
            loss = loss_fn(logits.float(), yb)
            if not math.isfinite(loss.item()):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {epoch + 1}; lower the learning rate (lr={params.lr})"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
            count += idx.numel()
        seen += count
        mean_loss = total / max(count, 1)
        res.losses.append(mean_loss)
        if on_epoch is not None:
            on_epoch(epoch, mean_loss)
    res.seconds = time.perf_counter() - t0
    res.images_per_second = seen / res.seconds if res.seconds > 0 else float("nan")
    return res


@torch.no_grad()
def predict_proba(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 16, device: str = "cpu", precision: str = "fp32"
) -> np.ndarray:
    """Sigmoid probabilities for (N, 1, S, S) images, model in eval mode (dropout off, BN frozen)."""
    dev = torch.device(device)
    model.to(dev)
    model.eval()
    out = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(dev)
        if dev.type == "cpu":
            xb = xb.contiguous(memory_format=torch.channels_last)
        with precision_autocast(dev, precision):
            logits = model(xb)
        out.append(torch.sigmoid(logits.float()).cpu())
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)
