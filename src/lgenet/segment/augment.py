"""The training augmentation of the segmentation networks (MONAI transforms, "BigAug"-style, stacked).

Any rotation, scale 0.8-1.25, flips, shift; bias field, gamma 0.6-1.6, intensity scale (x0.5-1.5 by default) and
shift (+-0.3 by default, then clipped to [0, 1] as at inference), Gaussian noise, blur and simulated low resolution,
so that another scanner's contrast, noise and resolution look like something seen in training. The geometry is
drawn per sample by MONAI, or per batch by :class:`BatchAffine` (``batch_augment``); the datasets here apply it,
in the training process or in DataLoader worker processes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.transforms import Randomizable

from lgenet.config.seg import UNNULLED_KINDS
from lgenet.models.segnet import SegSpec

__all__ = [
    "seg_augmentation",
    "RandEdgeArtefacts",
    "RandUnnulledWall",
    "BatchAffine",
    "AugmentedSamples",
    "AugmentedBatches",
    "augment_batch",
    "reseed_worker",
    "loader_context",
]


def seg_augmentation(
    spec: SegSpec,
    *,
    out_size: int,
    shift_px: float,
    seed: int,
    strong: bool = True,
    spatial: bool = True,
    intensity_scale: float = 0.5,
    intensity_shift: float = 0.3,
    edge_prob: float = 0.0,
    unnulled_prob: float = 0.0,
    unnulled_kind: str = "level",
):
    """The MONAI transform pipeline applied to each training sample ({'image', 'label'}, channel-first).

    ``spatial=False``: the intensity part only (the batch path draws the geometry with :class:`BatchAffine`).
    ``intensity_scale`` / ``intensity_shift``: the linear intensity change, x(1 +- scale) and +- shift.
    ``edge_prob``: the probability of :class:`RandEdgeArtefacts` (bright coil spots, wrap-around) per sample.
    ``unnulled_prob``: the probability of :class:`RandUnnulledWall` (the segmenter's windows: it needs the classes);
    ``unnulled_kind``: its ``kind``.
    """
    import monai.transforms as T

    keys = ["image", "label"]
    spatial_t = [  # the affine samples the output window directly from the larger context canvas (no corners)
        T.RandAffined(
            keys,
            prob=1.0,
            rotate_range=math.pi,
            scale_range=(0.2, 0.2),
            shear_range=0.05,
            translate_range=(shift_px, shift_px),
            spatial_size=(out_size, out_size),
            mode=("bilinear", "nearest"),
            padding_mode="zeros",
        ),
        T.RandFlipd(keys, prob=0.5, spatial_axis=0),
        T.RandFlipd(keys, prob=0.5, spatial_axis=1),
    ]
    intensity = (
        ([RandUnnulledWall(unnulled_prob, kind=unnulled_kind)] if unnulled_prob > 0 else [])
        + ([RandEdgeArtefacts(edge_prob)] if edge_prob > 0 else [])
        + [
            T.RandBiasFieldd("image", prob=0.3, coeff_range=(0.0, 0.3)),
            T.RandAdjustContrastd("image", prob=0.5, gamma=(0.6, 1.6)),
            # wide linear intensity changes: another centre's offset, window or body fraction moves the
            # normalised tissue by a scale and a shift (e.g. EMIDEC without its ~2048 offset: x1.3, -0.25)
            T.RandScaleIntensityd("image", factors=float(intensity_scale), prob=0.6),
            T.RandShiftIntensityd("image", offsets=float(intensity_shift), prob=0.6),
            T.RandGaussianNoised("image", prob=0.3, std=0.04),
            T.RandGaussianSmoothd("image", prob=0.2, sigma_x=(0.4, 1.0), sigma_y=(0.4, 1.0)),
            T.RandSimulateLowResolutiond(keys=["image"], prob=0.2, zoom_range=(0.5, 1.0), upsample_mode="bilinear"),
            T.Lambdad("image", _clip01),
        ]
        if strong
        else []
    )
    pipe = T.Compose((spatial_t if spatial else []) + intensity)
    pipe.set_random_state(seed % (2**32))
    return pipe


class RandEdgeArtefacts(Randomizable):
    """Another centre's edge artefacts on a normalised training window ({'image': (C, H, W)}), with probability
    ``prob``: 1-3 bright Gaussian spots (surface coils; +0.4 to +1.2, SD 3-8 % of the window) centred within 10 %
    of a random edge, and half the time a faint copy (x0.2-0.5) of the far edge's band folded onto the near one
    (phase-encoding wrap-around). The same on every channel (a 2.5-D window's slices share their coils)."""

    def __init__(self, prob: float) -> None:
        self.prob = float(prob)

    def randomize(self, data=None) -> None:  # draws happen in __call__, from self.R
        pass

    def __call__(self, d):
        if self.R.rand() >= self.prob:
            return d
        x = torch.as_tensor(_plain(d["image"])).clone()
        h, w = x.shape[-2:]
        yy = torch.arange(h, dtype=torch.float32)[:, None]
        xx = torch.arange(w, dtype=torch.float32)[None, :]
        add = torch.zeros(h, w)
        for _ in range(int(self.R.randint(1, 4))):
            side = int(self.R.randint(0, 4))
            near = self.R.uniform(0, 0.1)
            along = self.R.uniform(0, 1)
            cy = (along * h) if side < 2 else (near * h if side == 2 else (1 - near) * h)
            cx = (along * w) if side >= 2 else (near * w if side == 0 else (1 - near) * w)
            sd = self.R.uniform(0.03, 0.08) * min(h, w)
            amp = self.R.uniform(0.4, 1.2)
            add += amp * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sd**2))
        x = x + add
        if self.R.rand() < 0.5:
            band = max(2, w // 8)
            a = float(self.R.uniform(0.2, 0.5))
            if self.R.rand() < 0.5:
                x[..., :band] = x[..., :band] + a * x[..., w - band :]
            else:
                x[..., w - band :] = x[..., w - band :] + a * x[..., :band]
        return {**d, "image": x}


class RandUnnulledWall(Randomizable):
    """Normal myocardium left grey (a mis-set inversion time), on a segmenter's training window ({'image': (C, H, W),
    'label': (1, H, W) classes 0-3}), with probability ``prob``. From the centre slice's medians of the normal
    myocardium (class 2), w, and of the cavity (class 1), c, with d = c - w and g ~ U(0, ``grey``), every channel's
    intensity I is raised by g·d·max(0, 1 - |I - w| / d): tissue at the wall's level by g·d, the range from the
    wall to the blood pool compressed onto [w + g·d, c] (its texture kept, scaled by 1 - g), darker tissue less and
    nothing at the blood pool's level or brighter (the scar, the cavity) nor more than d below the wall (air). One
    intensity curve for the whole window, so other tissue of the wall's level greys as it would on a scanner. A
    window without both classes is left as it is.

    ``kind="wall"``: instead, only the centre slice's labelled normal wall is raised, by g·d with ~1-pixel soft
    edges (a Gaussian of sd 1 pixel), on every channel: the mechanism of the bench's proxy
    (:func:`lgenet.data.centre_shift.unnulled_myocardium`)."""

    def __init__(self, prob: float, grey: float = 0.6, kind: str = "level") -> None:
        if kind not in UNNULLED_KINDS:
            raise ValueError(f"RandUnnulledWall: kind must be one of {list(UNNULLED_KINDS)}, not {kind!r}")
        self.prob, self.grey, self.kind = float(prob), float(grey), kind

    def randomize(self, data=None) -> None:  # draws happen in __call__, from self.R
        pass

    def __call__(self, d):
        if self.R.rand() >= self.prob:
            return d
        x = torch.as_tensor(_plain(d["image"]))
        lab = torch.as_tensor(_plain(d["label"]))[0]
        centre = x[x.shape[0] // 2]
        wall, cavity = centre[lab == 2], centre[lab == 1]
        if wall.numel() < 8 or cavity.numel() < 8:
            return d
        w, c = float(wall.median()), float(cavity.median())
        step = c - w
        if step <= 1e-3:
            return d
        g = float(self.R.uniform(0, self.grey))
        if self.kind == "wall":
            from scipy.ndimage import gaussian_filter

            soft = torch.from_numpy(gaussian_filter((lab == 2).numpy().astype(np.float32), 1.0)).to(x.dtype)
            return {**d, "image": x + g * step * soft}
        tent = (1.0 - (x - w).abs() / step).clamp(min=0)
        return {**d, "image": x + g * step * tent}


class BatchAffine:
    """The spatial part of :func:`seg_augmentation` drawn per sample and applied to a whole batch at once
    (``torch.nn.functional.affine_grid`` / ``grid_sample``): any rotation, scale 1 +- 0.2 per axis, shear
    +- 0.05, translation +- ``shift_px``, flips; the ``out_size`` window is sampled from the centre of
    the larger context canvas (bilinear for the image, nearest for the labels, zeros outside).
    About 5x cheaper per sample on the CPU than MONAI's per-sample ``RandAffined``."""

    def __init__(self, out_size: int, shift_px: float, seed: int) -> None:
        self.out, self.shift = int(out_size), float(shift_px)
        self.gen = torch.Generator().manual_seed(int(seed) % (2**63))

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import torch.nn.functional as F

        b, _, h, w = x.shape
        u = lambda *shape: torch.rand(*shape, generator=self.gen)  # noqa: E731
        ang = (u(b) * 2 - 1) * math.pi
        sx, sy = 1 + (u(b) * 2 - 1) * 0.2, 1 + (u(b) * 2 - 1) * 0.2
        sh = (u(b) * 2 - 1) * 0.05
        fx = torch.where(u(b) < 0.5, -1.0, 1.0)
        fy = torch.where(u(b) < 0.5, -1.0, 1.0)
        tx, ty = (u(b) * 2 - 1) * self.shift, (u(b) * 2 - 1) * self.shift
        c, s_ = torch.cos(ang), torch.sin(ang)
        # output coords -> input coords (normalised): window scale . rotation . shear . zoom . flip
        m = torch.zeros(b, 2, 3)
        a11, a12 = c / sx, (-s_ + c * sh) / sy
        a21, a22 = s_ / sx, (c + s_ * sh) / sy
        m[:, 0, 0], m[:, 0, 1] = a11 * fx * self.out / w, a12 * fy * self.out / w
        m[:, 1, 0], m[:, 1, 1] = a21 * fx * self.out / h, a22 * fy * self.out / h
        m[:, 0, 2], m[:, 1, 2] = 2 * tx / w, 2 * ty / h
        grid = F.affine_grid(m.to(x.dtype), (b, x.shape[1], self.out, self.out), align_corners=False)
        xo = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        yo = F.grid_sample(y.float(), grid.to(torch.float32), mode="nearest", padding_mode="zeros", align_corners=False)
        return xo, yo


def _clip01(x):
    """Inputs are clipped to [0, 1] at inference (tissue_normalise): so are augmented ones."""
    return x.clamp(0.0, 1.0) if hasattr(x, "clamp") else np.clip(x, 0.0, 1.0)


class AugmentedSamples(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform) -> None:
        self.x, self.y, self.t = x, y, transform

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int):
        d = {"image": self.x[i], "label": self.y[i]}
        if self.t is not None:
            d = self.t(d)
        return _plain(d["image"]), _plain(d["label"])


class AugmentedBatches(torch.utils.data.Dataset):
    """Whole augmented batches by index list (the batch path in DataLoader worker processes): the geometry
    (:class:`BatchAffine`) for the batch, then MONAI's intensity part per sample, as in the training process."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_tf, transform) -> None:
        self.x, self.y, self.batch_tf, self.t = x, y, batch_tf, transform

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, idx):
        return augment_batch(self.x[idx], self.y[idx], self.batch_tf, self.t)


def augment_batch(xb, yb, batch_tf, transform):
    if batch_tf is not None:
        xb, yb = batch_tf(xb, yb)
    if transform is not None:
        pairs = [transform({"image": xb[i], "label": yb[i]}) for i in range(xb.shape[0])]
        xb = torch.stack([_plain(d["image"]) for d in pairs])
        yb = torch.stack([_plain(d["label"]) for d in pairs])
    return xb, yb


def reseed_worker(worker_id: int) -> None:
    """Each DataLoader worker draws its own augmentation stream (from the seed the loader's generator gave it);
    without this every worker would repeat the same geometry and intensity draws."""
    info = torch.utils.data.get_worker_info()
    ds, seed = info.dataset, int(info.seed)
    if getattr(ds, "batch_tf", None) is not None:
        ds.batch_tf.gen.manual_seed(seed % (2**63))
    t = getattr(ds, "t", None)
    if t is not None and hasattr(t, "set_random_state"):
        t.set_random_state(seed % (2**32))


def loader_context():
    """Fork where there is one (Linux): the workers share the training tensors instead of receiving a pickled
    copy, and a fold that runs in a spawned process (``--executor process``) would otherwise spawn its
    workers too. The workers never touch CUDA."""
    import multiprocessing as mp

    return mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None


def _plain(x) -> torch.Tensor:
    """A plain float tensor: MONAI's MetaTensor would route every network op through its metadata hooks."""
    if hasattr(x, "as_tensor"):
        x = x.as_tensor()
    return torch.as_tensor(x).float()
