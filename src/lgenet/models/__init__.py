"""Backbones, heads and classifiers (one registry; models built by name)."""

from lgenet.models.factory import InputAdapter, LgeNet, ModelSpec, build_model, create_backbone, rebuild_model
from lgenet.models.registry import NORMS, BackboneSpec, InputNorm, get_spec, list_backbones, register_backbone

__all__ = [
    "BackboneSpec",
    "InputNorm",
    "NORMS",
    "InputAdapter",
    "LgeNet",
    "ModelSpec",
    "build_model",
    "create_backbone",
    "get_spec",
    "list_backbones",
    "rebuild_model",
    "register_backbone",
]
