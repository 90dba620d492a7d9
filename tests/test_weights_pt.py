"""RadImageNet PyTorch ``.pt`` files, torchvision/timm state dicts, and the input convention each implies.

The RadImageNet files are built here the way the authors built theirs: a torchvision module's
children wrapped as ``self.backbone = nn.Sequential(*children)`` and ``state_dict()`` saved, so keys
read ``backbone.0.weight`` ... (InceptionV3 without AuxLogits).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from lgenet.errors import WeightsError
from lgenet.models import NORMS, InputAdapter, build_model, create_backbone


class RadImageNetWrapper(nn.Module):
    def __init__(self, base: nn.Module, drop_last: int = 1) -> None:
        super().__init__()
        self.backbone = nn.Sequential(*list(base.children())[: len(list(base.children())) - drop_last])


def _randomise_bn(m: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for b in m.modules():
            if isinstance(b, nn.BatchNorm2d):
                b.running_mean.copy_(torch.randn(b.num_features, generator=g) * 0.3)
                b.running_var.copy_(torch.rand(b.num_features, generator=g) + 0.5)
                b.weight.copy_(torch.rand(b.num_features, generator=g) + 0.5)
                b.bias.copy_(torch.randn(b.num_features, generator=g) * 0.2)
    return m.eval()


@pytest.fixture(scope="module")
def tv_resnet():
    return _randomise_bn(torchvision.models.resnet50(weights=None), 3)


@pytest.fixture(scope="module")
def tv_inception():
    return _randomise_bn(torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False), 4)


def _tv_features(tv: nn.Module, x: torch.Tensor, n_tail: int) -> torch.Tensor:
    with torch.no_grad():
        return nn.Sequential(*list(tv.children())[:-n_tail])(x)


def test_radimagenet_resnet50_pt_equals_torchvision(tmp_path, tv_resnet):
    f = tmp_path / "ResNet50.pt"
    torch.save(RadImageNetWrapper(tv_resnet, drop_last=1).state_dict(), f)  # backbone.0 ... backbone.8 (avgpool)
    bb = create_backbone("resnet50", init="radimagenet", weights_file=f).eval()
    assert bb.weights_info.format == "radimagenet-pt" and bb.input_norm.name == "radimagenet_pt"
    assert any("backbone.N." in s for s in bb.weights_info.fixups)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        assert torch.allclose(bb.forward_features(x), _tv_features(tv_resnet, x, 2), atol=1e-5, rtol=1e-5)


def test_radimagenet_pt_with_fc_child_and_module_prefix(tmp_path, tv_resnet):
    sd = RadImageNetWrapper(tv_resnet, drop_last=0).state_dict()  # fc kept as backbone.9
    f = tmp_path / "ResNet50_dp.pt"
    torch.save({f"module.{k}": v for k, v in sd.items()}, f)  # saved from nn.DataParallel
    bb = create_backbone("resnet50", init="radimagenet", weights_file=f)
    assert "stripped 'module.' prefix (nn.DataParallel save)" in bb.weights_info.fixups
    assert bb.weights_info.dropped == ["fc.weight", "fc.bias"]
    assert torch.equal(bb.layer4[2].bn3.running_var, tv_resnet.layer4[2].bn3.running_var)


@pytest.mark.parametrize("aux", [False, True])
def test_radimagenet_inception_pt(tmp_path, tv_inception, aux):
    if aux:  # a wrapper built from a module that still had its AuxLogits child
        base = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
        base.load_state_dict(tv_inception.state_dict(), strict=False)
        sd = RadImageNetWrapper(base).state_dict()
        assert any(k.startswith("backbone.15.conv0.") for k in sd)
    else:
        sd = RadImageNetWrapper(tv_inception).state_dict()
        assert not any("AuxLogits" in k for k in sd)
    f = tmp_path / "InceptionV3.pt"
    torch.save(sd, f)
    bb = create_backbone("inception_v3", init="radimagenet", weights_file=f).eval()
    assert bb.input_norm.name == "radimagenet_pt"
    x = torch.randn(1, 3, 299, 299)
    with torch.no_grad():
        assert torch.allclose(bb.forward_features(x), _tv_features(tv_inception, x, 3), atol=1e-5, rtol=1e-5)


def test_radimagenet_pt_wrong_architecture(tmp_path, tv_resnet):
    f = tmp_path / "ResNet50.pt"
    torch.save(RadImageNetWrapper(tv_resnet).state_dict(), f)
    with pytest.raises(WeightsError, match="does not fit backbone 'inception_v3'"):
        create_backbone("inception_v3", init="radimagenet", weights_file=f)
    g = tmp_path / "odd.pt"
    torch.save({"encoder.0.weight": torch.zeros(1)}, g)
    with pytest.raises(WeightsError, match="does not fit backbone 'resnet50'"):
        create_backbone("resnet50", init="radimagenet", weights_file=g)


def test_torchvision_inception_state_dict_and_safetensors(tmp_path):
    from safetensors.torch import save_file

    tv = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    f = tmp_path / "inception_v3_google.pth"
    torch.save(tv.state_dict(), f)
    bb = create_backbone("inception_v3", init="imagenet", weights_file=f)
    assert bb.input_norm.name == "inception" and bb.weights_info.format == "torch"
    assert any(k.startswith("AuxLogits.") for k in bb.weights_info.dropped)
    s = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in tv.state_dict().items()}, str(s))
    bb2 = create_backbone("inception_v3", init="imagenet", weights_file=s)
    assert bb2.weights_info.format == "safetensors"
    assert torch.equal(bb2.Mixed_7c.branch_pool.conv.weight, tv.Mixed_7c.branch_pool.conv.weight)


def test_truncated_pt(tmp_path, tv_resnet):
    f = tmp_path / "ResNet50.pt"
    torch.save(RadImageNetWrapper(tv_resnet).state_dict(), f)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(f.read_bytes()[:1_000_000])
    with pytest.raises(WeightsError, match="could not be read as a PyTorch state dict"):
        create_backbone("resnet50", init="radimagenet", weights_file=cut)


# ------------------------------------------------------------------------------------------ preprocessing
def _keras_caffe_reference(gray_u8: np.ndarray) -> np.ndarray:
    """Keras imagenet_utils.preprocess_input (mode 'caffe') of the gray image replicated to RGB, then
    rescale 1/255 (the RadImageNet ImageDataGenerator), re-implemented with NumPy; NCHW."""
    rgb = np.repeat(gray_u8[..., None], 3, axis=-1).astype(np.float32)
    bgr = rgb[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    return (bgr / 255.0).transpose(2, 0, 1)[None]


def test_norms_follow_the_weights():
    g = np.random.default_rng(0).integers(0, 256, (32, 40), dtype=np.uint8)
    x01 = torch.from_numpy(g.astype(np.float32) / 255.0)[None, None]
    out = InputAdapter(NORMS["keras_caffe"])(x01).numpy()
    assert NORMS["keras_caffe"].channel_order == "BGR"
    np.testing.assert_allclose(out, _keras_caffe_reference(g), atol=1e-6)
    # RadImageNet .pt demo: BGR in [-1, 1]
    np.testing.assert_allclose(InputAdapter(NORMS["radimagenet_pt"])(x01).numpy()[0, 0], g / 127.5 - 1, atol=1e-6)
    # torchvision ImageNet
    im = InputAdapter(NORMS["imagenet"])(x01).numpy()[0]
    for c, (m, s) in enumerate(zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))):
        np.testing.assert_allclose(im[c], (g / 255.0 - m) / s, atol=1e-5)


def test_saved_config_records_the_norm(tmp_path, tv_resnet):
    f = tmp_path / "ResNet50.pt"
    torch.save(RadImageNetWrapper(tv_resnet).state_dict(), f)
    model = build_model("resnet50", "radimagenet", f, image_size=64, head="gap")
    assert model.spec.norm == "radimagenet_pt" and model.spec.layout == "timm" and model.spec.init == "radimagenet"
    assert build_model("resnet50", "random", image_size=64, head="gap").spec.norm == "imagenet"
