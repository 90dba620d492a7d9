"""InceptionV3 exactly as ``keras.applications.InceptionV3`` builds it, in PyTorch.

The topology is torchvision's ``Inception3`` (same blocks, same module names, so Grad-CAM's
default ``Mixed_7c`` and user code read the same), with Keras' numerics:

* every ``conv2d_bn`` is a bias-free convolution followed by a BatchNorm with ``scale=False``:
  there is no gamma (:class:`BatchNorm2dNoScale` keeps it as a constant 1 that is not a parameter,
  so no optimiser or ``requires_grad_(True)`` can start training it), epsilon 1e-3;
* Keras' ``AveragePooling2D((3, 3), strides=1, padding='same')`` averages over the real pixels
  only (``count_include_pad=False``); torchvision's ``avg_pool2d`` counts the zero padding;
* 'valid' convolutions and poolings have no padding, 'same' stride-1 convolutions pad
  symmetrically (every kernel size is odd);
* no ``transform_input`` and no auxiliary classifier.

BatchNorm momentum is PyTorch's default 0.1 (never Keras' 0.99, which means something else here).

The Keras files name these layers ``conv2d``, ``conv2d_1``, ... and ``batch_normalization``,
``batch_normalization_1``, ... in construction order; :meth:`KerasInceptionV3.conv_bn_modules`
lists this module's (conv, bn) pairs in that same order.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["KerasInceptionV3", "BatchNorm2dNoScale", "ConvBN", "INCEPTION_BN_EPS", "INCEPTION_N_CONV"]

INCEPTION_BN_EPS = 1e-3
INCEPTION_N_CONV = 94


class BatchNorm2dNoScale(nn.BatchNorm2d):
    """BatchNorm with a shift (beta) but no scale: Keras ``BatchNormalization(scale=False)``.

    ``weight`` is a non-persistent buffer of ones (so the state dict holds ``bias``,
    ``running_mean``, ``running_var`` and ``num_batches_tracked`` only).
    """

    def __init__(self, num_features: int, eps: float = INCEPTION_BN_EPS, momentum: float = 0.1) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=True)
        del self.weight
        self.register_buffer("weight", torch.ones(num_features), persistent=False)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", scale=False"


class ConvBN(nn.Module):
    """Keras ``conv2d_bn``: Conv2D(use_bias=False) -> BatchNormalization(scale=False) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding="valid") -> None:
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        pad = ((kh - 1) // 2, (kw - 1) // 2) if padding == "same" else (0, 0)
        if padding == "same" and stride != 1:  # never used by InceptionV3; Keras would pad asymmetrically
            raise ValueError("'same' padding with stride > 1 is not supported")
        self.conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=pad, bias=False)
        self.bn = BatchNorm2dNoScale(cout)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def _same(cin: int, cout: int, kernel) -> ConvBN:
    return ConvBN(cin, cout, kernel, padding="same")


def _keras_avg_pool() -> nn.AvgPool2d:
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


# Attributes are assigned in the order Keras constructs the layers: that order is the mapping.
class InceptionA(nn.Module):  # mixed0-2
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _same(cin, 64, 1)
        self.branch5x5_1 = _same(cin, 48, 1)
        self.branch5x5_2 = _same(48, 64, 5)
        self.branch3x3dbl_1 = _same(cin, 64, 1)
        self.branch3x3dbl_2 = _same(64, 96, 3)
        self.branch3x3dbl_3 = _same(96, 96, 3)
        self.pool = _keras_avg_pool()
        self.branch_pool = _same(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(self.pool(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):  # mixed3
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _same(cin, 64, 1)
        self.branch3x3dbl_2 = _same(64, 96, 3)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)
        self.pool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, self.pool(x)], 1)


class InceptionC(nn.Module):  # mixed4-7
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = _same(cin, 192, 1)
        self.branch7x7_1 = _same(cin, c7, 1)
        self.branch7x7_2 = _same(c7, c7, (1, 7))
        self.branch7x7_3 = _same(c7, 192, (7, 1))
        self.branch7x7dbl_1 = _same(cin, c7, 1)
        self.branch7x7dbl_2 = _same(c7, c7, (7, 1))
        self.branch7x7dbl_3 = _same(c7, c7, (1, 7))
        self.branch7x7dbl_4 = _same(c7, c7, (7, 1))
        self.branch7x7dbl_5 = _same(c7, 192, (1, 7))
        self.pool = _keras_avg_pool()
        self.branch_pool = _same(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for m in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = m(bd)
        bp = self.branch_pool(self.pool(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):  # mixed8
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = _same(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _same(cin, 192, 1)
        self.branch7x7x3_2 = _same(192, 192, (1, 7))
        self.branch7x7x3_3 = _same(192, 192, (7, 1))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)
        self.pool = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, self.pool(x)], 1)


class InceptionE(nn.Module):  # mixed9-10
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch1x1 = _same(cin, 320, 1)
        self.branch3x3_1 = _same(cin, 384, 1)
        self.branch3x3_2a = _same(384, 384, (1, 3))
        self.branch3x3_2b = _same(384, 384, (3, 1))
        self.branch3x3dbl_1 = _same(cin, 448, 1)
        self.branch3x3dbl_2 = _same(448, 384, 3)
        self.branch3x3dbl_3a = _same(384, 384, (1, 3))
        self.branch3x3dbl_3b = _same(384, 384, (3, 1))
        self.pool = _keras_avg_pool()
        self.branch_pool = _same(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        bp = self.branch_pool(self.pool(x))
        return torch.cat([b1, b3, bd, bp], 1)


class KerasInceptionV3(nn.Module):
    """``keras.applications.InceptionV3(include_top=False)`` as a PyTorch module.

    ``forward_features(x)`` (and ``forward``) map an (N, 3, H, W) batch (H, W >= 75) to the
    ``mixed10`` feature map (N, 2048, h, w); 8x8 at 299 px.
    """

    lgenet_layout = "keras"
    lgenet_target_layer = "Mixed_7c"
    num_features = 2048

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _same(32, 64, 3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(3, stride=2)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.children():
            x = m(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)

    def conv_bn_modules(self) -> list[tuple[str, str]]:
        """Module paths of the (conv, bn) pairs in Keras construction order (94 pairs)."""
        return [(f"{name}.conv", f"{name}.bn") for name, m in self.named_modules() if isinstance(m, ConvBN)]
