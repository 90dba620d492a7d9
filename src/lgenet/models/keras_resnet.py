"""ResNet50 exactly as ``keras.applications.ResNet50`` builds it (ResNet **v1**), in PyTorch.

Differences from torchvision/timm ``resnet50`` (v1.5), all reproduced here:

* the stride-2 of a stage's first block sits on the first 1x1 convolution (and on the 1x1
  projection shortcut), not on the 3x3 convolution;
* every convolution has a bias (kept as a real bias, not folded into the BatchNorm, so that
  fine-tuning updates exactly the parameters Keras would);
* BatchNorm epsilon is 1.001e-5.

BatchNorm momentum is PyTorch's default 0.1 (``running = 0.9 * running + 0.1 * batch``), which is
Keras' ``momentum=0.9``; the Keras default 0.99 must never be copied into a PyTorch ``momentum``
(there it would mean "keep 1 % of the running statistics per batch").

Module names follow torchvision (``conv1``, ``bn1``, ``layer1`` ... ``layer4``, ``downsample``) so
that Grad-CAM targets and user code read the same; the Keras layer each module comes from is given
by :func:`keras_resnet50_slots`. Keras' ``ZeroPadding2D(1)`` + valid ``MaxPooling2D(3, 2)`` equals
``MaxPool2d(3, 2, padding=1)`` here because its input is post-ReLU (>= 0).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "KerasResNet50",
    "keras_resnet50_slots",
    "keras_resnet50_topological_order",
    "legacy_resnet50_name",
    "RESNET50_BN_EPS",
]

RESNET50_BN_EPS = 1.001e-5
_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (filters, blocks, first stride)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=RESNET50_BN_EPS)  # momentum: PyTorch default 0.1


class KerasBottleneck(nn.Module):
    """Keras ``block1``: 1x1 (stride) -> 3x3 -> 1x1 (x4), optional 1x1 (stride) projection shortcut."""

    def __init__(self, cin: int, filters: int, stride: int, shortcut: bool) -> None:
        super().__init__()
        cout = 4 * filters
        self.conv1 = nn.Conv2d(cin, filters, 1, stride=stride, bias=True)
        self.bn1 = _bn(filters)
        self.conv2 = nn.Conv2d(filters, filters, 3, stride=1, padding=1, bias=True)
        self.bn2 = _bn(filters)
        self.conv3 = nn.Conv2d(filters, cout, 1, bias=True)
        self.bn3 = _bn(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=True), _bn(cout)) if shortcut else None
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.downsample(x) if self.downsample is not None else x
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + short)


class KerasResNet50(nn.Module):
    """``keras.applications.ResNet50(include_top=False)`` as a PyTorch module.

    ``forward_features(x)`` (and ``forward``) map an (N, 3, H, W) batch, preprocessed as the weights
    expect, to the ``conv5_block3_out`` feature map (N, 2048, H/32, W/32) in NCHW.
    """

    lgenet_layout = "keras"
    lgenet_target_layer = "layer4"
    num_features = 2048

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=True)
        self.bn1 = _bn(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = 64
        for i, (filters, blocks, stride) in enumerate(_STAGES, start=1):
            layers = [KerasBottleneck(cin, filters, stride, shortcut=True)]
            cin = 4 * filters
            layers += [KerasBottleneck(cin, filters, 1, shortcut=False) for _ in range(blocks - 1)]
            self.add_module(f"layer{i}", nn.Sequential(*layers))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


def keras_resnet50_slots() -> list[tuple[str, str, str]]:
    """(Keras layer name, kind ``conv``/``bn``, module path) for every weighted Keras layer."""
    slots = [("conv1_conv", "conv", "conv1"), ("conv1_bn", "bn", "bn1")]
    for s, (_, blocks, _) in enumerate(_STAGES, start=2):
        for b in range(1, blocks + 1):
            k, p = f"conv{s}_block{b}", f"layer{s - 1}.{b - 1}"
            if b == 1:
                slots += [(f"{k}_0_conv", "conv", f"{p}.downsample.0"), (f"{k}_0_bn", "bn", f"{p}.downsample.1")]
            for j in (1, 2, 3):
                slots += [(f"{k}_{j}_conv", "conv", f"{p}.conv{j}"), (f"{k}_{j}_bn", "bn", f"{p}.bn{j}")]
    return slots


def keras_resnet50_topological_order() -> list[str]:
    """Weighted Keras layer names in ``model.layers`` order (the order Keras' by-order
    ``load_weights`` pairs file layers with model layers): in a projection block the shortcut conv
    comes after the 3x3 branch (``1_conv 1_bn 2_conv 2_bn 0_conv 3_conv 0_bn 3_bn``)."""
    order = ["conv1_conv", "conv1_bn"]
    for s, (_, blocks, _) in enumerate(_STAGES, start=2):
        for b in range(1, blocks + 1):
            k = f"conv{s}_block{b}"
            order += [f"{k}_1_conv", f"{k}_1_bn", f"{k}_2_conv", f"{k}_2_bn"]
            if b == 1:
                order += [f"{k}_0_conv", f"{k}_3_conv", f"{k}_0_bn", f"{k}_3_bn"]
            else:
                order += [f"{k}_3_conv", f"{k}_3_bn"]
    return order


_LEGACY_BRANCH = {"0": "1", "1": "2a", "2": "2b", "3": "2c"}


def legacy_resnet50_name(name: str) -> str:
    """The pre-2019 keras-applications name of a ``keras.applications`` ResNet50 layer:
    ``conv1_conv`` -> ``conv1``, ``conv1_bn`` -> ``bn_conv1``, ``conv3_block2_1_conv`` ->
    ``res3b_branch2a``, ``conv2_block1_0_bn`` -> ``bn2a_branch1``."""
    if name == "conv1_conv":
        return "conv1"
    if name == "conv1_bn":
        return "bn_conv1"
    stage, block, branch, kind = (
        name[4],
        int(name.split("_block")[1].split("_")[0]),
        name.split("_")[2],
        name.split("_")[3],
    )
    return f"{'res' if kind == 'conv' else 'bn'}{stage}{'abcdef'[block - 1]}_branch{_LEGACY_BRANCH[branch]}"
