"""The one backbone registry.

Each backbone is registered once with a :class:`BackboneSpec` that carries everything the rest of
lgenet needs to know about it (input size, feature width, the layer Grad-CAM hooks by default, the
timm name of its ImageNet weights). Models are built by name::

    >>> from lgenet.models import create_backbone, list_backbones
    >>> list_backbones()
    ['inception_v3', 'resnet50', 'tiny']
    >>> net = create_backbone("tiny")
    >>> net.forward_features(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 128, 4, 4])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from lgenet.errors import ConfigError

__all__ = ["BackboneSpec", "register_backbone", "get_spec", "list_backbones", "InputNorm", "NORMS", "CAM_MIN_CELLS"]

#: the default CAM layer resolves at least this many cells a side (the seed's ResNet50 at 224 px: layer4, 7x7;
#: at 112 px layer4 is 4x4, a coarse band across the heart, so layer3 (7x7) is used)
CAM_MIN_CELLS = 7


@dataclass(frozen=True)
class InputNorm:
    """How a [0, 1] grayscale image becomes the 3-channel tensor a set of weights was trained on.

    ``x3 = (x01 * scale - mean[c]) / std[c]`` for each channel ``c`` in the weights' channel order.
    With a grayscale image replicated to three channels, ``channel_order`` only decides which mean
    goes with which channel; it is recorded so that the saved config says exactly what was done.
    """

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1.0
    channel_order: str = "RGB"
    description: str = ""


NORMS: dict[str, InputNorm] = {
    "imagenet": InputNorm(
        "imagenet",
        (0.485, 0.456, 0.406),
        (0.229, 0.224, 0.225),
        1.0,
        "RGB",
        "torchvision/timm ImageNet: RGB in [0,1], minus mean, divided by std",
    ),
    "inception": InputNorm(
        "inception",
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        1.0,
        "RGB",
        "Inception-style: RGB in [0,1] mapped to [-1,1] (timm inception_v3 ImageNet weights)",
    ),
    "keras_caffe": InputNorm(
        "keras_caffe",
        (103.939, 116.779, 123.68),
        (255.0, 255.0, 255.0),
        255.0,
        "BGR",
        "Keras imagenet_utils.preprocess_input ('caffe': BGR in 0-255 minus channel means) then "
        "rescale 1/255, as the RadImageNet Keras fine-tuning scripts did",
    ),
    "radimagenet_pt": InputNorm(
        "radimagenet_pt",
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        1.0,
        "BGR",
        "RadImageNet PyTorch demo: BGR scaled to [-1,1]",
    ),
}


@dataclass(frozen=True)
class BackboneSpec:
    """What lgenet knows about one backbone.

    Attributes:
        name: registry name (``resnet50``).
        input_size: default square input size in pixels (the seed: 224 ResNet50, 299 InceptionV3).
        num_features: channels of the last feature map.
        target_layer: module path (inside the backbone) of the default Grad-CAM layer.
        build: zero-argument callable returning a randomly initialised module with
            ``forward_features(x) -> (N, num_features, h, w)``.
        timm_name: timm architecture name, or None for lgenet's own modules.
        imagenet_tag: timm pretrained tag for ImageNet weights (``resnet50.tv_in1k``), or None.
        imagenet_norm: key of :data:`NORMS` that the ImageNet weights expect.
        min_size: smallest input size the network accepts.
        cam_layers: Grad-CAM layer candidates, deepest first: a classifier's default CAM layer is the
            deepest one whose map has at least :data:`CAM_MIN_CELLS` cells a side at the run's input size
            (empty: always ``target_layer``).
    """

    name: str
    input_size: int
    num_features: int
    target_layer: str
    build: Callable[[], nn.Module]
    description: str = ""
    timm_name: str | None = None
    imagenet_tag: str | None = None
    imagenet_norm: str = "imagenet"
    cam_layers: tuple[str, ...] = ()
    min_size: int = 32


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"backbone {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> BackboneSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown backbone {name!r}; available backbones are {list_backbones()} (see `lgenet backbones`)"
        ) from None


def list_backbones() -> list[str]:
    return sorted(_REGISTRY)


# --------------------------------------------------------------------------- built-in backbones
def _timm_builder(arch: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(arch, pretrained=False, num_classes=0, global_pool="")

    return build


class TinyBackbone(nn.Module):
    """A four-stage CNN (16-32-64-128 channels, stride 16) for tests and quick demos.

    It is not a serious model; it exists so that the whole pipeline (training, CV, CAMs, report)
    runs in seconds on a laptop CPU.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        layers = []
        cin = 3
        for w in widths:
            layers.append(
                nn.Sequential(
                    nn.Conv2d(cin, w, 3, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(w, w, 3, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                )
            )
            cin = w
        self.stages = nn.Sequential(*layers)
        self.num_features = cin

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


register_backbone(
    BackboneSpec(
        name="resnet50",
        input_size=224,
        num_features=2048,
        target_layer="layer4",
        build=_timm_builder("resnet50"),
        description="ResNet-50 (timm, torchvision layout v1.5); ImageNet weights resnet50.tv_in1k",
        timm_name="resnet50",
        imagenet_tag="resnet50.tv_in1k",
        imagenet_norm="imagenet",
        min_size=32,
        cam_layers=("layer4", "layer3", "layer2"),
    )
)
register_backbone(
    BackboneSpec(
        name="inception_v3",
        input_size=299,
        num_features=2048,
        target_layer="Mixed_7c",
        build=_timm_builder("inception_v3"),
        description="Inception-v3 (timm, torchvision layout); ImageNet weights inception_v3.tv_in1k",
        timm_name="inception_v3",
        imagenet_tag="inception_v3.tv_in1k",
        imagenet_norm="inception",
        min_size=75,
        cam_layers=("Mixed_7c", "Mixed_6e", "Mixed_5d"),
    )
)
register_backbone(
    BackboneSpec(
        name="resnet18",
        input_size=224,
        num_features=512,
        target_layer="layer4",
        build=_timm_builder("resnet18"),
        description="ResNet-18 (timm); a light backbone for the anatomy-aware ROI and whole-stack families",
        timm_name="resnet18",
        imagenet_tag="resnet18.tv_in1k",
        imagenet_norm="imagenet",
        min_size=32,
        cam_layers=("layer4", "layer3", "layer2"),
    )
)
register_backbone(
    BackboneSpec(
        name="tiny",
        input_size=64,
        num_features=128,
        target_layer="stages.3",
        build=TinyBackbone,
        description="4-stage 128-channel CNN for tests and demos (random init only)",
        min_size=16,
    )
)
