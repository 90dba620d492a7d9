"""Classification heads put on top of a backbone's last feature map.

``flatten`` is the seed study's head (Keras: ``Flatten() -> Dense(512) -> Dropout(0.5) -> Dense(1)``);
``gap`` replaces the Flatten by global average pooling (far fewer parameters, any input size).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FlattenHead", "GapHead", "build_head"]


class FlattenHead(nn.Sequential):
    """Flatten (C·h·w) -> Linear(dense_units) -> ReLU -> Dropout -> Linear(1)."""

    def __init__(self, in_features: int, dense_units: int = 512, dropout: float = 0.5) -> None:
        super().__init__(
            nn.Flatten(1),
            nn.Linear(in_features, dense_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(dense_units, 1),
        )


class GapHead(nn.Sequential):
    """Global average pool -> Linear(dense_units) -> ReLU -> Dropout -> Linear(1)."""

    def __init__(self, channels: int, dense_units: int = 512, dropout: float = 0.5) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),
            nn.Linear(channels, dense_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(dense_units, 1),
        )


def build_head(kind: str, feature_shape: tuple[int, int, int], dense_units: int, dropout: float) -> nn.Module:
    c, h, w = feature_shape
    if kind == "flatten":
        return FlattenHead(c * h * w, dense_units, dropout)
    if kind == "gap":
        return GapHead(c, dense_units, dropout)
    raise ValueError(f"unknown head {kind!r}; use 'flatten' or 'gap'")


def _probe_feature_shape(backbone: nn.Module, size: int) -> tuple[int, int, int]:
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        f = backbone.forward_features(torch.zeros(1, 3, size, size))
    backbone.train(was_training)
    return tuple(f.shape[1:])  # type: ignore[return-value]
