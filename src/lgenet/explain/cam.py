"""Class activation maps of an :class:`~lgenet.models.LgeNet` with pytorch-grad-cam.

The hooks, gradient bookkeeping and the CAM formulas are pytorch-grad-cam's (``GradCAM``,
``GradCAMPlusPlus``, ``HiResCAM``); this module only adapts them to lgenet's models:

* an LgeNet returns **one logit per image**, shape ``(N,)``. pytorch-grad-cam hands each target
  one image's output -- here a 0-d tensor -- so its ``ClassifierOutputTarget(0)`` (which indexes
  ``output[0]``) does not apply. :class:`LogitTarget` returns the logit itself (positive class) or
  its negation (negative class); it also accepts a ``(1,)`` output, as a wrapped ``(N, 1)`` model
  would give.
* the target layer is named by its module path (``backbone.layer4``, or ``layer4`` inside the
  backbone); the default is the model's own (:attr:`LgeNet.target_layer_name`: ResNet50
  ``layer4``, InceptionV3 ``Mixed_7c``).
* ``target='predicted'`` (default) explains the class the model predicted at the decision
  threshold (the logit for a positive call, minus the logit for a negative one), so true and false
  negatives get a map of what pushed the model towards "negative" -- as the seed's Figure 1 shows
  both classes. ``target='positive'`` always explains the positive class.

Maps come back as pytorch-grad-cam computes them: ReLU of the weighted activations, upsampled to
the input size and min-max scaled **per image** to [0, 1]. A map that is zero everywhere (no
evidence for the target at that layer) stays zero and is reported as empty.

Example:
    >>> res = compute_cams(model, x, method="gradcam")        # doctest: +SKIP
    >>> res.maps.shape, float(res.maps.max()) <= 1.0           # doctest: +SKIP
    ((8, 224, 224), True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lgenet.errors import ConfigError
from lgenet.runs.compute import precision_autocast

__all__ = [
    "CAM_METHODS",
    "CAM_TARGETS",
    "METHOD_LABELS",
    "LogitTarget",
    "CamResult",
    "CamSpec",
    "resolve_target_layer",
    "compute_cams",
    "ensemble_cams",
    "check_method",
]

CAM_TARGETS = ("predicted", "positive")
METHOD_LABELS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "hirescam": "HiResCAM"}


def _method_classes() -> dict[str, type]:
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM

    return {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "hirescam": HiResCAM}


CAM_METHODS = tuple(METHOD_LABELS)
#: the method of a CAM when none is asked for
DEFAULT_METHOD = "gradcam"


def check_method(method: str, *, auto: bool = False) -> str:
    """The canonical name of a CAM method; ``auto`` (a report's choice by the sanity checks) where allowed."""
    if auto and str(method).lower() == "auto":
        return "auto"
    m = str(method).lower().replace("_", "").replace("-", "").replace("plusplus", "++")
    m = {"gradcampp": "gradcam++"}.get(m, m)
    if m not in METHOD_LABELS:
        raise ConfigError(f"CAM method must be one of {list(CAM_METHODS)}, got {method!r}")
    return m


class LogitTarget:
    """pytorch-grad-cam target for a one-logit binary classifier.

    ``sign=+1`` scores the positive class (the logit), ``sign=-1`` the negative class. Handles the
    0-d per-image output of a ``(N,)`` model and the ``(1,)`` output of a ``(N, 1)`` model.
    """

    def __init__(self, sign: int = 1) -> None:
        if sign not in (1, -1):
            raise ValueError(f"sign must be +1 or -1, got {sign!r}")
        self.sign = sign

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        out = model_output
        if out.ndim == 1:
            if out.shape[0] != 1:
                raise ValueError(f"LogitTarget expects one logit per image, got an output of shape {tuple(out.shape)}")
            out = out[0]
        elif out.ndim != 0:
            raise ValueError(f"LogitTarget expects one logit per image, got an output of shape {tuple(out.shape)}")
        return out * self.sign


def resolve_target_layer(model: nn.Module, name: str | None = None) -> tuple[str, nn.Module]:
    """``(full name, module)`` of the CAM layer: ``name`` or the model's default.

    ``name`` is a module path in the model (``backbone.layer4``) or in its backbone (``layer4``).

    Raises:
        ConfigError: no such module (the message lists the backbone's top-level blocks).
    """
    if name is None:
        name = getattr(model, "target_layer_name", None)
        if name is None:
            raise ConfigError("the model has no default CAM layer (target_layer_name); pass target_layer=NAME")
    for candidate in (name, f"backbone.{name}"):
        try:
            return candidate, model.get_submodule(candidate)
        except AttributeError:
            continue
    backbone = getattr(model, "backbone", model)
    tops = [n for n, _ in backbone.named_children()]
    raise ConfigError(
        f"CAM target layer {name!r} is not a module of this {getattr(getattr(model, 'spec', None), 'arch', 'model')} "
        f"model; use a module path such as 'backbone.{tops[-1] if tops else 'layer4'}' "
        f"(the backbone's blocks: {tops[-12:]})"
    )


@dataclass
class CamResult:
    """CAMs of a batch.

    Attributes:
        maps: (N, S, S) float32 in [0, 1], at the model's input resolution.
        logits: (N,) the model's logits (positive class).
        signs: (N,) +1 where the positive class was explained, -1 where the negative one was.
        empty: (N,) True where the map is zero everywhere (no evidence for the target).
        method, layer: what produced them.
        grid: (h, w) of the layer's feature map -- the CAM's true resolution before upsampling.
    """

    maps: np.ndarray
    logits: np.ndarray
    signs: np.ndarray
    empty: np.ndarray
    method: str
    layer: str
    grid: tuple[int, int] = (0, 0)

    @property
    def probs(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits.astype(np.float64)))


@dataclass(frozen=True)
class CamSpec:
    """Which CAM to draw: the method, the layer, and the class explained.

    Attributes:
        method: ``gradcam`` (default), ``gradcam++`` or ``hirescam``.
        target_layer: module path; default the model's ``target_layer_name``.
        target: ``predicted`` (the class called at ``threshold``) or ``positive``.
        threshold: decision threshold on the probability (for ``target='predicted'``).
    """

    method: str = "gradcam"
    target_layer: str | None = None
    target: str = "predicted"
    threshold: float = 0.5


def _logit_of(threshold: float) -> float:
    return math.log(threshold / (1.0 - threshold))


def compute_cams(
    model: nn.Module,
    x: torch.Tensor,
    *,
    method: str = "gradcam",
    target_layer: str | None = None,
    target: str = "predicted",
    threshold: float = 0.5,
    signs: Sequence[int] | np.ndarray | None = None,
    batch_size: int = 16,
) -> CamResult:
    """CAMs for a (N, 1, S, S) batch in [0, 1] (lgenet's preprocessed input).

    Args:
        model: an LgeNet (or any module returning one logit per image); put in eval mode here.
        x: preprocessed images.
        method: ``gradcam`` (default), ``gradcam++`` or ``hirescam``.
        target_layer: module path; default the model's ``target_layer_name``.
        target: ``predicted`` (the class called at ``threshold``) or ``positive``.
        threshold: decision threshold on the probability (for ``target='predicted'``).
        signs: per image +1 (explain the positive class) or -1 (the negative class); overrides
            ``target`` (used by :func:`ensemble_cams` to explain the ensemble's call).
        batch_size: images per forward/backward pass.

    The logits (hence the probability and the class called) are computed in the model's own precision,
    its ``lgenet_precision`` tag (``fp32`` or ``bf16``: the precision of its out-of-fold predictions),
    else fp32; the tag is the one place that says it. The maps themselves are always computed in fp32
    (pytorch-grad-cam works on fp32 arrays).

    Returns:
        A :class:`CamResult`. Deterministic for a given model and input on CPU.
    """
    method = check_method(method)
    if target not in CAM_TARGETS:
        raise ConfigError(f"CAM target must be one of {list(CAM_TARGETS)}, got {target!r}")
    if x.ndim != 4 or x.shape[1] != 1:
        raise ConfigError(f"compute_cams expects a (N, 1, S, S) batch, got shape {tuple(x.shape)}")
    if signs is not None and (len(signs) != x.shape[0] or not set(np.asarray(signs).tolist()) <= {1, -1}):
        raise ConfigError(f"signs must hold +1/-1 for each of the {x.shape[0]} images")
    layer_name, layer = resolve_target_layer(model, target_layer)
    model = model.eval().float()
    device = next(model.parameters()).device
    cls = _method_classes()[method]
    cam = cls(model=model, target_layers=[layer])
    cut = _logit_of(threshold)
    maps, logits, used = [], [], []
    grid = (0, 0)
    # gradients are needed at the target layer's output only: the weights below it and after it take none (the
    # same maps; at the seed's sizes the 51-million-weight head's gradient alone is a third of the backward pass)
    wanted = {id(p) for p in layer.parameters()}
    grads_were = [(p, p.requires_grad) for p in model.parameters()]
    if wanted:
        for p, _ in grads_were:
            p.requires_grad_(id(p) in wanted)
    fp32 = getattr(model, "lgenet_precision", "fp32") == "fp32"
    try:
        with torch.enable_grad():
            for i in range(0, x.shape[0], batch_size):
                xb = x[i : i + batch_size].to(device=device, dtype=torch.float32)
                if signs is not None:
                    sb = np.asarray(signs[i : i + batch_size], dtype=int)
                    lb = None  # the CAM pass's own logits below (in fp32 they are the same numbers)
                else:
                    with (
                        torch.no_grad(),
                        precision_autocast(device, getattr(model, "lgenet_precision", "fp32")),
                    ):
                        lb = model(xb).reshape(-1).float().cpu().numpy()
                    sb = np.where((lb >= cut) | (target == "positive"), 1, -1)
                mb = cam(input_tensor=xb, targets=[LogitTarget(int(s)) for s in sb])
                if lb is None:
                    if fp32:
                        lb = cam.outputs.detach().reshape(-1).float().cpu().numpy()
                    else:
                        with torch.no_grad(), precision_autocast(device, getattr(model, "lgenet_precision", "fp32")):
                            lb = model(xb).reshape(-1).float().cpu().numpy()
                acts = cam.activations_and_grads.activations
                if acts:
                    grid = tuple(int(v) for v in acts[0].shape[-2:])
                maps.append(np.asarray(mb, dtype=np.float32))
                logits.append(lb)
                used.append(sb)
    finally:
        cam.activations_and_grads.release()  # remove the hooks (no context manager: its __exit__ swallows errors)
        model.zero_grad(set_to_none=True)
        for p, req in grads_were:
            p.requires_grad_(req)
    m = np.clip(np.concatenate(maps), 0.0, 1.0) if maps else np.zeros((0,) + tuple(x.shape[2:]), np.float32)
    return CamResult(
        maps=m.astype(np.float32),
        logits=np.concatenate(logits) if logits else np.zeros(0, np.float32),
        signs=np.concatenate(used).astype(np.int8) if used else np.zeros(0, np.int8),
        empty=(m.reshape(len(m), -1).max(axis=1) <= 0) if len(m) else np.zeros(0, bool),
        method=method,
        layer=layer_name,
        grid=grid,
    )


def ensemble_cams(
    models: Sequence[nn.Module],
    x: torch.Tensor,
    *,
    method: str = "gradcam",
    target_layer: str | None = None,
    target: str = "predicted",
    threshold: float = 0.5,
    probs: np.ndarray | None = None,
) -> CamResult:
    """Fold-ensemble CAM: the mean of the K fold models' maps (each in [0, 1]) for new images.

    With ``target='predicted'`` every fold model explains the **ensemble's** call (mean fold
    probability vs ``threshold``), so the maps being averaged answer the same question.
    ``logits`` holds the logit of the mean fold probability. ``probs``: that mean probability per image when the
    caller has already computed it (each fold model in its own precision), so the models run once less.
    """
    if not models:
        raise ConfigError("ensemble_cams needs at least one model")
    if target not in CAM_TARGETS:
        raise ConfigError(f"CAM target must be one of {list(CAM_TARGETS)}, got {target!r}")
    if probs is None:
        with torch.no_grad():
            each = []
            for m in models:
                m = m.eval().float()
                with precision_autocast(next(m.parameters()).device, getattr(m, "lgenet_precision", "fp32")):
                    each.append(torch.sigmoid(m(x.float()).reshape(-1).float()).numpy())
            probs = np.mean(each, axis=0)
    elif len(probs) != x.shape[0]:
        raise ConfigError(f"ensemble_cams: {len(probs)} probabilities for {x.shape[0]} images")
    probs = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    signs = np.where((probs >= threshold) | (target == "positive"), 1, -1).astype(np.int8)
    acc = None
    for m in models:
        r = compute_cams(m, x, method=method, target_layer=target_layer, signs=signs)
        acc = r.maps if acc is None else acc + r.maps
    mean = (acc / len(models)).astype(np.float32)
    return CamResult(
        maps=mean,
        logits=np.log(probs / (1 - probs)).astype(np.float32),
        signs=signs,
        empty=mean.reshape(len(mean), -1).max(axis=1) <= 0,
        method=r.method,
        layer=r.layer,
        grid=r.grid,
    )
