"""Building backbones and full classifiers by name.

``create_backbone`` is the public entry point for a bare feature extractor (``forward_features``);
``build_model`` wraps one into an :class:`LgeNet` classifier that takes a [0, 1] single-channel
batch, applies the weights' own input convention, and returns one logit per image. A fitted model
is saved as its state dict plus the :class:`ModelSpec` needed to rebuild it offline.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lgenet.errors import ConfigError
from lgenet.models.heads import _probe_feature_shape, build_head
from lgenet.models.registry import NORMS, InputNorm, get_spec
from lgenet.models.weights import load_pretrained

__all__ = ["create_backbone", "build_model", "LgeNet", "ModelSpec", "InputAdapter", "rebuild_model"]

log = logging.getLogger("lgenet")


def create_backbone(name: str, init: str = "random", weights_file: str | Path | None = None) -> nn.Module:
    """A registry backbone with ``init`` weights.

    Args:
        name: registry name (``resnet50``, ``inception_v3``, ``tiny``).
        init: ``random``, ``imagenet`` or ``radimagenet``.
        weights_file: local weights (required for ``radimagenet``; optional for ``imagenet``).

    Returns:
        A ``torch.nn.Module`` whose ``forward_features(x)`` maps a preprocessed (N, 3, H, W) float32
        batch to the last feature map (N, C, h, w). Attributes ``input_norm`` (:class:`InputNorm`:
        what "preprocessed" means for these weights), ``weights_info`` and ``lgenet_layout``
        (``timm`` or ``keras``) and ``lgenet_target_layer`` (default Grad-CAM layer) are attached.

    Raises:
        ConfigError: unknown backbone name.
        WeightsError: missing, unreadable or mismatching weights file; offline without a file.
    """
    spec = get_spec(name)
    module, norm, info = load_pretrained(spec, init, weights_file)
    module.input_norm = norm
    module.weights_info = info
    if not hasattr(module, "lgenet_layout"):
        module.lgenet_layout = "timm" if spec.timm_name else "lgenet"
    if not hasattr(module, "lgenet_target_layer"):
        module.lgenet_target_layer = spec.target_layer
    return module


def _build_skeleton(name: str, layout: str) -> nn.Module:
    spec = get_spec(name)
    if layout == "keras":
        import lgenet.models.keras_h5 as keras_h5

        module = keras_h5.build_keras_layout(name)
    else:
        module = spec.build()
    if not hasattr(module, "lgenet_target_layer"):
        module.lgenet_target_layer = spec.target_layer
    module.lgenet_layout = layout
    return module


class InputAdapter(nn.Module):
    """(N, 1, H, W) image in [0, 1] -> (N, 3, H, W) in the weights' input convention."""

    def __init__(self, norm: InputNorm) -> None:
        super().__init__()
        self.norm_name = norm.name
        self.register_buffer("scale", torch.tensor(float(norm.scale)), persistent=False)
        self.register_buffer("mean", torch.tensor(norm.mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(norm.std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x * self.scale - self.mean) / self.std


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a fitted classifier without its original weights file."""

    arch: str
    init: str
    image_size: int
    head: str = "flatten"
    dense_units: int = 512
    dropout: float = 0.5
    norm: str = "imagenet"
    layout: str = "timm"
    target_layer: str = "layer4"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class LgeNet(nn.Module):
    """Input adapter -> backbone -> head. ``forward`` returns logits of shape (N,)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, norm: InputNorm, spec: ModelSpec) -> None:
        super().__init__()
        self.adapter = InputAdapter(norm)
        self.backbone = backbone
        self.head = head
        self.spec = spec

    @property
    def target_layer_name(self) -> str:
        """Full module path of the default Grad-CAM layer (e.g. ``backbone.layer4``)."""
        return f"backbone.{self.spec.target_layer}"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(self.adapter(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x)).squeeze(1)


def build_model(
    arch: str,
    init: str = "random",
    weights_file: str | Path | None = None,
    *,
    image_size: int | None = None,
    head: str = "flatten",
    dense_units: int = 512,
    dropout: float = 0.5,
) -> LgeNet:
    """A full classifier: ``arch`` backbone with ``init`` weights and the chosen head."""
    spec = get_spec(arch)
    size = image_size or spec.input_size
    if size < spec.min_size:
        raise ConfigError(f"image_size {size} is too small for {arch}; it needs at least {spec.min_size} px")
    backbone = create_backbone(arch, init, weights_file)
    mspec = ModelSpec(
        arch=arch,
        init=init,
        image_size=size,
        head=head,
        dense_units=dense_units,
        dropout=dropout,
        norm=backbone.input_norm.name,
        layout=backbone.lgenet_layout,
        target_layer=cam_layer(backbone, arch, size),
    )
    return _assemble(backbone, backbone.input_norm, mspec)


def _assemble(backbone, norm, mspec: ModelSpec, *, meta: bool = False) -> LgeNet:
    """The classifier of ``mspec`` on ``backbone`` (its ``norm`` and ``layout`` are the backbone's); ``meta``: the
    head on the meta device too, as the backbone (the input adapter's constants are always real)."""
    import contextlib

    with torch.device("meta") if meta else contextlib.nullcontext():
        feat = _probe_feature_shape(backbone, mspec.image_size)
        head = build_head(mspec.head, feat, mspec.dense_units, mspec.dropout)
    mspec = dataclasses.replace(mspec, norm=norm.name, layout=backbone.lgenet_layout)
    return LgeNet(backbone, head, norm, mspec)


def cam_layer(backbone: nn.Module, arch: str, size: int) -> str:
    """The default CAM layer of ``backbone`` at input ``size``: the deepest of the registry's ``cam_layers``
    whose map has at least :data:`~lgenet.models.registry.CAM_MIN_CELLS` cells a side (the backbone's own
    ``target_layer`` for Keras layouts and backbones without candidates)."""
    from lgenet.models.registry import CAM_MIN_CELLS

    cands = get_spec(arch).cam_layers if getattr(backbone, "lgenet_layout", "timm") != "keras" else ()
    if not cands:
        return backbone.lgenet_target_layer
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        backbone.get_submodule(n).register_forward_hook(
            lambda m, i, o, n=n: shapes.__setitem__(n, tuple((o[0] if isinstance(o, tuple) else o).shape[-2:]))
        )
        for n in cands
    ]
    try:
        was = backbone.training
        backbone.eval()
        with torch.no_grad():
            backbone.forward_features(torch.zeros(1, 3, size, size))
        backbone.train(was)
    finally:
        for h in hooks:
            h.remove()
    for n in cands:
        if n in shapes and min(shapes[n]) >= CAM_MIN_CELLS:
            return n
    return cands[-1]


def rebuild_model(spec: ModelSpec | dict, state_dict: dict[str, torch.Tensor] | None = None) -> LgeNet:
    """Rebuild a saved classifier from its :class:`ModelSpec` (and load ``state_dict`` if given)."""
    if isinstance(spec, dict):
        spec = ModelSpec(**spec)
    if state_dict is not None:
        # built on the meta device and given the saved tensors: no random initialisation of weights that are
        # replaced at once (1.5 s of a seed-size ResNet50 with its 51-million-weight head on 2 cores); a model
        # with a tensor the state dict does not hold is built the ordinary way
        with torch.device("meta"):
            backbone = _build_skeleton(spec.arch, spec.layout)
        model = _assemble(backbone, NORMS[spec.norm], spec, meta=True)
        model.load_state_dict(state_dict, assign=True)
        if not any(t.is_meta for t in (*model.parameters(), *model.buffers())):
            return model
    backbone = _build_skeleton(spec.arch, spec.layout)
    # the CAM layer as saved (the one the fit was explained with), whatever today's rule would pick
    model = _assemble(backbone, NORMS[spec.norm], spec)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model
