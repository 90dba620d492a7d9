"""Fitting one classifier and scoring images with it.

Seed protocol defaults: Adam (lr 1e-3), binary cross-entropy on one logit, batch 8, 100 epochs, all
layers trainable, and the model of the last epoch is the one evaluated (no early stopping, so the
test fold is never looked at to pick an epoch). The forward pass runs under bf16 autocast on CUDA and,
since 2026-11-27, on CPUs with native bf16 instructions (``precision='auto'``; on EMIDEC over three
seeds its out-of-fold AUCs matched fp32's within the protocol's own noise, docs/results.md); other CPUs
stay in fp32. On CPU the model uses channels_last memory format.
"""

from __future__ import annotations

import functools
import logging
import math
import platform
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..data.preprocess import augment_batch

__all__ = [
    "FitParams",
    "FitResult",
    "resolve_device",
    "resolve_precision",
    "cpu_native_bf16",
    "precision_autocast",
    "fit",
    "predict_proba",
]

log = logging.getLogger("lgenet")


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


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from ..errors import ConfigError

        raise ConfigError("config parameter 'device' is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(device)


#: CPU feature flags that mean bf16 arithmetic in hardware (x86: AVX512-BF16, AMX; Arm: FEAT_BF16)
_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def _cpu_flags(text: str) -> set[str]:
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, val = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(val.split())
    return flags


@functools.cache
def cpu_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 in hardware, so that bf16 autocast is faster than fp32 here.

    oneDNN must support bf16 (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) *and* the CPU must list a
    native bf16 instruction set in ``/proc/cpuinfo``: AVX512 CPUs without it run bf16 emulated, often
    slower than fp32. Unknown (no ``/proc/cpuinfo``, e.g. macOS) counts as no. ``cpuinfo``: the text to
    parse instead of ``/proc/cpuinfo`` (tests).
    """
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):  # pragma: no cover - a build without oneDNN
        return False
    if cpuinfo is None:
        if platform.system() != "Linux":
            return False
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                cpuinfo = fh.read()
        except OSError:
            return False
    return bool(_cpu_flags(cpuinfo) & _BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> bf16 on CUDA and on CPUs with native bf16 (:func:`cpu_native_bf16`), else fp32.

    Until 2026-11-27 'auto' meant fp32 on every CPU; a run started then records the precision its fits
    used, and a resume with 'auto' keeps it (``lgenet.pipeline.resume_precision``).
    """
    if precision == "auto":
        if device.type == "cuda":
            return "bf16"
        return "bf16" if device.type == "cpu" and cpu_native_bf16() else "fp32"
    if precision == "bf16" and device.type == "cpu" and not cpu_native_bf16():
        # e.g. a command copied from a machine with AMX: a 240-epoch segmentation fold that took ~35 min there
        # had not finished after 70 min here (docs/results.md, configuration 16)
        log.warning(
            "precision bf16 on a CPU without native bf16: it is emulated here, often several times slower "
            "than fp32; use --precision auto (fp32 on this CPU) unless you need bf16's numbers"
        )
    return precision


def precision_autocast(device: torch.device, precision: str):
    """The autocast context of a resolved ``precision`` (``bf16``: bf16 autocast; ``fp32``: none) on ``device``."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=(precision == "bf16"))


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
