"""The networks of the ``roi`` and ``stack`` families (:mod:`lgenet.training.anatomy`): a CNN on the basal
window, an attention-pooled CNN over every slice's window, their auxiliary segmentation loss and augmentation."""

from __future__ import annotations

import math

__all__ = ["aux_segmentation_loss"]


def _stack_model(arch: str, size: int, aux: bool = False):
    import torch
    from torch import nn

    from lgenet.models import create_backbone

    class _MIL(nn.Module):
        """Per-slice CNN features, gated attention pooling over a patient's slices (Ilse et al. 2018), one logit;
        with ``aux``, also a 1x1-convolution map of (myocardium, enhancement) logits per feature-map cell."""

        def __init__(self) -> None:
            super().__init__()
            self.backbone = create_backbone(arch, "random")
            with torch.no_grad():
                d = self.backbone.forward_features(torch.zeros(1, 3, size, size)).shape[1]
            self.v = nn.Linear(d, 128)
            self.u = nn.Linear(d, 128)
            self.w = nn.Linear(128, 1)
            self.drop = nn.Dropout(0.25)
            self.out = nn.Linear(d, 1)
            self.aux = nn.Conv2d(d, 2, 1) if aux else None  # created last: without it, initialisation is unchanged

        def forward(self, x: torch.Tensor, counts: list[int], with_aux: bool = False):
            fmap = self.backbone.forward_features(x)
            f = fmap.mean((2, 3))
            a = self.w(torch.tanh(self.v(f)) * torch.sigmoid(self.u(f))).squeeze(1)
            logits = []
            for fb, ab in zip(torch.split(f, counts), torch.split(a, counts)):
                wts = torch.softmax(ab, 0)
                logits.append(self.out(self.drop((wts[:, None] * fb).sum(0))))
            logits = torch.cat(logits)
            return (logits, self.aux(fmap)) if with_aux else logits

    return _MIL()


def _roi_model(arch: str, size: int, aux: bool = False):
    import torch
    from torch import nn

    from lgenet.models import build_model

    net = build_model(arch, "random", image_size=size, head="gap", dropout=0.25)
    if not aux:
        return net

    class _RoiAux(nn.Module):
        """The roi classifier plus a 1x1-convolution (myocardium, enhancement) map on its last feature map."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net
            with torch.no_grad():
                d = net.forward_features(torch.zeros(1, 3, size, size)).shape[1]
            self.aux = nn.Conv2d(d, 2, 1)

        def forward(self, x: torch.Tensor, with_aux: bool = False):
            fmap = self.net.forward_features(x)
            logits = self.net.head(fmap).squeeze(1)
            return (logits, self.aux(fmap)) if with_aux else logits

    return _RoiAux()


def _masked_rows(counts: list[int], masks: list) -> list[int]:
    """Rows of the batch's concatenated slices (``counts`` slices per item) whose item has a mask."""
    rows, start = [], 0
    for n, m in zip(counts, masks):
        if m is not None:
            rows.extend(range(start, start + n))
        start += n
    return rows


def aux_segmentation_loss(aux_logits, masks):
    """Binary cross-entropy of the per-cell (myocardium, enhancement) logits against the expert masks'
    fractions in each cell (the masks area-averaged down to the feature map)."""
    import torch.nn.functional as F

    target = F.adaptive_avg_pool2d(masks.float(), aux_logits.shape[-2:])
    return F.binary_cross_entropy_with_logits(aux_logits.float(), target)


def _augment(x, gen, image_channels: int = 1):
    """Exact rotations by 90 degrees and flips (all channels), gamma on the first ``image_channels`` (the image)."""
    import torch

    k = int(torch.randint(0, 4, (1,), generator=gen))
    x = torch.rot90(x, k, (2, 3))
    if bool(torch.rand(1, generator=gen) < 0.5):
        x = x.flip(3)
    g = float(torch.exp((torch.rand(1, generator=gen) - 0.5) * 2 * math.log(1.4)))
    x = x.clone()
    x[:, :image_channels] = x[:, :image_channels].clamp(0, 1) ** g
    return x
