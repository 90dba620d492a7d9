import numpy as np
import torch

from lgenet.data.preprocess import Preprocessor, augment_batch, scale_intensity


def test_percentile_scaling_is_robust_to_outliers():
    rng = np.random.default_rng(0)
    img = rng.normal(100, 10, (64, 48)).astype(np.float32)
    img[0, 0] = 1e6  # one hot pixel must not squash the rest
    s = scale_intensity(img, (1, 99))
    assert s.min() == 0.0 and s.max() == 1.0
    assert 0.3 < float(np.median(s)) < 0.7


def test_preprocessor_shape_range_and_aspect():
    img = np.zeros((40, 80), np.float32)
    img[10:30, 30:50] = 1.0  # a square in the middle
    x = Preprocessor(64)(img)
    assert x.shape == (1, 64, 64) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    # padding keeps aspect: the square stays square
    rows = torch.where(x[0].max(1).values > 0.5)[0]
    cols = torch.where(x[0].max(0).values > 0.5)[0]
    assert abs(len(rows) - len(cols)) <= 1


def test_to_frame_inverts_geometry():
    img = np.zeros((40, 80), np.float32)
    img[5:15, 60:75] = 1.0
    pre = Preprocessor(96)
    back = pre.to_frame(pre(img)[0].numpy(), img.shape)
    assert back.shape == img.shape
    assert back[10, 67] > 0.8 and back[30, 20] < 0.1


def test_constant_frame_does_not_crash():
    assert float(Preprocessor(32)(np.full((10, 10), 7.0)).abs().sum()) == 0.0


def test_augmentation_is_seeded():
    x = torch.rand(4, 1, 32, 32)
    a = augment_batch(x, torch.Generator().manual_seed(1))
    b = augment_batch(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert a.min() >= 0 and a.max() <= 1
